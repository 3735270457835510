use std::sync::Arc;

use async_graphql::{Context, ID, Object, Result};
use chrono::{DateTime, Utc};
use entity::organisation;

use super::User;
use super::connection::TotalCount;
use super::user::UserConnection;
use crate::graphql::batch::OrganisationSet;
use crate::graphql::query::users::{UserOrderBy, UsersInOrganisationFilterInput};
use crate::service::organisations;
use crate::service::pagination::{Page, PageRequest};
use crate::service::users::{self, UserFilter, UserOrder};

/// A unit users belong to: a faculty, a school, a department.
#[derive(Clone)]
pub struct Organisation {
    pub(crate) model: organisation::Model,
    /// The organisations resolved with this one, whose relations load together.
    pub(crate) set: Arc<OrganisationSet>,
}

impl Organisation {
    pub(crate) fn page(page: Page<organisation::Model>) -> Page<Organisation> {
        let set = OrganisationSet::of(page.edges.iter().map(|edge| &edge.node));
        page.map(|model| Organisation {
            model,
            set: set.clone(),
        })
    }

    pub(crate) fn one(model: organisation::Model) -> Organisation {
        let set = OrganisationSet::of([&model]);
        Organisation { model, set }
    }

    /// Its members are the caller's to read, wherever this organisation was reached from (a
    /// query, a mutation's result, a subscription's payload about a user who moved).
    fn require_members_readable(&self, ctx: &Context<'_>) -> Result<()> {
        let actor = crate::graphql::caller(ctx).actor()?;
        Ok(organisations::check_readable(actor, self.model.id)?)
    }
}

#[Object]
impl Organisation {
    async fn id(&self) -> ID {
        ID(self.model.id.to_string())
    }

    async fn name(&self) -> &str {
        &self.model.name
    }

    /// A unique, URL-safe name.
    async fn slug(&self) -> &str {
        &self.model.slug
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.model.created_at
    }

    async fn updated_at(&self) -> DateTime<Utc> {
        self.model.updated_at
    }

    async fn archived_at(&self) -> Option<DateTime<Utc>> {
        self.model.archived_at
    }

    async fn is_archived(&self) -> bool {
        self.model.archived_at.is_some()
    }

    /// The hours of a full-time academic year here: a member's workload target is their
    /// contract FTE times these, unless their profile sets one.
    async fn standard_hours(&self) -> i32 {
        self.model.standard_hours
    }

    /// How many active users belong to it. Batched across a page.
    async fn member_count(&self, ctx: &Context<'_>) -> Result<i64> {
        self.require_members_readable(ctx)?;
        let members = users::counted_as_members();
        Ok(self.set.user_count(ctx, self.model.id, &members).await? as i64)
    }

    /// Its users, a page at a time. Batched: the same page of every organisation on a page is
    /// one query.
    #[graphql(complexity = "crate::graphql::schema::page_complexity(first, child_complexity)")]
    async fn users(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size, at most 100 (default 20).")] first: Option<i32>,
        #[graphql(desc = "The `endCursor` of the previous page.")] after: Option<String>,
        filter: Option<UsersInOrganisationFilterInput>,
        #[graphql(default)] order_by: UserOrderBy,
    ) -> Result<UserConnection> {
        self.require_members_readable(ctx)?;
        let order: UserOrder = order_by.into();
        let request = PageRequest::parse(first, after.as_deref(), order.tag())?;
        let filter = filter.map(UserFilter::from).unwrap_or_default();
        let (page, users) = self
            .set
            .users_page(ctx, self.model.id, &filter, order, &request)
            .await?;
        Ok(UserConnection {
            page: User::page_in(page, users),
            total: TotalCount::OrganisationUsers {
                organisations: self.set.clone(),
                organisation_id: self.model.id,
                filter,
            },
        })
    }
}

super::connection::connection!(
    OrganisationConnection,
    OrganisationEdge,
    Organisation,
    "organisations"
);
