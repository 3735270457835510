//! Activity from Clerk's sessions: each `session.created` is a sign-in, closed by
//! `session.ended`, `.removed` or `.revoked`; every session event moves its user's
//! `lastActiveAt` (and a new one their `lastSignInAt`) forward, never back.
//!
//! Deliveries are unordered and repeated (`service::webhooks`), so a session's row keeps
//! Clerk's `updated_at` of the state stored and an older event changes nothing; an end that
//! arrives before its start makes the row, ended. A session of a user not yet stored is kept:
//! the row names its user by Clerk id, and the user's own `user.created` carries their times.
//!
//! Sign-ins are not audited: they are activity, not changes anyone made, and this table is
//! their history. Each is published as its user's `SIGNED_IN` or `SIGNED_OUT` change.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use entity::{sign_in, user};
use sea_orm::sea_query::{Alias, Asterisk, Expr, ExprTrait as _, Query};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, QueryFilter, Set,
};

use super::Write;
use crate::auth::Actor;
use crate::error::AppError;
use crate::events::ChangeKind;

/// A session event, in userhub's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionEvent {
    pub session_id: String,
    pub clerk_user_id: String,
    /// Clerk's status after the event: `active`, `ended`, `removed`, `revoked`, ...
    pub status: String,
    /// Whether the event ends the session (`session.ended`, `.removed`, `.revoked`).
    pub ends: bool,
    pub started_at: DateTime<Utc>,
    pub last_active_at: DateTime<Utc>,
    /// Clerk's `updated_at`, Unix milliseconds.
    pub updated_at_ms: i64,
    pub device_type: Option<String>,
    pub browser: Option<String>,
    pub country: Option<String>,
}

/// What applying a session event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// The sign-in (and maybe its user) changed.
    Changed,
    /// It matched what was stored.
    Unchanged,
    /// Older than what is stored.
    Stale,
}

/// Clerk's description of a device, kept to `max` characters without control characters;
/// `None` for nothing.
fn clip(value: Option<String>, max: usize) -> Option<String> {
    value
        .map(|value| {
            value
                .trim()
                .chars()
                .filter(|c| !c.is_control())
                .take(max)
                .collect::<String>()
        })
        .filter(|value| !value.is_empty())
}

/// Applies a session event in `write`: its sign-in row, then its user's times (when the user
/// is stored), published as the user's change.
pub(crate) async fn apply(write: &mut Write, event: SessionEvent) -> Result<Applied, AppError> {
    let stored = sign_in::Entity::find_by_id(event.session_id.clone())
        .one(write.conn())
        .await?;
    if let Some(stored) = &stored
        && stored.clerk_updated_at >= event.updated_at_ms
    {
        return Ok(if stored.clerk_updated_at == event.updated_at_ms {
            Applied::Unchanged
        } else {
            Applied::Stale
        });
    }
    let ended_at = match (&stored, event.ends) {
        // An end keeps the first end heard of; Clerk's `updated_at` is when it ended.
        (Some(stored), true) => stored
            .ended_at
            .or_else(|| DateTime::from_timestamp_millis(event.updated_at_ms)),
        (None, true) => DateTime::from_timestamp_millis(event.updated_at_ms),
        // A late `session.created` after its end leaves it ended.
        (Some(stored), false) => stored.ended_at,
        (None, false) => None,
    };
    let row = sign_in::Model {
        // Both ids were checked to be Clerk-sized where the event was read.
        session_id: event.session_id.clone(),
        clerk_user_id: event.clerk_user_id.clone(),
        started_at: event.started_at,
        last_active_at: Ord::max(
            event.last_active_at,
            stored
                .as_ref()
                .map_or(event.started_at, |s| s.last_active_at),
        ),
        ended_at,
        status: if ended_at.is_some() && !event.ends {
            stored
                .as_ref()
                .map_or_else(|| event.status.clone(), |s| s.status.clone())
        } else {
            clip(Some(event.status.clone()), 16).unwrap_or_else(|| "unknown".to_owned())
        },
        device_type: clip(event.device_type.clone(), 32)
            .or_else(|| stored.as_ref().and_then(|s| s.device_type.clone())),
        browser: clip(event.browser.clone(), 64)
            .or_else(|| stored.as_ref().and_then(|s| s.browser.clone())),
        country: clip(event.country.clone(), 8)
            .or_else(|| stored.as_ref().and_then(|s| s.country.clone())),
        clerk_updated_at: event.updated_at_ms,
    };
    // Every column is written: the key stays, the rest is the new state.
    let active = row.into_active_model().reset_all();
    if stored.is_some() {
        active.update(write.conn()).await?;
    } else {
        active.insert(write.conn()).await?;
    }
    touch_user(write, &event, stored.is_none()).await?;
    Ok(Applied::Changed)
}

