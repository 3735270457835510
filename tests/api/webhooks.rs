//! `POST /api/webhooks/clerk`: svix verification before anything else, idempotence on the svix
//! id, ordering by Clerk's `updated_at`, deletion as a tombstone, and a chaos run of unreliable
//! delivery that a sync then completes.

use std::collections::HashMap;
use std::time::Duration;

use entity::role::Role;
use entity::{audit_event, user, webhook_delivery};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::json;
use userhub::clerk::emulator::webhooks::Switches;

use crate::helpers::{TestApp, TestUser, WEBHOOK_SECRET, on_both_databases};
use crate::live::{USER_CHANGED, clerk_user, envelope, now_seconds, signed_headers};

on_both_databases!(
    a_webhook_signed_by_the_emulator_is_applied_and_reaches_a_subscriber,
    refused_deliveries_get_the_right_status_and_write_nothing,
    both_header_spellings_and_rotated_secrets_are_accepted,
    the_same_delivery_three_times_changes_once,
    reordered_updates_and_late_events_end_at_clerks_latest_state,
    unknown_event_types_are_acknowledged_and_ignored,
    a_chaos_run_of_deliveries_and_one_sync_leave_the_database_equal_to_clerk,
    the_webhook_echo_of_a_mutation_never_takes_credit_for_its_change,
);

async fn user_by_clerk_id(app: &TestApp, clerk_id: &str) -> Option<user::Model> {
    user::Entity::find()
        .filter(user::Column::ClerkId.eq(clerk_id))
        .one(&app.db)
        .await
        .expect("a query")
}

async fn counts(app: &TestApp) -> (u64, u64, u64) {
    (
        user::Entity::find().count(&app.db).await.expect("count"),
        audit_event::Entity::find()
            .count(&app.db)
            .await
            .expect("count"),
        webhook_delivery::Entity::find()
            .count(&app.db)
            .await
            .expect("count"),
    )
}

async fn a_webhook_signed_by_the_emulator_is_applied_and_reaches_a_subscriber(app: TestApp) {
    let mut subscriber = app
        .subscribe(&app.admin_token, USER_CHANGED, json!({}))
        .await;
    app.send_clerk_webhooks_here(Switches::default());
    let organisation = app.create_organisation("Physics").await;
    let created = app.create_clerk_user(
        TestUser::new("Ada@Physics.test")
            .named("Ada", "Lovelace")
            .role(Role::Lecturer)
            .in_organisation(organisation.id),
    );

    let event = subscriber.next_data().await;
    let change = &event["userChanged"];
    assert_eq!(change["kind"], "CREATED");
    assert_eq!(change["source"], "webhook");
    assert_eq!(change["user"]["email"], "ada@physics.test");
    assert_eq!(change["user"]["firstName"], "Ada");
    assert_eq!(change["user"]["role"], "LECTURER");
    assert_eq!(change["user"]["isActive"], true);
    assert_eq!(change["user"]["organisation"]["name"], "Physics");

    let row = user_by_clerk_id(&app, &created.id).await.expect("the row");
    assert_eq!(row.email, "ada@physics.test");
    assert_eq!(row.organisation_id, Some(organisation.id));
    assert_eq!(row.clerk_updated_at, created.updated_at);
    assert_eq!(change["user"]["id"], row.id.to_string());

    // The audit event names the delivery that caused it.
    // The emulator logs a delivery once it has our answer, which can be after the event.
    let mut delivery = None;
    for _ in 0..100 {
        delivery = app
            .clerk
            .emulator
            .webhook_deliveries()
            .into_iter()
            .find(|delivery| delivery.kind == "user.created");
        if delivery.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let delivery = delivery.expect("a delivery");
    assert_eq!(delivery.status, 200);
    let audit = audit_event::Entity::find()
        .filter(audit_event::Column::SubjectId.eq(row.id.to_string()))
        .all(&app.db)
        .await
        .expect("audit");
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].action, "user.created");
    assert_eq!(audit[0].actor, "clerk");
    assert_eq!(audit[0].source, "webhook");
    assert_eq!(
        audit[0].correlation_id.as_deref(),
        Some(delivery.id.as_str())
    );

    // A ban in Clerk arrives as a suspension.
    app.clerk.emulator.set_banned(&created.id, true);
    let event = subscriber.next_data().await;
    assert_eq!(event["userChanged"]["kind"], "SUSPENDED");
    assert_eq!(event["userChanged"]["user"]["id"], row.id.to_string());
}

