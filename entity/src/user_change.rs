use sea_orm::entity::prelude::*;

/// A change published to `userChanged`, kept so that a subscriber can resume from it.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "user_changes")]
pub struct Model {
    /// UUIDv7, taken as the change commits: the feed's order and its cursor.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub user_id: Uuid,
    pub organisation_id: Option<Uuid>,
    pub previous_organisation_id: Option<Uuid>,
    /// The change as it was published, JSON.
    #[sea_orm(column_type = "Text")]
    pub payload: String,
    pub occurred_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
