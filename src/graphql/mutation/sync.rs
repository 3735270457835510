use async_graphql::{Context, Object, Result};
use tokio::sync::watch;

use crate::graphql::types::sync::SyncRun;
use crate::graphql::{caller, services};
use crate::service::sync::{self, Launched, RunCounts};

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
        let (progress, _) = watch::channel(RunCounts::default());
        let launched = sync::launch(services(ctx), actor.into(), progress).await?;
        match launched {
            Launched::AlreadyRunning(run) => Ok(SyncRun(run)),
            Launched::Started { run, .. } if !wait => Ok(SyncRun(run)),
            Launched::Started { finished, .. } => match finished.await {
                Ok(outcome) => Ok(SyncRun(outcome?)),
                Err(err) => Err(crate::error::AppError::Internal(err.into()).into()),
            },
        }
    }
}
