//! The HTTP surface: GraphQL over HTTP's negotiation and errors, limits, GraphiQL, health.

use serde_json::{Value, json};

use crate::helpers::{TestApp, error_code, metric, on_both_databases, scrape_metrics, spawn_app};

on_both_databases!(
    malformed_json_is_a_400_with_a_code,
    a_body_over_the_size_limit_is_a_413_with_a_code,
    a_body_without_json_content_type_is_a_415,
    a_query_over_the_depth_limit_is_refused_with_a_code,
    the_introspection_query_of_graphiql_is_not_refused_by_the_depth_limit,
    a_query_over_the_complexity_limit_is_refused_with_a_code,
    validation_errors_follow_the_accepted_media_type,
    a_syntax_error_is_a_parse_error,
    queries_run_over_get_but_mutations_do_not,
    a_query_over_get_answers_304_while_its_answer_is_unchanged,
    graphiql_is_served_to_browsers_from_the_binary,
    the_admin_console_is_served_from_the_binary_with_a_strict_policy,
    a_client_over_its_rate_limit_gets_429_with_retry_after => with_tight_rate_limits,
    a_forged_forwarded_for_buys_no_new_bucket => with_tight_rate_limits_behind_a_proxy,
    a_client_that_sends_a_byte_a_second_is_cut_off => with_short_timeouts,
    browser_pages_of_allowed_origins_may_call_the_api_and_others_may_not,
    permissive_settings_are_warned_of_and_metrics_can_require_a_token => open_settings,
    metrics_can_have_a_listener_of_their_own => metrics_apart,
    health_and_readiness_report_the_database,
    metrics_count_requests_and_statements,
    unknown_routes_answer_json,
    an_internal_failure_is_logged_and_answered_without_its_details,
);

async fn malformed_json_is_a_400_with_a_code(app: TestApp) {
    for body in ["{\"query\":", "not json", "[]", "{\"variables\": {}}"] {
        let response = app.post_raw(body, &[]).await;
        assert_eq!(response.status(), 400, "body {body:?}");
        let body: Value = response.json().await.expect("JSON");
        assert_eq!(error_code(&body), "BAD_REQUEST");
        assert!(
            body["errors"][0]["message"]
                .as_str()
                .expect("message")
                .len()
                > 10
        );
    }
}

async fn a_body_over_the_size_limit_is_a_413_with_a_code(app: TestApp) {
    let padding = "x".repeat(300 * 1024);
    let body = json!({ "query": format!("{{ users {{ totalCount }} }} # {padding}") }).to_string();
    let response = app.post_raw(body, &[]).await;
    assert_eq!(response.status(), 413);
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(error_code(&body), "PAYLOAD_TOO_LARGE");
}

async fn a_body_without_json_content_type_is_a_415(app: TestApp) {
    let query = json!({ "query": "{ users { totalCount } }" }).to_string();
    let response = app.post_raw(query, &[("content-type", "text/plain")]).await;
    assert_eq!(response.status(), 415);
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(error_code(&body), "UNSUPPORTED_MEDIA_TYPE");
}

async fn a_query_over_the_depth_limit_is_refused_with_a_code(app: TestApp) {
    // users > nodes > organisation > users > nodes > organisation > ... deeper than 12.
    let mut selection = "id".to_owned();
    for _ in 0..5 {
        selection = format!("users(first: 1) {{ nodes {{ organisation {{ {selection} }} }} }}");
    }
    let body = app.graphql(&format!("{{ {selection} }}"), json!({})).await;
    assert_eq!(error_code(&body), "GRAPHQL_VALIDATION_FAILED");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .expect("message")
            .contains("nested too deep")
    );
    assert!(
        body.get("data").is_none(),
        "a request error has no data: {body}"
    );

    // Fragments count as deep as what they select.
    let mut fragments = String::from("fragment F0 on Organisation { id }\n");
    for level in 1..=8 {
        fragments.push_str(&format!(
            "fragment F{level} on Organisation {{ users(first: 1) {{ nodes {{ organisation {{ ...F{} }} }} }} }}\n",
            level - 1
        ));
    }
    let body = app
        .graphql(
            &format!("{{ organisations(first: 1) {{ nodes {{ ...F8 }} }} }}\n{fragments}"),
            json!({}),
        )
        .await;
    assert_eq!(error_code(&body), "GRAPHQL_VALIDATION_FAILED");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .expect("message")
            .contains("nested too deep")
    );
}

