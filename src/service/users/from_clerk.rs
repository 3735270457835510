//! A user as Clerk has them, brought into userhub: read into a `ClerkProfile`, then created
//! or updated when Clerk's state is newer than the stored one (webhooks, sync, sign-in, and a
//! mutation's own write all come this way).

use chrono::{DateTime, Utc};
use entity::role::Role;
use entity::{organisation, user};
use sea_orm::{
    ActiveModelTrait, ConnectionTrait, EntityTrait, IntoActiveModel, Set, TransactionTrait,
};
use uuid::Uuid;

use super::removal::is_buried;
use super::{find_by_clerk_id, snapshot};
use crate::clerk::model::{ClerkUser, from_millis};
use crate::error::AppError;
use crate::events::{ChangeKind, Changes, EventBus, UserChange};
use crate::service::Origin;
use crate::service::audit::{self, Action, Change};

/// A user as Clerk describes them, already read into userhub's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClerkProfile {
    pub clerk_id: String,
    pub email: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub image_url: Option<String>,
    pub role: Role,
    pub organisation_id: Option<Uuid>,
    pub banned: bool,
    pub last_sign_in_at: Option<DateTime<Utc>>,
    /// Clerk's `updated_at`, Unix milliseconds.
    pub updated_at_ms: i64,
}

impl ClerkProfile {
    /// A Clerk user in userhub's terms; `None` for a user with no email address at all.
    pub fn of(user: &ClerkUser) -> Option<ClerkProfile> {
        Some(ClerkProfile {
            clerk_id: user.id.clone(),
            email: user.primary_email()?.to_owned(),
            first_name: non_empty(&user.first_name),
            last_name: non_empty(&user.last_name),
            image_url: non_empty(&user.image_url),
            role: user.role(),
            organisation_id: user.organisation_id(),
            banned: user.banned,
            last_sign_in_at: user.last_sign_in_at.and_then(from_millis),
            updated_at_ms: user.updated_at,
        })
    }
}

fn non_empty(value: &Option<String>) -> Option<String> {
    value
        .as_deref()
        .map(str::trim)
        .filter(|text| !text.is_empty())
        .map(str::to_owned)
}

/// What `upsert_from_clerk` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Upserted {
    Created(user::Model),
    Updated(user::Model),
    /// The profile matched what is stored.
    Unchanged(user::Model),
    /// The stored state is newer than the profile: nothing was written.
    Stale(user::Model),
}

impl Upserted {
    pub fn user(&self) -> &user::Model {
        match self {
            Upserted::Created(user)
            | Upserted::Updated(user)
            | Upserted::Unchanged(user)
            | Upserted::Stale(user) => user,
        }
    }
}

/// Brings the row of a Clerk user in line with Clerk's state, if that state is newer than the
/// one stored, writes the audit event in the same transaction, and publishes the change when
/// it commits. A user Clerk has deleted is not brought back: `CONFLICT`.
pub async fn upsert_from_clerk<C: TransactionTrait>(
    db: &C,
    events: &EventBus,
    origin: &Origin,
    profile: ClerkProfile,
) -> Result<Upserted, AppError> {
    let clerk_id = profile.clerk_id.clone();
    let outcome = match upsert_once(db, events, origin, profile.clone()).await {
        // Another writer (a webhook, a sync, a parallel first request) inserted this user
        // between our read and our insert: the row exists now, so the update path applies.
        Err(AppError::Conflict(_)) => upsert_once(db, events, origin, profile).await,
        outcome => outcome,
    }?;
    outcome.ok_or_else(|| AppError::Conflict(format!("Clerk has deleted the user `{clerk_id}`")))
}

async fn upsert_once<C: TransactionTrait>(
    db: &C,
    events: &EventBus,
    origin: &Origin,
    profile: ClerkProfile,
) -> Result<Option<Upserted>, AppError> {
    let txn = crate::service::begin_write(db).await?;
    let mut changes = Changes::default();
    let outcome = upsert_in(&txn, origin, profile, &mut changes).await?;
    events.commit(txn, changes).await?;
    Ok(outcome)
}

/// `upsert_from_clerk` inside a caller's transaction. `None` when Clerk has deleted the user
/// (a tombstone and no row): nothing is written.
pub(crate) async fn upsert_in<C: ConnectionTrait>(
    txn: &C,
    origin: &Origin,
    profile: ClerkProfile,
    changes: &mut Changes,
) -> Result<Option<Upserted>, AppError> {
    // An organisation userhub does not know is kept as unassigned; sync status reports it.
    let organisation_exists = match profile.organisation_id {
        Some(id) => organisation::Entity::find_by_id(id)
            .one(txn)
            .await?
            .is_some(),
        None => false,
    };
    let existing = find_by_clerk_id(txn, &profile.clerk_id).await?;
    if existing.is_none() && is_buried(txn, &profile.clerk_id).await? {
        return Ok(None);
    }
    let outcome =
        apply_profile(txn, origin, profile, existing, organisation_exists, changes).await?;
    Ok(Some(outcome))
}

/// The email as userhub stores it: trimmed, lower case, and present.
fn stored_email(profile: &ClerkProfile) -> Result<String, AppError> {
    let email = profile.email.trim().to_lowercase();
    if email.is_empty() {
        return Err(AppError::validation(
            "email",
            "a user needs an email address",
        ));
    }
    Ok(email)
}

