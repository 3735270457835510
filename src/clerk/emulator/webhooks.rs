//! The emulator's webhooks: every change to a user becomes a Clerk event (`user.created`,
//! `user.updated`, `user.deleted`) in Clerk's envelope, signed the svix way with the `svix`
//! crate and POSTed to the configured endpoint. Switches make delivery as unreliable as the
//! real one can be: duplicated, delayed, reordered, dropped.

use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::random_id;

/// How deliveries misbehave. The defaults deliver each event once, in order, at once.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Switches {
    /// Every Nth event is delivered twice (same svix id). 0: never.
    pub duplicate_every: u32,
    /// Every Nth event is never delivered. 0: never.
    pub drop_every: u32,
    /// Each delivery waits this long first.
    pub delay_ms: u64,
    /// Events are held until this many are waiting, then delivered newest first. 0 or 1: in
    /// order.
    pub reorder_window: usize,
}

/// Where events go.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Endpoint {
    pub url: String,
    /// `whsec_...`, as Clerk's dashboard shows it.
    pub secret: String,
    #[serde(default)]
    pub switches: Switches,
}

/// One event, ready to send.
#[derive(Debug, Clone)]
pub struct Event {
    pub id: String,
    pub kind: String,
    pub body: String,
}

/// Clerk's envelope around a user change.
pub(super) fn envelope(kind: &str, data: Value) -> Event {
    let body = json!({
        "data": data,
        "object": "event",
        "type": kind,
        "timestamp": chrono::Utc::now().timestamp_millis(),
        "instance_id": "ins_emulated",
        "event_attributes": { "http_request": { "client_ip": "127.0.0.1", "user_agent": "userhub-clerk-emulator" } },
    });
    Event {
        id: format!("msg_{}", random_id(27)),
        kind: kind.to_owned(),
        body: body.to_string(),
    }
}

/// A delivery that was attempted: the svix id, the event type and the final HTTP status (0
/// when the endpoint could not be reached).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub id: String,
    pub kind: String,
    pub status: u16,
}

/// Runs until the sender is dropped: applies the switches and sends.
pub(super) async fn deliver(
    endpoint: Endpoint,
    mut events: mpsc::UnboundedReceiver<Event>,
    log: std::sync::Arc<std::sync::Mutex<Vec<Delivery>>>,
    failed: std::sync::Arc<std::sync::Mutex<Vec<Event>>>,
) {
    let Ok(signer) = svix::webhooks::Webhook::new(&endpoint.secret) else {
        tracing::error!("the emulator's webhook secret is not a whsec_ secret; no webhooks");
        return;
    };
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()
        .unwrap_or_default();
    let switches = endpoint.switches.clone();
    let mut count: u32 = 0;
    let mut held: Vec<Event> = Vec::new();
    while let Some(event) = events.recv().await {
        count += 1;
        if switches.drop_every > 0 && count.is_multiple_of(switches.drop_every) {
            continue;
        }
        let copies =
            if switches.duplicate_every > 0 && count.is_multiple_of(switches.duplicate_every) {
                2
            } else {
                1
            };
        for _ in 0..copies {
            held.push(event.clone());
        }
        if switches.reorder_window > 1 && held.len() < switches.reorder_window {
            continue;
        }
        let batch: Vec<Event> = if switches.reorder_window > 1 {
            held.drain(..).rev().collect()
        } else {
            std::mem::take(&mut held)
        };
        for event in batch {
            if switches.delay_ms > 0 {
                tokio::time::sleep(Duration::from_millis(switches.delay_ms)).await;
            }
            let status = send(&http, &signer, &endpoint.url, &event).await;
            // Kept for `recover`, as Svix keeps failed messages for its "recover" call.
            if !(200..300).contains(&status)
                && let Ok(mut failed) = failed.lock()
            {
                failed.push(event.clone());
            }
            if let Ok(mut log) = log.lock() {
                log.push(Delivery {
                    id: event.id.clone(),
                    kind: event.kind.clone(),
                    status,
                });
            }
        }
    }
}

/// One delivery, retried a few times like Clerk's (which retries for days; here briefly).
async fn send(
    http: &reqwest::Client,
    signer: &svix::webhooks::Webhook,
    url: &str,
    event: &Event,
) -> u16 {
    let mut status = 0;
    for attempt in 0..3u64 {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
        }
        let timestamp = chrono::Utc::now().timestamp();
        let Ok(signature) = signer.sign(&event.id, timestamp, event.body.as_bytes()) else {
            return 0;
        };
        let answer = http
            .post(url)
            .header("content-type", "application/json")
            .header("svix-id", &event.id)
            .header("svix-timestamp", timestamp.to_string())
            .header("svix-signature", signature)
            .body(event.body.clone())
            .send()
            .await;
        status = answer
            .map(|response| response.status().as_u16())
            .unwrap_or(0);
        if (200..300).contains(&status) || (400..500).contains(&status) {
            break;
        }
    }
    status
}
