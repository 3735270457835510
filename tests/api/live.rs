//! Talking to a server the way Clerk and live dashboards do: signed webhook deliveries, and
//! GraphQL subscriptions over a real WebSocket.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use userhub::clerk::emulator::webhooks::{Endpoint, Switches};

use crate::helpers::{TestApp, WEBHOOK_SECRET};

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// svix headers for `body`, signed with `secret` at `timestamp` (Unix seconds).
pub(crate) fn signed_headers(
    secret: &str,
    id: &str,
    timestamp: i64,
    body: &str,
) -> Vec<(String, String)> {
    let signature = svix::webhooks::Webhook::new(secret)
        .expect("a whsec secret")
        .sign(id, timestamp, body.as_bytes())
        .expect("a signature");
    vec![
        ("svix-id".to_owned(), id.to_owned()),
        ("svix-timestamp".to_owned(), timestamp.to_string()),
        ("svix-signature".to_owned(), signature),
    ]
}

pub(crate) fn now_seconds() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Clerk's envelope around `data`.
pub(crate) fn envelope(kind: &str, data: Value) -> String {
    json!({
        "data": data,
        "object": "event",
        "type": kind,
        "timestamp": chrono::Utc::now().timestamp_millis(),
        "instance_id": "ins_test",
    })
    .to_string()
}

/// A Clerk user as a webhook carries it.
pub(crate) fn clerk_user(
    id: &str,
    email: &str,
    first_name: &str,
    role: &str,
    updated_at: i64,
) -> Value {
    json!({
        "id": id,
        "object": "user",
        "email_addresses": [{ "id": format!("idn_{id}"), "email_address": email }],
        "primary_email_address_id": format!("idn_{id}"),
        "first_name": first_name,
        "last_name": "Tester",
        "public_metadata": { "role": role },
        "banned": false,
        "created_at": 1_700_000_000_000i64,
        "updated_at": updated_at,
    })
}

impl TestApp {
    /// Posts a body to the webhook route with these headers; the status and the JSON answer.
    pub(crate) async fn post_webhook(
        &self,
        body: &str,
        headers: &[(String, String)],
    ) -> (u16, Value) {
        let mut request = self
            .client
            .post(self.url("/api/webhooks/clerk"))
            .header("content-type", "application/json")
            .body(body.to_owned());
        for (name, value) in headers {
            request = request.header(name.as_str(), value.as_str());
        }
        let response = request.send().await.expect("the server answers");
        let status = response.status().as_u16();
        let text = response.text().await.expect("a body");
        let body = serde_json::from_str(&text)
            .unwrap_or_else(|_| panic!("a JSON answer, got {status}: {text}"));
        (status, body)
    }

    /// Delivers `body` as Clerk would, correctly signed now, under `svix_id`.
    pub(crate) async fn deliver(&self, svix_id: &str, body: &str) -> (u16, Value) {
        let headers = signed_headers(WEBHOOK_SECRET, svix_id, now_seconds(), body);
        self.post_webhook(body, &headers).await
    }

    /// Points the emulator's webhooks at this server.
    pub(crate) fn send_clerk_webhooks_here(&self, switches: Switches) {
        self.clerk.emulator.deliver_webhooks(Endpoint {
            url: self.url("/api/webhooks/clerk"),
            secret: WEBHOOK_SECRET.to_owned(),
            switches,
        });
    }

    pub(crate) async fn subscribe(&self, token: &str, query: &str, variables: Value) -> Subscriber {
        Subscriber::open(&self.address, token, query, variables).await
    }
}

/// One subscription on its own graphql-transport-ws connection.
pub(crate) struct Subscriber {
    socket: Socket,
    /// Messages that arrived while `open` waited for its pong.
    early: std::collections::VecDeque<Value>,
}

impl Subscriber {
    pub(crate) async fn open(
        address: &str,
        token: &str,
        query: &str,
        variables: Value,
    ) -> Subscriber {
        let url = format!("{}/graphql", address.replace("http://", "ws://"));
        let mut request = url.into_client_request().expect("a request");
        request.headers_mut().insert(
            "sec-websocket-protocol",
            "graphql-transport-ws".parse().expect("a header"),
        );
        let (socket, _) = tokio_tungstenite::connect_async(request)
            .await
            .expect("the upgrade succeeds");
        let mut subscriber = Subscriber {
            socket,
            early: Default::default(),
        };
        subscriber
            .send(json!({ "type": "connection_init", "payload": { "authorization": format!("Bearer {token}") } }))
            .await;
        let ack = subscriber
            .message()
            .await
            .expect("an answer to connection_init");
        assert_eq!(ack["type"], "connection_ack", "{ack}");
        subscriber
            .send(json!({ "id": "1", "type": "subscribe", "payload": { "query": query, "variables": variables } }))
            .await;
        // The server runs the subscription's resolver (and subscribes to the bus) as soon as
        // it reads the message; a ping answered proves it has read it.
        subscriber.send(json!({ "type": "ping" })).await;
        let mut early = std::collections::VecDeque::new();
        loop {
            let message = subscriber.message().await.expect("a pong");
            if message["type"] == "pong" {
                break;
            }
            assert_ne!(
                message["type"], "error",
                "the subscription was refused: {message}"
            );
            early.push_back(message);
        }
        subscriber.early = early;
        // The resolver runs in its own task; give it a moment to reach the bus.
        tokio::time::sleep(Duration::from_millis(100)).await;
        subscriber
    }

    async fn send(&mut self, message: Value) {
        self.socket
            .send(Message::Text(message.to_string().into()))
            .await
            .expect("sent");
    }

    /// The next protocol message, or the close frame's code.
    pub(crate) async fn message(&mut self) -> Result<Value, u16> {
        self.message_within(Duration::from_secs(10))
            .await
            .expect("a message within the time limit")
    }

    /// `None` when nothing arrives within `limit`.
    pub(crate) async fn message_within(&mut self, limit: Duration) -> Option<Result<Value, u16>> {
        if let Some(message) = self.early.pop_front() {
            return Some(Ok(message));
        }
        loop {
            let message = tokio::time::timeout(limit, self.socket.next()).await.ok()?;
            match message {
                Some(Ok(Message::Text(text))) => {
                    return Some(Ok(serde_json::from_str(&text).expect("JSON")));
                }
                Some(Ok(Message::Close(frame))) => {
                    return Some(Err(frame.map_or(1005, |frame| u16::from(frame.code))));
                }
                Some(Ok(_)) => continue,
                other => panic!("unexpected: {other:?}"),
            }
        }
    }

    /// The payload of the next `next` message.
    pub(crate) async fn next_payload(&mut self) -> Value {
        let message = self.message().await.expect("a message, not a close");
        assert_eq!(message["type"], "next", "{message}");
        message["payload"].clone()
    }

    /// The next event's `data`, asserting it carries no errors.
    pub(crate) async fn next_data(&mut self) -> Value {
        let payload = self.next_payload().await;
        assert!(
            payload.get("errors").is_none(),
            "unexpected errors: {payload}"
        );
        payload["data"].clone()
    }

    /// Asserts nothing arrives for a short while.
    pub(crate) async fn assert_quiet(&mut self) {
        if let Some(message) = self.message_within(Duration::from_millis(300)).await {
            panic!("expected nothing, got {message:?}");
        }
    }
}

pub(crate) const USER_CHANGED: &str = "subscription ($org: ID) { userChanged(organisationId: $org) { kind source user { id email firstName role isActive organisation { id name } } previousOrganisationId } }";
