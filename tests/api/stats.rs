//! Organisation dashboards (issue 19.4): `organisationStats(id)` counts an organisation's people
//! by role and status, its pending invitations and its recent sign-ins, for admins and the
//! organisation's admins only.

use entity::role::Role;
use sea_orm::{ActiveModelTrait, Set};
use serde_json::json;

use crate::helpers::{TestApp, TestUser, error_code, on_both_databases};

on_both_databases!(an_organisations_dashboard_counts_its_people_invitations_and_sign_ins);

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
