//! An organisation's dashboard: its members by role and status, pending invitations, and how
//! many signed in lately. Counted by the database, a few statements whatever its size.

use chrono::{DateTime, Duration, Utc};
use entity::role::{InvitationStatus, Role};
use entity::{invitation, user};
use sea_orm::Iterable;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QuerySelect,
};
use uuid::Uuid;

use super::organisations;
use crate::auth::Actor;
use crate::error::AppError;

/// How far back "active lately" looks.
pub const ACTIVE_WITHIN_DAYS: i64 = 30;

/// One role's people in an organisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoleCounts {
    pub role: Role,
    /// Active and not suspended: they can sign in.
    pub active: u64,
    /// Active but banned in Clerk.
    pub suspended: u64,
    /// Removed (deleted in Clerk); their rows stay.
    pub removed: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrganisationStats {
    pub organisation_id: Uuid,
    /// Every role, in the order of `Role`, with zeros for a role nobody has.
    pub by_role: Vec<RoleCounts>,
    pub pending_invitations: u64,
    /// Members (active, suspended or not) who signed in within `ACTIVE_WITHIN_DAYS`.
    pub signed_in_lately: u64,
    /// Members (active, suspended or not) who never signed in.
    pub never_signed_in: u64,
    pub computed_at: DateTime<Utc>,
}

/// The dashboard of one organisation: admins, and that organisation's admins
/// (`auth::access`); `NOT_FOUND` for an unknown organisation.
pub async fn organisation<C: ConnectionTrait>(
    conn: &C,
    actor: &Actor,
    organisation_id: Uuid,
) -> Result<OrganisationStats, AppError> {
    actor.require_organisation_dashboard(organisation_id)?;
    organisations::get(conn, organisation_id).await?;
    let now = super::now();
    let groups: Vec<(Role, bool, bool, i64)> = user::Entity::find()
        .select_only()
        .column(user::Column::Role)
        .column(user::Column::IsActive)
        .column(user::Column::Banned)
        .column_as(Expr::col(user::Column::Id).count(), "people")
        .filter(user::Column::OrganisationId.eq(organisation_id))
        .group_by(user::Column::Role)
        .group_by(user::Column::IsActive)
        .group_by(user::Column::Banned)
        .into_tuple()
        .all(conn)
        .await?;
    let by_role = Role::iter()
        .map(|role| {
            let mut counts = RoleCounts {
                role,
                active: 0,
                suspended: 0,
                removed: 0,
            };
            for (_, is_active, banned, people) in groups.iter().filter(|group| group.0 == role) {
                let people = u64::try_from(*people).unwrap_or(0);
                match (is_active, banned) {
                    (false, _) => counts.removed += people,
                    (true, true) => counts.suspended += people,
                    (true, false) => counts.active += people,
                }
            }
            counts
        })
        .collect();
    let pending_invitations = invitation::Entity::find()
        .filter(invitation::Column::OrganisationId.eq(organisation_id))
        .filter(invitation::Column::Status.eq(InvitationStatus::Pending))
        .count(conn)
        .await?;
    let members = || {
        user::Entity::find()
            .filter(user::Column::OrganisationId.eq(organisation_id))
            .filter(user::Column::IsActive.eq(true))
    };
    let signed_in_lately = members()
        .filter(user::Column::LastSignInAt.gte(now - Duration::days(ACTIVE_WITHIN_DAYS)))
        .count(conn)
        .await?;
    let never_signed_in = members()
        .filter(user::Column::LastSignInAt.is_null())
        .count(conn)
        .await?;
    Ok(OrganisationStats {
        organisation_id,
        by_role,
        pending_invitations,
        signed_in_lately,
        never_signed_in,
        computed_at: now,
    })
}
