//! Every access rule of userhub, in one place (docs/architecture.md, "Access"):
//!
//! - anonymous callers see nothing but the schema;
//! - `MEMBER` and `LECTURER` read their own organisation (a user with none reads only
//!   themselves);
//! - `ORG_ADMIN` reads and manages the users of their own organisation, but cannot grant
//!   `ADMIN` nor move anyone to another organisation;
//! - `ADMIN` reads and does everything, the audit log included;
//! - nobody removes, suspends or demotes the last active admin (`service::users`
//!   `ensure_not_last_admin`, which must read the database).

use entity::role::Role;
use entity::user;
use uuid::Uuid;

use super::caller::Actor;
use crate::clerk::IfEmailTaken;
use crate::error::AppError;

/// Who asks the domain for something: a signed-in user, whose rights are checked here, or the
/// operator (the command line, local mode's set-up), who holds the database and Clerk
/// credentials already and so may do anything. Service entry points take one and check it;
/// resolvers only pass it on.
#[derive(Debug, Clone, Copy)]
pub enum Requester<'a> {
    User(&'a Actor),
    Operator,
}

impl<'a> From<&'a Actor> for Requester<'a> {
    fn from(actor: &'a Actor) -> Requester<'a> {
        Requester::User(actor)
    }
}

impl Requester<'_> {
    /// Organisations, sync and anything that spans the directory: admins (and the operator).
    pub fn require_admin(&self) -> Result<(), AppError> {
        match self {
            Requester::User(actor) => actor.require_admin(),
            Requester::Operator => Ok(()),
        }
    }

    /// Who a sync run records as having asked for it: a user id, or `cli`.
    pub fn name(&self) -> String {
        match self {
            Requester::User(actor) => actor.user.id.to_string(),
            Requester::Operator => "cli".to_owned(),
        }
    }
}

/// The users a caller may read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserScope {
    All,
    Organisation(Uuid),
    OnlySelf(Uuid),
}

/// What an answer computed for a caller may depend on, short of who they are: their role, their
/// organisation, and their own id only when they belong to none (and so read only themselves).
/// Two callers of one scope are given the same answer to anything that does not name the
/// caller (`me` does): a live subscription is resolved once for all its subscribers of one
/// scope (`graphql/fanout.rs`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Scope {
    role: Role,
    organisation_id: Option<Uuid>,
    only_self: Option<Uuid>,
}

impl Actor {
    pub fn scope(&self) -> Scope {
        Scope {
            role: self.user.role,
            organisation_id: self.user.organisation_id,
            only_self: match self.user_scope() {
                UserScope::OnlySelf(id) => Some(id),
                UserScope::All | UserScope::Organisation(_) => None,
            },
        }
    }

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

    /// The users this actor may list, given the organisation they asked for. Asking
    /// explicitly for another organisation is refused rather than answered with an empty page.
    pub fn readable_users(&self, asked: Option<Uuid>) -> Result<UserScope, AppError> {
        let scope = self.user_scope();
        match scope {
            UserScope::All => {}
            UserScope::Organisation(id) => {
                if asked.is_some_and(|asked| asked != id) {
                    return Err(forbidden("you may only read your own organisation"));
                }
            }
            UserScope::OnlySelf(_) => {
                if asked.is_some() {
                    return Err(forbidden("you belong to no organisation"));
                }
            }
        }
        Ok(scope)
    }

    /// The organisations this actor may list: `None` for all.
    pub fn readable_organisations(&self) -> Option<Vec<Uuid>> {
        match self.user_scope() {
            UserScope::All => None,
            UserScope::Organisation(id) => Some(vec![id]),
            UserScope::OnlySelf(_) => Some(Vec::new()),
        }
    }

    /// The invitations this actor may list, given the organisation they asked for: everything
    /// (`None`) for admins, their own organisation's for organisation admins, nothing for
    /// anyone else.
    pub fn readable_invitations(&self, asked: Option<Uuid>) -> Result<Option<Uuid>, AppError> {
        match (self.user.role, self.user.organisation_id) {
            (Role::Admin, _) => Ok(asked),
            (Role::OrgAdmin, Some(id)) => {
                if asked.is_some_and(|asked| asked != id) {
                    return Err(forbidden("you may only read your own organisation"));
                }
                Ok(Some(id))
            }
            _ => Err(forbidden(
                "only admins and organisation admins read invitations",
            )),
        }
    }

