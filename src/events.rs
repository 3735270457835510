//! The change-event bus (docs/architecture.md, rule 5): every committed change, whatever made
//! it (a mutation, a webhook, a sync, the command line), is published once, after its
//! transaction commits, to every live subscriber on every replica: a user's change whole, an
//! organisation's or an invitation's as what it touched (`RecordChange`), for whatever keeps
//! answers derived from them.
//!
//! - On SQLite the bus is in-process: one server process owns the file.
//! - On PostgreSQL a change is a `NOTIFY` sent inside the transaction that makes it, so it is
//!   delivered if and only if the change commits; each replica `LISTEN`s on one connection and
//!   fans the events out to its own subscribers (`postgres.rs`). The replica that made the
//!   change hears it the same way as the others, so every replica sees one order.
//!
//! Within a replica the fan-out is a `tokio::sync::broadcast` ring buffer: publishing never
//! waits for a subscriber, the memory is the ring's and not per subscriber, and a subscriber
//! that falls further behind than the ring holds is told it missed events (`Event::Missed`)
//! instead of being skipped past them in silence.

mod feed;
mod postgres;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Utc};
use entity::{sync_run, user};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, TransactionSession};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use uuid::Uuid;

/// Where a change comes from, written into its audit event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// A user id, or `clerk` (webhooks), `sync`, `cli`, `system` (scheduled jobs).
    pub actor: String,
    pub source: Source,
    /// The request id or svix id that caused the change.
    pub correlation_id: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Api,
    Webhook,
    Sync,
    Cli,
    /// A scheduled job of userhub's own (an access that ended).
    Schedule,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Api => "api",
            Source::Webhook => "webhook",
            Source::Sync => "sync",
            Source::Cli => "cli",
            Source::Schedule => "schedule",
        }
    }
}

impl Origin {
    pub fn user(user_id: Uuid, correlation_id: Option<String>) -> Origin {
        Origin {
            actor: user_id.to_string(),
            source: Source::Api,
            correlation_id,
        }
    }

    /// userhub's own scheduled job, `what` naming the job and its subject (the audit's
    /// correlation id).
    pub fn schedule(what: String) -> Origin {
        Origin {
            actor: "system".to_owned(),
            source: Source::Schedule,
            correlation_id: Some(what),
        }
    }

    pub fn cli() -> Origin {
        Origin {
            actor: "cli".to_owned(),
            source: Source::Cli,
            correlation_id: None,
        }
    }
}

/// What happened to a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ChangeKind {
    Created,
    Updated,
    Suspended,
    Unsuspended,
    Deactivated,
    /// Their lecturer profile (staff id, contract, workload target) changed; the user's own
    /// row did not.
    ProfileUpdated,
    /// An activity was allocated to them, changed or taken away; the user's own row did not
    /// change.
    WorkloadChanged,
    /// They signed in (a Clerk session began): `lastSignInAt` and `lastActiveAt` moved.
    SignedIn,
    /// A session of theirs ended: `lastActiveAt` moved.
    SignedOut,
}

/// One committed change to one user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserChange {
    /// Its place in the change feed (`service::change_feed`), taken as it commits: the cursor
    /// a subscriber resumes from.
    #[serde(default)]
    pub id: Uuid,
    pub kind: ChangeKind,
    /// The user after the change.
    pub user: user::Model,
    /// The organisation the user was in before, when the change moved them: a subscriber of
    /// that organisation sees them leave.
    pub previous_organisation_id: Option<Uuid>,
    /// `api`, `webhook`, `sync`, `cli` or `schedule`.
    pub source: String,
    pub occurred_at: DateTime<Utc>,
}

impl UserChange {
    pub fn new(
        kind: ChangeKind,
        before: Option<&user::Model>,
        after: user::Model,
        origin: &Origin,
    ) -> UserChange {
        let previous_organisation_id = before
            .and_then(|before| before.organisation_id)
            .filter(|previous| after.organisation_id != Some(*previous));
        UserChange {
            id: Uuid::nil(),
            kind,
            occurred_at: after.updated_at,
            user: after,
            previous_organisation_id,
            source: origin.source.as_str().to_owned(),
        }
    }

    /// The organisations whose subscribers see this change.
    pub fn concerns_organisation(&self, organisation_id: Uuid) -> bool {
        self.user.organisation_id == Some(organisation_id)
            || self.previous_organisation_id == Some(organisation_id)
    }
}

