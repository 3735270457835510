//! Access with an end date (`accessUntil`, a contract's end): once it has passed, the user is
//! suspended in Clerk (banned: their sessions end and they cannot sign in), audited as
//! `user.suspended` by `system` with source `schedule`, and published as any suspension is.
//!
//! Every replica runs the job (`sweep`, every `USERHUB_ACCESS_SWEEP_MS`); it is idempotent
//! across them: each user is suspended under the user's lock (`user_locks.rs`, a PostgreSQL
//! advisory lock across replicas), and read again under it, so a user another replica has
//! just suspended is seen suspended and Clerk is not called twice.
//!
//! A user whose access has ended stays suspended: `unsuspendUser` is refused until their
//! `accessUntil` is moved on or cleared, and a ban lifted in Clerk directly is put back by the
//! next sweep.

use chrono::{DateTime, Utc};
use entity::{lecturer_profile, user};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, JoinType, QueryFilter, QueryOrder, QuerySelect,
    RelationTrait,
};
use uuid::Uuid;

use super::accounts;
use super::{Origin, Services};
use crate::error::AppError;

/// Users suspended in one sweep at the most; the next sweep takes the rest.
const SWEEP_BATCH: u64 = 100;

/// When this user's access ended, if it has (their `accessUntil` is at or before `now`).
pub async fn ended_at<C: ConnectionTrait>(
    conn: &C,
    user_id: Uuid,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, AppError> {
    Ok(lecturer_profile::Entity::find_by_id(user_id)
        .one(conn)
        .await?
        .and_then(|profile| profile.access_until)
        .filter(|until| *until <= now))
}

/// The active, unsuspended users whose access has ended by `now`, earliest end first.
async fn due<C: ConnectionTrait>(
    conn: &C,
    now: DateTime<Utc>,
) -> Result<Vec<(Uuid, DateTime<Utc>)>, AppError> {
    Ok(lecturer_profile::Entity::find()
        .select_only()
        .column(lecturer_profile::Column::UserId)
        .column(lecturer_profile::Column::AccessUntil)
        .join(JoinType::InnerJoin, lecturer_profile::Relation::User.def())
        .filter(lecturer_profile::Column::AccessUntil.lte(now))
        .filter(user::Column::IsActive.eq(true))
        .filter(user::Column::Banned.eq(false))
        .order_by_asc(lecturer_profile::Column::AccessUntil)
        .limit(SWEEP_BATCH)
        .into_tuple::<(Uuid, DateTime<Utc>)>()
        .all(conn)
        .await?)
}

/// Suspends every user whose access has ended; answers how many this sweep suspended. A user
/// who cannot be suspended now (Clerk is down, they are the last admin) is logged and tried
/// again by the next sweep; the others go on.
pub async fn sweep(services: &Services) -> Result<usize, AppError> {
    let now = super::now();
    let mut suspended = 0;
    for (user_id, until) in due(&services.db, now).await? {
        let origin = Origin::schedule(format!("access-until:{}", until.to_rfc3339()));
        match accounts::suspend_for_ended_access(services, &origin, user_id).await {
            Ok(true) => suspended += 1,
            Ok(false) => {}
            Err(err) => {
                tracing::warn!(%user_id, error = %err, "cannot suspend a user whose access ended")
            }
        }
    }
    Ok(suspended)
}
