use sea_orm::entity::prelude::*;

/// A webhook delivery already handled, keyed by its svix id, so a redelivery is a no-op.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_deliveries")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub svix_id: String,
    pub event_type: String,
    pub received_at: DateTimeUtc,
    /// `applied`, `stale`, `ignored`.
    pub outcome: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
