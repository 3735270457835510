//! Live subscriptions shared by their subscribers: subscribers who asked for the same
//! subscription (document, operation, variables) with the same access (`auth::Scope`) are one
//! group, and the group runs the subscription once. Each change is resolved and serialised
//! once for the group; every member's message is its own operation id around those bytes.
//!
//! What stays each subscriber's own:
//! - their row: a change to a member that alters their access ends that member alone
//!   (`live::follow_self`), before the change's payload goes out, as it ends a lone
//!   subscription;
//! - their socket's pace: a member whose socket has no room for another message has fallen
//!   behind, and ends with `EVENTS_MISSED`, as a lone subscriber that lagged does;
//! - their request id, in every error they are sent.
//!
//! Only subscriptions whose events are the same for every subscriber, whenever they arrived,
//! are shared (`Prepared::shareable`); the rest run once per subscriber (`ws.rs`).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use async_graphql::{PathSegment, Response};
use axum::extract::ws::{Message, Utf8Bytes};
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use serde_json::json;
use tokio::sync::mpsc::{self, error::TrySendError};
use tokio::task::AbortHandle;

use super::errors::{assign_codes, never_ran, stamp_request_id};
use super::execute::{Executor, Prepared, RootField};
use super::subscription::{AccessChanged, FollowMembers, access_lost};
use crate::auth::{Actor, Caller, Scope};
use crate::error::AppError;
use crate::events;
use crate::metrics::Metrics;
use crate::service::live;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The shared subscriptions running on this replica.
pub struct Fanout {
    groups: Mutex<HashMap<Arc<GroupKey>, Arc<Group>>>,
    metrics: Arc<Metrics>,
}

/// Everything a shared subscription's events depend on.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct GroupKey {
    pub query: String,
    pub operation_name: Option<String>,
    /// The variables, as JSON.
    pub variables: String,
    pub scope: Scope,
}

/// One operation of one socket that joins a group.
pub struct Subscriber {
    pub operation_id: String,
    pub request_id: String,
    /// Speaking the legacy protocol: payloads are `data`, not `next`.
    pub legacy: bool,
    /// The subscriber as the database said when they subscribed; kept current by their own
    /// changes.
    pub actor: Actor,
    pub outgoing: mpsc::Sender<Message>,
    pub access_changed: AccessChanged,
}

struct Member {
    subscriber: Subscriber,
    /// `{"id":…,"type":"next","payload":` for this operation: a payload goes between it and
    /// the closing brace.
    frame_start: String,
    ended: Arc<AtomicBool>,
    metrics: Arc<Metrics>,
}

struct Group {
    root: RootField,
    members: Mutex<Members>,
    runner: Mutex<Option<AbortHandle>>,
}

#[derive(Default)]
struct Members {
    next_number: u64,
    by_number: HashMap<u64, Member>,
}

/// A subscriber's place in a group; dropping it leaves the group, and the last to leave stops
/// the group's subscription.
pub struct Membership {
    fanout: Arc<Fanout>,
    key: Arc<GroupKey>,
    group: Arc<Group>,
    number: u64,
    ended: Arc<AtomicBool>,
}

impl Membership {
    /// The group sent this member its last message (`complete`, or an `error`).
    pub fn is_finished(&self) -> bool {
        self.ended.load(Ordering::Acquire)
    }
}

impl Drop for Membership {
    fn drop(&mut self) {
        self.fanout.leave(&self.key, &self.group, Some(self.number));
    }
}

impl Fanout {
    pub fn new(metrics: Arc<Metrics>) -> Fanout {
        Fanout {
            groups: Mutex::default(),
            metrics,
        }
    }

    /// Adds `subscriber` to the group of `key`, starting the group's subscription (`prepared`,
    /// run for the subscriber's scope) when there is none.
    pub fn join(
        self: &Arc<Self>,
        executor: &Executor,
        key: GroupKey,
        root: RootField,
        prepared: Prepared,
        subscriber: Subscriber,
    ) -> Membership {
        let ended = Arc::new(AtomicBool::new(false));
        let member = Member::new(subscriber, ended.clone(), self.metrics.clone());
        let mut groups = lock(&self.groups);
        let (key, group) = match groups.get_key_value(&key) {
            Some((key, group)) => (key.clone(), group.clone()),
            None => {
                let key = Arc::new(key);
                let group = Arc::new(Group {
                    root,
                    members: Mutex::default(),
                    runner: Mutex::new(None),
                });
                groups.insert(key.clone(), group.clone());
                self.count_groups(&groups);
                let scope = Caller::User(Box::new(member.subscriber.actor.clone()));
                let weak = Arc::downgrade(&group);
                let follow = FollowMembers(Arc::new(move |change: &events::UserChange| {
                    if let Some(group) = weak.upgrade() {
                        group.follow(change);
                    }
                }));
                let responses = executor.stream(prepared.data(scope).data(follow));
                let runner = tokio::spawn(run(self.clone(), key.clone(), group.clone(), responses));
                *lock(&group.runner) = Some(runner.abort_handle());
                (key, group)
            }
        };
        let mut members = lock(&group.members);
        let number = members.next_number;
        members.next_number += 1;
        members.by_number.insert(number, member);
        drop(members);
        drop(groups);
        Membership {
            fanout: self.clone(),
            key,
            group,
            number,
            ended,
        }
    }

