use sea_orm::entity::prelude::*;

/// A Clerk id Clerk has deleted. Ids are never reused, so any later event about it is stale.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "clerk_tombstones")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub clerk_id: String,
    pub deleted_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
