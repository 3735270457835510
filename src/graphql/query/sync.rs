use async_graphql::{Context, ID, Object, Result};

use crate::graphql::caller;
use crate::graphql::services;
use crate::graphql::types::bulk_job::BulkJob;
use crate::graphql::types::sync::{SyncRun, SyncStatus};
use crate::service::{bulk, parse_id, sync};

#[derive(Default)]
pub struct SyncQuery;

#[Object]
impl SyncQuery {
    /// Clerk against userhub, without changing either. Admins only. Reads every Clerk user.
    async fn sync_status(&self, ctx: &Context<'_>) -> Result<SyncStatus> {
        let actor = caller(ctx).actor()?;
        let db = &services(ctx).db;
        let report = sync::report(services(ctx), actor).await?;
        let in_sync = report.in_sync();
        Ok(SyncStatus {
            clerk_count: report.clerk_count,
            database_count: report.database_count,
            missing_in_database: report.missing_in_database.into(),
            missing_in_clerk: report.missing_in_clerk.into(),
            differing: report.differing.into(),
            unknown_organisations: report.unknown_organisations.into(),
            in_sync,
            last_run: sync::last(db).await?.map(SyncRun),
        })
    }

    /// A bulk job (`suspendUsers`, `updateUsers`, ...), to follow it: the admin or organisation
    /// admin who asked for it, and admins.
    async fn bulk_job(&self, ctx: &Context<'_>, id: ID) -> Result<BulkJob> {
        let actor = caller(ctx).actor()?;
        let id = parse_id("id", &id)?;
        Ok(BulkJob(bulk::read(services(ctx), actor, id).await?))
    }

    /// One sync run, to follow it. Admins only.
    async fn sync_run(&self, ctx: &Context<'_>, id: ID) -> Result<SyncRun> {
        let actor = caller(ctx).actor()?;
        let id = parse_id("id", &id)?;
        Ok(SyncRun(sync::get(&services(ctx).db, actor, id).await?))
    }
}
