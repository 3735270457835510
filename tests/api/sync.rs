//! Sync: the reconciliation of every Clerk user with userhub's rows (DESIGN.md rule 4).

use sea_orm::{ConnectionTrait, EntityTrait, PaginatorTrait};
use serde_json::{Value, json};
use userhub::clerk::emulator::NewUser;
use userhub::service::sync::{self, Started};

use crate::helpers::{TestApp, TestUser, error_code, on_both_databases};

on_both_databases!(
    a_sync_of_10000_users_then_a_rerun_writes_nothing_and_removals_are_deactivated,
    a_second_sync_request_gets_the_running_one_and_a_dead_run_is_failed,
    sync_status_reports_the_drift_and_a_sync_repairs_it,
    a_change_clerk_accepted_but_the_database_missed_is_repaired_by_the_next_sync,
    a_user_who_signs_up_during_a_sync_is_not_deactivated_by_it,
);

const SYNC: &str =
    "mutation { syncUsers(wait: true) { id status seen created updated deactivated error } }";

async fn audit_count(app: &TestApp) -> u64 {
    entity::audit_event::Entity::find()
        .count(&app.db)
        .await
        .expect("count")
}

async fn a_sync_of_10000_users_then_a_rerun_writes_nothing_and_removals_are_deactivated(
    app: TestApp,
) {
    let org = app.create_organisation("Everyone").await;
    for i in 0..10_000 {
        app.clerk
            .emulator
            .create_user(NewUser {
                email: format!("person{i:05}@uni.test"),
                first_name: Some(format!("Person {i}")),
                last_name: None,
                public_metadata: json!({ "role": "lecturer", "organisationId": org.id.to_string() }),
            })
            .expect("a Clerk user");
    }

    let first = app.query(SYNC, json!({})).await["syncUsers"].clone();
    assert_eq!(first["status"], "SUCCEEDED", "{first}");
    // The 10,000 and the test's admin, who was already here.
    assert_eq!(first["seen"], 10_001);
    assert_eq!(first["created"], 10_000);
    assert_eq!(first["deactivated"], 0);
    let data = app
        .query(r#"{ users(filter: { role: LECTURER }) { totalCount } organisations { nodes { memberCount } } }"#, json!({}))
        .await;
    assert_eq!(data["users"]["totalCount"], 10_000);
    assert_eq!(data["organisations"]["nodes"][0]["memberCount"], 10_000);

    // Nothing changed in Clerk: nothing is written but the run's own row.
    let audit_before = audit_count(&app).await;
    let second = app.query(SYNC, json!({})).await["syncUsers"].clone();
    assert_eq!(second["status"], "SUCCEEDED");
    assert_eq!(
        (
            second["created"].clone(),
            second["updated"].clone(),
            second["deactivated"].clone()
        ),
        (json!(0), json!(0), json!(0))
    );
    assert_eq!(
        audit_count(&app).await,
        audit_before,
        "a no-change rerun writes no audit event"
    );

    // Removed in Clerk between two syncs: deactivated by the next.
    let gone = app.create_user(TestUser::new("gone@uni.test")).await;
    assert!(app.clerk.emulator.delete_user(&gone.clerk_id));
    let third = app.query(SYNC, json!({})).await["syncUsers"].clone();
    assert_eq!(third["deactivated"], 1);
    let data = app
        .query(
            "query($id: ID!) { user(id: $id) { isActive } }",
            json!({ "id": gone.id }),
        )
        .await;
    assert_eq!(data["user"]["isActive"], false);
}

async fn a_second_sync_request_gets_the_running_one_and_a_dead_run_is_failed(app: TestApp) {
    let Started::New(running) = sync::start(&app.db, "test", std::time::Duration::from_secs(60))
        .await
        .expect("start")
    else {
        panic!("nothing else runs");
    };
    let answer = app
        .query("mutation { syncUsers { id status } }", json!({}))
        .await;
    assert_eq!(
        answer["syncUsers"],
        json!({ "id": running.id.to_string(), "status": "RUNNING" })
    );

    // The process running it died: its heartbeat stops. The next request fails it and starts.
    app.db
        .execute_unprepared("UPDATE sync_runs SET heartbeat_at = started_at - interval '1 hour'")
        .await
        .or(app
            .db
            .execute_unprepared("UPDATE sync_runs SET heartbeat_at = '2000-01-01 00:00:00+00:00'")
            .await)
        .expect("age the heartbeat");
    let fresh = app.query(SYNC, json!({})).await["syncUsers"].clone();
    assert_eq!(fresh["status"], "SUCCEEDED");
    assert_ne!(fresh["id"], running.id.to_string());
    let dead = app
        .query(
            "query($id: ID!) { syncRun(id: $id) { status error } }",
            json!({ "id": running.id }),
        )
        .await;
    assert_eq!(dead["syncRun"]["status"], "FAILED");
    assert!(
        dead["syncRun"]["error"]
            .as_str()
            .expect("error")
            .contains("interrupted")
    );
}

async fn sync_status_reports_the_drift_and_a_sync_repairs_it(app: TestApp) {
    let org = app.create_organisation("Drift").await;
    // Only in Clerk.
    app.create_clerk_user(TestUser::new("newcomer@uni.test"));
    // Only here (deleted in Clerk behind userhub's back).
    let orphan = app.create_user(TestUser::new("orphan@uni.test")).await;
    app.clerk.emulator.delete_user(&orphan.clerk_id);
    // Different in Clerk.
    let changed = app.create_user(TestUser::new("changed@uni.test")).await;
    app.clerk.emulator.merge_public_metadata(
        &changed.clerk_id,
        json!({ "role": "lecturer", "organisationId": org.id.to_string() }),
    );
    // An organisation userhub does not have.
    app.create_clerk_user(TestUser::new("lost@uni.test").in_organisation(uuid::Uuid::now_v7()));

    let before = sync_status(&app).await;
    assert_eq!(
        before,
        json!({
            "clerkCount": 4, "databaseCount": 3, "inSync": false,
            "missingInDatabase": { "count": 2, "sample": ["newcomer@uni.test", "lost@uni.test"] },
            "missingInClerk": { "count": 1, "sample": ["orphan@uni.test"] },
            "differing": { "count": 1, "sample": ["changed@uni.test"] },
            "unknownOrganisations": { "count": 1, "sample": ["lost@uni.test"] },
            "lastRun": null,
        })
    );

    let run = app.query(SYNC, json!({})).await["syncUsers"].clone();
    assert_eq!(
        (
            run["created"].clone(),
            run["updated"].clone(),
            run["deactivated"].clone()
        ),
        (json!(2), json!(1), json!(1))
    );
    let after = sync_status(&app).await;
    assert_eq!(after["inSync"], true, "{after}");
    assert_eq!(
        after["unknownOrganisations"]["count"], 1,
        "still reported, kept unassigned"
    );
    assert_eq!(after["lastRun"]["status"], "SUCCEEDED");
}

async fn a_change_clerk_accepted_but_the_database_missed_is_repaired_by_the_next_sync(
    app: TestApp,
) {
    let user = app.create_user(TestUser::new("fragile@uni.test")).await;
    // The database refuses writes to the audit trail, so the change cannot be recorded.
    app.db
        .execute_unprepared("ALTER TABLE audit_events RENAME TO audit_events_away")
        .await
        .expect("hide the table");
    let body = app
        .graphql(
            r#"mutation($id: ID!) { updateUser(id: $id, input: { role: LECTURER }) { role } }"#,
            json!({ "id": user.id }),
        )
        .await;
    assert_eq!(error_code(&body), "INTERNAL_SERVER_ERROR");
    let message = body["errors"][0]["message"].as_str().expect("message");
    assert!(message.contains("Clerk accepted the change"), "{message}");
    app.db
        .execute_unprepared("ALTER TABLE audit_events_away RENAME TO audit_events")
        .await
        .expect("bring the table back");
    // Clerk has it; userhub does not yet.
    let in_clerk = app.clerk.emulator.user(&user.clerk_id).expect("in Clerk");
    assert_eq!(in_clerk.public_metadata["role"], "lecturer");
    assert_eq!(role_of(&app, user.id).await, Value::from("MEMBER"));

    let run = app.query(SYNC, json!({})).await["syncUsers"].clone();
    assert_eq!(run["updated"], 1);
    assert_eq!(role_of(&app, user.id).await, Value::from("LECTURER"));
}

async fn sync_status(app: &TestApp) -> Value {
    app.query(
        r#"{ syncStatus { clerkCount databaseCount inSync
            missingInDatabase { count sample } missingInClerk { count sample }
            differing { count sample } unknownOrganisations { count sample }
            lastRun { status } } }"#,
        json!({}),
    )
    .await["syncStatus"]
        .clone()
}

