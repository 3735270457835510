//! Sync: the reconciliation of docs/architecture.md, rule 4. Page through every Clerk user (500 at
//! a time, in creation order, by cursor), apply each page in one transaction, and only after a
//! complete pass deactivate the users Clerk no longer has. Every run is a `sync_runs` row; at most
//! one runs at a time across all replicas (a unique index on the running row). A rerun when nothing
//! changed writes nothing but its own run row.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use entity::role::SyncRunStatus;
use entity::{organisation, sync_run, user};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, IntoActiveModel, QueryFilter,
    QueryOrder, QuerySelect, Set, SqlErr,
};
use tokio::sync::watch;
use tracing::Instrument;
use uuid::Uuid;

use super::users::{self, Upserted};
use super::{Origin, Services, Source};
use crate::auth::{Actor, Requester};
use crate::clerk::ClerkClient;
use crate::error::AppError;
use crate::events::{Changes, EventBus, SyncProgress};

/// Clerk's largest page.
pub const PAGE_SIZE: usize = 500;

/// The counts of a run as it goes: the database row and the published `SyncProgress` are
/// made from them, and the CLI draws its progress bar from them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunCounts {
    pub run_id: Option<Uuid>,
    pub seen: i64,
    pub created: i64,
    pub updated: i64,
    pub deactivated: i64,
    /// Clerk's count when the run started, for a progress bar.
    pub total: Option<i64>,
    pub finished: bool,
}

/// What `start` found.
pub enum Started {
    /// A new run, to be driven by `run`.
    New(sync_run::Model),
    /// A run already under way (here or on another replica): the caller gets that one.
    AlreadyRunning(sync_run::Model),
}

fn origin(run_id: Uuid) -> Origin {
    Origin {
        actor: "sync".to_owned(),
        source: Source::Sync,
        correlation_id: Some(run_id.to_string()),
    }
}

/// Marks failed every run whose heartbeat is older than `stale_after`: its process died (was
/// killed, crashed) mid-run. Returns how many.
pub async fn fail_interrupted(
    db: &DatabaseConnection,
    stale_after: Duration,
) -> Result<u64, AppError> {
    let now = super::now();
    let stale_before = now - chrono::Duration::from_std(stale_after).unwrap_or_default();
    let failed = sync_run::Entity::update_many()
        .col_expr(
            sync_run::Column::Status,
            Expr::value(SyncRunStatus::Failed.as_str()),
        )
        .col_expr(sync_run::Column::FinishedAt, Expr::value(now))
        .col_expr(
            sync_run::Column::Error,
            Expr::value("interrupted: the process running it stopped"),
        )
        .filter(sync_run::Column::Status.eq(SyncRunStatus::Running))
        .filter(sync_run::Column::HeartbeatAt.lt(stale_before))
        .exec(db)
        .await?;
    Ok(failed.rows_affected)
}

/// Claims the single running slot, first failing any run whose process died.
pub async fn start(
    db: &DatabaseConnection,
    triggered_by: &str,
    stale_after: Duration,
) -> Result<Started, AppError> {
    fail_interrupted(db, stale_after).await?;
    let now = super::now();
    let run = sync_run::ActiveModel {
        id: Set(Uuid::now_v7()),
        started_at: Set(now),
        finished_at: Set(None),
        heartbeat_at: Set(now),
        status: Set(SyncRunStatus::Running),
        seen: Set(0),
        created: Set(0),
        updated: Set(0),
        deactivated: Set(0),
        error: Set(None),
        triggered_by: Set(triggered_by.to_owned()),
    };
    match run.insert(db).await {
        Ok(run) => Ok(Started::New(run)),
        Err(err) if matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
            let running = sync_run::Entity::find()
                .filter(sync_run::Column::Status.eq(SyncRunStatus::Running))
                .one(db)
                .await?
                .ok_or_else(|| {
                    AppError::Conflict("a sync has just finished: ask again".to_owned())
                })?;
            Ok(Started::AlreadyRunning(running))
        }
        Err(err) => Err(err.into()),
    }
}

