//! Workload (issue 19.3): activities allocated to people by their organisation's admins,
//! summed against each person's target (their profile's own, else FTE times the
//! organisation's standard hours), totalled per organisation, audited and live.

use chrono::Datelike;
use entity::role::Role;
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestUser, error_code, on_both_databases};
use crate::profiles::department;

on_both_databases!(
    allocations_sum_against_the_target_and_every_change_is_audited,
    a_refused_allocation_writes_nothing,
    nobody_outside_the_organisation_reads_or_changes_a_workload,
    an_organisations_workload_totals_its_members_and_lists_the_over_allocated,
    an_allocation_reaches_the_organisations_subscribers_only,
    a_page_of_users_reads_its_workloads_in_constant_statements,
);

const YEAR: &str = "2026/27";

const ALLOCATE: &str = r#"mutation ($id: ID!, $input: AllocateActivityInput!) {
    allocateActivity(userId: $id, input: $input) {
        activity { id academicYear term kind moduleCode name hours }
        workload { allocatedHours targetHours targetSource balanceHours balance } } }"#;

const UPDATE: &str = r#"mutation ($id: ID!, $input: UpdateActivityInput!) {
    updateActivity(id: $id, input: $input) {
        activity { id term moduleCode hours }
        workload { allocatedHours targetHours balance } } }"#;

const REMOVE: &str = r#"mutation ($id: ID!) { removeActivity(id: $id) {
    activity { id name } workload { allocatedHours balance } } }"#;

const READ: &str = r#"query ($id: ID!, $year: String) { user(id: $id) { workload(academicYear: $year) {
    academicYear allocatedHours targetHours targetSource balanceHours balance
    activities { kind moduleCode name term hours } } } }"#;

async fn allocate(app: &TestApp, token: &str, user: &entity::user::Model, input: Value) -> Value {
    app.graphql_as(
        Some(token),
        ALLOCATE,
        json!({ "id": user.id.to_string(), "input": input }),
    )
    .await
}

fn activity(kind: &str, code: Option<&str>, name: &str, hours: f64) -> Value {
    json!({ "academicYear": YEAR, "term": "Autumn", "kind": kind, "moduleCode": code,
            "name": name, "hours": hours })
}

async fn set_profile(app: &TestApp, user: &entity::user::Model, input: Value) {
    let body = app
        .graphql(
            "mutation ($id: ID!, $input: LecturerProfileInput!) { updateLecturerProfile(userId: $id, input: $input) { id } }",
            json!({ "id": user.id.to_string(), "input": input }),
        )
        .await;
    assert!(body.get("errors").is_none(), "{body}");
}

async fn set_standard_hours(app: &TestApp, organisation: uuid::Uuid, hours: i32) {
    let body = app
        .graphql(
            "mutation ($id: ID!, $hours: Int) { updateOrganisation(id: $id, input: { standardHours: $hours }) { standardHours } }",
            json!({ "id": organisation.to_string(), "hours": hours }),
        )
        .await;
    assert_eq!(
        body["data"]["updateOrganisation"]["standardHours"], hours,
        "{body}"
    );
}

async fn workload_trail(app: &TestApp, user: &entity::user::Model) -> Vec<Value> {
    let trail = app
        .query(
            r#"query ($id: String!) { auditLog(filter: { subjectId: $id }) {
                nodes { action before after } } }"#,
            json!({ "id": user.id.to_string() }),
        )
        .await;
    trail["auditLog"]["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .filter(|event| {
            event["action"]
                .as_str()
                .is_some_and(|action| action.starts_with("user.activity_"))
        })
        .cloned()
        .collect()
}

