//! The bus across replicas: `NOTIFY` inside the writing transaction, `LISTEN` on one connection
//! per replica.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use entity::user;
use sea_orm::sqlx::postgres::{PgListener, PgPoolOptions};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait, Statement};
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, oneshot};
use uuid::Uuid;

use super::{ChangeKind, Event, RecordChange, SyncProgress, Touch, UserChange, Versions};

const CHANNEL: &str = "userhub_events";
/// PostgreSQL refuses a payload of 8000 bytes or more. A change too large to carry its user
/// carries the id, and each replica reads the row.
const MAX_PAYLOAD_BYTES: usize = 7900;

#[derive(Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
enum Wire {
    User(UserWire),
    Sync(SyncProgress),
    Record(RecordChange),
}

#[derive(Serialize, Deserialize)]
struct UserWire {
    #[serde(default)]
    id: Uuid,
    kind: ChangeKind,
    user_id: Uuid,
    user: Option<user::Model>,
    previous_organisation_id: Option<Uuid>,
    source: String,
    occurred_at: DateTime<Utc>,
}

fn encode(wire: &Wire) -> String {
    // These types serialise infallibly (no maps with non-string keys, no custom impls).
    serde_json::to_string(wire).unwrap_or_default()
}

pub(super) fn user_payload(change: &UserChange) -> String {
    let mut wire = UserWire {
        id: change.id,
        kind: change.kind,
        user_id: change.user.id,
        user: Some(change.user.clone()),
        previous_organisation_id: change.previous_organisation_id,
        source: change.source.clone(),
        occurred_at: change.occurred_at,
    };
    let payload = encode(&Wire::User(wire));
    if payload.len() <= MAX_PAYLOAD_BYTES {
        return payload;
    }
    wire = match serde_json::from_str::<Wire>(&payload) {
        Ok(Wire::User(wire)) => wire,
        _ => return String::new(),
    };
    wire.user = None;
    encode(&Wire::User(wire))
}

pub(super) fn record_payload(change: &RecordChange) -> String {
    encode(&Wire::Record(*change))
}

pub(super) fn sync_payload(progress: &SyncProgress) -> String {
    let mut progress = progress.clone();
    if let Some(error) = &mut progress.run.error {
        error.truncate(error.floor_char_boundary(1000));
    }
    encode(&Wire::Sync(progress))
}

/// Sends the payloads in one statement, on `conn`: inside a transaction they are delivered
/// when it commits, and not at all when it rolls back.
pub(super) async fn notify<C: ConnectionTrait>(
    conn: &C,
    payloads: impl Iterator<Item = String>,
) -> Result<(), DbErr> {
    let payloads: Vec<String> = payloads.filter(|payload| !payload.is_empty()).collect();
    if payloads.is_empty() {
        return Ok(());
    }
    let array = serde_json::to_string(&payloads).map_err(|err| DbErr::Custom(err.to_string()))?;
    conn.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT pg_notify($1, payload) FROM json_array_elements_text($2::json) AS payload",
        [CHANNEL.into(), array.into()],
    ))
    .await?;
    Ok(())
}

async fn connect(url: &str) -> Result<PgListener, sea_orm::sqlx::Error> {
    // `PgListener::connect` waits up to 30 s for a connection, with back-offs growing to 6 s;
    // a bounded wait lets the replica listen again within a moment of PostgreSQL's return.
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .max_lifetime(None)
        .idle_timeout(None)
        .acquire_timeout(Duration::from_secs(2))
        .connect(url)
        .await?;
    let mut listener = PgListener::connect_with(&pool).await?;
    listener.ignore_pool_close_event(true);
    // Otherwise a lost connection is made again inside `try_recv`, unseen, for as long as
    // PostgreSQL is away; `run` makes it again itself and knows when it is deaf.
    listener.eager_reconnect(false);
    listener.listen(CHANNEL).await?;
    Ok(listener)
}

