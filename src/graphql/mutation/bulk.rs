use async_graphql::{Context, ID, InputObject, MaybeUndefined, Object, Result};

use super::origin;
use crate::graphql::query::users::UsersFilterInput;
use crate::graphql::types::Role;
use crate::graphql::types::bulk_job::BulkJob;
use crate::graphql::{caller, services};
use crate::service::accounts::AccountUpdate;
use crate::service::bulk::{self, BulkAction, Targets};
use crate::service::imports;
use crate::service::parse_id;

#[derive(Default)]
pub struct BulkMutation;

/// Whom a bulk operation acts on: `ids` or `filter`, not both.
#[derive(Debug, Clone, Default, InputObject)]
pub struct BulkTargetsInput {
    /// At most 1,000.
    pub ids: Option<Vec<ID>>,
    /// As `users` takes it, within the caller's scope; refused when it matches more than 1,000.
    pub filter: Option<UsersFilterInput>,
}

/// What `updateUsers` sets on everyone: a role, an organisation, or both.
#[derive(Debug, Clone, Default, InputObject)]
pub struct BulkUpdateInput {
    pub role: Option<Role>,
    /// `null` takes them out of any organisation.
    pub organisation_id: MaybeUndefined<ID>,
}

fn targets(input: BulkTargetsInput) -> Result<Targets> {
    match (input.ids, input.filter) {
        (Some(ids), None) => Ok(Targets::Ids(
            ids.iter()
                .map(|id| parse_id("targets.ids", id))
                .collect::<Result<_, _>>()?,
        )),
        (None, Some(filter)) => Ok(Targets::Filter(filter.into_domain()?)),
        _ => Err(
            crate::error::AppError::validation("targets", "give either `ids` or `filter`").into(),
        ),
    }
}

async fn start(
    ctx: &Context<'_>,
    action: BulkAction,
    input: BulkTargetsInput,
    dry_run: bool,
) -> Result<BulkJob> {
    let actor = caller(ctx).actor()?;
    let targets = targets(input)?;
    let job = bulk::start(
        services(ctx),
        actor,
        &origin(ctx, actor),
        action,
        targets,
        dry_run,
    )
    .await?;
    Ok(BulkJob(job))
}

#[Object]
impl BulkMutation {
    /// Suspends many users, as `suspendUser` each: a job (follow it with `bulkJobProgress`).
    /// `dryRun` answers the plan (who would change, who would be refused and why) and touches
    /// nothing. Admins, and organisation admins for their organisation's users.
    async fn suspend_users(
        &self,
        ctx: &Context<'_>,
        targets: BulkTargetsInput,
        #[graphql(default)] dry_run: bool,
    ) -> Result<BulkJob> {
        start(ctx, BulkAction::Suspend, targets, dry_run).await
    }

    /// Lifts many suspensions, as `unsuspendUser` each; see `suspendUsers`.
    async fn unsuspend_users(
        &self,
        ctx: &Context<'_>,
        targets: BulkTargetsInput,
        #[graphql(default)] dry_run: bool,
    ) -> Result<BulkJob> {
        start(ctx, BulkAction::Unsuspend, targets, dry_run).await
    }

    /// Removes many users, as `removeUser` each; see `suspendUsers`.
    async fn remove_users(
        &self,
        ctx: &Context<'_>,
        targets: BulkTargetsInput,
        #[graphql(default)] dry_run: bool,
    ) -> Result<BulkJob> {
        start(ctx, BulkAction::Remove, targets, dry_run).await
    }

    /// Imports people from CSV text whose first line names the columns: `email` (required),
    /// `first_name`, `last_name`, `role`, `organisation_id` or `organisation_slug` (or
    /// `organisation`, either), `staff_id`; others are ignored, so a users export imports as
    /// it is. Whoever is new is invited (role `LECTURER` unless the line says, into the caller's
    /// organisation for an organisation admin); whoever is there gets the line's names, role,
    /// organisation and staff id (blank cells change nothing). Each line's outcome is in the
    /// job's `results`; a line already as it says is `UNCHANGED`, so importing a file again
    /// changes nothing. At most 10,000 lines (and the request's size limit: upload bigger
    /// files to `POST /api/imports/users.csv`). Invitations go to Clerk ten at a time, within
    /// its rate limit (25 calls an hour): follow a long import with `bulkJobProgress`.
    async fn import_users(
        &self,
        ctx: &Context<'_>,
        csv: String,
        #[graphql(default)] dry_run: bool,
    ) -> Result<BulkJob> {
        let actor = caller(ctx).actor()?;
        let job = imports::start(services(ctx), actor, &origin(ctx, actor), &csv, dry_run).await?;
        Ok(BulkJob(job))
    }

    /// Sets a role or an organisation on many users, as `updateUser` each; see `suspendUsers`.
    async fn update_users(
        &self,
        ctx: &Context<'_>,
        targets: BulkTargetsInput,
        input: BulkUpdateInput,
        #[graphql(default)] dry_run: bool,
    ) -> Result<BulkJob> {
        let organisation_id = match input.organisation_id {
            MaybeUndefined::Undefined => None,
            MaybeUndefined::Null => Some(None),
            MaybeUndefined::Value(id) => Some(Some(parse_id("input.organisationId", &id)?)),
        };
        let update = AccountUpdate {
            role: input.role.map(Into::into),
            organisation_id,
            first_name: None,
            last_name: None,
        };
        start(ctx, BulkAction::Update(update), targets, dry_run).await
    }
}
