use async_graphql::{Context, Enum, ID, InputObject, Object, Result};

use crate::graphql::caller;
use crate::graphql::services;
use crate::graphql::types::connection::TotalCount;
use crate::graphql::types::organisation::OrganisationConnection;
use crate::graphql::types::{Organisation, OrganisationStats, OrganisationWorkload};
use crate::service::organisations::{self, OrganisationFilter, OrganisationOrder};
use crate::service::pagination::PageRequest;
use crate::service::workload::{self, AcademicYear};
use crate::service::{parse_id, stats};

#[derive(Default)]
pub struct OrganisationQuery;

/// Narrows a list of organisations.
#[derive(Debug, Clone, Default, InputObject)]
#[graphql(name = "OrganisationsFilter")]
pub struct OrganisationsFilterInput {
    /// Words that must each appear in the name or slug (any case).
    pub search: Option<String>,
    /// Include archived organisations (left out by default).
    #[graphql(default)]
    pub include_archived: bool,
}

/// The order of a list of organisations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Enum)]
pub enum OrganisationOrderBy {
    #[default]
    NameAsc,
    NameDesc,
    /// Oldest first.
    CreatedAtAsc,
    /// Newest first.
    CreatedAtDesc,
}

impl From<OrganisationOrderBy> for OrganisationOrder {
    fn from(order: OrganisationOrderBy) -> OrganisationOrder {
        match order {
            OrganisationOrderBy::NameAsc => OrganisationOrder::NameAsc,
            OrganisationOrderBy::NameDesc => OrganisationOrder::NameDesc,
            OrganisationOrderBy::CreatedAtAsc => OrganisationOrder::CreatedAtAsc,
            OrganisationOrderBy::CreatedAtDesc => OrganisationOrder::CreatedAtDesc,
        }
    }
}

#[Object]
impl OrganisationQuery {
    /// One organisation by id. An unknown id is a `NOT_FOUND` error; another organisation
    /// than the caller's is `FORBIDDEN` (admins read all).
    async fn organisation(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Organisation>> {
        let actor = caller(ctx).actor()?;
        let id = parse_id("id", &id)?;
        let db = &services(ctx).db;
        Ok(Some(Organisation::one(
            organisations::read(db, actor, id).await?,
        )))
    }

    /// An organisation's dashboard: members by role and status, pending invitations, recent
    /// sign-ins. Admins, and the organisation's admins.
    async fn organisation_stats(&self, ctx: &Context<'_>, id: ID) -> Result<OrganisationStats> {
        let actor = caller(ctx).actor()?;
        let id = parse_id("id", &id)?;
        let db = &services(ctx).db;
        Ok(OrganisationStats(stats::organisation(db, actor, id).await?))
    }

    /// An organisation's workload in an academic year (`2026/27`; the current one when left
    /// out): its active members' allocated hours against their targets, totals, and who is
    /// over-allocated. Admins, and the organisation's admins.
    async fn organisation_workload(
        &self,
        ctx: &Context<'_>,
        id: ID,
        academic_year: Option<String>,
    ) -> Result<OrganisationWorkload> {
        let actor = caller(ctx).actor()?;
        let id = parse_id("id", &id)?;
        let year = AcademicYear::or_current("academicYear", academic_year.as_deref())?;
        let db = &services(ctx).db;
        Ok(OrganisationWorkload(
            workload::organisation(db, actor, id, year).await?,
        ))
    }

    /// Organisations the caller may read, a page at a time: all for admins, their own for
    /// everyone else.
    #[graphql(complexity = "crate::graphql::schema::page_complexity(first, child_complexity)")]
    async fn organisations(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size, at most 100 (default 20).")] first: Option<i32>,
        #[graphql(desc = "The `endCursor` of the previous page.")] after: Option<String>,
        filter: Option<OrganisationsFilterInput>,
        #[graphql(default)] order_by: OrganisationOrderBy,
    ) -> Result<OrganisationConnection> {
        let actor = caller(ctx).actor()?;
        let order: OrganisationOrder = order_by.into();
        let page = PageRequest::parse(first, after.as_deref(), order.tag())?;
        let filter = filter.unwrap_or_default();
        let filter = OrganisationFilter {
            search: filter.search,
            include_archived: filter.include_archived,
            only: None,
        };
        let db = &services(ctx).db;
        let (found, scope) = organisations::list(db, actor, filter, order, &page).await?;
        Ok(OrganisationConnection {
            page: Organisation::page(found),
            total: TotalCount::Organisations(scope),
        })
    }
}
