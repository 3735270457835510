//! The number of SQL statements a page costs does not depend on its size: every relation is
//! batched through a DataLoader.

use std::sync::atomic::Ordering;

use entity::role::Role;
use serde_json::json;

use crate::helpers::{TestApp, TestUser, on_both_databases};

on_both_databases!(
    a_page_of_users_with_organisations_and_member_counts_costs_the_same_for_10_and_100
        => without_background_sweeps,
    a_page_of_organisations_with_their_users_costs_the_same_for_2_and_20
        => without_background_sweeps,
    a_page_of_users_answered_directly_reads_users_and_organisations_in_one_statement
        => without_background_sweeps,
);

/// The statement counter counts every statement of the server, and the server sweeps for
/// interrupted syncs every `USERHUB_SYNC_STALE_AFTER_SECONDS / 2` (a statement of its own).
/// With the default, a sweep 30 s after start can land in a measurement when the machine is
/// slow (it did, twice, in CI); a day between sweeps keeps the count to the request's own.
/// These count what computing an answer costs, so the response cache (and its memory of the
/// caller's row) is off.
fn without_background_sweeps(config: &mut userhub::config::Config) {
    config.cache = userhub::config::CacheMode::Off;
    config.sync_stale_after_seconds = 2 * 24 * 3600;
}

const USERS_PAGE: &str = r#"query($first: Int!) {
    users(first: $first) {
        totalCount
        edges { node { id email fullName role isActive
            organisation { id name memberCount } } }
    } }"#;

/// 120 lecturers in five organisations, 24 in each.
async fn seed_five_organisations(app: &TestApp) {
    let mut organisations = Vec::new();
    for name in ["Arts", "Biology", "Chemistry", "Design", "Economics"] {
        organisations.push(app.create_organisation(name).await);
    }
    for i in 0..120 {
        let email = format!("user{i:03}@uni.test");
        let org = &organisations[i % organisations.len()];
        app.create_user(
            TestUser::new(&email)
                .role(Role::Lecturer)
                .in_organisation(org.id),
        )
        .await;
    }
}

async fn a_page_of_users_with_organisations_and_member_counts_costs_the_same_for_10_and_100(
    app: TestApp,
) {
    seed_five_organisations(&app).await;
    let (for_10, small) = app.statements_for(USERS_PAGE, json!({ "first": 10 })).await;
    let (for_100, large) = app
        .statements_for(USERS_PAGE, json!({ "first": 100 }))
        .await;

    assert_eq!(small["users"]["edges"].as_array().expect("edges").len(), 10);
    assert_eq!(
        large["users"]["edges"].as_array().expect("edges").len(),
        100
    );
    // The 120, and the test's admin.
    assert_eq!(large["users"]["totalCount"], 121);
    assert_eq!(
        // The first user is the test's admin, who belongs to no organisation.
        large["users"]["edges"][1]["node"]["organisation"]["memberCount"],
        24
    );
    assert_eq!(
        for_10, for_100,
        "statements for 10 users: {for_10}, for 100 users: {for_100}"
    );
    // Answered directly from the second ask: the caller's row, the page with its users'
    // organisations, its count, their member counts (the executor reads the organisations
    // apart: five).
    assert_eq!(for_100, 4);
}

const ORGANISATIONS_PAGE: &str = r#"query($first: Int!) {
    organisations(first: $first) {
        totalCount
        nodes { id name memberCount
            users(first: 3, orderBy: EMAIL_ASC) {
                totalCount
                nodes { email organisation { name } }
                pageInfo { hasNextPage endCursor } } }
    } }"#;

async fn a_page_of_organisations_with_their_users_costs_the_same_for_2_and_20(app: TestApp) {
    for i in 0..20 {
        let org = app
            .create_organisation(&format!("Organisation {i:02}"))
            .await;
        for j in 0..4 {
            let email = format!("member{j}@org{i:02}.test");
            app.create_user(TestUser::new(&email).in_organisation(org.id))
                .await;
        }
    }

    let (for_2, small) = app
        .statements_for(ORGANISATIONS_PAGE, json!({ "first": 2 }))
        .await;
    let (for_20, large) = app
        .statements_for(ORGANISATIONS_PAGE, json!({ "first": 20 }))
        .await;

    assert_eq!(
        small["organisations"]["nodes"]
            .as_array()
            .expect("nodes")
            .len(),
        2
    );
    let nodes = large["organisations"]["nodes"].as_array().expect("nodes");
    assert_eq!(nodes.len(), 20);
    for org in nodes {
        let name = org["name"].as_str().expect("name");
        let suffix = name.trim_start_matches("Organisation ");
        assert_eq!(org["memberCount"], 4);
        assert_eq!(org["users"]["totalCount"], 4);
        assert_eq!(org["users"]["pageInfo"]["hasNextPage"], true);
        let emails: Vec<&str> = org["users"]["nodes"]
            .as_array()
            .expect("users")
            .iter()
            .map(|user| {
                assert_eq!(user["organisation"]["name"], name);
                user["email"].as_str().expect("email")
            })
            .collect();
        assert_eq!(
            emails,
            [0, 1, 2].map(|j| format!("member{j}@org{suffix}.test"))
        );
    }
    assert_eq!(for_2, for_20, "statements for 2: {for_2}, for 20: {for_20}");
}

/// W1's page (`graphql/direct.rs`): once the executor has answered it, the direct path reads
/// the caller's row and then the users with their organisations in one statement, whatever
/// the page's size; a count asked for is one more.
async fn a_page_of_users_answered_directly_reads_users_and_organisations_in_one_statement(
    app: TestApp,
) {
    const W1: &str = "query($first: Int!) { users(first: $first) { nodes { id email firstName \
                      lastName role isActive organisation { id name } } } }";
    const COUNTED: &str = "query($first: Int!) { users(first: $first) { totalCount nodes { \
                           email organisation { name } } } }";
    seed_five_organisations(&app).await;
    let answered_directly = app.metrics.direct_answers.load(Ordering::Relaxed);
    // Each is asked three times; the least count is that of a direct answer.
    let (for_10, small) = app.statements_for(W1, json!({ "first": 10 })).await;
    let (for_100, large) = app.statements_for(W1, json!({ "first": 100 })).await;
    let (counted, with_count) = app.statements_for(COUNTED, json!({ "first": 100 })).await;
    assert_eq!(
        app.metrics.direct_answers.load(Ordering::Relaxed) - answered_directly,
        6,
        "the second and third asks of each were answered directly"
    );
    assert_eq!(small["users"]["nodes"].as_array().expect("nodes").len(), 10);
    let nodes = large["users"]["nodes"].as_array().expect("nodes");
    assert_eq!(nodes.len(), 100);
    // The first user is the test's admin, who belongs to no organisation.
    assert_eq!(nodes[0]["organisation"], serde_json::Value::Null);
    for node in &nodes[1..] {
        assert_eq!(node["role"], "LECTURER");
        assert!(node["organisation"]["name"].is_string(), "{node}");
    }
    assert_eq!(with_count["users"]["totalCount"], 121);
    // The caller's row, then the page with its organisations.
    assert_eq!((for_10, for_100), (2, 2));
    assert_eq!(counted, 3);
}