/// What is sent, and what must come back: case, body, headers, status, error code.
type RefusalCase = (
    &'static str,
    String,
    Vec<(String, String)>,
    u16,
    &'static str,
);

async fn refused_deliveries_get_the_right_status_and_write_nothing(app: TestApp) {
    let before = counts(&app).await;
    let body = envelope(
        "user.created",
        clerk_user(
            "user_refused",
            "refused@x.test",
            "Refused",
            "admin",
            1_700_000_000_001,
        ),
    );
    let now = now_seconds();
    let good = signed_headers(WEBHOOK_SECRET, "msg_refused", now, &body);
    let header = |headers: &[(String, String)], name: &str| {
        headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
            .expect("a header")
    };

    let forged = {
        let mut headers = good.clone();
        headers[2].1 = "v1,dGhpcyBpcyBub3QgYSBzaWduYXR1cmUgYXQgYWxsIQ==".to_owned();
        headers
    };
    let wrong_secret = signed_headers(
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "msg_refused",
        now,
        &body,
    );
    let stale = signed_headers(WEBHOOK_SECRET, "msg_refused", now - 600, &body);
    let future = signed_headers(WEBHOOK_SECRET, "msg_refused", now + 600, &body);
    let without = |name: &str| -> Vec<(String, String)> {
        good.iter()
            .filter(|(key, _)| key != name)
            .cloned()
            .collect()
    };
    // A correct signature over another body.
    let tampered_body = body.replace("\"admin\"", "\"member\"");
    assert_ne!(tampered_body, body);

    let cases: Vec<RefusalCase> = vec![
        (
            "forged signature",
            body.clone(),
            forged,
            401,
            "INVALID_SIGNATURE",
        ),
        (
            "wrong secret",
            body.clone(),
            wrong_secret,
            401,
            "INVALID_SIGNATURE",
        ),
        (
            "tampered body",
            tampered_body,
            good.clone(),
            401,
            "INVALID_SIGNATURE",
        ),
        (
            "stale timestamp",
            body.clone(),
            stale,
            401,
            "STALE_TIMESTAMP",
        ),
        (
            "future timestamp",
            body.clone(),
            future,
            401,
            "STALE_TIMESTAMP",
        ),
        (
            "no svix-id",
            body.clone(),
            without("svix-id"),
            401,
            "MISSING_SIGNATURE",
        ),
        (
            "no svix-timestamp",
            body.clone(),
            without("svix-timestamp"),
            401,
            "MISSING_SIGNATURE",
        ),
        (
            "no svix-signature",
            body.clone(),
            without("svix-signature"),
            401,
            "MISSING_SIGNATURE",
        ),
        (
            "no headers at all",
            body.clone(),
            Vec::new(),
            401,
            "MISSING_SIGNATURE",
        ),
        (
            "a timestamp that is not a number",
            body.clone(),
            vec![
                ("svix-id".to_owned(), header(&good, "svix-id")),
                ("svix-timestamp".to_owned(), "yesterday".to_owned()),
                ("svix-signature".to_owned(), header(&good, "svix-signature")),
            ],
            401,
            "INVALID_SIGNATURE",
        ),
    ];
    for (case, body, headers, status, code) in cases {
        let (answered, answer) = app.post_webhook(&body, &headers).await;
        assert_eq!(answered, status, "{case}: {answer}");
        assert_eq!(answer["error"]["code"], code, "{case}: {answer}");
        assert!(
            answer["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{case}: {answer}"
        );
    }

    // Verified, but not a Clerk event.
    for (case, malformed) in [
        ("not JSON", "{\"type\": \"user.created\", \"data\": "),
        ("no type", "{\"data\": {}}"),
        (
            "a user without an id",
            "{\"type\": \"user.updated\", \"data\": {\"first_name\": \"x\"}}",
        ),
        (
            "a deletion without an id",
            "{\"type\": \"user.deleted\", \"data\": {\"deleted\": true}}",
        ),
    ] {
        let (status, answer) = app
            .deliver(&format!("msg_malformed_{}", case.len()), malformed)
            .await;
        assert_eq!(status, 400, "{case}: {answer}");
        assert_eq!(
            answer["error"]["code"], "MALFORMED_EVENT",
            "{case}: {answer}"
        );
    }

    // Larger than the limit (512 KiB by default), signed or not: refused before verification.
    let oversize = envelope(
        "user.created",
        json!({ "id": "user_big", "padding": "x".repeat(600 * 1024) }),
    );
    let headers = signed_headers(WEBHOOK_SECRET, "msg_big", now_seconds(), &oversize);
    let (status, answer) = app.post_webhook(&oversize, &headers).await;
    assert_eq!(status, 413, "{answer}");
    assert_eq!(answer["error"]["code"], "PAYLOAD_TOO_LARGE");

    assert_eq!(
        counts(&app).await,
        before,
        "a refused delivery wrote something"
    );
    assert!(user_by_clerk_id(&app, "user_refused").await.is_none());

    // The same delivery, correctly signed, is then accepted.
    let (status, answer) = app.deliver("msg_refused", &body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["status"], "applied");
    let row = user_by_clerk_id(&app, "user_refused")
        .await
        .expect("the row");
    assert_eq!(row.role, Role::Admin);
}

async fn both_header_spellings_and_rotated_secrets_are_accepted(app: TestApp) {
    let body = envelope(
        "user.created",
        clerk_user(
            "user_spelling",
            "spelling@x.test",
            "Unbranded",
            "member",
            1_700_000_000_002,
        ),
    );
    let unbranded: Vec<(String, String)> =
        signed_headers(WEBHOOK_SECRET, "msg_unbranded", now_seconds(), &body)
            .into_iter()
            .map(|(name, value)| (name.replace("svix-", "webhook-"), value))
            .collect();
    let (status, answer) = app.post_webhook(&body, &unbranded).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["status"], "applied");
    assert_eq!(answer["svixId"], "msg_unbranded");

    // During a secret rotation Clerk signs with the old and the new secret.
    let body = envelope(
        "user.updated",
        clerk_user(
            "user_spelling",
            "spelling@x.test",
            "Rotated",
            "member",
            1_700_000_000_003,
        ),
    );
    let timestamp = now_seconds();
    let mut headers = signed_headers(WEBHOOK_SECRET, "msg_rotated", timestamp, &body);
    let other = signed_headers(
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "msg_rotated",
        timestamp,
        &body,
    );
    headers[2].1 = format!("v2,abc {} {}", other[2].1, headers[2].1);
    let (status, answer) = app.post_webhook(&body, &headers).await;
    assert_eq!(status, 200, "{answer}");
    let row = user_by_clerk_id(&app, "user_spelling")
        .await
        .expect("the row");
    assert_eq!(row.first_name.as_deref(), Some("Rotated"));
}

