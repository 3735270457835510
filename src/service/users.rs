//! Users: the application's view of the people Clerk knows.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use entity::role::Role;
use entity::{clerk_tombstone, organisation, user};
use sea_orm::sea_query::{
    Alias, Asterisk, Condition, Expr, ExprTrait, Func, LikeExpr, Query, SimpleExpr, WindowStatement,
};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, Order,
    PaginatorTrait, QueryFilter, QuerySelect, QueryTrait, Set, TransactionTrait,
};
use serde_json::json;
use uuid::Uuid;

use super::Origin;
use super::audit::{self, Action, Change};
use super::pagination::{Cursor, Direction, Keyset, Page, PageRequest, fetch_page};
use crate::auth::{Actor, UserScope};
use crate::clerk::model::{ClerkUser, from_millis};
use crate::error::AppError;
use crate::events::{ChangeKind, Changes, EventBus, UserChange};

/// Which users to list. Every field narrows the list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct UserFilter {
    /// Only this user: the whole scope of a caller who belongs to no organisation.
    pub user_id: Option<Uuid>,
    pub organisation_id: Option<Uuid>,
    pub role: Option<Role>,
    pub is_active: Option<bool>,
    /// Banned in Clerk (`true`) or not.
    pub is_suspended: Option<bool>,
    /// Words that must each appear in the email, first name or last name (any case).
    pub search: Option<String>,
}

impl UserFilter {
    /// Narrows this filter to the users `actor` may read (`auth::access` decides).
    pub fn narrow_for(&mut self, actor: &Actor) -> Result<(), AppError> {
        match actor.readable_users(self.organisation_id)? {
            UserScope::All => {}
            UserScope::Organisation(id) => self.organisation_id = Some(id),
            UserScope::OnlySelf(id) => self.user_id = Some(id),
        }
        Ok(())
    }

    fn condition(&self) -> Result<Condition, AppError> {
        let mut condition = Condition::all();
        if let Some(user_id) = self.user_id {
            condition = condition.add(user::Column::Id.eq(user_id));
        }
        if let Some(organisation_id) = self.organisation_id {
            condition = condition.add(user::Column::OrganisationId.eq(organisation_id));
        }
        if let Some(role) = self.role {
            condition = condition.add(user::Column::Role.eq(role));
        }
        if let Some(is_active) = self.is_active {
            condition = condition.add(user::Column::IsActive.eq(is_active));
        }
        if let Some(is_suspended) = self.is_suspended {
            condition = condition.add(user::Column::Banned.eq(is_suspended));
        }
        if let Some(search) = &self.search {
            for term in search_terms(search)? {
                condition = condition.add(
                    Condition::any()
                        .add(lower_like(user::Column::Email, &term))
                        .add(lower_like(user::Column::FirstName, &term))
                        .add(lower_like(user::Column::LastName, &term)),
                );
            }
        }
        Ok(condition)
    }
}

const MAX_SEARCH_LENGTH: usize = 200;
const MAX_SEARCH_TERMS: usize = 8;

/// Splits a search into lower-cased words, refusing one too long to be a real search.
pub(crate) fn search_terms(search: &str) -> Result<Vec<String>, AppError> {
    if search.chars().count() > MAX_SEARCH_LENGTH {
        return Err(AppError::validation(
            "search",
            format!("must be at most {MAX_SEARCH_LENGTH} characters"),
        ));
    }
    let terms: Vec<String> = search.split_whitespace().map(str::to_lowercase).collect();
    if terms.len() > MAX_SEARCH_TERMS {
        return Err(AppError::validation(
            "search",
            format!("must be at most {MAX_SEARCH_TERMS} words"),
        ));
    }
    Ok(terms)
}

