use async_graphql::{Enum, ID, Object};
use chrono::{DateTime, Utc};
use entity::bulk_job;

use crate::service::bulk::{self, UserOutcome};

/// Where a bulk job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum BulkJobStatus {
    Running,
    Succeeded,
    /// Stopped: its `error` says why (the requester lost the right, the database failed).
    Failed,
}

/// What became, or would become, of one user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum BulkOutcomeKind {
    /// A dry run's plan, or a change not yet made.
    WouldChange,
    Changed,
    Unchanged,
    /// `code` and `message` say why, as the single operation would.
    Refused,
}

/// What an import does with one line of its file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum ImportAction {
    /// Nobody (that the caller may see) has the address: invite them.
    Invite,
    /// Someone has the address: set the line's names, role, organisation and staff id.
    Update,
}

/// A bulk operation on many users, with each user's outcome.
pub struct BulkJob(pub(crate) bulk_job::Model);

#[Object]
impl BulkJob {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    /// `suspend`, `unsuspend`, `remove`, `update` or `import`.
    async fn kind(&self) -> &str {
        &self.0.kind
    }

    async fn status(&self) -> BulkJobStatus {
        match self.0.status.as_str() {
            "running" => BulkJobStatus::Running,
            "succeeded" => BulkJobStatus::Succeeded,
            _ => BulkJobStatus::Failed,
        }
    }

    /// A plan only: nothing was written and Clerk was not asked.
    async fn dry_run(&self) -> bool {
        self.0.dry_run
    }

    /// The user who asked for it.
    async fn requested_by(&self) -> ID {
        ID(self.0.requested_by.to_string())
    }

    async fn total(&self) -> i32 {
        self.0.total
    }

    /// Users dealt with so far.
    async fn done(&self) -> i32 {
        self.0.done
    }

    /// Changed (a dry run: would change).
    async fn changed(&self) -> i32 {
        self.0.changed
    }

    async fn unchanged(&self) -> i32 {
        self.0.unchanged
    }

    async fn refused(&self) -> i32 {
        self.0.refused
    }

    /// Each user's outcome, in the order they were named (by email for a filter; by line for
    /// an import). A dry run's are in the mutation's answer only: read again with `bulkJob`,
    /// a dry run has its counts and no results. Jobs are kept 30 days, dry runs one.
    async fn results(&self) -> Vec<BulkOutcome> {
        bulk::outcomes(&self.0)
            .into_iter()
            .map(BulkOutcome)
            .collect()
    }

    async fn error(&self) -> Option<&str> {
        self.0.error.as_deref()
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    async fn finished_at(&self) -> Option<DateTime<Utc>> {
        self.0.finished_at
    }
}

/// One user's outcome in a bulk job.
pub struct BulkOutcome(UserOutcome);

#[Object]
impl BulkOutcome {
    /// Null for an import's line that invites someone new, or names nobody.
    async fn user_id(&self) -> Option<ID> {
        self.0.user_id.map(|id| ID(id.to_string()))
    }

    /// An import's line in its file (the header is line 1).
    async fn line(&self) -> Option<i32> {
        self.0.line.map(|line| line as i32)
    }

    /// What an import does on the line: invite someone new or update who is there.
    async fn action(&self) -> Option<ImportAction> {
        match self.0.action.as_deref() {
            Some("invite") => Some(ImportAction::Invite),
            Some("update") => Some(ImportAction::Update),
            _ => None,
        }
    }

    /// The invitation an import's line sent (or found pending: already invited).
    async fn invitation_id(&self) -> Option<ID> {
        self.0.invitation_id.map(|id| ID(id.to_string()))
    }

    /// Empty for an id that is no user.
    async fn email(&self) -> &str {
        &self.0.email
    }

    async fn outcome(&self) -> BulkOutcomeKind {
        match self.0.outcome.as_str() {
            "would_change" => BulkOutcomeKind::WouldChange,
            "changed" => BulkOutcomeKind::Changed,
            "unchanged" => BulkOutcomeKind::Unchanged,
            _ => BulkOutcomeKind::Refused,
        }
    }

    /// The error code of a refusal (`FORBIDDEN`, `CONFLICT`, `NOT_FOUND`, `BAD_USER_INPUT`, ...).
    async fn code(&self) -> Option<&str> {
        self.0.code.as_deref()
    }

    /// Why it was refused; otherwise a remark, if any ("already invited").
    async fn message(&self) -> Option<&str> {
        self.0.message.as_deref()
    }
}
