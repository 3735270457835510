use async_graphql::{Context, ID, InputObject, Object, Result};

use crate::graphql::caller;
use crate::graphql::services;
use crate::graphql::types::Invitation;
use crate::graphql::types::connection::TotalCount;
use crate::graphql::types::invitation::{InvitationConnection, InvitationStatus};
use crate::service::invitations::{self, InvitationFilter};
use crate::service::pagination::PageRequest;
use crate::service::parse_id;

#[derive(Default)]
pub struct InvitationQuery;

#[derive(Debug, Clone, Default, InputObject)]
#[graphql(name = "InvitationsFilter")]
pub struct InvitationsFilterInput {
    pub status: Option<InvitationStatus>,
    pub organisation_id: Option<ID>,
    /// Words that must each appear in the email (any case).
    pub search: Option<String>,
}

#[Object]
impl InvitationQuery {
    /// Invitations, newest first: all for admins, their organisation's for organisation
    /// admins.
    #[graphql(complexity = "crate::graphql::schema::page_complexity(first, child_complexity)")]
    async fn invitations(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size, at most 100 (default 20).")] first: Option<i32>,
        #[graphql(desc = "The `endCursor` of the previous page.")] after: Option<String>,
        filter: Option<InvitationsFilterInput>,
    ) -> Result<InvitationConnection> {
        let actor = caller(ctx).actor()?;
        let page = PageRequest::parse(first, after.as_deref(), invitations::ORDER_TAG)?;
        let filter = filter.unwrap_or_default();
        let filter = InvitationFilter {
            status: filter.status.map(Into::into),
            organisation_id: filter
                .organisation_id
                .map(|id| parse_id("filter.organisationId", &id))
                .transpose()?,
            search: filter.search,
        };
        let db = &services(ctx).db;
        let (found, scope) = invitations::list(db, actor, filter, &page).await?;
        Ok(InvitationConnection {
            page: Invitation::page(found),
            total: TotalCount::Invitations(scope),
        })
    }
}
