//! Clerk's webhook events, applied (docs/architecture.md, rule 2). Deliveries are at-least-once and
//! unordered, so:
//!
//! - each svix id is recorded in the same transaction as the change it caused: a redelivery
//!   finds it and changes nothing, and a delivery whose change failed is not recorded, so
//!   Clerk's retry applies it;
//! - a profile older than the stored one (`updated_at`) is acknowledged and ignored;
//! - a deletion deactivates the user and buries the Clerk id, so nothing that arrives after it
//!   (a retried `user.updated`, a late `user.created`) brings the user back.

use entity::webhook_delivery;
use sea_orm::sea_query::OnConflict;
use sea_orm::{EntityTrait, Set};

use super::user_locks;
use super::users::{self, ClerkProfile, Upserted};
use super::{Origin, Services, Source, Write};
use crate::error::AppError;
use crate::metrics::Metrics;

/// What a verified delivery asks for, in userhub's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClerkEvent {
    /// `user.created` or `user.updated`: Clerk's full state of the user.
    UserUpserted(ClerkProfile),
    /// `user.deleted`.
    UserDeleted { clerk_id: String },
    /// An event userhub does not act on (another type, a user with no email address).
    Ignored { reason: String },
}

impl ClerkEvent {
    /// The Clerk user the event is about.
    pub fn clerk_id(&self) -> Option<&str> {
        match self {
            ClerkEvent::UserUpserted(profile) => Some(&profile.clerk_id),
            ClerkEvent::UserDeleted { clerk_id } => Some(clerk_id),
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
    match handle_once(services, delivery).await {
        // A sync or another delivery inserted this user between our read and our insert: the
        // row exists now, so a second try takes the update path.
        Err(AppError::Conflict(_)) => handle_once(services, delivery).await,
        outcome => outcome,
    }
}

async fn handle_once(services: &Services, delivery: &Delivery) -> Result<Outcome, AppError> {
    let Services { db, events, .. } = services;
    // A mutation writing this user (Clerk first, then here) goes first: this may be the echo
    // of its change, which must find the change stored, not store it as Clerk's own.
    let clerk_id = delivery.event.clerk_id();
    let _turn = match clerk_id {
        Some(clerk_id) => Some(services.locks.local(clerk_id).await),
        None => None,
    };
    let origin = Origin {
        actor: "clerk".to_owned(),
        source: Source::Webhook,
        correlation_id: Some(delivery.svix_id.clone()),
    };
    let mut write = Write::begin(db, &origin).await?;
    if let Some(clerk_id) = clerk_id {
        user_locks::in_transaction(write.conn(), clerk_id).await?;
    }
    if webhook_delivery::Entity::find_by_id(delivery.svix_id.clone())
        .one(write.conn())
        .await?
        .is_some()
    {
        return Ok(Outcome::Duplicate);
    }
    let outcome = match &delivery.event {
        ClerkEvent::UserUpserted(profile) => {
            match users::upsert_in(&mut write, profile.clone()).await? {
                Some(Upserted::Created(_) | Upserted::Updated(_)) => Outcome::Applied,
                Some(Upserted::Unchanged(_)) => Outcome::Unchanged,
                Some(Upserted::Stale(_)) | None => Outcome::Stale,
            }
        }
        ClerkEvent::UserDeleted { clerk_id } => {
            match users::find_by_clerk_id(write.conn(), clerk_id).await? {
                Some(user) if user.is_active => {
                    users::apply_deactivation(&mut write, user).await?;
                    Outcome::Applied
                }
                Some(user) => {
                    users::apply_deactivation(&mut write, user).await?;
                    Outcome::Unchanged
                }
                // Deleted before we heard of its creation: the tombstone is all there is
                // to write, and it keeps the late `user.created` out.
                None => {
                    users::bury(write.conn(), clerk_id).await?;
                    Outcome::Applied
                }
            }
        }
        ClerkEvent::Ignored { reason } => {
            tracing::info!(svix_id = %delivery.svix_id, event_type = %delivery.event_type, reason = %reason, "webhook acknowledged and ignored");
            Outcome::Ignored
        }
    };
    let recorded = webhook_delivery::Entity::insert(webhook_delivery::ActiveModel {
        svix_id: Set(delivery.svix_id.clone()),
        event_type: Set(
            delivery.event_type[..delivery.event_type.floor_char_boundary(255)].to_owned(),
        ),
        received_at: Set(super::now()),
        outcome: Set(outcome.as_str().to_owned()),
    })
    .on_conflict(
        OnConflict::column(webhook_delivery::Column::SvixId)
            .do_nothing()
            .to_owned(),
    )
    .exec_without_returning(write.conn())
    .await?;
    if recorded == 0 {
        // The same delivery, handled concurrently, committed first: this one rolls back.
        return Ok(Outcome::Duplicate);
    }
    write.commit(events).await?;
    Ok(outcome)
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
