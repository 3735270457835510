use async_graphql::{Enum, ID, Object, SimpleObject};
use chrono::{DateTime, Utc};
use entity::role::SyncRunStatus as RunStatus;
use entity::sync_run;

use crate::service::sync;

/// One reconciliation pass over every Clerk user.
#[derive(Clone)]
pub struct SyncRun(pub(crate) sync_run::Model);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum SyncRunStatus {
    Running,
    Succeeded,
    Failed,
}

#[Object]
impl SyncRun {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    async fn status(&self) -> SyncRunStatus {
        match self.0.status {
            RunStatus::Running => SyncRunStatus::Running,
            RunStatus::Succeeded => SyncRunStatus::Succeeded,
            RunStatus::Failed => SyncRunStatus::Failed,
        }
    }

    async fn started_at(&self) -> DateTime<Utc> {
        self.0.started_at
    }

    async fn finished_at(&self) -> Option<DateTime<Utc>> {
        self.0.finished_at
    }

    /// Clerk users read.
    async fn seen(&self) -> i64 {
        self.0.seen
    }

    async fn created(&self) -> i64 {
        self.0.created
    }

    async fn updated(&self) -> i64 {
        self.0.updated
    }

    /// Users gone from Clerk, deactivated here after the complete pass.
    async fn deactivated(&self) -> i64 {
        self.0.deactivated
    }

    async fn error(&self) -> Option<&str> {
        self.0.error.as_deref()
    }

    /// A user id, `cli` or `system`.
    async fn triggered_by(&self) -> &str {
        &self.0.triggered_by
    }
}

/// One kind of difference between Clerk and userhub: how many, and up to 20 emails.
#[derive(SimpleObject)]
pub struct SyncDrift {
    pub count: i64,
    pub sample: Vec<String>,
}

impl From<sync::Drift> for SyncDrift {
    fn from(drift: sync::Drift) -> SyncDrift {
        SyncDrift {
            count: drift.count,
            sample: drift.sample,
        }
    }
}

/// Clerk against userhub, now: what a sync would change.
#[derive(SimpleObject)]
pub struct SyncStatus {
    pub clerk_count: i64,
    /// Active users in userhub.
    pub database_count: i64,
    /// In Clerk but not (or not active) here.
    pub missing_in_database: SyncDrift,
    /// Active here but gone from Clerk.
    pub missing_in_clerk: SyncDrift,
    /// In both, with different data.
    pub differing: SyncDrift,
    /// Users whose organisation in Clerk does not exist here (kept unassigned).
    pub unknown_organisations: SyncDrift,
    pub in_sync: bool,
    pub last_run: Option<SyncRun>,
}
