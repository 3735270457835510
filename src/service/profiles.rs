//! Lecturer profiles: what userhub records of a person's employment (staff id, job title,
//! department, contract FTE and dates, annual workload target). Userhub owns these, not Clerk:
//! Clerk's metadata is capped at 8 KB and travels in every session token.
//!
//! A profile is read by whoever may read its user (their organisation, admins) and changed by
//! whoever may manage its user (the organisation's admins, admins); every change is audited as
//! `user.profile_updated` and published as the user's `PROFILE_UPDATED` change.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, SubsecRound, Utc};
use entity::{lecturer_profile, user};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect, Set,
};
use serde_json::json;
use uuid::Uuid;

use super::audit::{Action, Change};
use super::{Origin, Services, Write};
use crate::auth::{Actor, Requester};
use crate::error::AppError;

/// The longest staff id, in characters.
pub const MAX_STAFF_ID_LENGTH: usize = 64;
/// The longest job title or department name, in characters.
pub const MAX_TEXT_LENGTH: usize = 200;
/// A year's hours: no workload target can exceed it.
pub const MAX_TARGET_HOURS: f64 = 8_760.0;

/// A change to a profile. `None` leaves a field as it is; `Some(None)` clears it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProfileUpdate {
    pub staff_id: Option<Option<String>>,
    pub job_title: Option<Option<String>>,
    pub department: Option<Option<String>>,
    pub contract_fte: Option<Option<f64>>,
    pub contract_start: Option<Option<NaiveDate>>,
    pub contract_end: Option<Option<NaiveDate>>,
    pub workload_target_hours: Option<Option<f64>>,
    pub access_until: Option<Option<DateTime<Utc>>>,
}

/// Whether the caller may read this user's profile, wherever the user was reached from (a
/// page, a mutation's result, a subscription's payload about a user who left): whoever may
/// read the user.
pub fn check_readable(actor: &Actor, user: &user::Model) -> Result<(), AppError> {
    actor.require_user_readable(user)
}

/// The profiles of these users; users without one are absent.
pub async fn by_user_ids<C: ConnectionTrait>(
    conn: &C,
    user_ids: &[Uuid],
) -> Result<HashMap<Uuid, lecturer_profile::Model>, AppError> {
    if user_ids.is_empty() {
        return Ok(HashMap::new());
    }
    Ok(lecturer_profile::Entity::find()
        .filter(lecturer_profile::Column::UserId.is_in(user_ids.iter().copied()))
        .all(conn)
        .await?
        .into_iter()
        .map(|profile| (profile.user_id, profile))
        .collect())
}

/// The profile as the audit trail shows it: every field, `null` for a profile not yet made.
pub(crate) fn snapshot(profile: Option<&lecturer_profile::Model>) -> serde_json::Value {
    let Some(profile) = profile else {
        return serde_json::Value::Null;
    };
    json!({
        "staffId": profile.staff_id,
        "jobTitle": profile.job_title,
        "department": profile.department,
        "contractFte": profile.contract_fte,
        "contractStart": profile.contract_start,
        "contractEnd": profile.contract_end,
        "workloadTargetHours": profile.workload_target_hours,
        "accessUntil": profile.access_until,
    })
}

/// The fields of a profile, without its keys and stamps: what an update compares.
#[derive(Debug, Clone, Default, PartialEq)]
struct Fields {
    staff_id: Option<String>,
    job_title: Option<String>,
    department: Option<String>,
    contract_fte: Option<f64>,
    contract_start: Option<NaiveDate>,
    contract_end: Option<NaiveDate>,
    workload_target_hours: Option<f64>,
    access_until: Option<DateTime<Utc>>,
}

