//! One writer per user, from a mutation's Clerk call to its commit.
//!
//! A mutation writes Clerk first; Clerk then sends a webhook about that very change, and the
//! webhook can arrive before the mutation has stored Clerk's answer. Unserialised, the webhook
//! would apply the change first and the audit trail and the live event would credit Clerk
//! (`actor: clerk`, `source: webhook`) instead of the person who made it. With the lock held
//! across the Clerk call and the write, the echo waits, then finds the change stored
//! (`unchanged`).
//!
//! - In the process, a mutex per Clerk id: a webhook to the same replica waits without holding
//!   a database connection.
//! - Across replicas, on PostgreSQL, a transaction-scoped advisory lock: the mutation's
//!   transaction takes it before calling Clerk and writes in that transaction; a webhook's
//!   transaction takes it first thing, so it waits for the mutation to commit or roll back.
//!   It is released by the end of the transaction, so no failure can leave it held.
//!   Such a transaction keeps a pooled connection while Clerk answers, so only a few (a
//!   quarter of the pool) are held that way at once: more mutations wait their turn, and reads
//!   never starve while Clerk is slow.
//! - SQLite has one process, so the mutex is all it needs (a write transaction held over a
//!   Clerk call would stop every other writer).
//!
//! A change that could leave no admin (demoting, suspending or removing an admin) also holds
//! the lock on "the set of admins" (`UserLock::acquire_guarding_admins`), taken before the
//! user's, and checks the rule under it: two admins demoting each other at once, on one
//! replica or two, take turns, and the second sees the first's change. Webhooks never take it
//! (Clerk is the truth), so the order admins-then-user cannot deadlock with them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, Statement,
};
use tokio::sync::{OwnedMutexGuard, OwnedSemaphorePermit, Semaphore};

use entity::user;

use super::Origin;
use super::write::{Write, begin_transaction};
use crate::error::AppError;

/// Names these locks among PostgreSQL's advisory locks (the two-key form: this, then the hash
/// of the Clerk id), apart from the migration and sync locks.
const USER_LOCK_CLASS: i32 = 0x7573_6572;

/// The advisory lock on the set of admins (`ADMINS_LOCK_CLASS`, 0), and its in-process key (no
/// Clerk id starts with a NUL).
const ADMINS_LOCK_CLASS: i32 = 0x6164_6d6e;
const ADMINS_KEY: &str = "\0admins";

/// The locks of one server (or command): the mutexes of the users being written now, and the
/// turns to hold a connection over a Clerk call. Part of `Services`, so two servers in one
/// process (as in the tests) do not share them.
pub(crate) struct UserLocks {
    /// Weak entries: a mutex lives as long as someone holds or waits for it, and dead entries
    /// are swept as the map grows.
    local: Mutex<HashMap<String, Weak<tokio::sync::Mutex<()>>>>,
    /// Turns to hold a connection over a Clerk call: a quarter of the pool, at least four,
    /// always one connection left free. Only PostgreSQL holds connections so.
    holders: Arc<Semaphore>,
}

impl UserLocks {
    pub(crate) fn new(db: &DatabaseConnection) -> UserLocks {
        let turns = if db.get_database_backend() == DbBackend::Postgres {
            let pool = db
                .get_postgres_connection_pool()
                .options()
                .get_max_connections() as usize;
            (pool / 4).max(4).min(pool.saturating_sub(1)).max(1)
        } else {
            1
        };
        UserLocks {
            local: Mutex::default(),
            holders: Arc::new(Semaphore::new(turns)),
        }
    }

    /// This process's turn to write the user.
    pub(crate) async fn local(&self, clerk_id: &str) -> OwnedMutexGuard<()> {
        self.mutex_of(clerk_id).lock_owned().await
    }

    /// This process's turn to write the user, if nobody here is writing them now.
    pub(crate) fn try_local(&self, clerk_id: &str) -> Option<OwnedMutexGuard<()>> {
        self.mutex_of(clerk_id).try_lock_owned().ok()
    }

    fn mutex_of(&self, clerk_id: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut map = match self.local.lock() {
            Ok(map) => map,
            // Entries are inserted whole; a panic elsewhere cannot leave one half-written.
            Err(poisoned) => poisoned.into_inner(),
        };
        if map.len() >= 1024 && map.len().is_power_of_two() {
            map.retain(|_, mutex| mutex.strong_count() > 0);
        }
        match map.get(clerk_id).and_then(Weak::upgrade) {
            Some(mutex) => mutex,
            None => {
                let mutex = Arc::new(tokio::sync::Mutex::new(()));
                map.insert(clerk_id.to_owned(), Arc::downgrade(&mutex));
                mutex
            }
        }
    }
}

/// Takes the user's advisory lock in this transaction, on PostgreSQL; nothing on SQLite.
pub(crate) async fn in_transaction<C: ConnectionTrait>(
    txn: &C,
    clerk_id: &str,
) -> Result<(), DbErr> {
    all_in_transaction(txn, &[clerk_id]).await
}

