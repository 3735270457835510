//! Faults: the server killed with SIGKILL in the middle of a sync and of webhook delivery, and
//! Clerk down, slow or rate-limiting under every mutation that calls it. Nothing acknowledged
//! is lost, nothing is half-written, every failure is a clear error, and a rerun (or Clerk's
//! redelivery) brings the database back to Clerk's state.
//!
//! The database faults (PostgreSQL restarted under load, SQLite's disk full or read-only)
//! touch the machine, so they live in `storage_faults.rs` and run alone from `.ci/run`.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, Instant};

use entity::role::Role;
use sea_orm::{EntityTrait, PaginatorTrait, QueryOrder};
use serde_json::{Value, json};
use userhub::clerk::emulator::Fault;
use userhub::clerk::emulator::webhooks::Endpoint;
use userhub::config::Config;

use crate::helpers::{
    TestApp, TestUser, WEBHOOK_SECRET, error_code, metric, on_both_databases, scrape_metrics,
};
use crate::process::start_replica_with;

on_both_databases!(
    a_sync_killed_midway_is_failed_on_restart_and_a_rerun_converges,
    a_server_killed_during_webhook_delivery_loses_nothing_once_clerk_redelivers,
    every_mutation_that_calls_clerk_fails_cleanly_when_clerk_is_down_slow_or_limiting
        => short_clerk_timeout,
);

fn short_clerk_timeout(config: &mut Config) {
    config.clerk_timeout_ms = 300;
}

/// A short heartbeat, so a killed run is noticed in seconds rather than a minute.
const STALE_AFTER: (&str, &str) = ("USERHUB_SYNC_STALE_AFTER_SECONDS", "2");

pub(crate) async fn graphql_at(address: &str, token: &str, query: &str, variables: Value) -> Value {
    reqwest::Client::new()
        .post(format!("{address}/graphql"))
        .bearer_auth(token)
        .json(&json!({ "query": query, "variables": variables }))
        .send()
        .await
        .expect("the server answers")
        .json()
        .await
        .expect("a JSON answer")
}