/// What `launch` did.
pub enum Launched {
    /// A run was under way (here or on another replica): the caller gets that one.
    AlreadyRunning(sync_run::Model),
    /// A new run, driven in a task of its own; `finished` ends with the run's last state.
    Started {
        run: sync_run::Model,
        finished: tokio::task::JoinHandle<Result<sync_run::Model, AppError>>,
    },
}

/// Starts a sync, unless one is under way, and drives it in a task of its own that outlives
/// the request (or command) that asked; `progress` follows its counts. The run's log lines
/// carry its id, and how it ended is counted in `userhub_sync_runs_total`. The one way the API
/// and the CLI start a sync.
pub async fn launch(
    services: &Services,
    requester: Requester<'_>,
    progress: watch::Sender<RunCounts>,
) -> Result<Launched, AppError> {
    requester.require_admin()?;
    let triggered_by = requester.name();
    let started = match start(&services.db, &triggered_by, services.sync_stale_after).await? {
        Started::AlreadyRunning(run) => return Ok(Launched::AlreadyRunning(run)),
        Started::New(run) => run,
    };
    let span = tracing::info_span!("sync", run_id = %started.id);
    let services = services.clone();
    let run_row = started.clone();
    let finished = tokio::spawn(
        async move {
            let outcome = run(&services, started, &progress).await;
            match &outcome {
                Ok(_) => services.metrics.count_sync_run("succeeded"),
                Err(err) => {
                    services.metrics.count_sync_run("failed");
                    tracing::error!(error = %err, "the sync failed");
                }
            }
            outcome
        }
        .instrument(span),
    );
    Ok(Launched::Started {
        run: run_row,
        finished,
    })
}

/// Drives a started run to its end and records how it ended.
async fn run(
    services: &Services,
    started: sync_run::Model,
    progress: &watch::Sender<RunCounts>,
) -> Result<sync_run::Model, AppError> {
    let Services {
        db, clerk, events, ..
    } = services;
    let stale_after = services.sync_stale_after;
    let run_id = started.id;
    events
        .publish_sync_progress(
            db,
            SyncProgress {
                run: started.clone(),
                total: None,
            },
        )
        .await;
    // Beats while the run lives, whatever it waits on (Clerk, a lock), so that only a dead
    // process's run goes stale.
    let beating = AbortOnDrop(tokio::spawn(beat(
        db.clone(),
        run_id,
        (stale_after / 4).max(Duration::from_millis(250)),
    )));
    let outcome = reconcile(db, clerk, events, &started, progress).await;
    drop(beating);
    let current = sync_run::Entity::find_by_id(run_id)
        .one(db)
        .await?
        .ok_or_else(|| AppError::not_found("sync run", run_id))?;
    let mut row = current.into_active_model();
    let now = super::now();
    row.finished_at = Set(Some(now));
    row.heartbeat_at = Set(now);
    let counts = progress.borrow().clone();
    row.seen = Set(counts.seen);
    row.created = Set(counts.created);
    row.updated = Set(counts.updated);
    row.deactivated = Set(counts.deactivated);
    match &outcome {
        Ok(()) => row.status = Set(SyncRunStatus::Succeeded),
        Err(err) => {
            row.status = Set(SyncRunStatus::Failed);
            row.error = Set(Some(err.to_string()));
        }
    }
    let finished = row.update(db).await?;
    progress.send_modify(|progress| progress.finished = true);
    events
        .publish_sync_progress(
            db,
            SyncProgress {
                run: finished.clone(),
                total: counts.total,
            },
        )
        .await;
    outcome.map(|()| finished)
}

