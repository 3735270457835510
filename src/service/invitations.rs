//! Invitations: Clerk sends the email and, when the person signs up, copies the invitation's
//! public metadata (role, organisation) onto their user. userhub records each invitation so it
//! can list them, revoke them, and mark them accepted when the user arrives
//! (docs/architecture.md, rule 3).

use entity::invitation;
use entity::role::{InvitationStatus, Role};
use sea_orm::sea_query::Condition;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait,
    PaginatorTrait, QueryFilter, QuerySelect, Set,
};
use serde_json::json;
use uuid::Uuid;

use super::audit::{self, Action, Change};
use super::pagination::{Cursor, Direction, Keyset, Page, PageRequest, fetch_page};
use super::{Origin, Scoped, Services, Write, accounts, users};
use crate::auth::Actor;
pub use crate::clerk::model::INVITATION_KEY;
use crate::clerk::model::{ORGANISATION_KEY, ROLE_KEY};
use crate::clerk::{ClerkFailure, NewClerkInvitation};
use crate::error::AppError;

#[derive(Debug, Clone)]
pub struct NewInvitation {
    pub email: String,
    pub role: Role,
    pub organisation_id: Option<Uuid>,
    pub redirect_url: Option<String>,
}

pub(crate) fn normalise_email(email: &str) -> Result<String, AppError> {
    let email = email.trim().to_lowercase();
    let valid = match email.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !email.contains(char::is_whitespace)
                && email.len() <= 254
        }
        None => false,
    };
    if valid {
        Ok(email)
    } else {
        Err(AppError::validation(
            "email",
            format!("`{email}` is not an email address"),
        ))
    }
}

impl audit::Subject for invitation::Model {
    fn subject_id(&self) -> String {
        self.id.to_string()
    }

    fn snapshot(&self) -> serde_json::Value {
        snapshot(self)
    }
}

fn snapshot(invitation: &invitation::Model) -> serde_json::Value {
    json!({
        "id": invitation.id,
        "clerkInvitationId": invitation.clerk_invitation_id,
        "email": invitation.email,
        "role": invitation.role.as_str(),
        "organisationId": invitation.organisation_id,
        "status": invitation.status,
    })
}

/// Checks an invitation before anything is sent: who may send it, to whom, into where.
///
/// An email that already has an account, or a pending invitation, is refused only when the
/// actor may see that account or invitation. Elsewhere the invitation goes ahead like any
/// other (see `Actor::invitation_if_email_taken`), so an organisation admin cannot learn who
/// is in another organisation by inviting them: they get a pending invitation either way.
pub async fn check(
    db: &DatabaseConnection,
    actor: &Actor,
    new: &NewInvitation,
) -> Result<String, AppError> {
    let email = normalise_email(&new.email)?;
    actor.require_invite(new.role, new.organisation_id)?;
    if let Some(organisation_id) = new.organisation_id {
        accounts::assignable_organisation(db, "organisationId", organisation_id).await?;
    }
    let holder = entity::user::Entity::find()
        .filter(entity::user::Column::Email.eq(email.clone()))
        .filter(entity::user::Column::IsActive.eq(true))
        .one(db)
        .await?;
    if holder.is_some_and(|holder| actor.may_read_user(&holder)) {
        return Err(AppError::Conflict(format!(
            "{email} already has an account"
        )));
    }
    let mut pending = InvitationFilter {
        status: Some(InvitationStatus::Pending),
        ..InvitationFilter::default()
    };
    pending.narrow_for(actor)?;
    let already_invited = invitation::Entity::find()
        .filter(pending.condition()?)
        .filter(invitation::Column::Email.eq(email.clone()))
        .count(db)
        .await?;
    if already_invited > 0 {
        return Err(AppError::Conflict(format!(
            "{email} already has a pending invitation; revoke it to send another"
        )));
    }
    Ok(email)
}

