//! Bulk operations as jobs (issue 19.1): `suspendUsers`, `unsuspendUsers`, `removeUsers`,
//! `updateUsers` on ids or a filter; a dry run plans and touches nothing; a real run goes
//! through each user's own operation (access, Clerk, audit, live) in the background, followed
//! by `bulkJobProgress`.

use entity::role::Role;
use serde_json::{Value, json};

use userhub::clerk::emulator::Fault;

use crate::helpers::{TestApp, TestUser, error_code, on_both_databases};

on_both_databases!(
    a_dry_run_plans_and_touches_nothing_then_the_job_does_it,
    update_users_by_filter_and_the_bounds_of_a_bulk_operation,
    a_job_is_its_requesters_and_the_admins,
    a_requester_runs_three_jobs_at_most_and_a_demoted_one_stops_theirs,
    a_job_is_abandoned_when_it_stops_beating_not_when_it_runs_long,
);

const JOB_FIELDS: &str = "id kind status dryRun total done changed unchanged refused error
    results { userId email outcome code }";

struct Department {
    organisation: uuid::Uuid,
    head: entity::user::Model,
    lecturers: Vec<entity::user::Model>,
}

async fn department(app: &TestApp, name: &str, domain: &str, people: usize) -> Department {
    let organisation = app.create_organisation(name).await.id;
    let email =
        |local: String| -> &'static str { Box::leak(format!("{local}@{domain}").into_boxed_str()) };
    let head = app
        .create_user(
            TestUser::new(email("head".to_owned()))
                .role(Role::OrgAdmin)
                .in_organisation(organisation),
        )
        .await;
    let mut lecturers = Vec::new();
    for n in 0..people {
        lecturers.push(
            app.create_user(
                TestUser::new(email(format!("l{n}")))
                    .role(Role::Lecturer)
                    .in_organisation(organisation),
            )
            .await,
        );
    }
    Department {
        organisation,
        head,
        lecturers,
    }
}

/// Follows a job to its end over `bulkJobProgress`; answers its last state.
async fn finished(app: &TestApp, token: &str, id: &Value) -> Value {
    followed_to_its_end(app, token, JOB_FIELDS, id).await
}

/// Follows a job to its end over `bulkJobProgress`, selecting `fields`; answers its last state.
pub(crate) async fn followed_to_its_end(
    app: &TestApp,
    token: &str,
    fields: &str,
    id: &Value,
) -> Value {
    let mut progress = app
        .subscribe(
            token,
            &format!("subscription ($id: ID!) {{ bulkJobProgress(id: $id) {{ {fields} }} }}"),
            json!({ "id": id }),
        )
        .await;
    loop {
        let data = progress.next_data().await;
        let job = data["bulkJobProgress"].clone();
        if job["status"] != "RUNNING" {
            return job;
        }
    }
}