impl Fields {
    fn of(profile: Option<&lecturer_profile::Model>) -> Fields {
        profile.map_or_else(Fields::default, |profile| Fields {
            staff_id: profile.staff_id.clone(),
            job_title: profile.job_title.clone(),
            department: profile.department.clone(),
            contract_fte: profile.contract_fte,
            contract_start: profile.contract_start,
            contract_end: profile.contract_end,
            workload_target_hours: profile.workload_target_hours,
            access_until: profile.access_until,
        })
    }

    /// These fields with `update` applied, each value checked, and the whole checked again
    /// (a contract cannot end before it starts, whichever of the two dates changed).
    fn updated(&self, update: ProfileUpdate) -> Result<Fields, AppError> {
        let mut next = self.clone();
        if let Some(staff_id) = update.staff_id {
            next.staff_id = staff_id
                .map(|id| text("input.staffId", &id, MAX_STAFF_ID_LENGTH))
                .transpose()?;
        }
        if let Some(job_title) = update.job_title {
            next.job_title = job_title
                .map(|title| text("input.jobTitle", &title, MAX_TEXT_LENGTH))
                .transpose()?;
        }
        if let Some(department) = update.department {
            next.department = department
                .map(|name| text("input.department", &name, MAX_TEXT_LENGTH))
                .transpose()?;
        }
        if let Some(fte) = update.contract_fte {
            if let Some(fte) = fte
                && !(fte.is_finite() && fte > 0.0 && fte <= 1.0)
            {
                return Err(AppError::validation(
                    "input.contractFte",
                    format!("must be more than 0 and at most 1 (full time), not {fte}"),
                ));
            }
            next.contract_fte = fte;
        }
        if let Some(hours) = update.workload_target_hours {
            if let Some(hours) = hours
                && !(hours.is_finite() && (0.0..=MAX_TARGET_HOURS).contains(&hours))
            {
                return Err(AppError::validation(
                    "input.workloadTargetHours",
                    format!("must be between 0 and {MAX_TARGET_HOURS} hours a year, not {hours}"),
                ));
            }
            next.workload_target_hours = hours;
        }
        if let Some(until) = update.access_until {
            // Stored as both databases store times, so a value read back equals the value
            // written and an unchanged one is seen as unchanged.
            next.access_until = until.map(|until| until.trunc_subsecs(6));
        }
        if let Some(start) = update.contract_start {
            next.contract_start = start;
        }
        if let Some(end) = update.contract_end {
            next.contract_end = end;
        }
        if let (Some(start), Some(end)) = (next.contract_start, next.contract_end)
            && end < start
        {
            return Err(AppError::validation(
                "input.contractEnd",
                format!("the contract cannot end ({end}) before it starts ({start})"),
            ));
        }
        Ok(next)
    }
}

