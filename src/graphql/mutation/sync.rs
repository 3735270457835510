use std::sync::Arc;

use async_graphql::{Context, Object, Result};
use sea_orm::DatabaseConnection;
use tokio::sync::watch;
use tracing::Instrument;

use crate::clerk::ClerkClient;
use crate::events::EventBus;
use crate::graphql::caller;
use crate::graphql::types::sync::SyncRun;
use crate::metrics::Metrics;
use crate::service::sync::{self, StaleAfter, Started};

#[derive(Default)]
pub struct SyncMutation;

#[Object]
impl SyncMutation {
    /// Reconciles userhub with every Clerk user. Admins only. Returns the run at once (follow
    /// it with `syncRun`), or when `wait` is true once it has finished. While a run is under
    /// way, on any replica, this returns that run instead of starting another.
    async fn sync_users(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = false)] wait: bool,
    ) -> Result<SyncRun> {
        let actor = caller(ctx).actor()?;
        actor.require_admin()?;
        let db = ctx.data_unchecked::<DatabaseConnection>().clone();
        let clerk = ctx.data_unchecked::<ClerkClient>().clone();
        let events = ctx.data_unchecked::<EventBus>().clone();
        let metrics = ctx.data_unchecked::<Arc<Metrics>>().clone();
        let StaleAfter(stale_after) = *ctx.data_unchecked::<StaleAfter>();
        let started = match sync::start(&db, &actor.user.id.to_string(), stale_after).await? {
            Started::AlreadyRunning(run) => return Ok(SyncRun(run)),
            Started::New(run) => run,
        };
        let running = started.clone();
        // The run's log lines carry the id of the request that started it, and the run's.
        let span = tracing::info_span!("sync", run_id = %started.id);
        let task = tokio::spawn(
            async move {
                let (progress, _) = watch::channel(sync::RunCounts::default());
                let outcome =
                    sync::run(&db, &clerk, &events, started, &progress, stale_after).await;
                match &outcome {
                    Ok(_) => metrics.count_sync_run("succeeded"),
                    Err(err) => {
                        metrics.count_sync_run("failed");
                        tracing::error!(error = %err, "the sync failed");
                    }
                }
                outcome
            }
            .instrument(span),
        );
        if !wait {
            return Ok(SyncRun(running));
        }
        match task.await {
            Ok(outcome) => Ok(SyncRun(outcome?)),
            Err(err) => Err(crate::error::AppError::Internal(err.into()).into()),
        }
    }
}