    /// Takes a member out of its group (`None`: none, the group only checks it still has
    /// any); an empty group is forgotten and its subscription stopped. Whether it was.
    fn leave(&self, key: &Arc<GroupKey>, group: &Arc<Group>, number: Option<u64>) -> bool {
        let mut groups = lock(&self.groups);
        let mut members = lock(&group.members);
        let member = number.and_then(|number| members.by_number.remove(&number));
        let empty = members.by_number.is_empty();
        drop(members);
        let stopped = empty && forget(&mut groups, key, group);
        if stopped {
            self.count_groups(&groups);
            if let Some(runner) = lock(&group.runner).take() {
                runner.abort();
            }
        }
        drop(groups);
        drop(member);
        stopped
    }

    /// New subscribers no longer join `group`.
    fn forget(&self, key: &Arc<GroupKey>, group: &Arc<Group>) {
        let mut groups = lock(&self.groups);
        if forget(&mut groups, key, group) {
            self.count_groups(&groups);
        }
    }

    /// The group's subscription has ended: each member is sent its last message.
    fn end(&self, key: &Arc<GroupKey>, group: &Arc<Group>, refusal: Option<Response>) {
        self.forget(key, group);
        let members: Vec<Member> = lock(&group.members)
            .by_number
            .drain()
            .map(|(_, member)| member)
            .collect();
        for member in members {
            let last = match &refusal {
                // An operation that cannot run gets `error` and nothing after it.
                Some(refusal) => {
                    let own = stamped(refusal, &member.subscriber.request_id);
                    vec![text(json!({
                        "id": member.subscriber.operation_id,
                        "type": "error",
                        "payload": own.errors,
                    }))]
                }
                None => vec![member.complete()],
            };
            member.finish(last, None);
        }
    }

    fn count_groups(&self, groups: &HashMap<Arc<GroupKey>, Arc<Group>>) {
        self.metrics
            .subscription_groups
            .store(groups.len() as i64, Ordering::Relaxed);
    }
}

/// Removes `group` from `groups` if it is still the one under `key`.
fn forget(
    groups: &mut HashMap<Arc<GroupKey>, Arc<Group>>,
    key: &Arc<GroupKey>,
    group: &Arc<Group>,
) -> bool {
    if groups.get(key).is_some_and(|held| Arc::ptr_eq(held, group)) {
        groups.remove(key);
        true
    } else {
        false
    }
}

/// Runs a group's subscription and sends each of its responses to the members.
async fn run(
    fanout: Arc<Fanout>,
    key: Arc<GroupKey>,
    group: Arc<Group>,
    mut responses: BoxStream<'static, Response>,
) {
    let mut first = true;
    while let Some(response) = responses.next().await {
        if first && never_ran(&response) {
            fanout.end(&key, &group, Some(response));
            return;
        }
        first = false;
        if response.data == async_graphql::Value::Null {
            // An error that ends the subscription (`EVENTS_MISSED`, a refusal as it started):
            // no one joins it any more, so everyone in it is sent the error.
            fanout.forget(&key, &group);
        }
        group.deliver(&response, &fanout.metrics);
        // Members also leave here (fallen behind, access changed, socket gone): a group left
        // empty stops now rather than when the last of them is dropped.
        if fanout.leave(&key, &group, None) {
            return;
        }
    }
    fanout.end(&key, &group, None);
}

impl Group {
    /// Sends a response to every member: serialised once when it has no errors; errors name
    /// each member's request, so those are serialised for each.
    fn deliver(&self, response: &Response, metrics: &Metrics) {
        let shared = response.errors.is_empty().then(|| {
            metrics
                .subscription_encodings
                .fetch_add(1, Ordering::Relaxed);
            payload_of(response)
        });
        let mut members = lock(&self.members);
        let mut gone = Vec::new();
        let mut sent = 0;
        for (&number, member) in &members.by_number {
            let frame = match &shared {
                Some(payload) => member.frame(payload),
                None => member.frame(&payload_of(&stamped(
                    response,
                    &member.subscriber.request_id,
                ))),
            };
            match member.subscriber.outgoing.try_send(frame) {
                Ok(()) => sent += 1,
                Err(TrySendError::Full(_)) => gone.push((number, true)),
                Err(TrySendError::Closed(_)) => gone.push((number, false)),
            }
        }
        metrics
            .subscription_messages
            .fetch_add(sent, Ordering::Relaxed);
        for (number, behind) in gone {
            let Some(member) = members.by_number.remove(&number) else {
                continue;
            };
            if behind {
                let error = AppError::EventsMissed(
                    "this subscriber's connection fell behind the changes and was not sent them; reload and subscribe again"
                        .to_owned(),
                );
                let payload = self.error_payload(error, &member.subscriber.request_id);
                let last = vec![member.frame(&payload), member.complete()];
                member.finish(last, None);
            } else {
                member.finish(Vec::new(), None);
            }
        }
    }

