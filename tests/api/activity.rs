//! Activity (issue 19.5): Clerk's `session.*` webhooks become each user's sign-in history and
//! move their `lastSignInAt` and `lastActiveAt`, whatever order and however often they
//! arrive; the history is the user's, their organisation admins' and admins' to read.

use chrono::{Duration, Utc};
use entity::role::Role;
use entity::{sign_in, user};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, Set};
use serde_json::{Value, json};
use userhub::clerk::emulator::webhooks::Switches;
use userhub::clerk::emulator::{SessionEnd, SignInDevice};

use crate::helpers::{TestApp, TestUser, error_code, on_both_databases};
use crate::live::envelope;

on_both_databases!(
    a_sign_in_and_its_end_become_history_and_move_the_users_times,
    session_events_in_any_order_and_repeated_end_in_one_state,
    only_the_user_their_organisations_admins_and_admins_read_sign_ins,
    users_are_filtered_by_last_activity_and_a_page_reads_sign_ins_at_once,
    users_are_ordered_by_last_sign_in_and_last_activity_page_after_page,
);

const HISTORY: &str = r#"query ($id: ID!) { user(id: $id) { lastSignInAt lastActiveAt
    signIns { sessionId status startedAt endedAt deviceType browser country } } }"#;

const CHANGED: &str =
    "subscription { userChanged { kind source user { email lastSignInAt lastActiveAt } } }";

async fn a_sign_in_and_its_end_become_history_and_move_the_users_times(app: TestApp) {
    let ada = app
        .create_user(TestUser::new("ada@uni.test").role(Role::Lecturer))
        .await;
    assert_eq!(ada.last_active_at, None);
    let mut admin = app.subscribe(&app.admin_token, CHANGED, json!({})).await;
    app.send_clerk_webhooks_here(Switches::default());

    let (session_id, token) = app
        .clerk
        .emulator
        .sign_in(
            &ada.clerk_id,
            SignInDevice {
                device_type: "mobile",
                browser: "Safari",
                country: "FR",
            },
        )
        .expect("a session");
    let signed_in = admin.next_data().await;
    assert_eq!(signed_in["userChanged"]["kind"], "SIGNED_IN");
    assert_eq!(signed_in["userChanged"]["source"], "webhook");
    assert_eq!(signed_in["userChanged"]["user"]["email"], "ada@uni.test");
    assert!(signed_in["userChanged"]["user"]["lastSignInAt"].is_string());

    // The session's own token works, and Ada reads her own history.
    let read = app
        .query_as(&token, HISTORY, json!({ "id": ada.id.to_string() }))
        .await;
    let history = &read["user"];
    assert_eq!(history["lastSignInAt"], history["signIns"][0]["startedAt"]);
    assert_eq!(history["lastActiveAt"], history["signIns"][0]["startedAt"]);
    assert_eq!(
        history["signIns"][0]["sessionId"],
        Value::String(session_id.clone())
    );
    assert_eq!(history["signIns"][0]["status"], "active");
    assert_eq!(history["signIns"][0]["endedAt"], Value::Null);
    assert_eq!(history["signIns"][0]["deviceType"], "mobile");
    assert_eq!(history["signIns"][0]["browser"], "Safari");
    assert_eq!(history["signIns"][0]["country"], "FR");

    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    app.clerk
        .emulator
        .end_session(&session_id, SessionEnd::SignedOut)
        .expect("the session");
    let signed_out = admin.next_data().await;
    assert_eq!(signed_out["userChanged"]["kind"], "SIGNED_OUT");
    let read = app
        .query(HISTORY, json!({ "id": ada.id.to_string() }))
        .await;
    let history = &read["user"];
    assert_eq!(history["signIns"][0]["status"], "ended");
    assert!(history["signIns"][0]["endedAt"].is_string(), "{history}");
    assert_eq!(history["lastActiveAt"], history["signIns"][0]["endedAt"]);
    assert!(history["lastActiveAt"].as_str() > history["lastSignInAt"].as_str());

    // A second sign-in comes first in the history.
    let (second, _) = app
        .clerk
        .emulator
        .sign_in(&ada.clerk_id, SignInDevice::default())
        .expect("a session");
    admin.next_data().await;
    let read = app
        .query(HISTORY, json!({ "id": ada.id.to_string() }))
        .await;
    let sessions: Vec<&Value> = read["user"]["signIns"]
        .as_array()
        .expect("sign-ins")
        .iter()
        .map(|sign_in| &sign_in["sessionId"])
        .collect();
    assert_eq!(sessions, [&json!(second), &json!(session_id)]);
    // Sign-ins are activity, not changes: the audit trail has none.
    let trail = app
        .query(
            r#"query ($id: String!) { auditLog(filter: { subjectId: $id }) { totalCount } }"#,
            json!({ "id": ada.id.to_string() }),
        )
        .await;
    assert_eq!(trail["auditLog"]["totalCount"], 1, "only the creation");
}