async fn the_same_delivery_three_times_changes_once(app: TestApp) {
    let mut subscriber = app
        .subscribe(&app.admin_token, USER_CHANGED, json!({}))
        .await;
    let body = envelope(
        "user.created",
        clerk_user(
            "user_thrice",
            "thrice@x.test",
            "Thrice",
            "member",
            1_700_000_000_010,
        ),
    );
    let mut outcomes = Vec::new();
    for _ in 0..3 {
        let (status, answer) = app.deliver("msg_thrice", &body).await;
        assert_eq!(status, 200, "{answer}");
        outcomes.push(answer["status"].as_str().expect("a status").to_owned());
    }
    assert_eq!(outcomes, ["applied", "duplicate", "duplicate"]);

    let row = user_by_clerk_id(&app, "user_thrice")
        .await
        .expect("the row");
    let audit = audit_event::Entity::find()
        .filter(audit_event::Column::SubjectId.eq(row.id.to_string()))
        .count(&app.db)
        .await
        .expect("count");
    assert_eq!(audit, 1, "one audit event");
    let deliveries = webhook_delivery::Entity::find()
        .filter(webhook_delivery::Column::SvixId.eq("msg_thrice"))
        .all(&app.db)
        .await
        .expect("deliveries");
    assert_eq!(deliveries.len(), 1);
    assert_eq!(deliveries[0].outcome, "applied");
    assert_eq!(deliveries[0].event_type, "user.created");

    // One published event: the first thing the subscriber gets is the creation, and the next
    // is a later, different change, not a copy.
    let first = subscriber.next_data().await;
    assert_eq!(first["userChanged"]["kind"], "CREATED");
    assert_eq!(first["userChanged"]["user"]["email"], "thrice@x.test");
    let later = envelope(
        "user.updated",
        clerk_user(
            "user_thrice",
            "thrice@x.test",
            "Later",
            "member",
            1_700_000_000_020,
        ),
    );
    let (status, _) = app.deliver("msg_thrice_later", &later).await;
    assert_eq!(status, 200);
    let second = subscriber.next_data().await;
    assert_eq!(second["userChanged"]["kind"], "UPDATED");
    assert_eq!(second["userChanged"]["user"]["firstName"], "Later");
    subscriber.assert_quiet().await;

    // Concurrent copies of one delivery: still one change.
    let body = envelope(
        "user.created",
        clerk_user(
            "user_racing",
            "racing@x.test",
            "Racing",
            "member",
            1_700_000_000_030,
        ),
    );
    let copies = (0..4).map(|_| app.deliver("msg_racing", &body));
    let answers = futures_util::future::join_all(copies).await;
    let applied = answers
        .iter()
        .filter(|(status, answer)| *status == 200 && answer["status"] == "applied")
        .count();
    assert_eq!(applied, 1, "{answers:?}");
    assert!(
        answers.iter().all(|(status, _)| *status == 200),
        "{answers:?}"
    );
    let row = user_by_clerk_id(&app, "user_racing")
        .await
        .expect("the row");
    let audit = audit_event::Entity::find()
        .filter(audit_event::Column::SubjectId.eq(row.id.to_string()))
        .count(&app.db)
        .await
        .expect("count");
    assert_eq!(audit, 1);
    let created = subscriber.next_data().await;
    assert_eq!(created["userChanged"]["user"]["email"], "racing@x.test");
    subscriber.assert_quiet().await;
}