/// A text field: trimmed, not empty (clear it with `null`), not too long, no control
/// characters (it is shown in tables and written to CSV).
pub(crate) fn text(field: &str, value: &str, max: usize) -> Result<String, AppError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(AppError::validation(
            field,
            "must not be empty (use null to clear it)",
        ));
    }
    if value.chars().count() > max {
        return Err(AppError::validation(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(AppError::validation(
            field,
            "must not contain control characters",
        ));
    }
    Ok(value.to_owned())
}

/// Changes a user's profile (making it on its first change), with its audit event and live
/// change, in one write. A change that changes nothing writes nothing. Answers the user and
/// their profile as they now are.
pub async fn update(
    services: &Services,
    requester: Requester<'_>,
    origin: &Origin,
    user_id: Uuid,
    update: ProfileUpdate,
) -> Result<(user::Model, Option<lecturer_profile::Model>), AppError> {
    let Services { db, events, .. } = services;
    let mut write = Write::begin(db, origin).await?;
    // The user's row, locked (PostgreSQL; SQLite's write lock is already held) so that two
    // first changes to one profile take turns rather than both inserting it.
    let user = user::Entity::find_by_id(user_id)
        .lock_exclusive()
        .one(write.conn())
        .await?
        .ok_or_else(|| AppError::not_found("user", user_id))?;
    if let Requester::User(actor) = requester {
        actor.require_manage_user(&user)?;
    }
    let current = lecturer_profile::Entity::find_by_id(user_id)
        .one(write.conn())
        .await?;
    let before = Fields::of(current.as_ref());
    let after = before.updated(update)?;
    if after == before {
        return Ok((user, current));
    }
    // An end to the last active admin's access would leave nobody to manage userhub once it
    // came; refused now rather than found out by the job.
    if after.access_until.is_some() && before.access_until.is_none() {
        super::users::ensure_not_last_admin(write.conn(), &user).await?;
    }
    let now = super::now();
    let row = lecturer_profile::ActiveModel {
        user_id: Set(user_id),
        staff_id: Set(after.staff_id),
        job_title: Set(after.job_title),
        department: Set(after.department),
        contract_fte: Set(after.contract_fte),
        contract_start: Set(after.contract_start),
        contract_end: Set(after.contract_end),
        workload_target_hours: Set(after.workload_target_hours),
        access_until: Set(after.access_until),
        created_at: Set(current.as_ref().map_or(now, |profile| profile.created_at)),
        updated_at: Set(now),
    };
    let saved = if current.is_some() {
        row.update(write.conn()).await?
    } else {
        row.insert(write.conn()).await?
    };
    write
        .audit(Change {
            action: Action::UserProfileUpdated,
            subject_id: user_id.to_string(),
            before: Some(snapshot(current.as_ref())),
            after: Some(snapshot(Some(&saved))),
        })
        .await?;
    write.profile_changed(user.clone(), saved.updated_at);
    write.commit(events).await?;
    Ok((user, Some(saved)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(text: &str) -> NaiveDate {
        text.parse().expect("a date")
    }

    #[test]
    fn a_contract_cannot_end_before_it_starts_whichever_date_changes() {
        let current = Fields {
            contract_start: Some(date("2026-09-01")),
            ..Fields::default()
        };
        let ends_early = ProfileUpdate {
            contract_end: Some(Some(date("2026-08-31"))),
            ..ProfileUpdate::default()
        };
        assert!(current.updated(ends_early).is_err());
        let ended = Fields {
            contract_end: Some(date("2027-08-31")),
            ..Fields::default()
        };
        let starts_late = ProfileUpdate {
            contract_start: Some(Some(date("2027-09-01"))),
            ..ProfileUpdate::default()
        };
        assert!(ended.updated(starts_late).is_err());
        let one_day = ProfileUpdate {
            contract_start: Some(Some(date("2027-08-31"))),
            ..ProfileUpdate::default()
        };
        assert!(ended.updated(one_day).is_ok());
    }

    #[test]
    fn fte_and_hours_are_bounded_and_text_is_trimmed() {
        let fields = Fields::default();
        for fte in [0.0, -0.5, 1.01, f64::NAN, f64::INFINITY] {
            let update = ProfileUpdate {
                contract_fte: Some(Some(fte)),
                ..ProfileUpdate::default()
            };
            assert!(fields.updated(update).is_err(), "{fte}");
        }
        for hours in [-1.0, 8_761.0, f64::NAN] {
            let update = ProfileUpdate {
                workload_target_hours: Some(Some(hours)),
                ..ProfileUpdate::default()
            };
            assert!(fields.updated(update).is_err(), "{hours}");
        }
        let update = ProfileUpdate {
            staff_id: Some(Some("  S-001 ".to_owned())),
            contract_fte: Some(Some(0.5)),
            ..ProfileUpdate::default()
        };
        let next = fields.updated(update).expect("valid");
        assert_eq!(next.staff_id.as_deref(), Some("S-001"));
        for bad in ["   ", "a\u{0}b", &"x".repeat(65)] {
            let update = ProfileUpdate {
                staff_id: Some(Some(bad.to_owned())),
                ..ProfileUpdate::default()
            };
            assert!(fields.updated(update).is_err(), "{bad:?}");
        }
    }
}