async fn reconcile(
    db: &DatabaseConnection,
    clerk: &ClerkClient,
    events: &EventBus,
    started: &sync_run::Model,
    progress: &watch::Sender<RunCounts>,
) -> Result<(), AppError> {
    let run_id = started.id;
    let origin = origin(run_id);
    let total = clerk.count_users().await.ok();
    progress.send_modify(|progress| {
        progress.run_id = Some(run_id);
        progress.total = total;
    });
    // Only users that existed before the pass began can be missing from it: one created while
    // it ran (a sign-up's `user.created`) may come after the page that would have listed it.
    let existing: HashSet<Uuid> = user::Entity::find()
        .select_only()
        .column(user::Column::Id)
        .filter(user::Column::IsActive.eq(true))
        .into_tuple::<Uuid>()
        .all(db)
        .await?
        .into_iter()
        .collect();
    let mut seen: HashSet<String> = HashSet::new();
    let mut pages = ClerkPages::new(clerk);
    let mut next_page = pages.next().await?;
    while let Some(page) = next_page {
        let profiles: Vec<_> = page.iter().filter_map(users::ClerkProfile::of).collect();
        seen.extend(page.into_iter().map(|user| user.id));
        // The next page's cursor is this page's last id, so Clerk can be read while this page
        // is written: the sync takes the longer of the two sides, not their sum.
        let (applied, fetched) =
            tokio::join!(apply_page(db, events, &origin, profiles), pages.next());
        let (created, updated) = applied?;
        next_page = fetched?;
        progress.send_modify(|progress| {
            progress.seen = seen.len() as i64;
            progress.created += created;
            progress.updated += updated;
        });
        let snapshot = progress.borrow().clone();
        heartbeat(db, run_id, &snapshot).await?;
        let mut run = started.clone();
        run.seen = snapshot.seen;
        run.created = snapshot.created;
        run.updated = snapshot.updated;
        run.heartbeat_at = super::now();
        events
            .publish_sync_progress(
                db,
                SyncProgress {
                    run,
                    total: snapshot.total,
                },
            )
            .await;
    }

    // Only now, after a complete pass, is "not in Clerk" known to mean "deleted in Clerk", and
    // only for users that were here when it began.
    let gone: Vec<user::Model> = user::Entity::find()
        .filter(user::Column::IsActive.eq(true))
        .order_by_asc(user::Column::Id)
        .all(db)
        .await?
        .into_iter()
        .filter(|user| existing.contains(&user.id) && !seen.contains(&user.clerk_id))
        .collect();
    let deactivated = gone.len() as i64;
    if !gone.is_empty() {
        let txn = super::begin_write(db).await?;
        let mut changes = Changes::default();
        for user in gone {
            users::apply_deactivation(&txn, &origin, user, &mut changes).await?;
        }
        events.commit(txn, changes).await?;
    }
    progress.send_modify(|progress| progress.deactivated = deactivated);
    Ok(())
}

/// Clerk's users a page at a time, oldest first, by cursor (`starting_after`): offsets time
/// out on large instances. A page shorter than asked for is the last.
struct ClerkPages<'a> {
    clerk: &'a ClerkClient,
    after: Option<String>,
    done: bool,
}