async fn reordered_updates_and_late_events_end_at_clerks_latest_state(app: TestApp) {
    let id = "user_ordered";
    let email = "ordered@x.test";
    let version = |name: &str, role: &str, at: i64| clerk_user(id, email, name, role, at);
    // Clerk's history: created (t1), renamed (t2), promoted (t3). Delivered t3, t1, t2.
    let t3 = envelope("user.updated", version("Third", "lecturer", 3_000));
    let t1 = envelope("user.created", version("First", "member", 1_000));
    let t2 = envelope("user.updated", version("Second", "member", 2_000));
    let mut outcomes = Vec::new();
    for (svix_id, body) in [("msg_t3", &t3), ("msg_t1", &t1), ("msg_t2", &t2)] {
        let (status, answer) = app.deliver(svix_id, body).await;
        assert_eq!(status, 200, "{answer}");
        outcomes.push(answer["status"].as_str().expect("status").to_owned());
    }
    assert_eq!(outcomes, ["applied", "stale", "stale"]);
    let row = user_by_clerk_id(&app, id).await.expect("the row");
    assert_eq!(row.first_name.as_deref(), Some("Third"));
    assert_eq!(row.role, Role::Lecturer);
    assert_eq!(row.clerk_updated_at, 3_000);

    // Deleted in Clerk: deactivated, kept with its history.
    let deleted = envelope(
        "user.deleted",
        json!({ "object": "user", "id": id, "deleted": true }),
    );
    let (status, answer) = app.deliver("msg_deleted", &deleted).await;
    assert_eq!((status, answer["status"].as_str()), (200, Some("applied")));
    // A retried update from before the deletion, newer than anything stored, and a late
    // creation: none brings the user back.
    let t4 = envelope("user.updated", version("Fourth", "admin", 4_000));
    for (svix_id, body) in [("msg_t4", &t4), ("msg_t1_again", &t1)] {
        let (status, answer) = app.deliver(svix_id, body).await;
        assert_eq!(status, 200);
        assert_eq!(answer["status"], "stale", "{svix_id}: {answer}");
    }
    let row = user_by_clerk_id(&app, id).await.expect("the row stays");
    assert!(!row.is_active);
    assert!(row.deactivated_at.is_some());
    assert_eq!(row.first_name.as_deref(), Some("Third"));
    assert_eq!(
        row.role,
        Role::Lecturer,
        "the stale promotion was not applied"
    );
    let history: Vec<String> = audit_event::Entity::find()
        .filter(audit_event::Column::SubjectId.eq(row.id.to_string()))
        .all(&app.db)
        .await
        .expect("audit")
        .into_iter()
        .map(|event| event.action)
        .collect();
    assert_eq!(history, ["user.created", "user.deactivated"]);

    // Deleted before its creation reached us: the late creation leaves no active user.
    let early = envelope(
        "user.deleted",
        json!({ "object": "user", "id": "user_early", "deleted": true }),
    );
    let (status, answer) = app.deliver("msg_early_delete", &early).await;
    assert_eq!((status, answer["status"].as_str()), (200, Some("applied")));
    let late = envelope(
        "user.created",
        clerk_user("user_early", "early@x.test", "Early", "member", 5_000),
    );
    let (status, answer) = app.deliver("msg_late_create", &late).await;
    assert_eq!((status, answer["status"].as_str()), (200, Some("stale")));
    assert!(user_by_clerk_id(&app, "user_early").await.is_none());
}

