//! Reading organisations: one by id, pages, archived ones, their users and member counts.

use serde_json::json;

use crate::helpers::{TestApp, TestUser, error_code, on_both_databases};

on_both_databases!(
    an_organisation_is_read_by_id_with_member_count_and_users,
    organisations_page_by_name_and_leave_archived_ones_out_unless_asked,
    an_unknown_organisation_id_is_not_found,
    organisation_slugs_are_unique,
    an_organisation_with_active_users_cannot_be_archived,
);

async fn an_organisation_is_read_by_id_with_member_count_and_users(app: TestApp) {
    let org = app.create_organisation("School of Computing").await;
    app.create_user(TestUser::new("b@uni.test").in_organisation(org.id))
        .await;
    app.create_user(TestUser::new("a@uni.test").in_organisation(org.id))
        .await;
    let gone = app
        .create_user(TestUser::new("c@uni.test").in_organisation(org.id))
        .await;
    app.deactivate(&gone).await;
    app.create_user(TestUser::new("elsewhere@uni.test")).await;

    let data = app
        .query(
            r#"query($id: ID!) { organisation(id: $id) {
                id name slug isArchived memberCount
                everyone: users(orderBy: EMAIL_ASC) { totalCount nodes { email } }
                active: users(filter: { isActive: true }, orderBy: EMAIL_DESC) { totalCount nodes { email } }
            } }"#,
            json!({ "id": org.id }),
        )
        .await;

    assert_eq!(
        data["organisation"],
        json!({
            "id": org.id.to_string(),
            "name": "School of Computing",
            "slug": "school-of-computing",
            "isArchived": false,
            "memberCount": 2,
            "everyone": { "totalCount": 3, "nodes": [
                { "email": "a@uni.test" }, { "email": "b@uni.test" }, { "email": "c@uni.test" } ] },
            "active": { "totalCount": 2, "nodes": [ { "email": "b@uni.test" }, { "email": "a@uni.test" } ] },
        })
    );
}

async fn organisations_page_by_name_and_leave_archived_ones_out_unless_asked(app: TestApp) {
    for name in ["Medicine", "Law", "Arts", "History", "Engineering"] {
        app.create_organisation(name).await;
    }
    let archived = app.create_organisation("Alchemy").await;
    userhub::service::organisations::archive(
        &app.services,
        userhub::auth::Requester::Operator,
        &userhub::service::Origin::cli(),
        archived.id,
    )
    .await
    .expect("archive");

    let page = |first: i64, after: serde_json::Value, include_archived: bool| {
        let app = &app;
        async move {
            app.query(
                r#"query($first: Int, $after: String, $archived: Boolean!) {
                    organisations(first: $first, after: $after, filter: { includeArchived: $archived }) {
                        totalCount nodes { name isArchived } pageInfo { hasNextPage endCursor } } }"#,
                json!({ "first": first, "after": after, "archived": include_archived }),
            )
            .await["organisations"]
                .clone()
        }
    };

    let first = page(3, serde_json::Value::Null, false).await;
    assert_eq!(first["totalCount"], 5);
    assert_eq!(
        first["nodes"],
        json!([
            { "name": "Arts", "isArchived": false },
            { "name": "Engineering", "isArchived": false },
            { "name": "History", "isArchived": false },
        ])
    );
    assert_eq!(first["pageInfo"]["hasNextPage"], true);
    let second = page(3, first["pageInfo"]["endCursor"].clone(), false).await;
    assert_eq!(
        second["nodes"],
        json!([{ "name": "Law", "isArchived": false }, { "name": "Medicine", "isArchived": false }])
    );
    assert_eq!(second["pageInfo"]["hasNextPage"], false);

    let with_archived = page(1, serde_json::Value::Null, true).await;
    assert_eq!(with_archived["totalCount"], 6);
    assert_eq!(
        with_archived["nodes"],
        json!([{ "name": "Alchemy", "isArchived": true }])
    );
}

async fn an_unknown_organisation_id_is_not_found(app: TestApp) {
    let body = app
        .graphql(
            "query($id: ID!) { organisation(id: $id) { id } }",
            json!({ "id": uuid::Uuid::now_v7() }),
        )
        .await;
    assert_eq!(error_code(&body), "NOT_FOUND");
}

async fn organisation_slugs_are_unique(app: TestApp) {
    use userhub::auth::Requester;
    use userhub::error::AppError;
    use userhub::service::Origin;
    use userhub::service::organisations::{NewOrganisation, create};

    app.create_organisation("Music").await;
    let second = create(
        &app.services,
        Requester::Operator,
        &Origin::cli(),
        NewOrganisation {
            name: "MUSIC!".to_owned(),
            slug: None,
            standard_hours: None,
        },
    )
    .await;
    assert!(matches!(second, Err(AppError::Conflict(_))), "{second:?}");
    let bad_slug = create(
        &app.services,
        Requester::Operator,
        &Origin::cli(),
        NewOrganisation {
            name: "Dance".to_owned(),
            slug: Some("Not A Slug".to_owned()),
            standard_hours: None,
        },
    )
    .await;
    assert!(
        matches!(&bad_slug, Err(AppError::Validation { field, .. }) if field == "slug"),
        "{bad_slug:?}"
    );
}

async fn an_organisation_with_active_users_cannot_be_archived(app: TestApp) {
    use userhub::auth::Requester;
    use userhub::error::AppError;
    use userhub::service::{Origin, organisations::archive};

    let org = app.create_organisation("Astronomy").await;
    let member = app
        .create_user(TestUser::new("star@uni.test").in_organisation(org.id))
        .await;

    let refused = archive(&app.services, Requester::Operator, &Origin::cli(), org.id).await;
    assert!(
        matches!(&refused, Err(AppError::Conflict(message)) if message.contains("1 active user")),
        "{refused:?}"
    );
    let data = app
        .query(
            "query($id: ID!) { organisation(id: $id) { isArchived } }",
            json!({ "id": org.id }),
        )
        .await;
    assert_eq!(data["organisation"]["isArchived"], false);

    app.deactivate(&member).await;
    let archived = archive(&app.services, Requester::Operator, &Origin::cli(), org.id)
        .await
        .expect("archive");
    assert!(archived.archived_at.is_some());
    // Archiving again changes nothing and records nothing more.
    archive(&app.services, Requester::Operator, &Origin::cli(), org.id)
        .await
        .expect("archive again");
    let data = app
        .query(
            r#"query($id: String!) { auditLog(filter: { subjectId: $id }) { nodes { action actor source } } }"#,
            json!({ "id": org.id }),
        )
        .await;
    assert_eq!(
        data["auditLog"]["nodes"],
        json!([
            { "action": "organisation.archived", "actor": "cli", "source": "cli" },
            { "action": "organisation.created", "actor": "cli", "source": "cli" },
        ])
    );
}