fn session(id: &str, user_id: &str, status: &str, created_at: i64, updated_at: i64) -> Value {
    json!({
        "object": "session", "id": id, "user_id": user_id, "status": status,
        "last_active_at": updated_at, "created_at": created_at, "updated_at": updated_at,
        "latest_activity": { "device_type": "desktop", "browser_name": "Chrome", "country": "GB" },
    })
}

async fn session_events_in_any_order_and_repeated_end_in_one_state(app: TestApp) {
    let grace = app
        .create_user(TestUser::new("grace@uni.test").role(Role::Lecturer))
        .await;
    let start = (Utc::now() - Duration::hours(2)).timestamp_millis();
    let end = start + 3_600_000;
    let created = envelope(
        "session.created",
        session("sess_late", &grace.clerk_id, "active", start, start),
    );
    let ended = envelope(
        "session.revoked",
        session("sess_late", &grace.clerk_id, "revoked", start, end),
    );
    // The end first, then the start, then the end again, then the start again.
    let mut outcomes = Vec::new();
    for (svix_id, body) in [
        ("msg_end", &ended),
        ("msg_start", &created),
        ("msg_end", &ended),
        ("msg_start", &created),
    ] {
        let (status, answer) = app.deliver(svix_id, body).await;
        assert_eq!(status, 200, "{answer}");
        outcomes.push(answer["status"].as_str().unwrap_or_default().to_owned());
    }
    assert_eq!(outcomes, ["applied", "stale", "duplicate", "duplicate"]);
    let row = sign_in::Entity::find_by_id("sess_late")
        .one(&app.db)
        .await
        .expect("read")
        .expect("the sign-in");
    assert_eq!(row.status, "revoked");
    assert_eq!(
        row.ended_at.map(|at| at.timestamp_millis()),
        Some(end),
        "ended when Clerk says"
    );
    assert_eq!(row.started_at.timestamp_millis(), start);
    let stored = user::Entity::find_by_id(grace.id)
        .one(&app.db)
        .await
        .expect("read")
        .expect("grace");
    assert_eq!(
        stored.last_active_at.map(|at| at.timestamp_millis()),
        Some(end)
    );

    // A session of a user userhub has not heard of yet is kept; their `user.created`, when it
    // comes, carries their own times.
    let (status, answer) = app
        .deliver(
            "msg_stranger",
            &envelope(
                "session.created",
                session("sess_stranger", "user_stranger", "active", start, start),
            ),
        )
        .await;
    assert_eq!((status, answer["status"].as_str()), (200, Some("applied")));
    assert_eq!(
        sign_in::Entity::find()
            .filter(sign_in::Column::ClerkUserId.eq("user_stranger"))
            .count(&app.db)
            .await
            .expect("count"),
        1
    );

    // An older activity never moves a user's times back.
    let (status, _) = app
        .deliver(
            "msg_old",
            &envelope(
                "session.created",
                session(
                    "sess_old",
                    &grace.clerk_id,
                    "active",
                    start - 86_400_000,
                    start - 86_400_000,
                ),
            ),
        )
        .await;
    assert_eq!(status, 200);
    let after = user::Entity::find_by_id(grace.id)
        .one(&app.db)
        .await
        .expect("read")
        .expect("grace");
    assert_eq!(after.last_active_at, stored.last_active_at);

    // Broken session events are refused with a reason and write nothing.
    for (svix_id, data) in [
        (
            "msg_no_user",
            json!({ "id": "sess_x", "created_at": start, "updated_at": start }),
        ),
        (
            "msg_long_id",
            session(&"s".repeat(65), &grace.clerk_id, "active", start, start),
        ),
        (
            "msg_bad_time",
            session("sess_y", &grace.clerk_id, "active", -5, start),
        ),
    ] {
        let (status, answer) = app
            .deliver(svix_id, &envelope("session.created", data))
            .await;
        assert_eq!(status, 400, "{svix_id}: {answer}");
        assert_eq!(answer["error"]["code"], "MALFORMED_EVENT", "{answer}");
    }
    assert_eq!(
        sign_in::Entity::find().count(&app.db).await.expect("count"),
        3
    );
}

