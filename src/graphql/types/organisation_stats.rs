use async_graphql::{ID, Object};
use chrono::{DateTime, Utc};

use super::Role;
use crate::service::stats;

/// An organisation's dashboard: its people by role and status, pending invitations, and who
/// signed in lately. Admins, and the organisation's admins.
pub struct OrganisationStats(pub(crate) stats::OrganisationStats);

#[Object]
impl OrganisationStats {
    async fn organisation_id(&self) -> ID {
        ID(self.0.organisation_id.to_string())
    }

    /// Members who have not been removed (suspended ones included).
    async fn members(&self) -> u64 {
        self.0
            .by_role
            .iter()
            .map(|counts| counts.active + counts.suspended)
            .sum()
    }

    /// Every role, with zeros for a role nobody has.
    async fn by_role(&self) -> Vec<RoleStats> {
        self.0.by_role.iter().copied().map(RoleStats).collect()
    }

    /// Invitations into the organisation not yet accepted, revoked or expired.
    async fn pending_invitations(&self) -> u64 {
        self.0.pending_invitations
    }

    /// Members who signed in within the last 30 days.
    async fn signed_in_last_30_days(&self) -> u64 {
        self.0.signed_in_lately
    }

    /// Members who have never signed in.
    async fn never_signed_in(&self) -> u64 {
        self.0.never_signed_in
    }

    /// When these counts were taken.
    async fn computed_at(&self) -> DateTime<Utc> {
        self.0.computed_at
    }
}

/// One role's people in an organisation.
pub struct RoleStats(stats::RoleCounts);

#[Object]
impl RoleStats {
    async fn role(&self) -> Role {
        self.0.role.into()
    }

    /// Can sign in.
    async fn active(&self) -> u64 {
        self.0.active
    }

    /// Banned in Clerk.
    async fn suspended(&self) -> u64 {
        self.0.suspended
    }

    /// Deleted in Clerk; their rows and history stay.
    async fn removed(&self) -> u64 {
        self.0.removed
    }
}