/// Listens on this replica's connection and hands what arrives to `local`. Returns once the
/// `LISTEN` is in place; the task stops when the returned sender is dropped. `listening` says
/// whether the connection is up.
pub(super) async fn listen(
    url: &str,
    db: DatabaseConnection,
    local: broadcast::Sender<Event>,
    listening: Arc<AtomicBool>,
    versions: Arc<Versions>,
) -> Result<oneshot::Sender<()>, DbErr> {
    let listener = connect(url)
        .await
        .map_err(|err| DbErr::Custom(format!("cannot LISTEN for change events: {err}")))?;
    listening.store(true, Ordering::Release);
    let (stop, stopped) = oneshot::channel::<()>();
    let heard = Heard {
        local,
        listening,
        versions,
    };
    tokio::spawn(run(url.to_owned(), listener, db, heard, stopped));
    Ok(stop)
}

/// Connection attempts back off to this: refused connections cost little, and every second
/// the replica is deaf is a second of changes its subscribers are told they missed.
const MAX_RECONNECT_WAIT: Duration = Duration::from_secs(1);

/// Where a replica's listener hands what it hears.
struct Heard {
    local: broadcast::Sender<Event>,
    listening: Arc<AtomicBool>,
    /// `EventBus::version`: advanced by every event, and by every loss of the stream.
    versions: Arc<Versions>,
}

impl Heard {
    fn send(&self, event: Event) {
        self.versions.hear(&self.local, event);
    }
}

async fn run(
    url: String,
    mut listener: PgListener,
    db: DatabaseConnection,
    heard: Heard,
    mut stopped: oneshot::Receiver<()>,
) {
    loop {
        let received = tokio::select! {
            _ = &mut stopped => return,
            received = listener.try_recv() => received,
        };
        let lost = match received {
            Ok(Some(notification)) => {
                deliver(&db, &heard, notification.payload()).await;
                continue;
            }
            Ok(None) => "the connection was closed".to_owned(),
            Err(err) => err.to_string(),
        };
        heard.listening.store(false, Ordering::Release);
        tracing::warn!(error = %lost, "the change-event connection to PostgreSQL was lost; reconnecting, and telling live subscribers they may have missed events");
        heard.send(Event::Missed);
        let mut wait = Duration::from_millis(100);
        listener = loop {
            tokio::select! {
                _ = &mut stopped => return,
                () = tokio::time::sleep(wait) => {}
            }
            match connect(&url).await {
                Ok(listener) => break listener,
                Err(err) => {
                    tracing::warn!(error = %err, "cannot LISTEN for change events yet");
                    wait = (wait * 2).min(MAX_RECONNECT_WAIT);
                }
            }
        };
        // Changes committed while the connection was down were never heard; a subscriber that
        // came since is told so too, before the replica says it listens again.
        heard.send(Event::Missed);
        heard.listening.store(true, Ordering::Release);
        tracing::info!("listening for change events again");
    }
}

async fn deliver(db: &DatabaseConnection, heard: &Heard, payload: &str) {
    let wire: Wire = match serde_json::from_str(payload) {
        Ok(wire) => wire,
        Err(err) => {
            tracing::warn!(error = %err, "ignored a change event this version cannot read");
            return;
        }
    };
    let event = match wire {
        Wire::Sync(progress) => Event::Sync(Arc::new(progress)),
        Wire::Record(change) => Event::Record(change),
        Wire::User(wire) => {
            let user = match wire.user {
                Some(user) => user,
                None => match user::Entity::find_by_id(wire.user_id).one(db).await {
                    Ok(Some(user)) => user,
                    Ok(None) => {
                        // Where the user was is unknown: every kept answer may be stale.
                        heard.versions.advance(Touch::Everything);
                        return;
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, "cannot read the user of a change event");
                        heard.send(Event::Missed);
                        return;
                    }
                },
            };
            Event::User(Arc::new(UserChange {
                id: wire.id,
                kind: wire.kind,
                user,
                previous_organisation_id: wire.previous_organisation_id,
                source: wire.source,
                occurred_at: wire.occurred_at,
            }))
        }
    };
    heard.send(event);
}
