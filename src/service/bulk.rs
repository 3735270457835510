//! Bulk operations as jobs: `suspendUsers`, `unsuspendUsers`, `removeUsers` and `updateUsers`
//! on a list of ids or a filter, up to `MOST_USERS` at once. Each user goes through the single
//! operation's own service function (`accounts`), so the same access rules, Clerk call, audit
//! event and live change apply; the job only plans, paces and records.
//!
//! A dry run plans and answers at once: who would change, who would not, who would be refused
//! and why, with nothing written and Clerk untouched. A real run records its plan in a job row
//! (`bulk_jobs`, as `sync_runs` records a sync) and carries it out in the background, one user
//! at a time (Clerk's rate limits are the client's to honour: it waits out a 429's
//! `Retry-After`), reading the requester again before each user so that it acts for them as the
//! database says now; a requester who lost the right stops the job.

use std::collections::HashMap;

use entity::{bulk_job, user};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, Set};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::accounts::{self, AccountUpdate};
use super::users::{self, UserFilter};
use super::{Origin, Services};
use crate::auth::Actor;
use crate::auth::access::RequestedChange;
use crate::error::AppError;

/// The most users one bulk operation acts on.
pub const MOST_USERS: u64 = 1_000;
/// The most jobs one person may have running at once: each works through Clerk's rate limit.
pub const MOST_RUNNING: u64 = 3;
/// A running job's row is written again after this many users (and at its end), not after
/// each: its outcomes are one JSON document.
const RECORD_EVERY: usize = 20;

/// What to do to each user.
#[derive(Debug, Clone)]
pub enum BulkAction {
    Suspend,
    Unsuspend,
    Remove,
    /// A role or organisation for everyone (names stay each person's own).
    Update(AccountUpdate),
}

impl BulkAction {
    fn kind(&self) -> &'static str {
        match self {
            BulkAction::Suspend => "suspend",
            BulkAction::Unsuspend => "unsuspend",
            BulkAction::Remove => "remove",
            BulkAction::Update(_) => "update",
        }
    }
}

/// Whom to act on.
#[derive(Debug, Clone)]
pub enum Targets {
    Ids(Vec<Uuid>),
    /// Within the caller's scope, as `users` lists them.
    Filter(UserFilter),
}

/// One user's (or, in an import, one line's) outcome in a job.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserOutcome {
    /// None for an import's line that invites someone, or names nobody.
    pub user_id: Option<Uuid>,
    /// Empty for an id that is no user.
    pub email: String,
    /// `would_change` (planned), `changed`, `unchanged` or `refused`.
    pub outcome: String,
    /// For `refused`: the error code and message the single operation answers. Otherwise an
    /// optional remark (an import's "already invited").
    pub code: Option<String>,
    pub message: Option<String>,
    /// An import's line number in its file (the header is line 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    /// An import's action on the line: `invite` or `update`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// The invitation an import's line sent, or found already pending.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invitation_id: Option<Uuid>,
}

impl UserOutcome {
    fn of(user_id: Uuid, email: &str, outcome: &str) -> UserOutcome {
        UserOutcome {
            user_id: Some(user_id),
            email: email.to_owned(),
            outcome: outcome.to_owned(),
            ..UserOutcome::default()
        }
    }

    /// This outcome refused for `error`, keeping which line and user it is about.
    pub(super) fn refuse(&mut self, error: &AppError) {
        self.outcome = "refused".to_owned();
        self.code = Some(error.code().to_owned());
        self.message = Some(error.to_string());
    }

    fn refused(user_id: Uuid, email: &str, error: &AppError) -> UserOutcome {
        UserOutcome {
            code: Some(error.code().to_owned()),
            message: Some(error.to_string()),
            ..UserOutcome::of(user_id, email, "refused")
        }
    }
}

/// Reads a job's outcomes.
pub fn outcomes(job: &bulk_job::Model) -> Vec<UserOutcome> {
    serde_json::from_str(&job.results).unwrap_or_default()
}

/// What the action would do to `user`, asked by `actor`: `Ok(true)` a change, `Ok(false)`
/// nothing, `Err` the refusal the single operation would answer.
fn plan_one(actor: &Actor, action: &BulkAction, user: &user::Model) -> Result<bool, AppError> {
    let removed = || AppError::Conflict("this user has been removed".to_owned());
    match action {
        BulkAction::Suspend | BulkAction::Unsuspend => {
            actor.require_manage_user(user)?;
            if !user.is_active {
                return Err(removed());
            }
            if user.id == actor.user.id {
                return Err(AppError::Conflict("you cannot suspend yourself".to_owned()));
            }
            Ok(user.banned != matches!(action, BulkAction::Suspend))
        }
        BulkAction::Remove => {
            actor.require_manage_user(user)?;
            if user.id == actor.user.id {
                return Err(AppError::Conflict("you cannot remove yourself".to_owned()));
            }
            Ok(user.is_active)
        }
        BulkAction::Update(update) => {
            actor.require_user_change(
                user,
                &RequestedChange {
                    role: update.role,
                    organisation_id: update.organisation_id,
                },
            )?;
            if !user.is_active {
                return Err(removed());
            }
            let role_changes = update.role.is_some_and(|role| role != user.role);
            let organisation_changes = update
                .organisation_id
                .is_some_and(|organisation| organisation != user.organisation_id);
            Ok(role_changes || organisation_changes)
        }
    }
}