async fn unknown_event_types_are_acknowledged_and_ignored(app: TestApp) {
    let before = counts(&app).await;
    for (svix_id, kind) in [
        ("msg_session", "session.pending"),
        ("msg_org", "organization.created"),
        ("msg_email", "email.created"),
    ] {
        let body = envelope(kind, json!({ "id": "sess_1", "object": "session" }));
        let (status, answer) = app.deliver(svix_id, &body).await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["status"], "ignored");
    }
    // A phone-only Clerk user has no email: acknowledged, so Clerk does not retry it forever.
    let phone_only = envelope(
        "user.created",
        json!({ "id": "user_phone", "email_addresses": [], "updated_at": 1 }),
    );
    let (status, answer) = app.deliver("msg_phone", &phone_only).await;
    assert_eq!((status, answer["status"].as_str()), (200, Some("ignored")));
    let (users, audit, deliveries) = counts(&app).await;
    assert_eq!((users, audit), (before.0, before.1));
    assert_eq!(
        deliveries,
        before.2 + 4,
        "each is recorded, so a retry is a no-op"
    );
    let metrics = crate::helpers::scrape_metrics(&app.address).await;
    assert_eq!(
        crate::helpers::metric(&metrics, "userhub_webhooks_total{outcome=\"ignored\"}"),
        4
    );
}

