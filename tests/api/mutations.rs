//! The identity mutations, Clerk first: each is checked on both sides afterwards, the
//! emulator's user and userhub's row and audit trail.

use entity::role::Role;
use serde_json::{Value, json};
use userhub::clerk::emulator::Fault;
use userhub::config::Config;

use crate::helpers::{TestApp, TestUser, error_code, on_both_databases, signing_key};

on_both_databases!(
    update_user_changes_role_organisation_and_names_in_clerk_then_here,
    an_org_admin_cannot_grant_admin_or_move_users_out,
    remove_user_deletes_in_clerk_and_keeps_the_row_inactive,
    suspend_and_unsuspend_ban_in_clerk_and_the_suspended_are_refused,
    the_last_admin_cannot_be_demoted_removed_or_suspended,
    bad_input_is_refused_before_clerk_is_called,
    clerk_unreachable_is_upstream_unavailable_and_changes_nothing => clerk_unreachable,
    organisations_are_created_renamed_and_archived_by_admins,
    a_rate_limited_call_is_retried_after_the_wait_and_succeeds,
    clerk_failing_every_time_is_upstream_unavailable_and_changes_nothing,
    clerk_slower_than_the_timeout_is_upstream_unavailable => short_clerk_timeout,
    calls_clerk_applied_before_timing_out_are_not_sent_again => short_clerk_timeout,
);

fn short_clerk_timeout(config: &mut Config) {
    config.clerk_timeout_ms = 300;
}

fn clerk_unreachable(config: &mut Config) {
    // Tokens verify with the PEM key; every Backend API call fails to connect.
    config.clerk_jwt_key = Some(signing_key().public_pem().to_owned());
    config.clerk_api_url = "http://127.0.0.1:1/v1".to_owned();
}

async fn audit_actions(app: &TestApp, subject: &str) -> Vec<Value> {
    let data = app
        .query(
            r#"query($id: String!) { auditLog(filter: { subjectId: $id }) {
                nodes { action actor source correlationId before after } } }"#,
            json!({ "id": subject }),
        )
        .await;
    data["auditLog"]["nodes"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

async fn update_user_changes_role_organisation_and_names_in_clerk_then_here(app: TestApp) {
    let physics = app.create_organisation("Physics").await;
    let user = app.create_user(TestUser::new("noether@uni.test")).await;

    let data = app
        .query(
            r#"mutation($id: ID!, $org: ID!) { updateUser(id: $id, input: {
                role: LECTURER, organisationId: $org, firstName: "Emmy", lastName: "Noether" }) {
                role fullName organisation { name } } }"#,
            json!({ "id": user.id, "org": physics.id }),
        )
        .await;
    assert_eq!(
        data["updateUser"],
        json!({ "role": "LECTURER", "fullName": "Emmy Noether", "organisation": { "name": "Physics" } })
    );
    let in_clerk = app.clerk.emulator.user(&user.clerk_id).expect("in Clerk");
    assert_eq!(in_clerk.public_metadata["role"], "lecturer");
    assert_eq!(
        in_clerk.public_metadata["organisationId"],
        physics.id.to_string()
    );
    assert_eq!(in_clerk.first_name.as_deref(), Some("Emmy"));

    let trail = audit_actions(&app, &user.id.to_string()).await;
    assert_eq!(trail[0]["action"], "user.role_changed");
    assert_eq!(trail[0]["actor"], app.admin.id.to_string());
    assert_eq!(trail[0]["source"], "api");
    assert!(
        trail[0]["correlationId"].is_string(),
        "the request id is recorded"
    );
    assert_eq!(trail[0]["before"]["role"], "member");
    assert_eq!(trail[0]["after"]["organisationId"], physics.id.to_string());

    // `organisationId: null` takes the user out of their organisation, in Clerk too.
    let data = app
        .query(
            r#"mutation($id: ID!) { updateUser(id: $id, input: { organisationId: null }) { organisationId } }"#,
            json!({ "id": user.id }),
        )
        .await;
    assert_eq!(data["updateUser"]["organisationId"], Value::Null);
    let in_clerk = app.clerk.emulator.user(&user.clerk_id).expect("in Clerk");
    assert!(in_clerk.public_metadata.get("organisationId").is_none());
    assert_eq!(
        in_clerk.public_metadata["role"], "lecturer",
        "the merge kept the role"
    );
}

