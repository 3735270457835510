//! CSV exports (issue 19.1 and 19.5): users within the caller's scope over GraphQL
//! (`exportUsers`) and as a download (`GET /api/exports/users.csv`), the audit log by date
//! range over GraphQL and as a download (`GET /api/exports/audit.csv`, admins only).

use entity::role::Role;
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestUser, on_both_databases};

on_both_databases!(
    a_users_export_holds_the_callers_scope_with_profiles_and_defused_formulas,
    a_users_export_streams_every_page_and_equals_the_graphql_answer,
    a_refused_or_malformed_export_is_a_4xx_with_a_json_body,
    the_audit_log_is_read_and_exported_by_date_range,
);

/// GETs `path` as the holder of `token`: status, content type, body.
async fn download(app: &TestApp, token: Option<&str>, path: &str) -> (u16, String, String) {
    let mut request = app.client.get(app.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("the server answers");
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (status, content_type, response.text().await.expect("a body"))
}

const USERS_HEADER: &str = "id,email,first_name,last_name,role,organisation_id,organisation_slug,is_active,is_suspended,staff_id,job_title,department,contract_fte,contract_start,contract_end,workload_target_hours,last_sign_in_at,last_active_at,created_at";

/// The lines of a CSV body, each without its CRLF; every line must end in one.
fn lines(body: &str) -> Vec<&str> {
    assert!(body.ends_with("\r\n"), "{body:?}");
    body.trim_end_matches("\r\n").split("\r\n").collect()
}

/// The first `n` cells of a line with no quoted comma among them.
fn cells(line: &str, n: usize) -> Vec<&str> {
    line.splitn(n + 1, ',').take(n).collect()
}

async fn a_users_export_holds_the_callers_scope_with_profiles_and_defused_formulas(app: TestApp) {
    let physics = app.create_organisation("Physics").await;
    let biology = app.create_organisation("Biology").await;
    let head = app
        .create_user(
            TestUser::new("head@physics.test")
                .role(Role::OrgAdmin)
                .in_organisation(physics.id),
        )
        .await;
    let lecturer = app
        .create_user(
            TestUser::new("ada@physics.test")
                .named("=HYPERLINK(\"http://evil\")", "Lovelace, Countess")
                .role(Role::Lecturer)
                .in_organisation(physics.id),
        )
        .await;
    app.create_user(TestUser::new("bio@biology.test").in_organisation(biology.id))
        .await;
    let body = app
        .graphql(
            r#"mutation ($id: ID!) { updateLecturerProfile(userId: $id, input: {
                staffId: "P-7", jobTitle: "Lecturer", contractFte: 0.5,
                contractStart: "2026-09-01", workloadTargetHours: 800 }) { id } }"#,
            json!({ "id": lecturer.id.to_string() }),
        )
        .await;
    assert!(body.get("errors").is_none(), "{body}");

    // The organisation admin: their organisation only, by email.
    let (status, content_type, csv) =
        download(&app, Some(&app.token_for(&head)), "/api/exports/users.csv").await;
    assert_eq!(status, 200, "{csv}");
    assert_eq!(content_type, "text/csv; charset=utf-8");
    let rows = lines(&csv);
    assert_eq!(rows[0], USERS_HEADER);
    let response = app
        .client
        .get(app.url("/api/exports/users.csv"))
        .bearer_auth(app.token_for(&head))
        .send()
        .await
        .expect("an answer");
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(header("x-content-type-options"), "nosniff");
    assert_eq!(header("cache-control"), "no-store");
    assert!(
        header("content-disposition").starts_with("attachment; filename=\"users-"),
        "{}",
        header("content-disposition")
    );
    assert_eq!(rows.len(), 3, "{csv}");
    assert_eq!(
        rows[1],
        format!(
            "{},ada@physics.test,\"'=HYPERLINK(\"\"http://evil\"\")\",\"Lovelace, Countess\",LECTURER,{},physics,true,false,P-7,Lecturer,,0.5,2026-09-01,,800,,,{}",
            lecturer.id,
            physics.id,
            lecturer.created_at.to_rfc3339()
        )
    );
    assert_eq!(
        cells(rows[2], 5),
        [
            head.id.to_string().as_str(),
            "head@physics.test",
            "",
            "",
            "ORG_ADMIN"
        ]
    );

    // An admin: everyone, narrowed by the same filter as `users`.
    let (status, _, csv) = download(
        &app,
        Some(&app.admin_token),
        &format!(
            "/api/exports/users.csv?organisationId={}&role=lecturer",
            physics.id
        ),
    )
    .await;
    assert_eq!(status, 200, "{csv}");
    let rows = lines(&csv);
    assert_eq!(rows.len(), 2, "{csv}");
    assert!(rows[1].starts_with(&lecturer.id.to_string()));
    let (_, _, csv) = download(&app, Some(&app.admin_token), "/api/exports/users.csv").await;
    let emails: Vec<&str> = lines(&csv)[1..]
        .iter()
        .map(|row| cells(row, 2)[1])
        .collect();
    assert_eq!(
        emails,
        [
            "ada@physics.test",
            app.admin.email.as_str(),
            "bio@biology.test",
            "head@physics.test"
        ]
    );

    // A lecturer reads their organisation, and so exports it.
    let (status, _, csv) = download(
        &app,
        Some(&app.token_for(&lecturer)),
        "/api/exports/users.csv",
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(lines(&csv).len(), 3);
}

