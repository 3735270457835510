//! The domain: everything userhub knows and does about users, organisations and their history.
//!
//! Resolvers, webhook handlers and the CLI all call these functions, so one change goes
//! through one code path whatever asked for it. Nothing here knows about GraphQL or HTTP.

pub mod accounts;
pub mod audit;
pub mod invitations;
pub mod organisations;
pub mod pagination;
pub mod sync;
pub(crate) mod user_locks;
pub mod users;
pub mod webhooks;

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
