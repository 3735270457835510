use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

use crate::role::Role;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "users")]
pub struct Model {
    /// A UUIDv7: time-ordered, so ordering by id is ordering by creation.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    #[sea_orm(unique)]
    pub clerk_id: String,
    /// The primary email address, lower-cased.
    pub email: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub image_url: Option<String>,
    pub role: Role,
    pub organisation_id: Option<Uuid>,
    pub is_active: bool,
    pub banned: bool,
    pub last_sign_in_at: Option<DateTimeUtc>,
    /// When Clerk last saw the user active (their user object, their sessions' events).
    #[serde(default)]
    pub last_active_at: Option<DateTimeUtc>,
    /// Clerk's `updated_at` (Unix milliseconds) of the state last applied: the ordering guard
    /// against stale webhooks.
    pub clerk_updated_at: i64,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub deactivated_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::organisation::Entity",
        from = "Column::OrganisationId",
        to = "super::organisation::Column::Id",
        on_update = "NoAction",
        on_delete = "SetNull"
    )]
    Organisation,
}

impl Related<super::organisation::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Organisation.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
