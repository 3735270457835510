//! Workload: the duties allocated to people for an academic year (teaching a module,
//! assessment, supervision, administration), each with its hours, set against the person's
//! target: their profile's own target when it has one, otherwise their contract FTE times
//! their organisation's standard hours.
//!
//! Read by whoever may read the person, allocated by whoever may manage them (`auth::access`);
//! every allocation, change and removal is audited on the person (`user.activity_*`) and
//! published as their `WORKLOAD_CHANGED` change, so dashboards and the response cache hear of
//! it on every replica.

use std::collections::HashMap;

use chrono::{DateTime, Datelike, Utc};
use entity::role::ActivityKind;
use entity::{activity, lecturer_profile, organisation, user};
use sea_orm::sea_query::{Expr, ExprTrait, NullOrdering};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, JoinType, Order, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, QueryTrait, RelationTrait, Set,
};
use serde_json::json;
use uuid::Uuid;

use super::audit::{Action, Change};
use super::profiles::text;
use super::{Origin, Services, Write, organisations};
use crate::auth::{Actor, Requester};
use crate::error::AppError;

/// The most hours one activity can carry: a year's.
pub const MAX_ACTIVITY_HOURS: f64 = 8_760.0;
/// The most activities one person can hold in one year: a bound on what a page of workloads
/// reads, far above any real timetable.
pub const MAX_ACTIVITIES_PER_YEAR: u64 = 500;
const MAX_MODULE_CODE_LENGTH: usize = 32;
const MAX_TERM_LENGTH: usize = 32;
const MAX_NAME_LENGTH: usize = 200;

/// An academic year, spelt `2026/27`: it starts on 1 September of its first calendar year.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AcademicYear(String);

impl AcademicYear {
    /// Reads `2026/27`; the second part must be the year after the first.
    pub fn parse(field: &str, value: &str) -> Result<AcademicYear, AppError> {
        let invalid = || {
            AppError::validation(
                field,
                format!("must be an academic year such as 2026/27, not {value:?}"),
            )
        };
        let (first, second) = value.trim().split_once('/').ok_or_else(invalid)?;
        let (Ok(first), Ok(second)) = (first.parse::<u16>(), second.parse::<u16>()) else {
            return Err(invalid());
        };
        let valid = (2000..=2098).contains(&first) && second == (first + 1) % 100;
        if valid && value.trim().len() == 7 {
            Ok(AcademicYear(format!("{first}/{second:02}")))
        } else {
            Err(invalid())
        }
    }

    /// The academic year `at` falls in.
    pub fn of(at: DateTime<Utc>) -> AcademicYear {
        let first = if at.month() >= 9 {
            at.year()
        } else {
            at.year() - 1
        };
        AcademicYear(format!("{first}/{:02}", (first + 1) % 100))
    }

    /// The year a question names, or the current one.
    pub fn or_current(field: &str, value: Option<&str>) -> Result<AcademicYear, AppError> {
        value.map_or_else(
            || Ok(AcademicYear::of(super::now())),
            |value| AcademicYear::parse(field, value),
        )
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What a new activity needs.
#[derive(Debug, Clone, PartialEq)]
pub struct NewActivity {
    pub academic_year: String,
    pub term: Option<String>,
    pub kind: ActivityKind,
    pub module_code: Option<String>,
    pub name: String,
    pub hours: f64,
}

/// A change to an activity. `None` leaves a field as it is; `Some(None)` clears it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ActivityUpdate {
    pub academic_year: Option<String>,
    pub term: Option<Option<String>>,
    pub kind: Option<ActivityKind>,
    pub module_code: Option<Option<String>>,
    pub name: Option<String>,
    pub hours: Option<f64>,
}

/// An activity's fields, checked.
#[derive(Debug, Clone, PartialEq)]
struct Fields {
    academic_year: AcademicYear,
    term: Option<String>,
    kind: ActivityKind,
    module_code: Option<String>,
    name: String,
    hours: f64,
}

impl Fields {
    fn new(new: NewActivity) -> Result<Fields, AppError> {
        Ok(Fields {
            academic_year: AcademicYear::parse("input.academicYear", &new.academic_year)?,
            term: new.term.map(|term| term_text(&term)).transpose()?,
            kind: new.kind,
            module_code: new.module_code.map(|code| module_code(&code)).transpose()?,
            name: text("input.name", &new.name, MAX_NAME_LENGTH)?,
            hours: hours(new.hours)?,
        })
    }

