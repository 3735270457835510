//! Webhook ingest by group commit (`service::webhooks::Ingest`): concurrent deliveries share a
//! transaction, each is still answered only once its own change has committed, credited to its
//! own svix id, and one that cannot be applied fails alone.
//!
//! The tests hold the database's writers back (a transaction of their own) while deliveries
//! arrive, so the deliveries queue up behind the four workers whatever the machine's speed, then
//! let them go.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::Ordering;
use std::time::Duration;

use entity::{audit_event, user, webhook_delivery};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseTransaction, DbBackend, EntityTrait, QueryFilter,
    Statement, TransactionTrait,
};
use serde_json::{Value, json};

use crate::helpers::{TestApp, on_both_databases};
use crate::live::{USER_CHANGED, clerk_user, envelope};

on_both_databases!(
    concurrent_deliveries_share_transactions_and_each_is_credited_to_its_own_svix_id,
    a_delivery_that_cannot_be_applied_fails_alone_and_the_rest_of_its_batch_commits,
);

/// A transaction that keeps every webhook transaction waiting until it ends: on SQLite it holds
/// the write lock (the busy timeout is 5 s); on PostgreSQL it locks the deliveries table, which
/// every webhook transaction reads first.
async fn hold_writers(app: &TestApp) -> DatabaseTransaction {
    let held = app
        .db
        .begin_with_options(sea_orm::TransactionOptions {
            sqlite_transaction_mode: Some(sea_orm::SqliteTransactionMode::Immediate),
            ..Default::default()
        })
        .await
        .expect("a transaction");
    if held.get_database_backend() == DbBackend::Postgres {
        held.execute_unprepared("LOCK TABLE webhook_deliveries IN ACCESS EXCLUSIVE MODE")
            .await
            .expect("the lock");
    }
    held
}

