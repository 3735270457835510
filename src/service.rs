//! The domain: everything userhub knows and does about users, organisations and their history.
//!
//! Resolvers, webhook handlers and the CLI all call these functions, so one change goes
//! through one code path whatever asked for it. Nothing here knows about GraphQL or HTTP.

pub mod access_ends;
pub mod accounts;
pub mod audit;
pub mod bulk;
pub mod change_feed;
pub mod exports;
pub mod freshness;
pub mod imports;
pub mod invitations;
pub mod live;
pub mod organisations;
pub mod pagination;
pub mod profiles;
pub mod sessions;
pub mod sign_ins;
pub mod stats;
pub mod sync;
pub(crate) mod user_locks;
pub mod users;
pub mod webhooks;
pub mod workload;
mod write;

pub(crate) use write::Write;

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

/// A list's filter narrowed to what one caller may read. Only the service makes one (its
/// `list` functions, through `auth::access`), so the total of a list a caller was shown is
/// counted within that caller's scope too.
#[derive(Debug, Clone)]
pub struct Scoped<F>(F);

impl<F> Scoped<F> {
    pub(in crate::service) fn new(filter: F) -> Scoped<F> {
        Scoped(filter)
    }

    pub fn filter(&self) -> &F {
        &self.0
    }
}

/// A half-open range of moments, as clients filter by them: at or after `from`, before
/// `before`; either end may be left open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct TimeRange {
    pub from: Option<chrono::DateTime<chrono::Utc>>,
    pub before: Option<chrono::DateTime<chrono::Utc>>,
}

impl TimeRange {
    /// The rows whose `column` lies in this range. `field` names the range's end for the
    /// error about a range that ends before it starts: it holds nothing, and is more likely a
    /// mistake than a question.
    pub(crate) fn condition<C: sea_orm::ColumnTrait>(
        &self,
        field: &str,
        column: C,
    ) -> Result<sea_orm::Condition, crate::error::AppError> {
        if let (Some(from), Some(before)) = (self.from, self.before)
            && before <= from
        {
            return Err(crate::error::AppError::validation(
                field,
                format!("must be after the range's start ({})", from.to_rfc3339()),
            ));
        }
        let mut condition = sea_orm::Condition::all();
        if let Some(from) = self.from {
            condition = condition.add(column.gte(from));
        }
        if let Some(before) = self.before {
            condition = condition.add(column.lt(before));
        }
        Ok(condition)
    }
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