/// `LOWER(column) LIKE '%term%'`, with the term's own `%` and `_` taken literally. LOWER on
/// both sides makes it case-insensitive on SQLite and PostgreSQL alike.
pub(crate) fn lower_like<C: ColumnTrait>(column: C, term: &str) -> SimpleExpr {
    let escaped = term
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    Func::lower(Expr::col(column)).like(LikeExpr::new(format!("%{escaped}%")).escape('\\'))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum UserOrder {
    /// Oldest first. Ids are UUIDv7, so creation order is id order.
    #[default]
    CreatedAtAsc,
    CreatedAtDesc,
    EmailAsc,
    EmailDesc,
}

impl UserOrder {
    pub fn tag(self) -> &'static str {
        match self {
            UserOrder::CreatedAtAsc => "CREATED_AT_ASC",
            UserOrder::CreatedAtDesc => "CREATED_AT_DESC",
            UserOrder::EmailAsc => "EMAIL_ASC",
            UserOrder::EmailDesc => "EMAIL_DESC",
        }
    }

    fn keyset(self) -> Keyset<user::Column> {
        let (key, direction) = match self {
            UserOrder::CreatedAtAsc => (None, Direction::Asc),
            UserOrder::CreatedAtDesc => (None, Direction::Desc),
            UserOrder::EmailAsc => (Some(user::Column::Email), Direction::Asc),
            UserOrder::EmailDesc => (Some(user::Column::Email), Direction::Desc),
        };
        Keyset {
            key,
            id: user::Column::Id,
            direction,
        }
    }

    fn cursor(self, user: &user::Model) -> String {
        let key = match self {
            UserOrder::EmailAsc | UserOrder::EmailDesc => Some(user.email.clone()),
            UserOrder::CreatedAtAsc | UserOrder::CreatedAtDesc => None,
        };
        Cursor { key, id: user.id }.encode(self.tag())
    }
}

pub async fn get<C: ConnectionTrait>(conn: &C, id: Uuid) -> Result<user::Model, AppError> {
    user::Entity::find_by_id(id)
        .one(conn)
        .await?
        .ok_or_else(|| AppError::not_found("user", id))
}

pub async fn find_by_clerk_id<C: ConnectionTrait>(
    conn: &C,
    clerk_id: &str,
) -> Result<Option<user::Model>, AppError> {
    Ok(user::Entity::find()
        .filter(user::Column::ClerkId.eq(clerk_id))
        .one(conn)
        .await?)
}

pub async fn list<C: ConnectionTrait>(
    conn: &C,
    filter: &UserFilter,
    order: UserOrder,
    page: &PageRequest,
) -> Result<Page<user::Model>, AppError> {
    let query = user::Entity::find().filter(filter.condition()?);
    fetch_page(conn, query, order.keyset(), page, |user| order.cursor(user)).await
}

pub async fn count<C: ConnectionTrait>(conn: &C, filter: &UserFilter) -> Result<u64, AppError> {
    Ok(user::Entity::find()
        .filter(filter.condition()?)
        .count(conn)
        .await?)
}

/// How many users match `filter` in each of these organisations, in one statement. An
/// organisation with none is absent from the map.
pub async fn count_by_organisation<C: ConnectionTrait>(
    conn: &C,
    organisation_ids: &[Uuid],
    filter: &UserFilter,
) -> Result<HashMap<Uuid, u64>, AppError> {
    if organisation_ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<(Uuid, i64)> = user::Entity::find()
        .select_only()
        .column(user::Column::OrganisationId)
        .column_as(user::Column::Id.count(), "member_count")
        .filter(user::Column::OrganisationId.is_in(organisation_ids.iter().copied()))
        .filter(filter.condition()?)
        .group_by(user::Column::OrganisationId)
        .into_tuple()
        .all(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(id, count)| (id, u64::try_from(count).unwrap_or(0)))
        .collect())
}

