//! The root `Subscription` type: live changes from the event bus (`events`), filtered to what
//! the subscriber may see.
//!
//! A subscription watches its own subscriber too: when a change removes or suspends them, or
//! changes their role or organisation, it ends, since its payloads are resolved for the
//! subscriber as they were; over a WebSocket the socket then closes (`AccessChanged`) and the
//! client connects again as who they are now. A subscription resolved once for a group of
//! subscribers (`fanout.rs`) shows each change to the group instead, which follows every
//! member's own row.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use async_graphql::{Context, ID, Result, Subscription as SubscriptionObject};
use futures_util::{Stream, StreamExt};
use tokio::sync::Notify;
use tokio::sync::broadcast::{self, error::RecvError};

use super::caller;
use super::types::bulk_job::BulkJob;
use super::types::{OrganisationStats, SyncProgress, UserChange};
use crate::auth::Actor;
use crate::error::AppError;
use crate::events::{self, Event};
use crate::graphql::services;
use crate::service::live::{self, AccessLost};
use crate::service::{bulk, change_feed, parse_id, stats, sync};

#[derive(Default)]
pub struct Subscription;

#[SubscriptionObject]
impl Subscription {
    /// Every change to a user the caller may read, as it commits on any replica: in
    /// `organisationId` when given (a user leaving it included). Organisation admins and
    /// members follow their own organisation; admins follow everyone. Ends with
    /// `EVENTS_MISSED` when this subscriber fell too far behind to be sent every change.
    ///
    /// With `after` (a change's `cursor`, or `userChangeCursor`), it first replays from the
    /// change feed what came after that cursor, then continues live; a subscriber that falls
    /// behind is caught up from the feed rather than ended. The feed keeps a week of changes
    /// and replays at most 10,000 at once (beyond either, `EVENTS_MISSED`), and is at least
    /// once: a change from the two seconds before the cursor may come again, with its cursor.
    async fn user_changed(
        &self,
        ctx: &Context<'_>,
        organisation_id: Option<ID>,
        after: Option<ID>,
    ) -> Result<impl Stream<Item = Result<UserChange>> + use<>> {
        let actor = caller(ctx).actor()?.clone();
        let organisation_id = organisation_id
            .map(|id| parse_id("organisationId", &id))
            .transpose()?;
        live::follow_users(&actor, organisation_id)?;
        let receiver = services(ctx).events.subscribe();
        if let Some(after) = after {
            let after = change_feed::parse_cursor("after", &after)?;
            let db = services(ctx).db.clone();
            // Subscribed first: a change that commits while the feed is read comes live too,
            // and is sent once (`seen`). The first page is read here, so that a cursor out of
            // reach is refused before anything is sent.
            let replay = change_feed::Replay::after(after)?;
            let (first, replay) = replay
                .next_page(&db, &actor, organisation_id, &HashSet::new())
                .await?;
            let state = Resume {
                receiver,
                actor,
                access: ctx.data_opt::<AccessChanged>().cloned(),
                db,
                organisation_id,
                queue: first.into(),
                replay,
                live: Vec::new(),
                last: after,
                seen: Seen::default(),
                ended: false,
            };
            return Ok(futures_util::stream::unfold(state, Resume::next).boxed());
        }
        let follower = match ctx.data_opt::<FollowMembers>() {
            Some(members) => Follower::Members(members.clone()),
            None => Follower::Subscriber(ctx.data_opt::<AccessChanged>().cloned()),
        };
        Ok(
            watch(receiver, actor, follower, move |actor, event| match event {
                Event::User(change) if live::sees_user_change(actor, change, organisation_id) => {
                    Some(UserChange(change.clone()))
                }
                _ => None,
            })
            .boxed(),
        )
    }

