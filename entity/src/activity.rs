use sea_orm::entity::prelude::*;

use crate::role::ActivityKind;

/// A duty allocated to a person for an academic year (a module's teaching, marking,
/// supervision, administration), with the hours it carries.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "activities")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub user_id: Uuid,
    /// The academic year, `2026/27`.
    pub academic_year: String,
    /// Within the year: `Autumn`, `Semester 2`, as the organisation names its terms.
    pub term: Option<String>,
    pub kind: ActivityKind,
    pub module_code: Option<String>,
    pub name: String,
    pub hours: f64,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::user::Entity",
        from = "Column::UserId",
        to = "super::user::Column::Id",
        on_update = "NoAction",
        on_delete = "Cascade"
    )]
    User,
}

impl Related<super::user::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::User.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
