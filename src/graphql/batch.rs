//! Sibling sets: the objects resolved together (a page of users, the organisations of that
//! page) share one set, and the first of them to need a relation loads it for all of them in
//! one `DataLoader::load_many` call.
//!
//! A DataLoader alone batches by time: keys that arrive within its delay form one batch. A
//! page whose fields take longer than the delay to resolve (a debug build, a busy machine)
//! splits into several batches. Batching by sibling set depends on nothing but the query, so
//! "a page costs the same number of statements whatever its size" holds every time, and no
//! request waits on a timer.

use std::collections::{HashMap, HashSet};
use std::hash::Hash;
use std::sync::{Arc, Mutex};

use async_graphql::dataloader::DataLoader;
use async_graphql::{Context, Result};
use entity::{lecturer_profile, organisation, user};
use tokio::sync::OnceCell;
use uuid::Uuid;

use super::loaders::{CountKey, DbLoader, OrganisationUsersKey, ProfileOf};
use crate::service::pagination::{Page, PageRequest};
use crate::service::users::{UserFilter, UserOrder};

/// A value per key, each computed once, however many resolvers ask at the same time.
struct Memo<K, V> {
    cells: Mutex<HashMap<K, Arc<OnceCell<V>>>>,
}

impl<K: Hash + Eq, V> Default for Memo<K, V> {
    fn default() -> Self {
        Memo {
            cells: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Hash + Eq + Clone, V> Memo<K, V> {
    fn cell(&self, key: &K) -> Arc<OnceCell<V>> {
        let mut cells = match self.cells.lock() {
            Ok(cells) => cells,
            // A panic elsewhere cannot leave the map half-written: entries are inserted whole.
            Err(poisoned) => poisoned.into_inner(),
        };
        cells.entry(key.clone()).or_default().clone()
    }
}

pub(crate) fn loader<'a>(ctx: &Context<'a>) -> &'a DataLoader<DbLoader> {
    ctx.data_unchecked::<DataLoader<DbLoader>>()
}

/// Users (or anything else that points at organisations, such as invitations) resolved
/// together.
pub(crate) struct UserSet {
    user_ids: Vec<Uuid>,
    organisation_ids: Vec<Uuid>,
    organisations: OnceCell<Arc<OrganisationSet>>,
    profiles: OnceCell<HashMap<Uuid, lecturer_profile::Model>>,
}

impl UserSet {
    pub(crate) fn of<'a>(users: impl IntoIterator<Item = &'a user::Model>) -> Arc<UserSet> {
        let mut user_ids = Vec::new();
        let mut organisation_ids = HashSet::new();
        for user in users {
            user_ids.push(user.id);
            organisation_ids.extend(user.organisation_id);
        }
        Self::new(user_ids, organisation_ids)
    }

    /// A set of things that refer to these organisations.
    pub(crate) fn referring_to(ids: impl IntoIterator<Item = Uuid>) -> Arc<UserSet> {
        Self::new(Vec::new(), ids.into_iter().collect())
    }

    fn new(user_ids: Vec<Uuid>, organisation_ids: HashSet<Uuid>) -> Arc<UserSet> {
        Arc::new(UserSet {
            user_ids,
            organisation_ids: organisation_ids.into_iter().collect(),
            organisations: OnceCell::new(),
            profiles: OnceCell::new(),
        })
    }

    /// The lecturer profile of one of the set's users, loaded for every user of the set at
    /// once.
    pub(crate) async fn profile(
        &self,
        ctx: &Context<'_>,
        user_id: Uuid,
    ) -> Result<Option<lecturer_profile::Model>> {
        if !self.user_ids.contains(&user_id) {
            return Ok(loader(ctx).load_one(ProfileOf(user_id)).await?);
        }
        let profiles = self
            .profiles
            .get_or_try_init(|| async {
                let found = loader(ctx)
                    .load_many(self.user_ids.iter().copied().map(ProfileOf))
                    .await?;
                Ok::<_, async_graphql::Error>(
                    found
                        .into_iter()
                        .map(|(key, profile)| (key.0, profile))
                        .collect(),
                )
            })
            .await?;
        Ok(profiles.get(&user_id).cloned())
    }