async fn a_query_over_the_complexity_limit_is_refused_with_a_code(app: TestApp) {
    let body = app
        .graphql(
            "{ organisations(first: 100) { nodes { users(first: 100) { nodes { id email } } } } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&body), "GRAPHQL_VALIDATION_FAILED");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .expect("message")
            .contains("complex")
    );
}

async fn validation_errors_follow_the_accepted_media_type(app: TestApp) {
    let query = json!({ "query": "{ users { nope } }" }).to_string();

    let legacy = app
        .post_raw(query.clone(), &[("accept", "application/json")])
        .await;
    assert_eq!(legacy.status(), 200);
    assert!(
        legacy.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("application/json")
    );

    let modern = app
        .post_raw(
            query.clone(),
            &[("accept", "application/graphql-response+json")],
        )
        .await;
    assert_eq!(modern.status(), 400);
    assert!(
        modern.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("application/graphql-response+json")
    );
    let body: Value = modern.json().await.expect("JSON");
    assert_eq!(error_code(&body), "GRAPHQL_VALIDATION_FAILED");

    let refused = app.post_raw(query, &[("accept", "text/csv")]).await;
    assert_eq!(refused.status(), 406);
}

async fn a_syntax_error_is_a_parse_error(app: TestApp) {
    let body = app.graphql("{ users { ", json!({})).await;
    assert_eq!(error_code(&body), "GRAPHQL_PARSE_FAILED");
}

async fn queries_run_over_get_but_mutations_do_not(app: TestApp) {
    let response = app
        .client
        .get(app.url("/graphql"))
        .bearer_auth(&app.admin_token)
        .query(&[("query", "{ users { totalCount } }")])
        .send()
        .await
        .expect("answer");
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(body, json!({ "data": { "users": { "totalCount": 1 } } }));

    let response = app
        .client
        .get(app.url("/graphql"))
        .query(&[("query", "mutation { anything }")])
        .send()
        .await
        .expect("answer");
    assert_eq!(response.status(), 405);
    assert_eq!(response.headers()["allow"], "POST");
}

/// GET of `query` as the holder of `token`, with `If-None-Match` when given.
async fn conditional_get(
    app: &TestApp,
    token: &str,
    query: &str,
    if_none_match: Option<&str>,
) -> reqwest::Response {
    let mut request = app
        .client
        .get(app.url("/graphql"))
        .bearer_auth(token)
        .query(&[("query", query)]);
    if let Some(tag) = if_none_match {
        request = request.header("if-none-match", tag);
    }
    request.send().await.expect("answer")
}

fn etag_of(response: &reqwest::Response) -> String {
    response.headers()["etag"]
        .to_str()
        .expect("ascii")
        .to_owned()
}

