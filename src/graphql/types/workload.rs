use std::sync::Arc;

use async_graphql::{Context, Enum, ID, Object, Result};
use chrono::{DateTime, Utc};
use entity::{activity, role, user};

use super::User;
use crate::graphql::batch::{UserSet, loader};
use crate::graphql::loaders::{Activities, AllocatedHours, WorkloadOf};
use crate::service::workload::{self, AcademicYear};

/// What an activity is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum ActivityKind {
    Teaching,
    Assessment,
    Supervision,
    Administration,
    Research,
    Other,
}

impl From<role::ActivityKind> for ActivityKind {
    fn from(kind: role::ActivityKind) -> ActivityKind {
        match kind {
            role::ActivityKind::Teaching => ActivityKind::Teaching,
            role::ActivityKind::Assessment => ActivityKind::Assessment,
            role::ActivityKind::Supervision => ActivityKind::Supervision,
            role::ActivityKind::Administration => ActivityKind::Administration,
            role::ActivityKind::Research => ActivityKind::Research,
            role::ActivityKind::Other => ActivityKind::Other,
        }
    }
}

impl From<ActivityKind> for role::ActivityKind {
    fn from(kind: ActivityKind) -> role::ActivityKind {
        match kind {
            ActivityKind::Teaching => role::ActivityKind::Teaching,
            ActivityKind::Assessment => role::ActivityKind::Assessment,
            ActivityKind::Supervision => role::ActivityKind::Supervision,
            ActivityKind::Administration => role::ActivityKind::Administration,
            ActivityKind::Research => role::ActivityKind::Research,
            ActivityKind::Other => role::ActivityKind::Other,
        }
    }
}

/// A duty allocated to a person for an academic year, with its hours.
pub struct Activity(pub(crate) activity::Model);

#[Object]
impl Activity {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    /// Whose it is.
    async fn user_id(&self) -> ID {
        ID(self.0.user_id.to_string())
    }

    /// `2026/27`: the year starts on 1 September.
    async fn academic_year(&self) -> &str {
        &self.0.academic_year
    }

    /// Within the year, as the organisation names its terms (`Autumn`, `Semester 2`).
    async fn term(&self) -> Option<&str> {
        self.0.term.as_deref()
    }

    async fn kind(&self) -> ActivityKind {
        self.0.kind.into()
    }

    /// The module's code, in capitals.
    async fn module_code(&self) -> Option<&str> {
        self.0.module_code.as_deref()
    }

    async fn name(&self) -> &str {
        &self.0.name
    }

    /// Hours in the year, to the hundredth.
    async fn hours(&self) -> f64 {
        self.0.hours
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

/// Where a workload target comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum WorkloadTargetSource {
    /// The profile's own `workloadTargetHours`.
    Profile,
    /// The profile's `contractFte` times the organisation's `standardHours`.
    Contract,
}

/// Allocated hours against the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum WorkloadBalance {
    Under,
    OnTarget,
    Over,
    /// No target: the profile has neither a target nor an FTE, or the user is in no
    /// organisation.
    NoTarget,
}

impl From<workload::Balance> for WorkloadBalance {
    fn from(balance: workload::Balance) -> WorkloadBalance {
        match balance {
            workload::Balance::Under => WorkloadBalance::Under,
            workload::Balance::OnTarget => WorkloadBalance::OnTarget,
            workload::Balance::Over => WorkloadBalance::Over,
            workload::Balance::NoTarget => WorkloadBalance::NoTarget,
        }
    }
}

impl From<workload::TargetSource> for WorkloadTargetSource {
    fn from(source: workload::TargetSource) -> WorkloadTargetSource {
        match source {
            workload::TargetSource::Profile => WorkloadTargetSource::Profile,
            workload::TargetSource::Contract => WorkloadTargetSource::Contract,
        }
    }
}

/// A person's academic year: what is allocated to them against their target. Reached through
/// `User.workload`, so it is read by whoever may read the user.
pub struct Workload {
    pub(crate) user: user::Model,
    pub(crate) set: Arc<UserSet>,
    pub(crate) year: AcademicYear,
}

impl Workload {
    fn key(&self) -> WorkloadOf {
        WorkloadOf {
            user_id: self.user.id,
            academic_year: self.year.as_str().to_owned(),
        }
    }

    async fn allocated(&self, ctx: &Context<'_>) -> Result<f64> {
        Ok(loader(ctx)
            .load_one(AllocatedHours(self.key()))
            .await?
            .unwrap_or(0.0))
    }

    async fn target(&self, ctx: &Context<'_>) -> Result<Option<workload::Target>> {
        let profile = self.set.profile(ctx, self.user.id).await?;
        if profile.is_none() {
            return Ok(None);
        }
        let standard_hours = match self.user.organisation_id {
            Some(organisation_id) => self
                .set
                .organisation(ctx, organisation_id)
                .await?
                .map(|(organisation, _)| organisation.standard_hours),
            None => None,
        };
        Ok(workload::target(profile.as_ref(), standard_hours))
    }
}

#[Object]
impl Workload {
    async fn academic_year(&self) -> &str {
        self.year.as_str()
    }

