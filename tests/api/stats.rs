//! Organisation dashboards (issue 19.4): `organisationStats(id)` counts an organisation's people
//! by role and status, its pending invitations and its recent sign-ins, for admins and the
//! organisation's admins only.

use entity::role::Role;
use sea_orm::{ActiveModelTrait, Set};
use serde_json::json;

use crate::helpers::{TestApp, TestUser, error_code, on_both_databases};
use crate::live::envelope;

on_both_databases!(
    an_organisations_dashboard_counts_its_people_invitations_and_sign_ins,
    the_dashboard_counts_sign_ins_by_week_and_workload,
    the_dashboard_follows_its_organisations_changes_live,
);

const STATS: &str = r#"query ($id: ID!) { organisationStats(id: $id) {
    organisationId members pendingInvitations signedInLast30Days neverSignedIn
    byRole { role active suspended removed } } }"#;

async fn an_organisations_dashboard_counts_its_people_invitations_and_sign_ins(app: TestApp) {
    let physics = app.create_organisation("Physics").await;
    let biology = app.create_organisation("Biology").await;
    let in_physics = |email: &'static str, role: Role| {
        TestUser::new(email).role(role).in_organisation(physics.id)
    };
    let head = app
        .create_user(in_physics("head@physics.test", Role::OrgAdmin))
        .await;
    let ada = app
        .create_user(in_physics("ada@physics.test", Role::Lecturer))
        .await;
    let suspended = app
        .create_user(in_physics("banned@physics.test", Role::Lecturer))
        .await;
    let gone = app
        .create_user(in_physics("gone@physics.test", Role::Member))
        .await;
    let elsewhere = app
        .create_user(
            TestUser::new("head@biology.test")
                .role(Role::OrgAdmin)
                .in_organisation(biology.id),
        )
        .await;
    let body = app
        .graphql(
            "mutation ($id: ID!) { suspendUser(id: $id) { isSuspended } }",
            json!({ "id": suspended.id.to_string() }),
        )
        .await;
    assert!(body.get("errors").is_none(), "{body}");
    app.deactivate(&gone).await;
    app.invite("new@physics.test", Role::Lecturer, Some(physics.id))
        .await;
    let revoked = app
        .invite("changed-mind@physics.test", Role::Member, Some(physics.id))
        .await;
    app.query(
        "mutation ($id: ID!) { revokeInvitation(id: $id) { status } }",
        json!({ "id": revoked.id.to_string() }),
    )
    .await;
    app.invite("new@biology.test", Role::Member, Some(biology.id))
        .await;
    // Sign-ins: the head two days ago, Ada forty days ago; the suspended lecturer never.
    let now = chrono::Utc::now();
    for (person, days) in [(&head, 2), (&ada, 40)] {
        let mut row: entity::user::ActiveModel = person.clone().into();
        row.last_sign_in_at = Set(Some(now - chrono::Duration::days(days)));
        row.update(&app.db).await.expect("a sign-in");
    }

    let expected = json!({
        "organisationId": physics.id.to_string(),
        "members": 3,
        "pendingInvitations": 1,
        "signedInLast30Days": 1,
        "neverSignedIn": 1,
        "byRole": [
            { "role": "ADMIN", "active": 0, "suspended": 0, "removed": 0 },
            { "role": "ORG_ADMIN", "active": 1, "suspended": 0, "removed": 0 },
            { "role": "LECTURER", "active": 1, "suspended": 1, "removed": 0 },
            { "role": "MEMBER", "active": 0, "suspended": 0, "removed": 1 },
        ],
    });
    let id = json!({ "id": physics.id.to_string() });
    let by_admin = app.query(STATS, id.clone()).await;
    assert_eq!(by_admin["organisationStats"], expected);
    let by_head = app.query_as(&app.token_for(&head), STATS, id.clone()).await;
    assert_eq!(by_head["organisationStats"], expected);

    // Nobody else: another organisation's admin, a lecturer of this one.
    for token in [app.token_for(&elsewhere), app.token_for(&ada)] {
        let body = app.graphql_as(Some(&token), STATS, id.clone()).await;
        assert_eq!(error_code(&body), "FORBIDDEN", "{body}");
    }
    let body = app
        .graphql(STATS, json!({ "id": uuid::Uuid::now_v7().to_string() }))
        .await;
    assert_eq!(error_code(&body), "NOT_FOUND", "{body}");
}

fn session_at(id: &str, clerk_user_id: &str, at: chrono::DateTime<chrono::Utc>) -> String {
    let millis = at.timestamp_millis();
    envelope(
        "session.created",
        json!({ "object": "session", "id": id, "user_id": clerk_user_id, "status": "active",
                "created_at": millis, "updated_at": millis, "last_active_at": millis }),
    )
}

