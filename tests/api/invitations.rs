//! Invitations: sent by Clerk, recorded here, met by their user, revocable.

use entity::role::Role;
use serde_json::{Value, json};
use userhub::clerk::emulator::TokenOptions;

use crate::helpers::{TestApp, TestUser, error_code, on_both_databases};

on_both_databases!(
    invite_user_has_clerk_send_the_invitation_and_records_it,
    an_accepted_invitation_gives_the_user_its_role_and_is_marked_accepted,
    revoke_invitation_revokes_in_clerk_and_here,
    bad_invitations_are_refused_before_clerk_is_called,
    invite_users_reports_each_item,
    a_sync_that_brings_an_invited_user_in_accepts_the_invitation,
    an_organisation_admin_learns_nothing_of_emails_outside_their_organisation,
    a_user_accepts_the_invitation_they_used_and_no_other_organisations,
);

const INVITE: &str = r#"mutation($input: InviteUserInput!) { inviteUser(input: $input) {
    id clerkInvitationId email role status organisation { name } } }"#;

async fn invite_user_has_clerk_send_the_invitation_and_records_it(app: TestApp) {
    let org = app.create_organisation("History").await;
    let data = app
        .query(
            INVITE,
            json!({ "input": { "email": "Herodotus@Uni.test", "role": "LECTURER", "organisationId": org.id } }),
        )
        .await;
    let invitation = &data["inviteUser"];
    assert_eq!(invitation["email"], "herodotus@uni.test");
    assert_eq!(invitation["role"], "LECTURER");
    assert_eq!(invitation["status"], "PENDING");
    assert_eq!(invitation["organisation"]["name"], "History");

    let clerk_id = invitation["clerkInvitationId"]
        .as_str()
        .expect("a Clerk id");
    let in_clerk = app.clerk.emulator.invitation(clerk_id).expect("in Clerk");
    assert_eq!(in_clerk["status"], "pending");
    assert_eq!(in_clerk["public_metadata"]["role"], "lecturer");
    assert_eq!(
        in_clerk["public_metadata"]["organisationId"],
        org.id.to_string()
    );
    assert_eq!(
        in_clerk["public_metadata"]["userhubInvitationId"],
        invitation["id"]
    );
    assert_eq!(
        app.clerk.emulator.sent_invitation_emails(),
        [("herodotus@uni.test".to_owned(), clerk_id.to_owned())],
        "Clerk sends the email"
    );

    let listed = app
        .query(
            "{ invitations(filter: { status: PENDING }) { totalCount nodes { email } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        listed["invitations"],
        json!({ "totalCount": 1, "nodes": [{ "email": "herodotus@uni.test" }] })
    );
    let trail = app
        .query(
            r#"query($id: String!) { auditLog(filter: { subjectId: $id }) { nodes { action actor } } }"#,
            json!({ "id": invitation["id"] }),
        )
        .await;
    assert_eq!(
        trail["auditLog"]["nodes"],
        json!([{ "action": "invitation.created", "actor": app.admin.id.to_string() }])
    );
}

async fn an_accepted_invitation_gives_the_user_its_role_and_is_marked_accepted(app: TestApp) {
    let org = app.create_organisation("Law").await;
    let data = app
        .query(
            INVITE,
            json!({ "input": { "email": "portia@uni.test", "role": "ORG_ADMIN", "organisationId": org.id } }),
        )
        .await;
    let clerk_invitation = data["inviteUser"]["clerkInvitationId"]
        .as_str()
        .expect("id");

    // The person accepts, as they would from the email.
    let user: Value = app
        .client
        .post(format!(
            "http://{}/__emulator/invitations/{clerk_invitation}/accept",
            app.clerk.address
        ))
        .bearer_auth(app.clerk.emulator.secret())
        .json(&json!({ "first_name": "Portia", "last_name": "Bellmont" }))
        .send()
        .await
        .expect("the emulator answers")
        .json()
        .await
        .expect("a user");
    let token = app
        .clerk
        .emulator
        .mint_session_token(user["id"].as_str().expect("id"), TokenOptions::default())
        .expect("a token");

    // Their first request brings them in from Clerk, with the invitation's role.
    let me = app
        .query_as(
            &token,
            "{ me { email fullName role organisation { name } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        me["me"],
        json!({ "email": "portia@uni.test", "fullName": "Portia Bellmont", "role": "ORG_ADMIN", "organisation": { "name": "Law" } })
    );
    let listed = app
        .query("{ invitations { nodes { email status } } }", json!({}))
        .await;
    assert_eq!(
        listed["invitations"]["nodes"],
        json!([{ "email": "portia@uni.test", "status": "ACCEPTED" }])
    );
}