/// The same page of users for each of these organisations, in one statement: a window
/// function numbers each organisation's users in the requested order and keeps the first
/// `first + 1` of each.
pub async fn pages_by_organisation<C: ConnectionTrait>(
    conn: &C,
    organisation_ids: &[Uuid],
    filter: &UserFilter,
    order: UserOrder,
    page: &PageRequest,
) -> Result<HashMap<Uuid, Page<user::Model>>, AppError> {
    let condition = filter.condition()?;
    if organisation_ids.is_empty() || page.first == 0 {
        return Ok(organisation_ids
            .iter()
            .map(|id| (*id, Page::empty(page)))
            .collect());
    }
    let keyset = order.keyset();
    let mut inner = user::Entity::find()
        .filter(user::Column::OrganisationId.is_in(organisation_ids.iter().copied()))
        .filter(condition);
    if let Some(cursor) = &page.after {
        inner = inner.filter(keyset.after(cursor)?);
    }
    let sql_order = match keyset.direction {
        Direction::Asc => Order::Asc,
        Direction::Desc => Order::Desc,
    };
    let mut window = WindowStatement::partition_by(user::Column::OrganisationId);
    if let Some(key) = keyset.key {
        window.order_by(key, sql_order.clone());
    }
    window.order_by(keyset.id, sql_order.clone());
    let position = Alias::new("page_position");
    let mut inner = inner.into_query();
    inner.expr_window_as(
        Func::cust(Alias::new("ROW_NUMBER")),
        window,
        position.clone(),
    );

    let mut outer = Query::select();
    outer
        .column(Asterisk)
        .from_subquery(inner, Alias::new("ranked"))
        .and_where(Expr::col(position).lte(page.first as i64 + 1))
        .order_by(user::Column::OrganisationId, Order::Asc);
    if let Some(key) = keyset.key {
        outer.order_by(key, sql_order.clone());
    }
    outer.order_by(keyset.id, sql_order);

    let statement = conn.get_database_backend().build(&outer);
    let rows = user::Entity::find()
        .from_raw_sql(statement)
        .all(conn)
        .await?;

    let mut grouped: HashMap<Uuid, Vec<user::Model>> = HashMap::new();
    for row in rows {
        if let Some(organisation_id) = row.organisation_id {
            grouped.entry(organisation_id).or_default().push(row);
        }
    }
    Ok(organisation_ids
        .iter()
        .map(|id| {
            let rows = grouped.remove(id).unwrap_or_default();
            (*id, Page::from_rows(rows, page, |user| order.cursor(user)))
        })
        .collect())
}

/// A user as Clerk describes them, already read into userhub's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClerkProfile {
    pub clerk_id: String,
    pub email: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub image_url: Option<String>,
    pub role: Role,
    pub organisation_id: Option<Uuid>,
    pub banned: bool,
    pub last_sign_in_at: Option<DateTime<Utc>>,
    /// Clerk's `updated_at`, Unix milliseconds.
    pub updated_at_ms: i64,
}

impl ClerkProfile {
    /// A Clerk user in userhub's terms; `None` for a user with no email address at all.
    pub fn of(user: &ClerkUser) -> Option<ClerkProfile> {
        Some(ClerkProfile {
            clerk_id: user.id.clone(),
            email: user.primary_email()?.to_owned(),
            first_name: non_empty(&user.first_name),
            last_name: non_empty(&user.last_name),
            image_url: non_empty(&user.image_url),
            role: user.role(),
            organisation_id: user.organisation_id(),
            banned: user.banned,
            last_sign_in_at: user.last_sign_in_at.and_then(from_millis),
            updated_at_ms: user.updated_at,
        })
    }
}

fn non_empty(value: &Option<String>) -> Option<String> {
    value
        .as_deref()
        .map(str::trim)
        .filter(|text| !text.is_empty())
        .map(str::to_owned)
}

/// What `upsert_from_clerk` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Upserted {
    Created(user::Model),
    Updated(user::Model),
    /// The profile matched what is stored.
    Unchanged(user::Model),
    /// The stored state is newer than the profile: nothing was written.
    Stale(user::Model),
}

impl Upserted {
    pub fn user(&self) -> &user::Model {
        match self {
            Upserted::Created(user)
            | Upserted::Updated(user)
            | Upserted::Unchanged(user)
            | Upserted::Stale(user) => user,
        }
    }
}

impl audit::Subject for user::Model {
    fn subject_id(&self) -> String {
        self.id.to_string()
    }

    fn snapshot(&self) -> serde_json::Value {
        snapshot(self)
    }
}

pub(crate) fn snapshot(user: &user::Model) -> serde_json::Value {
    json!({
        "id": user.id,
        "clerkId": user.clerk_id,
        "email": user.email,
        "firstName": user.first_name,
        "lastName": user.last_name,
        "role": user.role.as_str(),
        "organisationId": user.organisation_id,
        "isActive": user.is_active,
        "banned": user.banned,
    })
}