    fn of(activity: &activity::Model) -> Fields {
        Fields {
            academic_year: AcademicYear(activity.academic_year.clone()),
            term: activity.term.clone(),
            kind: activity.kind,
            module_code: activity.module_code.clone(),
            name: activity.name.clone(),
            hours: activity.hours,
        }
    }

    fn updated(&self, update: ActivityUpdate) -> Result<Fields, AppError> {
        let mut next = self.clone();
        if let Some(year) = update.academic_year {
            next.academic_year = AcademicYear::parse("input.academicYear", &year)?;
        }
        if let Some(term) = update.term {
            next.term = term.map(|term| term_text(&term)).transpose()?;
        }
        if let Some(kind) = update.kind {
            next.kind = kind;
        }
        if let Some(code) = update.module_code {
            next.module_code = code.map(|code| module_code(&code)).transpose()?;
        }
        if let Some(name) = update.name {
            next.name = text("input.name", &name, MAX_NAME_LENGTH)?;
        }
        if let Some(value) = update.hours {
            next.hours = hours(value)?;
        }
        Ok(next)
    }
}

fn term_text(term: &str) -> Result<String, AppError> {
    text("input.term", term, MAX_TERM_LENGTH)
}

/// Module codes are compared and shown in capitals (`cs101` is `CS101`).
fn module_code(code: &str) -> Result<String, AppError> {
    text("input.moduleCode", code, MAX_MODULE_CODE_LENGTH).map(|code| code.to_uppercase())
}

fn hours(hours: f64) -> Result<f64, AppError> {
    if hours.is_finite() && hours > 0.0 && hours <= MAX_ACTIVITY_HOURS {
        // Hundredths of an hour: sums then compare as people add them up.
        Ok((hours * 100.0).round() / 100.0)
    } else {
        Err(AppError::validation(
            "input.hours",
            format!("must be more than 0 and at most {MAX_ACTIVITY_HOURS}, not {hours}"),
        ))
    }
}

/// The activity as the audit trail shows it.
fn snapshot(activity: &activity::Model) -> serde_json::Value {
    json!({
        "activityId": activity.id,
        "academicYear": activity.academic_year,
        "term": activity.term,
        "kind": activity.kind,
        "moduleCode": activity.module_code,
        "name": activity.name,
        "hours": activity.hours,
    })
}

/// The person an allocation is for, locked for this write (PostgreSQL; SQLite's write lock
/// is already held) so that two allocations cannot both pass the per-year bound, and checked:
/// the caller manages them, and they have not been removed.
async fn lock_person(
    write: &Write,
    requester: Requester<'_>,
    user_id: Uuid,
) -> Result<user::Model, AppError> {
    let person = user::Entity::find_by_id(user_id)
        .lock_exclusive()
        .one(write.conn())
        .await?
        .ok_or_else(|| AppError::not_found("user", user_id))?;
    if let Requester::User(actor) = requester {
        actor.require_manage_user(&person)?;
    }
    Ok(person)
}

fn require_active(person: &user::Model) -> Result<(), AppError> {
    if person.is_active {
        Ok(())
    } else {
        Err(AppError::Conflict(
            "this user was removed: their workload can no longer change".to_owned(),
        ))
    }
}

async fn ensure_room<C: ConnectionTrait>(
    conn: &C,
    user_id: Uuid,
    year: &AcademicYear,
) -> Result<(), AppError> {
    let held = activity::Entity::find()
        .filter(activity::Column::UserId.eq(user_id))
        .filter(activity::Column::AcademicYear.eq(year.as_str()))
        .count(conn)
        .await?;
    if held >= MAX_ACTIVITIES_PER_YEAR {
        return Err(AppError::Conflict(format!(
            "this user already holds {MAX_ACTIVITIES_PER_YEAR} activities in {}",
            year.as_str()
        )));
    }
    Ok(())
}

/// Allocates an activity to a person, with its audit event and live change. Answers the
/// person and the activity.
pub async fn allocate(
    services: &Services,
    requester: Requester<'_>,
    origin: &Origin,
    user_id: Uuid,
    new: NewActivity,
) -> Result<(user::Model, activity::Model), AppError> {
    let fields = Fields::new(new)?;
    let Services { db, events, .. } = services;
    let mut write = Write::begin(db, origin).await?;
    let person = lock_person(&write, requester, user_id).await?;
    require_active(&person)?;
    ensure_room(write.conn(), user_id, &fields.academic_year).await?;
    let now = super::now();
    let saved = activity::ActiveModel {
        id: Set(Uuid::now_v7()),
        user_id: Set(user_id),
        academic_year: Set(fields.academic_year.0),
        term: Set(fields.term),
        kind: Set(fields.kind),
        module_code: Set(fields.module_code),
        name: Set(fields.name),
        hours: Set(fields.hours),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(write.conn())
    .await?;
    write
        .audit(Change {
            action: Action::UserActivityAllocated,
            subject_id: user_id.to_string(),
            before: None,
            after: Some(snapshot(&saved)),
        })
        .await?;
    write.workload_changed(person.clone(), now);
    write.commit(events).await?;
    Ok((person, saved))
}

/// The activity and its person, the person locked for this write.
async fn lock_activity(
    write: &Write,
    requester: Requester<'_>,
    activity_id: Uuid,
) -> Result<(user::Model, activity::Model), AppError> {
    // Read once to learn whose it is, then again under the person's lock: an activity is
    // only changed under its person's lock, so the second read is what stands.
    let owner = activity::Entity::find_by_id(activity_id)
        .one(write.conn())
        .await?
        .ok_or_else(|| AppError::not_found("activity", activity_id))?
        .user_id;
    let person = lock_person(write, requester, owner).await?;
    let found = activity::Entity::find_by_id(activity_id)
        .one(write.conn())
        .await?
        .ok_or_else(|| AppError::not_found("activity", activity_id))?;
    Ok((person, found))
}

/// Changes an activity, with its audit event and live change. A change that changes nothing
/// writes nothing.
pub async fn update(
    services: &Services,
    requester: Requester<'_>,
    origin: &Origin,
    activity_id: Uuid,
    update: ActivityUpdate,
) -> Result<(user::Model, activity::Model), AppError> {
    let Services { db, events, .. } = services;
    let mut write = Write::begin(db, origin).await?;
    let (person, current) = lock_activity(&write, requester, activity_id).await?;
    let before = Fields::of(&current);
    let after = before.updated(update)?;
    if after == before {
        return Ok((person, current));
    }
    require_active(&person)?;
    if after.academic_year != before.academic_year {
        ensure_room(write.conn(), person.id, &after.academic_year).await?;
    }
    let now = super::now();
    let mut row: activity::ActiveModel = current.clone().into();
    row.academic_year = Set(after.academic_year.0);
    row.term = Set(after.term);
    row.kind = Set(after.kind);
    row.module_code = Set(after.module_code);
    row.name = Set(after.name);
    row.hours = Set(after.hours);
    row.updated_at = Set(now);
    let saved = row.update(write.conn()).await?;
    write
        .audit(Change {
            action: Action::UserActivityUpdated,
            subject_id: person.id.to_string(),
            before: Some(snapshot(&current)),
            after: Some(snapshot(&saved)),
        })
        .await?;
    write.workload_changed(person.clone(), now);
    write.commit(events).await?;
    Ok((person, saved))
}

/// Takes an activity away from its person, with its audit event and live change. Answers the
/// person and the activity as it was.
pub async fn remove(
    services: &Services,
    requester: Requester<'_>,
    origin: &Origin,
    activity_id: Uuid,
) -> Result<(user::Model, activity::Model), AppError> {
    let Services { db, events, .. } = services;
    let mut write = Write::begin(db, origin).await?;
    let (person, current) = lock_activity(&write, requester, activity_id).await?;
    activity::Entity::delete_by_id(activity_id)
        .exec(write.conn())
        .await?;
    write
        .audit(Change {
            action: Action::UserActivityRemoved,
            subject_id: person.id.to_string(),
            before: Some(snapshot(&current)),
            after: None,
        })
        .await?;
    write.workload_changed(person.clone(), super::now());
    write.commit(events).await?;
    Ok((person, current))
}

/// Where a target comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetSource {
    /// The profile's own `workloadTargetHours`.
    Profile,
    /// The profile's contract FTE times the organisation's standard hours.
    Contract,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Target {
    pub hours: f64,
    pub source: TargetSource,
}

/// A person's target: their profile's own, else FTE times their organisation's standard
/// hours; `None` without either.
pub fn target(
    profile: Option<&lecturer_profile::Model>,
    standard_hours: Option<i32>,
) -> Option<Target> {
    let profile = profile?;
    if let Some(hours) = profile.workload_target_hours {
        return Some(Target {
            hours,
            source: TargetSource::Profile,
        });
    }
    let fte = profile.contract_fte?;
    Some(Target {
        hours: (fte * f64::from(standard_hours?) * 100.0).round() / 100.0,
        source: TargetSource::Contract,
    })
}

/// Allocated hours against a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Balance {
    Under,
    OnTarget,
    Over,
    NoTarget,
}

/// Allocated minus target, to the hundredth: above zero is over-allocated. `None` without a
/// target.
pub fn balance_hours(allocated_hours: f64, target: Option<Target>) -> Option<f64> {
    target.map(|target| round(allocated_hours - target.hours))
}

pub fn balance(allocated_hours: f64, target: Option<Target>) -> Balance {
    let Some(target) = target else {
        return Balance::NoTarget;
    };
    // In hundredths, as hours are kept, so that sums of decimals compare exactly.
    let allocated = (allocated_hours * 100.0).round() as i64;
    let target = (target.hours * 100.0).round() as i64;
    match allocated.cmp(&target) {
        std::cmp::Ordering::Less => Balance::Under,
        std::cmp::Ordering::Equal => Balance::OnTarget,
        std::cmp::Ordering::Greater => Balance::Over,
    }
}

/// Hours allocated to each of these people in each of these years; absent where none.
pub async fn allocated_hours<C: ConnectionTrait>(
    conn: &C,
    user_ids: &[Uuid],
    years: &[&str],
) -> Result<HashMap<(Uuid, String), f64>, AppError> {
    if user_ids.is_empty() || years.is_empty() {
        return Ok(HashMap::new());
    }
    let sums: Vec<(Uuid, String, f64)> = activity::Entity::find()
        .select_only()
        .column(activity::Column::UserId)
        .column(activity::Column::AcademicYear)
        .column_as(Expr::col(activity::Column::Hours).sum(), "hours")
        .filter(activity::Column::UserId.is_in(user_ids.iter().copied()))
        .filter(activity::Column::AcademicYear.is_in(years.iter().copied()))
        .group_by(activity::Column::UserId)
        .group_by(activity::Column::AcademicYear)
        .into_tuple()
        .all(conn)
        .await?;
    Ok(sums
        .into_iter()
        .map(|(user_id, year, hours)| ((user_id, year), round(hours)))
        .collect())
}

/// The activities of each of these people in each of these years, by term, module and name
/// (those without a term or a module first).
pub async fn activities_of<C: ConnectionTrait>(
    conn: &C,
    user_ids: &[Uuid],
    years: &[&str],
) -> Result<HashMap<(Uuid, String), Vec<activity::Model>>, AppError> {
    if user_ids.is_empty() || years.is_empty() {
        return Ok(HashMap::new());
    }
    let found = activity::Entity::find()
        .filter(activity::Column::UserId.is_in(user_ids.iter().copied()))
        .filter(activity::Column::AcademicYear.is_in(years.iter().copied()))
        // Without a term or a module first, on both databases (PostgreSQL puts nulls last).
        .order_by_with_nulls(activity::Column::Term, Order::Asc, NullOrdering::First)
        .order_by_with_nulls(
            activity::Column::ModuleCode,
            Order::Asc,
            NullOrdering::First,
        )
        .order_by_asc(activity::Column::Name)
        .order_by_asc(activity::Column::Id)
        .all(conn)
        .await?;
    let mut by_key: HashMap<(Uuid, String), Vec<activity::Model>> = HashMap::new();
    for found in found {
        by_key
            .entry((found.user_id, found.academic_year.clone()))
            .or_default()
            .push(found);
    }
    Ok(by_key)
}

/// To the hundredth; never `-0` (an empty sum of floats is `-0.0`, shown as "-0").
fn round(hours: f64) -> f64 {
    (hours * 100.0).round() / 100.0 + 0.0
}

/// One person's year in an organisation's workload.
#[derive(Debug, Clone, PartialEq)]
pub struct PersonWorkload {
    pub user: user::Model,
    pub allocated_hours: f64,
    pub target: Option<Target>,
}

impl PersonWorkload {
    pub fn balance(&self) -> Balance {
        balance(self.allocated_hours, self.target)
    }

