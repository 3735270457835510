use sea_orm::entity::prelude::*;

/// One change, as it happened: who, what, to which thing, and the state before and after.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_events")]
pub struct Model {
    /// A UUIDv7, so the log orders by id.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub occurred_at: DateTimeUtc,
    /// A user id, or `clerk` for webhooks, or `sync`, or `system`.
    pub actor: String,
    /// `user.created`, `user.role_changed`, `organisation.created`, ...
    pub action: String,
    /// `user`, `organisation`, `invitation`, `sync_run`.
    pub subject_type: String,
    pub subject_id: String,
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub before: Option<Json>,
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub after: Option<Json>,
    /// `api`, `webhook`, `sync`, `cli`.
    pub source: String,
    /// The request id or the svix id that caused it.
    pub correlation_id: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