/// The row of a user Clerk has and userhub has not, as it is first stored.
fn new_row(
    profile: ClerkProfile,
    email: String,
    organisation_id: Option<Uuid>,
    now: DateTime<Utc>,
) -> user::Model {
    user::Model {
        id: Uuid::now_v7(),
        clerk_id: profile.clerk_id,
        email,
        first_name: profile.first_name,
        last_name: profile.last_name,
        image_url: profile.image_url,
        role: profile.role,
        organisation_id,
        is_active: true,
        banned: profile.banned,
        last_sign_in_at: profile.last_sign_in_at,
        clerk_updated_at: profile.updated_at_ms,
        created_at: now,
        updated_at: now,
        deactivated_at: None,
    }
}

fn created_change(created: &user::Model) -> Change {
    Change::created(Action::UserCreated, created)
}

/// `apply_profile` for many users none of whom is stored or buried (a sync page's new
/// users): the rows in one statement, their audit events in another, one look-up of pending
/// invitations for all their emails. The same rows, events and changes as one by one.
pub(crate) async fn create_many<C: ConnectionTrait>(
    txn: &C,
    origin: &Origin,
    profiles: Vec<(ClerkProfile, bool)>,
    changes: &mut Changes,
) -> Result<usize, AppError> {
    let now = crate::service::now();
    let mut rows = Vec::with_capacity(profiles.len());
    for (profile, organisation_exists) in profiles {
        let email = stored_email(&profile)?;
        let organisation_id = profile.organisation_id.filter(|_| organisation_exists);
        rows.push(new_row(profile, email, organisation_id, now));
    }
    if rows.is_empty() {
        return Ok(0);
    }
    user::Entity::insert_many(
        rows.iter()
            .map(|row| row.clone().into_active_model().reset_all()),
    )
    .exec_without_returning(txn)
    .await?;
    audit::record_many(txn, origin, rows.iter().map(created_change).collect()).await?;
    let invited = crate::service::invitations::pending_among(
        txn,
        rows.iter().map(|row| row.email.clone()).collect(),
    )
    .await?;
    for row in &rows {
        // Rule 3: an invitation meets its user.
        if invited.contains(&row.email) {
            crate::service::invitations::accept_for_email(txn, origin, &row.email).await?;
        }
    }
    let count = rows.len();
    for row in rows {
        changes.push(UserChange::new(ChangeKind::Created, None, row, origin));
    }
    Ok(count)
}

/// The heart of `upsert_from_clerk`, for callers that hold a transaction and have already
/// read the stored row and whether the profile's organisation exists (sync, a page at a time).
/// A deactivated row stays as it is: Clerk deleted that user, and any profile of theirs that
/// arrives now is older than the deletion.
pub(crate) async fn apply_profile<C: ConnectionTrait>(
    txn: &C,
    origin: &Origin,
    profile: ClerkProfile,
    existing: Option<user::Model>,
    organisation_exists: bool,
    changes: &mut Changes,
) -> Result<Upserted, AppError> {
    let email = stored_email(&profile)?;
    let organisation_id = profile.organisation_id.filter(|_| organisation_exists);
    let now = crate::service::now();
    let outcome = match existing {
        None => {
            let created = new_row(profile, email, organisation_id, now)
                .into_active_model()
                .reset_all()
                .insert(txn)
                .await?;
            audit::record(txn, origin, created_change(&created)).await?;
            // Rule 3: an invitation meets its user.
            crate::service::invitations::accept_for_email(txn, origin, &created.email).await?;
            changes.push(UserChange::new(
                ChangeKind::Created,
                None,
                created.clone(),
                origin,
            ));
            Upserted::Created(created)
        }
        Some(current) if !current.is_active || current.clerk_updated_at > profile.updated_at_ms => {
            Upserted::Stale(current)
        }
        Some(current) => {
            let unchanged = current.email == email
                && current.first_name == profile.first_name
                && current.last_name == profile.last_name
                && current.image_url == profile.image_url
                && current.role == profile.role
                && current.organisation_id == organisation_id
                && current.banned == profile.banned
                && current.last_sign_in_at == profile.last_sign_in_at;
            if unchanged {
                // Nothing to record, but the newer timestamp must be kept: an older event
                // arriving after this one would otherwise be applied over it.
                if profile.updated_at_ms > current.clerk_updated_at {
                    let mut row = current.into_active_model();
                    row.clerk_updated_at = Set(profile.updated_at_ms);
                    Upserted::Unchanged(row.update(txn).await?)
                } else {
                    Upserted::Unchanged(current)
                }
            } else {
                let action = if current.role != profile.role {
                    Action::UserRoleChanged
                } else if current.banned != profile.banned {
                    if profile.banned {
                        Action::UserSuspended
                    } else {
                        Action::UserUnsuspended
                    }
                } else {
                    Action::UserUpdated
                };
                let kind = match (current.banned, profile.banned) {
                    (false, true) => ChangeKind::Suspended,
                    (true, false) => ChangeKind::Unsuspended,
                    _ => ChangeKind::Updated,
                };
                let previous = current.clone();
                let before = snapshot(&current);
                let mut row = current.into_active_model();
                row.email = Set(email);
                row.first_name = Set(profile.first_name);
                row.last_name = Set(profile.last_name);
                row.image_url = Set(profile.image_url);
                row.role = Set(profile.role);
                row.organisation_id = Set(organisation_id);
                row.banned = Set(profile.banned);
                row.last_sign_in_at = Set(profile.last_sign_in_at);
                row.clerk_updated_at = Set(profile.updated_at_ms);
                row.updated_at = Set(now);
                let updated = row.update(txn).await?;
                audit::record(txn, origin, Change::changed(action, before, &updated)).await?;
                changes.push(UserChange::new(
                    kind,
                    Some(&previous),
                    updated.clone(),
                    origin,
                ));
                Upserted::Updated(updated)
            }
        }
    };
    Ok(outcome)
}
