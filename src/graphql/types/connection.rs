//! Relay connections: edges with cursors, `pageInfo`, and a `totalCount` that is only counted
//! when a client asks for it.

use std::sync::Arc;

use async_graphql::{Context, Result, SimpleObject};
use uuid::Uuid;

use crate::graphql::batch::OrganisationSet;
use crate::graphql::services;
use crate::service::Scoped;
use crate::service::audit::{self, AuditFilter};
use crate::service::invitations::{self, InvitationFilter};
use crate::service::organisations::{self, OrganisationFilter};
use crate::service::users::{self, UserFilter};

/// Where a page is in its list.
#[derive(Debug, Clone, SimpleObject)]
pub struct PageInfo {
    pub has_next_page: bool,
    pub has_previous_page: bool,
    pub start_cursor: Option<String>,
    pub end_cursor: Option<String>,
}

/// How to count the whole list a page comes from, when asked.
pub(crate) enum TotalCount {
    Users(Scoped<UserFilter>),
    /// Counted for every organisation of the set at once.
    OrganisationUsers {
        organisations: Arc<OrganisationSet>,
        organisation_id: Uuid,
        filter: UserFilter,
    },
    Organisations(Scoped<OrganisationFilter>),
    AuditEvents(Scoped<AuditFilter>),
    Invitations(Scoped<InvitationFilter>),
}

impl TotalCount {
    pub(crate) async fn resolve(&self, ctx: &Context<'_>) -> Result<i64> {
        let db = &services(ctx).db;
        let count = match self {
            TotalCount::Users(scope) => users::total(db, scope).await?,
            TotalCount::OrganisationUsers {
                organisations,
                organisation_id,
                filter,
            } => {
                organisations
                    .user_count(ctx, *organisation_id, filter)
                    .await?
            }
            TotalCount::Organisations(scope) => organisations::total(db, scope).await?,
            TotalCount::AuditEvents(scope) => audit::total(db, scope).await?,
            TotalCount::Invitations(scope) => invitations::total(db, scope).await?,
        };
        Ok(count as i64)
    }
}

/// Declares `<Name>Connection` and `<Name>Edge` for a node type.
macro_rules! connection {
    ($connection:ident, $edge:ident, $node:ty, $what:literal) => {
        #[doc = concat!("A page of ", $what, ".")]
        pub struct $connection {
            pub(crate) page: $crate::service::pagination::Page<$node>,
            pub(crate) total: $crate::graphql::types::connection::TotalCount,
        }

        #[doc = concat!("One of ", $what, ", with the cursor that continues after it.")]
        #[derive(async_graphql::SimpleObject)]
        pub struct $edge {
            pub cursor: String,
            pub node: $node,
        }

        #[async_graphql::Object]
        impl $connection {
            async fn edges(&self) -> Vec<$edge> {
                self.page
                    .edges
                    .iter()
                    .map(|edge| $edge {
                        cursor: edge.cursor.clone(),
                        node: edge.node.clone(),
                    })
                    .collect()
            }

            /// The nodes of `edges`, for clients that do not need cursors.
            async fn nodes(&self) -> Vec<$node> {
                self.page
                    .edges
                    .iter()
                    .map(|edge| edge.node.clone())
                    .collect()
            }

            async fn page_info(&self) -> $crate::graphql::types::connection::PageInfo {
                $crate::graphql::types::connection::PageInfo {
                    has_next_page: self.page.has_next_page,
                    has_previous_page: self.page.has_previous_page,
                    start_cursor: self.page.edges.first().map(|edge| edge.cursor.clone()),
                    end_cursor: self.page.edges.last().map(|edge| edge.cursor.clone()),
                }
            }

            /// How many there are in the whole list, across all pages.
            async fn total_count(
                &self,
                ctx: &async_graphql::Context<'_>,
            ) -> async_graphql::Result<i64> {
                self.total.resolve(ctx).await
            }
        }
    };
}

pub(crate) use connection;
