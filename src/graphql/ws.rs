//! GraphQL over WebSocket with the `graphql-transport-ws` protocol (graphql-ws), written to the
//! protocol's letter, close codes included: async-graphql's own handler closes with 1002 and
//! 1011 where the protocol says 4400 and 4401, never times out `connection_init` (4408) and
//! silently replaces a duplicate subscription id (4409).
//!
//! The legacy `graphql-ws` subprotocol of subscriptions-transport-ws (Apollo's old client) is
//! spoken too, mapped onto the same operations: `start`/`stop` for `subscribe`/`complete`,
//! `data` for `next`, `connection_error` for a refused `connection_init`, `ka` keep-alives.
//!
//! The caller authenticates in `connection_init` (`{"authorization": "Bearer ..."}`, any case
//! of the key) or else with the `__session` cookie of the upgrade request, which a browser
//! sends from any page: the cookie counts only from the server's own origin and the allowed
//! browser origins (`Config::browser_origins`), so another site cannot open a socket as its
//! visitor. Refused credentials close the socket with 4403.
//!
//! A socket outlives its credentials' check, so every operation acts for the caller as the
//! database says now: each `subscribe` authenticates the token again (the verified-token cache
//! makes that one read of the user, or none while nothing has committed since it was read),
//! and a caller whose role or organisation changed, or who was removed or suspended, is
//! refused and the socket closed with 4403; so is a socket whose token expires. A running subscription that sees such a change to its own subscriber ends,
//! and the socket closes after its last message.
//!
//! Everything a socket holds is bounded (`Config`): operations running at once, operations
//! started a minute, the lifetime of an anonymous socket, and sockets per client.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use futures_util::stream::BoxStream;
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::Instrument;

use super::GraphqlState;
use super::RequestId;
use super::cache::Key;
use super::errors::{never_ran, stamp_request_id};
use super::fanout::{GroupKey, Membership, Subscriber, frame_start, framed, payload_of};
use super::http::request_id;
use super::subscription::AccessChanged;
use crate::auth::Caller;
use crate::auth::caller::{bearer_token, session_token};
use crate::error::{AppError, json_error};
use crate::service::freshness::{Footprint, Stamp};

pub const PROTOCOL: &str = "graphql-transport-ws";
/// subscriptions-transport-ws, which named its protocol `graphql-ws`.
pub const LEGACY_PROTOCOL: &str = "graphql-ws";
/// How often the legacy protocol's keep-alive (`ka`) goes out.
const LEGACY_KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The close codes of the protocol.
pub mod close {
    pub const BAD_REQUEST: u16 = 4400;
    pub const UNAUTHORIZED: u16 = 4401;
    pub const FORBIDDEN: u16 = 4403;
    pub const SUBPROTOCOL_NOT_ACCEPTABLE: u16 = 4406;
    pub const INIT_TIMEOUT: u16 = 4408;
    pub const SUBSCRIBER_EXISTS: u16 = 4409;
    pub const TOO_MANY_INIT_REQUESTS: u16 = 4429;
}

/// The WebSockets open per client, for `USERHUB_WS_MAX_CONNECTIONS_PER_CLIENT`.
#[derive(Default)]
pub struct OpenSockets {
    clients: Mutex<HashMap<IpAddr, usize>>,
}

/// One open socket of a client; dropping it counts it closed.
struct SocketSlot {
    sockets: Arc<OpenSockets>,
    client: IpAddr,
}

impl OpenSockets {
    fn open(self: &Arc<Self>, client: IpAddr, limit: usize) -> Option<SocketSlot> {
        let mut clients = self
            .clients
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let open = clients.entry(client).or_insert(0);
        if *open >= limit {
            return None;
        }
        *open += 1;
        Some(SocketSlot {
            sockets: self.clone(),
            client,
        })
    }
}

impl Drop for SocketSlot {
    fn drop(&mut self) {
        let mut clients = self
            .sockets
            .clients
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(open) = clients.get_mut(&self.client) {
            *open -= 1;
            if *open == 0 {
                clients.remove(&self.client);
            }
        }
    }
}

