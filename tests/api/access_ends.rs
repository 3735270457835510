//! Access with end dates (issue 19.7): once a user's `accessUntil` has passed, a scheduled job
//! suspends them in Clerk, audited and published; they stay suspended until it moves on; and
//! two replicas sweeping one database suspend each user once.

use std::time::Duration;

use entity::role::Role;
use serde_json::{Value, json};
use userhub::clerk::emulator::webhooks::Switches;
use userhub::config::Config;

use crate::helpers::{TestApp, TestUser, error_code, on_both_databases};

on_both_databases!(
    a_user_whose_access_ended_is_suspended_audited_published_and_kept_so => quick_sweep,
    two_replicas_suspend_each_user_whose_access_ended_once => quick_sweep,
    the_last_admins_access_cannot_be_given_an_end => quick_sweep,
);

fn quick_sweep(config: &mut Config) {
    config.access_sweep_ms = 100;
}

const SET_END: &str = r#"mutation ($id: ID!, $until: DateTime) {
    updateLecturerProfile(userId: $id, input: { accessUntil: $until }) {
        accessUntil isSuspended profile { accessUntil } } }"#;

const STATE: &str = r#"query ($id: ID!) { user(id: $id) { isSuspended accessUntil } }"#;

/// Waits until the user is suspended here, or fails after ten seconds.
async fn suspended_here(app: &TestApp, user: &entity::user::Model) {
    for _ in 0..200 {
        let state = app.query(STATE, json!({ "id": user.id.to_string() })).await;
        if state["user"]["isSuspended"] == true {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{} was not suspended", user.email);
}

fn banned_in_clerk(app: &TestApp, user: &entity::user::Model) -> bool {
    app.clerk
        .emulator
        .user(&user.clerk_id)
        .is_some_and(|clerk_user| clerk_user.banned)
}

async fn suspensions_of(app: &TestApp, user: &entity::user::Model) -> Value {
    app.query(
        r#"query ($id: String!) { auditLog(filter: { action: "user.suspended", subjectId: $id }) {
            totalCount nodes { actor source correlationId } } }"#,
        json!({ "id": user.id.to_string() }),
    )
    .await["auditLog"]
        .clone()
}

async fn a_user_whose_access_ended_is_suspended_audited_published_and_kept_so(app: TestApp) {
    let organisation = app.create_organisation("Physics").await;
    let head = app
        .create_user(
            TestUser::new("head@physics.test")
                .role(Role::OrgAdmin)
                .in_organisation(organisation.id),
        )
        .await;
    let leaving = app
        .create_user(
            TestUser::new("leaving@physics.test")
                .role(Role::Lecturer)
                .in_organisation(organisation.id),
        )
        .await;
    let staying = app
        .create_user(
            TestUser::new("staying@physics.test")
                .role(Role::Lecturer)
                .in_organisation(organisation.id),
        )
        .await;
    let head_token = app.token_for(&head);
    let mut watcher = app
        .subscribe(
            &head_token,
            "subscription { userChanged { kind source user { email isSuspended accessUntil } } }",
            json!({}),
        )
        .await;

    // A contract that ends in the future changes nothing yet.
    let later = (chrono::Utc::now() + chrono::Duration::days(30)).to_rfc3339();
    let body = app
        .graphql_as(
            Some(&head_token),
            SET_END,
            json!({ "id": staying.id.to_string(), "until": later }),
        )
        .await;
    assert!(body.get("errors").is_none(), "{body}");
    let change = watcher.next_data().await;
    assert_eq!(change["userChanged"]["kind"], "PROFILE_UPDATED");

    // One that ends in a moment: the sweep suspends them once it has passed.
    let soon = chrono::Utc::now() + chrono::Duration::milliseconds(300);
    let body = app
        .graphql_as(
            Some(&head_token),
            SET_END,
            json!({ "id": leaving.id.to_string(), "until": soon.to_rfc3339() }),
        )
        .await;
    let set = &body["data"]["updateLecturerProfile"];
    assert_eq!(set["isSuspended"], false, "{body}");
    assert_eq!(set["accessUntil"], set["profile"]["accessUntil"]);
    let change = watcher.next_data().await;
    assert_eq!(change["userChanged"]["kind"], "PROFILE_UPDATED");
    assert_eq!(change["userChanged"]["user"]["isSuspended"], false);

    suspended_here(&app, &leaving).await;
    assert!(banned_in_clerk(&app, &leaving), "banned in Clerk too");
    let change = watcher.next_data().await;
    assert_eq!(
        change["userChanged"],
        json!({ "kind": "SUSPENDED", "source": "schedule", "user": {
            "email": "leaving@physics.test", "isSuspended": true,
            "accessUntil": set["accessUntil"] } })
    );
    let trail = suspensions_of(&app, &leaving).await;
    assert_eq!(trail["totalCount"], 1, "{trail}");
    assert_eq!(trail["nodes"][0]["actor"], "system");
    assert_eq!(trail["nodes"][0]["source"], "schedule");
    assert!(
        trail["nodes"][0]["correlationId"]
            .as_str()
            .is_some_and(|id| id.starts_with("access-until:")),
        "{trail}"
    );
    assert_eq!(
        app.query(STATE, json!({ "id": staying.id.to_string() }))
            .await["user"]["isSuspended"],
        false
    );

    // They stay suspended: lifting it is refused while the end stands...
    let refused = app
        .graphql_as(
            Some(&head_token),
            "mutation ($id: ID!) { unsuspendUser(id: $id) { isSuspended } }",
            json!({ "id": leaving.id.to_string() }),
        )
        .await;
    assert_eq!(error_code(&refused), "CONFLICT", "{refused}");
    assert!(banned_in_clerk(&app, &leaving));
    // ...and a ban lifted in Clerk directly is put back by the next sweep (the webhook is
    // applied as Clerk's word, then the rule is applied again).
    app.send_clerk_webhooks_here(Switches::default());
    app.clerk
        .emulator
        .set_banned(&leaving.clerk_id, false)
        .expect("the emulator unbans");
    let mut rebanned = false;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let requests = app.clerk.emulator.requests();
        let bans = requests
            .iter()
            .filter(|(_, path, _)| path.ends_with(&format!("/users/{}/ban", leaving.clerk_id)))
            .count();
        if bans == 2 && banned_in_clerk(&app, &leaving) {
            rebanned = true;
            break;
        }
    }
    assert!(rebanned, "re-banned by the sweep");
    suspended_here(&app, &leaving).await;

    // Moving the end on lets them back.
    let body = app
        .graphql_as(
            Some(&head_token),
            SET_END,
            json!({ "id": leaving.id.to_string(), "until": later }),
        )
        .await;
    assert!(body.get("errors").is_none(), "{body}");
    let lifted = app
        .graphql_as(
            Some(&head_token),
            "mutation ($id: ID!) { unsuspendUser(id: $id) { isSuspended } }",
            json!({ "id": leaving.id.to_string() }),
        )
        .await;
    assert_eq!(
        lifted["data"]["unsuspendUser"]["isSuspended"], false,
        "{lifted}"
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(!banned_in_clerk(&app, &leaving), "the sweep leaves them be");
}

