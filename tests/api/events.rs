//! Every write publishes what it changed: organisations and invitations as well as users, so
//! whatever keeps answers derived from them (a response cache, a dashboard) hears of each
//! change once it commits, on every replica.

use std::time::Duration;

use entity::role::Role;
use serde_json::json;
use tokio::sync::broadcast;
use userhub::events::{Event, EventBus, RecordChange};

use crate::helpers::{TestApp, TestUser, on_both_databases};

on_both_databases!(
    organisation_and_invitation_changes_are_published_on_every_replica,
    the_version_advances_before_a_write_is_acknowledged_and_on_every_replica,
);

/// On PostgreSQL, a bus of its own on the test's database: what another replica hears.
async fn another_replica(app: &TestApp) -> Option<EventBus> {
    if !app.database_url.starts_with("postgres") {
        return None;
    }
    Some(
        EventBus::postgres(&app.database_url, app.db.clone(), 64)
            .await
            .expect("another replica listens"),
    )
}

/// The next `count` organisation and invitation changes `receiver` hears (user changes are
/// skipped).
async fn records(receiver: &mut broadcast::Receiver<Event>, count: usize) -> Vec<RecordChange> {
    let mut heard = Vec::new();
    while heard.len() < count {
        let event = tokio::time::timeout(Duration::from_secs(10), receiver.recv())
            .await
            .unwrap_or_else(|_| panic!("only {} of {count} changes heard: {heard:?}", heard.len()))
            .expect("the bus is open");
        if let Event::Record(change) = event {
            heard.push(change);
        }
    }
    heard
}

async fn organisation_and_invitation_changes_are_published_on_every_replica(app: TestApp) {
    let mut here = app.events.subscribe();
    let other_replica = another_replica(&app).await;
    let mut there = other_replica.as_ref().map(EventBus::subscribe);

    let created = app
        .query(
            r#"mutation { createOrganisation(input: { name: "Physics" }) { id } }"#,
            json!({}),
        )
        .await;
    let organisation_id: uuid::Uuid = created["createOrganisation"]["id"]
        .as_str()
        .and_then(|id| id.parse().ok())
        .expect("an id");
    app.query(
        r#"mutation($id: ID!) { updateOrganisation(id: $id, input: { name: "Physics and Astronomy" }) { id } }"#,
        json!({ "id": organisation_id }),
    )
    .await;
    let revoked = app
        .invite("gone@uni.test", Role::Lecturer, Some(organisation_id))
        .await;
    app.query(
        "mutation($id: ID!) { revokeInvitation(id: $id) { id } }",
        json!({ "id": revoked.id }),
    )
    .await;
    let accepted = app
        .invite("arrives@uni.test", Role::Lecturer, Some(organisation_id))
        .await;
    // The invitee signs up: the invitation meets its user.
    app.create_user(TestUser::new("arrives@uni.test")).await;
    app.query(
        "mutation($id: ID!) { archiveOrganisation(id: $id) { id } }",
        json!({ "id": organisation_id }),
    )
    .await;

    let organisation = RecordChange::Organisation {
        id: organisation_id,
    };
    let invitation = |id| RecordChange::Invitation {
        id,
        organisation_id: Some(organisation_id),
    };
    let expected = vec![
        organisation,
        organisation,
        invitation(revoked.id),
        invitation(revoked.id),
        invitation(accepted.id),
        invitation(accepted.id),
        organisation,
    ];
    assert_eq!(records(&mut here, expected.len()).await, expected);
    if let Some(there) = &mut there {
        assert_eq!(records(there, expected.len()).await, expected);
    }
}

/// The bus's version, what a cache of answers will check: a write advances it on the replica
/// that made it before the write is acknowledged (read-your-writes there), a read does not,
/// and another replica's advances when the change's NOTIFY arrives. Prints how long that took
/// (the cross-replica bound a cache would be stale for); times are measured, not asserted.
async fn the_version_advances_before_a_write_is_acknowledged_and_on_every_replica(app: TestApp) {
    let other_replica = another_replica(&app).await;
    let before = app.events.version();
    app.query("{ users { totalCount } me { id } }", json!({}))
        .await;
    assert_eq!(app.events.version(), before, "a read changed nothing");

    let mut delays = Vec::new();
    for round in 0..20 {
        let here = app.events.version();
        let there = other_replica.as_ref().map(EventBus::version);
        let sent = std::time::Instant::now();
        app.query(
            "mutation($id: ID!, $name: String!) { updateUser(id: $id, input: { firstName: $name }) { id } }",
            json!({ "id": app.admin.id, "name": format!("Round {round}") }),
        )
        .await;
        let acknowledged = std::time::Instant::now();
        assert!(
            app.events.version() > here,
            "round {round}: the write was acknowledged before this replica's version moved"
        );
        if let (Some(bus), Some(there)) = (&other_replica, there) {
            let deadline = sent + Duration::from_secs(10);
            while bus.version() == there {
                assert!(
                    std::time::Instant::now() < deadline,
                    "round {round}: the other replica never heard the change"
                );
                tokio::time::sleep(Duration::from_micros(200)).await;
            }
            delays.push((acknowledged.elapsed(), sent.elapsed()));
        }
    }
    if !delays.is_empty() {
        let mut after_ack: Vec<Duration> = delays.iter().map(|(ack, _)| *ack).collect();
        let mut after_request: Vec<Duration> = delays.iter().map(|(_, sent)| *sent).collect();
        after_ack.sort();
        after_request.sort();
        println!(
            "cross-replica version over {} writes: the other replica moved, after the acknowledgement, median {:?} and max {:?}; after the request was sent, median {:?} and max {:?}",
            delays.len(),
            after_ack[after_ack.len() / 2],
            after_ack[after_ack.len() - 1],
            after_request[after_request.len() / 2],
            after_request[after_request.len() - 1],
        );
    }
}