/// Brings the row of a Clerk user in line with Clerk's state, if that state is newer than the
/// one stored, writes the audit event in the same transaction, and publishes the change when
/// it commits. A user Clerk has deleted is not brought back: `CONFLICT`.
pub async fn upsert_from_clerk<C: TransactionTrait>(
    db: &C,
    events: &EventBus,
    origin: &Origin,
    profile: ClerkProfile,
) -> Result<Upserted, AppError> {
    let clerk_id = profile.clerk_id.clone();
    let outcome = match upsert_once(db, events, origin, profile.clone()).await {
        // Another writer (a webhook, a sync, a parallel first request) inserted this user
        // between our read and our insert: the row exists now, so the update path applies.
        Err(AppError::Conflict(_)) => upsert_once(db, events, origin, profile).await,
        outcome => outcome,
    }?;
    outcome.ok_or_else(|| AppError::Conflict(format!("Clerk has deleted the user `{clerk_id}`")))
}

async fn upsert_once<C: TransactionTrait>(
    db: &C,
    events: &EventBus,
    origin: &Origin,
    profile: ClerkProfile,
) -> Result<Option<Upserted>, AppError> {
    let txn = super::begin_write(db).await?;
    let mut changes = Changes::default();
    let outcome = upsert_in(&txn, origin, profile, &mut changes).await?;
    events.commit(txn, changes).await?;
    Ok(outcome)
}

/// `upsert_from_clerk` inside a caller's transaction. `None` when Clerk has deleted the user
/// (a tombstone and no row): nothing is written.
pub(crate) async fn upsert_in<C: ConnectionTrait>(
    txn: &C,
    origin: &Origin,
    profile: ClerkProfile,
    changes: &mut Changes,
) -> Result<Option<Upserted>, AppError> {
    // An organisation userhub does not know is kept as unassigned; sync status reports it.
    let organisation_exists = match profile.organisation_id {
        Some(id) => organisation::Entity::find_by_id(id)
            .one(txn)
            .await?
            .is_some(),
        None => false,
    };
    let existing = find_by_clerk_id(txn, &profile.clerk_id).await?;
    if existing.is_none() && is_buried(txn, &profile.clerk_id).await? {
        return Ok(None);
    }
    let outcome =
        apply_profile(txn, origin, profile, existing, organisation_exists, changes).await?;
    Ok(Some(outcome))
}

/// Records that Clerk deleted this id. Ids are never reused, so every later event about it is
/// stale, even one that overtook the deletion.
pub(crate) async fn bury<C: ConnectionTrait>(conn: &C, clerk_id: &str) -> Result<(), AppError> {
    use sea_orm::sea_query::OnConflict;
    clerk_tombstone::Entity::insert(clerk_tombstone::ActiveModel {
        clerk_id: Set(clerk_id.to_owned()),
        deleted_at: Set(super::now()),
    })
    .on_conflict(
        OnConflict::column(clerk_tombstone::Column::ClerkId)
            .do_nothing()
            .to_owned(),
    )
    .exec_without_returning(conn)
    .await?;
    Ok(())
}

pub(crate) async fn is_buried<C: ConnectionTrait>(
    conn: &C,
    clerk_id: &str,
) -> Result<bool, AppError> {
    Ok(clerk_tombstone::Entity::find_by_id(clerk_id.to_owned())
        .one(conn)
        .await?
        .is_some())
}

/// Which of these ids Clerk has deleted, in one statement.
pub(crate) async fn buried_among<C: ConnectionTrait>(
    conn: &C,
    clerk_ids: Vec<String>,
) -> Result<std::collections::HashSet<String>, AppError> {
    if clerk_ids.is_empty() {
        return Ok(Default::default());
    }
    Ok(clerk_tombstone::Entity::find()
        .select_only()
        .column(clerk_tombstone::Column::ClerkId)
        .filter(clerk_tombstone::Column::ClerkId.is_in(clerk_ids))
        .into_tuple::<String>()
        .all(conn)
        .await?
        .into_iter()
        .collect())
}

/// The email as userhub stores it: trimmed, lower case, and present.
fn stored_email(profile: &ClerkProfile) -> Result<String, AppError> {
    let email = profile.email.trim().to_lowercase();
    if email.is_empty() {
        return Err(AppError::validation(
            "email",
            "a user needs an email address",
        ));
    }
    Ok(email)
}