async fn allocations_sum_against_the_target_and_every_change_is_audited(app: TestApp) {
    let physics = department(&app, "Physics", "physics.test").await;
    let lecturer = &physics.lecturer;
    set_standard_hours(&app, physics.organisation, 1_600).await;

    // No profile yet: allocations count, but there is no target to hold them against.
    let first = allocate(
        &app,
        &physics.org_admin,
        lecturer,
        activity("TEACHING", Some(" ph101 "), "Mechanics lectures", 300.0),
    )
    .await;
    assert!(first.get("errors").is_none(), "{first}");
    let allocated = &first["data"]["allocateActivity"];
    assert_eq!(allocated["activity"]["moduleCode"], "PH101");
    assert_eq!(allocated["activity"]["academicYear"], YEAR);
    assert_eq!(
        allocated["workload"],
        json!({ "allocatedHours": 300.0, "targetHours": null, "targetSource": null,
                "balanceHours": null, "balance": "NO_TARGET" })
    );

    // Half time in an organisation of 1,600-hour years: a target of 800.
    set_profile(&app, lecturer, json!({ "contractFte": 0.5 })).await;
    let marking = allocate(
        &app,
        &physics.org_admin,
        lecturer,
        activity("ASSESSMENT", Some("PH101"), "Exam marking", 120.5),
    )
    .await;
    let committee = allocate(
        &app,
        &app.admin_token,
        lecturer,
        json!({ "academicYear": YEAR, "kind": "ADMINISTRATION", "name": "Exam board",
                "hours": 400 }),
    )
    .await;
    assert_eq!(
        committee["data"]["allocateActivity"]["workload"],
        json!({ "allocatedHours": 820.5, "targetHours": 800.0, "targetSource": "CONTRACT",
                "balanceHours": 20.5, "balance": "OVER" })
    );

    // The lecturer and a colleague read it, activities by term, module and name.
    for token in [&physics.lecturer_token, &physics.colleague_token] {
        let read = app
            .query_as(
                token,
                READ,
                json!({ "id": lecturer.id.to_string(), "year": YEAR }),
            )
            .await;
        assert_eq!(
            read["user"]["workload"],
            json!({
                "academicYear": YEAR, "allocatedHours": 820.5, "targetHours": 800.0,
                "targetSource": "CONTRACT", "balanceHours": 20.5, "balance": "OVER",
                "activities": [
                    { "kind": "ADMINISTRATION", "moduleCode": null, "name": "Exam board",
                      "term": null, "hours": 400.0 },
                    { "kind": "ASSESSMENT", "moduleCode": "PH101", "name": "Exam marking",
                      "term": "Autumn", "hours": 120.5 },
                    { "kind": "TEACHING", "moduleCode": "PH101", "name": "Mechanics lectures",
                      "term": "Autumn", "hours": 300.0 },
                ],
            })
        );
    }
    // The year defaults to the current one (it starts on 1 September); another year is
    // empty.
    let today = chrono::Utc::now();
    let start = if today.month() >= 9 {
        today.year()
    } else {
        today.year() - 1
    };
    let current = format!("{start}/{:02}", (start + 1) % 100);
    let read = app
        .query_as(
            &physics.lecturer_token,
            "{ me { workload { academicYear } } }",
            json!({}),
        )
        .await;
    assert_eq!(read["me"]["workload"]["academicYear"], current.as_str());
    let other_year = app
        .query(
            READ,
            json!({ "id": lecturer.id.to_string(), "year": "2027/28" }),
        )
        .await;
    assert_eq!(other_year["user"]["workload"]["allocatedHours"], 0.0);
    assert_eq!(other_year["user"]["workload"]["balance"], "UNDER");
    assert_eq!(other_year["user"]["workload"]["activities"], json!([]));

    // Fewer marking hours: under; the profile's own target then takes over from the FTE.
    let marking_id = marking["data"]["allocateActivity"]["activity"]["id"].clone();
    let changed = app
        .graphql_as(
            Some(&physics.org_admin),
            UPDATE,
            json!({ "id": marking_id, "input": { "hours": 80.5, "term": null } }),
        )
        .await;
    assert_eq!(
        changed["data"]["updateActivity"],
        json!({ "activity": { "id": marking_id, "term": null, "moduleCode": "PH101",
                              "hours": 80.5 },
                "workload": { "allocatedHours": 780.5, "targetHours": 800.0,
                              "balance": "UNDER" } })
    );
    set_profile(&app, lecturer, json!({ "workloadTargetHours": 780.5 })).await;
    let read = app
        .query(READ, json!({ "id": lecturer.id.to_string(), "year": YEAR }))
        .await;
    assert_eq!(read["user"]["workload"]["balance"], "ON_TARGET");
    assert_eq!(read["user"]["workload"]["targetSource"], "PROFILE");

    // Taken away: the answer is the activity as it was.
    let removed = app
        .graphql_as(
            Some(&physics.org_admin),
            REMOVE,
            json!({ "id": marking_id }),
        )
        .await;
    assert_eq!(
        removed["data"]["removeActivity"],
        json!({ "activity": { "id": marking_id, "name": "Exam marking" },
                "workload": { "allocatedHours": 700.0, "balance": "UNDER" } })
    );
    let again = app
        .graphql_as(
            Some(&physics.org_admin),
            REMOVE,
            json!({ "id": marking_id }),
        )
        .await;
    assert_eq!(error_code(&again), "NOT_FOUND", "{again}");

    // The trail: three allocations, one change, one removal, newest first, on the person.
    let trail = workload_trail(&app, lecturer).await;
    let actions: Vec<&str> = trail
        .iter()
        .map(|event| event["action"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        actions,
        [
            "user.activity_removed",
            "user.activity_updated",
            "user.activity_allocated",
            "user.activity_allocated",
            "user.activity_allocated",
        ]
    );
    assert_eq!(trail[0]["before"]["hours"], 80.5);
    assert_eq!(trail[0]["after"], Value::Null);
    assert_eq!(trail[1]["before"]["hours"], 120.5);
    assert_eq!(trail[1]["after"]["hours"], 80.5);
    assert_eq!(trail[1]["after"]["activityId"], marking_id);
}

async fn a_refused_allocation_writes_nothing(app: TestApp) {
    let chemistry = department(&app, "Chemistry", "chemistry.test").await;
    let lecturer = &chemistry.lecturer;
    let refused = [
        (
            json!({ "academicYear": "2026/28", "kind": "TEACHING", "name": "x", "hours": 1 }),
            "input.academicYear",
        ),
        (
            json!({ "academicYear": "2026-27", "kind": "TEACHING", "name": "x", "hours": 1 }),
            "input.academicYear",
        ),
        (
            json!({ "academicYear": YEAR, "kind": "TEACHING", "name": "x", "hours": 0 }),
            "input.hours",
        ),
        (
            json!({ "academicYear": YEAR, "kind": "TEACHING", "name": "x", "hours": 8761 }),
            "input.hours",
        ),
        (
            json!({ "academicYear": YEAR, "kind": "TEACHING", "name": "  ", "hours": 1 }),
            "input.name",
        ),
        (
            json!({ "academicYear": YEAR, "kind": "TEACHING", "name": "x", "hours": 1,
                    "moduleCode": "M".repeat(33) }),
            "input.moduleCode",
        ),
        (
            json!({ "academicYear": YEAR, "kind": "TEACHING", "name": "x", "hours": 1,
                    "term": "Autumn\u{1b}" }),
            "input.term",
        ),
    ];
    for (input, field) in refused {
        let body = allocate(&app, &chemistry.org_admin, lecturer, input.clone()).await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{input}: {body}");
        assert_eq!(body["errors"][0]["extensions"]["field"], field, "{body}");
        assert_eq!(body["data"], Value::Null, "{body}");
    }
    // An unknown kind is refused by the schema.
    let body = allocate(
        &app,
        &chemistry.org_admin,
        lecturer,
        json!({ "academicYear": YEAR, "kind": "NAPPING", "name": "x", "hours": 1 }),
    )
    .await;
    assert!(body["errors"][0]["message"].is_string(), "{body}");
    // Unknown people and activities are not found.
    let ghost = uuid::Uuid::now_v7().to_string();
    let body = app
        .graphql(
            ALLOCATE,
            json!({ "id": ghost, "input": activity("TEACHING", None, "x", 1.0) }),
        )
        .await;
    assert_eq!(error_code(&body), "NOT_FOUND", "{body}");
    let body = app
        .graphql(UPDATE, json!({ "id": ghost, "input": { "hours": 2 } }))
        .await;
    assert_eq!(error_code(&body), "NOT_FOUND", "{body}");
    // A bad change to an existing activity leaves it as it was.
    let kept = allocate(
        &app,
        &chemistry.org_admin,
        lecturer,
        activity("TEACHING", Some("CH1"), "Labs", 10.0),
    )
    .await;
    let kept_id = kept["data"]["allocateActivity"]["activity"]["id"].clone();
    let body = app
        .graphql(
            UPDATE,
            json!({ "id": kept_id, "input": { "hours": 5, "academicYear": "next year" } }),
        )
        .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    // A removed person's workload no longer changes.
    let removed = app
        .create_user(
            TestUser::new("gone@chemistry.test")
                .role(Role::Lecturer)
                .in_organisation(chemistry.organisation),
        )
        .await;
    app.deactivate(&removed).await;
    let body = allocate(
        &app,
        &chemistry.org_admin,
        &removed,
        activity("TEACHING", None, "x", 1.0),
    )
    .await;
    assert_eq!(error_code(&body), "CONFLICT", "{body}");

    let read = app
        .query(READ, json!({ "id": lecturer.id.to_string(), "year": YEAR }))
        .await;
    assert_eq!(
        read["user"]["workload"]["activities"],
        json!([{ "kind": "TEACHING", "moduleCode": "CH1", "name": "Labs", "term": "Autumn",
                 "hours": 10.0 }])
    );
    assert_eq!(workload_trail(&app, lecturer).await.len(), 1);
    assert!(workload_trail(&app, &removed).await.is_empty());
}

async fn nobody_outside_the_organisation_reads_or_changes_a_workload(app: TestApp) {
    let physics = department(&app, "Physics", "physics.test").await;
    let biology = department(&app, "Biology", "biology.test").await;
    let lecturer = &physics.lecturer;
    let made = allocate(
        &app,
        &physics.org_admin,
        lecturer,
        activity("TEACHING", Some("PH1"), "Optics", 50.0),
    )
    .await;
    let activity_id = made["data"]["allocateActivity"]["activity"]["id"].clone();

    // Another organisation's admin, and anyone who does not manage the organisation, may not
    // allocate, change or take away.
    for token in [
        &biology.org_admin,
        &biology.lecturer_token,
        &physics.lecturer_token,
        &physics.colleague_token,
    ] {
        let body = allocate(
            &app,
            token,
            lecturer,
            activity("TEACHING", None, "Hijack", 1.0),
        )
        .await;
        assert_eq!(error_code(&body), "FORBIDDEN", "{body}");
        let body = app
            .graphql_as(
                Some(token),
                UPDATE,
                json!({ "id": activity_id, "input": { "hours": 999 } }),
            )
            .await;
        assert_eq!(error_code(&body), "FORBIDDEN", "{body}");
        let body = app
            .graphql_as(Some(token), REMOVE, json!({ "id": activity_id }))
            .await;
        assert_eq!(error_code(&body), "FORBIDDEN", "{body}");
    }
    // Signed out: not even asked.
    let (_, body) = app
        .post_as(None, REMOVE, json!({ "id": activity_id }))
        .await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED", "{body}");

    // Another organisation reads neither the person's workload nor the organisation's.
    let body = app
        .graphql_as(
            Some(&biology.org_admin),
            READ,
            json!({ "id": lecturer.id.to_string(), "year": YEAR }),
        )
        .await;
    assert_eq!(error_code(&body), "FORBIDDEN", "{body}");
    const ORGANISATION: &str = r#"query ($id: ID!) { organisationWorkload(id: $id, academicYear: "2026/27") { allocatedHours } }"#;
    for token in [
        &biology.org_admin,
        &physics.lecturer_token,
        &physics.colleague_token,
    ] {
        let body = app
            .graphql_as(
                Some(token),
                ORGANISATION,
                json!({ "id": physics.organisation.to_string() }),
            )
            .await;
        assert_eq!(error_code(&body), "FORBIDDEN", "{body}");
    }
    // An org admin cannot allocate to an admin, even one in their organisation.
    let dean = app
        .create_user(
            TestUser::new("dean@physics.test")
                .role(Role::Admin)
                .in_organisation(physics.organisation),
        )
        .await;
    let body = allocate(
        &app,
        &physics.org_admin,
        &dean,
        activity("OTHER", None, "Chores", 1.0),
    )
    .await;
    assert_eq!(error_code(&body), "FORBIDDEN", "{body}");

    // Unchanged by all of it.
    let read = app
        .query(READ, json!({ "id": lecturer.id.to_string(), "year": YEAR }))
        .await;
    assert_eq!(read["user"]["workload"]["allocatedHours"], 50.0);
    assert_eq!(workload_trail(&app, lecturer).await.len(), 1);
}

async fn an_organisations_workload_totals_its_members_and_lists_the_over_allocated(app: TestApp) {
    let maths = department(&app, "Mathematics", "maths.test").await;
    let other = department(&app, "History", "history.test").await;
    set_standard_hours(&app, maths.organisation, 1_000).await;
    let member = |email: &'static str| {
        let organisation = maths.organisation;
        let app = &app;
        async move {
            app.create_user(
                TestUser::new(email)
                    .role(Role::Lecturer)
                    .in_organisation(organisation),
            )
            .await
        }
    };
    let far_over = member("far@maths.test").await;
    let bit_over = member("bit@maths.test").await;
    let on_target = member("on@maths.test").await;
    let untargeted = member("none@maths.test").await;
    let removed = member("gone@maths.test").await;
    // Targets: 500 (FTE 0.5 of 1,000), 300 (own), 200 (own); none; and a removed member.
    set_profile(&app, &far_over, json!({ "contractFte": 0.5 })).await;
    set_profile(&app, &bit_over, json!({ "workloadTargetHours": 300 })).await;
    set_profile(&app, &on_target, json!({ "workloadTargetHours": 200 })).await;
    set_profile(&app, &removed, json!({ "contractFte": 1.0 })).await;
    for (person, hours) in [
        (&far_over, 700.0),
        (&bit_over, 300.25),
        (&on_target, 200.0),
        (&untargeted, 40.0),
        (&removed, 5_000.0),
    ] {
        let body = allocate(
            &app,
            &maths.org_admin,
            person,
            activity("TEACHING", None, "Teaching", hours),
        )
        .await;
        assert!(body.get("errors").is_none(), "{body}");
    }
    app.deactivate(&removed).await;
    // Another organisation's and another year's allocations do not count.
    allocate(
        &app,
        &other.org_admin,
        &other.lecturer,
        activity("TEACHING", None, "History", 900.0),
    )
    .await;
    allocate(
        &app,
        &maths.org_admin,
        &far_over,
        json!({ "academicYear": "2025/26", "kind": "TEACHING", "name": "Old", "hours": 99 }),
    )
    .await;

    const QUERY: &str = r#"query ($id: ID!) { organisationWorkload(id: $id, academicYear: "2026/27") {
        organisationId academicYear standardHours allocatedHours targetHours
        overAllocatedCount underAllocatedCount onTargetCount withoutTargetCount
        overAllocated { user { email } allocatedHours targetHours targetSource balanceHours balance }
        people { user { email } balance } } }"#;
    for token in [&maths.org_admin, &app.admin_token] {
        let body = app
            .query_as(
                token,
                QUERY,
                json!({ "id": maths.organisation.to_string() }),
            )
            .await;
        assert_eq!(
            body["organisationWorkload"],
            json!({
                "organisationId": maths.organisation.to_string(), "academicYear": YEAR,
                "standardHours": 1000, "allocatedHours": 1240.25, "targetHours": 1000.0,
                "overAllocatedCount": 2, "underAllocatedCount": 0, "onTargetCount": 1,
                "withoutTargetCount": 1,
                "overAllocated": [
                    { "user": { "email": "far@maths.test" }, "allocatedHours": 700.0,
                      "targetHours": 500.0, "targetSource": "CONTRACT", "balanceHours": 200.0,
                      "balance": "OVER" },
                    { "user": { "email": "bit@maths.test" }, "allocatedHours": 300.25,
                      "targetHours": 300.0, "targetSource": "PROFILE", "balanceHours": 0.25,
                      "balance": "OVER" },
                ],
                "people": [
                    { "user": { "email": "far@maths.test" }, "balance": "OVER" },
                    { "user": { "email": "bit@maths.test" }, "balance": "OVER" },
                    { "user": { "email": "on@maths.test" }, "balance": "ON_TARGET" },
                    { "user": { "email": "none@maths.test" }, "balance": "NO_TARGET" },
                ],
            })
        );
    }
    // A bad year and an unknown organisation are clear errors.
    let body = app
        .graphql(
            r#"query ($id: ID!) { organisationWorkload(id: $id, academicYear: "26/27") { allocatedHours } }"#,
            json!({ "id": maths.organisation.to_string() }),
        )
        .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    let body = app
        .graphql(
            r#"query ($id: ID!) { organisationWorkload(id: $id) { allocatedHours } }"#,
            json!({ "id": uuid::Uuid::now_v7().to_string() }),
        )
        .await;
    assert_eq!(error_code(&body), "NOT_FOUND", "{body}");
    // Standard hours are the admins' to set, within a year.
    let body = app
        .graphql_as(
            Some(&maths.org_admin),
            "mutation ($id: ID!) { updateOrganisation(id: $id, input: { standardHours: 10 }) { id } }",
            json!({ "id": maths.organisation.to_string() }),
        )
        .await;
    assert_eq!(error_code(&body), "FORBIDDEN", "{body}");
    let body = app
        .graphql(
            "mutation ($id: ID!) { updateOrganisation(id: $id, input: { standardHours: 9000 }) { id } }",
            json!({ "id": maths.organisation.to_string() }),
        )
        .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
}

