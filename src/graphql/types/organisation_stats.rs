use async_graphql::{Context, ID, Object, Result};
use chrono::{DateTime, Utc};

use super::{OrganisationWorkload, Role};
use crate::graphql::{caller, services};
use crate::service::stats;
use crate::service::workload::{self, AcademicYear};

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

    /// Sign-ins by the organisation's members in each of the last `weeks` weeks (1 to 26,
    /// default 8), oldest first; weeks start on Monday, 00:00 UTC, and the last is this week
    /// so far.
    async fn sign_ins_by_week(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 8)] weeks: i32,
    ) -> Result<Vec<WeekOfSignIns>> {
        let actor = caller(ctx).actor()?;
        let weeks = u32::try_from(weeks).unwrap_or(0);
        Ok(
            stats::sign_ins_by_week(&services(ctx).db, actor, self.0.organisation_id, weeks)
                .await?
                .into_iter()
                .map(WeekOfSignIns)
                .collect(),
        )
    }

    /// The organisation's workload in an academic year (the current one when left out), as
    /// `organisationWorkload` answers it.
    async fn workload(
        &self,
        ctx: &Context<'_>,
        academic_year: Option<String>,
    ) -> Result<OrganisationWorkload> {
        let actor = caller(ctx).actor()?;
        let year = AcademicYear::or_current("academicYear", academic_year.as_deref())?;
        Ok(OrganisationWorkload(
            workload::organisation(&services(ctx).db, actor, self.0.organisation_id, year).await?,
        ))
    }

    /// When these counts were taken.
    async fn computed_at(&self) -> DateTime<Utc> {
        self.0.computed_at
    }
}

/// One week's sign-ins into an organisation.
pub struct WeekOfSignIns(stats::WeekOfSignIns);

#[Object]
impl WeekOfSignIns {
    /// Monday, 00:00 UTC.
    async fn week_start(&self) -> DateTime<Utc> {
        self.0.week_start
    }

    /// Sessions begun by members.
    async fn sign_ins(&self) -> u64 {
        self.0.sign_ins
    }

    /// Members who signed in at least once.
    async fn people(&self) -> u64 {
        self.0.people
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