/// The row of a user Clerk has and userhub has not, as it is first stored.
fn new_row(
    profile: ClerkProfile,
    email: String,
    organisation_id: Option<Uuid>,
    now: DateTime<Utc>,
) -> user::Model {
    user::Model {
        id: Uuid::now_v7(),
        clerk_id: profile.clerk_id,
        email,
        first_name: profile.first_name,
        last_name: profile.last_name,
        image_url: profile.image_url,
        role: profile.role,
        organisation_id,
        is_active: true,
        banned: profile.banned,
        last_sign_in_at: profile.last_sign_in_at,
        clerk_updated_at: profile.updated_at_ms,
        created_at: now,
        updated_at: now,
        deactivated_at: None,
    }
}

fn created_change(created: &user::Model) -> Change {
    Change::created(Action::UserCreated, created)
}

/// `apply_profile` for many users none of whom is stored or buried (a sync page's new
/// users): the rows in one statement, their audit events in another, one look-up of pending
/// invitations for all their emails. The same rows, events and changes as one by one.
pub(crate) async fn create_many<C: ConnectionTrait>(
    txn: &C,
    origin: &Origin,
    profiles: Vec<(ClerkProfile, bool)>,
    changes: &mut Changes,
) -> Result<usize, AppError> {
    let now = super::now();
    let mut rows = Vec::with_capacity(profiles.len());
    for (profile, organisation_exists) in profiles {
        let email = stored_email(&profile)?;
        let organisation_id = profile.organisation_id.filter(|_| organisation_exists);
        rows.push(new_row(profile, email, organisation_id, now));
    }
    if rows.is_empty() {
        return Ok(0);
    }
    user::Entity::insert_many(
        rows.iter()
            .map(|row| row.clone().into_active_model().reset_all()),
    )
    .exec_without_returning(txn)
    .await?;
    audit::record_many(txn, origin, rows.iter().map(created_change).collect()).await?;
    let invited =
        super::invitations::pending_among(txn, rows.iter().map(|row| row.email.clone()).collect())
            .await?;
    for row in &rows {
        // Rule 3: an invitation meets its user.
        if invited.contains(&row.email) {
            super::invitations::accept_for_email(txn, origin, &row.email).await?;
        }
    }
    let count = rows.len();
    for row in rows {
        changes.push(UserChange::new(ChangeKind::Created, None, row, origin));
    }
    Ok(count)
}

/// The heart of `upsert_from_clerk`, for callers that hold a transaction and have already
/// read the stored row and whether the profile's organisation exists (sync, a page at a time).
/// A deactivated row stays as it is: Clerk deleted that user, and any profile of theirs that
/// arrives now is older than the deletion.
pub(crate) async fn apply_profile<C: ConnectionTrait>(
    txn: &C,
    origin: &Origin,
    profile: ClerkProfile,
    existing: Option<user::Model>,
    organisation_exists: bool,
    changes: &mut Changes,
) -> Result<Upserted, AppError> {
    let email = stored_email(&profile)?;
    let organisation_id = profile.organisation_id.filter(|_| organisation_exists);
    let now = super::now();
    let outcome = match existing {
        None => {
            let created = new_row(profile, email, organisation_id, now)
                .into_active_model()
                .reset_all()
                .insert(txn)
                .await?;
            audit::record(txn, origin, created_change(&created)).await?;
            // Rule 3: an invitation meets its user.
            super::invitations::accept_for_email(txn, origin, &created.email).await?;
            changes.push(UserChange::new(
                ChangeKind::Created,
                None,
                created.clone(),
                origin,
            ));
            Upserted::Created(created)
        }
        Some(current) if !current.is_active || current.clerk_updated_at > profile.updated_at_ms => {
            Upserted::Stale(current)
        }
        Some(current) => {
            let unchanged = current.email == email
                && current.first_name == profile.first_name
                && current.last_name == profile.last_name
                && current.image_url == profile.image_url
                && current.role == profile.role
                && current.organisation_id == organisation_id
                && current.banned == profile.banned
                && current.last_sign_in_at == profile.last_sign_in_at;
            if unchanged {
                // Nothing to record, but the newer timestamp must be kept: an older event
                // arriving after this one would otherwise be applied over it.
                if profile.updated_at_ms > current.clerk_updated_at {
                    let mut row = current.into_active_model();
                    row.clerk_updated_at = Set(profile.updated_at_ms);
                    Upserted::Unchanged(row.update(txn).await?)
                } else {
                    Upserted::Unchanged(current)
                }
            } else {
                let action = if current.role != profile.role {
                    Action::UserRoleChanged
                } else if current.banned != profile.banned {
                    if profile.banned {
                        Action::UserSuspended
                    } else {
                        Action::UserUnsuspended
                    }
                } else {
                    Action::UserUpdated
                };
                let kind = match (current.banned, profile.banned) {
                    (false, true) => ChangeKind::Suspended,
                    (true, false) => ChangeKind::Unsuspended,
                    _ => ChangeKind::Updated,
                };
                let previous = current.clone();
                let before = snapshot(&current);
                let mut row = current.into_active_model();
                row.email = Set(email);
                row.first_name = Set(profile.first_name);
                row.last_name = Set(profile.last_name);
                row.image_url = Set(profile.image_url);
                row.role = Set(profile.role);
                row.organisation_id = Set(organisation_id);
                row.banned = Set(profile.banned);
                row.last_sign_in_at = Set(profile.last_sign_in_at);
                row.clerk_updated_at = Set(profile.updated_at_ms);
                row.updated_at = Set(now);
                let updated = row.update(txn).await?;
                audit::record(txn, origin, Change::changed(action, before, &updated)).await?;
                changes.push(UserChange::new(
                    kind,
                    Some(&previous),
                    updated.clone(),
                    origin,
                ));
                Upserted::Updated(updated)
            }
        }
    };
    Ok(outcome)
}