/// Sends an invitation through Clerk (which emails it), then records it.
pub async fn invite(
    services: &Services,
    actor: &Actor,
    origin: &Origin,
    new: NewInvitation,
) -> Result<invitation::Model, AppError> {
    let Services { db, clerk, .. } = services;
    let email = check(db, actor, &new).await?;
    let id = Uuid::now_v7();
    let sent = clerk
        .create_invitation(
            &email,
            clerk_metadata(&new, id),
            new.redirect_url.as_deref(),
            actor.invitation_if_email_taken(),
        )
        .await?;
    record(services, actor, origin, id, email, &new, sent.id).await
}

/// What Clerk copies onto the user who accepts, with userhub's own id for the invitation.
fn clerk_metadata(new: &NewInvitation, id: Uuid) -> serde_json::Value {
    json!({
        ROLE_KEY: new.role.as_str(),
        ORGANISATION_KEY: new.organisation_id.map(|id| id.to_string()),
        INVITATION_KEY: id.to_string(),
    })
}

/// Records an invitation Clerk has sent, with its audit event and live change.
async fn record(
    services: &Services,
    actor: &Actor,
    origin: &Origin,
    id: Uuid,
    email: String,
    new: &NewInvitation,
    clerk_invitation_id: String,
) -> Result<invitation::Model, AppError> {
    let now = super::now();
    let row = invitation::ActiveModel {
        id: Set(id),
        clerk_invitation_id: Set(clerk_invitation_id),
        email: Set(email),
        role: Set(new.role),
        organisation_id: Set(new.organisation_id),
        status: Set(InvitationStatus::Pending),
        invited_by: Set(Some(actor.user.id)),
        created_at: Set(now),
        updated_at: Set(now),
    };
    let mut write = Write::begin(&services.db, origin).await?;
    let created = row.insert(write.conn()).await?;
    write
        .audit(Change::created(Action::InvitationCreated, &created))
        .await?;
    write.invitation_changed(&created);
    write.commit(&services.events).await?;
    Ok(created)
}

/// The pending invitations to these addresses (lower-cased) that `actor` may read, by address.
pub async fn pending_to(
    db: &DatabaseConnection,
    actor: &Actor,
    emails: &[String],
) -> Result<std::collections::HashMap<String, invitation::Model>, AppError> {
    let mut pending = InvitationFilter {
        status: Some(InvitationStatus::Pending),
        ..InvitationFilter::default()
    };
    pending.narrow_for(actor)?;
    let mut found = std::collections::HashMap::new();
    for chunk in emails.chunks(500) {
        let rows = invitation::Entity::find()
            .filter(pending.condition()?)
            .filter(invitation::Column::Email.is_in(chunk.iter().cloned()))
            .all(db)
            .await?;
        found.extend(rows.into_iter().map(|row| (row.email.clone(), row)));
    }
    Ok(found)
}

/// The most invitations one call to Clerk's bulk endpoint may carry.
pub const CLERK_BATCH: usize = 10;

/// What a batch of invitations came to.
pub enum Batch {
    /// Each invitation, in the order given, or why it was not sent.
    Sent(Vec<Result<invitation::Model, AppError>>),
    /// Clerk is rate-limiting its bulk endpoint: nothing was sent; try again after this long.
    RateLimited(std::time::Duration),
}

