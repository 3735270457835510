//! Reading users: one by id, pages in every order, filters, and the errors of bad input.

use entity::role::Role;
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestUser, error_code, on_both_databases};

on_both_databases!(
    a_user_is_read_by_id_with_its_organisation,
    an_unknown_user_id_is_not_found,
    a_malformed_user_id_is_bad_user_input,
    paging_by_cursor_visits_every_user_once_in_each_order,
    filters_narrow_users_by_organisation_role_activity_suspension_and_search,
    users_are_narrowed_by_when_they_came_and_when_they_last_signed_in,
    a_page_size_over_the_maximum_is_bad_user_input,
    a_malformed_cursor_is_bad_user_input,
    a_cursor_from_another_order_is_bad_user_input,
    the_last_active_admin_cannot_be_taken_away,
);

async fn a_user_is_read_by_id_with_its_organisation(app: TestApp) {
    let org = app.create_organisation("School of Physics").await;
    let ada = app
        .create_user(
            TestUser::new("Ada@Example.com")
                .named("Ada", "Lovelace")
                .role(Role::Lecturer)
                .in_organisation(org.id),
        )
        .await;

    let data = app
        .query(
            r#"query($id: ID!) { user(id: $id) {
                id email firstName lastName fullName role isActive isSuspended
                organisationId organisation { id name slug }
            } }"#,
            json!({ "id": ada.id }),
        )
        .await;

    assert_eq!(
        data["user"],
        json!({
            "id": ada.id.to_string(),
            "email": "ada@example.com",
            "firstName": "Ada",
            "lastName": "Lovelace",
            "fullName": "Ada Lovelace",
            "role": "LECTURER",
            "isActive": true,
            "isSuspended": false,
            "organisationId": org.id.to_string(),
            "organisation": { "id": org.id.to_string(), "name": "School of Physics", "slug": "school-of-physics" },
        })
    );
}

async fn an_unknown_user_id_is_not_found(app: TestApp) {
    let body = app
        .graphql(
            "query($id: ID!) { user(id: $id) { id } }",
            json!({ "id": uuid::Uuid::now_v7() }),
        )
        .await;
    assert_eq!(error_code(&body), "NOT_FOUND");
    assert_eq!(body["errors"][0]["path"], json!(["user"]));
}

async fn a_malformed_user_id_is_bad_user_input(app: TestApp) {
    let body = app
        .graphql("{ user(id: \"not-an-id\") { id } }", json!({}))
        .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT");
    assert_eq!(body["errors"][0]["extensions"]["field"], "id");
}

/// Reads every page of `users` in `order` and returns the emails in the order seen.
async fn all_emails(app: &TestApp, order: &str, page_size: i32) -> Vec<String> {
    let mut emails = Vec::new();
    let mut after = Value::Null;
    loop {
        let data = app
            .query(
                r#"query($first: Int, $after: String, $order: UserOrderBy!) {
                    users(first: $first, after: $after, orderBy: $order, filter: { role: MEMBER }) {
                        totalCount
                        edges { cursor node { email } }
                        pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
                    } }"#,
                json!({ "first": page_size, "after": after, "order": order }),
            )
            .await;
        let connection = &data["users"];
        assert_eq!(connection["totalCount"], 7);
        assert_eq!(connection["pageInfo"]["hasPreviousPage"], !after.is_null());
        let edges = connection["edges"].as_array().expect("edges");
        assert!(edges.len() <= page_size as usize);
        if let Some(last) = edges.last() {
            assert_eq!(connection["pageInfo"]["endCursor"], last["cursor"]);
        }
        emails.extend(
            edges
                .iter()
                .map(|edge| edge["node"]["email"].as_str().expect("email").to_owned()),
        );
        if connection["pageInfo"]["hasNextPage"] != true {
            return emails;
        }
        after = connection["pageInfo"]["endCursor"].clone();
    }
}

async fn paging_by_cursor_visits_every_user_once_in_each_order(app: TestApp) {
    // Created in this order, which is not the alphabetical one.
    let created = [
        "d@x.test", "b@x.test", "g@x.test", "a@x.test", "f@x.test", "c@x.test", "e@x.test",
    ];
    for email in created {
        app.create_user(TestUser::new(email)).await;
    }
    let mut alphabetical = created.to_vec();
    alphabetical.sort();

    assert_eq!(all_emails(&app, "CREATED_AT_ASC", 3).await, created);
    let mut newest_first = created.to_vec();
    newest_first.reverse();
    assert_eq!(all_emails(&app, "CREATED_AT_DESC", 2).await, newest_first);
    assert_eq!(all_emails(&app, "EMAIL_ASC", 3).await, alphabetical);
    let mut reverse_alphabetical = alphabetical.clone();
    reverse_alphabetical.reverse();
    assert_eq!(
        all_emails(&app, "EMAIL_DESC", 4).await,
        reverse_alphabetical
    );
}

