//! The response cache: the bytes of a query's complete answer, reused while provably current.
//!
//! An answer depends on the document, the operation chosen, the variables and who asks (`me` is
//! the caller, and the caller's row decides their scope), so all of them are the key, the
//! caller's scope included, compared in full (a hash collision cannot serve another caller's
//! answer). It depends on the data too: each answer keeps the stamp taken before it was
//! computed (`service::freshness`), and is reused only while the stamp of now is the same, i.e.
//! nothing has committed since; or, for an answer known to depend on one organisation only (its
//! `Footprint`), while nothing has touched that organisation since
//! (`Freshness::untouched_since`). Answers with errors are not kept (an error may not last), nor
//! answers of operations that read what changes without a change event (`NOT_CACHEABLE`).
//!
//! Memory is bounded by bytes: the least recently used answers go first, and an answer bigger
//! than an eighth of the budget is never kept, so one cannot flush the rest.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};

use axum::body::Bytes;
use hashlink::LruCache;
use uuid::Uuid;

use crate::auth::Caller;
use crate::auth::access::Scope;
use crate::metrics::Metrics;
use crate::service::freshness::{Footprint, Freshness, Stamp};

/// Root fields whose answers change with no change event: a running sync's row is written by
/// its heartbeat, and its progress is only a signal.
pub(super) const NOT_CACHEABLE: [&str; 4] =
    ["syncStatus", "syncRun", "userChangeCursor", "bulkJob"];

/// What an answer depends on besides the data.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    pub(super) query: String,
    pub(super) operation_name: Option<String>,
    /// The variables as JSON, in the order sent.
    pub(super) variables: String,
    /// The caller's user id; `None` for anonymous callers.
    pub(super) caller: Option<Uuid>,
    /// The caller's scope as their row says now: an answer that stays current across changes
    /// to other organisations (`Footprint::Organisation`) must not outlive the caller's role.
    pub(super) scope: Option<Scope>,
}

impl Key {
    /// The key of `request`'s answer for `caller`; `None` when its variables cannot be written.
    pub fn of(request: &async_graphql::Request, caller: &Caller) -> Option<Key> {
        Some(Key {
            query: request.query.clone(),
            operation_name: request.operation_name.clone(),
            variables: serde_json::to_string(&request.variables).ok()?,
            caller: match caller {
                Caller::User(actor) => Some(actor.user.id),
                Caller::Anonymous => None,
            },
            scope: match caller {
                Caller::User(actor) => Some(actor.scope()),
                Caller::Anonymous => None,
            },
        })
    }

    fn bytes(&self) -> usize {
        self.query.len()
            + self.operation_name.as_ref().map_or(0, String::len)
            + self.variables.len()
            + size_of::<Key>()
    }
}

/// A kept answer: its bytes and their entity tag (`conditional.rs`).
#[derive(Debug, Clone)]
pub struct Answer {
    pub body: Bytes,
    pub tag: Arc<str>,
    /// The operation's first root field, for the metrics of a reuse.
    pub root_field: Arc<str>,
    stamp: Stamp,
    footprint: Footprint,
}

/// What an entry costs beyond its bytes: the map's slot, the list's links, the `Arc`s.
const ENTRY_OVERHEAD: usize = 128;

pub struct ResponseCache {
    freshness: Freshness,
    budget: usize,
    entries: Mutex<Entries>,
    metrics: Arc<Metrics>,
}

struct Entries {
    answers: LruCache<Key, Answer>,
    bytes: usize,
}

impl ResponseCache {
    pub fn new(freshness: Freshness, budget: usize, metrics: Arc<Metrics>) -> ResponseCache {
        ResponseCache {
            freshness,
            budget,
            entries: Mutex::new(Entries {
                answers: LruCache::new_unbounded(),
                bytes: 0,
            }),
            metrics,
        }
    }

    /// The stamp to look answers up with and to keep new ones under, taken before anything is
    /// read; `None`: nothing may be reused or kept now.
    pub async fn stamp(&self) -> Option<Stamp> {
        if self.budget == 0 {
            return None;
        }
        self.freshness.now().await
    }

