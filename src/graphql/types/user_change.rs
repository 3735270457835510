use std::sync::Arc;

use async_graphql::{Enum, ID, Object};
use chrono::{DateTime, Utc};

use super::User;
use super::sync::SyncRun;
use crate::events::{self, ChangeKind};

/// What happened to a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[graphql(name = "UserChangeKind")]
pub enum UserChangeKind {
    Created,
    Updated,
    Suspended,
    Unsuspended,
    /// Removed (deleted in Clerk): the row stays, `isActive` is false.
    Deactivated,
    /// Their lecturer profile changed (`User.profile`).
    ProfileUpdated,
    /// An activity was allocated to them, changed or taken away (`User.workload`).
    WorkloadChanged,
    /// They signed in (`lastSignInAt`, `lastActiveAt`, `signIns`).
    SignedIn,
    /// A session of theirs ended (`lastActiveAt`, `signIns`).
    SignedOut,
}

impl From<ChangeKind> for UserChangeKind {
    fn from(kind: ChangeKind) -> UserChangeKind {
        match kind {
            ChangeKind::Created => UserChangeKind::Created,
            ChangeKind::Updated => UserChangeKind::Updated,
            ChangeKind::Suspended => UserChangeKind::Suspended,
            ChangeKind::Unsuspended => UserChangeKind::Unsuspended,
            ChangeKind::Deactivated => UserChangeKind::Deactivated,
            ChangeKind::ProfileUpdated => UserChangeKind::ProfileUpdated,
            ChangeKind::WorkloadChanged => UserChangeKind::WorkloadChanged,
            ChangeKind::SignedIn => UserChangeKind::SignedIn,
            ChangeKind::SignedOut => UserChangeKind::SignedOut,
        }
    }
}

/// One committed change to a user, from any replica.
pub struct UserChange(pub(crate) Arc<events::UserChange>);

#[Object]
impl UserChange {
    /// Its place in the change feed: subscribe with `userChanged(after:)` set to the last
    /// cursor seen to resume from there.
    async fn cursor(&self) -> ID {
        ID(self.0.id.to_string())
    }

    async fn kind(&self) -> UserChangeKind {
        self.0.kind.into()
    }

    /// The user after the change.
    async fn user(&self) -> User {
        User::one(self.0.user.clone())
    }

    /// The organisation the user left, when the change moved them.
    async fn previous_organisation_id(&self) -> Option<ID> {
        self.0.previous_organisation_id.map(|id| ID(id.to_string()))
    }

    /// What made the change: `api`, `webhook`, `sync`, `cli` or `schedule` (an access that
    /// ended).
    async fn source(&self) -> &str {
        &self.0.source
    }

    async fn occurred_at(&self) -> DateTime<Utc> {
        self.0.occurred_at
    }
}

/// Where a sync is.
pub struct SyncProgress(pub(crate) Arc<events::SyncProgress>);

#[Object]
impl SyncProgress {
    async fn run(&self) -> SyncRun {
        SyncRun(self.0.run.clone())
    }

    /// Clerk's user count when the run started; unknown until the run has asked.
    async fn total(&self) -> Option<i64> {
        self.0.total
    }

    /// `seen / total` as a percentage, 100 once the run has ended.
    async fn percent(&self) -> Option<f64> {
        if self.0.run.finished_at.is_some() {
            return Some(100.0);
        }
        let total = self.0.total.filter(|total| *total > 0)?;
        Some((self.0.run.seen.min(total) as f64 * 100.0 / total as f64).clamp(0.0, 100.0))
    }
}
