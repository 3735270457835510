//! The root `Mutation` type, merged from one part per domain. Every mutation asks the access
//! rules, then calls one service function; the service writes the audit event.

pub mod bulk;
pub mod invitations;
pub mod organisations;
pub mod sync;
pub mod users;
pub mod workload;

use async_graphql::{Context, MergedObject};

use super::RequestId;
use crate::auth::Actor;
use crate::service::Origin;

#[derive(Default, MergedObject)]
pub struct Mutation(
    users::UserMutation,
    invitations::InvitationMutation,
    organisations::OrganisationMutation,
    sync::SyncMutation,
    workload::WorkloadMutation,
    bulk::BulkMutation,
);

/// The audit origin of a mutation: its actor and the request it came in.
pub(crate) fn origin(ctx: &Context<'_>, actor: &Actor) -> Origin {
    let request_id = ctx
        .data_opt::<RequestId>()
        .and_then(|request_id| request_id.0.clone());
    actor.origin(request_id)
}
