//! A change feed that resumes (issue 19.6): every `UserChange` carries its cursor, and
//! `userChanged(after:)` replays from the durable feed what came after it, then continues
//! live; a subscriber that falls behind is caught up instead of ended.

use std::time::Duration;

use entity::role::Role;
use futures_util::StreamExt;
use serde_json::{Value, json};
use userhub::auth::{Actor, Caller};

use crate::helpers::{TestApp, TestUser, on_both_databases};

on_both_databases!(
    a_subscriber_resumes_from_its_cursor_with_no_gap_and_in_its_scope,
    a_subscriber_that_falls_behind_is_caught_up_from_the_feed,
    a_backlog_longer_than_a_page_is_replayed_whole_and_in_order,
    bad_and_expired_cursors_are_refused_clearly,
);

const RESUME: &str = r#"subscription ($after: ID, $org: ID) { userChanged(after: $after, organisationId: $org) {
    cursor kind user { email } } }"#;

/// The next change that is not a user's creation: a replay starts two seconds before its
/// cursor (`change_feed::COMMIT_SKEW`), so the set-up's creations may come again first.
async fn next_past_setup(subscriber: &mut crate::live::Subscriber) -> Value {
    loop {
        let data = subscriber.next_data().await;
        if data["userChanged"]["kind"] != "CREATED" {
            return data;
        }
    }
}

async fn rename(app: &TestApp, user: &entity::user::Model, name: &str) {
    let body = app
        .graphql(
            "mutation ($id: ID!, $name: String) { updateUser(id: $id, input: { firstName: $name }) { id } }",
            json!({ "id": user.id.to_string(), "name": name }),
        )
        .await;
    assert!(body.get("errors").is_none(), "{body}");
}

async fn a_subscriber_resumes_from_its_cursor_with_no_gap_and_in_its_scope(app: TestApp) {
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
    let head_token = app.token_for(&head);

    // Start from the present: the cursor of now.
    let now = app
        .query_as(&head_token, "{ userChangeCursor }", json!({}))
        .await["userChangeCursor"]
        .clone();
    let mut first = app
        .subscribe(&head_token, RESUME, json!({ "after": now }))
        .await;
    rename(&app, &ada, "Ada").await;
    let seen = next_past_setup(&mut first).await;
    assert_eq!(seen["userChanged"]["user"]["email"], "ada@physics.test");
    let cursor = seen["userChanged"]["cursor"].clone();
    assert!(cursor.is_string(), "{seen}");
    drop(first);

    // While nobody listens: two changes in Physics, one in Biology.
    rename(&app, &ada, "Augusta").await;
    rename(&app, &bo, "Bo").await;
    let body = app
        .graphql(
            "mutation ($id: ID!) { suspendUser(id: $id) { id } }",
            json!({ "id": ada.id.to_string() }),
        )
        .await;
    assert!(body.get("errors").is_none(), "{body}");

    // Back, from the cursor: what was missed in order, nothing of Biology's, then live.
    let mut resumed = app
        .subscribe(&head_token, RESUME, json!({ "after": cursor }))
        .await;
    let missed_one = next_past_setup(&mut resumed).await;
    let missed_two = resumed.next_data().await;
    assert_eq!(
        (
            &missed_one["userChanged"]["kind"],
            &missed_two["userChanged"]["kind"]
        ),
        (&json!("UPDATED"), &json!("SUSPENDED"))
    );
    assert!(
        missed_one["userChanged"]["cursor"].as_str() < missed_two["userChanged"]["cursor"].as_str()
    );
    rename(&app, &head, "Head").await;
    let live = resumed.next_data().await;
    assert_eq!(live["userChanged"]["user"]["email"], "head@physics.test");
    resumed.assert_quiet().await;

    // An admin resuming from the same cursor sees Biology's change too.
    let mut admin = app
        .subscribe(&app.admin_token, RESUME, json!({ "after": cursor }))
        .await;
    let mut emails = Vec::new();
    for _ in 0..4 {
        let change = next_past_setup(&mut admin).await;
        emails.push(change["userChanged"]["user"]["email"].clone());
    }
    assert_eq!(
        emails,
        [
            json!("ada@physics.test"),
            json!("bo@biology.test"),
            json!("ada@physics.test"),
            json!("head@physics.test"),
        ]
    );
    // An org admin cannot resume another organisation's feed.
    let code = first_error(
        &app,
        head.clone(),
        &format!(
            r#"subscription {{ userChanged(organisationId: "{}", after: {cursor}) {{ cursor }} }}"#,
            biology.id
        ),
    )
    .await;
    assert_eq!(code, "FORBIDDEN");
}

