//! The last active admin cannot be demoted, suspended or removed, even by two admins acting
//! on each other at the same moment, on one server or on two replicas of one database.

use entity::role::Role;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestUser, on_both_databases};

on_both_databases!(two_admins_acting_on_each_other_at_once_leave_one_admin);

const CHANGES: [(&str, &str); 3] = [
    (
        "demote",
        "mutation ($id: ID!) { updateUser(id: $id, input: { role: LECTURER }) { id } }",
    ),
    (
        "suspend",
        "mutation ($id: ID!) { suspendUser(id: $id) { id } }",
    ),
    (
        "remove",
        "mutation ($id: ID!) { removeUser(id: $id) { id } }",
    ),
];

async fn post(address: &str, token: &str, query: &str, id: &str) -> Value {
    reqwest::Client::new()
        .post(format!("{address}/graphql"))
        .bearer_auth(token)
        .json(&json!({ "query": query, "variables": { "id": id } }))
        .send()
        .await
        .expect("the server answers")
        .json()
        .await
        .expect("JSON")
}

async fn active_admins(app: &TestApp) -> u64 {
    entity::user::Entity::find()
        .filter(entity::user::Column::Role.eq(Role::Admin))
        .filter(entity::user::Column::IsActive.eq(true))
        .filter(entity::user::Column::Banned.eq(false))
        .count(&app.db)
        .await
        .expect("a count")
}

/// Rounds of two fresh admins, the only ones, each demoting (suspending, removing) the other
/// at once, through `first` and `second` (one server, or two replicas).
async fn race(app: &TestApp, first: &str, second: &str, rounds: usize, label: &str) {
    for round in 0..rounds {
        let (change, mutation) = CHANGES[round % CHANGES.len()];
        let x = app
            .create_user(TestUser::new(&format!("x{round}-{label}@race.test")).role(Role::Admin))
            .await;
        let y = app
            .create_user(TestUser::new(&format!("y{round}-{label}@race.test")).role(Role::Admin))
            .await;
        entity::user::Entity::update_many()
            .col_expr(entity::user::Column::Role, Expr::value(Role::Lecturer))
            .filter(entity::user::Column::Role.eq(Role::Admin))
            .filter(entity::user::Column::Id.is_not_in([x.id, y.id]))
            .exec(&app.db)
            .await
            .expect("only the two are admins");
        assert_eq!(active_admins(app).await, 2);
        let (x_token, y_token) = (app.token_for(&x), app.token_for(&y));
        let (x_id, y_id) = (x.id.to_string(), y.id.to_string());
        let (by_x, by_y) = tokio::join!(
            post(first, &x_token, mutation, &y_id),
            post(second, &y_token, mutation, &x_id),
        );
        let outcomes = [&by_x, &by_y].map(|answer| {
            answer["errors"][0]["extensions"]["code"]
                .as_str()
                .unwrap_or("OK")
                .to_owned()
        });
        // The loser is refused by the rule (CONFLICT), or, when the winner's change committed
        // before the loser's request was authenticated, as no longer an admin (FORBIDDEN).
        let won = outcomes.iter().filter(|outcome| *outcome == "OK").count();
        let refused = outcomes
            .iter()
            .filter(|outcome| matches!(outcome.as_str(), "CONFLICT" | "FORBIDDEN"))
            .count();
        assert_eq!(
            (won, refused),
            (1, 1),
            "{label} round {round} ({change}): one wins, one is refused: {by_x} {by_y}"
        );
        assert_eq!(
            active_admins(app).await,
            1,
            "{label} round {round} ({change}): one admin is left"
        );
    }
}

async fn two_admins_acting_on_each_other_at_once_leave_one_admin(app: TestApp) {
    race(&app, &app.address, &app.address, 6, "one-server").await;
    if app.database_url.starts_with("postgres") {
        let (_replica, address) = crate::process::start_replica_with(&app, &[]).await;
        race(&app, &app.address, &address, 6, "two-replicas").await;
    }
}