/// Whether a browser page of `Origin` may use the `__session` cookie: no `Origin` (not a
/// browser), the server's own origin (its `Host`), or an allowed browser origin.
fn cookie_allowed_from(headers: &HeaderMap, allowed: &[String]) -> Result<(), String> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let origin = origin.to_str().unwrap_or_default().trim_end_matches('/');
    let host = headers
        .get(header::HOST)
        .and_then(|host| host.to_str().ok())
        .unwrap_or_default();
    let own = origin
        .split_once("://")
        .is_some_and(|(_, authority)| !host.is_empty() && authority.eq_ignore_ascii_case(host));
    if own
        || allowed
            .iter()
            .any(|allowed| allowed.eq_ignore_ascii_case(origin))
    {
        Ok(())
    } else {
        Err(origin.to_owned())
    }
}

/// Upgrades `GET /graphql` to a WebSocket speaking graphql-transport-ws.
pub fn upgrade(
    upgrade: WebSocketUpgrade,
    headers: &HeaderMap,
    peer: Option<SocketAddr>,
    state: GraphqlState,
) -> Response {
    let limit = state.config.ws_max_connections_per_client;
    let slot = match crate::rate_limit::client_of(headers, peer, state.config.proxy_hops()) {
        Some(client) if limit > 0 && !state.is_local_mode() => {
            match state.sockets.open(client, limit) {
                Some(slot) => Some(slot),
                None => {
                    return json_error(
                        StatusCode::TOO_MANY_REQUESTS,
                        "RATE_LIMITED",
                        format!("this client already has {limit} WebSockets open: close one first"),
                    );
                }
            }
        }
        _ => None,
    };
    // tungstenite's default buffers are 128 KiB each way, and the read buffer is allocated
    // per connection for its lifetime: most of the memory of an idle subscriber. A client's
    // messages are small (`connection_init`, `subscribe`, `ping`); a larger one still works,
    // the buffer grows for it. The write buffer is only a threshold: what is written is
    // allocated as it is sent.
    let upgrade = upgrade
        .protocols([PROTOCOL, LEGACY_PROTOCOL])
        .read_buffer_size(1024)
        .write_buffer_size(4 * 1024)
        .max_message_size(state.config.max_body_bytes);
    // Set only when the client offered one of the protocols.
    let selected = upgrade
        .selected_protocol()
        .and_then(|protocol| protocol.to_str().ok())
        .map(str::to_owned);
    // A bearer header is not something another site's page can make a browser send.
    let cookie_token = match cookie_allowed_from(headers, &state.config.browser_origins()) {
        Ok(()) => session_token(headers).map(CookieToken::Usable),
        Err(origin) => session_token(headers).map(|_| CookieToken::FromForeignOrigin(origin)),
    };
    let upgrade_id = request_id(headers).unwrap_or_else(|| "ws".to_owned());
    // The connection outlives the upgrade's response; its log lines still name the request.
    let span = tracing::Span::current();
    let connection = move |socket: WebSocket| async move {
        let _slot = slot;
        if let Some(protocol) = selected {
            let legacy = protocol == LEGACY_PROTOCOL;
            Connection::new(state, cookie_token, legacy, upgrade_id)
                .run(socket)
                .await;
        } else {
            let mut socket = socket;
            let _ = socket
                .send(close_message(
                    close::SUBPROTOCOL_NOT_ACCEPTABLE,
                    "Subprotocol not acceptable: speak graphql-transport-ws (or legacy graphql-ws)",
                ))
                .await;
        }
    };
    upgrade.on_upgrade(move |socket| connection(socket).instrument(span))
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ClientMessage {
    ConnectionInit {
        #[serde(default)]
        payload: Option<Value>,
    },
    Ping {
        #[serde(default)]
        payload: Option<Value>,
    },
    Pong,
    Subscribe {
        id: String,
        payload: SubscribePayload,
    },
    Complete {
        id: String,
    },
}

/// The legacy protocol's client messages.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum LegacyClientMessage {
    ConnectionInit {
        #[serde(default)]
        payload: Option<Value>,
    },
    Start {
        id: String,
        payload: SubscribePayload,
    },
    Stop {
        id: String,
    },
    ConnectionTerminate,
}