async fn a_query_over_get_answers_304_while_its_answer_is_unchanged(app: TestApp) {
    use crate::helpers::TestUser;
    const ME: &str = "{ me { id firstName } }";
    let first = conditional_get(&app, &app.admin_token, ME, None).await;
    assert_eq!(first.status(), 200);
    let tag = etag_of(&first);
    assert_eq!(first.headers()["cache-control"], "private, no-cache");
    let vary: Vec<&str> = first
        .headers()
        .get_all("vary")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .collect();
    assert!(
        vary.iter().any(|value| value.contains("authorization")),
        "{vary:?}"
    );
    let body: Value = first.json().await.expect("JSON");
    assert_eq!(body["data"]["me"]["id"], app.admin.id.to_string());

    // The same answer: 304, no body, the same tag; a weak or listed tag matches too.
    for held in [tag.clone(), format!("W/{tag}"), format!("\"stale\", {tag}")] {
        let again = conditional_get(&app, &app.admin_token, ME, Some(&held)).await;
        assert_eq!(again.status(), 304, "{held}");
        assert_eq!(etag_of(&again), tag);
        assert!(again.bytes().await.expect("body").is_empty());
    }

    // A committed change makes a new answer, with a new tag.
    app.query(
        "mutation($id: ID!) { updateUser(id: $id, input: { firstName: \"Renamed\" }) { id } }",
        json!({ "id": app.admin.id }),
    )
    .await;
    let changed = conditional_get(&app, &app.admin_token, ME, Some(&tag)).await;
    assert_eq!(changed.status(), 200);
    let new_tag = etag_of(&changed);
    assert_ne!(new_tag, tag);
    let body: Value = changed.json().await.expect("JSON");
    assert_eq!(body["data"]["me"]["firstName"], "Renamed");

    // Another caller's answer to the same query is theirs, whatever tag they send.
    let member = app.create_user(TestUser::new("member@uni.test")).await;
    let theirs = conditional_get(&app, &app.token_for(&member), ME, Some(&new_tag)).await;
    assert_eq!(theirs.status(), 200);
    assert_ne!(etag_of(&theirs), new_tag);
    let body: Value = theirs.json().await.expect("JSON");
    assert_eq!(body["data"]["me"]["id"], member.id.to_string());

    // An answer with errors, and any answer to a POST, carries no tag.
    let failed = conditional_get(
        &app,
        &app.admin_token,
        "{ user(id: \"00000000-0000-0000-0000-000000000000\") { id } }",
        None,
    )
    .await;
    assert_eq!(failed.status(), 200);
    assert!(failed.headers().get("etag").is_none());
    let posted = app
        .client
        .post(app.url("/graphql"))
        .bearer_auth(&app.admin_token)
        .json(&json!({ "query": ME }))
        .send()
        .await
        .expect("answer");
    assert_eq!(posted.status(), 200);
    assert!(posted.headers().get("etag").is_none());
}

async fn graphiql_is_served_to_browsers_from_the_binary(app: TestApp) {
    let page = app
        .client
        .get(app.url("/graphql"))
        .header("accept", "text/html,application/xhtml+xml")
        .send()
        .await
        .expect("answer");
    assert_eq!(page.status(), 200);
    let headers = page.headers().clone();
    let html = page.text().await.expect("text");
    assert!(html.contains("GraphiQL.createFetcher"));
    graphiql_has_a_strict_policy(&headers, &html);
    // Every script and stylesheet comes from this server, none from a CDN.
    for asset in [
        "/graphql/assets/graphiql.min.js",
        "/graphql/assets/graphiql.min.css",
        "/graphql/assets/react.production.min.js",
        "/graphql/assets/react-dom.production.min.js",
    ] {
        assert!(html.contains(asset), "the page loads {asset}");
        let response = app.client.get(app.url(asset)).send().await.expect("answer");
        assert_eq!(response.status(), 200, "{asset}");
        assert!(
            response.bytes().await.expect("bytes").len() > 5_000,
            "{asset}"
        );
    }
    assert!(!html.contains("https://"), "the page names no remote host");
}

/// GraphiQL's page carries the admin token in local mode: only its own scripts run, and no
/// other site may frame it.
fn graphiql_has_a_strict_policy(headers: &reqwest::header::HeaderMap, html: &str) {
    let policy = headers["content-security-policy"].to_str().expect("text");
    assert_eq!(headers["x-frame-options"], "DENY");
    assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
    assert!(policy.contains("default-src 'self'"), "{policy}");
    let nonce = policy
        .split("'nonce-")
        .nth(1)
        .and_then(|rest| rest.split('\'').next())
        .expect("a script nonce");
    assert!(
        html.contains(&format!("<script nonce=\"{nonce}\">")),
        "{html}"
    );
    assert!(
        !policy.contains("script-src 'self' 'unsafe-inline'"),
        "{policy}"
    );
}