    /// An organisation's dashboard, live: its counts at once, then again after every change
    /// to its users, invitations or record that commits on any replica, changes close
    /// together counted once (`STATS_SETTLE`). Admins, and the organisation's admins. Counts
    /// are a snapshot, so a subscriber that fell behind, or a replica that lost events, gets
    /// fresh counts rather than an error.
    async fn organisation_stats_changed(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> Result<impl Stream<Item = Result<OrganisationStats>> + use<>> {
        let actor = caller(ctx).actor()?.clone();
        let id = parse_id("id", &id)?;
        let db = services(ctx).db.clone();
        // Subscribe before the first count, so no change falls between the two.
        let receiver = services(ctx).events.subscribe();
        let first = stats::organisation(&db, &actor, id).await?;
        let state = StatsWatch {
            receiver,
            actor,
            access: ctx.data_opt::<AccessChanged>().cloned(),
            db,
            organisation_id: id,
            first: Some(first),
            ended: false,
        };
        Ok(futures_util::stream::unfold(state, StatsWatch::next))
    }

    /// A bulk job as it runs, on whichever replica runs it: the job at once, then again each
    /// time its counts move, until it is finished (the last message). The admin or
    /// organisation admin who asked for it, and admins.
    async fn bulk_job_progress(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> Result<impl Stream<Item = Result<BulkJob>> + use<>> {
        let actor = caller(ctx).actor()?.clone();
        let id = parse_id("id", &id)?;
        let services = services(ctx).clone();
        let first = bulk::read(&services, &actor, id).await?;
        // The job's row is the record every replica reads: it is read again a few times a
        // second rather than carried on the bus.
        let state = (
            Some(first),
            None::<entity::bulk_job::Model>,
            services,
            actor,
            id,
        );
        Ok(futures_util::stream::unfold(
            state,
            |(next, last, services, actor, id)| async move {
                if let Some(job) = next {
                    return Some((
                        Ok(BulkJob(job.clone())),
                        (None, Some(job), services, actor, id),
                    ));
                }
                let last = last?;
                if last.status != "running" {
                    return None;
                }
                loop {
                    tokio::time::sleep(BULK_POLL).await;
                    match bulk::read(&services, &actor, id).await {
                        Ok(job) if job == last => continue,
                        Ok(job) => {
                            return Some((
                                Ok(BulkJob(job.clone())),
                                (None, Some(job), services, actor, id),
                            ));
                        }
                        Err(error) => {
                            let mut ended = last.clone();
                            ended.status = "ended".to_owned();
                            return Some((
                                Err(error.into()),
                                (None, Some(ended), services, actor, id),
                            ));
                        }
                    }
                }
            },
        ))
    }

    /// The progress of syncs, from any replica: the latest run at once (when there is one),
    /// then each step of the running one. Admins only.
    async fn sync_progress(
        &self,
        ctx: &Context<'_>,
    ) -> Result<impl Stream<Item = Result<SyncProgress>> + use<>> {
        let actor = caller(ctx).actor()?.clone();
        live::follow_syncs(&actor)?;
        // Subscribe before reading the latest run, so no step falls between the two.
        let receiver = services(ctx).events.subscribe();
        let latest = sync::last(&services(ctx).db).await?.map(|run| {
            Ok(SyncProgress(Arc::new(events::SyncProgress {
                run,
                total: None,
            })))
        });
        let follower = Follower::Subscriber(ctx.data_opt::<AccessChanged>().cloned());
        let live = watch(receiver, actor, follower, |actor, event| match event {
            Event::Sync(progress) if live::sees_sync_progress(actor) => {
                Some(SyncProgress(progress.clone()))
            }
            _ => None,
        });
        Ok(futures_util::StreamExt::chain(
            futures_util::stream::iter(latest),
            live,
        ))
    }
}

/// The ids of the changes a resumed subscription sent lately: a change it hears both from the
/// feed and live, or again in a catch-up, goes out once. Bounded: the oldest are forgotten.
#[derive(Default)]
struct Seen {
    ids: HashSet<uuid::Uuid>,
    order: std::collections::VecDeque<uuid::Uuid>,
}

impl Seen {
    /// Duplicates come from the moment a replay and the live stream overlap, or from the
    /// two seconds before a cursor: a few thousand ids cover them.
    const MOST: usize = 4_096;

    /// Remembers `id`; false when it was remembered already.
    fn first_time(&mut self, id: uuid::Uuid) -> bool {
        if !self.ids.insert(id) {
            return false;
        }
        self.order.push_back(id);
        if self.order.len() > Self::MOST
            && let Some(oldest) = self.order.pop_front()
        {
            self.ids.remove(&oldest);
        }
        true
    }
}

/// A `userChanged` resumed from a cursor: the feed's changes, then live ones, caught up from
/// the feed again whenever live ones were missed.
struct Resume {
    receiver: broadcast::Receiver<Event>,
    actor: Actor,
    access: Option<AccessChanged>,
    db: sea_orm::DatabaseConnection,
    organisation_id: Option<uuid::Uuid>,
    queue: std::collections::VecDeque<Arc<events::UserChange>>,
    /// The feed still to read, a page at a time, before going on live.
    replay: Option<change_feed::Replay>,
    /// Live changes heard while replaying: sent after the replay, less those it sent.
    live: Vec<Arc<events::UserChange>>,
    /// The newest cursor sent.
    last: uuid::Uuid,
    seen: Seen,
    ended: bool,
}

impl Resume {
    async fn next(mut self) -> Option<(Result<UserChange>, Resume)> {
        if self.ended {
            return None;
        }
        loop {
            // Replayed changes are the past: they do not end the subscription, as a live change
            // to the subscriber's own access does.
            if let Some(change) = self.queue.pop_front() {
                if self.seen.first_time(change.id) {
                    self.last = self.last.max(change.id);
                    return Some((Ok(UserChange(change)), self));
                }
                continue;
            }
            if let Some(replay) = self.replay.take() {
                let page = replay
                    .next_page(&self.db, &self.actor, self.organisation_id, &self.seen.ids)
                    .await;
                match page {
                    Ok((changes, rest)) => {
                        self.queue.extend(changes);
                        self.replay = rest;
                        if self.replay.is_none() {
                            self.queue.extend(self.live.drain(..));
                        }
                    }
                    Err(error) => {
                        self.ended = true;
                        return Some((Err(error.into()), self));
                    }
                }
                // Live changes meanwhile wait on the bus; one that cannot wait is caught up
                // from the feed like any other missed change.
                if let Err(lost) = self.hear_waiting() {
                    return Some((Err(self.end(lost).into()), self));
                }
                continue;
            }
            let missed = match self.receiver.recv().await {
                Ok(Event::User(change)) => {
                    if let Some(lost) = live::follow_self(&mut self.actor, &change) {
                        return Some((Err(self.end(lost).into()), self));
                    }
                    if live::sees_user_change(&self.actor, &change, self.organisation_id) {
                        self.queue.push_back(change);
                    }
                    continue;
                }
                Ok(Event::Missed) | Err(RecvError::Lagged(_)) => true,
                Ok(_) => false,
                Err(RecvError::Closed) => return None,
            };
            if missed {
                match change_feed::Replay::after(self.last) {
                    Ok(replay) => self.replay = Some(replay),
                    Err(error) => {
                        self.ended = true;
                        return Some((Err(error.into()), self));
                    }
                }
            }
        }
    }

    /// Takes what the bus holds for this subscriber while it replays: changes it may see are
    /// kept for after the replay; a lag starts the replay again from the newest cursor sent.
    fn hear_waiting(&mut self) -> Result<(), AccessLost> {
        loop {
            match self.receiver.try_recv() {
                Ok(Event::User(change)) => {
                    if let Some(lost) = live::follow_self(&mut self.actor, &change) {
                        return Err(lost);
                    }
                    if live::sees_user_change(&self.actor, &change, self.organisation_id) {
                        self.live.push(change);
                    }
                    // A replay that has caught up hands them on at once.
                    if self.replay.is_none() {
                        self.queue.extend(self.live.drain(..));
                    }
                }
                Ok(Event::Missed) | Err(broadcast::error::TryRecvError::Lagged(_)) => {
                    self.live.clear();
                    if self.replay.is_none()
                        && let Ok(replay) = change_feed::Replay::after(self.last)
                    {
                        self.replay = Some(replay);
                    }
                }
                Ok(_) => {}
                Err(_) => return Ok(()),
            }
        }
    }

    fn end(&mut self, lost: AccessLost) -> AppError {
        self.ended = true;
        ended_by(lost, self.access.as_ref())
    }
}

/// How often a followed bulk job is read again.
const BULK_POLL: std::time::Duration = std::time::Duration::from_millis(200);

/// How long an organisation's dashboard waits after a change for the changes that come with
/// it (a bulk operation, a sync page), so that a burst is counted once.
const STATS_SETTLE: std::time::Duration = std::time::Duration::from_millis(250);

struct StatsWatch {
    receiver: broadcast::Receiver<Event>,
    actor: Actor,
    access: Option<AccessChanged>,
    db: sea_orm::DatabaseConnection,
    organisation_id: uuid::Uuid,
    first: Option<stats::OrganisationStats>,
    ended: bool,
}

/// What the dashboard's watch makes of an event.
enum Heard {
    Nothing,
    Change,
    AccessLost(AccessLost),
}

impl StatsWatch {
    async fn next(mut self) -> Option<(Result<OrganisationStats>, StatsWatch)> {
        if self.ended {
            return None;
        }
        if let Some(first) = self.first.take() {
            return Some((Ok(OrganisationStats(first)), self));
        }
        loop {
            let heard = match self.receiver.recv().await {
                Ok(event) => self.hear(&event),
                Err(RecvError::Lagged(_)) => Heard::Change,
                Err(RecvError::Closed) => return None,
            };
            match heard {
                Heard::Nothing => continue,
                Heard::AccessLost(lost) => return Some((Err(self.end(lost).into()), self)),
                Heard::Change => break,
            }
        }
        tokio::time::sleep(STATS_SETTLE).await;
        loop {
            let heard = match self.receiver.try_recv() {
                Ok(event) => self.hear(&event),
                Err(broadcast::error::TryRecvError::Lagged(_)) => Heard::Change,
                Err(_) => break,
            };
            if let Heard::AccessLost(lost) = heard {
                return Some((Err(self.end(lost).into()), self));
            }
        }
        let counted = stats::organisation(&self.db, &self.actor, self.organisation_id).await;
        if counted.is_err() {
            self.ended = true;
        }
        Some((counted.map(OrganisationStats).map_err(Into::into), self))
    }

    fn hear(&mut self, event: &Event) -> Heard {
        if let Event::User(change) = event
            && let Some(lost) = live::follow_self(&mut self.actor, change)
        {
            return Heard::AccessLost(lost);
        }
        if event.may_concern_organisation(self.organisation_id) {
            Heard::Change
        } else {
            Heard::Nothing
        }
    }

    fn end(&mut self, lost: AccessLost) -> AppError {
        self.ended = true;
        ended_by(lost, self.access.as_ref())
    }
}

/// Shared by a WebSocket and its operations: a subscription that ends because its subscriber
/// lost access sets the reason, and once its last message is out (`release`) the socket closes.
#[derive(Clone, Default)]
pub struct AccessChanged(Arc<AccessChangedInner>);

#[derive(Default)]
struct AccessChangedInner {
    reason: Mutex<Option<String>>,
    released: Notify,
}

impl AccessChanged {
    pub const ROLE_OR_ORGANISATION: &str = "your role or organisation changed; connect again";
    pub const REMOVED_OR_SUSPENDED: &str = "this account was removed or suspended";

    pub(super) fn set(&self, reason: &str) {
        let mut held = self
            .0
            .reason
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        held.get_or_insert_with(|| reason.to_owned());
    }

    fn reason(&self) -> Option<String> {
        self.0
            .reason
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// An operation has sent its last message: wakes `wait` if access was lost.
    pub fn release(&self) {
        if self.reason().is_some() {
            self.0.released.notify_one();
        }
    }

    /// Completes, with the reason, once an operation that lost access has finished.
    pub async fn wait(&self) -> String {
        loop {
            self.0.released.notified().await;
            if let Some(reason) = self.reason() {
                return reason;
            }
        }
    }
}

/// Given to a subscription resolved once for a group of subscribers (`fanout.rs`): it is shown
/// every change to a user before the change's payload goes out, and ends the membership of
/// each member whose own access the change alters.
#[derive(Clone)]
pub struct FollowMembers(pub Arc<dyn Fn(&events::UserChange) + Send + Sync>);

/// Who follows the subscriber's own row.
enum Follower {
    /// The stream itself, for its one subscriber; the socket's `AccessChanged`, when there is
    /// one.
    Subscriber(Option<AccessChanged>),
    /// The group this stream is resolved for: `actor` is only the scope its members share.
    Members(FollowMembers),
}

struct Watch<F> {
    receiver: broadcast::Receiver<Event>,
    actor: Actor,
    follower: Follower,
    select: F,
    ended: bool,
}

/// The events `select` picks for `actor`, until the stream must end: the subscriber fell
/// behind or events were lost (`EVENTS_MISSED`), or the subscriber was removed or suspended.
fn watch<T, F>(
    receiver: broadcast::Receiver<Event>,
    actor: Actor,
    follower: Follower,
    select: F,
) -> impl Stream<Item = Result<T>>
where
    T: Send + 'static,
    F: Fn(&Actor, &Event) -> Option<T> + Send + 'static,
{
    let state = Watch {
        receiver,
        actor,
        follower,
        select,
        ended: false,
    };
    futures_util::stream::unfold(state, |mut state| async move {
        if state.ended {
            return None;
        }
        loop {
            let event = match state.receiver.recv().await {
                Ok(event) => event,
                Err(RecvError::Closed) => return None,
                Err(RecvError::Lagged(missed)) => {
                    state.ended = true;
                    return Some((Err(fell_behind(missed).into()), state));
                }
            };
            if let Event::Missed = event {
                state.ended = true;
                let error = AppError::EventsMissed(
                    "the server lost its connection to the event stream, so changes may have been missed; reload and subscribe again".to_owned(),
                );
                return Some((Err(error.into()), state));
            }
            if let Event::User(change) = &event {
                match &state.follower {
                    Follower::Members(members) => (members.0)(change),
                    Follower::Subscriber(access) => {
                        if let Some(lost) = live::follow_self(&mut state.actor, change) {
                            state.ended = true;
                            let ended = ended_by(lost, access.as_ref());
                            return Some((Err(ended.into()), state));
                        }
                    }
                }
            }
            if let Some(item) = (state.select)(&state.actor, &event) {
                return Some((Ok(item), state));
            }
        }
    })
}

/// The error that ends a subscription whose subscriber's access changed, and the reason the
/// socket closes with.
pub(super) fn access_lost(lost: AccessLost) -> (AppError, &'static str) {
    match lost {
        AccessLost::RemovedOrSuspended => (
            AppError::Unauthenticated(
                "your account was removed or suspended; the subscription has ended".to_owned(),
            ),
            AccessChanged::REMOVED_OR_SUSPENDED,
        ),
        AccessLost::RoleOrOrganisation => (
            AppError::Forbidden(
                "your role or organisation changed; the subscription has ended: subscribe again"
                    .to_owned(),
            ),
            AccessChanged::ROLE_OR_ORGANISATION,
        ),
    }
}

/// The error that ends a subscription whose subscriber lost access; the socket, when there is
/// one, is told why.
fn ended_by(lost: AccessLost, access: Option<&AccessChanged>) -> AppError {
    let (ended, reason) = access_lost(lost);
    if let Some(access) = access {
        access.set(reason);
    }
    ended
}

/// The error that ends a subscriber who fell behind.
pub(super) fn fell_behind(missed: u64) -> AppError {
    AppError::EventsMissed(format!(
        "this subscriber fell {missed} events behind and was not sent them; reload and subscribe again"
    ))
}
