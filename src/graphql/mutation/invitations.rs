use async_graphql::{Context, ID, InputObject, Object, Result, SimpleObject};

use super::origin;
use crate::error::AppError;
use crate::graphql::caller;
use crate::graphql::services;
use crate::graphql::types::{Invitation, Role};
use crate::service::invitations::{self, NewInvitation};
use crate::service::parse_id;

#[derive(Default)]
pub struct InvitationMutation;

#[derive(Debug, Clone, InputObject)]
pub struct InviteUserInput {
    pub email: String,
    #[graphql(default_with = "Role::Member")]
    pub role: Role,
    pub organisation_id: Option<ID>,
    /// Where Clerk sends the person after they accept.
    pub redirect_url: Option<String>,
}

/// What happened to one invitation of `inviteUsers`: the invitation, or why not.
#[derive(SimpleObject)]
pub struct InviteUserResult {
    pub email: String,
    pub invitation: Option<Invitation>,
    pub error: Option<ItemError>,
}

/// An error about one item of a bulk mutation; the same codes as `extensions.code`.
#[derive(SimpleObject)]
pub struct ItemError {
    pub code: String,
    pub message: String,
    pub field: Option<String>,
}

impl From<AppError> for ItemError {
    fn from(error: AppError) -> ItemError {
        error.log_if_server_fault();
        ItemError {
            code: error.code().to_owned(),
            field: error.field().map(str::to_owned),
            message: error.public_message(),
        }
    }
}

fn new_invitation(input: InviteUserInput) -> Result<NewInvitation, AppError> {
    Ok(NewInvitation {
        email: input.email,
        role: input.role.into(),
        organisation_id: input
            .organisation_id
            .map(|id| parse_id("organisationId", &id))
            .transpose()?,
        redirect_url: input.redirect_url,
    })
}

#[Object]
impl InvitationMutation {
    /// Invites a person: Clerk emails them, and when they sign up they get this role and
    /// organisation. Organisation admins invite into their own organisation, never as admins.
    async fn invite_user(&self, ctx: &Context<'_>, input: InviteUserInput) -> Result<Invitation> {
        let actor = caller(ctx).actor()?;
        let invitation = invitations::invite(
            services(ctx),
            actor,
            &origin(ctx, actor),
            new_invitation(input)?,
        )
        .await?;
        Ok(Invitation::one(invitation))
    }

    /// Invites several people; each item reports its own success or error. The caller must be
    /// allowed every item, or nothing is sent.
    async fn invite_users(
        &self,
        ctx: &Context<'_>,
        inputs: Vec<InviteUserInput>,
    ) -> Result<Vec<InviteUserResult>> {
        let actor = caller(ctx).actor()?;
        let emails: Vec<String> = inputs.iter().map(|input| input.email.clone()).collect();
        let items = inputs.into_iter().map(new_invitation).collect();
        let outcomes =
            invitations::invite_many(services(ctx), actor, &origin(ctx, actor), items).await?;
        Ok(emails
            .into_iter()
            .zip(outcomes)
            .map(|(email, outcome)| match outcome {
                Ok(invitation) => InviteUserResult {
                    email,
                    invitation: Some(Invitation::one(invitation)),
                    error: None,
                },
                Err(error) => InviteUserResult {
                    email,
                    invitation: None,
                    error: Some(error.into()),
                },
            })
            .collect())
    }

    /// Revokes a pending invitation, in Clerk and here.
    async fn revoke_invitation(&self, ctx: &Context<'_>, id: ID) -> Result<Invitation> {
        let actor = caller(ctx).actor()?;
        let id = parse_id("id", &id)?;
        let invitation = invitations::revoke(services(ctx), actor, &origin(ctx, actor), id).await?;
        Ok(Invitation::one(invitation))
    }
}
