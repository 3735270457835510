use std::sync::Arc;

use async_graphql::{Context, ID, Object, Result};
use chrono::{DateTime, Utc};
use entity::user;

use super::connection::connection;
use super::{LecturerProfile, Organisation, Role, SignIn, Workload};
use crate::graphql::batch::{UserSet, loader};
use crate::graphql::loaders::SignInsOf;
use crate::service::pagination::Page;
use crate::service::workload::AcademicYear;

/// A person who can sign in, as userhub knows them.
#[derive(Clone)]
pub struct User {
    pub(crate) model: user::Model,
    /// The users resolved with this one, whose relations load together.
    set: Arc<UserSet>,
}

impl User {
    /// Wraps a page of users as one set.
    pub(crate) fn page(page: Page<user::Model>) -> Page<User> {
        let set = UserSet::of(page.edges.iter().map(|edge| &edge.node));
        Self::page_in(page, set)
    }

    pub(crate) fn page_in(page: Page<user::Model>, set: Arc<UserSet>) -> Page<User> {
        page.map(|model| User {
            model,
            set: set.clone(),
        })
    }

    pub(crate) fn one(model: user::Model) -> User {
        let set = UserSet::of([&model]);
        User { model, set }
    }

    /// Users resolved together, as one set.
    pub(crate) fn all(models: Vec<user::Model>) -> Vec<User> {
        let set = UserSet::of(&models);
        models
            .into_iter()
            .map(|model| User {
                model,
                set: set.clone(),
            })
            .collect()
    }

    /// The user's workload in `year`; the caller was checked to read the user.
    pub(crate) fn workload_in(&self, year: AcademicYear) -> Workload {
        Workload {
            user: self.model.clone(),
            set: self.set.clone(),
            year,
        }
    }
}

#[Object]
impl User {
    async fn id(&self) -> ID {
        ID(self.model.id.to_string())
    }

    /// The user's id in Clerk (`user_...`).
    async fn clerk_id(&self) -> &str {
        &self.model.clerk_id
    }

    /// The primary email address, lower-cased.
    async fn email(&self) -> &str {
        &self.model.email
    }

    async fn first_name(&self) -> Option<&str> {
        self.model.first_name.as_deref()
    }

    async fn last_name(&self) -> Option<&str> {
        self.model.last_name.as_deref()
    }

    /// First and last name; the email address when the user has neither.
    async fn full_name(&self) -> String {
        full_name(&self.model)
    }

    async fn image_url(&self) -> Option<&str> {
        self.model.image_url.as_deref()
    }

    async fn role(&self) -> Role {
        self.model.role.into()
    }

    async fn organisation_id(&self) -> Option<ID> {
        self.model.organisation_id.map(|id| ID(id.to_string()))
    }

    /// The organisation the user belongs to, if any. Batched across a page. `FORBIDDEN` for
    /// an organisation outside the caller's (a subscriber sees a user leave for another).
    async fn organisation(&self, ctx: &Context<'_>) -> Result<Option<Organisation>> {
        let Some(organisation_id) = self.model.organisation_id else {
            return Ok(None);
        };
        let actor = crate::graphql::caller(ctx).actor()?;
        crate::service::organisations::check_readable(actor, organisation_id)?;
        Ok(self
            .set
            .organisation(ctx, organisation_id)
            .await?
            .map(|(model, set)| Organisation { model, set }))
    }

    /// What userhub records of the person's employment (staff id, contract, workload
    /// target); `null` until someone records it. Batched across a page. `FORBIDDEN` for a
    /// user outside the caller's organisation (a subscriber sees a user leave for another).
    async fn profile(&self, ctx: &Context<'_>) -> Result<Option<LecturerProfile>> {
        let actor = crate::graphql::caller(ctx).actor()?;
        crate::service::profiles::check_readable(actor, &self.model)?;
        Ok(self
            .set
            .profile(ctx, self.model.id)
            .await?
            .map(LecturerProfile))
    }

    /// What is allocated to the person in an academic year (`2026/27`; the current one when
    /// left out) against their target. Batched across a page. `FORBIDDEN` as `profile`.
    async fn workload(&self, ctx: &Context<'_>, academic_year: Option<String>) -> Result<Workload> {
        let actor = crate::graphql::caller(ctx).actor()?;
        crate::service::profiles::check_readable(actor, &self.model)?;
        let year = AcademicYear::or_current("academicYear", academic_year.as_deref())?;
        Ok(self.workload_in(year))
    }

    /// When the user's access ends (`profile.accessUntil`); `null` for no end.
    async fn access_until(&self, ctx: &Context<'_>) -> Result<Option<DateTime<Utc>>> {
        Ok(self
            .profile(ctx)
            .await?
            .and_then(|profile| profile.0.access_until))
    }

    /// False once the user was removed (deleted in Clerk); the row and its history stay.
    async fn is_active(&self) -> bool {
        self.model.is_active
    }

    /// True while the user is banned in Clerk: they cannot sign in.
    async fn is_suspended(&self) -> bool {
        self.model.banned
    }

    async fn last_sign_in_at(&self) -> Option<DateTime<Utc>> {
        self.model.last_sign_in_at
    }

    /// When Clerk last saw the user active (their sessions' events, their Clerk record).
    async fn last_active_at(&self) -> Option<DateTime<Utc>> {
        self.model.last_active_at
    }

    /// The user's latest sign-ins (Clerk sessions), newest first: at most `first` (1 to 100,
    /// default 10). The user themself, their organisation's admins and admins; `FORBIDDEN`
    /// for anyone else. Batched across a page.
    async fn sign_ins(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 10)] first: i32,
    ) -> Result<Vec<SignIn>> {
        let actor = crate::graphql::caller(ctx).actor()?;
        crate::service::sign_ins::check_readable(actor, &self.model)?;
        let first = u64::try_from(first)
            .ok()
            .filter(|first| (1..=crate::service::sign_ins::MOST_SIGN_INS).contains(first))
            .ok_or_else(|| {
                crate::error::AppError::validation("first", "must be between 1 and 100")
            })?;
        let key = SignInsOf {
            clerk_user_id: self.model.clerk_id.clone(),
            first,
        };
        Ok(loader(ctx)
            .load_one(key)
            .await?
            .unwrap_or_default()
            .into_iter()
            .map(SignIn)
            .collect())
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.model.created_at
    }

    async fn updated_at(&self) -> DateTime<Utc> {
        self.model.updated_at
    }

    async fn deactivated_at(&self) -> Option<DateTime<Utc>> {
        self.model.deactivated_at
    }
}

connection!(UserConnection, UserEdge, User, "users");

/// First and last name; the email address when the user has neither.
pub(crate) fn full_name(user: &user::Model) -> String {
    let names: Vec<&str> = [&user.first_name, &user.last_name]
        .into_iter()
        .flatten()
        .map(|name| name.trim())
        .filter(|name| !name.is_empty())
        .collect();
    if names.is_empty() {
        user.email.clone()
    } else {
        names.join(" ")
    }
}
