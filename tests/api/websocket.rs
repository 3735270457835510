//! GraphQL over WebSocket (graphql-transport-ws): authentication in `connection_init`, and the
//! protocol's close codes, spoken directly.

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use userhub::config::Config;

use crate::helpers::{TestApp, TestUser, error_code, on_both_databases};

pub(crate) type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

on_both_databases!(
    a_token_minted_by_the_emulator_works_over_websocket,
    refused_credentials_close_the_socket_with_4403,
    the_session_cookie_of_the_upgrade_authenticates_the_socket,
    anonymous_sockets_are_acknowledged_but_see_no_data,
    protocol_violations_close_with_the_protocol_codes,
    a_socket_that_never_initialises_is_closed_with_4408 => short_init_timeout,
);

fn short_init_timeout(config: &mut Config) {
    config.ws_init_timeout_ms = 200;
}

pub(crate) async fn connect_with(
    app: &TestApp,
    protocol: Option<&str>,
    cookie: Option<&str>,
) -> Socket {
    let url = app.url("/graphql").replace("http://", "ws://");
    let mut request = url.into_client_request().expect("a request");
    if let Some(protocol) = protocol {
        request.headers_mut().insert(
            "sec-websocket-protocol",
            protocol.parse().expect("a header"),
        );
    }
    if let Some(cookie) = cookie {
        request
            .headers_mut()
            .insert("cookie", cookie.parse().expect("a header"));
    }
    let (socket, response) = tokio_tungstenite::connect_async(request)
        .await
        .expect("the upgrade succeeds");
    if protocol == Some("graphql-transport-ws") {
        assert_eq!(
            response.headers()["sec-websocket-protocol"],
            "graphql-transport-ws"
        );
    }
    socket
}

pub(crate) async fn connect(app: &TestApp) -> Socket {
    connect_with(app, Some("graphql-transport-ws"), None).await
}

pub(crate) async fn send(socket: &mut Socket, message: Value) {
    socket
        .send(Message::Text(message.to_string().into()))
        .await
        .expect("sent");
}

