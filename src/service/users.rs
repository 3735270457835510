//! Users: the application's view of the people Clerk knows.
//!
//! - this file: reading users (filters, orders, pages, counts per organisation) and the
//!   last-admin rule;
//! - `from_clerk`: a Clerk user brought in or brought up to date;
//! - `removal`: a user Clerk deleted, deactivated and buried.

mod from_clerk;
mod removal;

use std::collections::HashMap;

use entity::role::Role;
use entity::{organisation, user};
use sea_orm::sea_query::{
    Alias, Asterisk, Condition, Expr, ExprTrait, Func, LikeExpr, Query, SimpleExpr, WindowStatement,
};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, Order, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, QueryTrait,
};
use serde_json::json;
use uuid::Uuid;

use super::audit::{self};
use super::pagination::{
    Cursor, Direction, Keyset, Page, PageRequest, SortKey, fetch_page, page_query, time_key,
};
use super::{Scoped, TimeRange};
use crate::auth::{Actor, UserScope};
use crate::error::AppError;

pub(crate) use from_clerk::{Bringing, Brought, upsert_in};
pub use from_clerk::{ClerkProfile, Upserted, upsert_from_clerk};
pub use removal::deactivate;
pub(crate) use removal::{apply_deactivation, buried_among, bury};
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
    /// When the user first came to userhub.
    pub created: TimeRange,
    /// When the user last signed in (a user who never has is outside any range).
    pub last_sign_in: TimeRange,
    /// When Clerk last saw the user active (a user never seen is outside any range).
    pub last_active: TimeRange,
}

impl UserFilter {
    /// Narrows this filter to the users `actor` may read (`auth::access` decides).
    fn narrow_for(&mut self, actor: &Actor) -> Result<(), AppError> {
        match actor.readable_users(self.organisation_id)? {
            UserScope::All => {}
            UserScope::Organisation(id) => self.organisation_id = Some(id),
            UserScope::OnlySelf(id) => self.user_id = Some(id),
        }
        Ok(())
    }

    fn condition(&self) -> Result<Condition, AppError> {
        let mut condition = Condition::all();
        if self.created != TimeRange::default() {
            condition = condition.add(
                self.created
                    .condition("filter.createdBefore", user::Column::CreatedAt)?,
            );
        }
        if self.last_sign_in != TimeRange::default() {
            condition = condition.add(
                self.last_sign_in
                    .condition("filter.lastSignInBefore", user::Column::LastSignInAt)?,
            );
        }
        if self.last_active != TimeRange::default() {
            condition = condition.add(
                self.last_active
                    .condition("filter.lastActiveBefore", user::Column::LastActiveAt)?,
            );
        }
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
    /// Longest since signing in first; never signed in first of all.
    LastSignInAtAsc,
    /// Most recently signed in first; never signed in last.
    LastSignInAtDesc,
    LastActiveAtAsc,
    LastActiveAtDesc,
}

impl UserOrder {
    pub fn tag(self) -> &'static str {
        match self {
            UserOrder::CreatedAtAsc => "CREATED_AT_ASC",
            UserOrder::CreatedAtDesc => "CREATED_AT_DESC",
            UserOrder::EmailAsc => "EMAIL_ASC",
            UserOrder::EmailDesc => "EMAIL_DESC",
            UserOrder::LastSignInAtAsc => "LAST_SIGN_IN_AT_ASC",
            UserOrder::LastSignInAtDesc => "LAST_SIGN_IN_AT_DESC",
            UserOrder::LastActiveAtAsc => "LAST_ACTIVE_AT_ASC",
            UserOrder::LastActiveAtDesc => "LAST_ACTIVE_AT_DESC",
        }
    }