/// Where a sync is: its run row as last written, and Clerk's count when it started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncProgress {
    pub run: sync_run::Model,
    pub total: Option<i64>,
}

/// A committed change to an organisation or an invitation: which record it touched, and the
/// organisation whose answers it can alter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "record", rename_all = "snake_case")]
pub enum RecordChange {
    Organisation {
        id: Uuid,
    },
    Invitation {
        id: Uuid,
        organisation_id: Option<Uuid>,
    },
}

/// Whose answers a change can alter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Touch {
    /// Anything: events may have been lost.
    Everything,
    /// Answers about these organisations' users or records, and answers not confined to one
    /// organisation (which every change alters).
    Organisations([Option<Uuid>; 2]),
}

impl Touch {
    /// A change to no organisation's users or records (a user in none, a sync's progress):
    /// it alters only answers not confined to one organisation.
    const NO_ORGANISATION: Touch = Touch::Organisations([None, None]);
}

impl RecordChange {
    fn organisation_id(&self) -> Option<Uuid> {
        match *self {
            RecordChange::Organisation { id } => Some(id),
            RecordChange::Invitation {
                organisation_id, ..
            } => organisation_id,
        }
    }
}

/// What subscribers receive.
#[derive(Debug, Clone)]
pub enum Event {
    User(Arc<UserChange>),
    Record(RecordChange),
    Sync(Arc<SyncProgress>),
    /// Events may have been lost: the replica's connection to PostgreSQL dropped and was made
    /// again. A subscriber cannot know what it missed, so it is told.
    Missed,
}

impl Event {
    /// Whether this event can alter what is known of one organisation: a change to its users,
    /// record or invitations, or events lost.
    pub fn may_concern_organisation(&self, organisation_id: Uuid) -> bool {
        match self {
            Event::User(change) => change.concerns_organisation(organisation_id),
            Event::Record(change) => change.organisation_id() == Some(organisation_id),
            Event::Sync(_) => false,
            Event::Missed => true,
        }
    }

    fn touch(&self) -> Touch {
        match self {
            Event::User(change) => {
                Touch::Organisations([change.user.organisation_id, change.previous_organisation_id])
            }
            Event::Record(change) => Touch::Organisations([change.organisation_id(), None]),
            Event::Sync(_) => Touch::NO_ORGANISATION,
            Event::Missed => Touch::Everything,
        }
    }
}

/// Where a replica's view of the data is: a version that advances with every change it hears
/// of, and the version at which each organisation was last touched. An answer computed at
/// version `v` is current while the version is still `v`; an answer that depends only on one
/// organisation (`graphql/cache.rs`, `Footprint`) is current while that organisation was last
/// touched at or before `v`, whatever else changed since.
///
/// A change advances the version first and records what it touched second. A reader takes
/// its version before it reads the database, so a change that committed after that read has a
/// later version, and once it is recorded (before the write is acknowledged, on the replica
/// that made it) the answer is stale.
#[derive(Debug, Default)]
pub(crate) struct Versions {
    now: AtomicU64,
    /// The version of the last change that may have altered anything.
    everything_at: AtomicU64,
    /// The version of the last change to each organisation's users, record or invitations.
    /// Grows by one entry per organisation ever changed.
    organisations_at: Mutex<HashMap<Uuid, u64>>,
}

impl Versions {
    fn advance(&self, touch: Touch) {
        let version = self.now.fetch_add(1, Ordering::AcqRel) + 1;
        match touch {
            Touch::Everything => {
                self.everything_at.fetch_max(version, Ordering::AcqRel);
            }
            Touch::Organisations(organisations) => {
                self.touch_organisations(version, organisations.into_iter().flatten());
            }
        }
    }

    fn touch_organisations(&self, version: u64, organisations: impl Iterator<Item = Uuid>) {
        let mut touched = None;
        for organisation in organisations {
            let at = touched
                .get_or_insert_with(|| {
                    self.organisations_at
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                })
                .entry(organisation)
                .or_insert(version);
            *at = (*at).max(version);
        }
    }

    fn now(&self) -> u64 {
        self.now.load(Ordering::Acquire)
    }

    /// Whether nothing that can alter answers about `organisation` alone happened after
    /// `version`, as far as this replica has heard.
    fn untouched_since(&self, organisation: Uuid, version: u64) -> bool {
        if self.everything_at.load(Ordering::Acquire) > version {
            return false;
        }
        let organisations = self
            .organisations_at
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        organisations
            .get(&organisation)
            .is_none_or(|at| *at <= version)
    }

