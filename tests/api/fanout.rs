//! Shared subscriptions (`graphql/fanout.rs`): subscribers asking the same subscription with
//! the same access are sent the bytes of one resolution, and each of them still ends alone
//! when their own access changes.

use std::sync::atomic::Ordering;
use std::time::Duration;

use entity::role::Role;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{TestApp, TestUser, error_code, on_both_databases};
use crate::websocket::{Socket, connect, init, receive, send};

on_both_databases!(
    subscribers_of_one_scope_share_one_resolution,
    a_member_whose_access_changes_ends_alone,
);

const WATCH: &str =
    "subscription Watch { userChanged { kind user { email organisation { name } } } }";

async fn org_admin(app: &TestApp, email: &str, organisation: Uuid) -> entity::user::Model {
    app.create_user(
        TestUser::new(email)
            .role(Role::OrgAdmin)
            .in_organisation(organisation),
    )
    .await
}

async fn subscribed(app: &TestApp, user: &entity::user::Model) -> Socket {
    let mut socket = connect(app).await;
    let ack = init(
        &mut socket,
        json!({ "authorization": format!("Bearer {}", app.token_for(user)) }),
    )
    .await
    .expect("acknowledged");
    assert_eq!(ack["type"], "connection_ack");
    send(
        &mut socket,
        json!({ "id": format!("watch-{}", user.id), "type": "subscribe", "payload": { "query": WATCH } }),
    )
    .await;
    socket
}

/// The next message within `wait`, if any.
async fn within(socket: &mut Socket, wait: Duration) -> Option<Value> {
    tokio::time::timeout(wait, receive(socket))
        .await
        .ok()
        .map(|message| message.expect("a message, not a close"))
}

/// Makes changes in `organisation` until every socket has been sent one (its subscription is
/// running), then reads each socket dry.
async fn until_running(app: &TestApp, organisation: Uuid, sockets: &mut [&mut Socket]) {
    let mut running = vec![false; sockets.len()];
    for attempt in 0..30 {
        if running.iter().all(|running| *running) {
            break;
        }
        app.create_user(
            TestUser::new(&format!("probe-{}-{attempt}@fanout.test", Uuid::new_v4()))
                .in_organisation(organisation),
        )
        .await;
        for (socket, running) in sockets.iter_mut().zip(running.iter_mut()) {
            while within(socket, Duration::from_millis(200)).await.is_some() {
                *running = true;
            }
        }
    }
    assert!(running.iter().all(|running| *running), "{running:?}");
}

