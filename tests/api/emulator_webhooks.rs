//! The Clerk emulator's webhooks: Clerk's envelope, signed so the `svix` crate verifies it,
//! and deliveries as unreliable as the switches ask.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use base64::Engine;
use serde_json::{Value, json};
use userhub::clerk::emulator::webhooks::{Endpoint, Switches};
use userhub::clerk::emulator::{Emulator, NewUser, RunningEmulator};

use crate::helpers::signing_key;

type Received = Arc<Mutex<Vec<(HeaderMap, String)>>>;

/// An HTTP endpoint that keeps whatever is posted to it.
async fn receiver() -> (String, Received) {
    let received: Received = Arc::default();
    let app = Router::new()
        .route(
            "/clerk",
            post(
                |State(received): State<Received>, headers: HeaderMap, body: Bytes| async move {
                    if let Ok(mut received) = received.lock() {
                        received.push((headers, String::from_utf8_lossy(&body).into_owned()));
                    }
                    "ok"
                },
            ),
        )
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let url = format!(
        "http://{}/clerk",
        listener.local_addr().expect("an address")
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, received)
}

async fn wait_for(received: &Received, count: usize) -> Vec<(HeaderMap, String)> {
    for _ in 0..100 {
        let got = received.lock().map(|r| r.clone()).unwrap_or_default();
        if got.len() >= count {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("fewer than {count} deliveries arrived");
}

fn new_secret() -> String {
    let key: [u8; 24] = rand::random();
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(key)
    )
}

async fn emulator_sending_to(url: &str, secret: &str, switches: Switches) -> RunningEmulator {
    let running = Emulator::new("sk_test_hooks", signing_key())
        .start("127.0.0.1:0".parse().expect("an address"))
        .await
        .expect("the emulator starts");
    running.emulator.deliver_webhooks(Endpoint {
        url: url.to_owned(),
        secret: secret.to_owned(),
        switches,
    });
    running
}

fn user(n: usize) -> NewUser {
    NewUser {
        email: format!("hook{n}@uni.test"),
        first_name: None,
        last_name: None,
        public_metadata: json!({}),
    }
}

#[tokio::test]
async fn every_user_change_is_delivered_signed_in_clerks_envelope() {
    let (url, received) = receiver().await;
    let secret = new_secret();
    let clerk = emulator_sending_to(&url, &secret, Switches::default()).await;
    let created = clerk.emulator.create_user(user(1)).expect("created");
    clerk
        .emulator
        .merge_public_metadata(&created.id, json!({ "role": "lecturer" }));
    clerk.emulator.delete_user(&created.id);

    let deliveries = wait_for(&received, 3).await;
    let verifier = svix::webhooks::Webhook::new(&secret).expect("a secret");
    let forger = svix::webhooks::Webhook::new(&new_secret()).expect("a secret");
    let mut kinds = Vec::new();
    for (headers, body) in &deliveries {
        verifier
            .verify(body.as_bytes(), headers)
            .expect("signed with the secret");
        assert!(
            forger.verify(body.as_bytes(), headers).is_err(),
            "another secret does not verify"
        );
        let event: Value = serde_json::from_str(body).expect("JSON");
        assert_eq!(event["object"], "event");
        assert_eq!(event["data"]["id"], created.id);
        kinds.push(event["type"].as_str().expect("type").to_owned());
    }
    assert_eq!(kinds, ["user.created", "user.updated", "user.deleted"]);
    let updated: Value = serde_json::from_str(&deliveries[1].1).expect("JSON");
    assert_eq!(updated["data"]["public_metadata"]["role"], "lecturer");
    let deleted: Value = serde_json::from_str(&deliveries[2].1).expect("JSON");
    assert_eq!(
        deleted["data"],
        json!({ "object": "user", "id": created.id, "deleted": true })
    );
    assert!(
        clerk
            .emulator
            .webhook_deliveries()
            .iter()
            .all(|d| d.status == 200)
    );
}

#[tokio::test]
async fn switches_duplicate_drop_reorder_and_delay_deliveries() {
    let svix_ids = |deliveries: &[(HeaderMap, String)]| -> Vec<String> {
        deliveries
            .iter()
            .map(|(headers, _)| headers["svix-id"].to_str().expect("ascii").to_owned())
            .collect()
    };
    let emails = |deliveries: &[(HeaderMap, String)]| -> Vec<String> {
        deliveries
            .iter()
            .map(|(_, body)| {
                let event: Value = serde_json::from_str(body).expect("JSON");
                event["data"]["email_addresses"][0]["email_address"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned()
            })
            .collect()
    };

    // Every second event twice, with the same svix id: a redelivery.
    let (url, received) = receiver().await;
    let clerk = emulator_sending_to(
        &url,
        &new_secret(),
        Switches {
            duplicate_every: 2,
            ..Switches::default()
        },
    )
    .await;
    for n in 0..4 {
        clerk.emulator.create_user(user(n)).expect("created");
    }
    let ids = svix_ids(&wait_for(&received, 6).await);
    assert_eq!(ids.len(), 6);
    assert_eq!(
        ids.iter().collect::<std::collections::BTreeSet<_>>().len(),
        4
    );

    // Every third event never arrives.
    let (url, received) = receiver().await;
    let clerk = emulator_sending_to(
        &url,
        &new_secret(),
        Switches {
            drop_every: 3,
            ..Switches::default()
        },
    )
    .await;
    for n in 0..6 {
        clerk.emulator.create_user(user(n)).expect("created");
    }
    let arrived = emails(&wait_for(&received, 4).await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        received.lock().expect("lock").len(),
        4,
        "two of six were dropped"
    );
    assert!(!arrived.contains(&"hook2@uni.test".to_owned()));

    // Held in twos and delivered newest first, each after a delay.
    let (url, received) = receiver().await;
    let clerk = emulator_sending_to(
        &url,
        &new_secret(),
        Switches {
            reorder_window: 2,
            delay_ms: 50,
            ..Switches::default()
        },
    )
    .await;
    let started = std::time::Instant::now();
    for n in 0..4 {
        clerk.emulator.create_user(user(n)).expect("created");
    }
    let arrived = emails(&wait_for(&received, 4).await);
    assert_eq!(
        arrived,
        [
            "hook1@uni.test",
            "hook0@uni.test",
            "hook3@uni.test",
            "hook2@uni.test"
        ]
    );
    assert!(started.elapsed() >= Duration::from_millis(200));
}
