//! The change feed: every change to a user that is published is also kept (`events::feed`), in
//! the transaction that makes it, with a UUIDv7 taken just before that transaction commits. Its id
//! is the change's cursor; `userChanged(after:)` replays what came after a cursor from here and
//! then continues live, so a subscriber that reconnects, or falls behind, catches up with no
//! gap instead of ending with `EVENTS_MISSED`.
//!
//! Ids follow commit order but for the moment a commit takes: a change whose id was taken just
//! before another's can commit just after it. A replay therefore starts `COMMIT_SKEW` before
//! its cursor, and a subscriber resuming may be sent again a change it saw in that moment, with
//! the same cursor: the feed is at least once, and a client drops a cursor it has seen.

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use entity::user_change;
use sea_orm::sea_query::Condition;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use uuid::Uuid;

use super::live;
use crate::auth::{Actor, UserScope};
use crate::error::AppError;
use crate::events::UserChange;

/// How long changes are kept: a cursor older than this cannot be resumed from.
pub const KEEP: Duration = Duration::days(7);
/// How far before its cursor a replay starts (see the module's note).
pub const COMMIT_SKEW: Duration = Duration::seconds(2);
/// The most changes one catch-up reads: a subscriber further behind reloads instead.
pub const MOST_REPLAYED: usize = 10_000;
const PAGE: u64 = 500;

/// Reads a cursor: a change's id as `UserChange.cursor` gave it, or `userChangeCursor`'s.
pub fn parse_cursor(field: &str, cursor: &str) -> Result<Uuid, AppError> {
    Uuid::parse_str(cursor.trim())
        .ok()
        .filter(|id| id.get_version_num() == 7)
        .ok_or_else(|| AppError::validation(field, "is not a cursor this server issued"))
}

/// The cursor of the present: following from it sees every change that commits from now on.
pub fn now() -> Uuid {
    Uuid::now_v7()
}

fn time_of(cursor: Uuid) -> DateTime<Utc> {
    cursor
        .get_timestamp()
        .map(|timestamp| {
            let (seconds, nanos) = timestamp.to_unix();
            DateTime::from_timestamp(seconds as i64, nanos).unwrap_or_default()
        })
        .unwrap_or_default()
}

/// The smallest UUIDv7 of the millisecond `at` falls in.
fn first_id_at(at: DateTime<Utc>) -> Uuid {
    let millis = u64::try_from(at.timestamp_millis()).unwrap_or(0);
    let mut bytes = [0u8; 16];
    bytes[..6].copy_from_slice(&millis.to_be_bytes()[2..]);
    bytes[6] = 0x70;
    bytes[8] = 0x80;
    Uuid::from_bytes(bytes)
}

/// Where a replay is: it reads the feed a page at a time, so a subscriber far behind holds one
/// page in memory, not everything it missed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Replay {
    /// The cursor the subscriber gave (or last saw): not sent again.
    after: Uuid,
    /// The last row read: the next page starts after it.
    from: Uuid,
    /// Rows read so far, against `MOST_REPLAYED`.
    read: usize,
}

impl Replay {
    /// A replay of what came after `after` (from `COMMIT_SKEW` before it). `EVENTS_MISSED`
    /// when the cursor is older than the feed keeps.
    pub fn after(after: Uuid) -> Result<Replay, AppError> {
        if time_of(after) < super::now() - KEEP {
            return Err(AppError::EventsMissed(format!(
                "the cursor is older than the {} days of changes kept; reload and subscribe again",
                KEEP.num_days()
            )));
        }
        Ok(Replay {
            after,
            from: first_id_at(time_of(after) - COMMIT_SKEW),
            read: 0,
        })
    }

    /// The next page of changes `actor` may see (in `organisation_id` when given), oldest
    /// first, less those in `seen`, and where the replay is then: `None` once it has caught
    /// up. `EVENTS_MISSED` past `MOST_REPLAYED` rows.
    pub async fn next_page<C: ConnectionTrait>(
        mut self,
        conn: &C,
        actor: &Actor,
        organisation_id: Option<Uuid>,
        seen: &HashSet<Uuid>,
    ) -> Result<(Vec<Arc<UserChange>>, Option<Replay>), AppError> {
        let mut scope = Condition::all();
        match actor.readable_users(organisation_id)? {
            UserScope::All => {}
            UserScope::Organisation(id) => scope = scope.add(in_organisation(id)),
            UserScope::OnlySelf(id) => scope = scope.add(user_change::Column::UserId.eq(id)),
        }
        if let Some(id) = organisation_id {
            scope = scope.add(in_organisation(id));
        }
        let page = user_change::Entity::find()
            .filter(scope)
            .filter(user_change::Column::Id.gt(self.from))
            .order_by_asc(user_change::Column::Id)
            .limit(PAGE)
            .all(conn)
            .await?;
        self.read += page.len();
        if self.read > MOST_REPLAYED {
            return Err(AppError::EventsMissed(format!(
                "more than {MOST_REPLAYED} changes came after this cursor; reload and subscribe again"
            )));
        }
        let full = page.len() as u64 == PAGE;
        let mut changes = Vec::with_capacity(page.len());
        for row in page {
            self.from = row.id;
            if row.id == self.after || seen.contains(&row.id) {
                continue;
            }
            let change: UserChange = match serde_json::from_str(&row.payload) {
                Ok(change) => change,
                Err(err) => {
                    // Written by another version of userhub: skipped, as a live event this
                    // version cannot read is.
                    tracing::warn!(error = %err, id = %row.id, "cannot read a kept change");
                    continue;
                }
            };
            if live::sees_user_change(actor, &change, organisation_id) {
                changes.push(Arc::new(change));
            }
        }
        Ok((changes, full.then_some(self)))
    }
}

fn in_organisation(id: Uuid) -> Condition {
    Condition::any()
        .add(user_change::Column::OrganisationId.eq(id))
        .add(user_change::Column::PreviousOrganisationId.eq(id))
}

/// Forgets changes older than `KEEP`; returns how many.
pub async fn prune<C: ConnectionTrait>(db: &C) -> Result<u64, AppError> {
    let cutoff = first_id_at(super::now() - KEEP);
    let pruned = user_change::Entity::delete_many()
        .filter(user_change::Column::Id.lt(cutoff))
        .exec(db)
        .await?;
    Ok(pruned.rows_affected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_id_of_a_millisecond_sorts_before_every_id_taken_in_it() {
        let id = Uuid::now_v7();
        let at = time_of(id);
        let first = first_id_at(at);
        assert!(first <= id, "{first} {id}");
        assert_eq!(first.get_version_num(), 7);
        assert_eq!(time_of(first).timestamp_millis(), at.timestamp_millis());
        assert!(first_id_at(at - Duration::milliseconds(1)) < first);
    }
}