/// Starts a bulk operation: plans it for `actor` and, unless `dry_run`, records the job and
/// carries it out in the background. Answers the job as it stands.
pub async fn start(
    services: &Services,
    actor: &Actor,
    origin: &Origin,
    action: BulkAction,
    targets: Targets,
    dry_run: bool,
) -> Result<bulk_job::Model, AppError> {
    actor.require_bulk()?;
    if let BulkAction::Update(update) = &action {
        if update.role.is_none() && update.organisation_id.is_none() {
            return Err(AppError::validation(
                "input",
                "give a role or an organisation (or both) to set",
            ));
        }
        if let Some(Some(organisation)) = update.organisation_id {
            accounts::assignable_organisation(&services.db, "input.organisationId", organisation)
                .await?;
        }
    }
    ensure_may_start(services, actor, dry_run).await?;
    let (found, unknown) = resolve(services, actor, targets).await?;
    let mut planned = Vec::with_capacity(found.len() + unknown.len());
    for id in unknown {
        planned.push(UserOutcome::refused(
            id,
            "",
            &AppError::not_found("user", id),
        ));
    }
    for user in &found {
        // Someone the caller may not read is named by id only: a plan must not tell an
        // organisation admin who is in another organisation.
        if !actor.may_read_user(user) {
            let hidden = AppError::Forbidden("this user is not yours to read".to_owned());
            planned.push(UserOutcome::refused(user.id, "", &hidden));
            continue;
        }
        planned.push(match plan_one(actor, &action, user) {
            Ok(true) => UserOutcome::of(user.id, &user.email, "would_change"),
            Ok(false) => UserOutcome::of(user.id, &user.email, "unchanged"),
            Err(error) => UserOutcome::refused(user.id, &user.email, &error),
        });
    }
    let job = insert_job(services, actor, action.kind(), &planned, dry_run).await?;
    if !dry_run {
        let job_id = job.id;
        in_background(services, job_id, {
            let (services, origin, requester) = (services.clone(), origin.clone(), actor.user.id);
            async move { run(&services, requester, &origin, job_id, action, planned).await }
        });
    }
    Ok(job)
}

/// Runs a job's work on its own task; a failure is logged and marks the job failed, with what
/// was done recorded by the work itself.
pub(super) fn in_background(
    services: &Services,
    job_id: Uuid,
    work: impl std::future::Future<Output = Result<(), AppError>> + Send + 'static,
) {
    let services = services.clone();
    tokio::spawn(async move {
        if let Err(error) = work.await {
            tracing::warn!(%job_id, error = %error, "a bulk job failed");
            let _ = finish(&services, job_id, "failed", Some(error.to_string())).await;
        }
    });
}

/// Checks that `actor` may start another job now (dry runs are not jobs that run).
pub(super) async fn ensure_may_start(
    services: &Services,
    actor: &Actor,
    dry_run: bool,
) -> Result<(), AppError> {
    if dry_run {
        return Ok(());
    }
    let running = bulk_job::Entity::find()
        .filter(bulk_job::Column::RequestedBy.eq(actor.user.id))
        .filter(bulk_job::Column::Status.eq("running"))
        .count(&services.db)
        .await?;
    if running >= MOST_RUNNING {
        return Err(AppError::Conflict(format!(
            "you have {running} bulk jobs running: wait for one to finish"
        )));
    }
    Ok(())
}

