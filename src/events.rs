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

mod postgres;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use chrono::{DateTime, Utc};
use entity::{sync_run, user};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, TransactionSession};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use uuid::Uuid;

/// Where a change comes from, written into its audit event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// A user id, or `clerk` (webhooks), `sync`, `cli`, `system`.
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
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Api => "api",
            Source::Webhook => "webhook",
            Source::Sync => "sync",
            Source::Cli => "cli",
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
}

/// One committed change to one user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserChange {
    pub kind: ChangeKind,
    /// The user after the change.
    pub user: user::Model,
    /// The organisation the user was in before, when the change moved them: a subscriber of
    /// that organisation sees them leave.
    pub previous_organisation_id: Option<Uuid>,
    /// `api`, `webhook`, `sync` or `cli`.
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
    version: Arc<AtomicU64>,
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
                version: Arc::default(),
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
        let version = Arc::new(AtomicU64::new(0));
        let stop = postgres::listen(
            database_url,
            db,
            local.clone(),
            listening.clone(),
            version.clone(),
        )
        .await?;
        Ok(EventBus {
            inner: Arc::new(Inner {
                local,
                transport: Transport::Postgres { _stop: Some(stop) },
                listening,
                version,
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
                version: Arc::default(),
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
        self.inner.version.load(Ordering::Acquire)
    }

    fn advance(&self) {
        self.inner.version.fetch_add(1, Ordering::AcqRel);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.inner.local.subscribe()
    }

    /// Live subscriptions on this replica.
    pub fn subscriber_count(&self) -> usize {
        self.inner.local.receiver_count()
    }

    /// Commits `txn` and publishes its changes: both or neither.
    pub async fn commit<T>(&self, txn: T, changes: Changes) -> Result<(), DbErr>
    where
        T: ConnectionTrait + TransactionSession,
    {
        if changes.is_empty() {
            return txn.commit().await;
        }
        if self.is_postgres() {
            let users = changes.users.iter().map(postgres::user_payload);
            let records = changes.records.iter().map(postgres::record_payload);
            postgres::notify(&txn, users.chain(records)).await?;
            txn.commit().await?;
            // The NOTIFY advances it again when it comes back; this replica's own readers must
            // not wait for that.
            self.advance();
            return Ok(());
        }
        txn.commit().await?;
        self.advance();
        // No receiver is not a failure: nobody is watching.
        for change in changes.users {
            let _ = self.inner.local.send(Event::User(Arc::new(change)));
        }
        for change in changes.records {
            let _ = self.inner.local.send(Event::Record(change));
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
            self.advance();
            return;
        }
        self.advance();
        let _ = self.inner.local.send(Event::Sync(Arc::new(progress)));
    }
}
