//! DataLoaders: every relation a list can ask for is fetched for the whole list at once.
//!
//! One loader is shared by all requests of a server (no cache, so nothing stale is served):
//! keys asked for by concurrent requests within the same tick are batched together too.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::Loader;
use entity::{activity, lecturer_profile, organisation, sign_in, user};
use sea_orm::DatabaseConnection;
use uuid::Uuid;

use crate::error::AppError;
use crate::service::pagination::{Page, PageRequest};
use crate::service::users::{UserFilter, UserOrder};
use crate::service::{organisations, profiles, sign_ins, users, workload};

pub struct DbLoader {
    db: DatabaseConnection,
}

impl DbLoader {
    pub fn new(db: DatabaseConnection) -> DbLoader {
        DbLoader { db }
    }
}

/// Organisations by id.
impl Loader<Uuid> for DbLoader {
    type Value = organisation::Model;
    type Error = Arc<AppError>;

    async fn load(&self, ids: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        organisations::by_ids(&self.db, ids).await.map_err(Arc::new)
    }
}

/// A user's lecturer profile, by the user's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProfileOf(pub Uuid);

impl Loader<ProfileOf> for DbLoader {
    type Value = lecturer_profile::Model;
    type Error = Arc<AppError>;

    async fn load(
        &self,
        keys: &[ProfileOf],
    ) -> Result<HashMap<ProfileOf, Self::Value>, Self::Error> {
        let user_ids: Vec<Uuid> = keys.iter().map(|key| key.0).collect();
        let found = profiles::by_user_ids(&self.db, &user_ids)
            .await
            .map_err(Arc::new)?;
        Ok(found
            .into_iter()
            .map(|(user_id, profile)| (ProfileOf(user_id), profile))
            .collect())
    }
}

/// A user's workload in an academic year: the hours allocated to them (`AllocatedHours`), or
/// the activities themselves (`Activities`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WorkloadOf {
    pub user_id: Uuid,
    pub academic_year: String,
}

/// The hours allocated to a user in a year; absent for none.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AllocatedHours(pub WorkloadOf);

/// The activities allocated to a user in a year; absent for none.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Activities(pub WorkloadOf);

/// The users and years of these keys, each once.
fn users_and_years<'a>(keys: impl Iterator<Item = &'a WorkloadOf>) -> (Vec<Uuid>, Vec<&'a str>) {
    let mut user_ids = Vec::new();
    let mut years = Vec::new();
    for key in keys {
        if !user_ids.contains(&key.user_id) {
            user_ids.push(key.user_id);
        }
        if !years.contains(&key.academic_year.as_str()) {
            years.push(key.academic_year.as_str());
        }
    }
    (user_ids, years)
}

impl Loader<AllocatedHours> for DbLoader {
    type Value = f64;
    type Error = Arc<AppError>;

    async fn load(
        &self,
        keys: &[AllocatedHours],
    ) -> Result<HashMap<AllocatedHours, f64>, Self::Error> {
        let (user_ids, years) = users_and_years(keys.iter().map(|key| &key.0));
        let found = workload::allocated_hours(&self.db, &user_ids, &years)
            .await
            .map_err(Arc::new)?;
        Ok(found
            .into_iter()
            .map(|((user_id, academic_year), hours)| {
                let key = WorkloadOf {
                    user_id,
                    academic_year,
                };
                (AllocatedHours(key), hours)
            })
            .collect())
    }
}

impl Loader<Activities> for DbLoader {
    type Value = Vec<activity::Model>;
    type Error = Arc<AppError>;

    async fn load(
        &self,
        keys: &[Activities],
    ) -> Result<HashMap<Activities, Self::Value>, Self::Error> {
        let (user_ids, years) = users_and_years(keys.iter().map(|key| &key.0));
        let found = workload::activities_of(&self.db, &user_ids, &years)
            .await
            .map_err(Arc::new)?;
        Ok(found
            .into_iter()
            .map(|((user_id, academic_year), activities)| {
                let key = WorkloadOf {
                    user_id,
                    academic_year,
                };
                (Activities(key), activities)
            })
            .collect())
    }
}