/// Moves the user's `lastActiveAt` (and, for a new session, `lastSignInAt`) forward, and
/// publishes the sign-in as their change even when their times stay (an older session heard
/// of late): answers holding their sign-ins (`signIns`, a dashboard's weeks) must hear of it.
async fn touch_user(write: &mut Write, event: &SessionEvent, new: bool) -> Result<(), AppError> {
    let Some(current) = user::Entity::find()
        .filter(user::Column::ClerkId.eq(event.clerk_user_id.as_str()))
        .one(write.conn())
        .await?
    else {
        return Ok(());
    };
    let kind = if event.ends {
        ChangeKind::SignedOut
    } else {
        ChangeKind::SignedIn
    };
    let last_active_at = Ord::max(current.last_active_at, Some(event.last_active_at));
    let last_sign_in_at = if new && !event.ends {
        Ord::max(current.last_sign_in_at, Some(event.started_at))
    } else {
        current.last_sign_in_at
    };
    let moved =
        last_active_at != current.last_active_at || last_sign_in_at != current.last_sign_in_at;
    // A removed user's row stays as Clerk's deletion left it.
    if !current.is_active || !moved {
        write.user_changed(kind, Some(&current), current.clone());
        return Ok(());
    }
    let mut row: user::ActiveModel = current.clone().into();
    row.last_active_at = Set(last_active_at);
    row.last_sign_in_at = Set(last_sign_in_at);
    row.updated_at = Set(super::now());
    let updated = row.update(write.conn()).await?;
    write.user_changed(kind, Some(&current), updated);
    Ok(())
}

/// The most sign-ins one question returns.
pub const MOST_SIGN_INS: u64 = 100;

/// Whether the caller may read this user's sign-ins: the user themself, their organisation's
/// admins, and admins (`auth::access`).
pub fn check_readable(actor: &Actor, user: &user::Model) -> Result<(), AppError> {
    actor.require_activity_readable(user)
}

/// The latest `first` sign-ins of each of these users (by Clerk id), newest first, in one
/// statement: each user's are numbered by a window and cut there, so one user's long history
/// does not swell the answer. The caller checked who may read them.
pub async fn latest_of_users<C: ConnectionTrait>(
    conn: &C,
    clerk_user_ids: &[String],
    first: u64,
) -> Result<HashMap<String, Vec<sign_in::Model>>, AppError> {
    if clerk_user_ids.is_empty() || first == 0 {
        return Ok(HashMap::new());
    }
    let nth = Alias::new("nth");
    let ranked = Query::select()
        .column(Asterisk)
        .expr_as(
            Expr::cust(
                "ROW_NUMBER() OVER (PARTITION BY clerk_user_id \
                 ORDER BY started_at DESC, session_id DESC)",
            ),
            nth.clone(),
        )
        .from(sign_in::Entity)
        .and_where(Expr::col(sign_in::Column::ClerkUserId).is_in(clerk_user_ids.iter().cloned()))
        .to_owned();
    let latest = Query::select()
        .column(Asterisk)
        .from_subquery(ranked, Alias::new("ranked"))
        .and_where(Expr::col(nth.clone()).lte(Ord::min(first, MOST_SIGN_INS)))
        .order_by(nth, sea_orm::Order::Asc)
        .to_owned();
    let statement = conn.get_database_backend().build(&latest);
    let mut by_user: HashMap<String, Vec<sign_in::Model>> = HashMap::new();
    for found in sign_in::Entity::find()
        .from_raw_sql(statement)
        .all(conn)
        .await?
    {
        by_user
            .entry(found.clerk_user_id.clone())
            .or_default()
            .push(found);
    }
    Ok(by_user)
}

/// The start of the week (Monday, 00:00 UTC) `at` falls in.
pub fn week_of(at: DateTime<Utc>) -> DateTime<Utc> {
    use chrono::{Datelike, NaiveTime};
    let monday = at.date_naive() - Duration::days(i64::from(at.weekday().num_days_from_monday()));
    monday.and_time(NaiveTime::MIN).and_utc()
}
