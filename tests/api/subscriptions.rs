//! Live subscriptions: `userChanged` fed by mutations, webhooks and sync, scoped to what the
//! subscriber may read; `syncProgress`; a subscriber that falls behind or loses its access is
//! told; the protocol's duplicate-id rule; the legacy `graphql-ws` protocol.

use std::time::Duration;

use entity::role::Role;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use userhub::auth::{Actor, Caller};
use userhub::config::Config;

use crate::helpers::{TestApp, TestUser, error_code, on_both_databases};
use crate::live::USER_CHANGED;

on_both_databases!(
    subscribers_see_the_changes_they_may_read_from_every_source,
    a_subscriber_removed_while_watching_is_told_and_the_stream_ends,
    a_subscriber_that_falls_behind_is_told_instead_of_skipped => tiny_event_buffer,
    sync_progress_follows_a_run_to_its_end,
    a_duplicate_subscription_id_closes_with_4409_and_a_completed_one_is_reusable,
    the_legacy_graphql_ws_protocol_is_spoken_too,
);

fn tiny_event_buffer(config: &mut Config) {
    config.event_buffer = 16;
}

async fn subscribers_see_the_changes_they_may_read_from_every_source(app: TestApp) {
    let a = app.create_organisation("Alpha").await;
    let b = app.create_organisation("Beta").await;
    let org_admin_a = app
        .create_user(
            TestUser::new("boss@alpha.test")
                .role(Role::OrgAdmin)
                .in_organisation(a.id),
        )
        .await;
    let loner = app.create_user(TestUser::new("loner@x.test")).await;

    let mut admin_all = app
        .subscribe(&app.admin_token, USER_CHANGED, json!({}))
        .await;
    let mut admin_beta = app
        .subscribe(
            &app.admin_token,
            USER_CHANGED,
            json!({ "org": b.id.to_string() }),
        )
        .await;
    let mut alpha = app
        .subscribe(&app.token_for(&org_admin_a), USER_CHANGED, json!({}))
        .await;
    let mut lonely = app
        .subscribe(&app.token_for(&loner), USER_CHANGED, json!({}))
        .await;

    // A sync-made user in Alpha (through the service layer, as `sync` does).
    let mover = app
        .create_user(TestUser::new("mover@alpha.test").in_organisation(a.id))
        .await;
    for subscriber in [&mut admin_all, &mut alpha] {
        let change = subscriber.next_data().await;
        assert_eq!(change["userChanged"]["kind"], "CREATED");
        assert_eq!(change["userChanged"]["source"], "sync");
        assert_eq!(change["userChanged"]["user"]["email"], "mover@alpha.test");
        assert_eq!(
            change["userChanged"]["user"]["organisation"]["name"],
            "Alpha"
        );
    }

    // A mutation moves them to Beta: Alpha sees them leave, Beta sees them arrive.
    app.query(
        "mutation ($id: ID!, $org: ID) { updateUser(id: $id, input: { organisationId: $org }) { id } }",
        json!({ "id": mover.id.to_string(), "org": b.id.to_string() }),
    )
    .await;
    for (subscriber, sees_beta) in [
        (&mut admin_all, true),
        (&mut admin_beta, true),
        (&mut alpha, false),
    ] {
        let payload = subscriber.next_payload().await;
        let change = &payload["data"];
        assert_eq!(change["userChanged"]["kind"], "UPDATED");
        assert_eq!(change["userChanged"]["source"], "api");
        assert_eq!(change["userChanged"]["user"]["id"], mover.id.to_string());
        assert_eq!(
            change["userChanged"]["previousOrganisationId"],
            a.id.to_string()
        );
        if sees_beta {
            assert!(payload.get("errors").is_none(), "{payload}");
            assert_eq!(
                change["userChanged"]["user"]["organisation"]["name"],
                "Beta"
            );
        } else {
            // Alpha's admin sees them leave, not where they went (issue 16.3).
            assert!(change["userChanged"]["user"]["organisation"].is_null());
            assert_eq!(error_code(&payload), "FORBIDDEN", "{payload}");
        }
    }

    // A change in Beta only: Alpha's admin does not see it.
    app.query(
        "mutation ($id: ID!) { updateUser(id: $id, input: { firstName: \"Moved\" }) { id } }",
        json!({ "id": mover.id.to_string() }),
    )
    .await;
    for subscriber in [&mut admin_all, &mut admin_beta] {
        let change = subscriber.next_data().await;
        assert_eq!(change["userChanged"]["user"]["firstName"], "Moved");
    }
    alpha.assert_quiet().await;

    // Someone in no organisation sees only themselves.
    lonely.assert_quiet().await;
    app.query(
        "mutation ($id: ID!) { updateUser(id: $id, input: { lastName: \"Alone\" }) { id } }",
        json!({ "id": loner.id.to_string() }),
    )
    .await;
    let change = lonely.next_data().await;
    assert_eq!(change["userChanged"]["user"]["id"], loner.id.to_string());
    admin_all.next_data().await;
    alpha.assert_quiet().await;

    // Asking for another organisation than one's own is refused outright.
    let mut socket = raw_socket(&app, "graphql-transport-ws").await;
    send(
        &mut socket,
        json!({ "type": "connection_init", "payload": { "authorization": format!("Bearer {}", app.token_for(&org_admin_a)) } }),
    )
    .await;
    assert_eq!(
        receive(&mut socket).await.expect("ack")["type"],
        "connection_ack"
    );
    send(
        &mut socket,
        json!({ "id": "beta", "type": "subscribe", "payload": { "query": USER_CHANGED, "variables": { "org": b.id.to_string() } } }),
    )
    .await;
    let refused = receive(&mut socket).await.expect("an answer");
    assert_eq!(refused["id"], "beta");
    let code = if refused["type"] == "error" {
        refused["payload"][0]["extensions"]["code"].clone()
    } else {
        refused["payload"]["errors"][0]["extensions"]["code"].clone()
    };
    assert_eq!(code, "FORBIDDEN", "{refused}");
}