    /// The organisation of one of the set's users, loaded for every user of the set at once.
    pub(crate) async fn organisation(
        &self,
        ctx: &Context<'_>,
        id: Uuid,
    ) -> Result<Option<(organisation::Model, Arc<OrganisationSet>)>> {
        let set = self
            .organisations
            .get_or_try_init(|| async {
                let found = loader(ctx)
                    .load_many(self.organisation_ids.iter().copied())
                    .await?;
                Ok::<_, async_graphql::Error>(OrganisationSet::of(found.values()))
            })
            .await?;
        Ok(set.model(id).map(|model| (model, set.clone())))
    }
}

type UserPages = (HashMap<Uuid, Page<user::Model>>, Arc<UserSet>);

/// Organisations resolved together.
pub(crate) struct OrganisationSet {
    models: HashMap<Uuid, organisation::Model>,
    counts: Memo<UserFilter, HashMap<CountKey, u64>>,
    pages: Memo<(UserFilter, UserOrder, PageRequest), UserPages>,
}

impl OrganisationSet {
    pub(crate) fn of<'a>(
        organisations: impl IntoIterator<Item = &'a organisation::Model>,
    ) -> Arc<OrganisationSet> {
        Arc::new(OrganisationSet {
            models: organisations
                .into_iter()
                .map(|org| (org.id, org.clone()))
                .collect(),
            counts: Memo::default(),
            pages: Memo::default(),
        })
    }

    fn model(&self, id: Uuid) -> Option<organisation::Model> {
        self.models.get(&id).cloned()
    }

    /// How many of an organisation's users match `filter`, counted for the whole set at once.
    pub(crate) async fn user_count(
        &self,
        ctx: &Context<'_>,
        organisation_id: Uuid,
        filter: &UserFilter,
    ) -> Result<u64> {
        let cell = self.counts.cell(filter);
        let counts = cell
            .get_or_try_init(|| async {
                loader(ctx)
                    .load_many(self.models.keys().map(|id| CountKey {
                        organisation_id: *id,
                        filter: filter.clone(),
                    }))
                    .await
            })
            .await?;
        Ok(counts
            .get(&CountKey {
                organisation_id,
                filter: filter.clone(),
            })
            .copied()
            .unwrap_or(0))
    }

    /// One page of an organisation's users, read for every organisation of the set at once.
    /// The users of all those pages form one set in turn.
    pub(crate) async fn users_page(
        &self,
        ctx: &Context<'_>,
        organisation_id: Uuid,
        filter: &UserFilter,
        order: UserOrder,
        page: &PageRequest,
    ) -> Result<(Page<user::Model>, Arc<UserSet>)> {
        let shape = (filter.clone(), order, page.clone());
        let cell = self.pages.cell(&shape);
        let (pages, users) = cell
            .get_or_try_init(|| async {
                let found = loader(ctx)
                    .load_many(self.models.keys().map(|id| OrganisationUsersKey {
                        organisation_id: *id,
                        filter: filter.clone(),
                        order,
                        page: page.clone(),
                    }))
                    .await?;
                let pages: HashMap<Uuid, Page<user::Model>> = found
                    .into_iter()
                    .map(|(key, page)| (key.organisation_id, page))
                    .collect();
                let users = UserSet::of(
                    pages
                        .values()
                        .flat_map(|page| page.edges.iter().map(|edge| &edge.node)),
                );
                Ok::<_, async_graphql::Error>((pages, users))
            })
            .await?;
        let result = pages
            .get(&organisation_id)
            .cloned()
            .unwrap_or_else(|| Page::empty(page));
        Ok((result, users.clone()))
    }
}
