//! A WebSocket outlives the check of its credentials: every operation on it acts for the
//! caller as the database says now, the socket closes when the caller loses access or the
//! token expires, a browser page of another origin cannot open one with the visitor's cookie,
//! and everything a socket holds is bounded.

use std::time::Duration;

use entity::role::Role;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use userhub::clerk::emulator::{DEFAULT_AUTHORIZED_PARTY, TokenOptions};
use userhub::config::Config;

use crate::helpers::{TestApp, TestUser, error_code, on_both_databases};
use crate::websocket::{Socket, connect, init, operation, receive, send};

on_both_databases!(
    each_operation_acts_for_the_caller_as_the_database_says_now,
    a_running_subscription_ends_and_the_socket_closes_when_access_changes,
    the_socket_closes_when_its_token_expires,
    the_session_cookie_counts_only_from_allowed_origins,
    a_socket_is_bounded_in_operations_rate_and_lifetime => tight_socket_limits,
    a_client_holds_a_bounded_number_of_sockets => tight_socket_limits,
    a_socket_holds_nothing_of_its_finished_operations,
);

fn tight_socket_limits(config: &mut Config) {
    config.ws_max_operations = 3;
    config.ws_operations_per_minute = 30;
    config.ws_operations_burst = 5;
    config.ws_anonymous_seconds = 1;
    config.ws_max_connections_per_client = 4;
}

async fn signed_in(app: &TestApp, token: &str) -> Socket {
    let mut socket = connect(app).await;
    let ack = init(
        &mut socket,
        json!({ "authorization": format!("Bearer {token}") }),
    )
    .await
    .expect("acknowledged");
    assert_eq!(ack["type"], "connection_ack");
    socket
}

async fn role_of(app: &TestApp, id: &str) -> Value {
    app.query(
        "query ($id: ID!) { user(id: $id) { role isActive isSuspended } }",
        json!({ "id": id }),
    )
    .await["user"]
        .clone()
}

/// Demoted, suspended or removed while their socket is open: the next query, mutation or
/// subscription they send on it is refused, the socket closes with 4403, and nothing ran.
async fn each_operation_acts_for_the_caller_as_the_database_says_now(app: TestApp) {
    let changes = [
        (
            "demoted",
            "mutation ($id: ID!) { updateUser(id: $id, input: { role: LECTURER }) { id } }",
        ),
        (
            "suspended",
            "mutation ($id: ID!) { suspendUser(id: $id) { id } }",
        ),
        (
            "removed",
            "mutation ($id: ID!) { removeUser(id: $id) { id } }",
        ),
    ];
    let operations = [
        (
            "query",
            "{ users(first: 100) { totalCount nodes { email } } }",
        ),
        (
            "mutation",
            "mutation { updateUser(id: \"SELF\", input: { role: ADMIN }) { role } }",
        ),
        (
            "subscription",
            "subscription { userChanged { kind user { email } } }",
        ),
    ];
    for (change, change_mutation) in changes {
        for (kind, document) in operations {
            let email = format!("{change}-{kind}@socket.test");
            let user = app
                .create_user(TestUser::new(&email).role(Role::Admin))
                .await;
            let id = user.id.to_string();
            let mut socket = signed_in(&app, &app.token_for(&user)).await;
            let before = operation(&mut socket, "0", "{ me { role } }").await;
            assert_eq!(before[0]["payload"]["data"]["me"]["role"], "ADMIN");

            app.query(change_mutation, json!({ "id": id })).await;
            send(
                &mut socket,
                json!({ "id": "1", "type": "subscribe", "payload": { "query": document.replace("SELF", &id) } }),
            )
            .await;
            let refused = receive(&mut socket).await;
            let (code, reason) = match refused {
                Err(close) => close,
                Ok(message) => panic!("{change}, then a {kind}: refused, not answered: {message}"),
            };
            assert_eq!(code, 4403, "{change}, then a {kind}: {reason}");
            assert!(reason.starts_with("Forbidden"), "{reason}");
            let now = role_of(&app, &id).await;
            assert_ne!(
                (
                    now["role"].as_str(),
                    now["isActive"].as_bool(),
                    now["isSuspended"].as_bool()
                ),
                (Some("ADMIN"), Some(true), Some(false)),
                "{change}, then a {kind}: the change stands: {now}"
            );
        }
    }
}