async fn the_admin_console_is_served_from_the_binary_with_a_strict_policy(app: TestApp) {
    for view in [
        "/admin",
        "/admin/users",
        "/admin/organisations",
        "/admin/sync",
    ] {
        let page = app.client.get(app.url(view)).send().await.expect("answer");
        assert_eq!(page.status(), 200, "{view}");
        let policy = page.headers()["content-security-policy"]
            .to_str()
            .expect("ascii")
            .to_owned();
        assert!(policy.contains("default-src 'self'"), "{policy}");
        assert!(policy.contains("script-src 'self'"), "{policy}");
        assert_eq!(page.headers()["x-frame-options"], "DENY", "{view}");
        assert_eq!(
            page.headers()["x-content-type-options"],
            "nosniff",
            "{view}"
        );
        let html = page.text().await.expect("text");
        // Not local mode: the page is given no token.
        assert!(
            html.contains(r#"{"adminToken":null,"localMode":false}"#),
            "{html}"
        );
        assert!(!html.contains("https://"), "the page names no remote host");
    }
    for (asset, content_type, marker) in [
        (
            "/admin/assets/live.js",
            "text/javascript",
            "graphql-transport-ws",
        ),
        ("/admin/assets/views/users.js", "text/javascript", "export"),
        ("/admin/assets/admin.css", "text/css", "@media"),
        ("/admin/assets/favicon.svg", "image/svg+xml", "<svg"),
    ] {
        let response = app.client.get(app.url(asset)).send().await.expect("answer");
        assert_eq!(response.status(), 200, "{asset}");
        assert!(
            response.headers()["content-type"]
                .to_str()
                .expect("ascii")
                .starts_with(content_type)
        );
        assert!(response.text().await.expect("text").contains(marker));
    }
    let missing = app
        .client
        .get(app.url("/admin/assets/nothing.js"))
        .send()
        .await
        .expect("answer");
    assert_eq!(missing.status(), 404);
    let body: Value = missing.json().await.expect("JSON");
    assert_eq!(body["error"]["code"], "NOT_FOUND");
    // The invitee's stand-in exists in local mode only.
    let accept = app
        .client
        .post(app.url("/admin/local/invitations/inv_1/accept"))
        .send()
        .await
        .expect("answer");
    assert_eq!(accept.status(), 404);
    let body: Value = accept.json().await.expect("JSON");
    assert_eq!(body["error"]["code"], "NOT_FOUND");
}

fn with_tight_rate_limits(config: &mut userhub::config::Config) {
    config.rate_limit_per_minute = 60;
    config.rate_limit_burst = 3;
    config.webhook_rate_limit_per_minute = 60;
    config.webhook_rate_limit_burst = 2;
}

/// CORS: a page of an allowed origin (here `CLERK_AUTHORIZED_PARTIES`) passes the preflight
/// and reads the answers, with credentials; a page of any other origin is given nothing that
/// lets its browser read an answer.
async fn browser_pages_of_allowed_origins_may_call_the_api_and_others_may_not(app: TestApp) {
    let preflight = |origin: &'static str| {
        app.client
            .request(reqwest::Method::OPTIONS, app.url("/graphql"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization, content-type",
            )
            .send()
    };
    let allowed = preflight("http://localhost:3000").await.expect("an answer");
    assert!(allowed.status().is_success(), "{}", allowed.status());
    let headers = allowed.headers();
    assert_eq!(
        headers["access-control-allow-origin"],
        "http://localhost:3000"
    );
    assert_eq!(headers["access-control-allow-credentials"], "true");
    let allowed_headers = headers["access-control-allow-headers"]
        .to_str()
        .expect("text")
        .to_lowercase();
    assert!(
        allowed_headers.contains("authorization"),
        "{allowed_headers}"
    );
    assert!(
        allowed_headers.contains("content-type"),
        "{allowed_headers}"
    );
    assert!(
        allowed_headers.contains("if-none-match"),
        "{allowed_headers}"
    );
    assert!(
        headers["access-control-allow-methods"]
            .to_str()
            .expect("text")
            .contains("POST")
    );

    let refused = preflight("https://evil.example").await.expect("an answer");
    assert!(
        !refused
            .headers()
            .contains_key("access-control-allow-origin"),
        "{:?}",
        refused.headers()
    );

    // The request itself, and an error answer too, carry the header for the allowed origin.
    for (query, origin, readable) in [
        ("{ me { email } }", "http://localhost:3000", true),
        ("{ nope }", "http://localhost:3000", true),
        ("{ me { email } }", "https://evil.example", false),
    ] {
        let response = app
            .client
            .post(app.url("/graphql"))
            .bearer_auth(&app.admin_token)
            .header("origin", origin)
            .json(&json!({ "query": query }))
            .send()
            .await
            .expect("an answer");
        assert_eq!(
            response
                .headers()
                .get("access-control-allow-origin")
                .map(|value| value.to_str().unwrap_or_default().to_owned()),
            readable.then(|| origin.to_owned()),
            "{query} from {origin}"
        );
    }
}

/// `/readyz`'s answer, which must be 200.
async fn readyz(app: &TestApp) -> Value {
    let response = app
        .client
        .get(app.url("/readyz"))
        .send()
        .await
        .expect("answer");
    assert_eq!(response.status(), 200);
    response.json().await.expect("JSON")
}

fn open_settings(config: &mut userhub::config::Config) {
    config.clerk_issuer = None;
    config.clerk_authorized_parties = Vec::new();
    config.metrics_token = Some(userhub::config::Secret::new("metrics-secret"));
}

async fn permissive_settings_are_warned_of_and_metrics_can_require_a_token(app: TestApp) {
    let ready = readyz(&app).await;
    assert_eq!(ready["status"], "ready", "{ready}");
    let warnings = ready["warnings"].to_string();
    assert!(warnings.contains("CLERK_ISSUER"), "{warnings}");
    assert!(warnings.contains("CLERK_AUTHORIZED_PARTIES"), "{warnings}");
    assert!(
        !warnings.contains("/metrics"),
        "the token closes it: {warnings}"
    );
    for (token, status) in [
        (None, 401),
        (Some("wrong"), 401),
        (Some("metrics-secret"), 200),
    ] {
        let mut request = app.client.get(app.url("/metrics"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("answer");
        assert_eq!(response.status(), status, "{token:?}");
        let text = response.text().await.expect("text");
        if status == 200 {
            assert!(text.contains("userhub_http_requests_total"), "{text}");
        } else {
            assert!(text.contains("UNAUTHENTICATED"), "{text}");
        }
    }
}

fn metrics_apart(config: &mut userhub::config::Config) {
    config.metrics_listen = Some(std::net::SocketAddr::from(([127, 0, 0, 1], 0)));
}

async fn metrics_can_have_a_listener_of_their_own(app: TestApp) {
    let main = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("answer");
    assert_eq!(main.status(), 404);
    let ready = readyz(&app).await;
    assert_eq!(ready["warnings"], json!([]), "{ready}");
    let apart = app.metrics_address.as_deref().expect("a metrics listener");
    let metrics = app
        .client
        .get(format!("{apart}/metrics"))
        .send()
        .await
        .expect("answer");
    assert_eq!(metrics.status(), 200);
    assert!(
        metrics
            .text()
            .await
            .expect("text")
            .contains("userhub_http_requests_total")
    );
    let other = app
        .client
        .get(format!("{apart}/graphql"))
        .send()
        .await
        .expect("answer");
    assert_eq!(other.status(), 404, "only /metrics there");
}

fn with_short_timeouts(config: &mut userhub::config::Config) {
    config.header_timeout_ms = 1000;
    config.body_timeout_ms = 1000;
}

/// Sends `head` at once, then `trickle` one byte a second; returns what the server said and
/// how long until it closed the connection (at most 8 s).
async fn trickle(app: &TestApp, head: &str, trickle: &str) -> (String, std::time::Duration) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = app.address.trim_start_matches("http://");
    let stream = tokio::net::TcpStream::connect(address)
        .await
        .expect("a connection");
    let (mut reader, mut writer) = stream.into_split();
    let started = std::time::Instant::now();
    let head = head.to_owned();
    let trickle = trickle.to_owned();
    let writing = tokio::spawn(async move {
        writer.write_all(head.as_bytes()).await?;
        for byte in trickle.bytes() {
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            writer.write_all(&[byte]).await?;
        }
        std::io::Result::Ok(writer)
    });
    let mut answer = Vec::new();
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(8),
        reader.read_to_end(&mut answer),
    )
    .await;
    let elapsed = started.elapsed();
    writing.abort();
    assert!(
        read.is_ok(),
        "still connected after 8 s: {}",
        String::from_utf8_lossy(&answer)
    );
    (String::from_utf8_lossy(&answer).into_owned(), elapsed)
}

/// Slow-header and slow-body clients do not hold a connection.
async fn a_client_that_sends_a_byte_a_second_is_cut_off(app: TestApp) {
    let (answer, elapsed) = trickle(
        &app,
        "POST /graphql HTTP/1.1\r\nhost: userhub\r\n",
        &"x-slow: aaaaaaaaaaaaaaaaaaaa".repeat(2),
    )
    .await;
    assert!(
        elapsed < std::time::Duration::from_secs(4),
        "headers: closed after {elapsed:?}"
    );
    assert!(!answer.contains("200 OK"), "{answer}");
    let body = r#"{"query":"{ __typename }"}"#;
    let (answer, elapsed) = trickle(
        &app,
        &format!(
            "POST /graphql HTTP/1.1\r\nhost: userhub\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{{",
            body.len()
        ),
        &body[1..],
    )
    .await;
    assert!(
        elapsed < std::time::Duration::from_secs(4),
        "body: closed after {elapsed:?}"
    );
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("REQUEST_TIMEOUT"), "{answer}");
    // A client at normal speed is served.
    let response = app.post_raw(body, &[]).await;
    assert_eq!(response.status(), 200);
}

