use async_graphql::{Context, InputObject, Object, Result};
use chrono::{DateTime, Utc};

use crate::graphql::caller;
use crate::graphql::services;
use crate::graphql::types::AuditEvent;
use crate::graphql::types::audit_event::AuditEventConnection;
use crate::graphql::types::connection::TotalCount;
use crate::service::TimeRange;
use crate::service::audit::{self, AuditFilter};
use crate::service::pagination::PageRequest;

#[derive(Default)]
pub struct AuditQuery;

/// Narrows the audit log; every field given must match exactly.
#[derive(Debug, Clone, Default, InputObject)]
#[graphql(name = "AuditLogFilter")]
pub struct AuditLogFilterInput {
    /// A user id, or `clerk`, `sync`, `cli`.
    pub actor: Option<String>,
    /// `user.created`, `user.role_changed`, ...
    pub action: Option<String>,
    /// `user`, `organisation`, `invitation`, `sync_run`.
    pub subject_type: Option<String>,
    pub subject_id: Option<String>,
    /// Events at or after this moment.
    pub occurred_from: Option<DateTime<Utc>>,
    /// Events before this moment (a half-open range with `occurredFrom`).
    pub occurred_before: Option<DateTime<Utc>>,
}

#[Object]
impl AuditQuery {
    /// Every recorded change, newest first. Admins only.
    #[graphql(complexity = "crate::graphql::schema::page_complexity(first, child_complexity)")]
    async fn audit_log(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size, at most 100 (default 20).")] first: Option<i32>,
        #[graphql(desc = "The `endCursor` of the previous page.")] after: Option<String>,
        filter: Option<AuditLogFilterInput>,
    ) -> Result<AuditEventConnection> {
        let actor = caller(ctx).actor()?;
        let page = PageRequest::parse(first, after.as_deref(), audit::ORDER_TAG)?;
        let filter = filter.unwrap_or_default();
        let filter = AuditFilter {
            actor: filter.actor,
            action: filter.action,
            subject_type: filter.subject_type,
            subject_id: filter.subject_id,
            occurred: TimeRange {
                from: filter.occurred_from,
                before: filter.occurred_before,
            },
        };
        let db = &services(ctx).db;
        let (found, scope) = audit::list(db, actor, filter, &page).await?;
        Ok(AuditEventConnection {
            page: found.map(AuditEvent),
            total: TotalCount::AuditEvents(scope),
        })
    }
}