async fn revoke_invitation_revokes_in_clerk_and_here(app: TestApp) {
    let invitation = app.invite("maybe@uni.test", Role::Member, None).await;
    let revoke = "mutation($id: ID!) { revokeInvitation(id: $id) { status } }";
    let data = app.query(revoke, json!({ "id": invitation.id })).await;
    assert_eq!(data["revokeInvitation"]["status"], "REVOKED");
    let in_clerk = app
        .clerk
        .emulator
        .invitation(&invitation.clerk_invitation_id)
        .expect("in Clerk");
    assert_eq!(in_clerk["status"], "revoked");
    let again = app.graphql(revoke, json!({ "id": invitation.id })).await;
    assert_eq!(error_code(&again), "CONFLICT");
}

async fn bad_invitations_are_refused_before_clerk_is_called(app: TestApp) {
    app.create_user(TestUser::new("member@uni.test")).await;
    for (input, code) in [
        (json!({ "email": "not an email" }), "BAD_USER_INPUT"),
        (
            json!({ "email": "x@uni.test", "organisationId": uuid::Uuid::now_v7() }),
            "BAD_USER_INPUT",
        ),
        (
            json!({ "email": "x@uni.test", "organisationId": "nope" }),
            "BAD_USER_INPUT",
        ),
        (json!({ "email": "Member@uni.test" }), "CONFLICT"),
    ] {
        let body = app.graphql(INVITE, json!({ "input": input })).await;
        assert_eq!(error_code(&body), code, "{input}: {body}");
    }
    assert!(
        app.clerk.emulator.sent_invitation_emails().is_empty(),
        "Clerk was not called"
    );
}

async fn invite_users_reports_each_item(app: TestApp) {
    app.invite("already@uni.test", Role::Member, None).await;
    let data = app
        .query(
            r#"mutation($inputs: [InviteUserInput!]!) { inviteUsers(inputs: $inputs) {
                email invitation { email } error { code field } } }"#,
            json!({ "inputs": [
                { "email": "one@uni.test" },
                { "email": "broken" },
                { "email": "already@uni.test" },
                { "email": "two@uni.test", "role": "LECTURER" },
            ] }),
        )
        .await;
    assert_eq!(
        data["inviteUsers"],
        json!([
            { "email": "one@uni.test", "invitation": { "email": "one@uni.test" }, "error": null },
            { "email": "broken", "invitation": null, "error": { "code": "BAD_USER_INPUT", "field": "email" } },
            { "email": "already@uni.test", "invitation": null, "error": { "code": "CONFLICT", "field": null } },
            { "email": "two@uni.test", "invitation": { "email": "two@uni.test" }, "error": null },
        ])
    );
}