/// Polls `check` every 100 ms until it holds; panics with `what` after `limit`.
pub(crate) async fn wait_until<F, Fut>(limit: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let started = Instant::now();
    while !check().await {
        assert!(started.elapsed() < limit, "gave up after {limit:?}: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn sync_run(app: &TestApp, id: &str) -> Value {
    app.query(
        "query($id: ID!) { syncRun(id: $id) { status seen error } }",
        json!({ "id": id }),
    )
    .await["syncRun"]
        .clone()
}

/// Every Clerk user is an active row here with the same email and role, and no other row is
/// active: the database equals the emulator's state.
async fn assert_database_matches_clerk(app: &TestApp) {
    let clerk: BTreeMap<String, (String, String)> = app
        .clerk
        .emulator
        .users()
        .into_iter()
        .map(|user| {
            let email = user.primary_email().unwrap_or_default().to_lowercase();
            let role = user.public_metadata["role"]
                .as_str()
                .unwrap_or("member")
                .to_owned();
            (user.id, (email, role))
        })
        .collect();
    let here: BTreeMap<String, (String, String)> = entity::user::Entity::find()
        .all(&app.db)
        .await
        .expect("users")
        .into_iter()
        .filter(|user| user.is_active)
        .map(|user| {
            (
                user.clerk_id,
                (user.email.to_lowercase(), user.role.as_str().to_owned()),
            )
        })
        .collect();
    assert_eq!(here.len(), clerk.len(), "as many active users as Clerk has");
    for (clerk_id, expected) in &clerk {
        assert_eq!(here.get(clerk_id), Some(expected), "{clerk_id}");
    }
}

async fn a_sync_killed_midway_is_failed_on_restart_and_a_rerun_converges(app: TestApp) {
    const USERS: usize = 1_500;
    for index in 0..USERS {
        app.create_clerk_user(TestUser::new(&format!("member{index}@kill.test")));
    }
    // Every Clerk call takes 400 ms, so the run is still reading when it is killed.
    app.clerk
        .emulator
        .inject(Fault::Slow(Duration::from_millis(400)), 50);
    let (first, address) = start_replica_with(&app, &[STALE_AFTER]).await;
    let started = graphql_at(
        &address,
        &app.admin_token,
        "mutation { syncUsers { id status } }",
        json!({}),
    )
    .await;
    let run_id = started["data"]["syncUsers"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("a run: {started}"))
        .to_owned();
    wait_until(
        Duration::from_secs(30),
        "the first page is written",
        || async { sync_run(&app, &run_id).await["seen"].as_i64() >= Some(500) },
    )
    .await;
    drop(first); // SIGKILL, mid-run
    let killed = sync_run(&app, &run_id).await;
    assert_eq!(
        killed["status"], "RUNNING",
        "nobody has noticed yet: {killed}"
    );
    assert!(killed["seen"].as_i64() < Some(USERS as i64 + 1), "{killed}");
    app.clerk.emulator.clear_faults();

    let (_second, address) = start_replica_with(&app, &[STALE_AFTER]).await;
    let restarted = Instant::now();
    wait_until(
        Duration::from_secs(15),
        "the restarted server fails the dead run",
        || async { sync_run(&app, &run_id).await["status"] == "FAILED" },
    )
    .await;
    let noticed = restarted.elapsed();
    let failed = sync_run(&app, &run_id).await;
    assert!(
        failed["error"]
            .as_str()
            .is_some_and(|error| error.contains("interrupted")),
        "{failed}"
    );

    let rerun = graphql_at(
        &address,
        &app.admin_token,
        "mutation { syncUsers(wait: true) { id status seen } }",
        json!({}),
    )
    .await;
    assert_eq!(rerun["data"]["syncUsers"]["status"], "SUCCEEDED", "{rerun}");
    assert_eq!(
        rerun["data"]["syncUsers"]["seen"],
        USERS + 1,
        "the admin too"
    );
    let status = graphql_at(
        &address,
        &app.admin_token,
        "{ syncStatus { inSync clerkCount databaseCount } }",
        json!({}),
    )
    .await;
    assert_eq!(
        status["data"]["syncStatus"],
        json!({ "inSync": true, "clerkCount": USERS + 1, "databaseCount": USERS + 1 })
    );
    assert_database_matches_clerk(&app).await;
    eprintln!(
        "sync killed after {} of {} users; marked failed {:.1} s after the restart; the rerun \
         saw {}, and the database equals Clerk",
        killed["seen"],
        USERS + 1,
        noticed.as_secs_f64(),
        rerun["data"]["syncUsers"]["seen"]
    );

    let metrics = scrape_metrics(&address).await;
    assert_eq!(
        metric(&metrics, "userhub_sync_runs_total{outcome=\"interrupted\"}"),
        1
    );
    assert_eq!(
        metric(&metrics, "userhub_sync_runs_total{outcome=\"succeeded\"}"),
        1
    );
}

async fn a_server_killed_during_webhook_delivery_loses_nothing_once_clerk_redelivers(app: TestApp) {
    const USERS: usize = 400;
    let (first, address) = start_replica_with(&app, &[]).await;
    app.clerk.emulator.deliver_webhooks(Endpoint {
        url: format!("{address}/api/webhooks/clerk"),
        secret: WEBHOOK_SECRET.to_owned(),
        switches: Default::default(),
    });
    for index in 0..USERS {
        app.create_clerk_user(TestUser::new(&format!("arrival{index}@kill.test")));
    }
    wait_until(Duration::from_secs(60), "100 deliveries", || async {
        app.clerk.emulator.webhook_deliveries().len() >= 100
    })
    .await;
    drop(first); // SIGKILL, while deliveries flow
    let acknowledged_before_the_kill = app
        .clerk
        .emulator
        .webhook_deliveries()
        .iter()
        .filter(|delivery| (200..300).contains(&delivery.status))
        .count();

    // Down long enough that some deliveries exhaust the emulator's quick retries, as Clerk's
    // first retries can be exhausted during a longer outage.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    // The same address, as a restarted server has.
    let listen = address.trim_start_matches("http://").to_owned();
    let (_second, again) = start_replica_with(&app, &[("USERHUB_LISTEN", &listen)]).await;
    assert_eq!(again, address);
    wait_until(
        Duration::from_secs(120),
        "every event was tried",
        || async { app.clerk.emulator.webhook_deliveries().len() >= USERS },
    )
    .await;
    let failed = app.clerk.emulator.recover_webhooks();
    assert!(
        failed > 0,
        "some deliveries failed while the server was down"
    );
    wait_until(
        Duration::from_secs(60),
        "the failed ones were sent again",
        || async { app.clerk.emulator.webhook_deliveries().len() >= USERS + failed },
    )
    .await;
    let mut last_status: BTreeMap<String, u16> = BTreeMap::new();
    for delivery in app.clerk.emulator.webhook_deliveries() {
        last_status.insert(delivery.id, delivery.status);
    }
    assert_eq!(last_status.len(), USERS);
    assert!(
        last_status
            .values()
            .all(|status| (200..300).contains(status)),
        "every event is acknowledged in the end: {last_status:?}"
    );
    eprintln!(
        "{acknowledged_before_the_kill} deliveries acknowledged before the kill, {failed} failed \
         around it and were recovered"
    );
    assert_database_matches_clerk(&app).await;
    let recorded = entity::webhook_delivery::Entity::find()
        .count(&app.db)
        .await
        .expect("deliveries");
    assert_eq!(recorded, USERS as u64, "each delivery recorded once");
}

/// What userhub holds, to compare before and after a failed mutation.
async fn snapshot(
    app: &TestApp,
) -> (
    Vec<entity::user::Model>,
    Vec<entity::invitation::Model>,
    u64,
) {
    let users = entity::user::Entity::find()
        .order_by_asc(entity::user::Column::Id)
        .all(&app.db)
        .await
        .expect("users");
    let invitations = entity::invitation::Entity::find()
        .order_by_asc(entity::invitation::Column::Id)
        .all(&app.db)
        .await
        .expect("invitations");
    let audit = entity::audit_event::Entity::find()
        .count(&app.db)
        .await
        .expect("audit");
    (users, invitations, audit)
}

async fn every_mutation_that_calls_clerk_fails_cleanly_when_clerk_is_down_slow_or_limiting(
    app: TestApp,
) {
    let faults: [(&str, Fault); 4] = [
        ("down", Fault::ServerError),
        ("slow", Fault::Slow(Duration::from_secs(1))),
        (
            "rate-limited for an hour",
            Fault::RateLimited {
                retry_after_seconds: 3600,
            },
        ),
        (
            "rate-limited every time",
            Fault::RateLimited {
                retry_after_seconds: 0,
            },
        ),
    ];
    let mut case = 0;
    for (fault_name, fault) in faults {
        for mutation in [
            "updateUser",
            "removeUser",
            "suspendUser",
            "unsuspendUser",
            "inviteUser",
            "inviteUsers",
            "revokeInvitation",
            "syncUsers",
        ] {
            case += 1;
            let email = format!("case{case}@faults.test");
            let user = app.create_user(TestUser::new(&email)).await;
            let (operation, variables) = match mutation {
                "updateUser" => (
                    r#"mutation($id: ID!) { updateUser(id: $id, input: { role: LECTURER, firstName: "New" }) { id } }"#,
                    json!({ "id": user.id }),
                ),
                "removeUser" => (
                    "mutation($id: ID!) { removeUser(id: $id) { id } }",
                    json!({ "id": user.id }),
                ),
                "suspendUser" => (
                    "mutation($id: ID!) { suspendUser(id: $id) { id } }",
                    json!({ "id": user.id }),
                ),
                "unsuspendUser" => {
                    let suspended = app
                        .graphql(
                            "mutation($id: ID!) { suspendUser(id: $id) { isSuspended } }",
                            json!({ "id": user.id }),
                        )
                        .await;
                    assert_eq!(
                        suspended["data"]["suspendUser"]["isSuspended"], true,
                        "{suspended}"
                    );
                    (
                        "mutation($id: ID!) { unsuspendUser(id: $id) { id } }",
                        json!({ "id": user.id }),
                    )
                }
                "inviteUser" => (
                    "mutation($email: String!) { inviteUser(input: { email: $email, role: LECTURER }) { id } }",
                    json!({ "email": format!("invitee{case}@faults.test") }),
                ),
                "inviteUsers" => (
                    "mutation($inputs: [InviteUserInput!]!) { inviteUsers(inputs: $inputs) { email invitation { id } error { code message } } }",
                    json!({ "inputs": [
                        { "email": format!("first{case}@faults.test"), "role": "LECTURER" },
                        { "email": format!("second{case}@faults.test"), "role": "LECTURER" },
                    ] }),
                ),
                "revokeInvitation" => {
                    let invitation = app
                        .invite(&format!("pending{case}@faults.test"), Role::Member, None)
                        .await;
                    (
                        "mutation($id: ID!) { revokeInvitation(id: $id) { id } }",
                        json!({ "id": invitation.id }),
                    )
                }
                _ => ("mutation { syncUsers(wait: true) { id } }", json!({})),
            };
            let before = snapshot(&app).await;
            app.clerk.emulator.inject(fault, 100);
            let started = Instant::now();
            let body = app.graphql(operation, variables).await;
            let took = started.elapsed();
            app.clerk.emulator.clear_faults();
            let what = format!("{mutation} with Clerk {fault_name}");
            // A bulk invitation answers for each item; the others, for the whole operation.
            let errors: Vec<&Value> = if mutation == "inviteUsers" {
                let items = body["data"]["inviteUsers"].as_array().expect("items");
                assert_eq!(items.len(), 2, "{what}: {body}");
                for item in items {
                    assert!(item["invitation"].is_null(), "{what}: {body}");
                    assert_eq!(
                        item["error"]["code"], "UPSTREAM_UNAVAILABLE",
                        "{what}: {body}"
                    );
                }
                items.iter().map(|item| &item["error"]).collect()
            } else {
                assert_eq!(error_code(&body), "UPSTREAM_UNAVAILABLE", "{what}: {body}");
                assert!(
                    body["errors"][0]["extensions"]["requestId"].is_string(),
                    "{what}: the error names its request: {body}"
                );
                vec![&body["errors"][0]]
            };
            for error in errors {
                assert!(
                    error["message"]
                        .as_str()
                        .is_some_and(|message| message.starts_with("Clerk is unavailable")),
                    "{what}: {body}"
                );
            }
            // Bounded: four attempts of at most 300 ms and their backoff (3.2 s at most, on an
            // idle machine) for each Clerk call, not the 100 faults queued; at once when Clerk
            // asks for a wait longer than the client would make (the bounds leave room for a
            // loaded machine).
            let calls = if mutation == "inviteUsers" { 2 } else { 1 };
            assert!(
                took < Duration::from_secs(15) * calls,
                "{what} took {took:?}"
            );
            if fault_name == "rate-limited for an hour" {
                assert!(took < Duration::from_secs(5), "{what} took {took:?}");
            }
            assert!(
                before == snapshot(&app).await,
                "{what}: userhub's users, invitations and audit trail are unchanged"
            );
        }
    }
    // A slow Clerk may have done what it was asked after userhub stopped waiting (as real
    // Clerk can); the webhook, or as here a sync, brings userhub in line.
    let synced = app
        .query("mutation { syncUsers(wait: true) { status } }", json!({}))
        .await;
    assert_eq!(synced["syncUsers"]["status"], "SUCCEEDED");
    let status = app.query("{ syncStatus { inSync } }", json!({})).await;
    assert_eq!(status["syncStatus"]["inSync"], true);
    assert_eq!(
        app.metrics
            .operation_count("mutation", "updateUser", "UPSTREAM_UNAVAILABLE"),
        4
    );
}