async fn a_subscriber_removed_while_watching_is_told_and_the_stream_ends(app: TestApp) {
    let organisation = app.create_organisation("Gamma").await;
    let watcher = app
        .create_user(
            TestUser::new("watcher@gamma.test")
                .role(Role::OrgAdmin)
                .in_organisation(organisation.id),
        )
        .await;
    let mut subscriber = app
        .subscribe(&app.token_for(&watcher), USER_CHANGED, json!({}))
        .await;
    app.query(
        "mutation ($id: ID!) { removeUser(id: $id) { isActive } }",
        json!({ "id": watcher.id.to_string() }),
    )
    .await;
    let payload = subscriber.next_payload().await;
    assert_eq!(error_code(&payload), "UNAUTHENTICATED", "{payload}");
    let complete = subscriber.message().await.expect("a message");
    assert_eq!(complete["type"], "complete", "{complete}");
}

async fn a_subscriber_that_falls_behind_is_told_instead_of_skipped(app: TestApp) {
    let actor = Actor {
        user: app.admin.clone(),
        session_id: None,
    };
    let request =
        async_graphql::Request::new("subscription { userChanged { kind user { email } } }")
            .data(Caller::User(Box::new(actor)));
    let mut stream = app.schema.execute_stream(request);
    // The first poll runs the resolver, which subscribes. On PostgreSQL the set-up's own
    // changes may still be on their way back through LISTEN: let them pass.
    while let Ok(Some(response)) =
        tokio::time::timeout(Duration::from_millis(300), stream.next()).await
    {
        assert!(response.errors.is_empty(), "{:?}", response.errors);
    }
    // 40 changes while this subscriber reads nothing, with room for 16.
    for i in 0..40 {
        app.create_user(TestUser::new(&format!("burst{i}@x.test")))
            .await;
    }
    let mut delivered = 0;
    let error = loop {
        let response = tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .expect("an answer")
            .expect("the stream has not ended yet");
        if let Some(error) = response.errors.first() {
            break error.clone();
        }
        delivered += 1;
    };
    let code = error
        .extensions
        .as_ref()
        .and_then(|extensions| extensions.get("code"))
        .cloned();
    assert_eq!(
        code,
        Some(async_graphql::Value::String("EVENTS_MISSED".to_owned())),
        "{error:?}"
    );
    assert!(error.message.contains("behind"), "{}", error.message);
    assert!(delivered < 40, "{delivered} delivered");
    assert!(
        tokio::time::timeout(Duration::from_secs(5), stream.next())
            .await
            .expect("the stream ends")
            .is_none(),
        "nothing after the error"
    );
    // Others are unaffected: a new subscriber gets the next change.
    let mut fresh = app
        .subscribe(&app.admin_token, USER_CHANGED, json!({}))
        .await;
    app.create_user(TestUser::new("after@x.test")).await;
    let change = fresh.next_data().await;
    assert_eq!(change["userChanged"]["user"]["email"], "after@x.test");
}

