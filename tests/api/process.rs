//! The `userhub` binary as a person runs it: no configuration, SQLite in the working
//! directory, GraphiQL for a browser, and a clean stop on SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{Value, json};

#[tokio::test]
async fn the_binary_starts_on_sqlite_with_no_setup_and_stops_cleanly_on_sigterm() {
    let workdir = tempfile::tempdir().expect("a directory");
    let mut child = Command::new(env!("CARGO_BIN_EXE_userhub"))
        .current_dir(workdir.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("USERHUB_LISTEN", "127.0.0.1:0")
        .env("USERHUB_LOG_FORMAT", "json")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("userhub starts");

    let (lines, received) = mpsc::channel::<String>();
    let stdout = child.stdout.take().expect("stdout");
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    let next_log = |what: &str| -> Value {
        loop {
            let line = received
                .recv_timeout(Duration::from_secs(30))
                .unwrap_or_else(|_| panic!("no log line about {what}"));
            let entry: Value = serde_json::from_str(&line).expect("JSON logs");
            if entry["message"].as_str().is_some_and(|m| m.contains(what)) {
                return entry;
            }
        }
    };

    let listening = next_log("listening");
    let message = listening["message"].as_str().expect("message");
    let address = message
        .split_whitespace()
        .find(|word| word.starts_with("http://"))
        .expect("the address is logged")
        .to_owned();
    assert_eq!(listening["database"], "sqlite://userhub.db?mode=rwc");

    let client = reqwest::Client::new();
    let body: Value = client
        .post(format!("{address}/graphql"))
        .json(&json!({ "query": "{ users(first: 10) { totalCount } }" }))
        .send()
        .await
        .expect("answer")
        .json()
        .await
        .expect("JSON");
    assert_eq!(body, json!({ "data": { "users": { "totalCount": 0 } } }));
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
    assert!(workdir.path().join("userhub.db").exists());

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    next_log("stopped");
    let status = child.wait().expect("userhub exits");
    assert!(status.success(), "exit status {status}");
}