impl LegacyClientMessage {
    /// The same request in the current protocol's terms; `None` for `connection_terminate`.
    fn into_current(self) -> Option<ClientMessage> {
        match self {
            LegacyClientMessage::ConnectionInit { payload } => {
                Some(ClientMessage::ConnectionInit { payload })
            }
            LegacyClientMessage::Start { id, payload } => {
                Some(ClientMessage::Subscribe { id, payload })
            }
            LegacyClientMessage::Stop { id } => Some(ClientMessage::Complete { id }),
            LegacyClientMessage::ConnectionTerminate => None,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SubscribePayload {
    query: String,
    #[serde(default)]
    operation_name: Option<String>,
    #[serde(default)]
    variables: Option<Value>,
    #[serde(default)]
    extensions: Option<Value>,
}

/// A close frame. Its reason must fit a control frame (123 bytes after the code), so a long
/// one is cut at a character boundary.
fn close_message(code: u16, reason: &str) -> Message {
    const MAX_REASON_BYTES: usize = 123;
    let end = reason.floor_char_boundary(MAX_REASON_BYTES);
    Message::Close(Some(CloseFrame {
        code,
        reason: Utf8Bytes::from(&reason[..end]),
    }))
}

fn text(value: Value) -> Message {
    Message::Text(Utf8Bytes::from(value.to_string()))
}

/// The `__session` cookie of the upgrade request.
enum CookieToken {
    Usable(String),
    /// Sent by a page of another origin, which may not act with it.
    FromForeignOrigin(String),
}

struct Connection {
    state: GraphqlState,
    /// The upgrade's request id: an operation's is this and its own id.
    upgrade_id: String,
    cookie_token: Option<CookieToken>,
    /// Speaking subscriptions-transport-ws's `graphql-ws`.
    legacy: bool,
    init_received: bool,
    caller: Option<Caller>,
    /// The credential the caller signed in with, checked again at every operation.
    token: Option<String>,
    /// When the token expires: the socket closes then.
    expires_at: Option<tokio::time::Instant>,
    /// When an anonymous socket closes.
    anonymous_until: Option<tokio::time::Instant>,
    operations: HashMap<String, Operation>,
    /// Operations started recently, for `USERHUB_WS_OPERATIONS_PER_MINUTE`.
    budget: Option<OperationBudget>,
    /// A subscription sets this when its subscriber lost access; the socket then closes.
    access_changed: AccessChanged,
}

/// A running operation of a socket.
enum Operation {
    /// Run for this socket alone: a query, a mutation, a subscription no one shares.
    Alone(JoinHandle<()>),
    /// A member of a shared subscription (`fanout.rs`).
    Shared(Membership),
}

impl Operation {
    fn is_finished(&self) -> bool {
        match self {
            Operation::Alone(task) => task.is_finished(),
            Operation::Shared(membership) => membership.is_finished(),
        }
    }

    /// Stops it; nothing more is sent for it.
    fn stop(self) {
        match self {
            Operation::Alone(task) => task.abort(),
            Operation::Shared(membership) => drop(membership),
        }
    }
}

/// A token bucket of operations for one socket.
struct OperationBudget {
    tokens: f64,
    burst: f64,
    per_second: f64,
    updated: std::time::Instant,
}

impl OperationBudget {
    fn new(per_minute: u32, burst: u32) -> Option<OperationBudget> {
        (per_minute > 0).then(|| OperationBudget {
            tokens: f64::from(burst.max(1)),
            burst: f64::from(burst.max(1)),
            per_second: f64::from(per_minute) / 60.0,
            updated: std::time::Instant::now(),
        })
    }

    /// Takes one, or says how many seconds until one is there.
    fn take(&mut self) -> Result<(), u64> {
        let now = std::time::Instant::now();
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.burst);
        self.updated = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - self.tokens) / self.per_second).ceil().max(1.0) as u64)
        }
    }
}

/// Whether two views of one user grant the same access.
fn same_access(held: &Caller, now: &Caller) -> bool {
    match (held, now) {
        (Caller::User(held), Caller::User(now)) => {
            held.user.id == now.user.id
                && held.user.role == now.user.role
                && held.user.organisation_id == now.user.organisation_id
        }
        (Caller::Anonymous, Caller::Anonymous) => true,
        _ => false,
    }
}

/// A moment given in Unix seconds, on tokio's clock.
fn instant_of(unix_seconds: u64) -> tokio::time::Instant {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    tokio::time::Instant::now() + Duration::from_secs(unix_seconds.saturating_sub(now))
}