/// 2,000 deliveries or more, duplicated, reordered and dropped, then one sync: the database
/// ends equal to Clerk (the emulator), user for user.
async fn a_chaos_run_of_deliveries_and_one_sync_leave_the_database_equal_to_clerk(app: TestApp) {
    let organisations = [
        app.create_organisation("Chaos A").await.id,
        app.create_organisation("Chaos B").await.id,
    ];
    app.send_clerk_webhooks_here(Switches {
        duplicate_every: 7,
        drop_every: 13,
        delay_ms: 0,
        reorder_window: 6,
    });
    let emulator = &app.clerk.emulator;
    let mut clerk_ids = Vec::new();
    let mut events = 0usize;
    for i in 0..600 {
        let email = format!("chaos{i}@x.test");
        let created = emulator
            .create_user(userhub::clerk::emulator::NewUser {
                email,
                first_name: Some(format!("Chaos{i}")),
                last_name: None,
                public_metadata: json!({ "role": "member" }),
            })
            .expect("created");
        clerk_ids.push(created.id);
        events += 1;
    }
    for (i, id) in clerk_ids.iter().enumerate() {
        emulator.update_names(id, Some(&format!("Renamed{i}")), Some("Chaos"));
        let role = ["lecturer", "org_admin", "member"][i % 3];
        emulator.merge_public_metadata(
            id,
            json!({ "role": role, "organisationId": organisations[i % 2].to_string() }),
        );
        events += 2;
        if i % 5 == 0 {
            emulator.set_banned(id, true);
            events += 1;
        }
        if i % 10 == 0 {
            emulator.set_banned(id, false);
            events += 1;
        }
        if i % 9 == 0 {
            emulator.delete_user(id);
            events += 1;
        }
    }
    assert!(events >= 2_000, "{events} events");

    // Wait for delivery to go quiet.
    let mut last = 0;
    let mut quiet_for = 0;
    for _ in 0..600 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let delivered = emulator.webhook_deliveries().len();
        if delivered == last {
            quiet_for += 1;
            if quiet_for >= 10 {
                break;
            }
        } else {
            quiet_for = 0;
            last = delivered;
        }
    }
    let deliveries = emulator.webhook_deliveries();
    assert!(deliveries.len() >= 2_000, "{} deliveries", deliveries.len());
    let failed: Vec<_> = deliveries.iter().filter(|d| d.status != 200).collect();
    assert!(failed.is_empty(), "deliveries not accepted: {failed:?}");

    let sync = app
        .query("mutation { syncUsers(wait: true) { status } }", json!({}))
        .await;
    assert_eq!(sync["syncUsers"]["status"], "SUCCEEDED");

    let rows: HashMap<String, user::Model> = user::Entity::find()
        .all(&app.db)
        .await
        .expect("users")
        .into_iter()
        .map(|row| (row.clerk_id.clone(), row))
        .collect();
    let mut compared = 0;
    for id in &clerk_ids {
        let row = rows.get(id);
        match emulator.user(id) {
            Some(clerk) => {
                let profile = userhub::service::users::ClerkProfile::of(&clerk).expect("an email");
                let row = row.unwrap_or_else(|| panic!("{id} is missing"));
                assert!(row.is_active, "{id} should be active");
                assert_eq!(row.email, profile.email, "{id}");
                assert_eq!(row.first_name, profile.first_name, "{id}");
                assert_eq!(row.last_name, profile.last_name, "{id}");
                assert_eq!(row.role, profile.role, "{id}");
                assert_eq!(row.organisation_id, profile.organisation_id, "{id}");
                assert_eq!(row.banned, profile.banned, "{id}");
                assert_eq!(row.clerk_updated_at, profile.updated_at_ms, "{id}");
            }
            None => {
                if let Some(row) = row {
                    assert!(!row.is_active, "{id} was deleted in Clerk but is active");
                }
            }
        }
        compared += 1;
    }
    assert_eq!(compared, 600);
    let active = rows.values().filter(|row| row.is_active).count();
    assert_eq!(
        active,
        emulator.user_count(),
        "active users equal Clerk's users"
    );
    // Duplicates were recognised as such.
    let duplicates = webhook_delivery::Entity::find()
        .count(&app.db)
        .await
        .expect("count");
    let distinct: std::collections::HashSet<&str> =
        deliveries.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(duplicates as usize, distinct.len());
}