    /// Hands a heard event to `local`, having counted it.
    fn hear(&self, local: &broadcast::Sender<Event>, event: Event) {
        self.advance(event.touch());
        let _ = local.send(event);
    }
}

/// The changes a transaction makes, published when it commits.
#[derive(Debug, Default)]
pub struct Changes {
    users: Vec<UserChange>,
    records: Vec<RecordChange>,
}

impl Changes {
    pub fn push(&mut self, change: UserChange) {
        self.users.push(change);
    }

    pub fn push_record(&mut self, change: RecordChange) {
        self.records.push(change);
    }

    pub fn is_empty(&self) -> bool {
        self.users.is_empty() && self.records.is_empty()
    }

    /// The organisations these changes touch.
    fn organisations(&self) -> impl Iterator<Item = Uuid> + '_ {
        let users = self
            .users
            .iter()
            .flat_map(|change| [change.user.organisation_id, change.previous_organisation_id]);
        let records = self.records.iter().map(RecordChange::organisation_id);
        users.chain(records).flatten()
    }
}

/// The bus. Cheap to clone; every clone is the same bus.
#[derive(Clone)]
pub struct EventBus {
    inner: Arc<Inner>,
}

struct Inner {
    local: broadcast::Sender<Event>,
    transport: Transport,
    /// False while a replica's `LISTEN` connection is being made again: changes committed
    /// then reach no subscriber here.
    listening: Arc<AtomicBool>,
    /// Advances with every change this replica hears of (`EventBus::version`).
    versions: Arc<Versions>,
}

enum Transport {
    InProcess,
    /// Holds the listener task's stop signal, when this process listens: dropping the last
    /// clone of the bus stops it.
    Postgres {
        _stop: Option<tokio::sync::oneshot::Sender<()>>,
    },
}

impl std::fmt::Debug for EventBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventBus")
            .field("postgres", &self.is_postgres())
            .field("subscribers", &self.subscriber_count())
            .finish()
    }
}

impl EventBus {
    /// A bus for one process (SQLite).
    pub fn in_process(capacity: usize) -> EventBus {
        let (local, _) = broadcast::channel(capacity.max(16));
        EventBus {
            inner: Arc::new(Inner {
                local,
                transport: Transport::InProcess,
                listening: Arc::new(AtomicBool::new(true)),
                versions: Arc::default(),
            }),
        }
    }

    /// A bus shared by every replica on this PostgreSQL database. Returns once this replica
    /// listens, so nothing committed after it is missed.
    pub async fn postgres(
        database_url: &str,
        db: DatabaseConnection,
        capacity: usize,
    ) -> Result<EventBus, DbErr> {
        let (local, _) = broadcast::channel(capacity.max(16));
        let listening = Arc::new(AtomicBool::new(false));
        let versions = Arc::new(Versions::default());
        let stop = postgres::listen(
            database_url,
            db,
            local.clone(),
            listening.clone(),
            versions.clone(),
        )
        .await?;
        Ok(EventBus {
            inner: Arc::new(Inner {
                local,
                transport: Transport::Postgres { _stop: Some(stop) },
                listening,
                versions,
            }),
        })
    }

    /// The bus a database calls for: `LISTEN/NOTIFY` on PostgreSQL, in-process otherwise.
    pub async fn for_database(
        database_url: &str,
        db: &DatabaseConnection,
        capacity: usize,
    ) -> Result<EventBus, DbErr> {
        match db.get_database_backend() {
            sea_orm::DatabaseBackend::Postgres => {
                EventBus::postgres(database_url, db.clone(), capacity).await
            }
            _ => Ok(EventBus::in_process(capacity)),
        }
    }

    /// A bus that publishes and never listens: for a command-line tool that changes users
    /// while servers run.
    pub fn publisher(db: &DatabaseConnection) -> EventBus {
        let (local, _) = broadcast::channel(16);
        let transport = match db.get_database_backend() {
            sea_orm::DatabaseBackend::Postgres => Transport::Postgres { _stop: None },
            _ => Transport::InProcess,
        };
        EventBus {
            inner: Arc::new(Inner {
                local,
                transport,
                listening: Arc::new(AtomicBool::new(true)),
                versions: Arc::default(),
            }),
        }
    }

    fn is_postgres(&self) -> bool {
        matches!(self.inner.transport, Transport::Postgres { .. })
    }

