use async_graphql::{Context, ID, InputObject, MaybeUndefined, Object, Result};

use super::origin;
use crate::graphql::caller;
use crate::graphql::services;
use crate::graphql::types::{Role, User};
use crate::service::accounts::{self, AccountUpdate};
use crate::service::parse_id;

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

#[Object]
impl UserMutation {
    /// Changes a user's role, organisation or names: in Clerk first, then here.
    async fn update_user(&self, ctx: &Context<'_>, id: ID, input: UpdateUserInput) -> Result<User> {
        let actor = caller(ctx).actor()?;
        let id = parse_id("id", &id)?;
        let organisation_id = match input.organisation_id {
            MaybeUndefined::Undefined => None,
            MaybeUndefined::Null => Some(None),
            MaybeUndefined::Value(id) => Some(Some(parse_id("input.organisationId", &id)?)),
        };
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