async fn two_replicas_suspend_each_user_whose_access_ended_once(app: TestApp) {
    let organisation = app.create_organisation("Chemistry").await;
    // A second replica on PostgreSQL; a SQLite file is served by one process, whose sweeps
    // run one after another.
    let _other = if app.db.get_database_backend() == sea_orm::DbBackend::Postgres {
        Some(app.another_server(quick_sweep).await)
    } else {
        None
    };
    let mut leaving = Vec::new();
    for n in 0..6 {
        let email = Box::leak(format!("leaving{n}@chemistry.test").into_boxed_str());
        leaving.push(
            app.create_user(
                TestUser::new(email)
                    .role(Role::Lecturer)
                    .in_organisation(organisation.id),
            )
            .await,
        );
    }
    let past = (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339();
    for user in &leaving {
        let body = app
            .graphql(SET_END, json!({ "id": user.id.to_string(), "until": past }))
            .await;
        assert!(body.get("errors").is_none(), "{body}");
    }
    for user in &leaving {
        suspended_here(&app, user).await;
        assert!(banned_in_clerk(&app, user));
    }
    // A few more sweeps on both replicas change nothing more.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for user in &leaving {
        let trail = suspensions_of(&app, user).await;
        assert_eq!(trail["totalCount"], 1, "{}: {trail}", user.email);
    }
    // Clerk was asked to ban each once, by one replica or the other.
    let requests = app.clerk.emulator.requests();
    for user in &leaving {
        let bans = requests
            .iter()
            .filter(|(method, path, _)| {
                method == "POST" && path.ends_with(&format!("/users/{}/ban", user.clerk_id))
            })
            .count();
        assert_eq!(bans, 1, "{}", user.email);
    }
}

async fn the_last_admins_access_cannot_be_given_an_end(app: TestApp) {
    let past = (chrono::Utc::now() - chrono::Duration::minutes(1)).to_rfc3339();
    let body = app
        .graphql(
            SET_END,
            json!({ "id": app.admin.id.to_string(), "until": past }),
        )
        .await;
    assert_eq!(error_code(&body), "CONFLICT", "{body}");
    // With a second admin, it may: and the sweep suspends the first.
    let deputy = app
        .create_user(TestUser::new("deputy@uni.test").role(Role::Admin))
        .await;
    let body = app
        .graphql_as(
            Some(&app.token_for(&deputy)),
            SET_END,
            json!({ "id": app.admin.id.to_string(), "until": past }),
        )
        .await;
    assert!(body.get("errors").is_none(), "{body}");
    for _ in 0..200 {
        let state = app
            .query_as(
                &app.token_for(&deputy),
                STATE,
                json!({ "id": app.admin.id.to_string() }),
            )
            .await;
        if state["user"]["isSuspended"] == true {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the first admin was not suspended");
}