/// Sends up to `CLERK_BATCH` invitations in one call to Clerk's bulk endpoint (an import's
/// way: Clerk allows 25 such calls an hour). Each is checked as `invite` checks it, and
/// recorded as `invite` records it. Clerk's bulk call is all or nothing, so when Clerk refuses
/// it each invitation is sent on its own, to get its own answer.
pub async fn invite_batch(
    services: &Services,
    actor: &Actor,
    origin: &Origin,
    batch: &[NewInvitation],
) -> Result<Batch, AppError> {
    if batch.len() > CLERK_BATCH {
        return Err(AppError::validation(
            "invitations",
            format!("at most {CLERK_BATCH} invitations in one call"),
        ));
    }
    let mut outcomes: Vec<Option<Result<invitation::Model, AppError>>> =
        (0..batch.len()).map(|_| None).collect();
    let mut ready = Vec::new();
    for (index, new) in batch.iter().enumerate() {
        match check(&services.db, actor, new).await {
            Ok(email) => ready.push((index, Uuid::now_v7(), email)),
            Err(error) => outcomes[index] = Some(Err(error)),
        }
    }
    if !ready.is_empty() {
        let items: Vec<NewClerkInvitation> = ready
            .iter()
            .map(|(index, id, email)| NewClerkInvitation {
                email: email.clone(),
                public_metadata: clerk_metadata(&batch[*index], *id),
                redirect_url: batch[*index].redirect_url.clone(),
                if_taken: actor.invitation_if_email_taken(),
            })
            .collect();
        match services.clerk.create_invitations(&items).await {
            Ok(sent) => {
                for ((index, id, email), made) in ready.into_iter().zip(sent) {
                    let recorded =
                        record(services, actor, origin, id, email, &batch[index], made.id).await;
                    outcomes[index] = Some(recorded);
                }
            }
            Err(ClerkFailure::RateLimited { retry_after, .. }) => {
                return Ok(Batch::RateLimited(retry_after));
            }
            Err(ClerkFailure::Refused { .. }) => {
                for (index, ..) in ready {
                    outcomes[index] =
                        Some(invite(services, actor, origin, batch[index].clone()).await);
                }
            }
            Err(other) => {
                let reason = other.to_string();
                for (index, ..) in ready {
                    outcomes[index] = Some(Err(AppError::Upstream(reason.clone())));
                }
            }
        }
    }
    Ok(Batch::Sent(outcomes.into_iter().flatten().collect()))
}

/// The most invitations one bulk call sends: Clerk allows 100 an hour.
pub const MAX_BULK: usize = 100;

/// Sends several invitations; each item succeeds or fails on its own. The actor must be
/// allowed every item before any is sent, so a bulk call is never half-authorised.
pub async fn invite_many(
    services: &Services,
    actor: &Actor,
    origin: &Origin,
    items: Vec<Result<NewInvitation, AppError>>,
) -> Result<Vec<Result<invitation::Model, AppError>>, AppError> {
    if items.len() > MAX_BULK {
        return Err(AppError::validation(
            "inputs",
            format!("at most {MAX_BULK} invitations at a time"),
        ));
    }
    for new in items.iter().flatten() {
        actor.require_invite(new.role, new.organisation_id)?;
    }
    let mut outcomes = Vec::with_capacity(items.len());
    for item in items {
        outcomes.push(match item {
            Ok(new) => invite(services, actor, origin, new).await,
            Err(error) => Err(error),
        });
    }
    Ok(outcomes)
}

pub async fn get<C: ConnectionTrait>(conn: &C, id: Uuid) -> Result<invitation::Model, AppError> {
    invitation::Entity::find_by_id(id)
        .one(conn)
        .await?
        .ok_or_else(|| AppError::not_found("invitation", id))
}

/// Revokes a pending invitation in Clerk, then here.
pub async fn revoke(
    services: &Services,
    actor: &Actor,
    origin: &Origin,
    id: Uuid,
) -> Result<invitation::Model, AppError> {
    let Services {
        db, clerk, events, ..
    } = services;
    let current = get(db, id).await?;
    actor.require_invite(current.role, current.organisation_id)?;
    if current.status != InvitationStatus::Pending {
        return Err(AppError::Conflict(format!(
            "only a pending invitation can be revoked; this one is {}",
            current.status.as_str()
        )));
    }
    clerk
        .revoke_invitation(&current.clerk_invitation_id)
        .await?;
    let mut write = Write::begin(db, origin).await?;
    let before = snapshot(&current);
    let mut row: invitation::ActiveModel = current.into();
    row.status = Set(InvitationStatus::Revoked);
    row.updated_at = Set(super::now());
    let revoked = row.update(write.conn()).await?;
    write
        .audit(Change::changed(Action::InvitationRevoked, before, &revoked))
        .await?;
    write.invitation_changed(&revoked);
    write.commit(events).await?;
    Ok(revoked)
}

