use async_graphql::{Context, Enum, ID, InputObject, Object, Result};
use chrono::{DateTime, Utc};

use crate::graphql::caller;
use crate::graphql::services;
use crate::graphql::types::connection::TotalCount;
use crate::graphql::types::user::UserConnection;
use crate::graphql::types::{Role, User};
use crate::service::pagination::PageRequest;
use crate::service::parse_id;
use crate::service::users::{self, UserFilter, UserOrder};
use crate::service::{TimeRange, exports};

#[derive(Default)]
pub struct UserQuery;

/// Narrows a list of users; every field given must hold.
#[derive(Debug, Clone, Default, InputObject)]
#[graphql(name = "UsersFilter")]
pub struct UsersFilterInput {
    pub organisation_id: Option<ID>,
    pub role: Option<Role>,
    pub is_active: Option<bool>,
    /// Banned in Clerk: `true` for suspended users only, `false` for the others.
    pub is_suspended: Option<bool>,
    /// Words that must each appear in the email, first or last name (any case).
    pub search: Option<String>,
    /// Users who came to userhub at or after this moment.
    pub created_from: Option<DateTime<Utc>>,
    /// Users who came to userhub before this moment.
    pub created_before: Option<DateTime<Utc>>,
    /// Users who last signed in at or after this moment (never signed in: left out).
    pub last_sign_in_from: Option<DateTime<Utc>>,
    /// Users who last signed in before this moment (never signed in: left out).
    pub last_sign_in_before: Option<DateTime<Utc>>,
    /// Users last active at or after this moment (never active: left out).
    pub last_active_from: Option<DateTime<Utc>>,
    /// Users last active before this moment (never active: left out).
    pub last_active_before: Option<DateTime<Utc>>,
}

impl UsersFilterInput {
    pub(crate) fn into_domain(self) -> Result<UserFilter, crate::error::AppError> {
        Ok(UserFilter {
            user_id: None,
            organisation_id: self
                .organisation_id
                .map(|id| parse_id("filter.organisationId", &id))
                .transpose()?,
            role: self.role.map(Into::into),
            is_active: self.is_active,
            is_suspended: self.is_suspended,
            search: self.search,
            created: TimeRange {
                from: self.created_from,
                before: self.created_before,
            },
            last_sign_in: TimeRange {
                from: self.last_sign_in_from,
                before: self.last_sign_in_before,
            },
            last_active: TimeRange {
                from: self.last_active_from,
                before: self.last_active_before,
            },
        })
    }
}

/// Narrows the users of one organisation.
#[derive(Debug, Clone, Default, InputObject)]
#[graphql(name = "UsersInOrganisationFilter")]
pub struct UsersInOrganisationFilterInput {
    pub role: Option<Role>,
    pub is_active: Option<bool>,
    /// Banned in Clerk: `true` for suspended users only, `false` for the others.
    pub is_suspended: Option<bool>,
    /// Words that must each appear in the email, first or last name (any case).
    pub search: Option<String>,
    /// Users who came to userhub at or after this moment.
    pub created_from: Option<DateTime<Utc>>,
    /// Users who came to userhub before this moment.
    pub created_before: Option<DateTime<Utc>>,
    /// Users who last signed in at or after this moment (never signed in: left out).
    pub last_sign_in_from: Option<DateTime<Utc>>,
    /// Users who last signed in before this moment (never signed in: left out).
    pub last_sign_in_before: Option<DateTime<Utc>>,
    /// Users last active at or after this moment (never active: left out).
    pub last_active_from: Option<DateTime<Utc>>,
    /// Users last active before this moment (never active: left out).
    pub last_active_before: Option<DateTime<Utc>>,
}

impl From<UsersInOrganisationFilterInput> for UserFilter {
    fn from(filter: UsersInOrganisationFilterInput) -> UserFilter {
        UserFilter {
            user_id: None,
            organisation_id: None,
            role: filter.role.map(Into::into),
            is_active: filter.is_active,
            is_suspended: filter.is_suspended,
            search: filter.search,
            created: TimeRange {
                from: filter.created_from,
                before: filter.created_before,
            },
            last_sign_in: TimeRange {
                from: filter.last_sign_in_from,
                before: filter.last_sign_in_before,
            },
            last_active: TimeRange {
                from: filter.last_active_from,
                before: filter.last_active_before,
            },
        }
    }
}

