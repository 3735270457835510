//! Clerk's webhook events, applied (docs/architecture.md, rule 2). Deliveries are at-least-once and
//! unordered, so:
//!
//! - each svix id is recorded in the same transaction as the change it caused: a redelivery
//!   finds it and changes nothing, and a delivery whose change failed is not recorded, so
//!   Clerk's retry applies it;
//! - a profile older than the stored one (`updated_at`) is acknowledged and ignored;
//! - a deletion deactivates the user and buries the Clerk id, so nothing that arrives after it
//!   (a retried `user.updated`, a late `user.created`) brings the user back.
//!
//! Deliveries that arrive together are applied together (`ingest`): one transaction, and one
//! statement for each step of all of them, each still answered only once it is committed.

mod ingest;

use std::collections::HashSet;

use entity::webhook_delivery;
use sea_orm::sea_query::OnConflict;
use sea_orm::{EntityTrait, Set};

use super::sign_ins::{self, SessionEvent};
use super::users::{self, Brought, ClerkProfile};
use super::{Origin, Services, Source, Write, user_locks};

use crate::error::AppError;
use crate::metrics::Metrics;
pub use ingest::Ingest;

/// What a verified delivery asks for, in userhub's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClerkEvent {
    /// `user.created` or `user.updated`: Clerk's full state of the user.
    UserUpserted(ClerkProfile),
    /// `user.deleted`.
    UserDeleted { clerk_id: String },
    /// `session.created`, `.ended`, `.removed` or `.revoked`: a sign-in, and activity.
    Session(SessionEvent),
    /// An event userhub does not act on (another type, a user with no email address).
    Ignored { reason: String },
}

impl ClerkEvent {
    /// The Clerk user the event is about.
    pub fn clerk_id(&self) -> Option<&str> {
        match self {
            ClerkEvent::UserUpserted(profile) => Some(&profile.clerk_id),
            ClerkEvent::UserDeleted { clerk_id } => Some(clerk_id),
            ClerkEvent::Session(session) => Some(&session.clerk_user_id),
            ClerkEvent::Ignored { .. } => None,
        }
    }
}

/// What became of a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The database changed.
    Applied,
    /// The event matched what was stored.
    Unchanged,
    /// Older than what is stored, or about a user Clerk has deleted.
    Stale,
    Ignored,
    /// This svix id was handled before.
    Duplicate,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Applied => "applied",
            Outcome::Unchanged => "unchanged",
            Outcome::Stale => "stale",
            Outcome::Ignored => "ignored",
            Outcome::Duplicate => "duplicate",
        }
    }

    /// Counts this outcome in `userhub_webhooks_total`.
    pub fn count(self, metrics: &Metrics) {
        let counter = match self {
            Outcome::Applied => &metrics.webhooks_applied,
            Outcome::Unchanged => &metrics.webhooks_unchanged,
            Outcome::Stale => &metrics.webhooks_stale,
            Outcome::Ignored => &metrics.webhooks_ignored,
            Outcome::Duplicate => &metrics.webhooks_duplicate,
        };
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// A delivery: its svix id (stable across Clerk's retries), its type, and its event.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub svix_id: String,
    pub event_type: String,
    pub event: ClerkEvent,
}

/// Applies a delivery once, however often it arrives.
pub async fn handle(services: &Services, delivery: &Delivery) -> Result<Outcome, AppError> {
    // A mutation writing this user (Clerk first, then here) goes first: this may be the echo
    // of its change, which must find the change stored, not store it as Clerk's own.
    let _turn = match delivery.event.clerk_id() {
        Some(clerk_id) => Some(services.locks.local(clerk_id).await),
        None => None,
    };
    let outcomes = apply_retrying(services, std::slice::from_ref(delivery)).await?;
    outcomes
        .into_iter()
        .next()
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("a delivery applied without an outcome")))
}

/// `apply`, once more when another writer got in between (a sync or another delivery
/// inserted one of these users between our read and our insert, or recorded one of these
/// deliveries): the second time reads what it committed.
pub(crate) async fn apply_retrying(
    services: &Services,
    deliveries: &[Delivery],
) -> Result<Vec<Outcome>, AppError> {
    match apply(services, deliveries).await {
        Err(AppError::Conflict(_)) => apply(services, deliveries).await,
        outcomes => outcomes,
    }
}