async fn only_the_user_their_organisations_admins_and_admins_read_sign_ins(app: TestApp) {
    let physics = app.create_organisation("Physics").await;
    let biology = app.create_organisation("Biology").await;
    let lecturer = app
        .create_user(TestUser::in_role(
            "l@physics.test",
            Role::Lecturer,
            physics.id,
        ))
        .await;
    let colleague = app
        .create_user(TestUser::in_role(
            "c@physics.test",
            Role::Lecturer,
            physics.id,
        ))
        .await;
    let head = app
        .create_user(TestUser::in_role(
            "h@physics.test",
            Role::OrgAdmin,
            physics.id,
        ))
        .await;
    let other_head = app
        .create_user(TestUser::in_role(
            "h@biology.test",
            Role::OrgAdmin,
            biology.id,
        ))
        .await;
    let start = Utc::now().timestamp_millis();
    app.deliver(
        "msg_physics",
        &envelope(
            "session.created",
            session("sess_physics", &lecturer.clerk_id, "active", start, start),
        ),
    )
    .await;
    const SIGN_INS: &str =
        r#"query ($id: ID!) { user(id: $id) { lastActiveAt signIns { sessionId } } }"#;
    let id = json!({ "id": lecturer.id.to_string() });
    for (who, token) in [
        ("the lecturer", app.token_for(&lecturer)),
        ("their head", app.token_for(&head)),
        ("an admin", app.admin_token.clone()),
    ] {
        let read = app.query_as(&token, SIGN_INS, id.clone()).await;
        assert_eq!(
            read["user"]["signIns"],
            json!([{ "sessionId": "sess_physics" }]),
            "{who}"
        );
    }
    // A colleague sees when they were last active, not where they signed in from.
    let body = app
        .graphql_as(Some(&app.token_for(&colleague)), SIGN_INS, id.clone())
        .await;
    assert_eq!(error_code(&body), "FORBIDDEN", "{body}");
    assert!(body["data"]["user"]["lastActiveAt"].is_string(), "{body}");
    let body = app
        .graphql_as(Some(&app.token_for(&other_head)), SIGN_INS, id.clone())
        .await;
    assert_eq!(error_code(&body), "FORBIDDEN", "{body}");
    // Bounded.
    let body = app
        .graphql(
            r#"query ($id: ID!) { user(id: $id) { signIns(first: 101) { sessionId } } }"#,
            id,
        )
        .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
}

async fn users_are_filtered_by_last_activity_and_a_page_reads_sign_ins_at_once(app: TestApp) {
    let now = Utc::now();
    let mut people = Vec::new();
    for n in 0..8 {
        let email = Box::leak(format!("p{n}@uni.test").into_boxed_str());
        let person = app
            .create_user(TestUser::new(email).role(Role::Lecturer))
            .await;
        // Active n days ago; p7 never.
        if n < 7 {
            let mut row: user::ActiveModel = person.clone().into();
            row.last_active_at = Set(Some(now - Duration::days(n)));
            row.update(&app.db).await.expect("update");
            for k in 0..3 {
                let at = (now - Duration::days(n) - Duration::hours(k)).timestamp_millis();
                let (status, _) = app
                    .deliver(
                        &format!("msg_{n}_{k}"),
                        &envelope(
                            "session.created",
                            session(&format!("sess_{n}_{k}"), &person.clerk_id, "active", at, at),
                        ),
                    )
                    .await;
                assert_eq!(status, 200);
            }
        }
        people.push(person);
    }
    let from = (now - Duration::days(3) - Duration::hours(1)).to_rfc3339();
    let before = (now - Duration::days(1) + Duration::hours(1)).to_rfc3339();
    let found = app
        .query(
            r#"query ($from: DateTime, $before: DateTime) { users(first: 50, orderBy: EMAIL_ASC,
                filter: { role: LECTURER, lastActiveFrom: $from, lastActiveBefore: $before }) {
                totalCount nodes { email } } }"#,
            json!({ "from": from, "before": before }),
        )
        .await;
    assert_eq!(
        found["users"],
        json!({ "totalCount": 3, "nodes": [
            { "email": "p1@uni.test" }, { "email": "p2@uni.test" }, { "email": "p3@uni.test" },
        ] })
    );
    let query = r#"query ($first: Int) { users(first: $first, orderBy: EMAIL_ASC, filter: { role: LECTURER }) {
        nodes { email signIns(first: 2) { sessionId } } } }"#;
    let (few, answer) = app.statements_for(query, json!({ "first": 2 })).await;
    assert_eq!(
        answer["users"]["nodes"][1],
        json!({ "email": "p1@uni.test", "signIns": [
            { "sessionId": "sess_1_0" }, { "sessionId": "sess_1_1" },
        ] })
    );
    let (many, answer) = app.statements_for(query, json!({ "first": 8 })).await;
    assert_eq!(answer["users"]["nodes"][7]["signIns"], json!([]));
    assert_eq!(
        few, many,
        "a page's sign-ins cost the same whatever its size"
    );
}