impl<'a> ClerkPages<'a> {
    fn new(clerk: &'a ClerkClient) -> ClerkPages<'a> {
        ClerkPages {
            clerk,
            after: None,
            done: false,
        }
    }

    async fn next(&mut self) -> Result<Option<Vec<crate::clerk::model::ClerkUser>>, AppError> {
        if self.done {
            return Ok(None);
        }
        let mut query = vec![
            ("limit", PAGE_SIZE.to_string()),
            ("order_by", "+created_at".to_owned()),
        ];
        if let Some(after) = &self.after {
            query.push(("starting_after", after.clone()));
        }
        let page = self.clerk.list_users(&query).await?;
        self.done = page.len() < PAGE_SIZE;
        self.after = page.last().map(|user| user.id.clone());
        if self.after.is_none() {
            self.done = true;
        }
        Ok(Some(page))
    }
}

/// Applies one page in one transaction: the stored rows and organisations it needs are read
/// in two queries, and only what changed is written.
async fn apply_page(
    db: &DatabaseConnection,
    events: &EventBus,
    origin: &Origin,
    profiles: Vec<users::ClerkProfile>,
) -> Result<(i64, i64), AppError> {
    if profiles.is_empty() {
        return Ok((0, 0));
    }
    let clerk_ids: Vec<String> = profiles.iter().map(|p| p.clerk_id.clone()).collect();
    let organisation_ids: HashSet<Uuid> =
        profiles.iter().filter_map(|p| p.organisation_id).collect();
    let txn = super::begin_write(db).await?;
    let mut stored: HashMap<String, user::Model> = user::Entity::find()
        .filter(user::Column::ClerkId.is_in(clerk_ids))
        .all(&txn)
        .await?
        .into_iter()
        .map(|user| (user.clerk_id.clone(), user))
        .collect();
    let known_organisations: HashSet<Uuid> = if organisation_ids.is_empty() {
        HashSet::new()
    } else {
        organisation::Entity::find()
            .select_only()
            .column(organisation::Column::Id)
            .filter(organisation::Column::Id.is_in(organisation_ids))
            .into_tuple::<Uuid>()
            .all(&txn)
            .await?
            .into_iter()
            .collect()
    };
    // A user deleted in Clerk after this page was read: the deletion wins.
    let unknown: Vec<String> = profiles
        .iter()
        .filter(|p| !stored.contains_key(&p.clerk_id))
        .map(|p| p.clerk_id.clone())
        .collect();
    let buried = users::buried_among(&txn, unknown).await?;
    let (mut created, mut updated) = (0, 0);
    let mut changes = Changes::default();
    let mut new_users = Vec::new();
    for profile in profiles {
        if buried.contains(&profile.clerk_id) {
            continue;
        }
        let existing = stored.remove(&profile.clerk_id);
        let organisation_exists = profile
            .organisation_id
            .is_some_and(|id| known_organisations.contains(&id));
        if existing.is_none() {
            new_users.push((profile, organisation_exists));
            continue;
        }
        match users::apply_profile(
            &txn,
            origin,
            profile,
            existing,
            organisation_exists,
            &mut changes,
        )
        .await?
        {
            Upserted::Created(_) => created += 1,
            Upserted::Updated(_) => updated += 1,
            Upserted::Unchanged(_) | Upserted::Stale(_) => {}
        }
    }
    created += users::create_many(&txn, origin, new_users, &mut changes).await? as i64;
    events.commit(txn, changes).await?;
    Ok((created, updated))
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn beat(db: DatabaseConnection, run_id: Uuid, every: Duration) {
    let mut ticks = tokio::time::interval(every);
    ticks.tick().await;
    loop {
        ticks.tick().await;
        let touched = sync_run::Entity::update_many()
            .col_expr(sync_run::Column::HeartbeatAt, Expr::value(super::now()))
            .filter(sync_run::Column::Id.eq(run_id))
            .filter(sync_run::Column::Status.eq(SyncRunStatus::Running))
            .exec(&db)
            .await;
        if let Err(err) = touched {
            tracing::warn!(error = %err, "cannot record the sync's heartbeat");
        }
    }
}

async fn heartbeat(
    db: &DatabaseConnection,
    run_id: Uuid,
    progress: &RunCounts,
) -> Result<(), AppError> {
    sync_run::Entity::update_many()
        .col_expr(
            sync_run::Column::HeartbeatAt,
            sea_orm::sea_query::Expr::value(super::now()),
        )
        .col_expr(
            sync_run::Column::Seen,
            sea_orm::sea_query::Expr::value(progress.seen),
        )
        .col_expr(
            sync_run::Column::Created,
            sea_orm::sea_query::Expr::value(progress.created),
        )
        .col_expr(
            sync_run::Column::Updated,
            sea_orm::sea_query::Expr::value(progress.updated),
        )
        .filter(sync_run::Column::Id.eq(run_id))
        .exec(db)
        .await?;
    Ok(())
}

/// One run, to follow it. Admins only.
pub async fn get(
    db: &DatabaseConnection,
    actor: &Actor,
    id: Uuid,
) -> Result<sync_run::Model, AppError> {
    actor.require_admin()?;
    sync_run::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or_else(|| AppError::not_found("sync run", id))
}

pub async fn last(db: &DatabaseConnection) -> Result<Option<sync_run::Model>, AppError> {
    Ok(sync_run::Entity::find()
        .order_by_desc(sync_run::Column::Id)
        .one(db)
        .await?)
}

/// How many samples of each kind of drift a report lists.
const SAMPLES: usize = 20;

/// A kind of drift: how many, and a few of them (emails).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Drift {
    pub count: i64,
    pub sample: Vec<String>,
}

impl Drift {
    fn add(&mut self, email: &str) {
        self.count += 1;
        if self.sample.len() < SAMPLES {
            self.sample.push(email.to_owned());
        }
    }
}

/// Clerk against the database, without changing either: what a sync would do.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub clerk_count: i64,
    /// Active users here.
    pub database_count: i64,
    /// In Clerk, not here (or here but inactive).
    pub missing_in_database: Drift,
    /// Active here, gone from Clerk.
    pub missing_in_clerk: Drift,
    /// In both, with different data.
    pub differing: Drift,
    /// Users whose `organisationId` in Clerk names no organisation here.
    pub unknown_organisations: Drift,
}