    /// Whether a live change is one this actor may see: it concerns a user they may read, or
    /// a user leaving their organisation.
    pub fn may_see_change(&self, change: &crate::events::UserChange) -> bool {
        match self.user_scope() {
            UserScope::All => true,
            UserScope::Organisation(id) => change.concerns_organisation(id),
            UserScope::OnlySelf(id) => change.user.id == id,
        }
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

    /// An organisation's dashboard (its counts): admins, and that organisation's admins.
    pub fn require_organisation_dashboard(&self, organisation_id: Uuid) -> Result<(), AppError> {
        match (self.user.role, self.user.organisation_id) {
            (Role::Admin, _) => Ok(()),
            (Role::OrgAdmin, Some(own)) if own == organisation_id => Ok(()),
            _ => Err(forbidden(
                "only admins and the organisation's admins see its dashboard",
            )),
        }
    }

    /// A user's sign-in history (when, from which device and country): the user themself,
    /// their organisation's admins, and admins. Colleagues see `lastSignInAt` and
    /// `lastActiveAt` only.
    pub fn require_activity_readable(&self, target: &user::Model) -> Result<(), AppError> {
        if self.user.id == target.id {
            return Ok(());
        }
        match (self.user.role, self.user.organisation_id) {
            (Role::Admin, _) => Ok(()),
            (Role::OrgAdmin, Some(own)) if target.organisation_id == Some(own) => Ok(()),
            _ => Err(forbidden(
                "only the user, their organisation's admins and admins see their sign-ins",
            )),
        }
    }

    /// Bulk operations on users: admins, and organisation admins (each user is then checked as
    /// the single operation checks them).
    pub fn require_bulk(&self) -> Result<(), AppError> {
        match self.user.role {
            Role::Admin | Role::OrgAdmin => Ok(()),
            _ => Err(forbidden(
                "only admins and organisation admins run bulk operations",
            )),
        }
    }

    /// A bulk job: the admin or organisation admin who asked for it, and admins.
    pub fn require_bulk_job(&self, requested_by: Uuid) -> Result<(), AppError> {
        if self.is_admin() || self.user.id == requested_by {
            Ok(())
        } else {
            Err(forbidden("this bulk job is someone else's"))
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

/// A change to a user that a caller asks for.
#[derive(Debug, Clone, Default)]
pub struct RequestedChange {
    pub role: Option<Role>,
    /// `Some(None)` takes the user out of any organisation.
    pub organisation_id: Option<Option<Uuid>>,
}

impl Actor {
    /// May this actor manage (update, suspend, remove) `target` at all?
    pub fn require_manage_user(&self, target: &user::Model) -> Result<(), AppError> {
        match (self.user.role, self.user.organisation_id) {
            (Role::Admin, _) => Ok(()),
            (Role::OrgAdmin, Some(own)) if target.organisation_id == Some(own) => {
                if target.role == Role::Admin {
                    Err(forbidden("an organisation admin cannot manage an admin"))
                } else {
                    Ok(())
                }
            }
            (Role::OrgAdmin, _) => Err(forbidden("this user is outside your organisation")),
            _ => Err(forbidden(
                "only admins and organisation admins manage users",
            )),
        }
    }

    /// May this actor make `change` to `target`? Checks `require_manage_user` first.
    pub fn require_user_change(
        &self,
        target: &user::Model,
        change: &RequestedChange,
    ) -> Result<(), AppError> {
        self.require_manage_user(target)?;
        if self.is_admin() {
            return Ok(());
        }
        if change.role == Some(Role::Admin) {
            return Err(forbidden("only admins can grant the admin role"));
        }
        if let Some(organisation) = change.organisation_id
            && organisation != self.user.organisation_id
        {
            return Err(forbidden(
                "an organisation admin cannot move users to another organisation",
            ));
        }
        Ok(())
    }

    /// May this actor invite someone with `role` into `organisation_id`?
    pub fn require_invite(
        &self,
        role: Role,
        organisation_id: Option<Uuid>,
    ) -> Result<(), AppError> {
        match self.user.role {
            Role::Admin => Ok(()),
            Role::OrgAdmin if role == Role::Admin => {
                Err(forbidden("only admins can grant the admin role"))
            }
            Role::OrgAdmin
                if organisation_id.is_some() && organisation_id == self.user.organisation_id =>
            {
                Ok(())
            }
            Role::OrgAdmin => Err(forbidden(
                "an organisation admin invites into their own organisation only",
            )),
            _ => Err(forbidden(
                "only admins and organisation admins invite users",
            )),
        }
    }

    /// What Clerk is told to do with an invitation to an email it already knows (an account,
    /// or another pending invitation). Invitations in the actor's scope were refused before
    /// (`service::invitations::check`), so what Clerk would refuse now lies outside it. Only an
    /// admin's scope is the whole directory; for anyone else Clerk's refusal would tell
    /// whether the email is known in another organisation, so it is sent all the same.
    pub fn invitation_if_email_taken(&self) -> IfEmailTaken {
        if self.is_admin() {
            IfEmailTaken::Refuse
        } else {
            IfEmailTaken::InviteAnyway
        }
    }

    /// Organisations, sync and anything that spans the directory: admins only.
    pub fn require_admin(&self) -> Result<(), AppError> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(forbidden("only admins may do this"))
        }
    }
}

fn forbidden(message: &str) -> AppError {
    AppError::Forbidden(message.to_owned())
}

/// Rows for unit tests.
#[cfg(test)]
pub(crate) mod fixtures {
    use entity::role::Role;
    use entity::user;
    use uuid::Uuid;

    /// An active user, not banned, with a fresh id.
    pub(crate) fn user(role: Role, organisation_id: Option<Uuid>) -> user::Model {
        let now = chrono::Utc::now();
        user::Model {
            id: Uuid::now_v7(),
            clerk_id: "user_x".to_owned(),
            email: "x@x.test".to_owned(),
            first_name: None,
            last_name: None,
            image_url: None,
            role,
            organisation_id,
            is_active: true,
            banned: false,
            last_sign_in_at: None,
            last_active_at: None,
            clerk_updated_at: 0,
            created_at: now,
            updated_at: now,
            deactivated_at: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn actor(role: Role, organisation_id: Option<Uuid>) -> Actor {
        Actor {
            user: user(role, organisation_id),
            session_id: None,
        }
    }

    use super::fixtures::user;

    #[test]
    fn organisation_admins_manage_their_own_organisation_only() {
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let org_admin = actor(Role::OrgAdmin, Some(a));
        let lecturer_in_a = user(Role::Lecturer, Some(a));
        assert!(org_admin.require_manage_user(&lecturer_in_a).is_ok());
        assert!(
            org_admin
                .require_manage_user(&user(Role::Member, Some(b)))
                .is_err()
        );
        assert!(
            org_admin
                .require_manage_user(&user(Role::Admin, Some(a)))
                .is_err()
        );
        let promote = RequestedChange {
            role: Some(Role::OrgAdmin),
            organisation_id: None,
        };
        assert!(
            org_admin
                .require_user_change(&lecturer_in_a, &promote)
                .is_ok()
        );
        let grant_admin = RequestedChange {
            role: Some(Role::Admin),
            organisation_id: None,
        };
        assert!(
            org_admin
                .require_user_change(&lecturer_in_a, &grant_admin)
                .is_err()
        );
        let move_away = RequestedChange {
            role: None,
            organisation_id: Some(Some(b)),
        };
        assert!(
            org_admin
                .require_user_change(&lecturer_in_a, &move_away)
                .is_err()
        );
        let take_out = RequestedChange {
            role: None,
            organisation_id: Some(None),
        };
        assert!(
            org_admin
                .require_user_change(&lecturer_in_a, &take_out)
                .is_err()
        );
        assert!(org_admin.require_invite(Role::Lecturer, Some(a)).is_ok());
        assert!(org_admin.require_invite(Role::Lecturer, Some(b)).is_err());
        assert!(org_admin.require_invite(Role::Admin, Some(a)).is_err());
        assert!(org_admin.require_admin().is_err());
    }

    #[test]
    fn members_and_lecturers_manage_nobody_and_admins_everybody() {
        let a = Uuid::now_v7();
        for role in [Role::Member, Role::Lecturer] {
            let caller = actor(role, Some(a));
            assert!(
                caller
                    .require_manage_user(&user(Role::Member, Some(a)))
                    .is_err()
            );
            assert!(caller.require_invite(Role::Member, Some(a)).is_err());
        }
        let admin = actor(Role::Admin, None);
        let change = RequestedChange {
            role: Some(Role::Admin),
            organisation_id: Some(None),
        };
        assert!(
            admin
                .require_user_change(&user(Role::Member, Some(a)), &change)
                .is_ok()
        );
        assert!(admin.require_invite(Role::Admin, None).is_ok());
        assert!(admin.require_admin().is_ok());
    }
}