/// A subscriber's own access changes while their subscription runs: it ends with an error,
/// and the socket closes after it, so no payload is resolved for who they were.
async fn a_running_subscription_ends_and_the_socket_closes_when_access_changes(app: TestApp) {
    let a = app.create_organisation("Organisation A").await;
    let b = app.create_organisation("Organisation B").await;
    let watcher = app
        .create_user(
            TestUser::new("watcher@a.test")
                .role(Role::OrgAdmin)
                .in_organisation(a.id),
        )
        .await;
    let mut socket = signed_in(&app, &app.token_for(&watcher)).await;
    send(
        &mut socket,
        json!({ "id": "live", "type": "subscribe", "payload": { "query": "subscription { userChanged { kind user { email } } }" } }),
    )
    .await;
    // Subscribed once a change of A reaches it.
    let mut seen = false;
    for attempt in 0..20 {
        app.create_user(TestUser::new(&format!("probe{attempt}@a.test")).in_organisation(a.id))
            .await;
        if let Ok(Ok(message)) =
            tokio::time::timeout(Duration::from_millis(300), receive(&mut socket)).await
        {
            assert_eq!(message["type"], "next", "{message}");
            seen = true;
            break;
        }
    }
    assert!(seen, "the subscription runs");
    app.query(
        "mutation ($id: ID!, $org: ID) { updateUser(id: $id, input: { organisationId: $org }) { id } }",
        json!({ "id": watcher.id.to_string(), "org": b.id.to_string() }),
    )
    .await;
    let mut messages = Vec::new();
    let close = loop {
        match receive(&mut socket).await {
            Ok(message) => messages.push(message),
            Err(close) => break close,
        }
    };
    let ended = messages
        .iter()
        .find(|message| message["payload"]["errors"].is_array())
        .unwrap_or_else(|| panic!("an error ends it: {messages:?}"));
    assert_eq!(error_code(&ended["payload"]), "FORBIDDEN", "{ended}");
    assert_eq!(messages.last().expect("messages")["type"], "complete");
    assert_eq!(close.0, 4403, "{close:?}");
    assert!(
        close.1.contains("role or organisation changed"),
        "{close:?}"
    );
}

