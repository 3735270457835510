use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// A person's employment as userhub records it (staff id, contract, workload target). Owned
/// here, not in Clerk's metadata.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "lecturer_profiles")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: Uuid,
    pub staff_id: Option<String>,
    pub job_title: Option<String>,
    pub department: Option<String>,
    /// The contract's full-time equivalent, in (0, 1].
    pub contract_fte: Option<f64>,
    pub contract_start: Option<Date>,
    pub contract_end: Option<Date>,
    /// Teaching and other duties a year, in hours, when set for this person rather than
    /// derived from their FTE.
    pub workload_target_hours: Option<f64>,
    /// When the person's access ends: from then on they are suspended in Clerk.
    pub access_until: Option<DateTimeUtc>,
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
