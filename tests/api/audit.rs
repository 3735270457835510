//! The audit log: every change is recorded, newest first, and can be narrowed to one subject.

use entity::role::Role;
use serde_json::json;
use userhub::service::users::{ClerkProfile, upsert_from_clerk};

use crate::helpers::{TestApp, TestUser, on_both_databases, sync_origin};

on_both_databases!(
    changes_are_in_the_audit_log_newest_first_with_before_and_after,
    a_stale_or_unchanged_profile_writes_nothing,
);

async fn changes_are_in_the_audit_log_newest_first_with_before_and_after(app: TestApp) {
    let org = app.create_organisation("Geology").await;
    let user = app.create_user(TestUser::new("rock@uni.test")).await;
    let in_clerk = app
        .clerk
        .emulator
        .merge_public_metadata(
            &user.clerk_id,
            json!({ "role": "org_admin", "organisationId": org.id.to_string() }),
        )
        .expect("the user is in Clerk");
    let promoted = upsert_from_clerk(
        &app.db,
        &app.events,
        &sync_origin(),
        ClerkProfile::of(&in_clerk).expect("an email"),
    )
    .await
    .expect("update");
    assert_eq!(promoted.user().role, Role::OrgAdmin);

    let data = app
        .query(
            r#"{ auditLog(first: 10) { totalCount nodes {
                actor action subjectType subjectId source before after } } }"#,
            json!({}),
        )
        .await;
    let log = &data["auditLog"];
    // The test's own admin was created first.
    assert_eq!(log["totalCount"], 4);
    let actions: Vec<&str> = log["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|event| event["action"].as_str().expect("action"))
        .collect();
    assert_eq!(
        actions,
        [
            "user.role_changed",
            "user.created",
            "organisation.created",
            "user.created"
        ]
    );
    let change = &log["nodes"][0];
    assert_eq!(change["actor"], "sync");
    assert_eq!(change["source"], "sync");
    assert_eq!(change["subjectType"], "user");
    assert_eq!(change["subjectId"], user.id.to_string());
    assert_eq!(change["before"]["role"], "member");
    assert_eq!(change["before"]["organisationId"], serde_json::Value::Null);
    assert_eq!(change["after"]["role"], "org_admin");
    assert_eq!(change["after"]["organisationId"], org.id.to_string());

    let trail = app
        .query(
            r#"query($id: String!) { auditLog(filter: { subjectType: "user", subjectId: $id }) {
                totalCount nodes { action } } }"#,
            json!({ "id": user.id }),
        )
        .await;
    assert_eq!(
        trail["auditLog"],
        json!({ "totalCount": 2, "nodes": [{ "action": "user.role_changed" }, { "action": "user.created" }] })
    );
}

async fn a_stale_or_unchanged_profile_writes_nothing(app: TestApp) {
    let user = app.create_user(TestUser::new("same@uni.test")).await;
    let stored = user.clerk_updated_at;
    let profile = ClerkProfile {
        clerk_id: user.clerk_id.clone(),
        email: user.email.clone(),
        first_name: user.first_name.clone(),
        last_name: user.last_name.clone(),
        image_url: user.image_url.clone(),
        role: Role::Member,
        organisation_id: None,
        banned: false,
        last_sign_in_at: None,
        last_active_at: None,
        updated_at_ms: stored + 5,
        invitation_id: None,
    };
    let unchanged = upsert_from_clerk(&app.db, &app.events, &sync_origin(), profile.clone())
        .await
        .expect("upsert");
    assert!(matches!(
        unchanged,
        userhub::service::users::Upserted::Unchanged(_)
    ));
    let stale = upsert_from_clerk(
        &app.db,
        &app.events,
        &sync_origin(),
        ClerkProfile {
            role: Role::Admin,
            updated_at_ms: stored - 1,
            ..profile.clone()
        },
    )
    .await
    .expect("upsert");
    assert!(matches!(stale, userhub::service::users::Upserted::Stale(_)));
    // Between the stored timestamp and the unchanged one: older than what was last seen.
    let older = upsert_from_clerk(
        &app.db,
        &app.events,
        &sync_origin(),
        ClerkProfile {
            role: Role::Admin,
            updated_at_ms: stored + 3,
            ..profile
        },
    )
    .await
    .expect("upsert");
    assert!(matches!(older, userhub::service::users::Upserted::Stale(_)));

    let data = app
        .query(
            r#"query($id: String!, $userId: ID!) {
                auditLog(filter: { subjectId: $id }) { totalCount }
                user(id: $userId) { role } }"#,
            json!({ "id": user.id, "userId": user.id }),
        )
        .await;
    assert_eq!(data["auditLog"]["totalCount"], 1);
    assert_eq!(data["user"], json!({ "role": "MEMBER" }));
}
