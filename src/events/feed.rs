//! The change feed's writing side: each published change to a user is kept in the
//! transaction that makes it (`service::change_feed` reads it back for a subscriber that
//! resumes).

use entity::user_change;
use sea_orm::{ConnectionTrait, DbErr, EntityTrait, Set};
use uuid::Uuid;

use super::UserChange;

/// Gives each change its id and keeps it, in the committing transaction.
pub(super) async fn record<C: ConnectionTrait>(
    conn: &C,
    changes: &mut [UserChange],
) -> Result<(), DbErr> {
    if changes.is_empty() {
        return Ok(());
    }
    let mut rows = Vec::with_capacity(changes.len());
    for change in changes.iter_mut() {
        change.id = Uuid::now_v7();
        let payload =
            serde_json::to_string(&*change).map_err(|err| DbErr::Custom(err.to_string()))?;
        rows.push(user_change::ActiveModel {
            id: Set(change.id),
            user_id: Set(change.user.id),
            organisation_id: Set(change.user.organisation_id),
            previous_organisation_id: Set(change.previous_organisation_id),
            payload: Set(payload),
            occurred_at: Set(change.occurred_at),
        });
    }
    user_change::Entity::insert_many(rows)
        .exec_without_returning(conn)
        .await?;
    Ok(())
}