impl Report {
    /// Nothing to repair: every Clerk user is here as Clerk has them, and nobody here is gone
    /// from Clerk. (An organisation Clerk names that userhub lacks is reported, not repaired.)
    pub fn in_sync(&self) -> bool {
        self.missing_in_database.count == 0
            && self.missing_in_clerk.count == 0
            && self.differing.count == 0
    }
}

pub async fn report(services: &Services, actor: &Actor) -> Result<Report, AppError> {
    actor.require_admin()?;
    let Services { db, clerk, .. } = services;
    let mut report = Report::default();
    let mut stored: HashMap<String, user::Model> = user::Entity::find()
        .all(db)
        .await?
        .into_iter()
        .map(|user| (user.clerk_id.clone(), user))
        .collect();
    let organisations: HashSet<Uuid> = organisation::Entity::find()
        .select_only()
        .column(organisation::Column::Id)
        .into_tuple::<Uuid>()
        .all(db)
        .await?
        .into_iter()
        .collect();
    report.database_count = stored.values().filter(|user| user.is_active).count() as i64;
    let mut pages = ClerkPages::new(clerk);
    while let Some(page) = pages.next().await? {
        for clerk_user in page {
            report.clerk_count += 1;
            let Some(profile) = users::ClerkProfile::of(&clerk_user) else {
                continue;
            };
            if profile
                .organisation_id
                .is_some_and(|id| !organisations.contains(&id))
            {
                report.unknown_organisations.add(&profile.email);
            }
            match stored.remove(&profile.clerk_id) {
                Some(user) if user.is_active => {
                    let organisation = profile
                        .organisation_id
                        .filter(|id| organisations.contains(id));
                    let same = user.email == profile.email.trim().to_lowercase()
                        && user.first_name == profile.first_name
                        && user.last_name == profile.last_name
                        && user.role == profile.role
                        && user.organisation_id == organisation
                        && user.banned == profile.banned;
                    if !same {
                        report.differing.add(&user.email);
                    }
                }
                _ => report.missing_in_database.add(&profile.email),
            }
        }
    }
    let mut remaining: Vec<&user::Model> = stored.values().filter(|user| user.is_active).collect();
    remaining.sort_by(|a, b| a.email.cmp(&b.email));
    for user in remaining {
        report.missing_in_clerk.add(&user.email);
    }
    Ok(report)
}