async fn the_dashboard_counts_sign_ins_by_week_and_workload(app: TestApp) {
    let physics = app.create_organisation("Physics").await;
    let biology = app.create_organisation("Biology").await;
    let member = |email: &'static str, organisation: uuid::Uuid| {
        TestUser::new(email)
            .role(Role::Lecturer)
            .in_organisation(organisation)
    };
    let ada = app
        .create_user(member("ada@physics.test", physics.id))
        .await;
    let alan = app
        .create_user(member("alan@physics.test", physics.id))
        .await;
    let other = app.create_user(member("bo@biology.test", biology.id)).await;
    let now = chrono::Utc::now();
    let this_week = userhub::service::sign_ins::week_of(now);
    let just_now = now - chrono::Duration::milliseconds(1);
    for (n, (person, at)) in [
        (&ada, just_now),
        (&ada, just_now),
        (&alan, just_now),
        (&other, just_now),
        (&alan, this_week - chrono::Duration::days(1)),
        (&ada, this_week - chrono::Duration::days(15)),
        // Before the four weeks asked for.
        (&ada, this_week - chrono::Duration::days(30)),
    ]
    .into_iter()
    .enumerate()
    {
        let (status, answer) = app
            .deliver(
                &format!("msg_week_{n}"),
                &session_at(&format!("sess_week_{n}"), &person.clerk_id, at),
            )
            .await;
        assert_eq!(status, 200, "{answer}");
    }
    let body = app
        .graphql(
            "mutation ($id: ID!) { allocateActivity(userId: $id, input: { academicYear: \"2026/27\", kind: TEACHING, name: \"Optics\", hours: 120 }) { activity { id } } }",
            json!({ "id": ada.id.to_string() }),
        )
        .await;
    assert!(body.get("errors").is_none(), "{body}");

    let answer = app
        .query(
            r#"query ($id: ID!) { organisationStats(id: $id) {
                signInsByWeek(weeks: 4) { weekStart signIns people }
                workload(academicYear: "2026/27") { allocatedHours } } }"#,
            json!({ "id": physics.id.to_string() }),
        )
        .await;
    let weeks = &answer["organisationStats"]["signInsByWeek"];
    let counts: Vec<(i64, i64)> = weeks
        .as_array()
        .expect("weeks")
        .iter()
        .map(|week| {
            (
                week["signIns"].as_i64().unwrap_or(-1),
                week["people"].as_i64().unwrap_or(-1),
            )
        })
        .collect();
    // Three weeks back: the sign-in 15 days before this week; two back: none.
    assert_eq!(counts, [(1, 1), (0, 0), (1, 1), (3, 2)], "{weeks}");
    let starts: Vec<chrono::DateTime<chrono::Utc>> = weeks
        .as_array()
        .expect("weeks")
        .iter()
        .map(|week| {
            week["weekStart"]
                .as_str()
                .unwrap_or_default()
                .parse()
                .expect("a time")
        })
        .collect();
    assert_eq!(
        starts,
        (0..4)
            .rev()
            .map(|back| this_week - chrono::Duration::weeks(back))
            .collect::<Vec<_>>()
    );
    assert_eq!(
        answer["organisationStats"]["workload"]["allocatedHours"],
        120.0
    );
    for weeks in [0, 27] {
        let body = app
            .graphql(
                r#"query ($id: ID!, $weeks: Int!) { organisationStats(id: $id) { signInsByWeek(weeks: $weeks) { signIns } } }"#,
                json!({ "id": physics.id.to_string(), "weeks": weeks }),
            )
            .await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    }
}

async fn the_dashboard_follows_its_organisations_changes_live(app: TestApp) {
    let physics = app.create_organisation("Physics").await;
    let biology = app.create_organisation("Biology").await;
    let head = app
        .create_user(TestUser::in_role(
            "head@physics.test",
            Role::OrgAdmin,
            physics.id,
        ))
        .await;
    let ada = app
        .create_user(TestUser::in_role(
            "ada@physics.test",
            Role::Lecturer,
            physics.id,
        ))
        .await;
    let bo = app
        .create_user(TestUser::in_role(
            "bo@biology.test",
            Role::Lecturer,
            biology.id,
        ))
        .await;
    const LIVE: &str = r#"subscription ($id: ID!) { organisationStatsChanged(id: $id) {
        members pendingInvitations workload(academicYear: "2026/27") { allocatedHours } } }"#;
    let id = json!({ "id": physics.id.to_string() });
    let mut dashboard = app.subscribe(&app.token_for(&head), LIVE, id.clone()).await;
    // The counts at once.
    let first = dashboard.next_data().await;
    assert_eq!(
        first["organisationStatsChanged"],
        json!({ "members": 2, "pendingInvitations": 0, "workload": { "allocatedHours": 0.0 } })
    );

    let allocate = |person: &entity::user::Model, hours: f64| {
        let app = &app;
        let person = person.id.to_string();
        async move {
            let body = app
                .graphql(
                    "mutation ($id: ID!, $hours: Float!) { allocateActivity(userId: $id, input: { academicYear: \"2026/27\", kind: TEACHING, name: \"Labs\", hours: $hours }) { activity { id } } }",
                    json!({ "id": person, "hours": hours }),
                )
                .await;
            assert!(body.get("errors").is_none(), "{body}");
        }
    };
    allocate(&ada, 40.0).await;
    let next = dashboard.next_data().await;
    assert_eq!(
        next["organisationStatsChanged"]["workload"]["allocatedHours"],
        40.0
    );
    app.invite("new@physics.test", Role::Lecturer, Some(physics.id))
        .await;
    let next = dashboard.next_data().await;
    assert_eq!(next["organisationStatsChanged"]["pendingInvitations"], 1);

    // Another organisation's changes are not this dashboard's.
    allocate(&bo, 10.0).await;
    app.invite("new@biology.test", Role::Lecturer, Some(biology.id))
        .await;
    dashboard.assert_quiet().await;

    // A burst ends in its total, and nothing after it.
    for _ in 0..5 {
        allocate(&ada, 2.0).await;
    }
    let mut pushes = 0;
    loop {
        let next = dashboard.next_data().await;
        pushes += 1;
        if next["organisationStatsChanged"]["workload"]["allocatedHours"] == 50.0 {
            break;
        }
        assert!(pushes < 5, "one push per change at most: {next}");
    }
    dashboard.assert_quiet().await;
    // Who may watch it is the authorisation matrix's (`access.rs`): admins and the
    // organisation's admins.
}
