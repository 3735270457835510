//! Sync: the reconciliation of docs/architecture.md, rule 4. Page through every Clerk user (500 at
//! a time, in creation order, by cursor), apply each page in one transaction, and only after a
//! complete pass deactivate the users Clerk no longer has. Every run is a `sync_runs` row; at most
//! one runs at a time across all replicas (a unique index on the running row). A rerun when nothing
//! changed writes nothing but its own run row.
//!
//! This file is a run's life (claim the slot, heartbeat, finish, fail the interrupted);
//! `reconcile` does its work and `report` compares Clerk with the database without changing
//! either.

use std::time::Duration;

use entity::role::SyncRunStatus;
use entity::sync_run;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, IntoActiveModel, QueryFilter,
    QueryOrder, Set, SqlErr,
};
use tokio::sync::watch;
use tracing::Instrument;
use uuid::Uuid;

use super::{Origin, Services, Source};
use crate::auth::{Actor, Requester};
use crate::error::AppError;
use crate::events::SyncProgress;

mod reconcile;
mod report;

pub use report::{Drift, Report, report};

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
    let outcome = reconcile::reconcile(db, clerk, events, &started, progress).await;
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
