//! A user Clerk has deleted: soft-deleted here (the row and its history stay) and their
//! Clerk id buried, so no late event about them brings them back.

use entity::{clerk_tombstone, user};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait,
    IntoActiveModel, QueryFilter, QuerySelect, Set, TransactionTrait,
};
use uuid::Uuid;

use super::{get, snapshot};
use crate::error::AppError;
use crate::events::{ChangeKind, EventBus};
use crate::service::audit::{Action, Change};
use crate::service::{Origin, Write};

/// Records that Clerk deleted this id. Ids are never reused, so every later event about it is
/// stale, even one that overtook the deletion.
pub(crate) async fn bury<C: ConnectionTrait>(conn: &C, clerk_id: &str) -> Result<(), AppError> {
    use sea_orm::sea_query::OnConflict;
    clerk_tombstone::Entity::insert(clerk_tombstone::ActiveModel {
        clerk_id: Set(clerk_id.to_owned()),
        deleted_at: Set(crate::service::now()),
    })
    .on_conflict(
        OnConflict::column(clerk_tombstone::Column::ClerkId)
            .do_nothing()
            .to_owned(),
    )
    .exec_without_returning(conn)
    .await?;
    Ok(())
}

pub(crate) async fn is_buried<C: ConnectionTrait>(
    conn: &C,
    clerk_id: &str,
) -> Result<bool, AppError> {
    Ok(clerk_tombstone::Entity::find_by_id(clerk_id.to_owned())
        .one(conn)
        .await?
        .is_some())
}

/// Which of these ids Clerk has deleted, in one statement.
pub(crate) async fn buried_among<C: ConnectionTrait>(
    conn: &C,
    clerk_ids: Vec<String>,
) -> Result<std::collections::HashSet<String>, AppError> {
    if clerk_ids.is_empty() {
        return Ok(Default::default());
    }
    Ok(clerk_tombstone::Entity::find()
        .select_only()
        .column(clerk_tombstone::Column::ClerkId)
        .filter(clerk_tombstone::Column::ClerkId.is_in(clerk_ids))
        .into_tuple::<String>()
        .all(conn)
        .await?
        .into_iter()
        .collect())
}

/// Soft-deletes a user Clerk has deleted: the row and its history stay, `is_active` becomes
/// false, and the Clerk id is buried so no late event brings it back. Deactivating an inactive
/// user changes nothing and records nothing.
pub async fn deactivate<C>(
    db: &C,
    events: &EventBus,
    origin: &Origin,
    id: Uuid,
) -> Result<user::Model, AppError>
where
    C: TransactionTrait<Transaction = DatabaseTransaction>,
{
    let mut write = Write::begin(db, origin).await?;
    let current = get(write.conn(), id).await?;
    let deactivated = apply_deactivation(&mut write, current).await?;
    write.commit(events).await?;
    Ok(deactivated)
}

/// `deactivate` inside a caller's write, on a row it has read.
pub(crate) async fn apply_deactivation(
    write: &mut Write,
    current: user::Model,
) -> Result<user::Model, AppError> {
    bury(write.conn(), &current.clerk_id).await?;
    if !current.is_active {
        return Ok(current);
    }
    let previous = current.clone();
    let before = snapshot(&current);
    let now = crate::service::now();
    let mut row = current.into_active_model();
    row.is_active = Set(false);
    row.deactivated_at = Set(Some(now));
    row.updated_at = Set(now);
    let deactivated = row.update(write.conn()).await?;
    write
        .audit(Change::changed(
            Action::UserDeactivated,
            before,
            &deactivated,
        ))
        .await?;
    write.user_changed(
        ChangeKind::Deactivated,
        Some(&previous),
        deactivated.clone(),
    );
    Ok(deactivated)
}
