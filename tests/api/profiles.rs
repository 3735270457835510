//! Lecturer profiles (issue 19.2): recorded by organisation admins for their organisation and
//! by admins, read within the organisation, validated whole, audited, live.

use entity::role::Role;
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestUser, error_code, on_both_databases};

on_both_databases!(
    an_org_admin_records_a_profile_that_the_organisation_reads_and_the_trail_keeps,
    a_profile_change_is_validated_whole_and_a_refused_one_writes_nothing,
    nobody_outside_the_organisation_reads_or_changes_a_profile,
    a_profile_change_reaches_the_organisations_subscribers_only,
    a_page_of_users_reads_its_profiles_in_one_statement,
);

const UPDATE: &str = r#"mutation ($id: ID!, $input: LecturerProfileInput!) {
    updateLecturerProfile(userId: $id, input: $input) {
        id profile { staffId jobTitle department contractFte contractStart contractEnd
                     workloadTargetHours updatedAt } } }"#;

const READ: &str = r#"query ($id: ID!) { user(id: $id) { profile {
    staffId jobTitle department contractFte contractStart contractEnd workloadTargetHours } } }"#;

/// An organisation with its admin, a lecturer and a colleague (tokens for each).
pub(crate) struct Department {
    pub(crate) org_admin: String,
    pub(crate) lecturer: entity::user::Model,
    pub(crate) lecturer_token: String,
    pub(crate) colleague_token: String,
    pub(crate) organisation: uuid::Uuid,
}

pub(crate) async fn department(app: &TestApp, name: &str, domain: &'static str) -> Department {
    let organisation = app.create_organisation(name).await;
    let email = |local: &str| Box::leak(format!("{local}@{domain}").into_boxed_str()) as &str;
    let in_it = |email: &'static str, role: Role| {
        TestUser::new(email)
            .role(role)
            .in_organisation(organisation.id)
    };
    let org_admin = app.create_user(in_it(email("head"), Role::OrgAdmin)).await;
    let lecturer = app
        .create_user(in_it(email("lecturer"), Role::Lecturer))
        .await;
    let colleague = app
        .create_user(in_it(email("colleague"), Role::Member))
        .await;
    Department {
        org_admin: app.token_for(&org_admin),
        lecturer_token: app.token_for(&lecturer),
        colleague_token: app.token_for(&colleague),
        lecturer,
        organisation: organisation.id,
    }
}

async fn update(app: &TestApp, token: &str, user: &entity::user::Model, input: Value) -> Value {
    app.graphql_as(
        Some(token),
        UPDATE,
        json!({ "id": user.id.to_string(), "input": input }),
    )
    .await
}

async fn profile_trail(app: &TestApp, user: &entity::user::Model) -> Value {
    app.query(
        r#"query ($id: String!) { auditLog(filter: { action: "user.profile_updated", subjectId: $id }) {
            totalCount nodes { actor subjectType before after } } }"#,
        json!({ "id": user.id.to_string() }),
    )
    .await["auditLog"]
        .clone()
}