fn with_tight_rate_limits_behind_a_proxy(config: &mut userhub::config::Config) {
    with_tight_rate_limits(config);
    config.trust_forwarded_for = true;
}

/// Behind one proxy the client is the address the proxy appended, whatever the client wrote
/// before it; and every address of an IPv6 /64 is one client.
async fn a_forged_forwarded_for_buys_no_new_bucket(app: TestApp) {
    let post = |forwarded: String| {
        let app = &app;
        async move {
            app.post_raw(
                r#"{"query":"{ __typename }"}"#,
                &[("x-forwarded-for", forwarded.as_str())],
            )
            .await
            .status()
            .as_u16()
        }
    };
    let mut statuses = Vec::new();
    for forged in 0..5 {
        statuses.push(post(format!("10.66.0.{forged}, 198.51.100.4")).await);
    }
    assert_eq!(
        statuses,
        [200, 200, 200, 429, 429],
        "one client, one bucket"
    );
    // Another client behind the same proxy has its own bucket.
    assert_eq!(post("10.66.0.1, 198.51.100.5".to_owned()).await, 200);
    let mut statuses = Vec::new();
    for host in 1..6 {
        statuses.push(post(format!("2001:db8:7:7::{host}")).await);
    }
    assert_eq!(statuses, [200, 200, 200, 429, 429], "one /64, one bucket");
    assert_eq!(post("2001:db8:7:8::1".to_owned()).await, 200);
}