async fn sync_progress_follows_a_run_to_its_end(app: TestApp) {
    for i in 0..30 {
        app.create_clerk_user(TestUser::new(&format!("clerkonly{i}@x.test")));
    }
    let query = "subscription { syncProgress { total percent run { id status seen created } } }";
    let mut subscriber = app.subscribe(&app.admin_token, query, json!({})).await;
    let started = app
        .query("mutation { syncUsers { id status } }", json!({}))
        .await;
    let run_id = started["syncUsers"]["id"]
        .as_str()
        .expect("an id")
        .to_owned();
    let mut statuses = Vec::new();
    let last = loop {
        let data = subscriber.next_data().await;
        let progress = data["syncProgress"].clone();
        assert_eq!(progress["run"]["id"], run_id.as_str(), "{progress}");
        statuses.push(
            progress["run"]["status"]
                .as_str()
                .expect("status")
                .to_owned(),
        );
        if progress["run"]["status"] != "RUNNING" {
            break progress;
        }
    };
    assert_eq!(statuses.first().map(String::as_str), Some("RUNNING"));
    assert_eq!(last["run"]["status"], "SUCCEEDED", "{last}");
    assert_eq!(last["run"]["created"], 30);
    assert_eq!(last["run"]["seen"], 31, "30 new users and the admin");
    assert_eq!(last["total"], 31);
    assert_eq!(last["percent"], 100.0);

    // A later subscriber gets the latest run at once.
    let mut late = app.subscribe(&app.admin_token, query, json!({})).await;
    let data = late.next_data().await;
    assert_eq!(data["syncProgress"]["run"]["id"], run_id.as_str());
    assert_eq!(data["syncProgress"]["run"]["status"], "SUCCEEDED");
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn raw_socket(app: &TestApp, protocol: &str) -> Socket {
    let url = app.url("/graphql").replace("http://", "ws://");
    let mut request = url.into_client_request().expect("a request");
    request.headers_mut().insert(
        "sec-websocket-protocol",
        protocol.parse().expect("a header"),
    );
    let (socket, response) = tokio_tungstenite::connect_async(request)
        .await
        .expect("the upgrade succeeds");
    assert_eq!(response.headers()["sec-websocket-protocol"], protocol);
    socket
}

async fn send(socket: &mut Socket, message: Value) {
    socket
        .send(Message::Text(message.to_string().into()))
        .await
        .expect("sent");
}

async fn receive(socket: &mut Socket) -> Result<Value, u16> {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("an answer within 10 s");
        match message {
            Some(Ok(Message::Text(text))) => return Ok(serde_json::from_str(&text).expect("JSON")),
            Some(Ok(Message::Close(Some(frame)))) => return Err(u16::from(frame.code)),
            Some(Ok(_)) => continue,
            other => panic!("unexpected: {other:?}"),
        }
    }
}

