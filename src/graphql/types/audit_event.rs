use async_graphql::{ID, Json, Object};
use chrono::{DateTime, Utc};
use entity::audit_event;

use super::connection::connection;

/// One change, as it happened: who made it, to what, and the state before and after.
#[derive(Debug, Clone)]
pub struct AuditEvent(pub(crate) audit_event::Model);

#[Object]
impl AuditEvent {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    async fn occurred_at(&self) -> DateTime<Utc> {
        self.0.occurred_at
    }

    /// A user id, or `clerk` (a webhook), `sync`, `cli`.
    async fn actor(&self) -> &str {
        &self.0.actor
    }

    /// What happened: `user.created`, `user.role_changed`, `organisation.created`, ...
    async fn action(&self) -> &str {
        &self.0.action
    }

    /// The kind of thing it happened to: `user`, `organisation`, `invitation`, `sync_run`.
    async fn subject_type(&self) -> &str {
        &self.0.subject_type
    }

    async fn subject_id(&self) -> &str {
        &self.0.subject_id
    }

    async fn before(&self) -> Option<Json<serde_json::Value>> {
        self.0.before.clone().map(Json)
    }

    async fn after(&self) -> Option<Json<serde_json::Value>> {
        self.0.after.clone().map(Json)
    }

    /// Which door the change came through: `api`, `webhook`, `sync`, `cli`.
    async fn source(&self) -> &str {
        &self.0.source
    }

    /// The request id or svix message id that caused it.
    async fn correlation_id(&self) -> Option<&str> {
        self.0.correlation_id.as_deref()
    }
}

connection!(
    AuditEventConnection,
    AuditEventEdge,
    AuditEvent,
    "audit events"
);