/// Soft-deletes a user Clerk has deleted: the row and its history stay, `is_active` becomes
/// false, and the Clerk id is buried so no late event brings it back. Deactivating an inactive
/// user changes nothing and records nothing.
pub async fn deactivate<C: TransactionTrait>(
    db: &C,
    events: &EventBus,
    origin: &Origin,
    id: Uuid,
) -> Result<user::Model, AppError> {
    let txn = super::begin_write(db).await?;
    let mut changes = Changes::default();
    let current = get(&txn, id).await?;
    let deactivated = apply_deactivation(&txn, origin, current, &mut changes).await?;
    events.commit(txn, changes).await?;
    Ok(deactivated)
}

/// `deactivate` inside a caller's transaction, on a row it has read.
pub(crate) async fn apply_deactivation<C: ConnectionTrait>(
    txn: &C,
    origin: &Origin,
    current: user::Model,
    changes: &mut Changes,
) -> Result<user::Model, AppError> {
    bury(txn, &current.clerk_id).await?;
    if !current.is_active {
        return Ok(current);
    }
    let previous = current.clone();
    let before = snapshot(&current);
    let now = super::now();
    let mut row = current.into_active_model();
    row.is_active = Set(false);
    row.deactivated_at = Set(Some(now));
    row.updated_at = Set(now);
    let deactivated = row.update(txn).await?;
    audit::record(
        txn,
        origin,
        Change::changed(Action::UserDeactivated, before, &deactivated),
    )
    .await?;
    changes.push(UserChange::new(
        ChangeKind::Deactivated,
        Some(&previous),
        deactivated.clone(),
        origin,
    ));
    Ok(deactivated)
}

/// Every user, oldest first. For small directories only (local mode's start-up).
pub async fn all<C: ConnectionTrait>(conn: &C) -> Result<Vec<user::Model>, AppError> {
    use sea_orm::QueryOrder;
    Ok(user::Entity::find()
        .order_by_asc(user::Column::Id)
        .all(conn)
        .await?)
}

/// Refuses a change that would leave no active admin: removing, suspending or demoting the
/// last one would lock everybody out of the directory.
pub async fn ensure_not_last_admin<C: ConnectionTrait>(
    conn: &C,
    target: &user::Model,
) -> Result<(), AppError> {
    if target.role != Role::Admin || !target.is_active || target.banned {
        return Ok(());
    }
    let other_admins = user::Entity::find()
        .filter(user::Column::Role.eq(Role::Admin))
        .filter(user::Column::IsActive.eq(true))
        .filter(user::Column::Banned.eq(false))
        .filter(user::Column::Id.ne(target.id))
        .count(conn)
        .await?;
    if other_admins == 0 {
        return Err(AppError::Conflict(
            "this is the last active admin: make someone else an admin first".to_owned(),
        ));
    }
    Ok(())
}
