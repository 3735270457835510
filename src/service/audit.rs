//! The audit trail: one row per change, written in the same transaction as the change.

use entity::audit_event;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set,
    sea_query::Condition,
};
use serde_json::Value;
use uuid::Uuid;

use super::pagination::{Cursor, Direction, Keyset, Page, PageRequest, fetch_page};
use super::{Origin, Scoped, TimeRange};
use crate::auth::Actor;
use crate::error::AppError;

/// Every kind of change the trail records. Its name (`user.role_changed`) is what the
/// `action` column, and the `auditLog` filter, hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    UserCreated,
    UserUpdated,
    UserRoleChanged,
    UserSuspended,
    UserUnsuspended,
    UserDeactivated,
    UserProfileUpdated,
    UserActivityAllocated,
    UserActivityUpdated,
    UserActivityRemoved,
    OrganisationCreated,
    OrganisationUpdated,
    OrganisationArchived,
    InvitationCreated,
    InvitationRevoked,
    InvitationAccepted,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::UserCreated => "user.created",
            Action::UserUpdated => "user.updated",
            Action::UserRoleChanged => "user.role_changed",
            Action::UserSuspended => "user.suspended",
            Action::UserUnsuspended => "user.unsuspended",
            Action::UserDeactivated => "user.deactivated",
            Action::UserProfileUpdated => "user.profile_updated",
            Action::UserActivityAllocated => "user.activity_allocated",
            Action::UserActivityUpdated => "user.activity_updated",
            Action::UserActivityRemoved => "user.activity_removed",
            Action::OrganisationCreated => "organisation.created",
            Action::OrganisationUpdated => "organisation.updated",
            Action::OrganisationArchived => "organisation.archived",
            Action::InvitationCreated => "invitation.created",
            Action::InvitationRevoked => "invitation.revoked",
            Action::InvitationAccepted => "invitation.accepted",
        }
    }

    /// The kind of thing the action changes: the name's first part.
    pub fn subject_type(self) -> &'static str {
        match self {
            Action::UserCreated
            | Action::UserUpdated
            | Action::UserRoleChanged
            | Action::UserSuspended
            | Action::UserUnsuspended
            | Action::UserDeactivated
            | Action::UserProfileUpdated
            | Action::UserActivityAllocated
            | Action::UserActivityUpdated
            | Action::UserActivityRemoved => "user",
            Action::OrganisationCreated
            | Action::OrganisationUpdated
            | Action::OrganisationArchived => "organisation",
            Action::InvitationCreated | Action::InvitationRevoked | Action::InvitationAccepted => {
                "invitation"
            }
        }
    }
}

/// A thing whose changes the trail records: its id, and its state as the trail shows it.
pub(crate) trait Subject {
    fn subject_id(&self) -> String;
    fn snapshot(&self) -> Value;
}

/// What changed, to which thing.
#[derive(Debug, Clone)]
pub struct Change {
    pub action: Action,
    pub subject_id: String,
    pub before: Option<Value>,
    pub after: Option<Value>,
}

impl Change {
    /// A thing that did not exist before.
    pub(crate) fn created(action: Action, after: &impl Subject) -> Change {
        Change {
            action,
            subject_id: after.subject_id(),
            before: None,
            after: Some(after.snapshot()),
        }
    }

    /// A thing whose state was `before` (its `snapshot`, taken before the write).
    pub(crate) fn changed(action: Action, before: Value, after: &impl Subject) -> Change {
        Change {
            action,
            subject_id: after.subject_id(),
            before: Some(before),
            after: Some(after.snapshot()),
        }
    }
}

/// Writes one audit event, in the transaction that makes the change. Only `service::Write`
/// calls it (`Write::audit`), so no change is recorded outside a unit of work.
pub(super) async fn record<C: ConnectionTrait>(
    conn: &C,
    origin: &Origin,
    change: Change,
) -> Result<audit_event::Model, AppError> {
    Ok(event(origin, change).insert(conn).await?)
}

/// Writes many audit events in one statement (a sync page's creations, a batch of deliveries').
pub(super) async fn record_many<C: ConnectionTrait>(
    conn: &C,
    changes: Vec<(Origin, Change)>,
) -> Result<(), AppError> {
    if changes.is_empty() {
        return Ok(());
    }
    audit_event::Entity::insert_many(
        changes
            .into_iter()
            .map(|(origin, change)| event(&origin, change)),
    )
    .exec_without_returning(conn)
    .await?;
    Ok(())
}

fn event(origin: &Origin, change: Change) -> audit_event::ActiveModel {
    audit_event::ActiveModel {
        id: Set(Uuid::now_v7()),
        occurred_at: Set(super::now()),
        actor: Set(origin.actor.clone()),
        action: Set(change.action.as_str().to_owned()),
        subject_type: Set(change.action.subject_type().to_owned()),
        subject_id: Set(change.subject_id),
        before: Set(change.before),
        after: Set(change.after),
        source: Set(origin.source.as_str().to_owned()),
        correlation_id: Set(origin.correlation_id.clone()),
    }
}

/// Which events to list. Every field narrows the list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct AuditFilter {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub subject_type: Option<String>,
    pub subject_id: Option<String>,
    /// When the events happened.
    pub occurred: TimeRange,
}

impl AuditFilter {
    fn condition(&self) -> Result<Condition, AppError> {
        let mut condition = Condition::all();
        if self.occurred != TimeRange::default() {
            condition = condition.add(
                self.occurred
                    .condition("filter.occurredBefore", audit_event::Column::OccurredAt)?,
            );
        }
        if let Some(actor) = &self.actor {
            condition = condition.add(audit_event::Column::Actor.eq(actor.clone()));
        }
        if let Some(action) = &self.action {
            condition = condition.add(audit_event::Column::Action.eq(action.clone()));
        }
        if let Some(subject_type) = &self.subject_type {
            condition = condition.add(audit_event::Column::SubjectType.eq(subject_type.clone()));
        }
        if let Some(subject_id) = &self.subject_id {
            condition = condition.add(audit_event::Column::SubjectId.eq(subject_id.clone()));
        }
        Ok(condition)
    }
}

/// The audit log reads newest first; event ids are UUIDv7, so that is id order.
pub const ORDER_TAG: &str = "NEWEST_FIRST";

const NEWEST_FIRST: Keyset<audit_event::Column> = Keyset {
    key: None,
    id: audit_event::Column::Id,
    direction: Direction::Desc,
};

/// The audit log, newest first, and the filter for its `total`. Admins only: it names every
/// change to everyone.
pub async fn list<C: ConnectionTrait>(
    conn: &C,
    actor: &Actor,
    filter: AuditFilter,
    page: &PageRequest,
) -> Result<(Page<audit_event::Model>, Scoped<AuditFilter>), AppError> {
    actor.require_audit_log()?;
    let query = audit_event::Entity::find().filter(filter.condition()?);
    let found = fetch_page(conn, query, NEWEST_FIRST, page, |event| {
        Cursor {
            key: None,
            id: event.id,
        }
        .encode(ORDER_TAG)
    })
    .await?;
    Ok((found, Scoped::new(filter)))
}

/// How many events the audit log a caller was shown holds.
pub async fn total<C: ConnectionTrait>(
    conn: &C,
    filter: &Scoped<AuditFilter>,
) -> Result<u64, AppError> {
    use sea_orm::PaginatorTrait;
    Ok(audit_event::Entity::find()
        .filter(filter.filter().condition()?)
        .count(conn)
        .await?)
}