async fn role_of(app: &TestApp, id: uuid::Uuid) -> Value {
    app.query(
        "query($id: ID!) { user(id: $id) { role } }",
        json!({ "id": id }),
    )
    .await["user"]["role"]
        .clone()
}

/// Clerk lists its users; a person signs up after the last page was read and their
/// `user.created` is stored before the sync ends. They were never "missing" from Clerk: the
/// sync leaves them active.
async fn a_user_who_signs_up_during_a_sync_is_not_deactivated_by_it(app: TestApp) {
    app.create_user(TestUser::new("before@sync.test")).await;
    // The count and the page are computed at once and answered 1.5 s later.
    let hold = std::time::Duration::from_millis(1500);
    app.clerk
        .emulator
        .inject(userhub::clerk::emulator::Fault::SlowAnswer(hold), 2);
    let run = app.query("mutation { syncUsers { id } }", json!({})).await["syncUsers"]["id"]
        .as_str()
        .expect("a run")
        .to_owned();
    // Once Clerk has made the page (and before the sync has it), the person signs up.
    let listed = || {
        app.clerk
            .emulator
            .requests()
            .iter()
            .any(|(method, path, _)| {
                method == "GET" && path.starts_with("/users") && !path.starts_with("/users/count")
            })
    };
    let waited = std::time::Instant::now();
    while !listed() {
        assert!(
            waited.elapsed() < std::time::Duration::from_secs(10),
            "the sync lists Clerk's users"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let newcomer = app.create_user(TestUser::new("newcomer@sync.test")).await;
    let finished = loop {
        let run = app
            .query(
                "query($id: ID!) { syncRun(id: $id) { status seen deactivated } }",
                json!({ "id": run }),
            )
            .await["syncRun"]
            .clone();
        if run["status"] != "RUNNING" {
            break run;
        }
        assert!(
            waited.elapsed() < std::time::Duration::from_secs(20),
            "the sync ends"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(finished["status"], "SUCCEEDED", "{finished}");
    assert_eq!(finished["deactivated"], 0, "{finished}");
    let user = app
        .query(
            "query($id: ID!) { user(id: $id) { isActive } }",
            json!({ "id": newcomer.id.to_string() }),
        )
        .await;
    assert_eq!(user["user"]["isActive"], true, "{user}");
}
