//! Changes to a person's account, Clerk first (docs/architecture.md, rule 1): check who asks and
//! what they ask for, call Clerk, and only when Clerk accepts write the database, from Clerk's own
//! answer and through `users::upsert_from_clerk`, the path webhooks and sync take too. When Clerk
//! refuses or cannot be reached nothing here changes. When the database fails after Clerk accepted,
//! the next webhook or sync brings the row in line.

use entity::role::Role;
use entity::user;
use sea_orm::DatabaseConnection;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::user_locks::UserLock;
use super::{Origin, Services, access_ends, organisations, users};
use crate::auth::Actor;
use crate::auth::access::RequestedChange;
use crate::clerk::model::{ORGANISATION_KEY, ROLE_KEY};
use crate::error::AppError;
use crate::events::EventBus;

/// What `update` may change; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct AccountUpdate {
    pub role: Option<Role>,
    /// `Some(None)` takes the user out of any organisation.
    pub organisation_id: Option<Option<Uuid>>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
}

const MAX_NAME_LENGTH: usize = 100;

pub(crate) fn validate_name(field: &str, name: Option<String>) -> Result<Option<String>, AppError> {
    let Some(name) = name else { return Ok(None) };
    let name = name.trim().to_owned();
    if name.chars().count() > MAX_NAME_LENGTH {
        return Err(AppError::validation(
            field,
            format!("must be at most {MAX_NAME_LENGTH} characters"),
        ));
    }
    Ok(Some(name))
}

/// An organisation a user may be put in: it exists and is not archived.
pub(crate) async fn assignable_organisation(
    db: &DatabaseConnection,
    field: &str,
    id: Uuid,
) -> Result<(), AppError> {
    match organisations::get(db, id).await {
        Ok(org) if org.archived_at.is_none() => Ok(()),
        Ok(_) => Err(AppError::validation(field, "the organisation is archived")),
        Err(AppError::NotFound { .. }) => Err(AppError::validation(
            field,
            format!("no organisation has the id {id}"),
        )),
        Err(other) => Err(other),
    }
}

async fn active_target(db: &DatabaseConnection, id: Uuid) -> Result<user::Model, AppError> {
    let target = users::get(db, id).await?;
    if !target.is_active {
        return Err(AppError::Conflict("this user has been removed".to_owned()));
    }
    Ok(target)
}

/// Stores what Clerk answered, as a webhook would, in the write the lock taken before the Clerk
/// call keeps for it.
async fn apply(
    db: &DatabaseConnection,
    events: &EventBus,
    origin: &Origin,
    lock: UserLock,
    clerk_user: &crate::clerk::model::ClerkUser,
) -> Result<user::Model, AppError> {
    let profile = users::ClerkProfile::of(clerk_user).ok_or_else(|| {
        AppError::Upstream("Clerk answered with a user that has no email address".to_owned())
    })?;
    let clerk_id = profile.clerk_id.clone();
    let stored = async {
        let mut write = lock.write(db, origin).await?;
        let outcome = users::upsert_in(&mut write, profile).await?;
        write.commit(events).await?;
        outcome
            .map(|outcome| outcome.user().clone())
            .ok_or_else(|| AppError::Conflict(format!("Clerk has deleted the user `{clerk_id}`")))
    };
    stored
        .await
        .map_err(|err| AppError::Unrecorded(Box::new(err)))
}

/// The lock a change to `target` holds from its Clerk call to its commit. One that could leave
/// no admin (`drops_admin` on an active admin) holds the set of admins too, and checks the
/// last-admin rule under it: the check before it may have raced another such change.
async fn lock_for(
    services: &Services,
    target: &user::Model,
    drops_admin: bool,
) -> Result<UserLock, AppError> {
    let Services { db, locks, .. } = services;
    if drops_admin && target.role == Role::Admin {
        let lock = UserLock::acquire_guarding_admins(locks, db, &target.clerk_id).await?;
        lock.ensure_not_last_admin(db, target.id).await?;
        Ok(lock)
    } else {
        UserLock::acquire(locks, db, &target.clerk_id).await
    }
}