/// The next protocol message, or the close frame's code and reason.
pub(crate) async fn receive(socket: &mut Socket) -> Result<Value, (u16, String)> {
    loop {
        let message = tokio::time::timeout(std::time::Duration::from_secs(10), socket.next())
            .await
            .expect("an answer within 10 s");
        match message {
            Some(Ok(Message::Text(text))) => return Ok(serde_json::from_str(&text).expect("JSON")),
            Some(Ok(Message::Close(Some(frame)))) => {
                return Err((u16::from(frame.code), frame.reason.to_string()));
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            other => panic!("unexpected: {other:?}"),
        }
    }
}

pub(crate) async fn init(socket: &mut Socket, payload: Value) -> Result<Value, (u16, String)> {
    send(
        socket,
        json!({ "type": "connection_init", "payload": payload }),
    )
    .await;
    receive(socket).await
}

/// Runs one operation and returns every message about it, up to `complete` or `error`.
pub(crate) async fn operation(socket: &mut Socket, id: &str, query: &str) -> Vec<Value> {
    operation_with(socket, id, query, &json!({})).await
}

/// `operation`, with variables.
pub(crate) async fn operation_with(
    socket: &mut Socket,
    id: &str,
    query: &str,
    variables: &Value,
) -> Vec<Value> {
    send(
        socket,
        json!({ "id": id, "type": "subscribe", "payload": { "query": query, "variables": variables } }),
    )
    .await;
    let mut messages = Vec::new();
    loop {
        let message = receive(socket).await.expect("a message");
        assert_eq!(message["id"], id);
        let last = matches!(message["type"].as_str(), Some("complete" | "error"));
        messages.push(message);
        if last {
            return messages;
        }
    }
}

async fn a_token_minted_by_the_emulator_works_over_websocket(app: TestApp) {
    let org = app.create_organisation("Astronomy").await;
    let user = app
        .create_user(TestUser::new("kepler@uni.test").in_organisation(org.id))
        .await;
    let mut socket = connect(&app).await;
    let ack = init(
        &mut socket,
        json!({ "authorization": format!("Bearer {}", app.token_for(&user)) }),
    )
    .await
    .expect("acknowledged");
    assert_eq!(ack, json!({ "type": "connection_ack" }));

    let messages = operation(&mut socket, "1", "{ me { email organisation { name } } }").await;
    assert_eq!(
        messages,
        [
            json!({ "id": "1", "type": "next", "payload": { "data": { "me": { "email": "kepler@uni.test", "organisation": { "name": "Astronomy" } } } } }),
            json!({ "id": "1", "type": "complete" }),
        ]
    );
    // The key may be spelled `Authorization` too, and ping is answered with pong.
    let mut socket = connect(&app).await;
    init(
        &mut socket,
        json!({ "Authorization": format!("Bearer {}", app.admin_token) }),
    )
    .await
    .expect("acknowledged");
    send(
        &mut socket,
        json!({ "type": "ping", "payload": { "n": 1 } }),
    )
    .await;
    assert_eq!(
        receive(&mut socket).await.expect("pong"),
        json!({ "type": "pong", "payload": { "n": 1 } })
    );
    let messages = operation(&mut socket, "a", "{ users { totalCount } }").await;
    // The test's admin and Kepler.
    assert_eq!(messages[0]["payload"]["data"]["users"]["totalCount"], 2);
}

async fn refused_credentials_close_the_socket_with_4403(app: TestApp) {
    let removed = app.create_user(TestUser::new("gone@uni.test")).await;
    let removed_token = app.token_for(&removed);
    app.deactivate(&removed).await;
    for payload in [
        json!({ "authorization": "Bearer not-a-token" }),
        json!({ "authorization": format!("Basic {}", app.admin_token) }),
        json!({ "authorization": format!("Bearer {removed_token}") }),
    ] {
        let mut socket = connect(&app).await;
        let (code, reason) = init(&mut socket, payload.clone())
            .await
            .expect_err("closed");
        assert_eq!(code, 4403, "{payload}: {reason}");
        assert!(reason.starts_with("Forbidden"), "{reason}");
    }
}

async fn the_session_cookie_of_the_upgrade_authenticates_the_socket(app: TestApp) {
    let cookie = format!("__session={}", app.admin_token);
    let mut socket = connect_with(&app, Some("graphql-transport-ws"), Some(&cookie)).await;
    init(&mut socket, json!({})).await.expect("acknowledged");
    let messages = operation(&mut socket, "1", "{ me { email } }").await;
    assert_eq!(
        messages[0]["payload"]["data"]["me"]["email"],
        "admin@userhub.test"
    );
}

async fn anonymous_sockets_are_acknowledged_but_see_no_data(app: TestApp) {
    let mut request = app
        .url("/graphql")
        .replace("http://", "ws://")
        .into_client_request()
        .expect("a request");
    request.headers_mut().insert(
        "sec-websocket-protocol",
        "graphql-transport-ws".parse().expect("a header"),
    );
    request
        .headers_mut()
        .insert("x-request-id", "upgrade-7".parse().expect("a header"));
    let (mut socket, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("the upgrade succeeds");
    send(&mut socket, json!({ "type": "connection_init" })).await;
    assert_eq!(
        receive(&mut socket).await.expect("ack")["type"],
        "connection_ack"
    );
    let messages = operation(&mut socket, "1", "{ users { totalCount } }").await;
    assert_eq!(messages[0]["type"], "next");
    assert_eq!(error_code(&messages[0]["payload"]), "UNAUTHENTICATED");
    // Each error names the upgrade's request and the operation, as the logs do.
    assert_eq!(
        messages[0]["payload"]["errors"][0]["extensions"]["requestId"],
        "upgrade-7:1"
    );
    assert_eq!(messages[1]["type"], "complete");
    // An operation that cannot run at all is an `error` message, with nothing after it.
    let messages = operation(&mut socket, "2", "{ nope }").await;
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0]["type"], "error");
    assert_eq!(
        messages[0]["payload"][0]["extensions"]["code"],
        "GRAPHQL_VALIDATION_FAILED"
    );
    assert_eq!(
        messages[0]["payload"][0]["extensions"]["requestId"],
        "upgrade-7:2"
    );
}

async fn protocol_violations_close_with_the_protocol_codes(app: TestApp) {
    // Subscribe before connection_ack: 4401.
    let mut socket = connect(&app).await;
    send(
        &mut socket,
        json!({ "id": "1", "type": "subscribe", "payload": { "query": "{ __typename }" } }),
    )
    .await;
    assert_eq!(receive(&mut socket).await.expect_err("closed").0, 4401);

    // A second connection_init: 4429.
    let mut socket = connect(&app).await;
    init(&mut socket, json!({})).await.expect("acknowledged");
    assert_eq!(
        init(&mut socket, json!({})).await.expect_err("closed").0,
        4429
    );

    // Messages that are not the protocol's: 4400.
    for invalid in [
        Message::Text("not json".into()),
        Message::Text(json!({ "type": "unknown" }).to_string().into()),
        Message::Text(json!({ "type": "subscribe", "id": "1" }).to_string().into()),
        Message::Text(
            json!({ "type": "connection_init", "payload": "text" })
                .to_string()
                .into(),
        ),
        Message::Binary(vec![1, 2, 3].into()),
    ] {
        let mut socket = connect(&app).await;
        socket.send(invalid.clone()).await.expect("sent");
        let (code, reason) = receive(&mut socket).await.expect_err("closed");
        assert_eq!(code, 4400, "{invalid:?}: {reason}");
        assert!(reason.len() <= 123, "a close reason fits a control frame");
    }

    // A client that does not speak graphql-transport-ws: 4406.
    let mut socket = connect_with(&app, None, None).await;
    assert_eq!(receive(&mut socket).await.expect_err("closed").0, 4406);
    assert_ne!(CloseCode::from(4406), CloseCode::Normal);
}

async fn a_socket_that_never_initialises_is_closed_with_4408(app: TestApp) {
    let mut socket = connect(&app).await;
    let (code, reason) = receive(&mut socket).await.expect_err("closed");
    assert_eq!(code, 4408);
    assert_eq!(reason, "Connection initialisation timeout");
}