    /// The answer kept for `key` if it is current at `stamp`. A stale one is dropped.
    pub fn get(&self, key: &Key, stamp: &Stamp) -> Option<Answer> {
        let mut entries = self.lock();
        let current = match entries.answers.get(key) {
            Some(answer)
                if &answer.stamp == stamp
                    || self
                        .freshness
                        .untouched_since(answer.footprint, &answer.stamp) =>
            {
                Some(answer.clone())
            }
            Some(_) => {
                if let Some((key, stale)) = entries.answers.remove_entry(key) {
                    entries.forget(&key, &stale, &self.metrics);
                }
                None
            }
            None => None,
        };
        let counter = if current.is_some() {
            &self.metrics.cache_hits
        } else {
            &self.metrics.cache_misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        current
    }

    /// Keeps an answer computed at `stamp` that depends on what `footprint` says, and gives it
    /// back with its tag. An answer too big to keep is given back all the same.
    pub fn put(
        &self,
        key: Key,
        stamp: Stamp,
        footprint: Footprint,
        root_field: &str,
        body: Bytes,
    ) -> Answer {
        let answer = Answer {
            tag: super::conditional::tag_of(&body).into(),
            root_field: root_field.into(),
            body,
            stamp,
            footprint,
        };
        let cost = cost(&key, &answer);
        if cost > self.budget / 8 {
            return answer;
        }
        let mut entries = self.lock();
        if let Some((key, replaced)) = entries.answers.remove_entry(&key) {
            entries.forget(&key, &replaced, &self.metrics);
        }
        entries.answers.insert(key, answer.clone());
        entries.bytes += cost;
        self.metrics
            .cache_bytes
            .fetch_add(cost as i64, Ordering::Relaxed);
        self.metrics.cache_entries.fetch_add(1, Ordering::Relaxed);
        while entries.bytes > self.budget {
            let Some((key, evicted)) = entries.answers.remove_lru() else {
                break;
            };
            entries.forget(&key, &evicted, &self.metrics);
            self.metrics.cache_evictions.fetch_add(1, Ordering::Relaxed);
        }
        answer
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn cost(key: &Key, answer: &Answer) -> usize {
    key.bytes() + answer.body.len() + answer.tag.len() + answer.root_field.len() + ENTRY_OVERHEAD
}

impl Entries {
    /// Accounts for an entry that left the map.
    fn forget(&mut self, key: &Key, answer: &Answer, metrics: &Metrics) {
        let cost = cost(key, answer);
        self.bytes = self.bytes.saturating_sub(cost);
        metrics
            .cache_bytes
            .fetch_sub(cost as i64, Ordering::Relaxed);
        metrics.cache_entries.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::EventBus;

    fn key(query: &str, caller: Option<Uuid>) -> Key {
        Key {
            query: query.to_owned(),
            operation_name: None,
            variables: "{}".to_owned(),
            caller,
            scope: None,
        }
    }

    fn cache(budget: usize) -> (ResponseCache, Arc<Metrics>) {
        let metrics = Arc::new(Metrics::default());
        let freshness = Freshness::off(EventBus::in_process(16));
        (
            ResponseCache::new(freshness, budget, metrics.clone()),
            metrics,
        )
    }

    #[test]
    fn an_answer_is_reused_only_at_its_stamp_and_for_its_caller() {
        let (cache, metrics) = cache(1 << 20);
        let alice = Some(Uuid::now_v7());
        let bob = Some(Uuid::now_v7());
        let kept = cache.put(
            key("{ me { id } }", alice),
            Stamp::Heard(7),
            Footprint::Everything,
            "me",
            Bytes::from_static(b"{\"data\":{}}"),
        );
        let hit = cache
            .get(&key("{ me { id } }", alice), &Stamp::Heard(7))
            .expect("the same key at the same stamp");
        assert_eq!(hit.body, kept.body);
        assert_eq!(hit.tag, kept.tag);
        assert!(
            cache
                .get(&key("{ me { id } }", bob), &Stamp::Heard(7))
                .is_none()
        );
        assert!(
            cache
                .get(&key("{ me { id } }", None), &Stamp::Heard(7))
                .is_none()
        );
        assert!(
            cache
                .get(&key("{ me { id } }", alice), &Stamp::Heard(8))
                .is_none()
        );
        // The stale answer was dropped: even its old stamp finds nothing now.
        assert!(
            cache
                .get(&key("{ me { id } }", alice), &Stamp::Heard(7))
                .is_none()
        );
        assert_eq!(metrics.cache_hits.load(Ordering::Relaxed), 1);
        assert_eq!(metrics.cache_misses.load(Ordering::Relaxed), 4);
        assert_eq!(metrics.cache_entries.load(Ordering::Relaxed), 0);
        assert_eq!(metrics.cache_bytes.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn the_least_recently_used_go_first_and_the_bytes_stay_within_the_budget() {
        let budget = 16 * 1024;
        let (cache, metrics) = cache(budget);
        let body = Bytes::from(vec![b'x'; 1000]);
        for n in 0..40 {
            cache.put(
                key(&format!("{{ q{n} }}"), None),
                Stamp::Heard(1),
                Footprint::Everything,
                "q",
                body.clone(),
            );
            // The first is used all along, so it is never the least recently used.
            assert!(cache.get(&key("{ q0 }", None), &Stamp::Heard(1)).is_some());
            let held = metrics.cache_bytes.load(Ordering::Relaxed);
            assert!(held as usize <= budget, "{held} bytes held");
        }
        assert!(metrics.cache_evictions.load(Ordering::Relaxed) > 20);
        assert!(cache.get(&key("{ q1 }", None), &Stamp::Heard(1)).is_none());
        assert!(cache.get(&key("{ q39 }", None), &Stamp::Heard(1)).is_some());
        // Too big for an eighth of the budget: answered, not kept.
        let big = cache.put(
            key("{ big }", None),
            Stamp::Heard(1),
            Footprint::Everything,
            "big",
            Bytes::from(vec![b'y'; budget / 4]),
        );
        assert_eq!(big.body.len(), budget / 4);
        assert!(cache.get(&key("{ big }", None), &Stamp::Heard(1)).is_none());
    }
}
