use std::sync::Arc;

use async_graphql::{Context, Enum, ID, Object, Result};
use chrono::{DateTime, Utc};
use entity::invitation;
use entity::role::InvitationStatus as StoredStatus;

use super::connection::connection;
use super::{Organisation, Role};
use crate::graphql::batch::UserSet;
use crate::service::pagination::Page;

/// An invitation to join, sent by Clerk by email.
#[derive(Clone)]
pub struct Invitation {
    pub(crate) model: invitation::Model,
    set: Arc<UserSet>,
}

impl Invitation {
    pub(crate) fn page(page: Page<invitation::Model>) -> Page<Invitation> {
        let set = UserSet::referring_to(
            page.edges
                .iter()
                .filter_map(|edge| edge.node.organisation_id),
        );
        page.map(|model| Invitation {
            model,
            set: set.clone(),
        })
    }

    pub(crate) fn one(model: invitation::Model) -> Invitation {
        let set = UserSet::referring_to(model.organisation_id);
        Invitation { model, set }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum InvitationStatus {
    Pending,
    Accepted,
    Revoked,
    Expired,
}

impl From<StoredStatus> for InvitationStatus {
    fn from(status: StoredStatus) -> InvitationStatus {
        match status {
            StoredStatus::Pending => InvitationStatus::Pending,
            StoredStatus::Accepted => InvitationStatus::Accepted,
            StoredStatus::Revoked => InvitationStatus::Revoked,
            StoredStatus::Expired => InvitationStatus::Expired,
        }
    }
}

impl From<InvitationStatus> for StoredStatus {
    fn from(status: InvitationStatus) -> StoredStatus {
        match status {
            InvitationStatus::Pending => StoredStatus::Pending,
            InvitationStatus::Accepted => StoredStatus::Accepted,
            InvitationStatus::Revoked => StoredStatus::Revoked,
            InvitationStatus::Expired => StoredStatus::Expired,
        }
    }
}

#[Object]
impl Invitation {
    async fn id(&self) -> ID {
        ID(self.model.id.to_string())
    }

    /// The invitation's id in Clerk (`inv_...`).
    async fn clerk_invitation_id(&self) -> &str {
        &self.model.clerk_invitation_id
    }

    async fn email(&self) -> &str {
        &self.model.email
    }

    /// The role the person gets when they accept.
    async fn role(&self) -> Role {
        self.model.role.into()
    }

    async fn organisation_id(&self) -> Option<ID> {
        self.model.organisation_id.map(|id| ID(id.to_string()))
    }

    /// The organisation the person joins when they accept. Batched across a page.
    async fn organisation(&self, ctx: &Context<'_>) -> Result<Option<Organisation>> {
        let Some(organisation_id) = self.model.organisation_id else {
            return Ok(None);
        };
        Ok(self
            .set
            .organisation(ctx, organisation_id)
            .await?
            .map(|(model, set)| Organisation { model, set }))
    }

    async fn status(&self) -> InvitationStatus {
        self.model.status.into()
    }

    /// The id of the user who sent it.
    async fn invited_by_id(&self) -> Option<ID> {
        self.model.invited_by.map(|id| ID(id.to_string()))
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.model.created_at
    }

    async fn updated_at(&self) -> DateTime<Utc> {
        self.model.updated_at
    }
}

connection!(
    InvitationConnection,
    InvitationEdge,
    Invitation,
    "invitations"
);