async fn an_allocation_reaches_the_organisations_subscribers_only(app: TestApp) {
    let physics = department(&app, "Physics", "physics.test").await;
    let biology = department(&app, "Biology", "biology.test").await;
    const CHANGED: &str = r#"subscription { userChanged { kind source user { email
        workload(academicYear: "2026/27") { allocatedHours } } } }"#;
    let mut colleague = app
        .subscribe(&physics.colleague_token, CHANGED, json!({}))
        .await;
    let mut elsewhere = app.subscribe(&biology.org_admin, CHANGED, json!({})).await;
    let mut admin = app.subscribe(&app.admin_token, CHANGED, json!({})).await;

    allocate(
        &app,
        &physics.org_admin,
        &physics.lecturer,
        activity("SUPERVISION", None, "PhD students", 60.0),
    )
    .await;
    for subscriber in [&mut colleague, &mut admin] {
        let change = subscriber.next_data().await;
        assert_eq!(
            change["userChanged"],
            json!({ "kind": "WORKLOAD_CHANGED", "source": "api",
                    "user": { "email": "lecturer@physics.test",
                              "workload": { "allocatedHours": 60.0 } } })
        );
    }
    elsewhere.assert_quiet().await;
}

async fn a_page_of_users_reads_its_workloads_in_constant_statements(app: TestApp) {
    let organisation = app.create_organisation("Engineering").await;
    let mut lecturers = Vec::new();
    for n in 0..12 {
        let email = Box::leak(format!("l{n:02}@eng.test").into_boxed_str());
        lecturers.push(
            app.create_user(
                TestUser::new(email)
                    .role(Role::Lecturer)
                    .in_organisation(organisation.id),
            )
            .await,
        );
    }
    for (n, lecturer) in lecturers.iter().enumerate() {
        set_profile(&app, lecturer, json!({ "contractFte": 1.0 })).await;
        let body = allocate(
            &app,
            &app.admin_token,
            lecturer,
            activity("TEACHING", Some("EN1"), "Statics", 10.0 * (n + 1) as f64),
        )
        .await;
        assert!(body.get("errors").is_none(), "{body}");
    }
    let query = r#"query ($first: Int) { users(first: $first, orderBy: EMAIL_ASC, filter: { role: LECTURER }) {
        nodes { email workload(academicYear: "2026/27") { allocatedHours targetHours balance
                activities { name hours } } } } }"#;
    let (few, answer) = app.statements_for(query, json!({ "first": 3 })).await;
    assert_eq!(
        answer["users"]["nodes"][1],
        json!({ "email": "l01@eng.test", "workload": { "allocatedHours": 20.0,
                "targetHours": 1650.0, "balance": "UNDER",
                "activities": [{ "name": "Statics", "hours": 20.0 }] } })
    );
    let (many, _) = app.statements_for(query, json!({ "first": 12 })).await;
    assert_eq!(
        few, many,
        "a page's workloads cost the same whatever its size"
    );
}