async fn a_users_export_streams_every_page_and_equals_the_graphql_answer(app: TestApp) {
    let organisation = app.create_organisation("Large").await;
    // More than one page of 500.
    for n in 0..520 {
        let email = Box::leak(format!("user{n:04}@large.test").into_boxed_str());
        app.create_user(TestUser::new(email).in_organisation(organisation.id))
            .await;
    }
    let path = format!("/api/exports/users.csv?organisationId={}", organisation.id);
    let (status, _, csv) = download(&app, Some(&app.admin_token), &path).await;
    assert_eq!(status, 200);
    let rows = lines(&csv);
    assert_eq!(rows.len(), 521);
    let emails: Vec<String> = rows[1..]
        .iter()
        .map(|row| cells(row, 2)[1].to_owned())
        .collect();
    let expected: Vec<String> = (0..520).map(|n| format!("user{n:04}@large.test")).collect();
    assert_eq!(emails, expected, "each user once, in email order");

    let answer = app
        .query(
            "query ($org: ID) { exportUsers(filter: { organisationId: $org }) }",
            json!({ "org": organisation.id.to_string() }),
        )
        .await;
    assert_eq!(answer["exportUsers"], Value::String(csv));
}

async fn a_refused_or_malformed_export_is_a_4xx_with_a_json_body(app: TestApp) {
    let physics = app.create_organisation("Physics").await;
    let biology = app.create_organisation("Biology").await;
    let head = app
        .create_user(
            TestUser::new("head@physics.test")
                .role(Role::OrgAdmin)
                .in_organisation(physics.id),
        )
        .await;
    let head_token = app.token_for(&head);
    let cases: Vec<(Option<&str>, String, u16, &str)> = vec![
        (None, "/api/exports/users.csv".into(), 401, "UNAUTHENTICATED"),
        (
            Some("not-a-token"),
            "/api/exports/users.csv".into(),
            401,
            "UNAUTHENTICATED",
        ),
        (
            Some(&head_token),
            format!("/api/exports/users.csv?organisationId={}", biology.id),
            403,
            "FORBIDDEN",
        ),
        (
            Some(&head_token),
            "/api/exports/audit.csv".into(),
            403,
            "FORBIDDEN",
        ),
        (
            Some(&app.admin_token),
            "/api/exports/users.csv?role=dean".into(),
            400,
            "BAD_USER_INPUT",
        ),
        (
            Some(&app.admin_token),
            "/api/exports/users.csv?organisationId=nope".into(),
            400,
            "BAD_USER_INPUT",
        ),
        (
            Some(&app.admin_token),
            "/api/exports/users.csv?organisation=typo".into(),
            400,
            "BAD_REQUEST",
        ),
        (
            Some(&app.admin_token),
            "/api/exports/users.csv?isActive=maybe".into(),
            400,
            "BAD_REQUEST",
        ),
        (
            Some(&app.admin_token),
            "/api/exports/audit.csv?occurredFrom=yesterday".into(),
            400,
            "BAD_REQUEST",
        ),
        (
            Some(&app.admin_token),
            "/api/exports/audit.csv?occurredFrom=2026-12-02T00:00:00Z&occurredBefore=2026-12-01T00:00:00Z".into(),
            400,
            "BAD_USER_INPUT",
        ),
    ];
    for (token, path, status, code) in cases {
        let (got, content_type, body) = download(&app, token, &path).await;
        assert_eq!(got, status, "{path}: {body}");
        assert!(
            content_type.starts_with("application/json"),
            "{path}: {content_type}"
        );
        let body: Value = serde_json::from_str(&body).expect("a JSON body");
        assert_eq!(body["error"]["code"], code, "{path}: {body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
    }
    // Over GraphQL, the same scope.
    let body = app
        .graphql_as(
            Some(&head_token),
            "query ($org: ID) { exportUsers(filter: { organisationId: $org }) }",
            json!({ "org": biology.id.to_string() }),
        )
        .await;
    assert_eq!(crate::helpers::error_code(&body), "FORBIDDEN", "{body}");
}

async fn the_audit_log_is_read_and_exported_by_date_range(app: TestApp) {
    for name in ["First", "Second", "Third"] {
        app.create_organisation(name).await;
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let all = app
        .query(
            r#"{ auditLog(first: 100, filter: { action: "organisation.created" }) {
                totalCount nodes { occurredAt after } } }"#,
            json!({}),
        )
        .await;
    assert_eq!(all["auditLog"]["totalCount"], 3);
    // Newest first: Third, Second, First.
    let second_at = all["auditLog"]["nodes"][1]["occurredAt"]
        .as_str()
        .expect("a time")
        .to_owned();
    let third_at = all["auditLog"]["nodes"][0]["occurredAt"]
        .as_str()
        .expect("a time")
        .to_owned();
    let ranged = app
        .query(
            r#"query ($from: DateTime, $before: DateTime) {
                auditLog(filter: { action: "organisation.created", occurredFrom: $from, occurredBefore: $before }) {
                    totalCount nodes { after } } }"#,
            json!({ "from": second_at, "before": third_at }),
        )
        .await;
    assert_eq!(ranged["auditLog"]["totalCount"], 1, "{ranged}");
    assert_eq!(ranged["auditLog"]["nodes"][0]["after"]["name"], "Second");
    let from_second = app
        .query(
            r#"query ($from: DateTime) { auditLog(filter: { action: "organisation.created", occurredFrom: $from }) {
                nodes { after } } }"#,
            json!({ "from": second_at }),
        )
        .await;
    let names: Vec<&Value> = from_second["auditLog"]["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|node| &node["after"]["name"])
        .collect();
    assert_eq!(names, [&json!("Third"), &json!("Second")]);
    let backwards = app
        .graphql(
            r#"query ($from: DateTime, $before: DateTime) { auditLog(filter: { occurredFrom: $from, occurredBefore: $before }) { totalCount } }"#,
            json!({ "from": third_at, "before": second_at }),
        )
        .await;
    assert_eq!(crate::helpers::error_code(&backwards), "BAD_USER_INPUT");

    // The same range as a download.
    let path = format!(
        "/api/exports/audit.csv?action=organisation.created&occurredFrom={}&occurredBefore={}",
        urlencode(&second_at),
        urlencode(&third_at)
    );
    let (status, content_type, csv) = download(&app, Some(&app.admin_token), &path).await;
    assert_eq!(status, 200, "{csv}");
    assert_eq!(content_type, "text/csv; charset=utf-8");
    let rows = lines(&csv);
    assert_eq!(
        rows[0],
        "occurred_at,actor,source,action,subject_type,subject_id,correlation_id,before,after"
    );
    assert_eq!(rows.len(), 2, "{csv}");
    assert!(
        rows[1].contains(",organisation.created,organisation,"),
        "{}",
        rows[1]
    );
    assert!(rows[1].contains(r#""{""archivedAt"":null,"#), "{}", rows[1]);
    assert!(rows[1].contains(r#"""name"":""Second"""#), "{}", rows[1]);
}

fn urlencode(text: &str) -> String {
    text.replace(':', "%3A").replace('+', "%2B")
}
