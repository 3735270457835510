use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

use crate::role::SyncRunStatus;

/// One reconciliation pass over every Clerk user.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "sync_runs")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub started_at: DateTimeUtc,
    pub finished_at: Option<DateTimeUtc>,
    /// Refreshed while the run makes progress; a `running` row whose heartbeat is old belongs to
    /// a process that died.
    pub heartbeat_at: DateTimeUtc,
    pub status: SyncRunStatus,
    pub seen: i64,
    pub created: i64,
    pub updated: i64,
    pub deactivated: i64,
    pub error: Option<String>,
    /// Who asked for it: a user id, `cli`, or `system`.
    pub triggered_by: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