async fn an_org_admin_cannot_grant_admin_or_move_users_out(app: TestApp) {
    let a = app.create_organisation("A").await;
    let b = app.create_organisation("B").await;
    let org_admin = app
        .create_user(
            TestUser::new("boss@a.test")
                .role(Role::OrgAdmin)
                .in_organisation(a.id),
        )
        .await;
    let member = app
        .create_user(TestUser::new("member@a.test").in_organisation(a.id))
        .await;
    let token = app.token_for(&org_admin);
    for (input, why) in [
        (json!({ "role": "ADMIN" }), "grant the admin role"),
        (json!({ "organisationId": b.id }), "another organisation"),
        (json!({ "organisationId": null }), "another organisation"),
    ] {
        let body = app
            .graphql_as(
                Some(&token),
                "mutation($id: ID!, $input: UpdateUserInput!) { updateUser(id: $id, input: $input) { id } }",
                json!({ "id": member.id, "input": input }),
            )
            .await;
        assert_eq!(error_code(&body), "FORBIDDEN", "{input}");
        assert!(
            body["errors"][0]["message"]
                .as_str()
                .expect("message")
                .contains(why)
        );
    }
    let in_clerk = app.clerk.emulator.user(&member.clerk_id).expect("in Clerk");
    assert_eq!(in_clerk.public_metadata["role"], "member");
    assert_eq!(in_clerk.public_metadata["organisationId"], a.id.to_string());
    // What an org admin may do, they can.
    let data = app
        .query_as(
            &token,
            r#"mutation($id: ID!) { updateUser(id: $id, input: { role: ORG_ADMIN }) { role } }"#,
            json!({ "id": member.id }),
        )
        .await;
    assert_eq!(data["updateUser"]["role"], "ORG_ADMIN");
}

async fn remove_user_deletes_in_clerk_and_keeps_the_row_inactive(app: TestApp) {
    let user = app.create_user(TestUser::new("leaving@uni.test")).await;
    let token = app.token_for(&user);
    let data = app
        .query(
            "mutation($id: ID!) { removeUser(id: $id) { isActive deactivatedAt } }",
            json!({ "id": user.id }),
        )
        .await;
    assert_eq!(data["removeUser"]["isActive"], false);
    assert!(data["removeUser"]["deactivatedAt"].is_string());
    assert!(
        app.clerk.emulator.user(&user.clerk_id).is_none(),
        "deleted in Clerk"
    );
    let trail = audit_actions(&app, &user.id.to_string()).await;
    let actions: Vec<&str> = trail
        .iter()
        .map(|e| e["action"].as_str().expect("action"))
        .collect();
    assert_eq!(actions, ["user.deactivated", "user.created"]);
    // The row stays, readable, and removing again changes nothing.
    let again = app
        .query(
            "mutation($id: ID!) { removeUser(id: $id) { isActive } }",
            json!({ "id": user.id }),
        )
        .await;
    assert_eq!(again["removeUser"]["isActive"], false);
    assert_eq!(audit_actions(&app, &user.id.to_string()).await.len(), 2);
    let (status, _) = app.post_as(Some(&token), "{ me { id } }", json!({})).await;
    assert_eq!(status, 403);
}

