//! The root `Query` type, merged from one part per domain.

pub mod audit;
pub mod invitations;
pub mod organisations;
pub mod sync;
pub mod users;

use async_graphql::MergedObject;

#[derive(Default, MergedObject)]
pub struct Query(
    users::UserQuery,
    organisations::OrganisationQuery,
    audit::AuditQuery,
    invitations::InvitationQuery,
    sync::SyncQuery,
);
