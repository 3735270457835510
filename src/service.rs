//! The domain: everything userhub knows and does about users, organisations and their history.
//!
//! Resolvers, webhook handlers and the CLI all call these functions, so one change goes
//! through one code path whatever asked for it. Nothing here knows about GraphQL or HTTP.

pub mod accounts;
pub mod audit;
pub mod invitations;
pub mod organisations;
pub mod pagination;
pub mod sessions;
pub mod sync;
pub(crate) mod user_locks;
pub mod users;
pub mod webhooks;

use std::sync::Arc;
use std::time::Duration;

use sea_orm::DatabaseConnection;
use uuid::Uuid;

use crate::clerk::ClerkClient;
use crate::events::EventBus;
use crate::metrics::Metrics;
use user_locks::UserLocks;

/// What the domain works with, built once per server (or per command) and handed whole to the
/// entry points that call Clerk or lock users: resolvers find it in the schema's data, the
/// webhook route in its state, the CLI builds its own. Cheap to clone.
#[derive(Clone)]
pub struct Services {
    pub db: DatabaseConnection,
    pub clerk: ClerkClient,
    /// Committed changes, to live subscribers on every replica.
    pub events: EventBus,
    pub metrics: Arc<Metrics>,
    /// How long a running sync may go without a heartbeat before it counts as interrupted
    /// (`USERHUB_SYNC_STALE_AFTER_SECONDS`).
    pub sync_stale_after: Duration,
    /// The users being written now, in this process (`user_locks.rs`).
    pub(crate) locks: Arc<UserLocks>,
}

impl Services {
    pub fn new(
        db: DatabaseConnection,
        clerk: ClerkClient,
        events: EventBus,
        metrics: Arc<Metrics>,
        sync_stale_after: Duration,
    ) -> Services {
        let locks = Arc::new(UserLocks::new(&db));
        Services {
            db,
            clerk,
            events,
            metrics,
            sync_stale_after,
            locks,
        }
    }
}

// Who made a change travels with its event as well as its audit entry, so it is defined
// with the events, below this layer.
pub use crate::events::{Origin, Source};

/// Begins a transaction that will write. On SQLite it starts `IMMEDIATE`, taking the write
/// lock at once: a deferred transaction that reads and then writes can find another writer in
/// the way and fail with "database is locked" at once, where an immediate one waits its turn
/// (the busy timeout). PostgreSQL ignores the mode.
pub(crate) async fn begin_write<C: sea_orm::TransactionTrait>(
    db: &C,
) -> Result<C::Transaction, sea_orm::DbErr> {
    db.begin_with_options(sea_orm::TransactionOptions {
        sqlite_transaction_mode: Some(sea_orm::SqliteTransactionMode::Immediate),
        ..sea_orm::TransactionOptions::default()
    })
    .await
}

/// Parses an id given by a client.
pub fn parse_id(field: &str, value: &str) -> Result<Uuid, crate::error::AppError> {
    Uuid::parse_str(value.trim()).map_err(|_| {
        crate::error::AppError::validation(field, format!("`{value}` is not a valid id"))
    })
}

/// Now, cut to microseconds: what both databases store, so a value read back equals the value
/// written.
pub fn now() -> chrono::DateTime<chrono::Utc> {
    use chrono::{SubsecRound, Utc};
    Utc::now().trunc_subsecs(6)
}
