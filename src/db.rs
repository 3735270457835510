//! Connecting to the database, counting its statements, and migrating it.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use migration::{Migrator, MigratorTrait};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, DbErr,
    TransactionTrait,
};

use crate::metrics::Metrics;

/// Opens the pool and wires every statement into `metrics`.
pub async fn connect(
    database_url: &str,
    max_connections: u32,
    metrics: Arc<Metrics>,
) -> Result<DatabaseConnection, DbErr> {
    let mut options = ConnectOptions::new(database_url);
    options
        .max_connections(max_connections)
        .min_connections(1)
        .connect_timeout(Duration::from_secs(5))
        .acquire_timeout(Duration::from_secs(5))
        .sqlx_logging(false)
        // A connection taken from the pool must not be inside a transaction. One was, after a
        // statement failed on a full disk: sqlx still counted a transaction open on it, and so
        // did SQLite. Reused, its next transaction opened as a savepoint of that one and its
        // commit committed nothing: writes acknowledged through it were seen by it alone
        // (storage_faults.rs caught that). Such a connection is closed instead, which rolls
        // it back. (One whose rollback is merely still queued is closed too: rare, cheap.)
        .map_sqlx_sqlite_before_acquire(|connection, _| {
            Box::pin(async move {
                use sea_orm::sqlx::Connection as _;
                let in_transaction = connection.is_in_transaction();
                if in_transaction {
                    tracing::debug!("closing a pooled SQLite connection left inside a transaction");
                }
                Ok(!in_transaction)
            })
        });
    let mut db = Database::connect(options).await?;
    if db.get_database_backend() == DbBackend::Sqlite {
        // WAL lets readers run beside the writer; the busy timeout makes a second writer wait
        // for the first instead of failing at once.
        db.execute_unprepared(
            "PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON;",
        )
        .await?;
    }
    db.set_metric_callback(move |info| {
        metrics.db_statements.fetch_add(1, Ordering::Relaxed);
        metrics.db_statement_seconds.observe(info.elapsed);
        metrics
            .db_statement_micros
            .fetch_add(info.elapsed.as_micros() as u64, Ordering::Relaxed);
        if info.failed {
            metrics
                .db_statement_failures
                .fetch_add(1, Ordering::Relaxed);
        }
    });
    Ok(db)
}

/// An arbitrary constant that names userhub's migration lock among PostgreSQL advisory locks.
const MIGRATION_LOCK: i64 = 0x7573_6572_6875_6201;

/// Applies every pending migration. On PostgreSQL the migrations run inside one transaction
/// that first takes an advisory lock, so replicas starting together migrate one at a time and
/// the later ones find nothing left to do.
pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    match db.get_database_backend() {
        DbBackend::Postgres => {
            let txn = db.begin().await?;
            txn.execute_unprepared(&format!("SELECT pg_advisory_xact_lock({MIGRATION_LOCK})"))
                .await?;
            Migrator::up(&txn, None).await?;
            txn.commit().await
        }
        _ => Migrator::up(db, None).await,
    }
}

/// True when every migration this binary knows has been applied.
pub async fn migrations_current(db: &DatabaseConnection) -> Result<bool, DbErr> {
    Ok(Migrator::get_pending_migrations(db).await?.is_empty())
}