async fn filters_narrow_users_by_organisation_role_activity_suspension_and_search(app: TestApp) {
    let physics = app.create_organisation("Physics").await;
    let maths = app.create_organisation("Maths").await;
    app.create_user(
        TestUser::new("ada@uni.test")
            .named("Ada", "Lovelace")
            .role(Role::Lecturer)
            .in_organisation(maths.id),
    )
    .await;
    let marie = app
        .create_user(
            TestUser::new("marie@uni.test")
                .named("Marie", "Curie")
                .role(Role::OrgAdmin)
                .in_organisation(physics.id),
        )
        .await;
    let gone = app
        .create_user(
            TestUser::new("pierre@uni.test")
                .named("Pierre", "Curie")
                .in_organisation(physics.id),
        )
        .await;
    app.deactivate(&gone).await;
    app.create_user(TestUser::new("100%_sure@uni.test")).await;

    let emails = |filter: Value| {
        let app = &app;
        async move {
            let data = app
                .query(
                    r#"query($filter: UsersFilter) {
                        users(first: 100, filter: $filter, orderBy: EMAIL_ASC) {
                            totalCount nodes { email } } }"#,
                    json!({ "filter": filter }),
                )
                .await;
            let emails: Vec<String> = data["users"]["nodes"]
                .as_array()
                .expect("nodes")
                .iter()
                .map(|node| node["email"].as_str().expect("email").to_owned())
                .collect();
            assert_eq!(data["users"]["totalCount"], emails.len());
            emails
        }
    };

    assert_eq!(
        emails(json!({ "organisationId": physics.id })).await,
        ["marie@uni.test", "pierre@uni.test"]
    );
    assert_eq!(
        emails(json!({ "role": "LECTURER" })).await,
        ["ada@uni.test"]
    );
    assert_eq!(
        emails(json!({ "isActive": false })).await,
        ["pierre@uni.test"]
    );
    assert_eq!(
        emails(json!({ "organisationId": physics.id, "isActive": true })).await,
        ["marie@uni.test"]
    );
    // Suspended (banned in Clerk) or not; a removed user is not suspended.
    app.query(
        "mutation($id: ID!) { suspendUser(id: $id) { isSuspended } }",
        json!({ "id": marie.id }),
    )
    .await;
    assert_eq!(
        emails(json!({ "isSuspended": true })).await,
        ["marie@uni.test"]
    );
    assert_eq!(
        emails(json!({ "organisationId": physics.id, "isSuspended": false })).await,
        ["pierre@uni.test"]
    );
    assert_eq!(
        emails(json!({ "isActive": true, "isSuspended": true, "role": "LECTURER" })).await,
        Vec::<String>::new()
    );
    // Any case, any of email, first and last name, every word.
    assert_eq!(
        emails(json!({ "search": "CURIE" })).await,
        ["marie@uni.test", "pierre@uni.test"]
    );
    assert_eq!(
        emails(json!({ "search": "marie curie" })).await,
        ["marie@uni.test"]
    );
    assert_eq!(
        emails(json!({ "search": "lovelace" })).await,
        ["ada@uni.test"]
    );
    // LIKE's wildcards are searched for as they are.
    assert_eq!(
        emails(json!({ "search": "100%_" })).await,
        ["100%_sure@uni.test"]
    );
    assert_eq!(
        emails(json!({ "search": "%" })).await,
        ["100%_sure@uni.test"]
    );
    assert!(emails(json!({ "search": "nobody" })).await.is_empty());
}

async fn a_page_size_over_the_maximum_is_bad_user_input(app: TestApp) {
    let body = app
        .graphql("{ users(first: 101) { totalCount } }", json!({}))
        .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT");
    assert_eq!(body["errors"][0]["extensions"]["field"], "first");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .expect("message")
            .contains("maximum page size of 100")
    );
    let body = app
        .graphql("{ users(first: -1) { totalCount } }", json!({}))
        .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT");
    // The maximum itself is fine.
    app.query("{ users(first: 100) { totalCount } }", json!({}))
        .await;
}

async fn a_malformed_cursor_is_bad_user_input(app: TestApp) {
    for cursor in ["garbage", "", "djEKWAp4Cmsx"] {
        let body = app
            .graphql(
                "query($after: String) { users(after: $after) { totalCount } }",
                json!({ "after": cursor }),
            )
            .await;
        assert_eq!(
            error_code(&body),
            "BAD_USER_INPUT",
            "cursor {cursor:?}: {body}"
        );
        assert_eq!(body["errors"][0]["extensions"]["field"], "after");
    }
}

async fn a_cursor_from_another_order_is_bad_user_input(app: TestApp) {
    app.create_user(TestUser::new("a@x.test")).await;
    app.create_user(TestUser::new("b@x.test")).await;
    let data = app
        .query(
            "{ users(first: 1, orderBy: EMAIL_ASC) { pageInfo { endCursor } } }",
            json!({}),
        )
        .await;
    let cursor = data["users"]["pageInfo"]["endCursor"].clone();
    let body = app
        .graphql(
            "query($after: String) { users(first: 1, after: $after, orderBy: CREATED_AT_ASC) { totalCount } }",
            json!({ "after": cursor }),
        )
        .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .expect("message")
            .contains("EMAIL_ASC")
    );
}