/// Takes the advisory locks of many users in this transaction, in one statement, on
/// PostgreSQL; nothing on SQLite. They are taken in the order of their keys, so two
/// transactions locking overlapping sets (a batch of deliveries on each of two replicas) wait
/// for each other rather than deadlock.
pub(crate) async fn all_in_transaction<C: ConnectionTrait>(
    txn: &C,
    clerk_ids: &[&str],
) -> Result<(), DbErr> {
    if txn.get_database_backend() != DbBackend::Postgres || clerk_ids.is_empty() {
        return Ok(());
    }
    let ids = serde_json::to_string(clerk_ids).map_err(|err| DbErr::Custom(err.to_string()))?;
    txn.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT count(pg_advisory_xact_lock($1, key)) FROM \
         (SELECT DISTINCT hashtext(id) AS key FROM json_array_elements_text($2::json) AS id \
          ORDER BY key) AS keys",
        [USER_LOCK_CLASS.into(), ids.into()],
    ))
    .await?;
    Ok(())
}

/// A mutation's hold on a user, taken before it calls Clerk.
pub(crate) struct UserLock {
    _local: OwnedMutexGuard<()>,
    /// Held by a change that could leave no admin, before `_local`.
    _admins: Option<OwnedMutexGuard<()>>,
    /// On PostgreSQL, the transaction that holds the advisory lock (the write goes in it), and
    /// its turn among the transactions that hold a connection over a Clerk call.
    held: Option<(DatabaseTransaction, OwnedSemaphorePermit)>,
}

impl UserLock {
    pub(crate) async fn acquire(
        locks: &UserLocks,
        db: &DatabaseConnection,
        clerk_id: &str,
    ) -> Result<UserLock, AppError> {
        let local = locks.local(clerk_id).await;
        let held = if db.get_database_backend() == DbBackend::Postgres {
            let turn = locks.holders.clone().acquire_owned().await.map_err(|_| {
                AppError::Internal(anyhow::anyhow!("the user-lock semaphore is closed"))
            })?;
            let txn = begin_transaction(db).await?;
            in_transaction(&txn, clerk_id).await?;
            Some((txn, turn))
        } else {
            None
        };
        Ok(UserLock {
            _local: local,
            _admins: None,
            held,
        })
    }

    /// `acquire`, holding the set of admins too, for a change that could leave none: call
    /// `ensure_not_last_admin` on the lock before calling Clerk.
    pub(crate) async fn acquire_guarding_admins(
        locks: &UserLocks,
        db: &DatabaseConnection,
        clerk_id: &str,
    ) -> Result<UserLock, AppError> {
        let admins = locks.local(ADMINS_KEY).await;
        let mut lock = UserLock::acquire(locks, db, clerk_id).await?;
        if let Some((txn, _)) = &lock.held {
            txn.execute_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT pg_advisory_xact_lock($1, 0)",
                [ADMINS_LOCK_CLASS.into()],
            ))
            .await?;
        }
        lock._admins = Some(admins);
        Ok(lock)
    }

    /// The last-admin rule, read under this lock (in its transaction on PostgreSQL, which
    /// sees every admin change committed before the lock was granted).
    pub(crate) async fn ensure_not_last_admin(
        &self,
        db: &DatabaseConnection,
        id: uuid::Uuid,
    ) -> Result<user::Model, AppError> {
        let target = match &self.held {
            Some((txn, _)) => {
                let target = super::users::get(txn, id).await?;
                super::users::ensure_not_last_admin(txn, &target).await?;
                target
            }
            None => {
                let target = super::users::get(db, id).await?;
                super::users::ensure_not_last_admin(db, &target).await?;
                target
            }
        };
        Ok(target)
    }

    /// The user and when their access ended, if it has by `now`, read under this lock (in its
    /// transaction on PostgreSQL, which sees every change committed before the lock was
    /// granted).
    pub(crate) async fn read_access(
        &self,
        db: &DatabaseConnection,
        id: uuid::Uuid,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<(user::Model, Option<chrono::DateTime<chrono::Utc>>), AppError> {
        use super::access_ends::ended_at;
        Ok(match &self.held {
            Some((txn, _)) => (
                super::users::get(txn, id).await?,
                ended_at(txn, id, now).await?,
            ),
            None => (
                super::users::get(db, id).await?,
                ended_at(db, id, now).await?,
            ),
        })
    }

    /// The write to store the change in: on PostgreSQL the transaction that holds the lock,
    /// elsewhere a new one; the lock is released when the write ends.
    pub(crate) async fn write(
        self,
        db: &DatabaseConnection,
        origin: &Origin,
    ) -> Result<Write, AppError> {
        let (txn, turn) = match self.held {
            Some((txn, turn)) => (txn, Some(turn)),
            None => (begin_transaction(db).await?, None),
        };
        let hold = Hold {
            _local: self._local,
            _admins: self._admins,
            _turn: turn,
        };
        Ok(Write::in_transaction(txn, origin, Some(hold)))
    }
}

/// What a `Write` keeps of a user lock until it ends.
pub(crate) struct Hold {
    _local: OwnedMutexGuard<()>,
    _admins: Option<OwnedMutexGuard<()>>,
    _turn: Option<OwnedSemaphorePermit>,
}