/// Every page of `users` (or of an organisation's `users`) in `order`, `size` at a time.
async fn emails_in_order(app: &TestApp, organisation: &str, order: &str, size: i64) -> Vec<String> {
    let mut emails = Vec::new();
    let mut after = Value::Null;
    loop {
        let page = app
            .query(
                &format!(
                    r#"query ($org: ID!, $after: String, $first: Int) {{
                        users(first: $first, after: $after, orderBy: {order},
                              filter: {{ organisationId: $org }}) {{
                            nodes {{ email }} pageInfo {{ hasNextPage endCursor }} }} }}"#
                ),
                json!({ "org": organisation, "after": after, "first": size }),
            )
            .await;
        for node in page["users"]["nodes"].as_array().expect("nodes") {
            emails.push(node["email"].as_str().unwrap_or_default().to_owned());
        }
        if page["users"]["pageInfo"]["hasNextPage"] != true {
            return emails;
        }
        after = page["users"]["pageInfo"]["endCursor"].clone();
    }
}

async fn users_are_ordered_by_last_sign_in_and_last_activity_page_after_page(app: TestApp) {
    let ordering = app.create_organisation("Ordering").await;
    let at = |hour: u32| {
        Some(
            chrono::NaiveDate::from_ymd_opt(2026, 11, 30)
                .and_then(|day| day.and_hms_micro_opt(hour, 0, 0, 250))
                .expect("a time")
                .and_utc(),
        )
    };
    // (name, last sign-in, last activity): a and d signed in at one moment; c and f never.
    let people = [
        ("a", at(10), at(7)),
        ("b", at(9), None),
        ("c", None, at(12)),
        ("d", at(10), at(7)),
        ("e", at(8), at(1)),
        ("f", None, None),
        ("g", at(11), at(3)),
    ];
    for (name, signed_in, active) in people {
        let email = Box::leak(format!("{name}@order.test").into_boxed_str());
        let person = app
            .create_user(TestUser::new(email).in_organisation(ordering.id))
            .await;
        let mut row: user::ActiveModel = person.into();
        row.last_sign_in_at = Set(signed_in);
        row.last_active_at = Set(active);
        row.update(&app.db).await.expect("update");
    }
    let org = ordering.id.to_string();
    let names = |emails: Vec<String>| -> String {
        emails
            .iter()
            .map(|email| email.split('@').next().unwrap_or_default())
            .collect()
    };
    // Ties go by id (creation order, reversed when newest first); never last when newest first.
    for size in [1, 2, 3, 50] {
        assert_eq!(
            names(emails_in_order(&app, &org, "LAST_SIGN_IN_AT_DESC", size).await),
            "gdabefc",
            "pages of {size}"
        );
        assert_eq!(
            names(emails_in_order(&app, &org, "LAST_SIGN_IN_AT_ASC", size).await),
            "cfebadg",
            "pages of {size}"
        );
        assert_eq!(
            names(emails_in_order(&app, &org, "LAST_ACTIVE_AT_DESC", size).await),
            "cdagefb",
            "pages of {size}"
        );
    }
    assert_eq!(
        names(emails_in_order(&app, &org, "LAST_ACTIVE_AT_ASC", 2).await),
        "bfegadc"
    );
    // An organisation's users, batched for many organisations, keep the same order.
    let nested = app
        .query(
            r#"query ($org: ID!) { organisation(id: $org) {
                users(first: 3, orderBy: LAST_SIGN_IN_AT_DESC) { nodes { email } } } }"#,
            json!({ "org": org }),
        )
        .await;
    assert_eq!(
        nested["organisation"]["users"]["nodes"],
        json!([{ "email": "g@order.test" }, { "email": "d@order.test" }, { "email": "a@order.test" }])
    );
    // A cursor of one order is refused by another.
    let first = app
        .query(
            r#"query ($org: ID!) { users(first: 1, orderBy: LAST_SIGN_IN_AT_DESC, filter: { organisationId: $org }) {
                pageInfo { endCursor } } }"#,
            json!({ "org": org }),
        )
        .await;
    let body = app
        .graphql(
            r#"query ($org: ID!, $after: String) { users(first: 1, after: $after, orderBy: LAST_ACTIVE_AT_DESC, filter: { organisationId: $org }) { nodes { email } } }"#,
            json!({ "org": org, "after": first["users"]["pageInfo"]["endCursor"] }),
        )
        .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
}
