//! Every access rule of userhub, in one place (DESIGN.md, "Access"):
//!
//! - anonymous callers see nothing but the schema;
//! - `MEMBER` and `LECTURER` read their own organisation (a user with none reads only
//!   themselves);
//! - `ORG_ADMIN` reads and manages the users of their own organisation;
//! - `ADMIN` reads and does everything, the audit log included.

use entity::role::Role;
use entity::user;
use uuid::Uuid;

use super::caller::Actor;
use crate::error::AppError;
use crate::service::organisations::OrganisationFilter;
use crate::service::users::UserFilter;

/// The users a caller may read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserScope {
    All,
    Organisation(Uuid),
    OnlySelf(Uuid),
}

impl Actor {
    pub fn is_admin(&self) -> bool {
        self.user.role == Role::Admin
    }

    pub fn user_scope(&self) -> UserScope {
        match (self.user.role, self.user.organisation_id) {
            (Role::Admin, _) => UserScope::All,
            (_, Some(organisation_id)) => UserScope::Organisation(organisation_id),
            (_, None) => UserScope::OnlySelf(self.user.id),
        }
    }

    pub fn may_read_user(&self, user: &user::Model) -> bool {
        match self.user_scope() {
            UserScope::All => true,
            UserScope::Organisation(id) => user.organisation_id == Some(id),
            UserScope::OnlySelf(id) => user.id == id,
        }
    }

    pub fn may_read_organisation(&self, organisation_id: Uuid) -> bool {
        match self.user_scope() {
            UserScope::All => true,
            UserScope::Organisation(id) => id == organisation_id,
            UserScope::OnlySelf(_) => false,
        }
    }

    /// Narrows a user filter to what this actor may read. Asking explicitly for another
    /// organisation is refused rather than answered with an empty page.
    pub fn scope_user_filter(&self, filter: &mut UserFilter) -> Result<(), AppError> {
        match self.user_scope() {
            UserScope::All => {}
            UserScope::Organisation(id) => {
                if filter.organisation_id.is_some_and(|asked| asked != id) {
                    return Err(forbidden("you may only read your own organisation"));
                }
                filter.organisation_id = Some(id);
            }
            UserScope::OnlySelf(id) => {
                if filter.organisation_id.is_some() {
                    return Err(forbidden("you belong to no organisation"));
                }
                filter.user_id = Some(id);
            }
        }
        Ok(())
    }

    pub fn scope_organisation_filter(&self, filter: &mut OrganisationFilter) {
        filter.only = match self.user_scope() {
            UserScope::All => None,
            UserScope::Organisation(id) => Some(vec![id]),
            UserScope::OnlySelf(_) => Some(Vec::new()),
        };
    }

    pub fn require_user_readable(&self, user: &user::Model) -> Result<(), AppError> {
        if self.may_read_user(user) {
            Ok(())
        } else {
            Err(forbidden("this user is outside your organisation"))
        }
    }

    pub fn require_organisation_readable(&self, organisation_id: Uuid) -> Result<(), AppError> {
        if self.may_read_organisation(organisation_id) {
            Ok(())
        } else {
            Err(forbidden("this organisation is not yours"))
        }
    }

    /// The audit log names every change to everyone: admins only.
    pub fn require_audit_log(&self) -> Result<(), AppError> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(forbidden("only admins may read the audit log"))
        }
    }
}

fn forbidden(message: &str) -> AppError {
    AppError::Forbidden(message.to_owned())
}