async fn sleep_until_some(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// Why the connection ends.
struct Close(u16, String);

impl Connection {
    fn new(
        state: GraphqlState,
        cookie_token: Option<CookieToken>,
        legacy: bool,
        upgrade_id: String,
    ) -> Connection {
        // Local mode is one person on loopback, as for the HTTP limits.
        let budget = if state.is_local_mode() {
            None
        } else {
            OperationBudget::new(
                state.config.ws_operations_per_minute,
                state.config.ws_operations_burst,
            )
        };
        Connection {
            state,
            upgrade_id,
            cookie_token,
            legacy,
            init_received: false,
            caller: None,
            token: None,
            expires_at: None,
            anonymous_until: None,
            operations: HashMap::new(),
            budget,
            access_changed: AccessChanged::default(),
        }
    }

    async fn run(mut self, socket: WebSocket) {
        let metrics = self.state.metrics.clone();
        let _open = crate::metrics::GaugeGuard::hold(&metrics.websocket_connections);
        let (mut sink, mut incoming) = socket.split();
        // Operations write here; one task owns the socket's sending half.
        let (outgoing, mut to_send) = mpsc::channel::<Message>(64);
        let writer = tokio::spawn(async move {
            while let Some(message) = to_send.recv().await {
                let closing = matches!(message, Message::Close(_));
                if sink.send(message).await.is_err() || closing {
                    break;
                }
            }
            let _ = sink.close().await;
        });

        let init_timeout =
            tokio::time::sleep(Duration::from_millis(self.state.config.ws_init_timeout_ms));
        tokio::pin!(init_timeout);
        let mut keep_alive = tokio::time::interval(LEGACY_KEEP_ALIVE);
        let close = loop {
            tokio::select! {
                () = &mut init_timeout, if !self.init_received => {
                    break Some(Close(close::INIT_TIMEOUT, "Connection initialisation timeout".to_owned()));
                }
                () = sleep_until_some(self.expires_at) => {
                    break Some(Close(close::FORBIDDEN, "Forbidden: the session token has expired; connect again with a fresh one".to_owned()));
                }
                () = sleep_until_some(self.anonymous_until) => {
                    break Some(Close(close::UNAUTHORIZED, "Unauthorized: an anonymous socket sees no data and closes; sign in".to_owned()));
                }
                reason = self.access_changed.wait() => {
                    break Some(Close(close::FORBIDDEN, format!("Forbidden: {reason}")));
                }
                _ = keep_alive.tick(), if self.legacy && self.caller.is_some() => {
                    send(&outgoing, json!({ "type": "ka" })).await;
                }
                message = incoming.next() => {
                    let Some(Ok(message)) = message else { break None };
                    let text = match message {
                        Message::Text(text) => text,
                        Message::Binary(_) => {
                            break Some(Close(close::BAD_REQUEST, "Binary messages are not part of the protocol".to_owned()));
                        }
                        Message::Close(_) => break None,
                        Message::Ping(_) | Message::Pong(_) => continue,
                    };
                    // Boxed: handling a message (authenticating, preparing an operation) takes
                    // kilobytes of state that an idle socket's task need not hold.
                    match Box::pin(self.handle(text.as_str(), &outgoing)).await {
                        Ok(()) => {}
                        Err(close) => break Some(close),
                    }
                }
            }
        };
        for (_, operation) in self.operations.drain() {
            operation.stop();
        }
        if let Some(Close(code, reason)) = close {
            let _ = outgoing.send(close_message(code, &reason)).await;
        }
        drop(outgoing);
        let _ = writer.await;
    }

    async fn handle(&mut self, text: &str, outgoing: &mpsc::Sender<Message>) -> Result<(), Close> {
        let invalid = |err: serde_json::Error| {
            Close(
                close::BAD_REQUEST,
                format!("Invalid message received: {err}"),
            )
        };
        let message: ClientMessage = if self.legacy {
            match serde_json::from_str::<LegacyClientMessage>(text)
                .map_err(invalid)?
                .into_current()
            {
                Some(message) => message,
                None => return Err(Close(1000, "Normal closure".to_owned())),
            }
        } else {
            serde_json::from_str(text).map_err(invalid)?
        };
        match message {
            ClientMessage::ConnectionInit { payload } => {
                if self.init_received {
                    return Err(Close(
                        close::TOO_MANY_INIT_REQUESTS,
                        "Too many initialisation requests".to_owned(),
                    ));
                }
                self.init_received = true;
                let token = match &payload {
                    None | Some(Value::Null) => None,
                    Some(Value::Object(fields)) => fields
                        .iter()
                        .find(|(key, _)| key.eq_ignore_ascii_case("authorization"))
                        .and_then(|(_, value)| value.as_str())
                        .map(|value| {
                            bearer_token(value).ok_or_else(|| {
                                Close(
                                    close::FORBIDDEN,
                                    "Forbidden: the authorization is not `Bearer <token>`"
                                        .to_owned(),
                                )
                            })
                        })
                        .transpose()?,
                    Some(_) => {
                        return Err(Close(close::BAD_REQUEST, "Invalid message received: the connection_init payload must be an object".to_owned()));
                    }
                };
                let token = match (token, self.cookie_token.take()) {
                    (Some(token), _) => Some(token),
                    (None, Some(CookieToken::Usable(token))) => Some(token),
                    (None, Some(CookieToken::FromForeignOrigin(origin))) => {
                        return Err(Close(
                            close::FORBIDDEN,
                            format!(
                                "Forbidden: the session cookie is not accepted from {origin}; send the token in connection_init"
                            ),
                        ));
                    }
                    (None, None) => None,
                };
                // As of a stamp taken first, as over HTTP: while nothing has committed since,
                // the caller's row is the one remembered (`cache.rs`), and a reconnecting
                // crowd costs no read each.
                let stamp = self.state.cache.stamp().await;
                let session = self
                    .state
                    .auth
                    .authenticate_session_at(token.as_deref(), stamp.as_ref())
                    .await;
                let caller = match session {
                    Ok((caller, expires_at)) => {
                        self.expires_at = expires_at.map(instant_of);
                        caller
                    }
                    Err(err) => {
                        err.log_if_server_fault();
                        if self.legacy {
                            send(
                                outgoing,
                                json!({ "type": "connection_error", "payload": { "message": err.public_message(), "extensions": { "code": err.code() } } }),
                            )
                            .await;
                        }
                        return Err(Close(
                            close::FORBIDDEN,
                            format!("Forbidden: {}", err.public_message()),
                        ));
                    }
                };
                if matches!(caller, Caller::Anonymous) {
                    self.anonymous_until = Some(
                        tokio::time::Instant::now()
                            + Duration::from_secs(self.state.config.ws_anonymous_seconds),
                    );
                }
                self.caller = Some(caller);
                self.token = token;
                send(outgoing, json!({ "type": "connection_ack" })).await;
            }
            ClientMessage::Ping { payload } => {
                let mut pong = json!({ "type": "pong" });
                if let Some(payload) = payload {
                    pong["payload"] = payload;
                }
                send(outgoing, pong).await;
            }
            ClientMessage::Pong => {}
            ClientMessage::Subscribe { id, payload } => {
                if self.caller.is_none() {
                    return Err(Close(close::UNAUTHORIZED, "Unauthorized".to_owned()));
                }
                if self.legacy {
                    // subscriptions-transport-ws reuses an id once its operation has ended,
                    // and a `start` with a live id restarts it.
                    if let Some(operation) = self.operations.remove(&id) {
                        operation.stop();
                    }
                }
                if id.is_empty() {
                    return Err(Close(
                        close::BAD_REQUEST,
                        "Invalid message received: the id is empty".to_owned(),
                    ));
                }
                if self
                    .operations
                    .get(&id)
                    .is_some_and(|operation| !operation.is_finished())
                {
                    return Err(Close(
                        close::SUBSCRIBER_EXISTS,
                        format!("Subscriber for {id} already exists"),
                    ));
                }
                // Finished operations leave the map, so it holds only what is running.
                self.operations
                    .retain(|_, operation| !operation.is_finished());
                let request_id = format!("{}:{id}", self.upgrade_id);
                if let Some(refusal) = self.refuse_over_limits() {
                    send(
                        outgoing,
                        json!({ "id": id, "type": "error", "payload": [{
                            "message": refusal,
                            "extensions": { "code": "RATE_LIMITED", "requestId": request_id },
                        }] }),
                    )
                    .await;
                    return Ok(());
                }
                // Taken before the caller is read, as over HTTP: a kept answer is reused only
                // while nothing has committed since (`cache.rs`).
                let stamp = self.state.cache.stamp().await;
                let caller = match self.caller_now(stamp.as_ref()).await {
                    Ok(caller) => caller,
                    Err(Refusal::Close(close)) => return Err(close),
                    Err(Refusal::Operation(err)) => {
                        err.log_if_server_fault();
                        send(
                            outgoing,
                            json!({ "id": id, "type": "error", "payload": [{
                                "message": err.public_message(),
                                "extensions": { "code": err.code(), "requestId": request_id },
                            }] }),
                        )
                        .await;
                        return Ok(());
                    }
                };
                // Extensions are not part of a shared subscription's key: a subscription sent
                // with any runs alone.
                let has_extensions = matches!(&payload.extensions, Some(Value::Object(fields)) if !fields.is_empty());
                let mut request = async_graphql::Request::new(payload.query);
                request.operation_name = payload.operation_name;
                if let Some(variables) = payload.variables {
                    request.variables = async_graphql::Variables::from_json(variables);
                }
                if let Some(Value::Object(extensions)) = payload.extensions {
                    for (key, value) in extensions {
                        if let Ok(value) = async_graphql::Value::from_json(value) {
                            request.extensions.insert(key, value);
                        }
                    }
                }
                let kept_as = stamp.and_then(|stamp| Some((Key::of(&request, &caller)?, stamp)));
                if let Some((key, stamp)) = &kept_as
                    && let Some(answer) = self.state.cache.get(key, stamp)
                {
                    let next = if self.legacy { "data" } else { "next" };
                    let _ = outgoing.send(frame(&id, next, &answer.body)).await;
                    send(outgoing, json!({ "id": id, "type": "complete" })).await;
                    return Ok(());
                }
                let operation_name = request.operation_name.clone();
                // As the cache's key writes them: absent and `{}` are the same variables.
                let variables = serde_json::to_string(&request.variables).unwrap_or_default();
                let prepared = match self.state.schema.prepare(request) {
                    Ok(prepared) => prepared,
                    Err(errors) => {
                        // An operation that cannot run gets `error` and nothing after it.
                        let mut refusal = async_graphql::Response::from_errors(errors);
                        stamp_request_id(&mut refusal, &request_id);
                        send(
                            outgoing,
                            json!({ "id": id, "type": "error", "payload": refusal.errors }),
                        )
                        .await;
                        return Ok(());
                    }
                };
                let shared = match (prepared.shareable(), &caller) {
                    (Some(root), Caller::User(actor)) if !has_extensions => {
                        Some((root.clone(), actor.as_ref().clone()))
                    }
                    _ => None,
                };
                let operation = if let Some((root, actor)) = shared {
                    let key = GroupKey {
                        query: prepared.document_text().to_owned(),
                        operation_name,
                        variables,
                        scope: actor.scope(),
                    };
                    let subscriber = Subscriber {
                        operation_id: id.clone(),
                        request_id,
                        legacy: self.legacy,
                        actor,
                        outgoing: outgoing.clone(),
                        access_changed: self.access_changed.clone(),
                    };
                    Operation::Shared(self.state.fanout.join(
                        &self.state.schema,
                        key,
                        root,
                        prepared,
                        subscriber,
                    ))
                } else {
                    let prepared = prepared
                        .data(caller)
                        .data(self.access_changed.clone())
                        .data(RequestId(Some(request_id.clone())));
                    let kept_as = kept_as.filter(|_| prepared.is_cacheable());
                    let root_field = prepared.root_field.clone();
                    let responses = self.state.schema.stream(prepared);
                    Operation::Alone(tokio::spawn(
                        run_operation(
                            self.state.clone(),
                            Running {
                                id: id.clone(),
                                request_id,
                                legacy: self.legacy,
                                kept_as: kept_as.map(|(key, stamp)| (key, stamp, root_field)),
                            },
                            responses,
                            outgoing.clone(),
                            self.access_changed.clone(),
                        )
                        .instrument(tracing::info_span!("operation", id = %id)),
                    ))
                };
                self.operations.insert(id, operation);
            }
            ClientMessage::Complete { id } => {
                if let Some(operation) = self.operations.remove(&id) {
                    operation.stop();
                }
            }
        }
        Ok(())
    }
}

/// Why an operation does not run: the socket closes, or only this operation is refused.
enum Refusal {
    Close(Close),
    Operation(AppError),
}

impl Connection {
    /// Why one more operation may not start now: too many running, or too many started.
    fn refuse_over_limits(&mut self) -> Option<String> {
        let most = self.state.config.ws_max_operations;
        if self.operations.len() >= most {
            return Some(format!(
                "this socket already runs {most} operations: complete one first"
            ));
        }
        let budget = self.budget.as_mut()?;
        budget
            .take()
            .err()
            .map(|seconds| format!("too many operations on this socket: try again in {seconds} s"))
    }

    /// The caller as the database says now: the token is verified again (expiry included) and
    /// the user read again, or taken as remembered when nothing has committed since it was
    /// read (`service::freshness`). A change of access, a removal or a suspension closes the
    /// socket; a failure to check (Clerk's keys, the database) refuses this operation only.
    async fn caller_now(&mut self, stamp: Option<&Stamp>) -> Result<Caller, Refusal> {
        let Some(held) = &self.caller else {
            return Err(Refusal::Close(Close(
                close::UNAUTHORIZED,
                "Unauthorized".to_owned(),
            )));
        };
        if matches!(held, Caller::Anonymous) {
            return Ok(Caller::Anonymous);
        }
        match self
            .state
            .auth
            .authenticate_at(self.token.as_deref(), stamp)
            .await
        {
            Ok(now) if same_access(held, &now) => Ok(now),
            Ok(_) => Err(Refusal::Close(Close(
                close::FORBIDDEN,
                format!("Forbidden: {}", AccessChanged::ROLE_OR_ORGANISATION),
            ))),
            Err(err @ (AppError::Unauthenticated(_) | AppError::Forbidden(_))) => Err(
                Refusal::Close(Close(close::FORBIDDEN, format!("Forbidden: {err}"))),
            ),
            Err(err) => Err(Refusal::Operation(err)),
        }
    }
}

async fn send(outgoing: &mpsc::Sender<Message>, message: Value) {
    let _ = outgoing.send(text(message)).await;
}

/// What a running operation answers as.
struct Running {
    id: String,
    request_id: String,
    legacy: bool,
    /// Where a complete answer of a cacheable query is kept (`cache.rs`).
    kept_as: Option<(Key, Stamp, String)>,
}

/// `{"id":…,"type":…,"payload":…}` around a payload already serialised.
fn frame(id: &str, kind: &str, payload: &[u8]) -> Message {
    framed(&frame_start(id, kind), &String::from_utf8_lossy(payload))
}

/// Runs one operation: a query or mutation answers once, a subscription until it ends.
async fn run_operation(
    state: GraphqlState,
    running: Running,
    mut responses: BoxStream<'static, async_graphql::Response>,
    outgoing: mpsc::Sender<Message>,
    access_changed: AccessChanged,
) {
    let Running {
        id,
        request_id,
        legacy,
        mut kept_as,
    } = running;
    let next = if legacy { "data" } else { "next" };
    let _running = crate::metrics::GaugeGuard::hold(&state.metrics.subscriptions);
    let mut first = true;
    while let Some(mut response) = responses.next().await {
        stamp_request_id(&mut response, &request_id);
        if first && never_ran(&response) {
            // An operation that cannot run gets `error` and nothing after it.
            send(
                &outgoing,
                json!({ "id": id, "type": "error", "payload": response.errors }),
            )
            .await;
            return;
        }
        first = false;
        let body = payload_of(&response).into_bytes();
        let body = match kept_as.take() {
            // The same bytes an HTTP answer keeps: a later ask over either is answered from them.
            Some((key, stamp, root_field)) if response.errors.is_empty() => {
                state
                    .cache
                    .put(
                        key,
                        stamp,
                        Footprint::Everything,
                        &root_field,
                        Bytes::from(body),
                    )
                    .body
            }
            _ => Bytes::from(body),
        };
        let _ = outgoing.send(frame(&id, next, &body)).await;
    }
    send(&outgoing, json!({ "id": id, "type": "complete" })).await;
    // After its last message: a subscription that ended because its subscriber lost access
    // closes the socket.
    access_changed.release();
}
