//! The root `Subscription` type: live changes from the event bus (`events`), filtered to what
//! the subscriber may see.
//!
//! A subscription watches its own subscriber too: when a change removes or suspends them it
//! ends, and when it changes their role or organisation what they see follows.

use std::sync::Arc;

use async_graphql::{Context, ID, Result, Subscription as SubscriptionObject};
use futures_util::Stream;
use sea_orm::DatabaseConnection;
use tokio::sync::broadcast::{self, error::RecvError};

use super::caller;
use super::types::{SyncProgress, UserChange};
use crate::auth::Actor;
use crate::error::AppError;
use crate::events::{self, Event, EventBus};
use crate::service::{parse_id, sync};

#[derive(Default)]
pub struct Subscription;

#[SubscriptionObject]
impl Subscription {
    /// Every change to a user the caller may read, as it commits on any replica: in
    /// `organisationId` when given (a user leaving it included). Organisation admins and
    /// members follow their own organisation; admins follow everyone. Ends with
    /// `EVENTS_MISSED` when this subscriber fell too far behind to be sent every change.
    async fn user_changed(
        &self,
        ctx: &Context<'_>,
        organisation_id: Option<ID>,
    ) -> Result<impl Stream<Item = Result<UserChange>> + use<>> {
        let actor = caller(ctx).actor()?.clone();
        let organisation_id = organisation_id
            .map(|id| parse_id("organisationId", &id))
            .transpose()?;
        if let Some(id) = organisation_id {
            actor.require_organisation_readable(id)?;
        }
        let receiver = ctx.data_unchecked::<EventBus>().subscribe();
        Ok(watch(receiver, actor, move |actor, event| match event {
            Event::User(change)
                if actor.may_see_change(change)
                    && organisation_id.is_none_or(|id| change.concerns_organisation(id)) =>
            {
                Some(UserChange(change.clone()))
            }
            _ => None,
        }))
    }

    /// The progress of syncs, from any replica: the latest run at once (when there is one),
    /// then each step of the running one. Admins only.
    async fn sync_progress(
        &self,
        ctx: &Context<'_>,
    ) -> Result<impl Stream<Item = Result<SyncProgress>> + use<>> {
        let actor = caller(ctx).actor()?.clone();
        actor.require_admin()?;
        // Subscribe before reading the latest run, so no step falls between the two.
        let receiver = ctx.data_unchecked::<EventBus>().subscribe();
        let latest = sync::last(ctx.data_unchecked::<DatabaseConnection>())
            .await?
            .map(|run| {
                Ok(SyncProgress(Arc::new(events::SyncProgress {
                    run,
                    total: None,
                })))
            });
        let live = watch(receiver, actor, |actor, event| match event {
            Event::Sync(progress) if actor.is_admin() => Some(SyncProgress(progress.clone())),
            _ => None,
        });
        Ok(futures_util::StreamExt::chain(
            futures_util::stream::iter(latest),
            live,
        ))
    }
}

struct Watch<F> {
    receiver: broadcast::Receiver<Event>,
    actor: Actor,
    select: F,
    ended: bool,
}

/// The events `select` picks for `actor`, until the stream must end: the subscriber fell
/// behind or events were lost (`EVENTS_MISSED`), or the subscriber was removed or suspended.
fn watch<T, F>(
    receiver: broadcast::Receiver<Event>,
    actor: Actor,
    select: F,
) -> impl Stream<Item = Result<T>>
where
    T: Send + 'static,
    F: Fn(&Actor, &Event) -> Option<T> + Send + 'static,
{
    let state = Watch {
        receiver,
        actor,
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
                    let error = AppError::EventsMissed(format!(
                        "this subscriber fell {missed} events behind and was not sent them; reload and subscribe again"
                    ));
                    return Some((Err(error.into()), state));
                }
            };
            if let Event::Missed = event {
                state.ended = true;
                let error = AppError::EventsMissed(
                    "the server lost its connection to the event stream, so changes may have been missed; reload and subscribe again".to_owned(),
                );
                return Some((Err(error.into()), state));
            }
            if let Event::User(change) = &event
                && let Some(ended) = follow_subscriber(&mut state.actor, change)
            {
                state.ended = true;
                return Some((Err(ended.into()), state));
            }
            if let Some(item) = (state.select)(&state.actor, &event) {
                return Some((Ok(item), state));
            }
        }
    })
}

/// Keeps the subscriber's own row current; an error when the change takes their access away.
fn follow_subscriber(actor: &mut Actor, change: &events::UserChange) -> Option<AppError> {
    if change.user.id != actor.user.id {
        return None;
    }
    if !change.user.is_active || change.user.banned {
        return Some(AppError::Unauthenticated(
            "your account was removed or suspended; the subscription has ended".to_owned(),
        ));
    }
    actor.user = change.user.clone();
    None
}
