use async_graphql::{Context, ID, InputObject, MaybeUndefined, Object, Result};

use super::origin;
use super::users::change;
use crate::graphql::caller;
use crate::graphql::services;
use crate::graphql::types::workload::ActivityKind;
use crate::graphql::types::{ActivityChange, User};
use crate::service::parse_id;
use crate::service::workload::{self, ActivityUpdate, NewActivity};

#[derive(Default)]
pub struct WorkloadMutation;

/// A duty to allocate.
#[derive(Debug, Clone, InputObject)]
pub struct AllocateActivityInput {
    /// `2026/27`.
    pub academic_year: String,
    /// At most 32 characters: `Autumn`, `Semester 2`.
    pub term: Option<String>,
    pub kind: ActivityKind,
    /// At most 32 characters; kept in capitals.
    pub module_code: Option<String>,
    /// At most 200 characters.
    pub name: String,
    /// More than 0, at most 8,760; kept to the hundredth.
    pub hours: f64,
}

/// Changes to an activity; a field left out is left as it is, `null` clears the ones that
/// may be empty (`term`, `moduleCode`).
#[derive(Debug, Clone, Default, InputObject)]
pub struct UpdateActivityInput {
    pub academic_year: Option<String>,
    pub term: MaybeUndefined<String>,
    pub kind: Option<ActivityKind>,
    pub module_code: MaybeUndefined<String>,
    pub name: Option<String>,
    pub hours: Option<f64>,
}

#[Object]
impl WorkloadMutation {
    /// Allocates a duty to a person: organisation admins for their organisation's users,
    /// admins for anyone. At most 500 a person a year. Audited as `user.activity_allocated`;
    /// subscribers see `WORKLOAD_CHANGED`.
    async fn allocate_activity(
        &self,
        ctx: &Context<'_>,
        user_id: ID,
        input: AllocateActivityInput,
    ) -> Result<ActivityChange> {
        let actor = caller(ctx).actor()?;
        let user_id = parse_id("userId", &user_id)?;
        let new = NewActivity {
            academic_year: input.academic_year,
            term: input.term,
            kind: input.kind.into(),
            module_code: input.module_code,
            name: input.name,
            hours: input.hours,
        };
        let (person, activity) = workload::allocate(
            services(ctx),
            actor.into(),
            &origin(ctx, actor),
            user_id,
            new,
        )
        .await?;
        Ok(ActivityChange {
            activity,
            user: User::one(person),
        })
    }

    /// Changes an activity: whoever may allocate to its person. Audited as
    /// `user.activity_updated`; subscribers see `WORKLOAD_CHANGED`.
    async fn update_activity(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateActivityInput,
    ) -> Result<ActivityChange> {
        let actor = caller(ctx).actor()?;
        let id = parse_id("id", &id)?;
        let update = ActivityUpdate {
            academic_year: input.academic_year,
            term: change(input.term),
            kind: input.kind.map(Into::into),
            module_code: change(input.module_code),
            name: input.name,
            hours: input.hours,
        };
        let (person, activity) =
            workload::update(services(ctx), actor.into(), &origin(ctx, actor), id, update).await?;
        Ok(ActivityChange {
            activity,
            user: User::one(person),
        })
    }

    /// Takes an activity away from its person: whoever may allocate to them. Answers the
    /// activity as it was. Audited as `user.activity_removed`; subscribers see
    /// `WORKLOAD_CHANGED`.
    async fn remove_activity(&self, ctx: &Context<'_>, id: ID) -> Result<ActivityChange> {
        let actor = caller(ctx).actor()?;
        let id = parse_id("id", &id)?;
        let (person, activity) =
            workload::remove(services(ctx), actor.into(), &origin(ctx, actor), id).await?;
        Ok(ActivityChange {
            activity,
            user: User::one(person),
        })
    }
}
