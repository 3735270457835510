use sea_orm::entity::prelude::*;

/// A bulk operation on many users: what was asked, how far it got, and each user's outcome.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "bulk_jobs")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// `suspend`, `unsuspend`, `remove`, `update` or `import`.
    pub kind: String,
    /// `running`, `succeeded` or `failed`.
    pub status: String,
    pub dry_run: bool,
    pub requested_by: Uuid,
    pub total: i32,
    pub done: i32,
    pub changed: i32,
    pub unchanged: i32,
    pub refused: i32,
    /// Each user's outcome, in order, JSON.
    #[sea_orm(column_type = "Text")]
    pub results: String,
    #[sea_orm(column_type = "Text", nullable)]
    pub error: Option<String>,
    pub created_at: DateTimeUtc,
    pub finished_at: Option<DateTimeUtc>,
    /// When a running job last wrote its progress (or, waiting, that it still runs).
    pub heartbeat_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