    /// Whether changes committed now reach this replica's subscribers: false only while a
    /// lost `LISTEN` connection is being made again.
    pub fn is_listening(&self) -> bool {
        self.inner.listening.load(Ordering::Acquire)
    }

    /// Where this replica's view of the data is: it advances when a change commits here
    /// (before `commit` returns, so before the write is acknowledged), when another replica's
    /// change is heard, and when the stream was lost and changes may have been missed. An
    /// answer computed at one version is current while the version stays the same, as far as
    /// this replica has heard (another replica's change counts once its `NOTIFY` arrives):
    /// what a cache of answers checks before it reuses one.
    pub fn version(&self) -> u64 {
        self.inner.versions.now()
    }

    /// Whether nothing that can alter an answer about `organisation`'s users alone happened
    /// after `version` (`Versions`): such an answer computed then is current still.
    pub fn untouched_since(&self, organisation: Uuid, version: u64) -> bool {
        self.inner.versions.untouched_since(organisation, version)
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.inner.local.subscribe()
    }

    /// Live subscriptions on this replica.
    pub fn subscriber_count(&self) -> usize {
        self.inner.local.receiver_count()
    }

    /// Commits `txn` and publishes its changes: both or neither.
    pub async fn commit<T>(&self, txn: T, mut changes: Changes) -> Result<(), DbErr>
    where
        T: ConnectionTrait + TransactionSession,
    {
        if changes.is_empty() {
            return txn.commit().await;
        }
        // Last before the commit, so the feed's order is the commits' order but for the
        // moment a commit takes (`service::change_feed::COMMIT_SKEW`).
        feed::record(&txn, &mut changes.users).await?;
        if self.is_postgres() {
            let users = changes.users.iter().map(postgres::user_payload);
            let records = changes.records.iter().map(postgres::record_payload);
            postgres::notify(&txn, users.chain(records)).await?;
            txn.commit().await?;
            // The NOTIFY advances it again when it comes back; this replica's own readers must
            // not wait for that.
            let versions = &self.inner.versions;
            let version = versions.now.fetch_add(1, Ordering::AcqRel) + 1;
            versions.touch_organisations(version, changes.organisations());
            return Ok(());
        }
        txn.commit().await?;
        // No receiver is not a failure: nobody is watching.
        for change in changes.users {
            let event = Event::User(Arc::new(change));
            self.inner.versions.hear(&self.inner.local, event);
        }
        for change in changes.records {
            self.inner
                .versions
                .hear(&self.inner.local, Event::Record(change));
        }
        Ok(())
    }

    /// Tells every replica where a sync is. Progress is a best-effort signal (the run row is
    /// the record), so a failure to send it is logged, not returned.
    pub async fn publish_sync_progress<C: ConnectionTrait>(&self, db: &C, progress: SyncProgress) {
        if self.is_postgres() {
            if let Err(err) =
                postgres::notify(db, std::iter::once(postgres::sync_payload(&progress))).await
            {
                tracing::warn!(error = %err, "cannot publish the sync's progress");
            }
            self.inner.versions.advance(Touch::NO_ORGANISATION);
            return;
        }
        let event = Event::Sync(Arc::new(progress));
        self.inner.versions.hear(&self.inner.local, event);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_organisation_is_untouched_until_a_change_names_it_before_or_after() {
        let versions = Versions::default();
        let (physics, chemistry, biology) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let read_at = versions.now();
        assert!(versions.untouched_since(physics, read_at));

        // A change to a user in no organisation, a sync's progress, Chemistry's record.
        versions.advance(Touch::NO_ORGANISATION);
        versions.advance(Touch::Organisations([Some(chemistry), None]));
        assert!(versions.now() > read_at);
        assert!(versions.untouched_since(physics, read_at));
        assert!(!versions.untouched_since(chemistry, read_at));

        // A user moved from Physics to Biology touches both.
        let moved_at = versions.now();
        versions.advance(Touch::Organisations([Some(biology), Some(physics)]));
        assert!(!versions.untouched_since(physics, moved_at));
        assert!(!versions.untouched_since(biology, moved_at));
        assert!(versions.untouched_since(chemistry, moved_at));
        // An answer read after the change is current again.
        assert!(versions.untouched_since(physics, versions.now()));

        // Events lost: nothing read before is current.
        let lost_at = versions.now();
        versions.advance(Touch::Everything);
        assert!(!versions.untouched_since(chemistry, lost_at));
        assert!(versions.untouched_since(chemistry, versions.now()));
    }
}