async fn an_org_admin_records_a_profile_that_the_organisation_reads_and_the_trail_keeps(
    app: TestApp,
) {
    let physics = department(&app, "Physics", "physics.test").await;
    let lecturer = &physics.lecturer;

    // Nobody has recorded anything yet.
    let unread = app
        .query(READ, json!({ "id": lecturer.id.to_string() }))
        .await;
    assert_eq!(unread["user"]["profile"], Value::Null);

    let recorded = update(
        &app,
        &physics.org_admin,
        lecturer,
        json!({
            "staffId": "  P-0042 ", "jobTitle": "Senior Lecturer", "department": "Astrophysics",
            "contractFte": 0.6, "contractStart": "2026-09-01", "contractEnd": "2029-08-31",
            "workloadTargetHours": 990.5,
        }),
    )
    .await;
    assert!(recorded.get("errors").is_none(), "{recorded}");
    let profile = &recorded["data"]["updateLecturerProfile"]["profile"];
    let expected = json!({
        "staffId": "P-0042", "jobTitle": "Senior Lecturer", "department": "Astrophysics",
        "contractFte": 0.6, "contractStart": "2026-09-01", "contractEnd": "2029-08-31",
        "workloadTargetHours": 990.5,
    });
    for (field, value) in expected.as_object().expect("an object") {
        assert_eq!(&profile[field], value, "{field}");
    }
    let first_stamp = profile["updatedAt"].clone();

    // The lecturer and a colleague read it; so does `me`.
    for token in [&physics.lecturer_token, &physics.colleague_token] {
        let read = app
            .query_as(token, READ, json!({ "id": lecturer.id.to_string() }))
            .await;
        assert_eq!(read["user"]["profile"], expected);
    }
    let me = app
        .query_as(
            &physics.lecturer_token,
            "{ me { profile { staffId contractFte } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        me["me"]["profile"],
        json!({ "staffId": "P-0042", "contractFte": 0.6 })
    );

    // A partial change leaves the rest; `null` clears a field.
    let changed = update(
        &app,
        &physics.org_admin,
        lecturer,
        json!({ "jobTitle": "Reader", "department": null }),
    )
    .await;
    let profile = &changed["data"]["updateLecturerProfile"]["profile"];
    assert_eq!(profile["jobTitle"], "Reader");
    assert_eq!(profile["department"], Value::Null);
    assert_eq!(profile["staffId"], "P-0042");
    assert_eq!(profile["contractEnd"], "2029-08-31");
    assert_ne!(profile["updatedAt"], first_stamp);

    // A change that changes nothing writes nothing.
    let same = update(
        &app,
        &physics.org_admin,
        lecturer,
        json!({ "jobTitle": "Reader", "contractFte": 0.6 }),
    )
    .await;
    assert_eq!(
        same["data"]["updateLecturerProfile"]["profile"]["updatedAt"],
        profile["updatedAt"]
    );

    // The trail: two changes, each with the whole profile before and after, by the org admin.
    let trail = profile_trail(&app, lecturer).await;
    assert_eq!(trail["totalCount"], 2, "{trail}");
    let latest = &trail["nodes"][0];
    assert_eq!(latest["subjectType"], "user");
    assert_eq!(latest["before"]["jobTitle"], "Senior Lecturer");
    assert_eq!(latest["before"]["department"], "Astrophysics");
    assert_eq!(latest["after"]["jobTitle"], "Reader");
    assert_eq!(latest["after"]["department"], Value::Null);
    assert_eq!(latest["after"]["contractStart"], "2026-09-01");
    let first = &trail["nodes"][1];
    assert_eq!(first["before"], Value::Null);
    assert_eq!(first["after"]["staffId"], "P-0042");
    let head = app
        .query_as(&physics.org_admin, "{ me { id } }", json!({}))
        .await;
    assert_eq!(first["actor"], head["me"]["id"]);

    // An admin may record anyone's profile.
    let by_admin = update(
        &app,
        &app.admin_token,
        lecturer,
        json!({ "staffId": "P-0043" }),
    )
    .await;
    assert_eq!(
        by_admin["data"]["updateLecturerProfile"]["profile"]["staffId"],
        "P-0043"
    );
    let _ = physics.organisation;
}

async fn a_profile_change_is_validated_whole_and_a_refused_one_writes_nothing(app: TestApp) {
    let chemistry = department(&app, "Chemistry", "chemistry.test").await;
    let lecturer = &chemistry.lecturer;
    let recorded = update(
        &app,
        &chemistry.org_admin,
        lecturer,
        json!({ "contractStart": "2026-09-01", "contractFte": 1.0 }),
    )
    .await;
    assert!(recorded.get("errors").is_none(), "{recorded}");

    let refused = [
        (json!({ "contractFte": 1.5 }), "input.contractFte"),
        (json!({ "contractFte": 0 }), "input.contractFte"),
        (
            json!({ "workloadTargetHours": -1 }),
            "input.workloadTargetHours",
        ),
        (
            json!({ "workloadTargetHours": 9000 }),
            "input.workloadTargetHours",
        ),
        // Ends before the start recorded earlier.
        (json!({ "contractEnd": "2026-08-31" }), "input.contractEnd"),
        (
            json!({ "staffId": "x".repeat(65), "jobTitle": "Fine" }),
            "input.staffId",
        ),
        (json!({ "jobTitle": "   " }), "input.jobTitle"),
        (json!({ "department": "Labs\u{7}" }), "input.department"),
    ];
    for (input, field) in refused {
        let body = update(&app, &chemistry.org_admin, lecturer, input.clone()).await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{input}: {body}");
        assert_eq!(body["errors"][0]["extensions"]["field"], field, "{body}");
        assert_eq!(body["data"], Value::Null, "{body}");
    }
    // A malformed date is refused by the schema, before anything runs.
    let body = update(
        &app,
        &chemistry.org_admin,
        lecturer,
        json!({ "contractEnd": "31/08/2027" }),
    )
    .await;
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .is_some_and(|message| message.contains("YYYY-MM-DD")),
        "{body}"
    );
    // An unknown user is not found.
    let body = app
        .graphql(
            UPDATE,
            json!({ "id": uuid::Uuid::now_v7().to_string(), "input": { "jobTitle": "Ghost" } }),
        )
        .await;
    assert_eq!(error_code(&body), "NOT_FOUND", "{body}");

    // Nothing of any of them was written: the profile is as first recorded, with one change in
    // its trail.
    let read = app
        .query(READ, json!({ "id": lecturer.id.to_string() }))
        .await;
    assert_eq!(
        read["user"]["profile"],
        json!({
            "staffId": null, "jobTitle": null, "department": null, "contractFte": 1.0,
            "contractStart": "2026-09-01", "contractEnd": null, "workloadTargetHours": null,
        })
    );
    assert_eq!(profile_trail(&app, lecturer).await["totalCount"], 1);
}