async fn a_duplicate_subscription_id_closes_with_4409_and_a_completed_one_is_reusable(
    app: TestApp,
) {
    let mut socket = raw_socket(&app, "graphql-transport-ws").await;
    send(
        &mut socket,
        json!({ "type": "connection_init", "payload": { "authorization": format!("Bearer {}", app.admin_token) } }),
    )
    .await;
    assert_eq!(
        receive(&mut socket).await.expect("ack")["type"],
        "connection_ack"
    );
    let subscribe =
        json!({ "id": "watch", "type": "subscribe", "payload": { "query": USER_CHANGED } });
    send(&mut socket, subscribe.clone()).await;
    // Completed by the client, the id may be used again.
    send(&mut socket, json!({ "id": "watch", "type": "complete" })).await;
    send(&mut socket, subscribe.clone()).await;
    send(&mut socket, json!({ "type": "ping" })).await;
    assert_eq!(receive(&mut socket).await.expect("pong")["type"], "pong");
    tokio::time::sleep(Duration::from_millis(100)).await;
    app.create_user(TestUser::new("reused@x.test")).await;
    let next = receive(&mut socket).await.expect("an event");
    assert_eq!(next["id"], "watch");
    assert_eq!(next["type"], "next");
    assert_eq!(
        next["payload"]["data"]["userChanged"]["user"]["email"],
        "reused@x.test"
    );
    // The same id while it runs: 4409.
    send(&mut socket, subscribe).await;
    assert_eq!(receive(&mut socket).await, Err(4409));
}

async fn the_legacy_graphql_ws_protocol_is_spoken_too(app: TestApp) {
    let mut socket = raw_socket(&app, "graphql-ws").await;
    send(
        &mut socket,
        json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {}", app.admin_token) } }),
    )
    .await;
    assert_eq!(
        receive(&mut socket).await.expect("ack")["type"],
        "connection_ack"
    );
    let ka = receive(&mut socket).await.expect("a keep-alive");
    assert_eq!(ka["type"], "ka");
    send(
        &mut socket,
        json!({ "id": "1", "type": "start", "payload": { "query": USER_CHANGED } }),
    )
    .await;
    send(
        &mut socket,
        json!({ "id": "2", "type": "start", "payload": { "query": "{ me { email } }" } }),
    )
    .await;
    let mut answered = Vec::new();
    while answered.len() < 2 {
        let message = receive(&mut socket).await.expect("a message");
        match message["type"].as_str() {
            Some("data") => {
                assert_eq!(message["id"], "2");
                assert_eq!(
                    message["payload"]["data"]["me"]["email"],
                    "admin@userhub.test"
                );
                answered.push("data");
            }
            Some("complete") => {
                assert_eq!(message["id"], "2");
                answered.push("complete");
            }
            Some("ka") => {}
            other => panic!("unexpected {other:?}: {message}"),
        }
    }
    assert_eq!(answered, ["data", "complete"]);
    app.create_user(TestUser::new("legacy@x.test")).await;
    let data = loop {
        let message = receive(&mut socket).await.expect("an event");
        if message["type"] != "ka" {
            break message;
        }
    };
    assert_eq!(data["type"], "data", "{data}");
    assert_eq!(data["id"], "1");
    assert_eq!(
        data["payload"]["data"]["userChanged"]["user"]["email"],
        "legacy@x.test"
    );
    send(&mut socket, json!({ "type": "connection_terminate" })).await;
    assert_eq!(receive(&mut socket).await, Err(1000));

    // Refused credentials: connection_error, then the socket closes.
    let mut socket = raw_socket(&app, "graphql-ws").await;
    send(
        &mut socket,
        json!({ "type": "connection_init", "payload": { "authorization": "Bearer not-a-token" } }),
    )
    .await;
    let refused = receive(&mut socket).await.expect("connection_error");
    assert_eq!(refused["type"], "connection_error", "{refused}");
    assert_eq!(refused["payload"]["extensions"]["code"], "UNAUTHENTICATED");
    assert_eq!(receive(&mut socket).await, Err(4403));
}