/// Eight subscribers in three scopes (two admins, who share one; two organisation admins of A,
/// who share another; one of B): a change in A is resolved twice (for the admins and for A;
/// B's group sees nothing to send) and sent seven times, and the members of a group are sent
/// the same payload, each under their own operation id.
async fn subscribers_of_one_scope_share_one_resolution(app: TestApp) {
    let a = app.create_organisation("Fan-out A").await;
    let b = app.create_organisation("Fan-out B").await;
    let second_admin = app
        .create_user(TestUser::new("second-admin@fanout.test").role(Role::Admin))
        .await;
    let mut admins = Vec::new();
    for user in [
        &app.admin,
        &second_admin,
        &app.admin,
        &app.admin,
        &second_admin,
    ] {
        admins.push(subscribed(&app, user).await);
    }
    let mut of_a = Vec::new();
    for email in ["one@a.fanout.test", "two@a.fanout.test"] {
        let user = org_admin(&app, email, a.id).await;
        of_a.push(subscribed(&app, &user).await);
    }
    let of_b_user = org_admin(&app, "one@b.fanout.test", b.id).await;
    let mut of_b = subscribed(&app, &of_b_user).await;
    {
        let mut running: Vec<&mut Socket> = admins.iter_mut().chain(of_a.iter_mut()).collect();
        until_running(&app, a.id, &mut running).await;
    }
    until_running(&app, b.id, &mut [&mut of_b]).await;
    // The admins were sent B's changes too.
    for socket in &mut admins {
        while within(socket, Duration::from_millis(300)).await.is_some() {}
    }
    assert_eq!(app.metrics.subscription_groups.load(Ordering::Relaxed), 3);
    assert_eq!(app.metrics.subscriptions.load(Ordering::Relaxed), 8);

    let encodings = app.metrics.subscription_encodings.load(Ordering::Relaxed);
    let messages = app.metrics.subscription_messages.load(Ordering::Relaxed);
    let joined = app
        .create_user(TestUser::new("joined@a.fanout.test").in_organisation(a.id))
        .await;
    let mut payloads = Vec::new();
    for socket in admins.iter_mut().chain(of_a.iter_mut()) {
        let message = within(socket, Duration::from_secs(10))
            .await
            .expect("the change reaches every subscriber of A and every admin");
        assert_eq!(message["type"], "next", "{message}");
        assert!(
            message["id"]
                .as_str()
                .is_some_and(|id| id.starts_with("watch-")),
            "{message}"
        );
        assert_eq!(
            message["payload"]["data"]["userChanged"]["user"]["email"],
            joined.email
        );
        payloads.push(message["payload"].clone());
    }
    assert!(
        payloads.windows(2).all(|pair| pair[0] == pair[1]),
        "one payload for all: {payloads:?}"
    );
    assert_eq!(
        payloads[0]["data"]["userChanged"]["user"]["organisation"]["name"],
        "Fan-out A"
    );
    assert!(
        within(&mut of_b, Duration::from_millis(500))
            .await
            .is_none(),
        "B's organisation admin is not sent A's change"
    );
    assert_eq!(
        app.metrics.subscription_encodings.load(Ordering::Relaxed) - encodings,
        2,
        "resolved once for the admins and once for A"
    );
    assert_eq!(
        app.metrics.subscription_messages.load(Ordering::Relaxed) - messages,
        7
    );

    // Leaving: a completed member leaves its group; the last to leave stops it.
    for socket in &mut of_a {
        socket.close(None).await.expect("closed");
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while app.metrics.subscription_groups.load(Ordering::Relaxed) != 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "A's group stops once its members have gone"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(app.metrics.subscriptions.load(Ordering::Relaxed), 6);
}

/// Two organisation admins of A share a subscription; one of them is moved to B. They alone
/// are sent `FORBIDDEN` and `complete` and their socket closes; the other is sent the move
/// (a user leaving A) and what follows.
async fn a_member_whose_access_changes_ends_alone(app: TestApp) {
    let a = app.create_organisation("Fan-out A").await;
    let b = app.create_organisation("Fan-out B").await;
    let moved = org_admin(&app, "moved@a.fanout.test", a.id).await;
    let stays = org_admin(&app, "stays@a.fanout.test", a.id).await;
    let mut moved_socket = subscribed(&app, &moved).await;
    let mut stays_socket = subscribed(&app, &stays).await;
    until_running(&app, a.id, &mut [&mut moved_socket, &mut stays_socket]).await;
    assert_eq!(app.metrics.subscription_groups.load(Ordering::Relaxed), 1);

    app.query(
        "mutation ($id: ID!, $org: ID) { updateUser(id: $id, input: { organisationId: $org }) { id } }",
        json!({ "id": moved.id.to_string(), "org": b.id.to_string() }),
    )
    .await;
    let mut messages = Vec::new();
    let close = loop {
        match receive(&mut moved_socket).await {
            Ok(message) => messages.push(message),
            Err(close) => break close,
        }
    };
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert_eq!(messages[0]["type"], "next");
    assert_eq!(
        error_code(&messages[0]["payload"]),
        "FORBIDDEN",
        "{messages:?}"
    );
    let error = &messages[0]["payload"]["errors"][0];
    assert_eq!(error["path"], json!(["userChanged"]), "{error}");
    assert_eq!(
        error["extensions"]["requestId"]
            .as_str()
            .map(|id| id.ends_with(&format!(":watch-{}", moved.id))),
        Some(true),
        "{error}"
    );
    assert_eq!(messages[0]["payload"]["data"], Value::Null);
    assert_eq!(messages[1]["type"], "complete");
    assert_eq!(close.0, 4403, "{close:?}");

    let left = within(&mut stays_socket, Duration::from_secs(10))
        .await
        .expect("the other member sees the move");
    assert_eq!(
        left["payload"]["data"]["userChanged"]["user"]["email"],
        moved.email
    );
    assert_eq!(
        left["payload"]["data"]["userChanged"]["user"]["organisation"],
        Value::Null,
        "{left}"
    );
    let later = app
        .create_user(TestUser::new("later@a.fanout.test").in_organisation(a.id))
        .await;
    let next = within(&mut stays_socket, Duration::from_secs(10))
        .await
        .expect("and what follows");
    assert_eq!(
        next["payload"]["data"]["userChanged"]["user"]["email"],
        later.email
    );
    assert_eq!(app.metrics.subscriptions.load(Ordering::Relaxed), 1);
}