/// The code of the first error a subscription, run in process for `user`, answers with.
async fn first_error(app: &TestApp, user: entity::user::Model, query: &str) -> String {
    let actor = Actor {
        user,
        session_id: None,
    };
    let request = async_graphql::Request::new(query).data(Caller::User(Box::new(actor)));
    let mut stream = app.schema.execute_stream(request);
    let response = tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await
        .expect("an answer")
        .expect("a response");
    let error = response.errors.first().expect("an error").clone();
    match error
        .extensions
        .as_ref()
        .and_then(|extensions| extensions.get("code"))
    {
        Some(async_graphql::Value::String(code)) => code.clone(),
        other => panic!("no code: {other:?} {error:?}"),
    }
}

async fn a_subscriber_that_falls_behind_is_caught_up_from_the_feed(app: TestApp) {
    let actor = Actor {
        user: app.admin.clone(),
        session_id: None,
    };
    let cursor = uuid::Uuid::now_v7().to_string();
    let request = async_graphql::Request::new(format!(
        "subscription {{ userChanged(after: \"{cursor}\") {{ cursor user {{ email }} }} }}"
    ))
    .data(Caller::User(Box::new(actor)));
    let mut stream = app.schema.execute_stream(request);
    // The first poll runs the resolver. The set-up's own changes (replayed from two seconds
    // before the cursor, or on their way back through LISTEN) pass first.
    while let Ok(Some(response)) =
        tokio::time::timeout(Duration::from_millis(300), stream.next()).await
    {
        assert!(response.errors.is_empty(), "{:?}", response.errors);
    }
    // 40 changes while this subscriber reads nothing, with room for 16 on the bus.
    for i in 0..40 {
        app.create_user(TestUser::new(&format!("burst{i:02}@x.test")))
            .await;
    }
    let mut emails = Vec::new();
    let mut cursors = Vec::new();
    while emails.len() < 40 {
        let response = tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .expect("an answer")
            .expect("the stream goes on");
        assert!(response.errors.is_empty(), "{:?}", response.errors);
        let data = response.data.into_json().expect("JSON");
        emails.push(data["userChanged"]["user"]["email"].clone());
        cursors.push(
            data["userChanged"]["cursor"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        );
    }
    let expected: Vec<Value> = (0..40)
        .map(|i| json!(format!("burst{i:02}@x.test")))
        .collect();
    assert_eq!(emails, expected, "every change, in order, once");
    let mut sorted = cursors.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted, cursors, "cursors ascend and are distinct");
    assert!(
        tokio::time::timeout(Duration::from_millis(300), stream.next())
            .await
            .is_err(),
        "nothing more"
    );
}

async fn bad_and_expired_cursors_are_refused_clearly(app: TestApp) {
    for (cursor, code) in [
        ("not-a-cursor".to_owned(), "BAD_USER_INPUT"),
        (uuid::Uuid::new_v4().to_string(), "BAD_USER_INPUT"),
        (
            // A UUIDv7 of eight days ago: older than the week kept.
            {
                let at = chrono::Utc::now() - chrono::Duration::days(8);
                let ts = uuid::Timestamp::from_unix(
                    uuid::NoContext,
                    at.timestamp() as u64,
                    at.timestamp_subsec_nanos(),
                );
                uuid::Uuid::new_v7(ts).to_string()
            },
            "EVENTS_MISSED",
        ),
    ] {
        let answered = first_error(
            &app,
            app.admin.clone(),
            &format!(r#"subscription {{ userChanged(after: "{cursor}") {{ cursor }} }}"#),
        )
        .await;
        assert_eq!(answered, code, "{cursor}");
    }
}

async fn a_backlog_longer_than_a_page_is_replayed_whole_and_in_order(app: TestApp) {
    let cursor = app.query("{ userChangeCursor }", json!({})).await["userChangeCursor"].clone();
    // More than a page of the feed (500) while nobody listens.
    for i in 0..620 {
        app.create_user(TestUser::new(&format!("backlog{i:03}@x.test")))
            .await;
    }
    let mut resumed = app
        .subscribe(
            &app.admin_token,
            "subscription ($after: ID) { userChanged(after: $after) { cursor user { email } } }",
            json!({ "after": cursor }),
        )
        .await;
    let mut emails = Vec::new();
    let mut cursors = Vec::new();
    while emails.len() < 620 {
        let change = resumed.next_data().await;
        let email = change["userChanged"]["user"]["email"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if !email.starts_with("backlog") {
            continue;
        }
        emails.push(email);
        cursors.push(
            change["userChanged"]["cursor"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        );
    }
    let expected: Vec<String> = (0..620).map(|i| format!("backlog{i:03}@x.test")).collect();
    assert_eq!(emails, expected, "every change once, in order");
    let mut sorted = cursors.clone();
    sorted.sort();
    assert_eq!(sorted, cursors);
    // Then live.
    app.create_user(TestUser::new("after@x.test")).await;
    let live = resumed.next_data().await;
    assert_eq!(live["userChanged"]["user"]["email"], "after@x.test");
    resumed.assert_quiet().await;
}