/// Records a planned job: a dry run finished, a real one running with its refusals and no-ops
/// already counted as done.
pub(super) async fn insert_job(
    services: &Services,
    actor: &Actor,
    kind: &str,
    planned: &[UserOutcome],
    dry_run: bool,
) -> Result<bulk_job::Model, AppError> {
    let now = super::now();
    let count = |outcome: &str| planned.iter().filter(|p| p.outcome == outcome).count() as i32;
    let results = serde_json::to_string(planned).unwrap_or_else(|_| "[]".to_owned());
    let mut job = bulk_job::ActiveModel {
        id: Set(Uuid::now_v7()),
        kind: Set(kind.to_owned()),
        status: Set(if dry_run { "succeeded" } else { "running" }.to_owned()),
        dry_run: Set(dry_run),
        requested_by: Set(actor.user.id),
        total: Set(planned.len() as i32),
        done: Set(if dry_run {
            planned.len() as i32
        } else {
            planned.len() as i32 - count("would_change")
        }),
        changed: Set(if dry_run { count("would_change") } else { 0 }),
        unchanged: Set(count("unchanged")),
        refused: Set(count("refused")),
        // A dry run's plan is answered, not kept: its row holds the counts only, so that dry
        // runs (free of Clerk's limits and of `MOST_RUNNING`) cannot fill the database.
        results: Set(if dry_run {
            "[]".to_owned()
        } else {
            results.clone()
        }),
        error: Set(None),
        created_at: Set(now),
        finished_at: Set(dry_run.then_some(now)),
        heartbeat_at: Set((!dry_run).then_some(now)),
    }
    .insert(&services.db)
    .await?;
    job.results = results;
    Ok(job)
}

/// How long a finished job is kept, and a dry run's counts.
pub const KEEP_FINISHED: chrono::Duration = chrono::Duration::days(30);
pub const KEEP_DRY_RUNS: chrono::Duration = chrono::Duration::days(1);

/// Forgets finished jobs older than `KEEP_FINISHED` and dry runs older than `KEEP_DRY_RUNS`;
/// returns how many.
pub async fn prune<C: sea_orm::ConnectionTrait>(db: &C) -> Result<u64, AppError> {
    let now = super::now();
    let pruned = bulk_job::Entity::delete_many()
        .filter(bulk_job::Column::Status.ne("running"))
        .filter(
            sea_orm::Condition::any()
                .add(bulk_job::Column::CreatedAt.lt(now - KEEP_FINISHED))
                .add(
                    sea_orm::Condition::all()
                        .add(bulk_job::Column::DryRun.eq(true))
                        .add(bulk_job::Column::CreatedAt.lt(now - KEEP_DRY_RUNS)),
                ),
        )
        .exec(db)
        .await?;
    Ok(pruned.rows_affected)
}

/// The users named, those of them that are no user, or the users the filter matches.
async fn resolve(
    services: &Services,
    actor: &Actor,
    targets: Targets,
) -> Result<(Vec<user::Model>, Vec<Uuid>), AppError> {
    match targets {
        Targets::Ids(ids) => {
            let mut unique = Vec::new();
            for id in ids {
                if !unique.contains(&id) {
                    unique.push(id);
                }
            }
            if unique.is_empty() || unique.len() as u64 > MOST_USERS {
                return Err(AppError::validation(
                    "targets.ids",
                    format!("name 1 to {MOST_USERS} users"),
                ));
            }
            let found: HashMap<Uuid, user::Model> = user::Entity::find()
                .filter(user::Column::Id.is_in(unique.iter().copied()))
                .all(&services.db)
                .await?
                .into_iter()
                .map(|user| (user.id, user))
                .collect();
            let mut users = Vec::new();
            let mut unknown = Vec::new();
            for id in unique {
                match found.get(&id) {
                    Some(user) => users.push(user.clone()),
                    None => unknown.push(id),
                }
            }
            Ok((users, unknown))
        }
        Targets::Filter(filter) => {
            match users::matching(&services.db, actor, filter, MOST_USERS).await? {
                Some(users) => Ok((users, Vec::new())),
                None => Err(AppError::validation(
                    "targets.filter",
                    format!("matches more than {MOST_USERS} users: narrow it, or run it in parts"),
                )),
            }
        }
    }
}

/// Carries out the planned changes, one user at a time, recording each outcome.
async fn run(
    services: &Services,
    requester: Uuid,
    origin: &Origin,
    job_id: Uuid,
    action: BulkAction,
    mut outcomes: Vec<UserOutcome>,
) -> Result<(), AppError> {
    let mut unrecorded = 0;
    for index in 0..outcomes.len() {
        if outcomes[index].outcome != "would_change" {
            continue;
        }
        // The requester as the database says now: a removal, a suspension or a demotion since
        // the job began stops it, with what was done so far recorded.
        let actor = match requester_now(services, requester).await {
            Ok(actor) => actor,
            Err(error) => {
                record_progress(services, job_id, &outcomes).await?;
                return Err(error);
            }
        };
        let Some(user_id) = outcomes[index].user_id else {
            continue;
        };
        let result = match &action {
            BulkAction::Suspend => {
                accounts::set_suspended(services, &actor, origin, user_id, true).await
            }
            BulkAction::Unsuspend => {
                accounts::set_suspended(services, &actor, origin, user_id, false).await
            }
            BulkAction::Remove => accounts::remove(services, &actor, origin, user_id).await,
            BulkAction::Update(update) => {
                accounts::update(services, &actor, origin, user_id, update.clone()).await
            }
        };
        let email = outcomes[index].email.clone();
        outcomes[index] = match result {
            Ok(_) => UserOutcome::of(user_id, &email, "changed"),
            Err(error) => UserOutcome::refused(user_id, &email, &error),
        };
        unrecorded += 1;
        if unrecorded == RECORD_EVERY {
            record_progress(services, job_id, &outcomes).await?;
            unrecorded = 0;
        }
    }
    record_progress(services, job_id, &outcomes).await?;
    finish(services, job_id, "succeeded", None).await
}