/// Clerk's webhook about a mutation's own change can overtake Clerk's answer to the mutation.
/// Each change is still credited to the person who made it, once, and the echo is `unchanged`.
async fn the_webhook_echo_of_a_mutation_never_takes_credit_for_its_change(app: TestApp) {
    use userhub::clerk::emulator::Fault;

    // Subscribed first: on PostgreSQL the creation's event comes back through LISTEN, and
    // it must not be mistaken for the first mutation's.
    let mut subscriber = app
        .subscribe(&app.admin_token, USER_CHANGED, json!({}))
        .await;
    let target = app
        .create_user(TestUser::new("echo@example.test").role(Role::Member))
        .await;
    let created = subscriber.next_data().await;
    assert_eq!(created["userChanged"]["kind"], "CREATED", "{created}");
    app.send_clerk_webhooks_here(Switches::default());
    let mutations = [
        (
            "mutation ($id: ID!) { updateUser(id: $id, input: { role: LECTURER }) { role } }",
            "user.role_changed",
            "UPDATED",
        ),
        (
            "mutation ($id: ID!) { suspendUser(id: $id) { isSuspended } }",
            "user.suspended",
            "SUSPENDED",
        ),
        (
            "mutation ($id: ID!) { unsuspendUser(id: $id) { isSuspended } }",
            "user.unsuspended",
            "UNSUSPENDED",
        ),
        (
            "mutation ($id: ID!) { removeUser(id: $id) { isActive } }",
            "user.deactivated",
            "DEACTIVATED",
        ),
    ];
    for (number, (mutation, action, kind)) in mutations.into_iter().enumerate() {
        // Clerk does the change and sends its webhook at once, then answers 300 ms later.
        app.clerk
            .emulator
            .inject(Fault::SlowAnswer(Duration::from_millis(300)), 1);
        let body = app
            .graphql(mutation, json!({ "id": target.id.to_string() }))
            .await;
        assert!(body.get("errors").is_none(), "{body}");

        let event = subscriber.next_data().await;
        assert_eq!(event["userChanged"]["kind"], kind, "{event}");
        assert_eq!(event["userChanged"]["source"], "api", "{event}");
        assert_echo_found_the_change_stored(&app, &target, number, action).await;
    }
    subscriber.assert_quiet().await;
}

/// Clerk's `number`th webhook about `target` after its creation was answered once the mutation
/// had stored the change (`unchanged`), and `action` is credited to the admin alone.
pub(crate) async fn assert_echo_found_the_change_stored(
    app: &TestApp,
    target: &user::Model,
    number: usize,
    action: &str,
) {
    let mut echo = None;
    for _ in 0..100 {
        echo = app
            .clerk
            .emulator
            .webhook_deliveries()
            .into_iter()
            .filter(|delivery| delivery.kind != "user.created")
            .nth(number);
        if echo.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let echo = echo.expect("Clerk's webhook about the change");
    assert_eq!(echo.status, 200);
    let recorded = webhook_delivery::Entity::find_by_id(echo.id.clone())
        .one(&app.db)
        .await
        .expect("a query")
        .expect("the delivery is recorded");
    assert_eq!(recorded.outcome, "unchanged", "{action}");

    let credited: Vec<(String, String)> = audit_event::Entity::find()
        .filter(audit_event::Column::SubjectId.eq(target.id.to_string()))
        .filter(audit_event::Column::Action.eq(action))
        .all(&app.db)
        .await
        .expect("audit")
        .into_iter()
        .map(|event| (event.actor, event.source))
        .collect();
    assert_eq!(
        credited,
        vec![(app.admin.id.to_string(), "api".to_owned())],
        "{action}"
    );
}