async fn nobody_outside_the_organisation_reads_or_changes_a_profile(app: TestApp) {
    let physics = department(&app, "Physics", "physics.test").await;
    let biology = department(&app, "Biology", "biology.test").await;
    let lecturer = &physics.lecturer;
    update(
        &app,
        &physics.org_admin,
        lecturer,
        json!({ "staffId": "P-1", "jobTitle": "Lecturer" }),
    )
    .await;

    // Another organisation's admin, and anyone in the organisation who does not manage it,
    // may not change it.
    for token in [
        &biology.org_admin,
        &biology.lecturer_token,
        &physics.lecturer_token,
        &physics.colleague_token,
    ] {
        let body = update(&app, token, lecturer, json!({ "jobTitle": "Hijacked" })).await;
        assert_eq!(error_code(&body), "FORBIDDEN", "{body}");
    }
    // Signed out: not even asked.
    let (status, body) = app
        .post_as(
            None,
            UPDATE,
            json!({ "id": lecturer.id.to_string(), "input": { "jobTitle": "Hijacked" } }),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(error_code(&body), "UNAUTHENTICATED", "{body}");

    // Another organisation's admin does not read it, by id or in a list.
    let body = app
        .graphql_as(
            Some(&biology.org_admin),
            READ,
            json!({ "id": lecturer.id.to_string() }),
        )
        .await;
    assert_eq!(error_code(&body), "FORBIDDEN", "{body}");
    let listed = app
        .query_as(
            &biology.org_admin,
            "{ users(first: 100) { nodes { email profile { staffId } } } }",
            json!({}),
        )
        .await;
    let staff_ids: Vec<&Value> = listed["users"]["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|user| &user["profile"]["staffId"])
        .filter(|id| !id.is_null())
        .collect();
    assert!(staff_ids.is_empty(), "{listed}");

    // An org admin cannot change an admin's profile, even an admin in their organisation.
    let admin_in_physics = app
        .create_user(
            TestUser::new("dean@physics.test")
                .role(Role::Admin)
                .in_organisation(physics.organisation),
        )
        .await;
    let body = update(
        &app,
        &physics.org_admin,
        &admin_in_physics,
        json!({ "jobTitle": "Demoted" }),
    )
    .await;
    assert_eq!(error_code(&body), "FORBIDDEN", "{body}");

    // Unchanged by all of it.
    let read = app
        .query(READ, json!({ "id": lecturer.id.to_string() }))
        .await;
    assert_eq!(read["user"]["profile"]["jobTitle"], "Lecturer");
    assert_eq!(profile_trail(&app, lecturer).await["totalCount"], 1);
    let read = app
        .query(READ, json!({ "id": admin_in_physics.id.to_string() }))
        .await;
    assert_eq!(read["user"]["profile"], Value::Null);
}

async fn a_profile_change_reaches_the_organisations_subscribers_only(app: TestApp) {
    let physics = department(&app, "Physics", "physics.test").await;
    let biology = department(&app, "Biology", "biology.test").await;
    const PROFILE_CHANGED: &str = "subscription { userChanged { kind source occurredAt user { email profile { jobTitle contractFte } } } }";
    let mut colleague = app
        .subscribe(&physics.colleague_token, PROFILE_CHANGED, json!({}))
        .await;
    let mut elsewhere = app
        .subscribe(&biology.org_admin, PROFILE_CHANGED, json!({}))
        .await;
    let mut admin = app
        .subscribe(&app.admin_token, PROFILE_CHANGED, json!({}))
        .await;

    let changed = update(
        &app,
        &physics.org_admin,
        &physics.lecturer,
        json!({ "jobTitle": "Professor", "contractFte": 0.8 }),
    )
    .await;
    let stamp = &changed["data"]["updateLecturerProfile"]["profile"]["updatedAt"];
    for subscriber in [&mut colleague, &mut admin] {
        let change = subscriber.next_data().await;
        assert_eq!(
            change["userChanged"],
            json!({
                "kind": "PROFILE_UPDATED", "source": "api", "occurredAt": stamp,
                "user": { "email": "lecturer@physics.test",
                          "profile": { "jobTitle": "Professor", "contractFte": 0.8 } },
            })
        );
    }
    elsewhere.assert_quiet().await;

    // The lecturer moves to Biology; a change there is Biology's, not Physics'.
    app.query(
        "mutation ($id: ID!, $org: ID) { updateUser(id: $id, input: { organisationId: $org }) { id } }",
        json!({ "id": physics.lecturer.id.to_string(), "org": biology.organisation.to_string() }),
    )
    .await;
    // Physics sees them leave, but not their profile: it is Biology's now.
    let left = colleague.next_payload().await;
    assert_eq!(left["data"]["userChanged"]["kind"], "UPDATED");
    assert_eq!(left["data"]["userChanged"]["user"]["profile"], Value::Null);
    assert_eq!(error_code(&left), "FORBIDDEN", "{left}");
    let arrived = elsewhere.next_data().await;
    assert_eq!(
        arrived["userChanged"]["user"]["profile"]["jobTitle"],
        "Professor"
    );
    admin.next_data().await;

    update(
        &app,
        &biology.org_admin,
        &physics.lecturer,
        json!({ "jobTitle": "Visiting Professor" }),
    )
    .await;
    let change = elsewhere.next_data().await;
    assert_eq!(change["userChanged"]["kind"], "PROFILE_UPDATED");
    assert_eq!(
        change["userChanged"]["user"]["profile"]["jobTitle"],
        "Visiting Professor"
    );
    admin.next_data().await;
    colleague.assert_quiet().await;
}

async fn a_page_of_users_reads_its_profiles_in_one_statement(app: TestApp) {
    let organisation = app.create_organisation("Mathematics").await;
    let mut lecturers = Vec::new();
    for n in 0..12 {
        let email = Box::leak(format!("l{n:02}@maths.test").into_boxed_str());
        lecturers.push(
            app.create_user(
                TestUser::new(email)
                    .role(Role::Lecturer)
                    .in_organisation(organisation.id),
            )
            .await,
        );
    }
    for (n, lecturer) in lecturers.iter().enumerate().filter(|(n, _)| n % 2 == 0) {
        let body = update(
            &app,
            &app.admin_token,
            lecturer,
            json!({ "staffId": format!("M-{n:02}") }),
        )
        .await;
        assert!(body.get("errors").is_none(), "{body}");
    }
    let query = r#"query ($first: Int) { users(first: $first, orderBy: EMAIL_ASC, filter: { role: LECTURER }) {
        nodes { email profile { staffId } } } }"#;
    let (few, answer) = app.statements_for(query, json!({ "first": 4 })).await;
    assert_eq!(
        answer["users"]["nodes"],
        json!([
            { "email": "l00@maths.test", "profile": { "staffId": "M-00" } },
            { "email": "l01@maths.test", "profile": null },
            { "email": "l02@maths.test", "profile": { "staffId": "M-02" } },
            { "email": "l03@maths.test", "profile": null },
        ])
    );
    let (many, answer) = app.statements_for(query, json!({ "first": 12 })).await;
    assert_eq!(
        answer["users"]["nodes"]
            .as_array()
            .expect("nodes")
            .iter()
            .filter(|user| !user["profile"].is_null())
            .count(),
        6
    );
    assert_eq!(
        few, many,
        "a page's profiles cost the same whatever its size"
    );
}