async fn a_client_over_its_rate_limit_gets_429_with_retry_after(app: TestApp) {
    // The burst passes, whatever the requests say; the next is refused before it is read.
    for _ in 0..3 {
        let response = app.post_raw(r#"{"query":"{ me { email } }"}"#, &[]).await;
        assert_eq!(response.status(), 200);
    }
    let refused = app.post_raw(r#"{"query":"{ me { email } }"}"#, &[]).await;
    assert_eq!(refused.status(), 429);
    assert_eq!(refused.headers()["retry-after"], "1");
    let body: Value = refused.json().await.expect("JSON");
    assert_eq!(error_code(&body), "RATE_LIMITED");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .expect("message")
            .contains("try again in 1 s")
    );
    // GET (GraphiQL, WebSocket upgrades) is the same route and the same bucket.
    let page = app
        .client
        .get(app.url("/graphql"))
        .header("accept", "text/html")
        .send()
        .await
        .expect("answer");
    assert_eq!(page.status(), 429);
    // Health, metrics and the console are not limited.
    for path in ["/healthz", "/readyz", "/admin"] {
        let response = app.client.get(app.url(path)).send().await.expect("answer");
        assert_eq!(response.status(), 200, "{path}");
    }

    // The webhook route has its own bucket, refused in userhub's HTTP error shape.
    for _ in 0..2 {
        let response = app
            .client
            .post(app.url("/api/webhooks/clerk"))
            .body("{}")
            .send()
            .await
            .expect("answer");
        assert_eq!(response.status(), 401, "unsigned, so refused, but counted");
    }
    let refused = app
        .client
        .post(app.url("/api/webhooks/clerk"))
        .body("{}")
        .send()
        .await
        .expect("answer");
    assert_eq!(refused.status(), 429);
    assert!(refused.headers().contains_key("retry-after"));
    let body: Value = refused.json().await.expect("JSON");
    assert_eq!(body["error"]["code"], "RATE_LIMITED");

    let metrics = scrape_metrics(&app.address).await;
    assert_eq!(
        metric(&metrics, "userhub_rate_limited_total{route=\"graphql\"}"),
        2
    );
    assert_eq!(
        metric(&metrics, "userhub_rate_limited_total{route=\"webhooks\"}"),
        1
    );

    // A second later the bucket holds one token again.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let response = app.post_raw(r#"{"query":"{ me { email } }"}"#, &[]).await;
    assert_eq!(response.status(), 200);
}

async fn health_and_readiness_report_the_database(app: TestApp) {
    let health: Value = app
        .client
        .get(app.url("/healthz"))
        .send()
        .await
        .expect("answer")
        .json()
        .await
        .expect("JSON");
    assert_eq!(health, json!({ "status": "ok" }));
    let ready = app
        .client
        .get(app.url("/readyz"))
        .send()
        .await
        .expect("answer");
    assert_eq!(ready.status(), 200);
    let ready: Value = ready.json().await.expect("JSON");
    assert_eq!(
        ready,
        json!({
            "status": "ready", "database": "ok", "events": "listening", "migrations": "current",
            // The tests' servers check issuer and origins, and leave /metrics open.
            "warnings": ["/metrics is open on the main listener: set USERHUB_METRICS_LISTEN or USERHUB_METRICS_TOKEN"],
        })
    );
}

async fn metrics_count_requests_and_statements(app: TestApp) {
    app.query("{ users { totalCount } }", json!({})).await;
    let text = scrape_metrics(&app.address).await;
    let value = |name: &str| metric(&text, name);
    assert!(value("userhub_http_requests_total") >= 2);
    assert_eq!(value("userhub_graphql_operations_total"), 1);
    assert!(value("userhub_db_statements_total") >= 1);
    assert_eq!(
        value("userhub_graphql_requests_total{type=\"query\",operation=\"users\",outcome=\"ok\"}"),
        1
    );
    assert_eq!(
        value("userhub_graphql_request_duration_seconds_count{type=\"query\",operation=\"users\"}"),
        1
    );
    assert_eq!(
        value("userhub_http_responses_total{route=\"graphql\",status=\"2xx\"}"),
        1
    );
    assert_eq!(
        value("userhub_http_request_duration_seconds_bucket{route=\"graphql\",le=\"+Inf\"}"),
        1
    );
    assert!(value("userhub_db_statement_duration_seconds_count") >= 1);
    assert_eq!(value("userhub_subscriptions"), 0);
    assert_eq!(value("userhub_websocket_connections"), 0);

    // A mutation that calls Clerk, refused once by a rate limit: its call, outcome and retry.
    let user = app
        .create_user(crate::helpers::TestUser::new("counted@uni.test"))
        .await;
    app.clerk.emulator.inject(
        userhub::clerk::emulator::Fault::RateLimited {
            retry_after_seconds: 0,
        },
        1,
    );
    app.query(
        r#"mutation($id: ID!) { updateUser(id: $id, input: { role: LECTURER }) { role } }"#,
        json!({ "id": user.id }),
    )
    .await;
    let forbidden = app
        .graphql_as(
            Some(&app.token_for(&user)),
            "{ auditLog(first: 1) { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&forbidden), "FORBIDDEN");
    let text = scrape_metrics(&app.address).await;
    let value = |name: &str| metric(&text, name);
    assert_eq!(
        value(
            "userhub_graphql_requests_total{type=\"mutation\",operation=\"updateUser\",outcome=\"ok\"}"
        ),
        1
    );
    assert_eq!(
        value(
            "userhub_graphql_requests_total{type=\"query\",operation=\"auditLog\",outcome=\"FORBIDDEN\"}"
        ),
        1
    );
    assert_eq!(
        value(
            "userhub_clerk_retries_total{call=\"PATCH /users/{id}/metadata\",reason=\"rate_limited\"}"
        ),
        1
    );
    assert_eq!(
        value("userhub_clerk_requests_total{call=\"PATCH /users/{id}/metadata\",outcome=\"ok\"}"),
        1
    );
    assert_eq!(
        value("userhub_clerk_request_duration_seconds_count{call=\"PATCH /users/{id}/metadata\"}"),
        1
    );
}

async fn unknown_routes_answer_json(app: TestApp) {
    let response = app
        .client
        .get(app.url("/nowhere"))
        .send()
        .await
        .expect("answer");
    assert_eq!(response.status(), 404);
    let request_id = response
        .headers()
        .get("x-request-id")
        .and_then(|value| value.to_str().ok())
        .expect("a request id")
        .to_owned();
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(body["error"]["code"], "NOT_FOUND");
    assert_eq!(
        body["error"]["requestId"], request_id,
        "the error names its request"
    );
    // A client's own id is kept, in the header and the error.
    let response = app
        .client
        .post(app.url("/graphql"))
        .header("x-request-id", "trace-me-42")
        .header("content-type", "application/json")
        .body(r#"{"query": "{ nope }"}"#)
        .send()
        .await
        .expect("answer");
    assert_eq!(response.headers()["x-request-id"], "trace-me-42");
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(body["errors"][0]["extensions"]["requestId"], "trace-me-42");
    let response = app
        .client
        .delete(app.url("/graphql"))
        .send()
        .await
        .expect("answer");
    assert_eq!(response.status(), 405);
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(body["error"]["code"], "METHOD_NOT_ALLOWED");
}

#[tokio::test]
async fn introspection_can_be_switched_off() {
    let app = spawn_app(crate::helpers::Backend::Sqlite, |config| {
        config.introspection = false;
    })
    .await
    .expect("SQLite");
    for query in [
        "{ __schema { queryType { name } } }",
        "{ __type(name: \"User\") { name } }",
        "query { ...F } fragment F on Query { __schema { types { name } } }",
    ] {
        let body = app.graphql(query, json!({})).await;
        assert_eq!(error_code(&body), "GRAPHQL_VALIDATION_FAILED", "{query}");
        assert_eq!(
            body["errors"][0]["message"],
            "introspection is disabled on this server"
        );
    }
    // Ordinary queries, `__typename` included, still run.
    let data = app
        .query("{ __typename users { totalCount } }", json!({}))
        .await;
    assert_eq!(
        data,
        // The test's admin is the one user.
        json!({ "__typename": "Query", "users": { "totalCount": 1 } })
    );
}

async fn an_internal_failure_is_logged_and_answered_without_its_details(app: TestApp) {
    use sea_orm::ConnectionTrait;
    app.db
        .execute_unprepared("DROP TABLE audit_events")
        .await
        .expect("drop a table");
    let body = app.graphql("{ auditLog { totalCount } }", json!({})).await;
    assert_eq!(error_code(&body), "INTERNAL_SERVER_ERROR");
    assert_eq!(
        body["errors"][0]["message"],
        "internal server error: the failure was logged"
    );
    assert!(
        !body.to_string().contains("audit_events"),
        "no SQL detail leaks: {body}"
    );
    // The rest of the API is unaffected.
    app.query("{ users { totalCount } }", json!({})).await;
}

/// graphql-js's `getIntrospectionQuery()`, as GraphiQL sends it.
pub(crate) const INTROSPECTION_QUERY: &str = r#"
query IntrospectionQuery {
  __schema {
    queryType { name } mutationType { name } subscriptionType { name }
    types { ...FullType }
    directives { name description locations args { ...InputValue } }
  }
}
fragment FullType on __Type {
  kind name description
  fields(includeDeprecated: true) {
    name description args { ...InputValue } type { ...TypeRef } isDeprecated deprecationReason
  }
  inputFields { ...InputValue }
  interfaces { ...TypeRef }
  enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason }
  possibleTypes { ...TypeRef }
}
fragment InputValue on __InputValue { name description type { ...TypeRef } defaultValue }
fragment TypeRef on __Type {
  kind name
  ofType { kind name ofType { kind name ofType { kind name ofType { kind name
    ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } } } } }
}
"#;

async fn the_introspection_query_of_graphiql_is_not_refused_by_the_depth_limit(app: TestApp) {
    let data = app.query(INTROSPECTION_QUERY, json!({})).await;
    assert_eq!(data["__schema"]["queryType"]["name"], "Query");
    let types = data["__schema"]["types"].as_array().expect("types");
    assert!(types.iter().any(|t| t["name"] == "User"));
    assert!(types.iter().any(|t| t["name"] == "OrganisationConnection"));
}