/// Changes a user's role, organisation and names.
pub async fn update(
    services: &Services,
    actor: &Actor,
    origin: &Origin,
    id: Uuid,
    update: AccountUpdate,
) -> Result<user::Model, AppError> {
    let Services {
        db, clerk, events, ..
    } = services;
    let first_name = validate_name("firstName", update.first_name)?;
    let last_name = validate_name("lastName", update.last_name)?;
    let target = active_target(db, id).await?;
    actor.require_user_change(
        &target,
        &RequestedChange {
            role: update.role,
            organisation_id: update.organisation_id,
        },
    )?;
    if let Some(Some(organisation_id)) = update.organisation_id {
        assignable_organisation(db, "organisationId", organisation_id).await?;
    }
    // Checked early for a quick answer, and again under the lock on the admins.
    let demotes = update.role.is_some_and(|role| role != Role::Admin);
    if demotes {
        users::ensure_not_last_admin(db, &target).await?;
    }

    let mut metadata = Map::new();
    if let Some(role) = update.role {
        metadata.insert(ROLE_KEY.to_owned(), json!(role.as_str()));
    }
    if let Some(organisation_id) = update.organisation_id {
        // `null` removes the key in Clerk's deep merge.
        metadata.insert(
            ORGANISATION_KEY.to_owned(),
            organisation_id.map_or(Value::Null, |id| json!(id.to_string())),
        );
    }
    if metadata.is_empty() && first_name.is_none() && last_name.is_none() {
        return Ok(target);
    }
    let lock = lock_for(services, &target, demotes).await?;
    let mut latest = None;
    if !metadata.is_empty() {
        latest = Some(
            clerk
                .merge_public_metadata(&target.clerk_id, Value::Object(metadata))
                .await?,
        );
    }
    if first_name.is_some() || last_name.is_some() {
        latest = Some(
            clerk
                .update_names(
                    &target.clerk_id,
                    first_name.as_deref(),
                    last_name.as_deref(),
                )
                .await?,
        );
    }
    match latest {
        Some(clerk_user) => apply(db, events, origin, lock, &clerk_user).await,
        None => Ok(target),
    }
}

/// Deletes the user in Clerk and deactivates them here; the row and its history stay.
pub async fn remove(
    services: &Services,
    actor: &Actor,
    origin: &Origin,
    id: Uuid,
) -> Result<user::Model, AppError> {
    let Services {
        db, clerk, events, ..
    } = services;
    let target = users::get(db, id).await?;
    actor.require_manage_user(&target)?;
    if !target.is_active {
        return Ok(target);
    }
    users::ensure_not_last_admin(db, &target).await?;
    let lock = lock_for(services, &target, true).await?;
    clerk.delete_user(&target.clerk_id).await?;
    let stored = async {
        let mut write = lock.write(db, origin).await?;
        let current = users::get(write.conn(), target.id).await?;
        let deactivated = users::apply_deactivation(&mut write, current).await?;
        write.commit(events).await?;
        Ok::<_, AppError>(deactivated)
    };
    stored
        .await
        .map_err(|err| AppError::Unrecorded(Box::new(err)))
}

/// Bans (`suspend: true`) or unbans the user in Clerk, then records it here. A ban ends every
/// session the user has.
pub async fn set_suspended(
    services: &Services,
    actor: &Actor,
    origin: &Origin,
    id: Uuid,
    suspend: bool,
) -> Result<user::Model, AppError> {
    let Services {
        db, clerk, events, ..
    } = services;
    let target = active_target(db, id).await?;
    actor.require_manage_user(&target)?;
    if target.id == actor.user.id && suspend {
        return Err(AppError::Conflict("you cannot suspend yourself".to_owned()));
    }
    if suspend {
        users::ensure_not_last_admin(db, &target).await?;
    } else if let Some(ended) = access_ends::ended_at(db, target.id, super::now()).await? {
        return Err(AppError::Conflict(format!(
            "their access ended at {}: move their accessUntil on, or clear it, first",
            ended.to_rfc3339()
        )));
    }
    let lock = lock_for(services, &target, suspend).await?;
    let clerk_user = clerk.set_banned(&target.clerk_id, suspend).await?;
    apply(db, events, origin, lock, &clerk_user).await
}

/// Suspends a user whose access has ended (`access_ends::sweep`), for userhub itself: answers
/// whether this call suspended them. The user is read again under their lock, so one that
/// another replica's sweep has just suspended, or who was removed or given more time
/// meanwhile, is left as they are and Clerk is not called.
pub(crate) async fn suspend_for_ended_access(
    services: &Services,
    origin: &Origin,
    id: Uuid,
) -> Result<bool, AppError> {
    let Services {
        db, clerk, events, ..
    } = services;
    let target = users::get(db, id).await?;
    let lock = lock_for(services, &target, true).await?;
    let (current, ended) = lock.read_access(db, id, super::now()).await?;
    if !current.is_active || current.banned || ended.is_none() {
        return Ok(false);
    }
    let clerk_user = clerk.set_banned(&current.clerk_id, true).await?;
    apply(db, events, origin, lock, &clerk_user).await?;
    Ok(true)
}