/// Rule 3 on the sync's path, which creates a page's new users together.
async fn a_sync_that_brings_an_invited_user_in_accepts_the_invitation(app: TestApp) {
    let org = app.create_organisation("Music").await;
    let mut clerk_ids = Vec::new();
    for email in ["clara@uni.test", "felix@uni.test"] {
        let data = app
            .query(
                INVITE,
                json!({ "input": { "email": email, "role": "LECTURER", "organisationId": org.id } }),
            )
            .await;
        clerk_ids.push(
            data["inviteUser"]["clerkInvitationId"]
                .as_str()
                .expect("id")
                .to_owned(),
        );
    }
    // Only Clara accepts; userhub hears of her from the sync alone (no webhooks here).
    app.clerk
        .emulator
        .accept_invitation(&clerk_ids[0], Some("Clara".to_owned()), None)
        .expect("the invitation is accepted in Clerk");
    let run = app
        .query(
            "mutation { syncUsers(wait: true) { status created } }",
            json!({}),
        )
        .await;
    assert_eq!(
        run["syncUsers"],
        json!({ "status": "SUCCEEDED", "created": 1 })
    );

    let listed = app
        .query(
            "{ invitations { nodes { email status } } users(filter: { search: \"clara\" }) { nodes { email role organisation { name } } } }",
            json!({}),
        )
        .await;
    let mut invitations = listed["invitations"]["nodes"]
        .as_array()
        .expect("a list")
        .clone();
    invitations.sort_by_key(|invitation| invitation["email"].to_string());
    assert_eq!(
        invitations,
        vec![
            json!({ "email": "clara@uni.test", "status": "ACCEPTED" }),
            json!({ "email": "felix@uni.test", "status": "PENDING" }),
        ]
    );
    assert_eq!(
        listed["users"]["nodes"],
        json!([{ "email": "clara@uni.test", "role": "LECTURER", "organisation": { "name": "Music" } }])
    );
}

/// Issue 16, item 11: inviting an email must not tell an organisation admin whether it has an
/// account, or a pending invitation, in another organisation (or in none). Inside their own
/// organisation they are told, as they can read it anyway.
async fn an_organisation_admin_learns_nothing_of_emails_outside_their_organisation(app: TestApp) {
    let ours = app.create_organisation("Ours").await;
    let theirs = app.create_organisation("Theirs").await;
    let org_admin = app
        .create_user(
            TestUser::new("head@ours.test")
                .role(Role::OrgAdmin)
                .in_organisation(ours.id),
        )
        .await;
    let token = app.token_for(&org_admin);
    app.create_user(TestUser::new("colleague@ours.test").in_organisation(ours.id))
        .await;
    app.create_user(
        TestUser::new("elsewhere@theirs.test")
            .role(Role::OrgAdmin)
            .in_organisation(theirs.id),
    )
    .await;
    app.create_user(TestUser::new("unattached@uni.test")).await;
    app.invite("wanted@theirs.test", Role::Lecturer, Some(theirs.id))
        .await;

    let invite = |email: &str| {
        let variables =
            json!({ "input": { "email": email, "role": "LECTURER", "organisationId": ours.id } });
        let token = token.clone();
        let app = &app;
        async move { app.graphql_as(Some(&token), INVITE, variables).await }
    };
    // What an answer says once its own email and ids are set aside.
    let shape = |mut body: Value| {
        let invitation = &mut body["data"]["inviteUser"];
        if invitation.is_object() {
            invitation["id"] = json!("…");
            invitation["clerkInvitationId"] = json!("…");
            invitation["email"] = json!("…");
        }
        body
    };

    let fresh = shape(invite("nobody@uni.test").await);
    assert_eq!(
        fresh["data"]["inviteUser"],
        json!({ "id": "…", "clerkInvitationId": "…", "email": "…", "role": "LECTURER", "status": "PENDING", "organisation": { "name": "Ours" } }),
        "{fresh}"
    );
    for email in [
        "elsewhere@theirs.test",
        "unattached@uni.test",
        "wanted@theirs.test",
    ] {
        let answer = invite(email).await;
        assert_eq!(shape(answer.clone()), fresh, "{email}: {answer}");
        let clerk_id = answer["data"]["inviteUser"]["clerkInvitationId"]
            .as_str()
            .expect("a Clerk id");
        assert!(
            app.clerk
                .emulator
                .sent_invitation_emails()
                .contains(&(email.to_owned(), clerk_id.to_owned())),
            "{email}: Clerk sent the invitation like any other"
        );
    }

    // Inside their own organisation there is nothing to hide.
    for (email, reason) in [
        ("colleague@ours.test", "already has an account"),
        ("nobody@uni.test", "already has a pending invitation"),
    ] {
        let body = invite(email).await;
        assert_eq!(error_code(&body), "CONFLICT", "{email}: {body}");
        let message = body["errors"][0]["message"].as_str().unwrap_or_default();
        assert!(message.contains(reason), "{email}: {body}");
    }

    // An admin reads the whole directory, so an admin is told.
    for email in ["elsewhere@theirs.test", "wanted@theirs.test"] {
        let body = app
            .graphql(
                INVITE,
                json!({ "input": { "email": email, "organisationId": ours.id } }),
            )
            .await;
        assert_eq!(error_code(&body), "CONFLICT", "{email}: {body}");
    }
}