/// The order of a list of users.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Enum)]
pub enum UserOrderBy {
    /// Oldest first.
    #[default]
    CreatedAtAsc,
    /// Newest first.
    CreatedAtDesc,
    EmailAsc,
    EmailDesc,
    /// Longest since signing in first; those who never signed in before everyone.
    LastSignInAtAsc,
    /// Most recently signed in first; those who never signed in after everyone.
    LastSignInAtDesc,
    /// Longest since last active first (`lastActiveAt`); never active before everyone.
    LastActiveAtAsc,
    /// Most recently active first; never active after everyone.
    LastActiveAtDesc,
}

impl From<UserOrderBy> for UserOrder {
    fn from(order: UserOrderBy) -> UserOrder {
        match order {
            UserOrderBy::CreatedAtAsc => UserOrder::CreatedAtAsc,
            UserOrderBy::CreatedAtDesc => UserOrder::CreatedAtDesc,
            UserOrderBy::EmailAsc => UserOrder::EmailAsc,
            UserOrderBy::EmailDesc => UserOrder::EmailDesc,
            UserOrderBy::LastSignInAtAsc => UserOrder::LastSignInAtAsc,
            UserOrderBy::LastSignInAtDesc => UserOrder::LastSignInAtDesc,
            UserOrderBy::LastActiveAtAsc => UserOrder::LastActiveAtAsc,
            UserOrderBy::LastActiveAtDesc => UserOrder::LastActiveAtDesc,
        }
    }
}

#[Object]
impl UserQuery {
    /// The change feed's present position: subscribe with `userChanged(after:)` set to it to
    /// follow changes from now on, resumably (a reconnect or a fall behind replays what was
    /// missed). Any signed-in caller.
    async fn user_change_cursor(&self, ctx: &Context<'_>) -> Result<ID> {
        crate::graphql::caller(ctx).actor()?;
        Ok(ID(crate::service::change_feed::now().to_string()))
    }

    /// The signed-in caller.
    async fn me(&self, ctx: &Context<'_>) -> Result<User> {
        let actor = caller(ctx).actor()?;
        Ok(User::one(actor.user.clone()))
    }

    /// One user by id. An unknown id is a `NOT_FOUND` error; a user outside the caller's
    /// organisation is `FORBIDDEN`.
    async fn user(&self, ctx: &Context<'_>, id: ID) -> Result<Option<User>> {
        let actor = caller(ctx).actor()?;
        let id = parse_id("id", &id)?;
        let db = &services(ctx).db;
        Ok(Some(User::one(users::read(db, actor, id).await?)))
    }

    /// Users the caller may read, a page at a time: everyone for admins, the caller's own
    /// organisation for everyone else.
    #[graphql(complexity = "crate::graphql::schema::page_complexity(first, child_complexity)")]
    async fn users(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size, at most 100 (default 20).")] first: Option<i32>,
        #[graphql(desc = "The `endCursor` of the previous page.")] after: Option<String>,
        filter: Option<UsersFilterInput>,
        #[graphql(default)] order_by: UserOrderBy,
    ) -> Result<UserConnection> {
        let actor = caller(ctx).actor()?;
        let order: UserOrder = order_by.into();
        let page = PageRequest::parse(first, after.as_deref(), order.tag())?;
        let filter = filter.unwrap_or_default().into_domain()?;
        let db = &services(ctx).db;
        let (found, scope) = users::list(db, actor, filter, order, &page).await?;
        Ok(UserConnection {
            page: User::page(found),
            total: TotalCount::Users(scope),
        })
    }

    /// The users the caller may read that match `filter`, by email, as CSV (RFC 4180, a header
    /// line first; `importUsers` reads the same columns): id, email, names, role,
    /// organisation id and slug, active and suspended, and the lecturer profile. At most
    /// 10,000 users in one answer; `GET /api/exports/users.csv` streams any number.
    async fn export_users(
        &self,
        ctx: &Context<'_>,
        filter: Option<UsersFilterInput>,
    ) -> Result<String> {
        let actor = caller(ctx).actor()?;
        let filter = filter.unwrap_or_default().into_domain()?;
        let db = &services(ctx).db;
        Ok(exports::users_csv(db, actor, &filter, EXPORT_MAX_USERS).await?)
    }
}

/// The most users `exportUsers` answers in one string.
const EXPORT_MAX_USERS: usize = 10_000;
