//! Who may follow which live changes. The event bus carries every committed change to every
//! replica; a subscription passes on only what its subscriber may read, and ends when a change
//! to the subscriber themself alters what that is.

use uuid::Uuid;

use crate::auth::Actor;
use crate::error::AppError;
use crate::events::UserChange;

/// Whether `actor` may follow the changes to users, in `organisation_id` when given.
pub fn follow_users(actor: &Actor, organisation_id: Option<Uuid>) -> Result<(), AppError> {
    match organisation_id {
        Some(id) => actor.require_organisation_readable(id),
        None => Ok(()),
    }
}

/// Whether a change reaches a subscriber to user changes (in `organisation_id` when given: a
/// user leaving it included).
pub fn sees_user_change(actor: &Actor, change: &UserChange, organisation_id: Option<Uuid>) -> bool {
    actor.may_see_change(change)
        && organisation_id.is_none_or(|id| change.concerns_organisation(id))
}

/// Whether `actor` may follow syncs. Admins only.
pub fn follow_syncs(actor: &Actor) -> Result<(), AppError> {
    actor.require_admin()
}

/// Whether a sync's progress reaches this subscriber.
pub fn sees_sync_progress(actor: &Actor) -> bool {
    actor.is_admin()
}

/// Why a subscriber's access changed under a subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessLost {
    /// They may no longer sign in at all.
    RemovedOrSuspended,
    /// What they may read is different now.
    RoleOrOrganisation,
}

/// Keeps a subscriber's own row current as changes to it arrive; `Some` when the change alters
/// their access, and the subscription must end (its payloads are resolved for the subscriber
/// as they were).
pub fn follow_self(actor: &mut Actor, change: &UserChange) -> Option<AccessLost> {
    if change.user.id != actor.user.id {
        return None;
    }
    if !change.user.is_active || change.user.banned {
        return Some(AccessLost::RemovedOrSuspended);
    }
    if change.user.role != actor.user.role
        || change.user.organisation_id != actor.user.organisation_id
    {
        return Some(AccessLost::RoleOrOrganisation);
    }
    actor.user = change.user.clone();
    None
}
