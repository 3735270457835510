//! The database failing under the server: PostgreSQL restarted while requests flow, SQLite's
//! disk full and its file system read-only. Requests fail cleanly (503 `DATABASE_UNAVAILABLE`,
//! `/readyz` not ready), the server recovers by itself (live subscribers too: the one cut off is
//! told it missed events, a new one hears changes again), no acknowledged write is lost and the
//! SQLite file stays sound.
//!
//! These restart the machine's PostgreSQL and mount file systems, so they are `#[ignore]`d in
//! `cargo test`; `.ci/run` runs them alone (`cargo test --test api storage_faults --
//! --ignored --test-threads=1`). Without the rights they need they say so and pass, unless
//! `USERHUB_REQUIRE_FAULTS=1` (which `.ci/run` sets) makes that a failure.

use std::collections::BTreeSet;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};
use tokio::sync::Mutex;

use crate::helpers::{Backend, TestApp, error_code, spawn_app};
use crate::live::{Subscriber, USER_CHANGED, clerk_user, envelope};

fn required() -> bool {
    std::env::var("USERHUB_REQUIRE_FAULTS").as_deref() == Ok("1")
}

fn run(program: &str, args: &[&str]) -> Result<(), String> {
    let output = Command::new(program)
        .args(args)
        .output()
        .map_err(|err| format!("{program}: {err}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{program} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

fn cannot_run(why: &str) {
    assert!(!required(), "USERHUB_REQUIRE_FAULTS=1 but {why}");
    eprintln!("skipped: {why}");
}

fn delivery_body(index: usize, tag: &str) -> (String, String) {
    let clerk_id = format!("user_{tag}{index}");
    let body = envelope(
        "user.created",
        clerk_user(
            &clerk_id,
            &format!("{tag}{index}@storage.test"),
            "Stored",
            "member",
            1_700_000_000_000 + index as i64,
        ),
    );
    (clerk_id, body)
}

async fn active_clerk_ids(app: &TestApp) -> BTreeSet<String> {
    entity::user::Entity::find()
        .filter(entity::user::Column::IsActive.eq(true))
        .all(&app.db)
        .await
        .expect("users")
        .into_iter()
        .map(|user| user.clerk_id)
        .collect()
}

/// What one request during the run got back.
#[derive(Debug)]
enum Answer {
    Ok,
    /// A clean refusal: the status and `code`.
    Refused(u16, String),
    /// Anything else: no answer, not JSON, a code-less error.
    Unclear(String),
}

/// What kind of request, when it was answered, and how.
type Timed = (&'static str, Instant, Answer);

fn classify_graphql(status: u16, body: &Value) -> Answer {
    match body["errors"][0]["extensions"]["code"].as_str() {
        None if body["data"]["users"]["edges"].is_array() => Answer::Ok,
        // A field error leaves no users behind it: nothing half-answered.
        Some(code) if status != 200 || body["data"]["users"].is_null() => {
            Answer::Refused(status, code.to_owned())
        }
        _ => Answer::Unclear(format!("{status} {body}")),
    }
}

fn classify_webhook(status: u16, body: &Value) -> Answer {
    match (status, body["error"]["code"].as_str()) {
        (200, _) if body["status"] == "applied" || body["status"] == "duplicate" => Answer::Ok,
        (_, Some(code)) => Answer::Refused(status, code.to_owned()),
        _ => Answer::Unclear(format!("{status} {body}")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "restarts the machine's PostgreSQL: .ci/run runs it alone"]
async fn postgres_restarted_under_load_fails_cleanly_and_recovers_by_itself() {
    let Some(app) = spawn_app(Backend::Postgres, |_| {}).await else {
        return;
    };
    let Some(cluster) = std::fs::read_dir("/etc/postgresql")
        .ok()
        .and_then(|mut versions| versions.next())
        .and_then(|entry| entry.ok())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
    else {
        return cannot_run("no local PostgreSQL cluster in /etc/postgresql to restart");
    };
    let _restarts = StartsAgain(cluster.clone());
    let app = Arc::new(app);
    let running = Arc::new(AtomicBool::new(true));
    let answers: Arc<Mutex<Vec<Timed>>> = Arc::default();
    let acknowledged: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut clients = Vec::new();
    for client in 0..8 {
        let (app, running, answers, acknowledged) = (
            app.clone(),
            running.clone(),
            answers.clone(),
            acknowledged.clone(),
        );
        clients.push(tokio::spawn(async move {
            let mut index = 0;
            while running.load(Ordering::Relaxed) {
                index += 1;
                let (kind, answer) = if client % 2 == 0 {
                    let response = app
                        .client
                        .post(app.url("/graphql"))
                        .bearer_auth(&app.admin_token)
                        .json(&json!({ "query": "{ users(first: 5) { edges { node { id email organisation { name } } } } }" }))
                        .timeout(Duration::from_secs(15))
                        .send()
                        .await;
                    let answer = match response {
                        Ok(response) => {
                            let status = response.status().as_u16();
                            match response.json::<Value>().await {
                                Ok(body) => classify_graphql(status, &body),
                                Err(err) => Answer::Unclear(format!("{status}: {err}")),
                            }
                        }
                        Err(err) => Answer::Unclear(err.to_string()),
                    };
                    ("graphql", answer)
                } else {
                    let (clerk_id, body) = delivery_body(client * 100_000 + index, "restart");
                    let (status, answer) = app.deliver(&format!("msg_{clerk_id}"), &body).await;
                    let answer = classify_webhook(status, &answer);
                    if matches!(answer, Answer::Ok) {
                        acknowledged.lock().await.push(clerk_id);
                    }
                    ("webhook", answer)
                };
                answers.lock().await.push((kind, Instant::now(), answer));
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }));
    }
    let readiness = |app: Arc<TestApp>| async move {
        match app.client.get(app.url("/readyz")).send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                let body: Value = response.json().await.unwrap_or_default();
                (status, body)
            }
            Err(err) => (0, json!({ "transport": err.to_string() })),
        }
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(readiness(app.clone()).await.0, 200);
    // On PostgreSQL every change reaches a subscriber through LISTEN, on a connection the
    // restart cuts.
    let watcher = tokio::spawn(watch_until_told_of_a_gap(
        app.subscribe(&app.admin_token, USER_CHANGED, json!({}))
            .await,
    ));

    let stopped_at = Instant::now();
    run(
        "pg_ctlcluster",
        &[
            "--skip-systemctl-redirect",
            &cluster,
            "main",
            "stop",
            "-m",
            "fast",
        ],
    )
    .expect("PostgreSQL stops");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (status, during) = readiness(app.clone()).await;
    assert_eq!(status, 503, "{during}");
    assert_eq!(during["status"], "not_ready");
    assert_eq!(during["database"], "unreachable");
    assert_eq!(during["events"], "reconnecting");
    tokio::time::sleep(Duration::from_secs(3)).await;
    run(
        "pg_ctlcluster",
        &["--skip-systemctl-redirect", &cluster, "main", "start"],
    )
    .expect("PostgreSQL starts again");
    let started_at = Instant::now();
    let mut ready_after = None;
    while started_at.elapsed() < Duration::from_secs(30) {
        if readiness(app.clone()).await.0 == 200 {
            ready_after = Some(started_at.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ready_after = ready_after.expect("/readyz is ready again within 30 s, with no restart");
    let recovered_at = Instant::now();
    let mut fresh = app
        .subscribe(&app.admin_token, USER_CHANGED, json!({}))
        .await;
    let heard = fresh.next_data().await;
    assert!(
        heard["userChanged"]["user"]["email"].is_string(),
        "a subscriber opened after the restart hears the ongoing changes: {heard}"
    );
    let heard_after = recovered_at.elapsed();
    tokio::time::sleep(Duration::from_secs(3).saturating_sub(heard_after)).await;
    running.store(false, Ordering::Relaxed);
    for client in clients {
        client.await.expect("a client");
    }

    let answers = answers.lock().await;
    let unclear: Vec<_> = answers
        .iter()
        .filter(|(_, _, answer)| matches!(answer, Answer::Unclear(_)))
        .collect();
    assert!(unclear.is_empty(), "every answer is clear: {unclear:?}");
    let refused: Vec<_> = answers
        .iter()
        .filter_map(|(kind, at, answer)| match answer {
            Answer::Refused(status, code) => Some((*kind, *at, *status, code.as_str())),
            _ => None,
        })
        .collect();
    assert!(!refused.is_empty(), "the gap was felt");
    for (kind, _, status, code) in &refused {
        assert_eq!(
            *code, "DATABASE_UNAVAILABLE",
            "{kind}: a refusal during the gap says why"
        );
        // Authentication reads the caller's role before GraphQL runs, so a gap felt there is an
        // HTTP 503; one felt by a resolver is a field error, which GraphQL over HTTP answers 200.
        let statuses: &[u16] = if *kind == "graphql" {
            &[200, 503]
        } else {
            &[503]
        };
        assert!(
            statuses.contains(status),
            "{kind}: refused with {status}, not one of {statuses:?}"
        );
    }
    assert!(
        refused.iter().all(|(_, at, _, _)| *at >= stopped_at),
        "nothing failed before the stop"
    );
    let after = answers
        .iter()
        .filter(|(_, at, _)| *at > recovered_at + Duration::from_millis(500))
        .collect::<Vec<_>>();
    assert!(
        !after.is_empty()
            && after
                .iter()
                .all(|(_, _, answer)| matches!(answer, Answer::Ok)),
        "recovered by itself: {after:?}"
    );
    let (heard_before, told) = watcher.await.expect("the watcher");
    assert!(
        heard_before > 0,
        "the subscriber heard changes before the stop"
    );
    let (told_at, code) = told.expect("the subscriber cut off by the restart is told");
    assert_eq!(code, "EVENTS_MISSED");
    assert!(told_at >= stopped_at, "told of the gap only once it opened");

    let acknowledged: BTreeSet<String> = acknowledged.lock().await.iter().cloned().collect();
    let stored = active_clerk_ids(&app).await;
    let lost: Vec<_> = acknowledged.difference(&stored).collect();
    assert!(lost.is_empty(), "acknowledged but not stored: {lost:?}");
    eprintln!(
        "PostgreSQL restart: {} requests, {} refused with DATABASE_UNAVAILABLE during the gap \
         ({} as HTTP 503, {} as GraphQL field errors), 0 unclear; ready {:.1} s after PostgreSQL \
         started; {} webhooks acknowledged, 0 lost; the live subscriber heard {} changes, then \
         EVENTS_MISSED {:.1} s after the stop; a new one heard a change {:.1} s after recovery",
        answers.len(),
        refused.len(),
        refused
            .iter()
            .filter(|(_, _, status, _)| *status == 503)
            .count(),
        refused
            .iter()
            .filter(|(_, _, status, _)| *status == 200)
            .count(),
        ready_after.as_secs_f64(),
        acknowledged.len(),
        heard_before,
        (told_at - stopped_at).as_secs_f64(),
        heard_after.as_secs_f64(),
    );
}

/// Starts the PostgreSQL cluster when dropped, so a failing test does not leave it stopped for
/// the tests after it (starting a running cluster only fails).
struct StartsAgain(String);

impl Drop for StartsAgain {
    fn drop(&mut self) {
        let _ = run(
            "pg_ctlcluster",
            &["--skip-systemctl-redirect", &self.0, "main", "start"],
        );
    }
}

/// Reads `subscriber` until the server says it may have missed changes: returns how many
/// changes it heard first, and when and with which code it was told (`None` if it never was,
/// within 30 s, or the stream ended another way).
async fn watch_until_told_of_a_gap(
    mut subscriber: Subscriber,
) -> (usize, Option<(Instant, String)>) {
    let mut heard = 0;
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(30) {
        let Some(Ok(message)) = subscriber.message_within(Duration::from_secs(30)).await else {
            break;
        };
        if message["type"] != "next" {
            break;
        }
        match message["payload"]["errors"][0]["extensions"]["code"].as_str() {
            Some(code) => return (heard, Some((Instant::now(), code.to_owned()))),
            None => heard += 1,
        }
    }
    (heard, None)
}

/// A small file system of its own, unmounted when the test ends.
struct Mounted(std::path::PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = run("umount", &["-l", &self.0.display().to_string()]);
    }
}

#[tokio::test]
#[ignore = "mounts a file system: .ci/run runs it alone"]
async fn sqlite_on_a_full_disk_or_a_read_only_file_system_answers_clearly_and_keeps_its_file() {
    let dir = tempfile::tempdir().expect("a directory");
    let mount_point = dir.path().join("disk");
    std::fs::create_dir(&mount_point).expect("a mount point");
    let path = mount_point.display().to_string();
    if let Err(why) = run("mount", &["-t", "tmpfs", "-o", "size=8m", "tmpfs", &path]) {
        return cannot_run(&format!("cannot mount a small file system ({why})"));
    }
    let mounted = Mounted(mount_point.clone());
    let database_url = format!("sqlite://{path}/userhub.db?mode=rwc");
    let app = spawn_app(Backend::Sqlite, |config| {
        config.database_url = database_url.clone();
    })
    .await
    .expect("SQLite always runs");

    let mut acknowledged = BTreeSet::new();
    let mut deliver = async |index: usize, tag: &str| {
        let (clerk_id, body) = delivery_body(index, tag);
        let (status, answer) = app.deliver(&format!("msg_{clerk_id}"), &body).await;
        let answer = classify_webhook(status, &answer);
        if matches!(answer, Answer::Ok) {
            acknowledged.insert(clerk_id);
        }
        (answer, body)
    };
    for index in 0..20 {
        assert!(matches!(deliver(index, "before").await.0, Answer::Ok));
    }

    // Fill the disk.
    let filler = mount_point.join("filler");
    {
        use std::io::Write;
        let mut file = std::fs::File::create(&filler).expect("a filler file");
        let block = vec![0u8; 64 * 1024];
        while file.write_all(&block).is_ok() {}
        let _ = file.sync_all();
    }
    let mut refused = None;
    for index in 0..500 {
        match deliver(index, "full").await.0 {
            Answer::Ok => continue,
            Answer::Refused(status, code) => {
                refused = Some((index, status, code));
                break;
            }
            Answer::Unclear(what) => panic!("an unclear answer on a full disk: {what}"),
        }
    }
    let (first_refused, status, code) = refused.expect("a full disk refuses a write");
    assert_eq!((status, code.as_str()), (503, "DATABASE_UNAVAILABLE"));
    let mutation = app
        .graphql(
            r#"mutation { createOrganisation(input: { name: "Full Disk" }) { id } }"#,
            json!({}),
        )
        .await;
    assert_eq!(error_code(&mutation), "DATABASE_UNAVAILABLE", "{mutation}");
    assert!(
        mutation["errors"][0]["message"]
            .as_str()
            .is_some_and(|message| message.contains("disk is full")),
        "{mutation}"
    );
    let read = app
        .query("{ users(first: 3) { totalCount } }", json!({}))
        .await;
    assert!(
        read["users"]["totalCount"].as_i64() >= Some(21),
        "reads go on: {read}"
    );

    // Space again: Clerk's retry of the refused delivery is applied.
    std::fs::remove_file(&filler).expect("free the disk");
    assert!(matches!(deliver(first_refused, "full").await.0, Answer::Ok));
    let organisation = app
        .query(
            r#"mutation { createOrganisation(input: { name: "Space Again" }) { name } }"#,
            json!({}),
        )
        .await;
    assert_eq!(organisation["createOrganisation"]["name"], "Space Again");

    // Read-only: the same file, through a read-only view of its file system, served by a
    // second server process (a file system cannot be made read-only under open files).
    let view = dir.path().join("read-only");
    std::fs::create_dir(&view).expect("a mount point");
    let view_path = view.display().to_string();
    run("mount", &["--bind", &path, &view_path]).expect("a bind mount");
    let view_mount = Mounted(view.clone());
    run("mount", &["-o", "remount,bind,ro", &view_path]).expect("made read-only");
    let read_only_url = format!("sqlite://{view_path}/userhub.db?mode=rwc");
    let (_reader, reader) = crate::process::start_replica_with(
        &app,
        &[
            ("DATABASE_URL", read_only_url.as_str()),
            ("USERHUB_MIGRATE_ON_START", "false"),
        ],
    )
    .await;
    let (clerk_id, body) = delivery_body(0, "readonly");
    let answer = reqwest::Client::new()
        .post(format!("{reader}/api/webhooks/clerk"))
        .header("content-type", "application/json")
        .headers(
            crate::live::signed_headers(
                crate::helpers::WEBHOOK_SECRET,
                &format!("msg_{clerk_id}"),
                crate::live::now_seconds(),
                &body,
            )
            .into_iter()
            .map(|(name, value)| {
                (
                    reqwest::header::HeaderName::from_bytes(name.as_bytes()).expect("a name"),
                    reqwest::header::HeaderValue::from_str(&value).expect("a value"),
                )
            })
            .collect(),
        )
        .body(body)
        .send()
        .await
        .expect("an answer");
    let status = answer.status().as_u16();
    let answer: Value = answer.json().await.expect("JSON");
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (503, Some("DATABASE_UNAVAILABLE")),
        "{answer}"
    );
    assert!(
        answer["error"]["message"]
            .as_str()
            .is_some_and(|message| message.contains("read-only")),
        "{answer}"
    );
    let mutation = crate::faults::graphql_at(
        &reader,
        &app.admin_token,
        r#"mutation { createOrganisation(input: { name: "Read Only" }) { id } }"#,
        json!({}),
    )
    .await;
    assert_eq!(error_code(&mutation), "DATABASE_UNAVAILABLE", "{mutation}");
    let read = crate::faults::graphql_at(
        &reader,
        &app.admin_token,
        "{ users(first: 3) { totalCount } }",
        json!({}),
    )
    .await;
    assert!(
        read["data"]["users"]["totalCount"].as_i64() >= Some(21),
        "reads go on: {read}"
    );
    drop(view_mount);

    let stored = active_clerk_ids(&app).await;
    let lost: Vec<_> = acknowledged.difference(&stored).collect();
    assert!(lost.is_empty(), "acknowledged but not stored: {lost:?}");
    let rows = entity::user::Entity::find()
        .count(&app.db)
        .await
        .expect("count");
    let integrity = app
        .db
        .query_one_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Sqlite,
            "PRAGMA integrity_check",
        ))
        .await
        .expect("integrity check")
        .expect("a row")
        .try_get_by_index::<String>(0)
        .expect("text");
    assert_eq!(integrity, "ok");
    eprintln!(
        "SQLite: {} writes acknowledged; on the full disk write {} was refused with 503 \
         DATABASE_UNAVAILABLE, and so was one on a read-only file system; {rows} users \
         stored, 0 lost; integrity_check: {integrity}",
        acknowledged.len(),
        first_refused + 1
    );
    drop(app);
    drop(mounted);
}
