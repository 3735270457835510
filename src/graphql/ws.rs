//! GraphQL over WebSocket with the `graphql-transport-ws` protocol (graphql-ws), written to the
//! protocol's letter, close codes included: async-graphql's own handler closes with 1002 and
//! 1011 where the protocol says 4400 and 4401, never times out `connection_init` (4408) and
//! silently replaces a duplicate subscription id (4409).
//!
//! The legacy `graphql-ws` subprotocol of subscriptions-transport-ws (Apollo's old client) is
//! spoken too, mapped onto the same operations: `start`/`stop` for `subscribe`/`complete`,
//! `data` for `next`, `connection_error` for a refused `connection_init`, `ka` keep-alives.
//!
//! The caller is authenticated once, from the `connection_init` payload
//! (`{"authorization": "Bearer ..."}`, any case of the key) or else the `__session` cookie of
//! the upgrade request; refused credentials close the socket with 4403.

use std::collections::HashMap;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::http::HeaderMap;
use axum::response::Response;
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::Instrument;

use super::errors::{code_of, is_request_error_code, stamp_request_id};
use super::http::{RequestId, request_id};
use crate::app::AppState;
use crate::auth::Caller;
use crate::auth::caller::{bearer_token, session_token};

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

/// Upgrades `GET /graphql` to a WebSocket speaking graphql-transport-ws.
pub fn upgrade(upgrade: WebSocketUpgrade, headers: &HeaderMap, state: AppState) -> Response {
    // tungstenite's default buffers are 128 KiB each way, allocated per connection: most of
    // the memory of an idle subscriber. Messages here are small; larger ones still work, the
    // buffer grows for them.
    let upgrade = upgrade
        .protocols([PROTOCOL, LEGACY_PROTOCOL])
        .read_buffer_size(4 * 1024)
        .write_buffer_size(4 * 1024)
        .max_message_size(state.config.max_body_bytes);
    // Set only when the client offered one of the protocols.
    let selected = upgrade
        .selected_protocol()
        .and_then(|protocol| protocol.to_str().ok())
        .map(str::to_owned);
    let cookie_token = session_token(headers);
    let upgrade_id = request_id(headers).unwrap_or_else(|| "ws".to_owned());
    // The connection outlives the upgrade's response; its log lines still name the request.
    let span = tracing::Span::current();
    let connection = move |socket: WebSocket| async move {
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

struct Connection {
    state: AppState,
    /// The upgrade's request id: an operation's is this and its own id.
    upgrade_id: String,
    cookie_token: Option<String>,
    /// Speaking subscriptions-transport-ws's `graphql-ws`.
    legacy: bool,
    init_received: bool,
    caller: Option<Caller>,
    operations: HashMap<String, JoinHandle<()>>,
}

/// Why the connection ends.
struct Close(u16, String);

impl Connection {
    fn new(
        state: AppState,
        cookie_token: Option<String>,
        legacy: bool,
        upgrade_id: String,
    ) -> Connection {
        Connection {
            state,
            upgrade_id,
            cookie_token,
            legacy,
            init_received: false,
            caller: None,
            operations: HashMap::new(),
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
                    match self.handle(text.as_str(), &outgoing).await {
                        Ok(()) => {}
                        Err(close) => break Some(close),
                    }
                }
            }
        };
        for (_, operation) in self.operations.drain() {
            operation.abort();
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
                let token = token.or_else(|| self.cookie_token.clone());
                let caller = match self.state.auth.authenticate(token.as_deref()).await {
                    Ok(caller) => caller,
                    Err(err) => {
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
                self.caller = Some(caller);
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
                let Some(caller) = self.caller.clone() else {
                    return Err(Close(close::UNAUTHORIZED, "Unauthorized".to_owned()));
                };
                if self.legacy {
                    // subscriptions-transport-ws reuses an id once its operation has ended,
                    // and a `start` with a live id restarts it.
                    if let Some(operation) = self.operations.remove(&id) {
                        operation.abort();
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
                let request_id = format!("{}:{id}", self.upgrade_id);
                let request = request
                    .data(caller)
                    .data(RequestId(Some(request_id.clone())));
                let operation = tokio::spawn(
                    run_operation(
                        self.state.clone(),
                        id.clone(),
                        request_id,
                        request,
                        outgoing.clone(),
                        self.legacy,
                    )
                    .instrument(tracing::info_span!("operation", id = %id)),
                );
                self.operations.insert(id, operation);
            }
            ClientMessage::Complete { id } => {
                if let Some(operation) = self.operations.remove(&id) {
                    operation.abort();
                }
            }
        }
        Ok(())
    }
}

async fn send(outgoing: &mpsc::Sender<Message>, message: Value) {
    let _ = outgoing.send(text(message)).await;
}

/// Runs one operation: a query or mutation answers once, a subscription until it ends.
async fn run_operation(
    state: AppState,
    id: String,
    request_id: String,
    request: async_graphql::Request,
    outgoing: mpsc::Sender<Message>,
    legacy: bool,
) {
    let next = if legacy { "data" } else { "next" };
    let _running = crate::metrics::GaugeGuard::hold(&state.metrics.subscriptions);
    let mut responses = state.schema.execute_stream(request);
    let mut first = true;
    while let Some(mut response) = responses.next().await {
        stamp_request_id(&mut response, &request_id);
        let never_ran = first
            && response.data == async_graphql::Value::Null
            && response
                .errors
                .iter()
                .any(|error| code_of(error).is_some_and(|code| is_request_error_code(&code)));
        first = false;
        if never_ran {
            // An operation that cannot run gets `error` and nothing after it.
            send(
                &outgoing,
                json!({ "id": id, "type": "error", "payload": response.errors }),
            )
            .await;
            return;
        }
        let payload = serde_json::to_value(&response).unwrap_or_else(|err| {
            json!({ "errors": [{ "message": format!("the response could not be serialised: {err}"), "extensions": { "code": "INTERNAL_SERVER_ERROR" } }] })
        });
        send(
            &outgoing,
            json!({ "id": id, "type": next, "payload": payload }),
        )
        .await;
    }
    send(&outgoing, json!({ "id": id, "type": "complete" })).await;
}