/// A user's latest sign-ins, by their Clerk id: the first `first`, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SignInsOf {
    pub clerk_user_id: String,
    pub first: u64,
}

impl Loader<SignInsOf> for DbLoader {
    type Value = Vec<sign_in::Model>;
    type Error = Arc<AppError>;

    async fn load(
        &self,
        keys: &[SignInsOf],
    ) -> Result<HashMap<SignInsOf, Self::Value>, Self::Error> {
        let mut by_first: HashMap<u64, Vec<String>> = HashMap::new();
        for key in keys {
            by_first
                .entry(key.first)
                .or_default()
                .push(key.clerk_user_id.clone());
        }
        let mut found = HashMap::new();
        for (first, clerk_user_ids) in by_first {
            let latest = sign_ins::latest_of_users(&self.db, &clerk_user_ids, first)
                .await
                .map_err(Arc::new)?;
            found.extend(latest.into_iter().map(|(clerk_user_id, sign_ins)| {
                (
                    SignInsOf {
                        clerk_user_id,
                        first,
                    },
                    sign_ins,
                )
            }));
        }
        Ok(found)
    }
}

/// The number of an organisation's users that match a filter.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CountKey {
    pub organisation_id: Uuid,
    pub filter: UserFilter,
}

impl Loader<CountKey> for DbLoader {
    type Value = u64;
    type Error = Arc<AppError>;

    async fn load(&self, keys: &[CountKey]) -> Result<HashMap<CountKey, u64>, Self::Error> {
        let mut by_filter: HashMap<&UserFilter, Vec<Uuid>> = HashMap::new();
        for key in keys {
            by_filter
                .entry(&key.filter)
                .or_default()
                .push(key.organisation_id);
        }
        let mut counts = HashMap::with_capacity(keys.len());
        for (filter, organisation_ids) in by_filter {
            let found = users::count_by_organisation(&self.db, &organisation_ids, filter)
                .await
                .map_err(Arc::new)?;
            for organisation_id in organisation_ids {
                counts.insert(
                    CountKey {
                        organisation_id,
                        filter: filter.clone(),
                    },
                    found.get(&organisation_id).copied().unwrap_or(0),
                );
            }
        }
        Ok(counts)
    }
}

/// One page of an organisation's users.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OrganisationUsersKey {
    pub organisation_id: Uuid,
    pub filter: UserFilter,
    pub order: UserOrder,
    pub page: PageRequest,
}

impl Loader<OrganisationUsersKey> for DbLoader {
    type Value = Page<user::Model>;
    type Error = Arc<AppError>;

    async fn load(
        &self,
        keys: &[OrganisationUsersKey],
    ) -> Result<HashMap<OrganisationUsersKey, Self::Value>, Self::Error> {
        // Keys asking for the same page shape are answered by one query.
        type Shape<'a> = (&'a UserFilter, UserOrder, &'a PageRequest);
        let mut by_shape: HashMap<Shape<'_>, Vec<Uuid>> = HashMap::new();
        for key in keys {
            by_shape
                .entry((&key.filter, key.order, &key.page))
                .or_default()
                .push(key.organisation_id);
        }
        let mut pages = HashMap::with_capacity(keys.len());
        for ((filter, order, page), organisation_ids) in by_shape {
            let found =
                users::pages_by_organisation(&self.db, &organisation_ids, filter, order, page)
                    .await
                    .map_err(Arc::new)?;
            for (organisation_id, result) in found {
                pages.insert(
                    OrganisationUsersKey {
                        organisation_id,
                        filter: filter.clone(),
                        order,
                        page: page.clone(),
                    },
                    result,
                );
            }
        }
        Ok(pages)
    }
}
