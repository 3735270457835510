//! Whether what was read from the database is still what it holds: the stamp a cache keeps
//! beside what it computed, and compares with the stamp of now before reusing it.
//!
//! A stamp is taken *before* the reads it vouches for. Then a change that committed before the
//! stamp was taken is in what was read, and a change that commits after it gives a different
//! stamp from then on, so equal stamps mean nothing committed in between. How the stamp of now
//! is known depends on `USERHUB_CACHE`:
//!
//! - `on`, on PostgreSQL: the event bus's version (`EventBus::version`), with no database
//!   read. A change is counted on the replica that committed it before the write is
//!   acknowledged, and on every other replica once its `NOTIFY` arrives. While a replica's
//!   `LISTEN` connection is down it hears nothing, so there is no stamp then (nothing is reused).
//! - `strict` on PostgreSQL: one cheap read that changes with every commit, from any process:
//!   the current snapshot (`pg_current_snapshot()`: a new transaction id, or one that ended,
//!   makes it another). A round trip per request, and exact across replicas. Transaction ids
//!   belong to the whole PostgreSQL server, so another database's writes count too: a needless
//!   miss, never a stale answer.
//! - SQLite, `on` and `strict` alike: `PRAGMA data_version` on a connection kept for it. It
//!   moves when any other connection commits, this process's pool and a command-line tool
//!   alike (whose changes no event of this process announces), and costs no round trip.
//! - `off`: no stamp.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use sea_orm::sqlx::{Connection, SqliteConnection};
use sea_orm::{ConnectionTrait, DatabaseBackend, DatabaseConnection, DbErr, Statement};
use tokio::sync::Mutex;
use uuid::Uuid;

use crate::config::CacheMode;
use crate::events::EventBus;

/// Where the data stood when something was read; equal stamps, nothing committed in between.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stamp {
    /// The event bus's version (`USERHUB_CACHE=on`).
    Heard(u64),
    /// What the database said (`USERHUB_CACHE=strict`, and SQLite).
    Stored(Arc<str>),
}

/// What data an answer depends on, for whatever keeps it beside its stamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Footprint {
    /// Anything: current only while nothing at all has changed.
    Everything,
    /// Only this organisation's users and its record, read by a caller whose scope is in the
    /// key: current while no change touched the organisation (a user in it, before or after
    /// the change, the organisation itself, one of its invitations).
    Organisation(Uuid),
}

/// Takes stamps. Cheap to clone.
#[derive(Clone)]
pub struct Freshness {
    inner: Arc<Inner>,
}

struct Inner {
    mode: CacheMode,
    events: EventBus,
    probe: Probe,
}

enum Probe {
    None,
    Postgres(DatabaseConnection),
    /// A connection of its own: `data_version` counts the commits of *other* connections, and
    /// its values mean nothing across connections, so a new connection starts a new epoch.
    Sqlite {
        url: String,
        connection: Mutex<Option<SqliteConnection>>,
        epoch: AtomicU64,
    },
}

impl std::fmt::Debug for Freshness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Freshness")
            .field("mode", &self.inner.mode)
            .finish()
    }
}

impl Freshness {
    pub fn new(
        mode: CacheMode,
        events: EventBus,
        db: &DatabaseConnection,
        database_url: &str,
    ) -> Freshness {
        let probe = match (mode, db.get_database_backend()) {
            (CacheMode::Off, _) | (CacheMode::On, DatabaseBackend::Postgres) => Probe::None,
            // Another connection would open another database: only this process writes this
            // one, and its bus hears every change.
            _ if database_url.contains(":memory:") || database_url.contains("mode=memory") => {
                Probe::None
            }
            (CacheMode::Strict, DatabaseBackend::Postgres) => Probe::Postgres(db.clone()),
            _ => Probe::Sqlite {
                url: database_url.to_owned(),
                connection: Mutex::new(None),
                epoch: AtomicU64::new(0),
            },
        };
        Freshness {
            inner: Arc::new(Inner {
                mode,
                events,
                probe,
            }),
        }
    }

    /// Never a stamp: nothing is reused (for tests of what keeps stamps).
    #[cfg(test)]
    pub fn off(events: EventBus) -> Freshness {
        Freshness {
            inner: Arc::new(Inner {
                mode: CacheMode::Off,
                events,
                probe: Probe::None,
            }),
        }
    }

    /// The stamp of now; `None` when nothing may be reused now (the cache is off, the bus is
    /// not listening, the database could not be asked).
    pub async fn now(&self) -> Option<Stamp> {
        match (self.inner.mode, &self.inner.probe) {
            (CacheMode::Off, _) => None,
            (_, Probe::None) => self
                .inner
                .events
                .is_listening()
                .then(|| Stamp::Heard(self.inner.events.version())),
            _ => match self.stored().await {
                Ok(stamp) => Some(stamp),
                Err(err) => {
                    tracing::warn!(error = %err, "cannot read the database's version: nothing is reused");
                    None
                }
            },
        }
    }

    /// Whether what was read at `stamp` about `footprint` is current still, though other
    /// changes came since: only for an answer confined to one organisation, as far as this
    /// replica's bus has heard (`USERHUB_CACHE=on` on PostgreSQL). A database's stamp says
    /// only whether anything at all changed.
    pub fn untouched_since(&self, footprint: Footprint, stamp: &Stamp) -> bool {
        match (footprint, stamp) {
            (Footprint::Organisation(organisation), Stamp::Heard(version)) => {
                self.inner.events.is_listening()
                    && self.inner.events.untouched_since(organisation, *version)
            }
            _ => false,
        }
    }

    async fn stored(&self) -> Result<Stamp, DbErr> {
        match &self.inner.probe {
            Probe::None => Err(DbErr::Custom("no version probe".to_owned())),
            Probe::Postgres(db) => {
                let row = db
                    .query_one_raw(Statement::from_string(
                        DatabaseBackend::Postgres,
                        "SELECT pg_current_snapshot()::text AS snapshot",
                    ))
                    .await?
                    .ok_or_else(|| DbErr::Custom("no snapshot".to_owned()))?;
                let snapshot: String = row.try_get("", "snapshot")?;
                Ok(Stamp::Stored(snapshot.into()))
            }
            Probe::Sqlite {
                url,
                connection,
                epoch,
            } => {
                let mut connection = connection.lock().await;
                if connection.is_none() {
                    *connection = Some(
                        SqliteConnection::connect(url)
                            .await
                            .map_err(|err| DbErr::Custom(err.to_string()))?,
                    );
                    epoch.fetch_add(1, Ordering::AcqRel);
                }
                let Some(open) = connection.as_mut() else {
                    return Err(DbErr::Custom("no connection".to_owned()));
                };
                match sea_orm::sqlx::query_scalar::<_, i64>("PRAGMA data_version")
                    .fetch_one(open)
                    .await
                {
                    Ok(version) => Ok(Stamp::Stored(
                        format!("{}:{version}", epoch.load(Ordering::Acquire)).into(),
                    )),
                    Err(err) => {
                        // The next stamp comes from a new connection, in a new epoch.
                        *connection = None;
                        Err(DbErr::Custom(err.to_string()))
                    }
                }
            }
        }
    }
}