    /// The hours of every activity allocated in the year. Batched across a page.
    async fn allocated_hours(&self, ctx: &Context<'_>) -> Result<f64> {
        self.allocated(ctx).await
    }

    /// The profile's own target, else its FTE times the organisation's standard hours;
    /// `null` without either.
    async fn target_hours(&self, ctx: &Context<'_>) -> Result<Option<f64>> {
        Ok(self.target(ctx).await?.map(|target| target.hours))
    }

    async fn target_source(&self, ctx: &Context<'_>) -> Result<Option<WorkloadTargetSource>> {
        Ok(self.target(ctx).await?.map(|target| target.source.into()))
    }

    /// Allocated minus target: above zero is over-allocated. `null` without a target.
    async fn balance_hours(&self, ctx: &Context<'_>) -> Result<Option<f64>> {
        let allocated = self.allocated(ctx).await?;
        Ok(workload::balance_hours(allocated, self.target(ctx).await?))
    }

    async fn balance(&self, ctx: &Context<'_>) -> Result<WorkloadBalance> {
        let allocated = self.allocated(ctx).await?;
        Ok(workload::balance(allocated, self.target(ctx).await?).into())
    }

    /// The year's activities, by term, module and name. Batched across a page.
    async fn activities(&self, ctx: &Context<'_>) -> Result<Vec<Activity>> {
        Ok(loader(ctx)
            .load_one(Activities(self.key()))
            .await?
            .unwrap_or_default()
            .into_iter()
            .map(Activity)
            .collect())
    }
}

/// One person in an organisation's workload.
pub struct PersonWorkload {
    person: workload::PersonWorkload,
    /// The person, in a set with the others of the list, whose relations load together.
    user: User,
}

#[Object]
impl PersonWorkload {
    async fn user(&self) -> User {
        self.user.clone()
    }

    async fn allocated_hours(&self) -> f64 {
        self.person.allocated_hours
    }

    async fn target_hours(&self) -> Option<f64> {
        self.person.target.map(|target| target.hours)
    }

    async fn target_source(&self) -> Option<WorkloadTargetSource> {
        self.person.target.map(|target| target.source.into())
    }

    /// Allocated minus target; `null` without a target.
    async fn balance_hours(&self) -> Option<f64> {
        self.person.balance_hours()
    }

    async fn balance(&self) -> WorkloadBalance {
        self.person.balance().into()
    }
}

/// An organisation's academic year: its active members' allocations against their targets.
/// Admins, and the organisation's admins.
pub struct OrganisationWorkload(pub(crate) workload::OrganisationWorkload);

#[Object]
impl OrganisationWorkload {
    async fn organisation_id(&self) -> ID {
        ID(self.0.organisation_id.to_string())
    }

    async fn academic_year(&self) -> &str {
        self.0.academic_year.as_str()
    }

    /// The hours of a full-time year here.
    async fn standard_hours(&self) -> i32 {
        self.0.standard_hours
    }

    /// Hours allocated to its active members in the year.
    async fn allocated_hours(&self) -> f64 {
        self.0.allocated_hours()
    }

    /// The sum of its active members' targets.
    async fn target_hours(&self) -> f64 {
        self.0.target_hours()
    }

    async fn over_allocated_count(&self) -> usize {
        self.0.count(workload::Balance::Over)
    }

    async fn under_allocated_count(&self) -> usize {
        self.0.count(workload::Balance::Under)
    }

    async fn on_target_count(&self) -> usize {
        self.0.count(workload::Balance::OnTarget)
    }

    /// Members with allocations and no target.
    async fn without_target_count(&self) -> usize {
        self.0.count(workload::Balance::NoTarget)
    }

    /// Members allocated more than their target, the furthest over first.
    async fn over_allocated(&self) -> Vec<PersonWorkload> {
        self.select(Some(workload::Balance::Over))
    }

    /// Every active member with a target or an allocation, the furthest over first.
    async fn people(&self) -> Vec<PersonWorkload> {
        self.select(None)
    }

    async fn computed_at(&self) -> DateTime<Utc> {
        self.0.computed_at
    }
}

impl OrganisationWorkload {
    fn select(&self, only: Option<workload::Balance>) -> Vec<PersonWorkload> {
        let people: Vec<&workload::PersonWorkload> = self
            .0
            .people
            .iter()
            .filter(|person| only.is_none_or(|only| person.balance() == only))
            .collect();
        let users = User::all(people.iter().map(|person| person.user.clone()).collect());
        people
            .into_iter()
            .zip(users)
            .map(|(person, user)| PersonWorkload {
                person: person.clone(),
                user,
            })
            .collect()
    }
}

/// An allocation made, changed or taken away, and the person's year as it now stands.
pub struct ActivityChange {
    pub(crate) activity: activity::Model,
    pub(crate) user: User,
}

#[Object]
impl ActivityChange {
    /// The activity as it now is (as it was, when taken away).
    async fn activity(&self) -> Activity {
        Activity(self.activity.clone())
    }

    /// The person's workload in the activity's year.
    async fn workload(&self) -> Result<Workload> {
        let year = AcademicYear::parse("academicYear", &self.activity.academic_year)?;
        Ok(self.user.workload_in(year))
    }

    async fn user(&self) -> User {
        self.user.clone()
    }
}