/// Applies deliveries in one transaction, each credited to its own svix id, and records them:
/// all of them commit or none does. They have distinct svix ids and are about distinct users,
/// and the caller holds this process's turn on each of those users. Every statement is one
/// for the whole lot, except the updates and deactivations of users already stored (one or
/// two each); one delivery is the same statements as a hundred.
async fn apply(services: &Services, deliveries: &[Delivery]) -> Result<Vec<Outcome>, AppError> {
    let Some(first) = deliveries.first() else {
        return Ok(Vec::new());
    };
    let mut write = Write::begin(&services.db, &origin_of(first)).await?;
    let clerk_ids: Vec<&str> = deliveries
        .iter()
        .filter_map(|delivery| delivery.event.clerk_id())
        .collect();
    user_locks::all_in_transaction(write.conn(), &clerk_ids).await?;
    let handled = handled_among(
        write.conn(),
        deliveries
            .iter()
            .map(|delivery| delivery.svix_id.clone())
            .collect(),
    )
    .await?;
    let fresh: Vec<&Delivery> = deliveries
        .iter()
        .filter(|delivery| !handled.contains(&delivery.svix_id))
        .collect();
    let profiles: Vec<&ClerkProfile> = fresh
        .iter()
        .filter_map(|delivery| match &delivery.event {
            ClerkEvent::UserUpserted(profile) => Some(profile),
            _ => None,
        })
        .collect();
    let mut bringing = users::Bringing::read(
        write.conn(),
        fresh
            .iter()
            .filter_map(|delivery| delivery.event.clerk_id())
            .map(str::to_owned)
            .collect(),
        &profiles,
    )
    .await?;

    // Rows are written in Clerk-id order, as a sync page writes them, so a batch and a sync
    // page that touch the same users take their row locks in one order.
    let mut in_order: Vec<usize> = (0..deliveries.len()).collect();
    in_order.sort_by_key(|&index| deliveries[index].event.clerk_id());
    let mut outcomes = vec![Outcome::Duplicate; deliveries.len()];
    for index in in_order {
        let delivery = &deliveries[index];
        if handled.contains(&delivery.svix_id) {
            continue;
        }
        let origin = origin_of(delivery);
        write.act_for(&origin);
        let outcome = match &delivery.event {
            ClerkEvent::UserUpserted(profile) => {
                match bringing.bring(&mut write, profile.clone(), &origin).await? {
                    Brought::Waiting | Brought::Updated => Outcome::Applied,
                    Brought::Unchanged => Outcome::Unchanged,
                    Brought::Stale | Brought::Buried => Outcome::Stale,
                }
            }
            ClerkEvent::UserDeleted { clerk_id } => match bringing.take(clerk_id) {
                Some(user) => {
                    let was_active = user.is_active;
                    users::apply_deactivation(&mut write, user).await?;
                    if was_active {
                        Outcome::Applied
                    } else {
                        Outcome::Unchanged
                    }
                }
                // Deleted before we heard of its creation: the tombstone is all there is
                // to write, and it keeps the late `user.created` out.
                None => {
                    users::bury(write.conn(), clerk_id).await?;
                    Outcome::Applied
                }
            },
            ClerkEvent::Session(session) => {
                match sign_ins::apply(&mut write, session.clone()).await? {
                    sign_ins::Applied::Changed => Outcome::Applied,
                    sign_ins::Applied::Unchanged => Outcome::Unchanged,
                    sign_ins::Applied::Stale => Outcome::Stale,
                }
            }
            ClerkEvent::Ignored { reason } => {
                tracing::info!(svix_id = %delivery.svix_id, event_type = %delivery.event_type, reason = %reason, "webhook acknowledged and ignored");
                Outcome::Ignored
            }
        };
        outcomes[index] = outcome;
    }
    bringing.finish(&mut write).await?;

    let records: Vec<webhook_delivery::ActiveModel> = deliveries
        .iter()
        .zip(&outcomes)
        .filter(|(delivery, _)| !handled.contains(&delivery.svix_id))
        .map(|(delivery, outcome)| record(delivery, *outcome))
        .collect();
    let expected = records.len() as u64;
    if expected > 0 {
        let recorded = webhook_delivery::Entity::insert_many(records)
            .on_conflict(
                OnConflict::column(webhook_delivery::Column::SvixId)
                    .do_nothing()
                    .to_owned(),
            )
            .exec_without_returning(write.conn())
            .await?;
        if recorded < expected {
            // One of these deliveries, handled concurrently (an ignored event takes no user's
            // lock), committed first: this rolls back, and the retry finds it recorded.
            return Err(AppError::Conflict(
                "a delivery was recorded by another transaction".to_owned(),
            ));
        }
    }
    write.commit(&services.events).await?;
    Ok(outcomes)
}

fn origin_of(delivery: &Delivery) -> Origin {
    Origin {
        actor: "clerk".to_owned(),
        source: Source::Webhook,
        correlation_id: Some(delivery.svix_id.clone()),
    }
}

fn record(delivery: &Delivery, outcome: Outcome) -> webhook_delivery::ActiveModel {
    webhook_delivery::ActiveModel {
        svix_id: Set(delivery.svix_id.clone()),
        event_type: Set(
            delivery.event_type[..delivery.event_type.floor_char_boundary(255)].to_owned(),
        ),
        received_at: Set(super::now()),
        outcome: Set(outcome.as_str().to_owned()),
    }
}

/// Which of these svix ids were handled before, in one statement.
async fn handled_among<C: sea_orm::ConnectionTrait>(
    conn: &C,
    svix_ids: Vec<String>,
) -> Result<HashSet<String>, AppError> {
    use sea_orm::{ColumnTrait, QueryFilter, QuerySelect};
    Ok(webhook_delivery::Entity::find()
        .select_only()
        .column(webhook_delivery::Column::SvixId)
        .filter(webhook_delivery::Column::SvixId.is_in(svix_ids))
        .into_tuple::<String>()
        .all(conn)
        .await?
        .into_iter()
        .collect())
}

/// How long a svix id is remembered. Clerk retries a failed delivery for about 30 hours
/// (immediately, then 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h); a week is ample.
pub const REMEMBER_DELIVERIES: chrono::Duration = chrono::Duration::days(7);

/// Forgets deliveries older than `REMEMBER_DELIVERIES`; returns how many.
pub async fn prune<C: sea_orm::ConnectionTrait>(db: &C) -> Result<u64, AppError> {
    use sea_orm::{ColumnTrait, QueryFilter};
    let cutoff = super::now() - REMEMBER_DELIVERIES;
    let pruned = webhook_delivery::Entity::delete_many()
        .filter(webhook_delivery::Column::ReceivedAt.lt(cutoff))
        .exec(db)
        .await?;
    Ok(pruned.rows_affected)
}
