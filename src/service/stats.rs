//! An organisation's dashboard: its members by role and status, pending invitations, and how
//! many signed in lately. Counted by the database, a few statements whatever its size.

use chrono::{DateTime, Duration, Utc};
use entity::role::{InvitationStatus, Role};
use entity::{invitation, sign_in, user};
use sea_orm::Iterable;
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Query};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QuerySelect,
};
use uuid::Uuid;

use super::{organisations, sign_ins};
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

/// The most weeks of sign-ins one question asks for: half a year.
pub const MOST_WEEKS: u32 = 26;

/// One week's sign-ins into an organisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WeekOfSignIns {
    /// Monday, 00:00 UTC.
    pub week_start: DateTime<Utc>,
    /// Sessions begun by the organisation's members.
    pub sign_ins: u64,
    /// Members who began at least one.
    pub people: u64,
}

/// The organisation's sign-ins in each of the last `weeks` weeks (the current one last, so
/// far), from its members' sessions: one statement, a pair of sums per week. Access as the
/// dashboard's.
pub async fn sign_ins_by_week<C: ConnectionTrait>(
    conn: &C,
    actor: &Actor,
    organisation_id: Uuid,
    weeks: u32,
) -> Result<Vec<WeekOfSignIns>, AppError> {
    actor.require_organisation_dashboard(organisation_id)?;
    if !(1..=MOST_WEEKS).contains(&weeks) {
        return Err(AppError::validation(
            "weeks",
            format!("must be between 1 and {MOST_WEEKS}"),
        ));
    }
    let this_week = sign_ins::week_of(super::now());
    let starts: Vec<DateTime<Utc>> = (0..i64::from(weeks))
        .rev()
        .map(|back| this_week - Duration::weeks(back))
        .collect();
    let in_week = |start: DateTime<Utc>| {
        Expr::col((sign_in::Entity, sign_in::Column::StartedAt))
            .gte(start)
            .and(
                Expr::col((sign_in::Entity, sign_in::Column::StartedAt))
                    .lt(start + Duration::weeks(1)),
            )
    };
    let mut query = Query::select();
    for (n, start) in starts.iter().enumerate() {
        query
            .expr_as(
                Expr::case(in_week(*start), 1).finally(0).sum(),
                Alias::new(format!("sign_ins_{n}")),
            )
            .expr_as(
                Expr::case(
                    in_week(*start),
                    Expr::col((sign_in::Entity, sign_in::Column::ClerkUserId)),
                )
                .count_distinct(),
                Alias::new(format!("people_{n}")),
            );
    }
    query
        .from(sign_in::Entity)
        .inner_join(
            user::Entity,
            Expr::col((user::Entity, user::Column::ClerkId))
                .equals((sign_in::Entity, sign_in::Column::ClerkUserId)),
        )
        .and_where(Expr::col((user::Entity, user::Column::OrganisationId)).eq(organisation_id))
        .and_where(Expr::col((sign_in::Entity, sign_in::Column::StartedAt)).gte(starts[0]));
    let statement = conn.get_database_backend().build(&query);
    let row = conn.query_one_raw(statement).await?;
    let count = |column: String| -> Result<u64, AppError> {
        let value = match &row {
            // A sum over no rows is NULL.
            Some(row) => row.try_get::<Option<i64>>("", &column)?.unwrap_or(0),
            None => 0,
        };
        Ok(u64::try_from(value).unwrap_or(0))
    };
    starts
        .into_iter()
        .enumerate()
        .map(|(n, week_start)| {
            Ok(WeekOfSignIns {
                week_start,
                sign_ins: count(format!("sign_ins_{n}"))?,
                people: count(format!("people_{n}"))?,
            })
        })
        .collect()
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
