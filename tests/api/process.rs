//! The `userhub` binary as a person runs it: no configuration, so local mode with SQLite in
//! the working directory, a demo directory, a printed admin token, GraphiQL with that token,
//! and a clean stop on SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{TestApp, TestUser, error_code, on_both_databases};

on_both_databases!(grant_admin_makes_a_clerk_user_an_admin_in_clerk_and_here);

/// Kills the server (SIGKILL) when dropped, so no orphan holds the test's output open.
pub(crate) struct Running(pub(crate) Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn the_binary_starts_in_local_mode_with_no_setup_and_stops_cleanly_on_sigterm() {
    let workdir = tempfile::tempdir().expect("a directory");
    let mut server = Running(
        Command::new(env!("CARGO_BIN_EXE_userhub"))
            .current_dir(workdir.path())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("USERHUB_LISTEN", "127.0.0.1:0")
            .env("USERHUB_LOG_FORMAT", "json")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("userhub starts"),
    );

    let (lines, received) = mpsc::channel::<String>();
    let stdout = server.0.stdout.take().expect("stdout");
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    // Log lines are JSON; the local-mode banner is plain text for people.
    let next_line_containing = |what: &str| -> String {
        loop {
            let line = received
                .recv_timeout(Duration::from_secs(60))
                .unwrap_or_else(|_| panic!("no line about {what}"));
            if line.contains(what) {
                return line;
            }
        }
    };

    let banner = next_line_containing("LOCAL MODE");
    assert!(banner.contains("LOCAL MODE"));
    let token_line = next_line_containing("Admin token:");
    let token = token_line
        .split_whitespace()
        .last()
        .expect("a token")
        .to_owned();
    let listening: Value =
        serde_json::from_str(&next_line_containing("listening")).expect("a JSON log line");
    assert_eq!(listening["database"], "sqlite://userhub.db?mode=rwc");
    let address = listening["message"]
        .as_str()
        .expect("message")
        .split_whitespace()
        .find(|word| word.starts_with("http://"))
        .expect("the address is logged")
        .to_owned();

    let client = reqwest::Client::new();
    let graphql = |token: Option<&str>, query: &str| {
        let mut request = client
            .post(format!("{address}/graphql"))
            .json(&json!({ "query": query }));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        async move {
            request
                .send()
                .await
                .expect("answer")
                .json::<Value>()
                .await
                .expect("JSON")
        }
    };
    let ask = |token: Option<&str>| {
        graphql(
            token,
            "{ me { email role } users(first: 10) { totalCount } }",
        )
    };
    assert_eq!(
        ask(Some(&token)).await,
        json!({ "data": {
            "me": { "email": "admin@userhub.local", "role": "ADMIN" },
            "users": { "totalCount": 37 },
        } })
    );
    let anonymous = ask(None).await;
    assert_eq!(error_code(&anonymous), "UNAUTHENTICATED");

    let page = client
        .get(format!("{address}/graphql"))
        .header("accept", "text/html")
        .send()
        .await
        .expect("answer")
        .text()
        .await
        .expect("text");
    assert!(page.contains("<title>userhub · GraphiQL</title>"));
    assert!(
        page.contains(&format!("Bearer {token}")),
        "GraphiQL has the admin token"
    );
    assert!(workdir.path().join("userhub.db").exists());

    // The admin console is given the token too, and stands in for an invitee.
    let console = client
        .get(format!("{address}/admin/users"))
        .send()
        .await
        .expect("answer")
        .text()
        .await
        .expect("text");
    assert!(
        console.contains(&format!(r#""adminToken":"{token}","localMode":true"#)),
        "the console has the admin token"
    );
    let accept = |id: &str, token: Option<&str>| {
        let mut request = client.post(format!("{address}/admin/local/invitations/{id}/accept"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        async move {
            let response = request.send().await.expect("answer");
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.expect("JSON"))
        }
    };
    let (status, body) = accept("inv_unknown", None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("UNAUTHENTICATED"))
    );
    let (status, body) = accept("inv_unknown", Some(&token)).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("NOT_FOUND"))
    );
    let invited = graphql(
        Some(&token),
        r#"mutation { inviteUser(input: { email: "invitee@uni.test", role: LECTURER }) { clerkInvitationId } }"#,
    )
    .await;
    let invitation = invited["data"]["inviteUser"]["clerkInvitationId"]
        .as_str()
        .expect("an invitation")
        .to_owned();
    let (status, body) = accept(&invitation, Some(&token)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["accepted"], true);
    let (status, body) = accept(&invitation, Some(&token)).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("CONFLICT"))
    );
    // Clerk's webhook brings the new user in, with the invitation's role.
    let mut arrived = Value::Null;
    for _ in 0..100 {
        let found = graphql(
            Some(&token),
            r#"{ users(first: 1, filter: { search: "invitee@uni.test" }) { nodes { email role } } }"#,
        )
        .await;
        arrived = found["data"]["users"]["nodes"][0].clone();
        if !arrived.is_null() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        arrived,
        json!({ "email": "invitee@uni.test", "role": "LECTURER" })
    );

    // DNS rebinding: a page of another site, its name pointed at 127.0.0.1, asks for the pages
    // that carry the admin token. Only loopback names are answered.
    for path in ["/graphql", "/admin/users", "/healthz"] {
        let rebound = client
            .get(format!("{address}{path}"))
            .header("host", "rebind.attacker.example:8000")
            .header("accept", "text/html")
            .send()
            .await
            .expect("answer");
        assert_eq!(rebound.status(), 403, "{path}");
        let body = rebound.text().await.expect("text");
        assert!(body.contains("HOST_NOT_ALLOWED"), "{path}: {body}");
        assert!(!body.contains(&token), "{path}: the token stays home");
    }
    let port = address.rsplit(':').next().expect("a port");
    for host in [format!("localhost:{port}"), format!("127.0.0.1:{port}")] {
        let page = client
            .get(format!("{address}/healthz"))
            .header("host", host.as_str())
            .send()
            .await
            .expect("answer");
        assert_eq!(page.status(), 200, "{host}");
    }

    let killed = Command::new("kill")
        .args(["-TERM", &server.0.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    next_line_containing("stopped");
    let status = server.0.wait().expect("userhub exits");
    assert!(status.success(), "exit status {status}");
}

#[tokio::test]
async fn local_mode_refuses_to_listen_beyond_loopback() {
    let workdir = tempfile::tempdir().expect("a directory");
    let output = Command::new(env!("CARGO_BIN_EXE_userhub"))
        .current_dir(workdir.path())
        .env_clear()
        .env("USERHUB_LISTEN", "0.0.0.0:0")
        .output()
        .expect("userhub runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("loopback"), "{stderr}");
}

async fn grant_admin_makes_a_clerk_user_an_admin_in_clerk_and_here(app: TestApp) {
    let user = app.create_user(TestUser::new("first@uni.test")).await;
    let grant = |email: &str| {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_userhub"))
            .args(["grant-admin", email])
            .env_clear()
            .env("DATABASE_URL", &app.database_url)
            .env("CLERK_API_URL", app.clerk.api_url())
            .env("CLERK_SECRET_KEY", app.clerk.emulator.secret())
            .output()
    };

    let output = grant("First@Uni.test").await.expect("userhub runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("is now an admin"), "{stdout}");

    let in_clerk = app.clerk.emulator.user(&user.clerk_id).expect("in Clerk");
    assert_eq!(in_clerk.public_metadata["role"], "admin");
    let data = app
        .query(
            r#"query($id: ID!, $subject: String!) {
                user(id: $id) { role }
                auditLog(filter: { subjectId: $subject, action: "user.role_changed" }) { nodes { actor source } } }"#,
            json!({ "id": user.id, "subject": user.id }),
        )
        .await;
    assert_eq!(data["user"]["role"], "ADMIN");
    assert_eq!(
        data["auditLog"]["nodes"],
        json!([{ "actor": "cli", "source": "cli" }])
    );

    let unknown = grant("nobody@uni.test").await.expect("userhub runs");
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no user with the email address"));
}

/// Starts the `userhub` binary against the test's database and Clerk emulator; returns the
/// process and its address once it listens.
async fn start_replica(app: &TestApp) -> (Running, String) {
    start_replica_with(app, &[]).await
}

/// `start_replica`, with more settings in its environment.
pub(crate) async fn start_replica_with(
    app: &TestApp,
    settings: &[(&str, &str)],
) -> (Running, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_userhub"));
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", &app.database_url)
        .env("CLERK_API_URL", app.clerk.api_url())
        .env("CLERK_SECRET_KEY", app.clerk.emulator.secret())
        .env("CLERK_WEBHOOK_SECRET", crate::helpers::WEBHOOK_SECRET)
        .env("USERHUB_LISTEN", "127.0.0.1:0")
        .env("USERHUB_LOG_FORMAT", "json")
        .envs(settings.iter().copied());
    let mut child = Running(
        command
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("userhub starts"),
    );
    let stdout = child.0.stdout.take().expect("stdout");
    let (lines, received) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    let address = tokio::task::spawn_blocking(move || {
        loop {
            let line = received
                .recv_timeout(Duration::from_secs(60))
                .expect("the replica logs that it listens");
            if line.contains("listening") {
                let logged: Value = serde_json::from_str(&line).expect("a JSON log line");
                return logged["message"]
                    .as_str()
                    .expect("message")
                    .split_whitespace()
                    .find(|word| word.starts_with("http://"))
                    .expect("the address is logged")
                    .to_owned();
            }
        }
    })
    .await
    .expect("the reader");
    (child, address)
}

/// Two server processes on one PostgreSQL database: a webhook delivered to the first reaches
/// a subscriber of the second within a second (LISTEN/NOTIFY), and a mutation on the second
/// reaches a subscriber of the first.
#[tokio::test]
async fn a_change_on_one_replica_reaches_subscribers_of_another() {
    let Some(app) = crate::helpers::spawn_app(crate::helpers::Backend::Postgres, |_| {}).await
    else {
        return;
    };
    let (_first, first) = start_replica(&app).await;
    let (_second, second) = start_replica(&app).await;

    let mut on_second = crate::live::Subscriber::open(
        &second,
        &app.admin_token,
        crate::live::USER_CHANGED,
        json!({}),
    )
    .await;
    let mut on_first = crate::live::Subscriber::open(
        &first,
        &app.admin_token,
        crate::live::USER_CHANGED,
        json!({}),
    )
    .await;

    let body = crate::live::envelope(
        "user.created",
        crate::live::clerk_user("user_replica", "replica@x.test", "Replica", "member", 7_000),
    );
    let headers = crate::live::signed_headers(
        crate::helpers::WEBHOOK_SECRET,
        "msg_replica",
        crate::live::now_seconds(),
        &body,
    );
    let client = reqwest::Client::new();
    let sent = std::time::Instant::now();
    let mut request = client
        .post(format!("{first}/api/webhooks/clerk"))
        .header("content-type", "application/json")
        .body(body);
    for (name, value) in &headers {
        request = request.header(name.as_str(), value.as_str());
    }
    let answer = request.send().await.expect("the first replica answers");
    assert_eq!(answer.status(), 200);
    let event = on_second
        .message_within(Duration::from_secs(1))
        .await
        .expect("the event reaches the second replica within a second")
        .expect("a message");
    let latency = sent.elapsed();
    assert_eq!(event["type"], "next", "{event}");
    let change = &event["payload"]["data"]["userChanged"];
    assert_eq!(change["kind"], "CREATED");
    assert_eq!(change["source"], "webhook");
    assert_eq!(change["user"]["email"], "replica@x.test");
    eprintln!("webhook on replica 1 to subscriber on replica 2: {latency:?}");
    // The replica that applied it tells its own subscribers the same way.
    let own = on_first.next_data().await;
    assert_eq!(own["userChanged"]["user"]["email"], "replica@x.test");

    // A third writer (the test's own in-process server) and a mutation on the second
    // replica: every subscriber sees both.
    let person = app.create_user(TestUser::new("both@x.test")).await;
    for subscriber in [&mut on_first, &mut on_second] {
        let created = subscriber.next_data().await;
        assert_eq!(created["userChanged"]["user"]["email"], "both@x.test");
    }
    let answer: Value = client
        .post(format!("{second}/graphql"))
        .bearer_auth(&app.admin_token)
        .json(&json!({
            "query": "mutation ($id: ID!) { updateUser(id: $id, input: { firstName: \"Renamed\" }) { firstName } }",
            "variables": { "id": person.id.to_string() },
        }))
        .send()
        .await
        .expect("the second replica answers")
        .json()
        .await
        .expect("JSON");
    assert_eq!(
        answer["data"]["updateUser"]["firstName"], "Renamed",
        "{answer}"
    );
    for subscriber in [&mut on_first, &mut on_second] {
        let updated = subscriber.next_data().await;
        assert_eq!(updated["userChanged"]["kind"], "UPDATED");
        assert_eq!(updated["userChanged"]["source"], "api");
        assert_eq!(updated["userChanged"]["user"]["firstName"], "Renamed");
    }
}

/// The in-process lock cannot see across processes: here the mutation runs on the test's own
/// server and Clerk's echo of it goes to another replica, which must wait for the mutation's
/// transaction (the PostgreSQL advisory lock) and then find the change stored.
#[tokio::test]
async fn the_webhook_echo_of_a_mutation_on_one_replica_waits_for_it_on_another() {
    use userhub::clerk::emulator::Fault;
    use userhub::clerk::emulator::webhooks::Endpoint;

    let Some(app) = crate::helpers::spawn_app(crate::helpers::Backend::Postgres, |_| {}).await
    else {
        return;
    };
    let (_replica, replica) = start_replica(&app).await;
    let target = app.create_user(TestUser::new("echo@replica.test")).await;
    app.clerk.emulator.deliver_webhooks(Endpoint {
        url: format!("{replica}/api/webhooks/clerk"),
        secret: crate::helpers::WEBHOOK_SECRET.to_owned(),
        switches: Default::default(),
    });
    app.clerk
        .emulator
        .inject(Fault::SlowAnswer(Duration::from_millis(500)), 1);
    let body = app
        .graphql(
            "mutation ($id: ID!) { updateUser(id: $id, input: { role: LECTURER }) { role } }",
            json!({ "id": target.id.to_string() }),
        )
        .await;
    assert_eq!(body["data"]["updateUser"]["role"], "LECTURER", "{body}");
    crate::webhooks::assert_echo_found_the_change_stored(&app, &target, 0, "user.role_changed")
        .await;
}

/// The server run at trace level (everything it can log) through a full round of work —
/// reads, a mutation that calls Clerk, a refused token, a signed and a forged webhook,
/// `/metrics`, a stop — never writes the Clerk secret key, the webhook secret or a session
/// token to its logs, its answers or `/metrics`.
#[tokio::test]
async fn secrets_never_reach_the_logs_the_answers_or_the_metrics() {
    let app = crate::helpers::spawn_app(crate::helpers::Backend::Sqlite, |_| {})
        .await
        .expect("SQLite is always available");
    let target = app.create_user(TestUser::new("secretive@x.test")).await;
    let clerk_secret = app.clerk.emulator.secret().to_owned();
    let mut server = Running(
        Command::new(env!("CARGO_BIN_EXE_userhub"))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DATABASE_URL", &app.database_url)
            .env("CLERK_API_URL", app.clerk.api_url())
            .env("CLERK_SECRET_KEY", &clerk_secret)
            .env("CLERK_WEBHOOK_SECRET", crate::helpers::WEBHOOK_SECRET)
            .env("USERHUB_LISTEN", "127.0.0.1:0")
            .env("USERHUB_LOG_FORMAT", "json")
            .env("RUST_LOG", "trace")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("userhub starts"),
    );
    let (lines, received) = mpsc::channel::<String>();
    for output in [
        Box::new(server.0.stdout.take().expect("stdout")) as Box<dyn std::io::Read + Send>,
        Box::new(server.0.stderr.take().expect("stderr")),
    ] {
        let lines = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(output).lines().map_while(Result::ok) {
                let _ = lines.send(line);
            }
        });
    }
    drop(lines);
    let mut logs = Vec::new();
    let address = loop {
        let line = received
            .recv_timeout(Duration::from_secs(60))
            .expect("the server logs that it listens");
        logs.push(line.clone());
        if let Some(word) = line
            .contains("listening")
            .then(|| {
                line.split_whitespace()
                    .find(|word| word.starts_with("http://"))
            })
            .flatten()
        {
            break word.trim_matches(|c: char| c == '"' || c == '(').to_owned();
        }
    };

    let client = reqwest::Client::new();
    let mut answers = Vec::new();
    let graphql = |token: String, query: &'static str, variables: Value| {
        let request = client
            .post(format!("{address}/graphql"))
            .bearer_auth(token)
            .json(&json!({ "query": query, "variables": variables }));
        async move {
            request
                .send()
                .await
                .expect("answer")
                .text()
                .await
                .expect("text")
        }
    };
    let token = app.admin_token.clone();
    answers.push(
        graphql(
            token.clone(),
            "{ me { email } users(first: 5) { totalCount } }",
            json!({}),
        )
        .await,
    );
    answers.push(
        graphql(
            token.clone(),
            "mutation($id: ID!) { updateUser(id: $id, input: { role: LECTURER }) { role } }",
            json!({ "id": target.id }),
        )
        .await,
    );
    assert!(answers[1].contains("LECTURER"), "{}", answers[1]);
    // A tampered token: refused, and not echoed back or logged.
    let tampered = format!("{token}x");
    answers.push(graphql(tampered.clone(), "{ me { email } }", json!({})).await);
    assert!(answers[2].contains("UNAUTHENTICATED"), "{}", answers[2]);
    let body = crate::live::envelope(
        "user.created",
        crate::live::clerk_user("user_secretive", "webhook@x.test", "Web", "member", 9_000),
    );
    for (secret, id) in [
        (crate::helpers::WEBHOOK_SECRET, "msg_good"),
        ("whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "msg_forged"),
    ] {
        let headers = crate::live::signed_headers(secret, id, crate::live::now_seconds(), &body);
        let mut request = client
            .post(format!("{address}/api/webhooks/clerk"))
            .header("content-type", "application/json")
            .body(body.clone());
        for (name, value) in &headers {
            request = request.header(name.as_str(), value.as_str());
        }
        answers.push(
            request
                .send()
                .await
                .expect("answer")
                .text()
                .await
                .expect("text"),
        );
    }
    let metrics = crate::helpers::scrape_metrics(&address).await;
    assert_eq!(
        crate::helpers::metric(&metrics, "userhub_webhooks_total{outcome=\"applied\"}"),
        1
    );
    answers.push(metrics);

    let stopped = Command::new("kill")
        .args(["-TERM", &server.0.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(stopped.success());
    while let Ok(line) = received.recv_timeout(Duration::from_secs(10)) {
        logs.push(line);
    }
    assert!(
        logs.iter().any(|line| line.contains("\"level\":\"DEBUG\"")),
        "the server logged at debug level"
    );
    // A request's log lines carry its id.
    for message in ["webhook handled", "webhook refused"] {
        let line = logs
            .iter()
            .find(|line| line.contains(message))
            .unwrap_or_else(|| panic!("`{message}` was logged"));
        let logged: Value = serde_json::from_str(line).expect("a JSON log line");
        let request_id = logged["spans"].as_array().and_then(|spans| {
            spans
                .iter()
                .find_map(|span| span["request_id"].as_str().filter(|id| !id.is_empty()))
        });
        assert!(request_id.is_some(), "{message} names its request: {line}");
    }
    eprintln!(
        "searched {} log lines ({} at debug or trace level) and {} answers for 4 secrets",
        logs.len(),
        logs.iter()
            .filter(|line| {
                line.contains("\"level\":\"DEBUG\"") || line.contains("\"level\":\"TRACE\"")
            })
            .count(),
        answers.len()
    );
    let signature = token.rsplit('.').next().expect("a JWT").to_owned();
    let webhook_key = crate::helpers::WEBHOOK_SECRET.trim_start_matches("whsec_");
    for (name, secret) in [
        ("the Clerk secret key", clerk_secret.as_str()),
        ("the webhook secret", webhook_key),
        ("the session token", token.as_str()),
        ("the session token's signature", signature.as_str()),
    ] {
        for line in &logs {
            assert!(!line.contains(secret), "{name} is in a log line: {line}");
        }
        for answer in &answers {
            assert!(!answer.contains(secret), "{name} is in an answer: {answer}");
        }
    }
}
