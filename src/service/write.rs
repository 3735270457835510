//! One unit of work: the only way the domain writes.
//!
//! Every change, whatever asked for it, is the same four steps: begin a transaction, write the
//! rows, record an audit event for each thing changed (in that transaction), then commit and
//! publish a change event for each (both or neither, `EventBus::commit`). A `Write` holds the
//! transaction, who is making the change, and the changes to publish, so no path can forget a
//! step or publish what did not commit. Dropping it unfinished rolls everything back.

use entity::{audit_event, invitation, organisation, user};
use sea_orm::{DatabaseTransaction, DbErr, TransactionTrait};

use super::Origin;
use super::audit::{self, Change};
use super::user_locks::Hold;
use crate::error::AppError;
use crate::events::{ChangeKind, Changes, EventBus, RecordChange, UserChange};

pub(crate) struct Write {
    txn: DatabaseTransaction,
    origin: Origin,
    changes: Changes,
    /// Whether an audit event was written: then something changed that readers may have read.
    audited: bool,
    /// A mutation's lock on the user it writes, released when the write ends.
    _hold: Option<Hold>,
}

impl Write {
    /// Begins a write. On SQLite the transaction starts `IMMEDIATE`, taking the write lock at
    /// once: a deferred transaction that reads and then writes can find another writer in the
    /// way and fail with "database is locked" at once, where an immediate one waits its turn
    /// (the busy timeout). PostgreSQL ignores the mode.
    pub(crate) async fn begin<C>(db: &C, origin: &Origin) -> Result<Write, DbErr>
    where
        C: TransactionTrait<Transaction = DatabaseTransaction>,
    {
        Ok(Write::in_transaction(
            begin_transaction(db).await?,
            origin,
            None,
        ))
    }

    /// A write in a transaction already begun (a user lock's, which holds it over a Clerk call).
    pub(super) fn in_transaction(
        txn: DatabaseTransaction,
        origin: &Origin,
        hold: Option<Hold>,
    ) -> Write {
        Write {
            txn,
            origin: origin.clone(),
            changes: Changes::default(),
            audited: false,
            _hold: hold,
        }
    }

    /// The transaction, to read and write rows in.
    pub(crate) fn conn(&self) -> &DatabaseTransaction {
        &self.txn
    }

    /// Records a change in the audit trail, in this write.
    pub(crate) async fn audit(&mut self, change: Change) -> Result<audit_event::Model, AppError> {
        self.audited = true;
        audit::record(&self.txn, &self.origin, change).await
    }

    /// Records many changes in one statement, each with who made it (a sync page's creations,
    /// a batch of webhook deliveries' new users).
    pub(crate) async fn audit_many(
        &mut self,
        changes: Vec<(Origin, Change)>,
    ) -> Result<(), AppError> {
        self.audited |= !changes.is_empty();
        audit::record_many(&self.txn, changes).await
    }

    /// Who makes the changes that follow in this write: one transaction can carry several
    /// deliveries, each its own origin (`webhooks::ingest`).
    pub(crate) fn act_for(&mut self, origin: &Origin) {
        if self.origin != *origin {
            self.origin = origin.clone();
        }
    }

    /// Who makes the changes now.
    pub(crate) fn origin(&self) -> &Origin {
        &self.origin
    }

    /// A user changed from `previous` to `after`: live subscribers hear of it once this
    /// write commits.
    pub(crate) fn user_changed(
        &mut self,
        kind: ChangeKind,
        previous: Option<&user::Model>,
        after: user::Model,
    ) {
        self.changes
            .push(UserChange::new(kind, previous, after, &self.origin));
    }

    /// A user's profile changed (their row did not): live subscribers hear of it as a change
    /// to the user, made at `at`, once this write commits.
    pub(crate) fn profile_changed(&mut self, user: user::Model, at: chrono::DateTime<chrono::Utc>) {
        self.detail_changed(ChangeKind::ProfileUpdated, user, at);
    }

    /// A user's workload changed (an activity allocated, changed or taken away): published as
    /// a change to the user, made at `at`, once this write commits.
    pub(crate) fn workload_changed(
        &mut self,
        user: user::Model,
        at: chrono::DateTime<chrono::Utc>,
    ) {
        self.detail_changed(ChangeKind::WorkloadChanged, user, at);
    }

    fn detail_changed(
        &mut self,
        kind: ChangeKind,
        user: user::Model,
        at: chrono::DateTime<chrono::Utc>,
    ) {
        let mut change = UserChange::new(kind, None, user, &self.origin);
        change.occurred_at = at;
        self.changes.push(change);
    }

    /// An organisation was created or changed: published when this write commits.
    pub(crate) fn organisation_changed(&mut self, organisation: &organisation::Model) {
        self.changes.push_record(RecordChange::Organisation {
            id: organisation.id,
        });
    }

    /// An invitation was created or changed: published when this write commits.
    pub(crate) fn invitation_changed(&mut self, invitation: &invitation::Model) {
        self.changes.push_record(RecordChange::Invitation {
            id: invitation.id,
            organisation_id: invitation.organisation_id,
        });
    }

    /// Commits and publishes; a user lock held by this write is released once both are done.
    pub(crate) async fn commit(self, events: &EventBus) -> Result<(), DbErr> {
        // The response cache reuses an answer until a change is published (`freshness.rs`): a
        // write that changed something and named nothing would leave stale answers behind.
        debug_assert!(
            !self.audited || !self.changes.is_empty(),
            "an audited write names what it changed (user_changed, organisation_changed, \
             invitation_changed)"
        );
        events.commit(self.txn, self.changes).await
    }
}

/// A transaction that will write (`Write::begin` tells why `IMMEDIATE`).
pub(super) async fn begin_transaction<C: TransactionTrait>(
    db: &C,
) -> Result<C::Transaction, DbErr> {
    db.begin_with_options(sea_orm::TransactionOptions {
        sqlite_transaction_mode: Some(sea_orm::SqliteTransactionMode::Immediate),
        ..sea_orm::TransactionOptions::default()
    })
    .await
}