    /// Shown every change to a user before its payload goes out: a member whose access it
    /// alters ends, with the error and the reason a lone subscription gives.
    fn follow(&self, change: &events::UserChange) {
        let mut members = lock(&self.members);
        let lost: Vec<_> = members
            .by_number
            .iter_mut()
            .filter_map(|(&number, member)| {
                live::follow_self(&mut member.subscriber.actor, change).map(|lost| (number, lost))
            })
            .collect();
        for (number, lost) in lost {
            let Some(member) = members.by_number.remove(&number) else {
                continue;
            };
            let (error, reason) = access_lost(lost);
            let payload = self.error_payload(error, &member.subscriber.request_id);
            let last = vec![member.frame(&payload), member.complete()];
            member.finish(last, Some(reason));
        }
    }

    /// A response holding only `error`, as the subscription's own field would have raised it.
    fn error_payload(&self, error: AppError, request_id: &str) -> String {
        let error = async_graphql::Error::from(error)
            .into_server_error(self.root.pos)
            .with_path(vec![PathSegment::Field(self.root.response_key.clone())]);
        let mut response = Response::from_errors(vec![error]);
        assign_codes(&mut response);
        stamp_request_id(&mut response, request_id);
        payload_of(&response)
    }
}

impl Member {
    fn new(subscriber: Subscriber, ended: Arc<AtomicBool>, metrics: Arc<Metrics>) -> Member {
        let next = if subscriber.legacy { "data" } else { "next" };
        let frame_start = frame_start(&subscriber.operation_id, next);
        metrics.subscriptions.fetch_add(1, Ordering::Relaxed);
        Member {
            subscriber,
            frame_start,
            ended,
            metrics,
        }
    }

    fn frame(&self, payload: &str) -> Message {
        framed(&self.frame_start, payload)
    }

    fn complete(&self) -> Message {
        text(json!({ "id": self.subscriber.operation_id, "type": "complete" }))
    }

    /// Sends the member's last messages and ends it: at once when its socket has room, else
    /// from a task of its own. A member ended for lost access gives its socket the reason,
    /// and the socket closes once they are out.
    fn finish(self, last: Vec<Message>, access_lost: Option<&str>) {
        if let Some(reason) = access_lost {
            self.subscriber.access_changed.set(reason);
        }
        let mut last = VecDeque::from(last);
        while let Some(message) = last.pop_front() {
            match self.subscriber.outgoing.try_send(message) {
                Ok(()) => {}
                Err(TrySendError::Full(message)) => {
                    last.push_front(message);
                    tokio::spawn(async move {
                        for message in last {
                            if self.subscriber.outgoing.send(message).await.is_err() {
                                break;
                            }
                        }
                        self.ended();
                    });
                    return;
                }
                Err(TrySendError::Closed(_)) => break,
            }
        }
        self.ended();
    }