    fn keyset(self) -> Keyset<user::Column> {
        let (key, direction) = match self {
            UserOrder::CreatedAtAsc => (None, Direction::Asc),
            UserOrder::CreatedAtDesc => (None, Direction::Desc),
            UserOrder::EmailAsc => (Some(SortKey::Text(user::Column::Email)), Direction::Asc),
            UserOrder::EmailDesc => (Some(SortKey::Text(user::Column::Email)), Direction::Desc),
            UserOrder::LastSignInAtAsc => (
                Some(SortKey::Time(user::Column::LastSignInAt)),
                Direction::Asc,
            ),
            UserOrder::LastSignInAtDesc => (
                Some(SortKey::Time(user::Column::LastSignInAt)),
                Direction::Desc,
            ),
            UserOrder::LastActiveAtAsc => (
                Some(SortKey::Time(user::Column::LastActiveAt)),
                Direction::Asc,
            ),
            UserOrder::LastActiveAtDesc => (
                Some(SortKey::Time(user::Column::LastActiveAt)),
                Direction::Desc,
            ),
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
            UserOrder::LastSignInAtAsc | UserOrder::LastSignInAtDesc => {
                Some(time_key(user.last_sign_in_at))
            }
            UserOrder::LastActiveAtAsc | UserOrder::LastActiveAtDesc => {
                Some(time_key(user.last_active_at))
            }
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

/// The stored users among these Clerk ids, by Clerk id, in one statement.
pub(crate) async fn by_clerk_ids<C: ConnectionTrait>(
    conn: &C,
    clerk_ids: Vec<String>,
) -> Result<HashMap<String, user::Model>, AppError> {
    if clerk_ids.is_empty() {
        return Ok(HashMap::new());
    }
    Ok(user::Entity::find()
        .filter(user::Column::ClerkId.is_in(clerk_ids))
        .all(conn)
        .await?
        .into_iter()
        .map(|user| (user.clerk_id.clone(), user))
        .collect())
}

/// One user, if the caller may read them: `NOT_FOUND` for an unknown id, `FORBIDDEN` for a
/// user outside the caller's organisation.
pub async fn read<C: ConnectionTrait>(
    conn: &C,
    actor: &Actor,
    id: Uuid,
) -> Result<user::Model, AppError> {
    let user = get(conn, id).await?;
    actor.require_user_readable(&user)?;
    Ok(user)
}

/// The organisation every user a list for `actor` with `filter` reads belongs to, if there is
/// one: then its answer depends on that organisation's users alone.
pub fn confined_to(actor: &Actor, mut filter: UserFilter) -> Option<Uuid> {
    filter.narrow_for(actor).ok()?;
    filter.organisation_id
}

/// A page of the users `actor` may read that match `filter`, and the filter as narrowed to
/// them (for `total`).
pub async fn list<C: ConnectionTrait>(
    conn: &C,
    actor: &Actor,
    mut filter: UserFilter,
    order: UserOrder,
    page: &PageRequest,
) -> Result<(Page<user::Model>, Scoped<UserFilter>), AppError> {
    filter.narrow_for(actor)?;
    let query = user::Entity::find().filter(filter.condition()?);
    let found = fetch_page(conn, query, order.keyset(), page, |user| order.cursor(user)).await?;
    Ok((found, Scoped::new(filter)))
}

/// Every user `actor` may read that matches `filter`, by email, up to `most`; `None` when more
/// match (a bulk operation refuses rather than doing part of what was asked).
pub async fn matching<C: ConnectionTrait>(
    conn: &C,
    actor: &Actor,
    mut filter: UserFilter,
    most: u64,
) -> Result<Option<Vec<user::Model>>, AppError> {
    filter.narrow_for(actor)?;
    let found = user::Entity::find()
        .filter(filter.condition()?)
        .order_by_asc(user::Column::Email)
        .order_by_asc(user::Column::Id)
        .limit(most + 1)
        .all(conn)
        .await?;
    Ok((found.len() as u64 <= most).then_some(found))
}

/// `list`, each user with their organisation, read by the same statement (a left join): a
/// page that shows organisations in one round trip instead of two (`graphql/direct.rs`).
pub async fn list_with_organisations<C: ConnectionTrait>(
    conn: &C,
    actor: &Actor,
    mut filter: UserFilter,
    order: UserOrder,
    page: &PageRequest,
) -> Result<(Page<UserInOrganisation>, Scoped<UserFilter>), AppError> {
    filter.narrow_for(actor)?;
    let query = user::Entity::find().filter(filter.condition()?);
    let found = match page_query(query, order.keyset(), page)? {
        None => Page::empty(page),
        Some(query) => {
            let rows = query
                .find_also_related(organisation::Entity)
                .all(conn)
                .await?;
            Page::from_rows(rows, page, |(user, _)| order.cursor(user))
        }
    };
    Ok((found, Scoped::new(filter)))
}

/// A user, and the organisation they belong to if it exists.
pub type UserInOrganisation = (user::Model, Option<organisation::Model>);

/// How many users a list holds, within its caller's scope.
pub async fn total<C: ConnectionTrait>(
    conn: &C,
    filter: &Scoped<UserFilter>,
) -> Result<u64, AppError> {
    count(conn, filter.filter()).await
}

pub(crate) async fn count<C: ConnectionTrait>(
    conn: &C,
    filter: &UserFilter,
) -> Result<u64, AppError> {
    Ok(user::Entity::find()
        .filter(filter.condition()?)
        .count(conn)
        .await?)
}

/// Who an organisation's `memberCount` counts: its active users.
pub fn counted_as_members() -> UserFilter {
    UserFilter {
        is_active: Some(true),
        ..UserFilter::default()
    }
}

/// How many users match `filter` in each of these organisations, in one statement. An
/// organisation that does not exist is absent from the map.
///
/// Each organisation's users are counted by a subquery of their own, which the planner answers
/// from `idx_users_organisation`. Counting `WHERE organisation_id IN (…) GROUP BY` read the
/// whole table whenever the plan cache's generic plan guessed the list matched most of it,
/// and built the list's array again for every row (BENCHMARKS.md, the mixed load).
pub async fn count_by_organisation<C: ConnectionTrait>(
    conn: &C,
    organisation_ids: &[Uuid],
    filter: &UserFilter,
) -> Result<HashMap<Uuid, u64>, AppError> {
    if organisation_ids.is_empty() {
        return Ok(HashMap::new());
    }
    let members = Query::select()
        .expr(Expr::col((user::Entity, user::Column::Id)).count())
        .from(user::Entity)
        .and_where(
            Expr::col((user::Entity, user::Column::OrganisationId))
                .equals((organisation::Entity, organisation::Column::Id)),
        )
        .cond_where(filter.condition()?)
        .to_owned();
    let rows: Vec<(Uuid, i64)> = organisation::Entity::find()
        .select_only()
        .column(organisation::Column::Id)
        .column_as(Expr::from(members), "member_count")
        .filter(organisation::Column::Id.is_in(organisation_ids.iter().copied()))
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
    if let Some(key) = &keyset.key {
        window.order_by_expr(key.expr(), sql_order.clone());
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
    if let Some(key) = &keyset.key {
        outer.order_by_expr(key.expr_unqualified(), sql_order.clone());
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