async fn suspend_and_unsuspend_ban_in_clerk_and_the_suspended_are_refused(app: TestApp) {
    let user = app.create_user(TestUser::new("rowdy@uni.test")).await;
    let token = app.token_for(&user);
    let data = app
        .query(
            "mutation($id: ID!) { suspendUser(id: $id) { isSuspended } }",
            json!({ "id": user.id }),
        )
        .await;
    assert_eq!(data["suspendUser"]["isSuspended"], true);
    assert!(
        app.clerk
            .emulator
            .user(&user.clerk_id)
            .expect("in Clerk")
            .banned
    );
    let (status, body) = app.post_as(Some(&token), "{ me { id } }", json!({})).await;
    assert_eq!(status, 403, "{body}");

    let data = app
        .query(
            "mutation($id: ID!) { unsuspendUser(id: $id) { isSuspended } }",
            json!({ "id": user.id }),
        )
        .await;
    assert_eq!(data["unsuspendUser"]["isSuspended"], false);
    assert!(
        !app.clerk
            .emulator
            .user(&user.clerk_id)
            .expect("in Clerk")
            .banned
    );
    app.query_as(&token, "{ me { id } }", json!({})).await;
    let trail = audit_actions(&app, &user.id.to_string()).await;
    let actions: Vec<&str> = trail
        .iter()
        .map(|e| e["action"].as_str().expect("action"))
        .collect();
    assert_eq!(
        actions,
        ["user.unsuspended", "user.suspended", "user.created"]
    );
}

async fn the_last_admin_cannot_be_demoted_removed_or_suspended(app: TestApp) {
    for operation in [
        r#"mutation($id: ID!) { updateUser(id: $id, input: { role: MEMBER }) { id } }"#,
        "mutation($id: ID!) { removeUser(id: $id) { id } }",
    ] {
        let body = app.graphql(operation, json!({ "id": app.admin.id })).await;
        assert_eq!(error_code(&body), "CONFLICT", "{operation}: {body}");
    }
    let body = app
        .graphql(
            "mutation($id: ID!) { suspendUser(id: $id) { id } }",
            json!({ "id": app.admin.id }),
        )
        .await;
    assert_eq!(error_code(&body), "CONFLICT");
    let in_clerk = app
        .clerk
        .emulator
        .user(&app.admin.clerk_id)
        .expect("in Clerk");
    assert_eq!(in_clerk.public_metadata["role"], "admin");
    assert!(!in_clerk.banned);
}

async fn bad_input_is_refused_before_clerk_is_called(app: TestApp) {
    let user = app.create_user(TestUser::new("steady@uni.test")).await;
    let archived = app.create_organisation("Old").await;
    app.query(
        "mutation($id: ID!) { archiveOrganisation(id: $id) { id } }",
        json!({ "id": archived.id }),
    )
    .await;
    let before = app.clerk.emulator.user(&user.clerk_id).expect("in Clerk");
    for (input, field) in [
        (
            json!({ "organisationId": uuid::Uuid::now_v7() }),
            "organisationId",
        ),
        (json!({ "organisationId": archived.id }), "organisationId"),
        (json!({ "organisationId": "nope" }), "input.organisationId"),
        (json!({ "firstName": "x".repeat(101) }), "firstName"),
    ] {
        let body = app
            .graphql(
                "mutation($id: ID!, $input: UpdateUserInput!) { updateUser(id: $id, input: $input) { id } }",
                json!({ "id": user.id, "input": input }),
            )
            .await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{input}: {body}");
        assert_eq!(body["errors"][0]["extensions"]["field"], field);
    }
    let after = app.clerk.emulator.user(&user.clerk_id).expect("in Clerk");
    assert_eq!(before.updated_at, after.updated_at, "Clerk was not called");
}