    fn ended(self) {
        self.ended.store(true, Ordering::Release);
        self.subscriber.access_changed.release();
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        self.metrics.subscriptions.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A copy of `response` whose errors name `request_id`.
fn stamped(response: &Response, request_id: &str) -> Response {
    let mut own = Response::new(response.data.clone());
    own.extensions = response.extensions.clone();
    own.errors = response.errors.clone();
    stamp_request_id(&mut own, request_id);
    own
}

/// `{"id":…,"type":…,"payload":` for operation `id`: a serialised payload goes between it and
/// the closing brace (`framed`).
pub(super) fn frame_start(id: &str, kind: &str) -> String {
    let id = serde_json::Value::String(id.to_owned());
    format!(r#"{{"id":{id},"type":"{kind}","payload":"#)
}

/// A message of `start` (`frame_start`) around a serialised payload.
pub(super) fn framed(start: &str, payload: &str) -> Message {
    let mut frame = String::with_capacity(start.len() + payload.len() + 1);
    frame.push_str(start);
    frame.push_str(payload);
    frame.push('}');
    Message::Text(Utf8Bytes::from(frame))
}

/// A response as JSON; one that cannot be written is an `INTERNAL_SERVER_ERROR`.
pub(super) fn payload_of(response: &Response) -> String {
    serde_json::to_string(response).unwrap_or_else(|err| {
        json!({ "errors": [{ "message": format!("the response could not be serialised: {err}"), "extensions": { "code": "INTERNAL_SERVER_ERROR" } }] }).to_string()
    })
}

fn text(value: serde_json::Value) -> Message {
    Message::Text(Utf8Bytes::from(value.to_string()))
}

#[cfg(test)]
mod tests {
    use async_graphql::{Name, Pos, Value};
    use entity::role::Role;

    use super::*;
    use crate::auth::access::fixtures;

    fn subscriber(operation_id: &str, outgoing: mpsc::Sender<Message>) -> Subscriber {
        Subscriber {
            operation_id: operation_id.to_owned(),
            request_id: format!("upgrade:{operation_id}"),
            legacy: false,
            actor: Actor {
                user: fixtures::user(Role::Admin, None),
                session_id: None,
            },
            outgoing,
            access_changed: AccessChanged::default(),
        }
    }

    fn join(group: &Group, member: Member) {
        let mut members = lock(&group.members);
        let number = members.next_number;
        members.next_number += 1;
        members.by_number.insert(number, member);
    }

    async fn next_json(messages: &mut mpsc::Receiver<Message>) -> serde_json::Value {
        let message = tokio::time::timeout(std::time::Duration::from_secs(5), messages.recv())
            .await
            .expect("a message within 5 s")
            .expect("the channel is open");
        match message {
            Message::Text(text) => serde_json::from_str(text.as_str()).expect("JSON"),
            other => panic!("not text: {other:?}"),
        }
    }

    /// A member whose socket has no room for the next payload is sent `EVENTS_MISSED` and
    /// `complete` once there is room, and ends; the other members are sent every payload.
    #[tokio::test]
    async fn a_member_whose_socket_is_full_falls_behind_alone() {
        let metrics = Arc::new(Metrics::default());
        let group = Group {
            root: RootField {
                response_key: "changes".to_owned(),
                pos: Pos {
                    line: 1,
                    column: 16,
                },
            },
            members: Mutex::default(),
            runner: Mutex::new(None),
        };
        let (slow_sender, mut slow) = mpsc::channel(1);
        let (keeping_up_sender, mut keeping_up) = mpsc::channel(8);
        let slow_ended = Arc::new(AtomicBool::new(false));
        join(
            &group,
            Member::new(
                subscriber("slow", slow_sender),
                slow_ended.clone(),
                metrics.clone(),
            ),
        );
        join(
            &group,
            Member::new(
                subscriber("keeping-up", keeping_up_sender),
                Arc::new(AtomicBool::new(false)),
                metrics.clone(),
            ),
        );
        assert_eq!(metrics.subscriptions.load(Ordering::Relaxed), 2);

        let payload = |n: i32| {
            let mut fields = async_graphql::indexmap::IndexMap::new();
            fields.insert(Name::new("changes"), Value::from(n));
            Response::new(Value::Object(fields))
        };
        group.deliver(&payload(1), &metrics);
        group.deliver(&payload(2), &metrics);
        assert_eq!(metrics.subscription_encodings.load(Ordering::Relaxed), 2);
        assert_eq!(metrics.subscription_messages.load(Ordering::Relaxed), 3);

        for n in [1, 2] {
            let message = next_json(&mut keeping_up).await;
            assert_eq!(message["id"], "keeping-up");
            assert_eq!(message["type"], "next");
            assert_eq!(
                message["payload"],
                serde_json::json!({ "data": { "changes": n } })
            );
        }
        let first = next_json(&mut slow).await;
        assert_eq!(first["payload"]["data"]["changes"], 1);
        let behind = next_json(&mut slow).await;
        assert_eq!(behind["id"], "slow");
        assert_eq!(behind["type"], "next");
        let error = &behind["payload"]["errors"][0];
        assert_eq!(error["extensions"]["code"], "EVENTS_MISSED", "{behind}");
        assert_eq!(error["extensions"]["requestId"], "upgrade:slow", "{behind}");
        assert_eq!(error["path"], serde_json::json!(["changes"]), "{behind}");
        assert_eq!(behind["payload"]["data"], serde_json::Value::Null);
        let complete = next_json(&mut slow).await;
        assert_eq!(
            complete,
            serde_json::json!({ "id": "slow", "type": "complete" })
        );
        tokio::time::timeout(std::time::Duration::from_secs(5), async {
            while !slow_ended.load(Ordering::Acquire) {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("the slow member ends");

        group.deliver(&payload(3), &metrics);
        assert_eq!(
            next_json(&mut keeping_up).await["payload"]["data"]["changes"],
            3
        );
        assert!(slow.try_recv().is_err(), "nothing after complete");
        assert_eq!(metrics.subscriptions.load(Ordering::Relaxed), 1);
    }
}