fn outcomes(job: &Value) -> Vec<(String, String)> {
    job["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|result| {
            (
                result["email"].as_str().unwrap_or_default().to_owned(),
                result["outcome"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

async fn a_dry_run_plans_and_touches_nothing_then_the_job_does_it(app: TestApp) {
    let physics = department(&app, "Physics", "physics.test", 3).await;
    let biology = department(&app, "Biology", "biology.test", 1).await;
    let head = app.token_for(&physics.head);
    let already = &physics.lecturers[2];
    let body = app
        .graphql(
            "mutation ($id: ID!) { suspendUser(id: $id) { id } }",
            json!({ "id": already.id.to_string() }),
        )
        .await;
    assert!(body.get("errors").is_none(), "{body}");
    let ghost = uuid::Uuid::now_v7();
    let ids: Vec<String> = physics
        .lecturers
        .iter()
        .map(|user| user.id.to_string())
        .chain([
            biology.lecturers[0].id.to_string(),
            ghost.to_string(),
            physics.head.id.to_string(),
        ])
        .collect();
    let suspend = format!(
        "mutation ($ids: [ID!], $dry: Boolean!) {{ suspendUsers(targets: {{ ids: $ids }}, dryRun: $dry) {{ {JOB_FIELDS} }} }}"
    );
    let bans_before = app
        .clerk
        .emulator
        .users()
        .iter()
        .filter(|user| user.banned)
        .count();

    let plan = app
        .query_as(&head, &suspend, json!({ "ids": ids, "dry": true }))
        .await["suspendUsers"]
        .clone();
    assert_eq!(plan["status"], "SUCCEEDED");
    assert_eq!(plan["dryRun"], true);
    assert_eq!(
        (
            &plan["total"],
            &plan["changed"],
            &plan["unchanged"],
            &plan["refused"]
        ),
        (&json!(6), &json!(2), &json!(1), &json!(3))
    );
    assert_eq!(
        outcomes(&plan),
        [
            ("".to_owned(), "REFUSED".to_owned()),
            ("l0@physics.test".to_owned(), "WOULD_CHANGE".to_owned()),
            ("l1@physics.test".to_owned(), "WOULD_CHANGE".to_owned()),
            ("l2@physics.test".to_owned(), "UNCHANGED".to_owned()),
            // Another organisation's lecturer: refused, and not named.
            ("".to_owned(), "REFUSED".to_owned()),
            ("head@physics.test".to_owned(), "REFUSED".to_owned()),
        ]
    );
    let codes: Vec<&Value> = plan["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|result| &result["code"])
        .collect();
    assert_eq!(
        codes,
        [
            &json!("NOT_FOUND"),
            &Value::Null,
            &Value::Null,
            &Value::Null,
            &json!("FORBIDDEN"),
            &json!("CONFLICT")
        ]
    );
    // Nothing was touched: Clerk's bans and userhub's rows are as they were.
    assert_eq!(
        app.clerk
            .emulator
            .users()
            .iter()
            .filter(|user| user.banned)
            .count(),
        bans_before
    );
    let read = app
        .query(
            "query ($id: ID!) { user(id: $id) { isSuspended } }",
            json!({ "id": physics.lecturers[0].id.to_string() }),
        )
        .await;
    assert_eq!(read["user"]["isSuspended"], false);

    // The real run: a job, followed to its end.
    let mut changes = app
        .subscribe(
            &head,
            "subscription { userChanged { kind user { email } } }",
            json!({}),
        )
        .await;
    let job = app
        .query_as(&head, &suspend, json!({ "ids": ids, "dry": false }))
        .await["suspendUsers"]
        .clone();
    assert_eq!(job["dryRun"], false);
    let done = finished(&app, &head, &job["id"]).await;
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    assert_eq!(
        (
            &done["total"],
            &done["done"],
            &done["changed"],
            &done["unchanged"],
            &done["refused"]
        ),
        (&json!(6), &json!(6), &json!(2), &json!(1), &json!(3))
    );
    assert_eq!(
        outcomes(&done)[1],
        ("l0@physics.test".to_owned(), "CHANGED".to_owned())
    );
    for lecturer in &physics.lecturers[..2] {
        let read = app
            .query(
                "query ($id: ID!) { user(id: $id) { isSuspended } }",
                json!({ "id": lecturer.id.to_string() }),
            )
            .await;
        assert_eq!(read["user"]["isSuspended"], true);
        assert!(
            app.clerk
                .emulator
                .user(&lecturer.clerk_id)
                .expect("in Clerk")
                .banned,
            "banned in Clerk"
        );
    }
    // Each through the single operation: published, and audited by the head.
    for _ in 0..2 {
        let change = changes.next_data().await;
        assert_eq!(change["userChanged"]["kind"], "SUSPENDED");
    }
    let trail = app
        .query(
            r#"query ($actor: String!) { auditLog(filter: { actor: $actor, action: "user.suspended" }) { totalCount } }"#,
            json!({ "actor": physics.head.id.to_string() }),
        )
        .await;
    assert_eq!(trail["auditLog"]["totalCount"], 2);
    let _ = biology.organisation;
}

async fn update_users_by_filter_and_the_bounds_of_a_bulk_operation(app: TestApp) {
    let physics = department(&app, "Physics", "physics.test", 4).await;
    let update = format!(
        "mutation ($org: ID!) {{ updateUsers(targets: {{ filter: {{ organisationId: $org, role: LECTURER }} }}, input: {{ role: MEMBER }}) {{ {JOB_FIELDS} }} }}"
    );
    let job = app
        .query(&update, json!({ "org": physics.organisation.to_string() }))
        .await["updateUsers"]
        .clone();
    let done = finished(&app, &app.admin_token, &job["id"]).await;
    assert_eq!(
        (&done["changed"], &done["refused"]),
        (&json!(4), &json!(0)),
        "{done}"
    );
    let members = app
        .query(
            "query ($org: ID!) { users(filter: { organisationId: $org, role: MEMBER }) { totalCount } }",
            json!({ "org": physics.organisation.to_string() }),
        )
        .await;
    assert_eq!(members["users"]["totalCount"], 4);

    // Clear refusals, and nothing started.
    let id = physics.lecturers[0].id.to_string();
    let many: Vec<String> = (0..1001)
        .map(|_| uuid::Uuid::now_v7().to_string())
        .collect();
    for (document, variables, field) in [
        (
            "mutation ($ids: [ID!]) { suspendUsers(targets: { ids: $ids, filter: {} }) { id } }",
            json!({ "ids": [id] }),
            "targets",
        ),
        (
            "mutation { suspendUsers(targets: {}) { id } }",
            json!({}),
            "targets",
        ),
        (
            "mutation ($ids: [ID!]) { updateUsers(targets: { ids: $ids }, input: {}) { id } }",
            json!({ "ids": [id] }),
            "input",
        ),
        (
            "mutation ($ids: [ID!]) { removeUsers(targets: { ids: $ids }) { id } }",
            json!({ "ids": many }),
            "targets.ids",
        ),
        (
            "mutation ($ids: [ID!]) { removeUsers(targets: { ids: $ids }) { id } }",
            json!({ "ids": ["not-an-id"] }),
            "targets.ids",
        ),
    ] {
        let body = app.graphql(document, variables).await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{document}: {body}");
        assert_eq!(body["errors"][0]["extensions"]["field"], field, "{body}");
    }
    // Lecturers do not run bulk operations.
    let lecturer = app
        .create_user(
            TestUser::new("still@physics.test")
                .role(Role::Lecturer)
                .in_organisation(physics.organisation),
        )
        .await;
    let body = app
        .graphql_as(
            Some(&app.token_for(&lecturer)),
            "mutation ($ids: [ID!]) { suspendUsers(targets: { ids: $ids }, dryRun: true) { id } }",
            json!({ "ids": [id] }),
        )
        .await;
    assert_eq!(error_code(&body), "FORBIDDEN", "{body}");
}

async fn a_job_is_its_requesters_and_the_admins(app: TestApp) {
    let physics = department(&app, "Physics", "physics.test", 1).await;
    let biology = department(&app, "Biology", "biology.test", 0).await;
    let head = app.token_for(&physics.head);
    let job = app
        .query_as(
            &head,
            "mutation ($ids: [ID!]) { removeUsers(targets: { ids: $ids }, dryRun: true) { id } }",
            json!({ "ids": [physics.lecturers[0].id.to_string()] }),
        )
        .await["removeUsers"]["id"]
        .clone();
    const READ: &str =
        "query ($id: ID!) { bulkJob(id: $id) { kind status changed results { email outcome } } }";
    for token in [&head, &app.admin_token] {
        let read = app.query_as(token, READ, json!({ "id": job })).await;
        // A dry run's plan was in its answer; its row keeps the counts only.
        assert_eq!(
            read["bulkJob"],
            json!({ "kind": "remove", "status": "SUCCEEDED", "changed": 1, "results": [] })
        );
    }
    let body = app
        .graphql_as(
            Some(&app.token_for(&biology.head)),
            READ,
            json!({ "id": job }),
        )
        .await;
    assert_eq!(error_code(&body), "FORBIDDEN", "{body}");
    let body = app
        .graphql(READ, json!({ "id": uuid::Uuid::now_v7().to_string() }))
        .await;
    assert_eq!(error_code(&body), "NOT_FOUND", "{body}");
}

async fn a_requester_runs_three_jobs_at_most_and_a_demoted_one_stops_theirs(app: TestApp) {
    let physics = department(&app, "Physics", "physics.test", 8).await;
    let head = app.token_for(&physics.head);
    // Clerk answers slowly, so the jobs are still running when the next is asked for.
    app.clerk
        .emulator
        .inject(Fault::Slow(std::time::Duration::from_millis(300)), 40);
    let suspend = format!(
        "mutation ($ids: [ID!]) {{ suspendUsers(targets: {{ ids: $ids }}) {{ {JOB_FIELDS} }} }}"
    );
    let ids = |from: usize, to: usize| -> Vec<String> {
        physics.lecturers[from..to]
            .iter()
            .map(|user| user.id.to_string())
            .collect()
    };
    let mut jobs = Vec::new();
    for (from, to) in [(0, 1), (1, 2), (2, 8)] {
        let job = app
            .query_as(&head, &suspend, json!({ "ids": ids(from, to) }))
            .await["suspendUsers"]
            .clone();
        assert_eq!(job["status"], "RUNNING");
        jobs.push(job);
    }
    let body = app
        .graphql_as(Some(&head), &suspend, json!({ "ids": ids(7, 8) }))
        .await;
    assert_eq!(error_code(&body), "CONFLICT", "{body}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .is_some_and(|message| message.contains("3 bulk jobs running")),
        "{body}"
    );
    // A dry run is not a job that runs: still answered.
    let plan = app
        .query_as(
            &head,
            "mutation ($ids: [ID!]) { suspendUsers(targets: { ids: $ids }, dryRun: true) { status } }",
            json!({ "ids": ids(7, 8) }),
        )
        .await;
    assert_eq!(plan["suspendUsers"]["status"], "SUCCEEDED");

    // Demoted while the six-user job runs: it stops at the next user, what was done recorded.
    let mut row: entity::user::ActiveModel = physics.head.clone().into();
    row.role = sea_orm::Set(Role::Lecturer);
    sea_orm::ActiveModelTrait::update(row, &app.db)
        .await
        .expect("demote");
    let admin = app.admin_token.clone();
    let stopped = finished(&app, &admin, &jobs[2]["id"]).await;
    assert_eq!(stopped["status"], "FAILED", "{stopped}");
    assert!(stopped["error"].is_string(), "{stopped}");
    let changed = stopped["changed"].as_i64().unwrap_or(-1);
    assert!((0..6).contains(&changed), "{stopped}");
    let left = stopped["results"]
        .as_array()
        .expect("results")
        .iter()
        .filter(|result| result["outcome"] == "WOULD_CHANGE")
        .count() as i64;
    assert_eq!(changed + left, 6, "{stopped}");
    let suspended = app
        .clerk
        .emulator
        .users()
        .iter()
        .filter(|user| user.banned)
        .count() as i64;
    assert!(suspended <= 2 + changed, "no change after the stop");
    app.clerk.emulator.clear_faults();
}

async fn a_job_is_abandoned_when_it_stops_beating_not_when_it_runs_long(app: TestApp) {
    use chrono::{Duration, Utc};
    use entity::bulk_job;
    use sea_orm::{ActiveModelTrait, EntityTrait, Set};

    let now = Utc::now();
    let job = |created: Duration, heartbeat: Option<Duration>| bulk_job::ActiveModel {
        id: Set(uuid::Uuid::now_v7()),
        kind: Set("import".to_owned()),
        status: Set("running".to_owned()),
        dry_run: Set(false),
        requested_by: Set(app.admin.id),
        total: Set(5_000),
        done: Set(100),
        changed: Set(100),
        unchanged: Set(0),
        refused: Set(0),
        results: Set("[]".to_owned()),
        error: Set(None),
        created_at: Set(now - created),
        finished_at: Set(None),
        heartbeat_at: Set(heartbeat.map(|ago| now - ago)),
    };
    // An import waiting out Clerk's hourly limit: running for hours, beating every minute.
    let long_and_alive = job(Duration::hours(3), Some(Duration::minutes(1)))
        .insert(&app.db)
        .await
        .expect("insert");
    let silent = job(Duration::hours(3), Some(Duration::minutes(20)))
        .insert(&app.db)
        .await
        .expect("insert");
    let never_beat = job(Duration::minutes(20), None)
        .insert(&app.db)
        .await
        .expect("insert");
    let just_started = job(Duration::minutes(2), None)
        .insert(&app.db)
        .await
        .expect("insert");
    let failed = userhub::service::bulk::fail_abandoned(&app.db)
        .await
        .expect("the sweep");
    assert_eq!(failed, 2);
    let status = |id| {
        let db = app.db.clone();
        async move {
            bulk_job::Entity::find_by_id(id)
                .one(&db)
                .await
                .expect("read")
                .expect("the job")
        }
    };
    assert_eq!(status(long_and_alive.id).await.status, "running");
    assert_eq!(status(just_started.id).await.status, "running");
    for id in [silent.id, never_beat.id] {
        let job = status(id).await;
        assert_eq!(job.status, "failed");
        assert!(job.error.is_some_and(|error| error.contains("interrupted")));
        assert!(job.finished_at.is_some());
    }

    // Finished jobs are kept 30 days, dry runs (their counts) one day; running ones always.
    let finished_job = |created: Duration, dry_run: bool| {
        let mut row = job(created, None);
        row.status = Set("succeeded".to_owned());
        row.dry_run = Set(dry_run);
        row.finished_at = Set(Some(now - created));
        row
    };
    let old_job = finished_job(Duration::days(31), false)
        .insert(&app.db)
        .await
        .expect("insert");
    let recent_job = finished_job(Duration::days(29), false)
        .insert(&app.db)
        .await
        .expect("insert");
    let old_plan = finished_job(Duration::hours(25), true)
        .insert(&app.db)
        .await
        .expect("insert");
    let recent_plan = finished_job(Duration::hours(23), true)
        .insert(&app.db)
        .await
        .expect("insert");
    let pruned = userhub::service::bulk::prune(&app.db)
        .await
        .expect("the prune");
    assert_eq!(pruned, 2);
    for (id, kept) in [
        (old_job.id, false),
        (recent_job.id, true),
        (old_plan.id, false),
        (recent_plan.id, true),
        (long_and_alive.id, true),
    ] {
        let found = bulk_job::Entity::find_by_id(id)
            .one(&app.db)
            .await
            .expect("read");
        assert_eq!(found.is_some(), kept, "{id}");
    }
}