async fn the_last_active_admin_cannot_be_taken_away(app: TestApp) {
    use userhub::error::AppError;
    use userhub::service::users::ensure_not_last_admin;

    // The test's admin is the only one.
    let refused = ensure_not_last_admin(&app.db, &app.admin).await;
    assert!(
        matches!(&refused, Err(AppError::Conflict(m)) if m.contains("last active admin")),
        "{refused:?}"
    );
    let second = app
        .create_user(TestUser::new("second@uni.test").role(Role::Admin))
        .await;
    ensure_not_last_admin(&app.db, &app.admin)
        .await
        .expect("another admin remains");
    ensure_not_last_admin(&app.db, &second)
        .await
        .expect("another admin remains");
    app.deactivate(&second).await;
    assert!(ensure_not_last_admin(&app.db, &app.admin).await.is_err());
    // Anyone who is not an active admin can always go.
    let member = app.create_user(TestUser::new("m@uni.test")).await;
    ensure_not_last_admin(&app.db, &member)
        .await
        .expect("not an admin");
}

async fn users_are_narrowed_by_when_they_came_and_when_they_last_signed_in(app: TestApp) {
    use sea_orm::{ActiveModelTrait, Set};
    let organisation = app.create_organisation("Physics").await;
    let mut people = Vec::new();
    for email in ["first@uni.test", "second@uni.test", "third@uni.test"] {
        people.push(
            app.create_user(TestUser::new(email).in_organisation(organisation.id))
                .await,
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    // Sign-ins, as Clerk's `last_sign_in_at` brings them: the first a week ago, the third an
    // hour ago; the second never.
    let now = chrono::Utc::now();
    for (person, ago) in [
        (&people[0], chrono::Duration::days(7)),
        (&people[2], chrono::Duration::hours(1)),
    ] {
        let mut row: entity::user::ActiveModel = person.clone().into();
        row.last_sign_in_at = Set(Some(now - ago));
        row.update(&app.db).await.expect("a sign-in");
    }
    let emails = |data: &Value, path: &[&str]| -> Vec<String> {
        let mut node = data;
        for key in path {
            node = &node[*key];
        }
        node["nodes"]
            .as_array()
            .expect("nodes")
            .iter()
            .map(|user| user["email"].as_str().expect("email").to_owned())
            .collect()
    };
    let ask = |filter: Value| {
        let app = &app;
        let organisation = organisation.id;
        async move {
            app.query(
                r#"query ($filter: UsersFilter, $inside: UsersInOrganisationFilter, $org: ID!) {
                    users(filter: $filter, orderBy: EMAIL_ASC) { totalCount nodes { email } }
                    organisation(id: $org) { users(filter: $inside, orderBy: EMAIL_ASC) { nodes { email } } } }"#,
                json!({ "filter": filter, "inside": filter, "org": organisation }),
            )
            .await
        }
    };
    let second_came = people[1].created_at.to_rfc3339();
    let third_came = people[2].created_at.to_rfc3339();
    let data = ask(json!({ "createdFrom": second_came })).await;
    assert_eq!(
        emails(&data, &["users"]),
        ["second@uni.test", "third@uni.test"]
    );
    assert_eq!(data["users"]["totalCount"], 2);
    assert_eq!(
        emails(&data, &["organisation", "users"]),
        ["second@uni.test", "third@uni.test"]
    );
    let data = ask(json!({ "createdFrom": second_came, "createdBefore": third_came })).await;
    assert_eq!(emails(&data, &["users"]), ["second@uni.test"]);
    let data =
        ask(json!({ "lastSignInFrom": (now - chrono::Duration::days(1)).to_rfc3339() })).await;
    assert_eq!(emails(&data, &["users"]), ["third@uni.test"]);
    let data =
        ask(json!({ "lastSignInBefore": (now - chrono::Duration::days(1)).to_rfc3339() })).await;
    assert_eq!(emails(&data, &["users"]), ["first@uni.test"]);
    assert_eq!(data["users"]["totalCount"], 1);

    // A range that ends before it starts is refused, naming its end.
    let body = app
        .graphql(
            "query ($filter: UsersFilter) { users(filter: $filter) { totalCount } }",
            json!({ "filter": { "createdFrom": third_came, "createdBefore": second_came } }),
        )
        .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    assert_eq!(
        body["errors"][0]["extensions"]["field"],
        "filter.createdBefore"
    );

    // The export takes the same filter.
    let response = app
        .client
        .get(app.url("/api/exports/users.csv"))
        .query(&[
            ("createdFrom", second_came.as_str()),
            ("createdBefore", third_came.as_str()),
        ])
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .expect("an answer");
    let csv = response.text().await.expect("a body");
    assert_eq!(csv.lines().count(), 2, "{csv}");
    assert!(csv.contains(",second@uni.test,"), "{csv}");
}