/// Which of these emails have a pending invitation, in one statement.
pub(crate) async fn pending_among<C: ConnectionTrait>(
    conn: &C,
    emails: Vec<String>,
) -> Result<std::collections::HashSet<String>, AppError> {
    if emails.is_empty() {
        return Ok(Default::default());
    }
    Ok(invitation::Entity::find()
        .select_only()
        .column(invitation::Column::Email)
        .filter(invitation::Column::Email.is_in(emails))
        .filter(invitation::Column::Status.eq(InvitationStatus::Pending))
        .into_tuple::<String>()
        .all(conn)
        .await?
        .into_iter()
        .collect())
}

/// Marks accepted the pending invitation of a user who has just arrived. A user Clerk made
/// from one of userhub's invitations names it (`invitation_id`, from the metadata Clerk copied
/// to them): that one is accepted, and any other pending invitation to the same email (another
/// organisation's, which its admin could send without seeing this one) stays pending, for its
/// admin to revoke. A user who came another way accepts every pending invitation to their
/// email.
pub(crate) async fn accept_for_email(
    write: &mut Write,
    email: &str,
    invitation_id: Option<Uuid>,
) -> Result<(), AppError> {
    let mut pending = invitation::Entity::find()
        .filter(invitation::Column::Email.eq(email))
        .filter(invitation::Column::Status.eq(InvitationStatus::Pending));
    if let Some(id) = invitation_id {
        pending = pending.filter(invitation::Column::Id.eq(id));
    }
    let pending = pending.all(write.conn()).await?;
    for current in pending {
        let before = snapshot(&current);
        let mut row: invitation::ActiveModel = current.into();
        row.status = Set(InvitationStatus::Accepted);
        row.updated_at = Set(super::now());
        let updated = row.update(write.conn()).await?;
        write
            .audit(Change::changed(
                Action::InvitationAccepted,
                before,
                &updated,
            ))
            .await?;
        write.invitation_changed(&updated);
    }
    Ok(())
}

/// Which invitations to list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct InvitationFilter {
    pub status: Option<InvitationStatus>,
    pub organisation_id: Option<Uuid>,
    /// Case-insensitive substring of the email.
    pub search: Option<String>,
}

impl InvitationFilter {
    /// Narrows this filter to the invitations `actor` may read (`auth::access` decides).
    fn narrow_for(&mut self, actor: &Actor) -> Result<(), AppError> {
        self.organisation_id = actor.readable_invitations(self.organisation_id)?;
        Ok(())
    }

    fn condition(&self) -> Result<Condition, AppError> {
        let mut condition = Condition::all();
        if let Some(status) = self.status {
            condition = condition.add(invitation::Column::Status.eq(status));
        }
        if let Some(organisation_id) = self.organisation_id {
            condition = condition.add(invitation::Column::OrganisationId.eq(organisation_id));
        }
        if let Some(search) = &self.search {
            for term in users::search_terms(search)? {
                condition = condition.add(users::lower_like(invitation::Column::Email, &term));
            }
        }
        Ok(condition)
    }
}

/// Invitations read newest first.
pub const ORDER_TAG: &str = "NEWEST_FIRST";

const NEWEST_FIRST: Keyset<invitation::Column> = Keyset {
    key: None,
    id: invitation::Column::Id,
    direction: Direction::Desc,
};

/// A page of the invitations `actor` may read that match `filter`, and the filter as
/// narrowed to them (for `total`).
pub async fn list<C: ConnectionTrait>(
    conn: &C,
    actor: &Actor,
    mut filter: InvitationFilter,
    page: &PageRequest,
) -> Result<(Page<invitation::Model>, Scoped<InvitationFilter>), AppError> {
    filter.narrow_for(actor)?;
    let query = invitation::Entity::find().filter(filter.condition()?);
    let found = fetch_page(conn, query, NEWEST_FIRST, page, |row| {
        Cursor {
            key: None,
            id: row.id,
        }
        .encode(ORDER_TAG)
    })
    .await?;
    Ok((found, Scoped::new(filter)))
}

/// How many invitations a list holds, within its caller's scope.
pub async fn total<C: ConnectionTrait>(
    conn: &C,
    filter: &Scoped<InvitationFilter>,
) -> Result<u64, AppError> {
    Ok(invitation::Entity::find()
        .filter(filter.filter().condition()?)
        .count(conn)
        .await?)
}
