use sea_orm::entity::prelude::*;

/// A Clerk session: one sign-in, from `session.created` until it ended. Names its user by
/// Clerk id, so a session heard of before its user is kept.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sign_ins")]
pub struct Model {
    /// Clerk's session id, `sess_...`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub session_id: String,
    pub clerk_user_id: String,
    pub started_at: DateTimeUtc,
    pub last_active_at: DateTimeUtc,
    pub ended_at: Option<DateTimeUtc>,
    /// Clerk's status: `active`, `ended`, `removed`, `revoked`, `expired`, ...
    pub status: String,
    pub device_type: Option<String>,
    pub browser: Option<String>,
    /// ISO 3166 country code, as Clerk located the request.
    pub country: Option<String>,
    /// Clerk's `updated_at` (Unix milliseconds) of the state stored: the ordering guard
    /// against late deliveries.
    pub clerk_updated_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