/// Waits until `count` deliveries are queued or being applied.
async fn until_in_flight(app: &TestApp, count: i64) {
    for _ in 0..400 {
        if app.metrics.webhooks_in_flight.load(Ordering::Relaxed) >= count {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!(
        "{count} deliveries never arrived; {} did",
        app.metrics.webhooks_in_flight.load(Ordering::Relaxed)
    );
}

/// Posts these (svix id, body) deliveries at once, while `meanwhile` runs; their statuses and
/// answers, in order.
async fn deliver_all(
    app: &TestApp,
    deliveries: &[(String, String)],
    meanwhile: impl Future<Output = ()>,
) -> Vec<(u16, Value)> {
    let posts = futures_util::future::join_all(
        deliveries
            .iter()
            .map(|(svix_id, body)| app.deliver(svix_id, body)),
    );
    let (answers, ()) = tokio::join!(posts, meanwhile);
    answers
}

async fn concurrent_deliveries_share_transactions_and_each_is_credited_to_its_own_svix_id(
    app: TestApp,
) {
    const DELIVERIES: usize = 40;
    let mut subscriber = app
        .subscribe(&app.admin_token, USER_CHANGED, json!({}))
        .await;
    let batches_before = app.metrics.webhook_batches.load(Ordering::Relaxed);
    let deliveries: Vec<(String, String)> = (0..DELIVERIES)
        .map(|n| {
            let user = clerk_user(
                &format!("user_batch_{n}"),
                &format!("batch{n}@x.test"),
                &format!("Batch{n}"),
                "lecturer",
                1_700_000_000_000 + n as i64,
            );
            (format!("msg_batch_{n}"), envelope("user.created", user))
        })
        .collect();

    let held = hold_writers(&app).await;
    let answers = deliver_all(&app, &deliveries, async {
        until_in_flight(&app, DELIVERIES as i64).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        // Nothing is acknowledged before its transaction commits, and none can commit yet.
        assert_eq!(
            app.metrics.webhooks_in_flight.load(Ordering::Relaxed),
            DELIVERIES as i64,
            "a delivery was answered before it committed"
        );
        held.commit().await.expect("the holding transaction ends");
    })
    .await;

    for (status, answer) in &answers {
        assert_eq!(*status, 200, "{answer}");
        assert_eq!(answer["status"], "applied", "{answer}");
    }
    // Each of the four workers took what had queued when it began, then one took the rest:
    // every delivery is in one of at most five transactions, where applied one by one they
    // were forty.
    let batches = app.metrics.webhook_batches.load(Ordering::Relaxed) - batches_before;
    assert!(
        (1..=5).contains(&batches),
        "{DELIVERIES} deliveries in {batches} transactions"
    );
    if app.db.get_database_backend() == DbBackend::Postgres {
        // PostgreSQL's own word for it: the transactions that inserted the rows.
        let writers = app
            .db
            .query_one_raw(Statement::from_string(
                DbBackend::Postgres,
                "SELECT count(DISTINCT xmin::text) AS writers FROM users \
                 WHERE clerk_id LIKE 'user_batch_%'",
            ))
            .await
            .expect("the count")
            .expect("a row")
            .try_get::<i64>("", "writers")
            .expect("a number");
        assert!(
            (1..=5).contains(&writers),
            "{DELIVERIES} users inserted by {writers} transactions"
        );
    }

    // Each user once, with their own audit event credited to their own delivery.
    let users: HashMap<String, user::Model> = user::Entity::find()
        .filter(user::Column::ClerkId.starts_with("user_batch_"))
        .all(&app.db)
        .await
        .expect("the users")
        .into_iter()
        .map(|user| (user.clerk_id.clone(), user))
        .collect();
    assert_eq!(users.len(), DELIVERIES);
    for n in 0..DELIVERIES {
        let user = &users[&format!("user_batch_{n}")];
        assert_eq!(user.email, format!("batch{n}@x.test"));
        assert_eq!(
            user.first_name.as_deref(),
            Some(format!("Batch{n}").as_str())
        );
        assert_eq!(user.clerk_updated_at, 1_700_000_000_000 + n as i64);
        let audit = audit_event::Entity::find()
            .filter(audit_event::Column::SubjectId.eq(user.id.to_string()))
            .all(&app.db)
            .await
            .expect("the audit trail");
        assert_eq!(audit.len(), 1, "{audit:?}");
        assert_eq!(audit[0].action, "user.created");
        assert_eq!(audit[0].actor, "clerk");
        assert_eq!(audit[0].source, "webhook");
        assert_eq!(
            audit[0].correlation_id.as_deref(),
            Some(format!("msg_batch_{n}").as_str())
        );
    }
    let recorded = webhook_delivery::Entity::find()
        .filter(webhook_delivery::Column::SvixId.starts_with("msg_batch_"))
        .all(&app.db)
        .await
        .expect("the deliveries");
    assert_eq!(recorded.len(), DELIVERIES);
    assert!(
        recorded
            .iter()
            .all(|delivery| delivery.outcome == "applied" && delivery.event_type == "user.created")
    );

    // A subscriber hears of every creation once.
    let mut heard = BTreeSet::new();
    for _ in 0..DELIVERIES {
        let data = subscriber.next_data().await;
        assert_eq!(data["userChanged"]["kind"], "CREATED", "{data}");
        let email = data["userChanged"]["user"]["email"]
            .as_str()
            .expect("an email")
            .to_owned();
        assert!(heard.insert(email.clone()), "{email} twice");
    }
    let expected: BTreeSet<String> = (0..DELIVERIES)
        .map(|n| format!("batch{n}@x.test"))
        .collect();
    assert_eq!(heard, expected);
    subscriber.assert_quiet().await;
}

async fn a_delivery_that_cannot_be_applied_fails_alone_and_the_rest_of_its_batch_commits(
    app: TestApp,
) {
    let created = |n: usize, updated_at: i64, first_name: &str| {
        envelope(
            "user.created",
            clerk_user(
                &format!("user_mixed_{n}"),
                &format!("mixed{n}@x.test"),
                first_name,
                "lecturer",
                updated_at,
            ),
        )
    };
    let mut deliveries: Vec<(String, String)> = (0..10)
        .map(|n| {
            (
                format!("msg_mixed_{n}"),
                created(n, 1_700_000_000_000, "First"),
            )
        })
        .collect();
    // An email of spaces is no email: this one is refused, as it is alone.
    deliveries.push((
        "msg_mixed_blank".to_owned(),
        envelope(
            "user.created",
            clerk_user("user_mixed_blank", "   ", "Blank", "lecturer", 1),
        ),
    ));
    // Clerk's retry of the first, at once: applied once, the other a duplicate.
    deliveries.push((
        "msg_mixed_0".to_owned(),
        created(0, 1_700_000_000_000, "First"),
    ));
    // A later change of the second user, arriving with its creation: the later state wins,
    // whichever is applied first.
    deliveries.push((
        "msg_mixed_1_later".to_owned(),
        envelope(
            "user.updated",
            clerk_user(
                "user_mixed_1",
                "mixed1@x.test",
                "Later",
                "lecturer",
                1_700_000_000_500,
            ),
        ),
    ));

    let held = hold_writers(&app).await;
    let answers = deliver_all(&app, &deliveries, async {
        until_in_flight(&app, deliveries.len() as i64).await;
        held.commit().await.expect("the holding transaction ends");
    })
    .await;
    let statuses: Vec<(u16, &str)> = answers
        .iter()
        .map(|(status, answer)| {
            let outcome = answer["status"]
                .as_str()
                .or(answer["error"]["code"].as_str());
            (
                *status,
                outcome.unwrap_or_else(|| panic!("an outcome: {answer}")),
            )
        })
        .collect();
    // Which of two deliveries arriving together is applied first is the arrival's order.
    let (first, retry) = (statuses[0], statuses[11]);
    assert!(
        [(first, retry), (retry, first)].contains(&((200, "applied"), (200, "duplicate"))),
        "{statuses:?}"
    );
    assert!(
        [(200, "applied"), (200, "stale")].contains(&statuses[1]),
        "{statuses:?}"
    );
    for status in &statuses[2..10] {
        assert_eq!(*status, (200, "applied"), "{statuses:?}");
    }
    assert_eq!(statuses[10], (400, "BAD_USER_INPUT"), "{answers:?}");
    assert_eq!(statuses[12], (200, "applied"), "{statuses:?}");

    let users = user::Entity::find()
        .filter(user::Column::ClerkId.starts_with("user_mixed_"))
        .all(&app.db)
        .await
        .expect("the users");
    assert_eq!(users.len(), 10, "the blank one is not stored");
    let second = users
        .iter()
        .find(|user| user.clerk_id == "user_mixed_1")
        .expect("the second user");
    assert_eq!(second.first_name.as_deref(), Some("Later"));
    assert_eq!(second.clerk_updated_at, 1_700_000_000_500);
    let recorded: BTreeSet<String> = webhook_delivery::Entity::find()
        .filter(webhook_delivery::Column::SvixId.starts_with("msg_mixed_"))
        .all(&app.db)
        .await
        .expect("the deliveries")
        .into_iter()
        .map(|delivery| delivery.svix_id)
        .collect();
    let mut expected: BTreeSet<String> = (0..10).map(|n| format!("msg_mixed_{n}")).collect();
    expected.insert("msg_mixed_1_later".to_owned());
    // The refused one is not recorded, so Clerk's retry is applied when it can be.
    assert_eq!(recorded, expected);
}