async fn the_socket_closes_when_its_token_expires(app: TestApp) {
    let user = app
        .create_user(TestUser::new("brief@socket.test").role(Role::Admin))
        .await;
    let token = app
        .clerk
        .emulator
        .mint_session_token(
            &user.clerk_id,
            TokenOptions {
                ttl: Duration::from_secs(2),
                ..TokenOptions::default()
            },
        )
        .expect("a token");
    let mut socket = signed_in(&app, &token).await;
    let answered = operation(&mut socket, "1", "{ me { email } }").await;
    assert_eq!(
        answered[0]["payload"]["data"]["me"]["email"],
        "brief@socket.test"
    );
    let started = std::time::Instant::now();
    let (code, reason) = receive(&mut socket).await.expect_err("closed at expiry");
    assert_eq!(code, 4403, "{reason}");
    assert!(reason.contains("expired"), "{reason}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

async fn upgrade_from(app: &TestApp, origin: Option<&str>, cookie: &str) -> Socket {
    let mut request = app
        .url("/graphql")
        .replace("http://", "ws://")
        .into_client_request()
        .expect("a request");
    let headers = request.headers_mut();
    headers.insert(
        "sec-websocket-protocol",
        "graphql-transport-ws".parse().expect("a header"),
    );
    headers.insert("cookie", cookie.parse().expect("a header"));
    if let Some(origin) = origin {
        headers.insert("origin", origin.parse().expect("a header"));
    }
    tokio_tungstenite::connect_async(request)
        .await
        .expect("the upgrade succeeds")
        .0
}

/// A page of another site can make the browser open a socket with the visitor's cookie; it
/// cannot make it send a bearer token. So the cookie counts only from the server's own origin
/// and the allowed ones, and a bearer token in `connection_init` from anywhere.
async fn the_session_cookie_counts_only_from_allowed_origins(app: TestApp) {
    let cookie = format!("__session={}", app.admin_token);
    let own = app.address.clone();
    for (origin, accepted) in [
        (Some("https://evil.example"), false),
        (Some("http://localhost:3000.evil.example"), false),
        (Some("null"), false),
        (Some(DEFAULT_AUTHORIZED_PARTY), true),
        (Some(own.as_str()), true),
        (None, true),
    ] {
        let mut socket = upgrade_from(&app, origin, &cookie).await;
        let answer = init(&mut socket, json!({})).await;
        if accepted {
            assert_eq!(
                answer.expect("acknowledged")["type"],
                "connection_ack",
                "{origin:?}"
            );
            let me = operation(&mut socket, "1", "{ me { email } }").await;
            assert_eq!(
                me[0]["payload"]["data"]["me"]["email"],
                "admin@userhub.test"
            );
        } else {
            let (code, reason) = answer.expect_err("refused");
            assert_eq!(code, 4403, "{origin:?}: {reason}");
            assert!(reason.contains("cookie"), "{reason}");
        }
    }
    // A bearer token in connection_init works from any origin.
    let mut socket = upgrade_from(&app, Some("https://elsewhere.example"), &cookie).await;
    let ack = init(
        &mut socket,
        json!({ "authorization": format!("Bearer {}", app.admin_token) }),
    )
    .await
    .expect("acknowledged");
    assert_eq!(ack["type"], "connection_ack");
}

const WATCH: &str = "subscription { userChanged { kind } }";

async fn a_socket_is_bounded_in_operations_rate_and_lifetime(app: TestApp) {
    // Operations running at once: three subscriptions, the fourth refused, the socket open.
    let mut socket = signed_in(&app, &app.admin_token).await;
    for id in ["1", "2", "3", "4"] {
        send(
            &mut socket,
            json!({ "id": id, "type": "subscribe", "payload": { "query": WATCH } }),
        )
        .await;
    }
    let refused = receive(&mut socket).await.expect("an answer");
    assert_eq!(refused["id"], "4", "{refused}");
    assert_eq!(refused["type"], "error", "{refused}");
    assert_eq!(refused["payload"][0]["extensions"]["code"], "RATE_LIMITED");
    assert!(
        refused["payload"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("already runs 3"),
        "{refused}"
    );
    // Completing one makes room; finished operations are forgotten.
    send(&mut socket, json!({ "id": "1", "type": "complete" })).await;
    let answered = operation(&mut socket, "5", "{ __typename }").await;
    assert_eq!(answered[0]["payload"]["data"]["__typename"], "Query");

    // Operations started: a burst of 5 (the refused one not counted), then one every 2 s.
    let answered = operation(&mut socket, "6", "{ __typename }").await;
    assert_eq!(answered[0]["type"], "next");
    let refused = operation(&mut socket, "7", "{ __typename }").await;
    assert_eq!(refused[0]["type"], "error", "{refused:?}");
    assert_eq!(
        refused[0]["payload"][0]["extensions"]["code"],
        "RATE_LIMITED"
    );
    assert!(
        refused[0]["payload"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("try again in"),
        "{refused:?}"
    );
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let answered = operation(&mut socket, "8", "{ __typename }").await;
    assert_eq!(answered[0]["type"], "next", "{answered:?}");

    // An anonymous socket sees no data and does not stay.
    let mut anonymous = connect(&app).await;
    init(&mut anonymous, json!({})).await.expect("acknowledged");
    let (code, reason) = receive(&mut anonymous).await.expect_err("closed");
    assert_eq!(code, 4401, "{reason}");
}

async fn a_client_holds_a_bounded_number_of_sockets(app: TestApp) {
    let mut open = Vec::new();
    for _ in 0..4 {
        open.push(signed_in(&app, &app.admin_token).await);
    }
    let url = app.url("/graphql").replace("http://", "ws://");
    let mut request = url.as_str().into_client_request().expect("a request");
    request.headers_mut().insert(
        "sec-websocket-protocol",
        "graphql-transport-ws".parse().expect("a header"),
    );
    match tokio_tungstenite::connect_async(request.clone()).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 429);
            let body: Value =
                serde_json::from_slice(response.body().as_deref().unwrap_or_default())
                    .expect("a JSON body");
            assert_eq!(body["error"]["code"], "RATE_LIMITED", "{body}");
        }
        other => panic!("a fifth socket is refused: {:?}", other.map(|_| ())),
    }
    // Closing one frees its place.
    drop(open.pop());
    let mut reopened = false;
    for _ in 0..40 {
        if tokio_tungstenite::connect_async(request.clone())
            .await
            .is_ok()
        {
            reopened = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(reopened, "a closed socket gives its place back");
}

/// The resident memory of a process, in KiB.
fn resident_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc is readable");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// 10,000 operations on one socket of a server process: its memory after them is what it was
/// after the first thousand (a finished operation leaves nothing behind).
async fn a_socket_holds_nothing_of_its_finished_operations(app: TestApp) {
    let (server, address) =
        crate::process::start_replica_with(&app, &[("USERHUB_WS_OPERATIONS_PER_MINUTE", "0")])
            .await;
    let url = format!("{}/graphql", address.replace("http://", "ws://"));
    let mut request = url.as_str().into_client_request().expect("a request");
    request.headers_mut().insert(
        "sec-websocket-protocol",
        "graphql-transport-ws".parse().expect("a header"),
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("the upgrade succeeds");
    let token = app
        .clerk
        .emulator
        .mint_session_token(
            &app.admin.clerk_id,
            TokenOptions {
                ttl: Duration::from_secs(3600),
                ..TokenOptions::default()
            },
        )
        .expect("a token");
    init(
        &mut socket,
        json!({ "authorization": format!("Bearer {token}") }),
    )
    .await
    .expect("acknowledged");
    async fn run(socket: &mut Socket, ids: std::ops::Range<usize>) {
        for id in ids {
            let answered = operation(socket, &id.to_string(), "{ __typename }").await;
            assert_eq!(answered[0]["payload"]["data"]["__typename"], "Query");
        }
    }
    run(&mut socket, 0..1_000).await;
    let warm = resident_kib(server.0.id());
    let started = std::time::Instant::now();
    run(&mut socket, 1_000..11_000).await;
    eprintln!("10,000 operations in {:?}", started.elapsed());
    let after = resident_kib(server.0.id());
    let grown = after.saturating_sub(warm);
    eprintln!("10,000 operations on one socket: RSS {warm} KiB -> {after} KiB (+{grown} KiB)");
    assert!(
        grown < 2 * 1024,
        "memory grew by {grown} KiB over 10,000 finished operations"
    );
}