/// The requester as they now are, if they may still run bulk operations.
pub(super) async fn requester_now(services: &Services, requester: Uuid) -> Result<Actor, AppError> {
    let current = users::get(&services.db, requester).await?;
    if !current.is_active || current.banned {
        return Err(AppError::Forbidden(
            "the requester was removed or suspended: the job stopped".to_owned(),
        ));
    }
    let actor = Actor {
        user: current,
        session_id: None,
    };
    actor.require_bulk()?;
    Ok(actor)
}

/// Writes the job's counts and outcomes as they now stand, and that it still runs.
pub(super) async fn record_progress(
    services: &Services,
    job_id: Uuid,
    outcomes: &[UserOutcome],
) -> Result<(), AppError> {
    let count = |outcome: &str| outcomes.iter().filter(|o| o.outcome == outcome).count() as i32;
    let job = get(services, job_id).await?;
    let mut row: bulk_job::ActiveModel = job.into();
    row.done = Set(outcomes.len() as i32 - count("would_change"));
    row.changed = Set(count("changed"));
    row.unchanged = Set(count("unchanged"));
    row.refused = Set(count("refused"));
    row.results = Set(serde_json::to_string(outcomes).unwrap_or_else(|_| "[]".to_owned()));
    row.heartbeat_at = Set(Some(super::now()));
    row.update(&services.db).await?;
    Ok(())
}

pub(super) async fn finish(
    services: &Services,
    job_id: Uuid,
    status: &str,
    error: Option<String>,
) -> Result<(), AppError> {
    let job = get(services, job_id).await?;
    let mut row: bulk_job::ActiveModel = job.into();
    row.status = Set(status.to_owned());
    row.error = Set(error);
    row.finished_at = Set(Some(super::now()));
    row.update(&services.db).await?;
    Ok(())
}

async fn get(services: &Services, job_id: Uuid) -> Result<bulk_job::Model, AppError> {
    bulk_job::Entity::find_by_id(job_id)
        .one(&services.db)
        .await?
        .ok_or_else(|| AppError::not_found("bulk job", job_id))
}

/// A job, for the admin or organisation admin who asked for it, or an admin.
pub async fn read(
    services: &Services,
    actor: &Actor,
    job_id: Uuid,
) -> Result<bulk_job::Model, AppError> {
    let job = get(services, job_id).await?;
    actor.require_bulk_job(job.requested_by)?;
    Ok(job)
}

/// How long a running job may go without a sign of life: one silent for longer was cut off
/// (its replica stopped) and is marked failed, so that it does not show as running for ever.
/// A job waiting out Clerk's rate limit writes its heartbeat every `HEARTBEAT`.
pub const ABANDONED_AFTER: chrono::Duration = chrono::Duration::minutes(15);
/// How often a waiting job says it still runs.
pub(super) const HEARTBEAT: std::time::Duration = std::time::Duration::from_secs(60);

/// Marks running jobs silent for longer than `ABANDONED_AFTER` failed; returns how many.
pub async fn fail_abandoned<C: sea_orm::ConnectionTrait>(db: &C) -> Result<u64, AppError> {
    use sea_orm::sea_query::Expr;
    let now = super::now();
    let failed = bulk_job::Entity::update_many()
        .col_expr(bulk_job::Column::Status, Expr::value("failed"))
        .col_expr(
            bulk_job::Column::Error,
            Expr::value("interrupted: the server running it stopped; run it again (what was done stays done)"),
        )
        .col_expr(bulk_job::Column::FinishedAt, Expr::value(now))
        .filter(bulk_job::Column::Status.eq("running"))
        .filter(
            sea_orm::Condition::any()
                .add(bulk_job::Column::HeartbeatAt.lt(now - ABANDONED_AFTER))
                .add(
                    sea_orm::Condition::all()
                        .add(bulk_job::Column::HeartbeatAt.is_null())
                        .add(bulk_job::Column::CreatedAt.lt(now - ABANDONED_AFTER)),
                ),
        )
        .exec(db)
        .await?;
    Ok(failed.rows_affected)
}