    pub fn balance_hours(&self) -> Option<f64> {
        balance_hours(self.allocated_hours, self.target)
    }
}

/// An organisation's year: its members' allocations against their targets.
#[derive(Debug, Clone, PartialEq)]
pub struct OrganisationWorkload {
    pub organisation_id: Uuid,
    pub academic_year: AcademicYear,
    pub standard_hours: i32,
    /// Active members with a target or an allocation, most over-allocated first.
    pub people: Vec<PersonWorkload>,
    pub computed_at: DateTime<Utc>,
}

impl OrganisationWorkload {
    pub fn allocated_hours(&self) -> f64 {
        round(
            self.people
                .iter()
                .map(|person| person.allocated_hours)
                .sum(),
        )
    }

    pub fn target_hours(&self) -> f64 {
        round(
            self.people
                .iter()
                .filter_map(|person| person.target.map(|target| target.hours))
                .sum(),
        )
    }

    pub fn count(&self, balance: Balance) -> usize {
        self.people
            .iter()
            .filter(|person| person.balance() == balance)
            .count()
    }
}

/// An organisation's workload in one year: admins and that organisation's admins
/// (`auth::access`, as its dashboard). Three statements whatever its size.
pub async fn organisation<C: ConnectionTrait>(
    conn: &C,
    actor: &Actor,
    organisation_id: Uuid,
    year: AcademicYear,
) -> Result<OrganisationWorkload, AppError> {
    actor.require_organisation_dashboard(organisation_id)?;
    let organisation: organisation::Model = organisations::get(conn, organisation_id).await?;
    let computed_at = super::now();
    let members: HashMap<Uuid, user::Model> = user::Entity::find()
        .filter(user::Column::OrganisationId.eq(organisation_id))
        .filter(user::Column::IsActive.eq(true))
        .all(conn)
        .await?
        .into_iter()
        .map(|member| (member.id, member))
        .collect();
    let sums: Vec<(Uuid, f64)> = activity::Entity::find()
        .select_only()
        .column(activity::Column::UserId)
        .column_as(Expr::col(activity::Column::Hours).sum(), "hours")
        .join(JoinType::InnerJoin, activity::Relation::User.def())
        .filter(user::Column::OrganisationId.eq(organisation_id))
        .filter(user::Column::IsActive.eq(true))
        .filter(activity::Column::AcademicYear.eq(year.as_str()))
        .group_by(activity::Column::UserId)
        .into_tuple()
        .all(conn)
        .await?;
    let members_query = user::Entity::find()
        .select_only()
        .column(user::Column::Id)
        .filter(user::Column::OrganisationId.eq(organisation_id))
        .filter(user::Column::IsActive.eq(true))
        .into_query();
    let profiles: Vec<lecturer_profile::Model> = lecturer_profile::Entity::find()
        .filter(lecturer_profile::Column::UserId.in_subquery(members_query))
        .all(conn)
        .await?;
    let mut targets: HashMap<Uuid, Target> = profiles
        .iter()
        .filter_map(|profile| {
            target(Some(profile), Some(organisation.standard_hours))
                .map(|target| (profile.user_id, target))
        })
        .collect();
    let mut allocated: HashMap<Uuid, f64> = sums
        .into_iter()
        .map(|(user_id, hours)| (user_id, round(hours)))
        .collect();
    // Read in three statements, so a member who joined between them may have an allocation
    // or a profile and no row here: they are left out, as they would have been a moment
    // earlier.
    let mut people: Vec<PersonWorkload> = members
        .into_values()
        .filter_map(|user| {
            let target = targets.remove(&user.id);
            let hours = allocated.remove(&user.id);
            (target.is_some() || hours.is_some()).then(|| PersonWorkload {
                allocated_hours: hours.unwrap_or(0.0),
                target,
                user,
            })
        })
        .collect();
    let excess = |person: &PersonWorkload| {
        person.target.map_or(f64::NEG_INFINITY, |target| {
            person.allocated_hours - target.hours
        })
    };
    people.sort_by(|a, b| {
        excess(b)
            .total_cmp(&excess(a))
            .then(a.user.id.cmp(&b.user.id))
    });
    Ok(OrganisationWorkload {
        organisation_id,
        academic_year: year,
        standard_hours: organisation.standard_hours,
        people,
        computed_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn academic_years_are_spelt_one_way_and_start_in_september() {
        assert_eq!(
            AcademicYear::parse("y", "2026/27").expect("valid").as_str(),
            "2026/27"
        );
        assert_eq!(
            AcademicYear::parse("y", "2099/00").map(|y| y.0).ok(),
            None,
            "beyond the range"
        );
        for bad in ["2026/28", "2026-27", "26/27", "2026/2027", "", "abcd/ef"] {
            assert!(AcademicYear::parse("y", bad).is_err(), "{bad}");
        }
        let at = |text: &str| text.parse::<DateTime<Utc>>().expect("a time");
        assert_eq!(
            AcademicYear::of(at("2026-08-31T23:59:59Z")).as_str(),
            "2025/26"
        );
        assert_eq!(
            AcademicYear::of(at("2026-09-01T00:00:00Z")).as_str(),
            "2026/27"
        );
        assert_eq!(
            AcademicYear::of(at("2099-12-01T00:00:00Z")).as_str(),
            "2099/00"
        );
    }

    #[test]
    fn the_target_is_the_profiles_own_else_fte_times_standard_hours() {
        let now = Utc::now();
        let mut profile = lecturer_profile::Model {
            user_id: Uuid::nil(),
            staff_id: None,
            job_title: None,
            department: None,
            contract_fte: Some(0.5),
            contract_start: None,
            contract_end: None,
            workload_target_hours: None,
            access_until: None,
            created_at: now,
            updated_at: now,
        };
        let from_contract = target(Some(&profile), Some(1_650)).expect("a target");
        assert_eq!(from_contract.hours, 825.0);
        assert_eq!(from_contract.source, TargetSource::Contract);
        assert_eq!(target(Some(&profile), None), None);
        profile.workload_target_hours = Some(600.0);
        assert_eq!(
            target(Some(&profile), Some(1_650)).map(|t| (t.hours, t.source)),
            Some((600.0, TargetSource::Profile))
        );
        assert_eq!(target(None, Some(1_650)), None);
        let on = Some(Target {
            hours: 0.3,
            source: TargetSource::Profile,
        });
        assert_eq!(balance(0.1 + 0.2, on), Balance::OnTarget);
        assert_eq!(balance(0.31, on), Balance::Over);
        assert_eq!(balance(0.0, None), Balance::NoTarget);
    }
}