/// Two organisations' admins can each invite the same person (neither sees the other's
/// invitation). The person joins through one: that one is accepted, the other stays pending
/// for its admin to revoke, whether userhub hears of them at their first request or by
/// webhook.
async fn a_user_accepts_the_invitation_they_used_and_no_other_organisations(app: TestApp) {
    use entity::invitation;
    use sea_orm::EntityTrait;

    let chemistry = app.create_organisation("Chemistry").await;
    let biology = app.create_organisation("Biology").await;
    let head_of_biology = app
        .create_user(
            TestUser::new("head@biology.test")
                .role(Role::OrgAdmin)
                .in_organisation(biology.id),
        )
        .await;
    let biology_token = app.token_for(&head_of_biology);
    let status = |id| {
        let app = &app;
        async move {
            invitation::Entity::find_by_id(id)
                .one(&app.db)
                .await
                .expect("a query")
                .expect("the invitation")
                .status
                .as_str()
                .to_owned()
        }
    };

    for (email, by_webhook) in [("rosalind@uni.test", false), ("barbara@uni.test", true)] {
        let chemistry_invitation = app.invite(email, Role::Lecturer, Some(chemistry.id)).await;
        let answer = app
            .graphql_as(
                Some(&biology_token),
                INVITE,
                json!({ "input": { "email": email, "role": "LECTURER", "organisationId": biology.id } }),
            )
            .await;
        let biology_invitation: uuid::Uuid = answer["data"]["inviteUser"]["id"]
            .as_str()
            .and_then(|id| id.parse().ok())
            .unwrap_or_else(|| panic!("an invitation: {answer}"));
        let clerk_invitation = answer["data"]["inviteUser"]["clerkInvitationId"]
            .as_str()
            .expect("a Clerk id")
            .to_owned();

        if by_webhook {
            app.send_clerk_webhooks_here(Default::default());
        }
        let user = app
            .clerk
            .emulator
            .accept_invitation(&clerk_invitation, Some("New".to_owned()), None)
            .expect("the invitation is accepted in Clerk");
        if by_webhook {
            // `user.created` brings them in.
            let mut arrived = false;
            for _ in 0..200 {
                if status(biology_invitation).await == "accepted" {
                    arrived = true;
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            assert!(arrived, "{email}: the webhook never brought them in");
        } else {
            let token = app
                .clerk
                .emulator
                .mint_session_token(&user.id, TokenOptions::default())
                .expect("a token");
            let me = app
                .query_as(&token, "{ me { email organisation { name } } }", json!({}))
                .await;
            assert_eq!(
                me["me"],
                json!({ "email": email, "organisation": { "name": "Biology" } })
            );
        }
        assert_eq!(status(biology_invitation).await, "accepted", "{email}");
        assert_eq!(status(chemistry_invitation.id).await, "pending", "{email}");
    }
}
