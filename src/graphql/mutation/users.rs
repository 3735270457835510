use async_graphql::{Context, ID, InputObject, MaybeUndefined, Object, Result};
use chrono::{DateTime, Utc};

use super::origin;
use crate::graphql::caller;
use crate::graphql::services;
use crate::graphql::types::{Date, Role, User};
use crate::service::accounts::{self, AccountUpdate};
use crate::service::parse_id;
use crate::service::profiles::{self, ProfileUpdate};

#[derive(Default)]
pub struct UserMutation;

/// Changes to a user; a field left out is left as it is.
#[derive(Debug, Clone, Default, InputObject)]
pub struct UpdateUserInput {
    pub role: Option<Role>,
    /// `null` takes the user out of any organisation.
    pub organisation_id: MaybeUndefined<ID>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
}

/// Changes to a lecturer profile; a field left out is left as it is, `null` clears it.
#[derive(Debug, Clone, Default, InputObject)]
pub struct LecturerProfileInput {
    /// At most 64 characters.
    pub staff_id: MaybeUndefined<String>,
    /// At most 200 characters.
    pub job_title: MaybeUndefined<String>,
    /// At most 200 characters.
    pub department: MaybeUndefined<String>,
    /// More than 0, at most 1.
    pub contract_fte: MaybeUndefined<f64>,
    pub contract_start: MaybeUndefined<Date>,
    /// On or after `contractStart`.
    pub contract_end: MaybeUndefined<Date>,
    /// Hours a year, 0 to 8,760.
    pub workload_target_hours: MaybeUndefined<f64>,
    /// When the person's access ends (their contract's end): from then on they are suspended
    /// in Clerk by a scheduled job. A time already past suspends them at the next sweep.
    pub access_until: MaybeUndefined<DateTime<Utc>>,
}

/// `None` for a field left out, `Some(None)` for `null`.
pub(super) fn change<T>(value: MaybeUndefined<T>) -> Option<Option<T>> {
    match value {
        MaybeUndefined::Undefined => None,
        MaybeUndefined::Null => Some(None),
        MaybeUndefined::Value(value) => Some(Some(value)),
    }
}

#[Object]
impl UserMutation {
    /// Records a user's lecturer profile (staff id, job title, department, contract, workload
    /// target): organisation admins for their organisation's users, admins for anyone. Audited
    /// as `user.profile_updated`; subscribers see `PROFILE_UPDATED`.
    async fn update_lecturer_profile(
        &self,
        ctx: &Context<'_>,
        user_id: ID,
        input: LecturerProfileInput,
    ) -> Result<User> {
        let actor = caller(ctx).actor()?;
        let user_id = parse_id("userId", &user_id)?;
        let update = ProfileUpdate {
            staff_id: change(input.staff_id),
            job_title: change(input.job_title),
            department: change(input.department),
            contract_fte: change(input.contract_fte),
            contract_start: change(input.contract_start).map(|date| date.map(|date| date.0)),
            contract_end: change(input.contract_end).map(|date| date.map(|date| date.0)),
            workload_target_hours: change(input.workload_target_hours),
            access_until: change(input.access_until),
        };
        let (user, _) = profiles::update(
            services(ctx),
            actor.into(),
            &origin(ctx, actor),
            user_id,
            update,
        )
        .await?;
        Ok(User::one(user))
    }

    /// Changes a user's role, organisation or names: in Clerk first, then here.
    async fn update_user(&self, ctx: &Context<'_>, id: ID, input: UpdateUserInput) -> Result<User> {
        let actor = caller(ctx).actor()?;
        let id = parse_id("id", &id)?;
        let organisation_id = change(input.organisation_id)
            .map(|id| {
                id.map(|id| parse_id("input.organisationId", &id))
                    .transpose()
            })
            .transpose()?;
        let update = AccountUpdate {
            role: input.role.map(Into::into),
            organisation_id,
            first_name: input.first_name,
            last_name: input.last_name,
        };
        let user = accounts::update(services(ctx), actor, &origin(ctx, actor), id, update).await?;
        Ok(User::one(user))
    }

    /// Deletes the user in Clerk and deactivates them here (`isActive: false`); their row and
    /// audit trail stay.
    async fn remove_user(&self, ctx: &Context<'_>, id: ID) -> Result<User> {
        let actor = caller(ctx).actor()?;
        let id = parse_id("id", &id)?;
        let user = accounts::remove(services(ctx), actor, &origin(ctx, actor), id).await?;
        Ok(User::one(user))
    }

    /// Bans the user in Clerk (ending their sessions); reversible with `unsuspendUser`.
    async fn suspend_user(&self, ctx: &Context<'_>, id: ID) -> Result<User> {
        set_suspended(ctx, id, true).await
    }

    /// Lifts a suspension.
    async fn unsuspend_user(&self, ctx: &Context<'_>, id: ID) -> Result<User> {
        set_suspended(ctx, id, false).await
    }
}

async fn set_suspended(ctx: &Context<'_>, id: ID, suspend: bool) -> Result<User> {
    let actor = caller(ctx).actor()?;
    let id = parse_id("id", &id)?;
    let user =
        accounts::set_suspended(services(ctx), actor, &origin(ctx, actor), id, suspend).await?;
    Ok(User::one(user))
}