async fn clerk_unreachable_is_upstream_unavailable_and_changes_nothing(app: TestApp) {
    let user = app.create_user(TestUser::new("patient@uni.test")).await;
    for operation in [
        r#"mutation($id: ID!) { updateUser(id: $id, input: { role: LECTURER }) { id } }"#,
        "mutation($id: ID!) { removeUser(id: $id) { id } }",
        "mutation($id: ID!) { suspendUser(id: $id) { id } }",
    ] {
        let body = app.graphql(operation, json!({ "id": user.id })).await;
        assert_eq!(
            error_code(&body),
            "UPSTREAM_UNAVAILABLE",
            "{operation}: {body}"
        );
    }
    let data = app
        .query(
            "query($id: ID!) { user(id: $id) { role isActive isSuspended } }",
            json!({ "id": user.id }),
        )
        .await;
    assert_eq!(
        data["user"],
        json!({ "role": "MEMBER", "isActive": true, "isSuspended": false })
    );
    assert_eq!(
        audit_actions(&app, &user.id.to_string()).await.len(),
        1,
        "only user.created"
    );
}

async fn organisations_are_created_renamed_and_archived_by_admins(app: TestApp) {
    let created = app
        .query(r#"mutation { createOrganisation(input: { name: "School of Music" }) { id name slug } }"#, json!({}))
        .await["createOrganisation"]
        .clone();
    assert_eq!(created["slug"], "school-of-music");
    let duplicate = app
        .graphql(
            r#"mutation { createOrganisation(input: { name: "School of Music!" }) { id } }"#,
            json!({}),
        )
        .await;
    assert_eq!(error_code(&duplicate), "CONFLICT");
    let empty = app
        .graphql(
            r#"mutation { createOrganisation(input: { name: "  " }) { id } }"#,
            json!({}),
        )
        .await;
    assert_eq!(error_code(&empty), "BAD_USER_INPUT");

    let renamed = app
        .query(
            r#"mutation($id: ID!) { updateOrganisation(id: $id, input: { name: "Conservatoire", slug: "conservatoire" }) { name slug } }"#,
            json!({ "id": created["id"] }),
        )
        .await;
    assert_eq!(
        renamed["updateOrganisation"],
        json!({ "name": "Conservatoire", "slug": "conservatoire" })
    );

    let member = app
        .create_user(
            TestUser::new("cellist@uni.test")
                .in_organisation(created["id"].as_str().expect("id").parse().expect("uuid")),
        )
        .await;
    let refused = app
        .graphql(
            "mutation($id: ID!) { archiveOrganisation(id: $id) { id } }",
            json!({ "id": created["id"] }),
        )
        .await;
    assert_eq!(error_code(&refused), "CONFLICT");
    app.query(
        "mutation($id: ID!) { removeUser(id: $id) { id } }",
        json!({ "id": member.id }),
    )
    .await;
    let archived = app
        .query(
            "mutation($id: ID!) { archiveOrganisation(id: $id) { isArchived } }",
            json!({ "id": created["id"] }),
        )
        .await;
    assert_eq!(archived["archiveOrganisation"]["isArchived"], true);
    let trail = audit_actions(&app, created["id"].as_str().expect("id")).await;
    let actions: Vec<&str> = trail
        .iter()
        .map(|e| e["action"].as_str().expect("action"))
        .collect();
    assert_eq!(
        actions,
        [
            "organisation.archived",
            "organisation.updated",
            "organisation.created"
        ]
    );
    assert_eq!(trail[0]["actor"], app.admin.id.to_string());
}

const PROMOTE: &str =
    r#"mutation($id: ID!) { updateUser(id: $id, input: { role: LECTURER }) { role } }"#;

async fn a_rate_limited_call_is_retried_after_the_wait_and_succeeds(app: TestApp) {
    let user = app.create_user(TestUser::new("queued@uni.test")).await;
    app.clerk.emulator.inject(
        Fault::RateLimited {
            retry_after_seconds: 1,
        },
        1,
    );
    let started = std::time::Instant::now();
    let data = app.query(PROMOTE, json!({ "id": user.id })).await;
    assert_eq!(data["updateUser"]["role"], "LECTURER");
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(1),
        "Retry-After was honoured"
    );
    let in_clerk = app.clerk.emulator.user(&user.clerk_id).expect("in Clerk");
    assert_eq!(in_clerk.public_metadata["role"], "lecturer");
}

async fn clerk_failing_every_time_is_upstream_unavailable_and_changes_nothing(app: TestApp) {
    let user = app.create_user(TestUser::new("unlucky@uni.test")).await;
    app.clerk.emulator.inject(Fault::ServerError, 100);
    let body = app.graphql(PROMOTE, json!({ "id": user.id })).await;
    assert_eq!(error_code(&body), "UPSTREAM_UNAVAILABLE", "{body}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .expect("message")
            .contains("4 times")
    );
    app.clerk.emulator.clear_faults();
    let data = app
        .query(
            "query($id: ID!) { user(id: $id) { role } }",
            json!({ "id": user.id }),
        )
        .await;
    assert_eq!(data["user"]["role"], "MEMBER");
    assert_eq!(audit_actions(&app, &user.id.to_string()).await.len(), 1);
    assert_eq!(
        app.clerk
            .emulator
            .user(&user.clerk_id)
            .expect("in Clerk")
            .public_metadata["role"],
        "member"
    );
}

async fn clerk_slower_than_the_timeout_is_upstream_unavailable(app: TestApp) {
    let user = app.create_user(TestUser::new("slow@uni.test")).await;
    app.clerk
        .emulator
        .inject(Fault::Slow(std::time::Duration::from_secs(2)), 4);
    let started = std::time::Instant::now();
    let body = app.graphql(PROMOTE, json!({ "id": user.id })).await;
    assert_eq!(error_code(&body), "UPSTREAM_UNAVAILABLE", "{body}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .expect("message")
            .contains("timed out")
    );
    // Four attempts of 300 ms and their backoff: bounded well below the slow answers.
    assert!(
        started.elapsed() < std::time::Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
}

/// Clerk does what is asked, then its answer comes too late. An invitation is not sent again
/// (a second email, or Clerk's "duplicate" refusal of an invitation that exists): userhub finds
/// the one Clerk made, by the id it put in its metadata, and records it. A removal whose retry
/// finds the user gone counts as done.
async fn calls_clerk_applied_before_timing_out_are_not_sent_again(app: TestApp) {
    app.clerk
        .emulator
        .inject(Fault::SlowAnswer(std::time::Duration::from_millis(600)), 1);
    let invited = app
        .graphql(
            r#"mutation { inviteUser(input: { email: "late@uni.test", role: LECTURER }) { id clerkInvitationId email } }"#,
            json!({}),
        )
        .await;
    assert!(invited.get("errors").is_none(), "{invited}");
    let clerk_id = invited["data"]["inviteUser"]["clerkInvitationId"]
        .as_str()
        .expect("Clerk's id")
        .to_owned();
    let emails: Vec<_> = app
        .clerk
        .emulator
        .sent_invitation_emails()
        .into_iter()
        .filter(|(email, _)| email == "late@uni.test")
        .collect();
    assert_eq!(emails.len(), 1, "one invitation, one email: {emails:?}");
    assert!(app.clerk.emulator.invitation(&clerk_id).is_some());
    let posts = app
        .clerk
        .emulator
        .requests()
        .iter()
        .filter(|(method, path, _)| method == "POST" && path == "/invitations")
        .count();
    assert_eq!(posts, 1, "not sent again");

    let user = app.create_user(TestUser::new("leaving@uni.test")).await;
    app.clerk
        .emulator
        .inject(Fault::SlowAnswer(std::time::Duration::from_millis(600)), 1);
    let removed = app
        .graphql(
            "mutation ($id: ID!) { removeUser(id: $id) { isActive } }",
            json!({ "id": user.id.to_string() }),
        )
        .await;
    assert_eq!(
        removed["data"]["removeUser"]["isActive"], false,
        "{removed}"
    );
    assert!(app.clerk.emulator.user(&user.clerk_id).is_none());
}
