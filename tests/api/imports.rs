//! Importing people from CSV (issue 19.1): `importUsers(csv, dryRun)` and
//! `POST /api/imports/users.csv` plan line by line (invite, update, refuse with the reason),
//! a run sends invitations through Clerk's bulk endpoint within its limits, and importing a
//! file again changes nothing.

use std::time::Duration;

use entity::role::Role;
use serde_json::{Value, json};
use userhub::clerk::emulator::BulkInvitationLimits;

use crate::helpers::{TestApp, TestUser, error_code, on_both_databases};

on_both_databases!(
    an_import_invites_updates_and_refuses_line_by_line_and_a_rerun_changes_nothing,
    an_organisation_admin_imports_into_their_own_organisation_only,
    five_thousand_lines_keep_to_clerks_bulk_limits_and_every_line_is_accounted_for,
    the_upload_route_wants_a_bearer_token_a_csv_and_a_bounded_body => small_uploads,
    a_retry_after_of_nothing_is_still_a_wait,
    clerk_refusing_one_invitation_of_a_batch_refuses_that_line_only,
    the_rate_limit_is_waited_out,
);

fn small_uploads(config: &mut userhub::config::Config) {
    config.max_import_bytes = 4 * 1024;
}

const JOB_FIELDS: &str = "id kind status dryRun total done changed unchanged refused error
    results { line email action outcome userId invitationId code message }";

const IMPORT: &str = "mutation ($csv: String!, $dry: Boolean!) { importUsers(csv: $csv, dryRun: $dry) { id kind status dryRun total done changed unchanged refused error results { line email action outcome userId invitationId code message } } }";

/// Follows a job to its end over `bulkJobProgress`; answers its last state.
async fn finished(app: &TestApp, token: &str, id: &Value) -> Value {
    crate::bulk::followed_to_its_end(app, token, JOB_FIELDS, id).await
}

/// Follows a long job to its end by asking, each time with a fresh token (a session token
/// lives a minute, and a subscription ends with it).
async fn finished_by_asking(app: &TestApp, id: &Value) -> Value {
    loop {
        let token = app.token_for(&app.admin);
        let job = app
            .query_as(
                &token,
                &format!("query ($id: ID!) {{ bulkJob(id: $id) {{ {JOB_FIELDS} }} }}"),
                json!({ "id": id }),
            )
            .await["bulkJob"]
            .clone();
        if job["status"] != "RUNNING" {
            return job;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Each line's (line, action, outcome, code).
fn lines(job: &Value) -> Vec<(i64, String, String, String)> {
    job["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|result| {
            let text = |key: &str| result[key].as_str().unwrap_or_default().to_owned();
            (
                result["line"].as_i64().unwrap_or_default(),
                text("action"),
                text("outcome"),
                text("code"),
            )
        })
        .collect()
}

fn counts(job: &Value) -> (i64, i64, i64, i64) {
    let count = |key: &str| job[key].as_i64().unwrap_or(-1);
    (
        count("total"),
        count("changed"),
        count("unchanged"),
        count("refused"),
    )
}

fn bulk_invitation_calls(app: &TestApp) -> Vec<usize> {
    app.clerk
        .emulator
        .requests()
        .into_iter()
        .filter(|(method, path, _)| method == "POST" && path.ends_with("/invitations/bulk"))
        .map(|(_, _, body)| {
            body.and_then(|body| body.as_array().map(Vec::len))
                .unwrap_or_default()
        })
        .collect()
}

async fn an_import_invites_updates_and_refuses_line_by_line_and_a_rerun_changes_nothing(
    app: TestApp,
) {
    let chemistry = app.create_organisation("Chemistry").await;
    let ada = app
        .create_user(
            TestUser::new("ada@chem.test")
                .named("Ada", "Byron")
                .role(Role::Lecturer)
                .in_organisation(chemistry.id),
        )
        .await;
    let csv = format!(
        "email,first_name,last_name,role,organisation,staff_id\r\n\
         new1@chem.test,New,One,LECTURER,chemistry,S-1\r\n\
         Ada@Chem.test,Ada,Lovelace,ORG_ADMIN,{},S-ADA\r\n\
         not-an-email,,,,,\r\n\
         new2@chem.test,,,,nowhere,\r\n\
         NEW1@chem.test,,,,,\r\n\
         new3@chem.test,,,professor,,\r\n\
         new4@chem.test,,,member,,\r\n",
        chemistry.id
    );
    let emails_before = app.clerk.emulator.sent_invitation_emails().len();

    // The plan: nothing is touched.
    let plan = app.query(IMPORT, json!({ "csv": csv, "dry": true })).await["importUsers"].clone();
    assert_eq!(
        (&plan["kind"], &plan["status"], &plan["dryRun"]),
        (&json!("import"), &json!("SUCCEEDED"), &json!(true))
    );
    let expected_plan = [
        (2, "INVITE", "WOULD_CHANGE", ""),
        (3, "UPDATE", "WOULD_CHANGE", ""),
        (4, "", "REFUSED", "BAD_USER_INPUT"),
        (5, "INVITE", "REFUSED", "BAD_USER_INPUT"),
        (6, "", "REFUSED", "CONFLICT"),
        (7, "", "REFUSED", "BAD_USER_INPUT"),
        (8, "INVITE", "WOULD_CHANGE", ""),
    ];
    let as_owned = |expected: &[(i64, &str, &str, &str)]| -> Vec<(i64, String, String, String)> {
        expected
            .iter()
            .map(|(line, action, outcome, code)| {
                (
                    *line,
                    action.to_string(),
                    outcome.to_string(),
                    code.to_string(),
                )
            })
            .collect()
    };
    assert_eq!(lines(&plan), as_owned(&expected_plan), "{plan}");
    assert_eq!(counts(&plan), (7, 3, 0, 4));
    let results = plan["results"].as_array().expect("results");
    assert_eq!(results[1]["userId"], json!(ada.id.to_string()));
    assert_eq!(results[1]["email"], "ada@chem.test");
    assert!(
        results[3]["message"]
            .as_str()
            .is_some_and(|message| message.contains("nowhere")),
        "{}",
        results[3]
    );
    assert!(
        results[4]["message"]
            .as_str()
            .is_some_and(|message| message.contains("line 2")),
        "{}",
        results[4]
    );
    assert_eq!(
        app.clerk.emulator.sent_invitation_emails().len(),
        emails_before
    );
    assert!(bulk_invitation_calls(&app).is_empty());
    let read = app
        .query(
            "query ($id: ID!) { user(id: $id) { role lastName profile { staffId } } }",
            json!({ "id": ada.id.to_string() }),
        )
        .await;
    assert_eq!(
        read["user"],
        json!({ "role": "LECTURER", "lastName": "Byron", "profile": null })
    );

    // The run: invitations through Clerk's bulk endpoint, Ada updated.
    let job = app.query(IMPORT, json!({ "csv": csv, "dry": false })).await["importUsers"].clone();
    assert_eq!(job["status"], "RUNNING");
    let done = finished(&app, &app.admin_token, &job["id"]).await;
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    let expected_run = expected_plan.map(|(line, action, outcome, code)| {
        (
            line,
            action,
            if outcome == "WOULD_CHANGE" {
                "CHANGED"
            } else {
                outcome
            },
            code,
        )
    });
    assert_eq!(lines(&done), as_owned(&expected_run), "{done}");
    assert_eq!(counts(&done), (7, 3, 0, 4));
    assert_eq!(bulk_invitation_calls(&app), [2]);
    let sent: Vec<String> = app
        .clerk
        .emulator
        .sent_invitation_emails()
        .into_iter()
        .skip(emails_before)
        .map(|(email, _)| email)
        .collect();
    assert_eq!(sent, ["new1@chem.test", "new4@chem.test"]);
    let invitations = app
        .query(
            "{ invitations(first: 10, filter: { status: PENDING }) { nodes { id email role organisation { slug } } } }",
            json!({}),
        )
        .await;
    let nodes = invitations["invitations"]["nodes"]
        .as_array()
        .expect("nodes");
    let find = |email: &str| {
        nodes
            .iter()
            .find(|node| node["email"] == email)
            .cloned()
            .unwrap_or_default()
    };
    assert_eq!(find("new1@chem.test")["role"], "LECTURER");
    assert_eq!(find("new1@chem.test")["organisation"]["slug"], "chemistry");
    assert_eq!(find("new4@chem.test")["role"], "MEMBER");
    assert_eq!(find("new4@chem.test")["organisation"], Value::Null);
    let line_2 = &done["results"][0];
    assert_eq!(line_2["invitationId"], find("new1@chem.test")["id"]);
    let read = app
        .query(
            "query ($id: ID!) { user(id: $id) { role firstName lastName organisation { slug } profile { staffId } } }",
            json!({ "id": ada.id.to_string() }),
        )
        .await;
    assert_eq!(
        read["user"],
        json!({ "role": "ORG_ADMIN", "firstName": "Ada", "lastName": "Lovelace",
                "organisation": { "slug": "chemistry" }, "profile": { "staffId": "S-ADA" } })
    );
    let clerk_ada = app.clerk.emulator.user(&ada.clerk_id).expect("in Clerk");
    assert_eq!(clerk_ada.last_name.as_deref(), Some("Lovelace"));
    let audit = app
        .query(
            "query ($id: String!) { auditLog(first: 10, filter: { subjectId: $id }) { nodes { action } } }",
            json!({ "id": ada.id.to_string() }),
        )
        .await;
    let actions: Vec<&str> = audit["auditLog"]["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .filter_map(|node| node["action"].as_str())
        .collect();
    assert!(actions.contains(&"user.role_changed"), "{actions:?}");
    assert!(actions.contains(&"user.profile_updated"), "{actions:?}");

    // Again: nothing changes, and Clerk is not asked.
    let again = app.query(IMPORT, json!({ "csv": csv, "dry": false })).await["importUsers"].clone();
    let again = finished(&app, &app.admin_token, &again["id"]).await;
    assert_eq!(counts(&again), (7, 0, 3, 4), "{again}");
    let unchanged: Vec<i64> = lines(&again)
        .into_iter()
        .filter(|(_, _, outcome, _)| outcome == "UNCHANGED")
        .map(|(line, ..)| line)
        .collect();
    assert_eq!(unchanged, [2, 3, 8]);
    assert_eq!(again["results"][0]["message"], "already invited");
    assert_eq!(bulk_invitation_calls(&app), [2]);

    // A file that is not an import is refused whole, with the reason.
    for (csv, expected) in [
        ("", "empty"),
        ("name,role\nAda,LECTURER\n", "`email`"),
        ("email\n\"open@chem.test\n", "line 2"),
    ] {
        let body = app
            .graphql(IMPORT, json!({ "csv": csv, "dry": true }))
            .await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
        assert!(
            body["errors"][0]["message"]
                .as_str()
                .is_some_and(|message| message.contains(expected)),
            "{body}"
        );
    }
}

async fn an_organisation_admin_imports_into_their_own_organisation_only(app: TestApp) {
    let physics = app.create_organisation("Physics").await;
    let biology = app.create_organisation("Biology").await;
    let head = app
        .create_user(
            TestUser::new("head@physics.test")
                .role(Role::OrgAdmin)
                .in_organisation(physics.id),
        )
        .await;
    let theirs = app
        .create_user(
            TestUser::new("l1@physics.test")
                .role(Role::Lecturer)
                .in_organisation(physics.id),
        )
        .await;
    app.create_user(
        TestUser::new("bio@biology.test")
            .role(Role::Lecturer)
            .in_organisation(biology.id),
    )
    .await;
    let token = app.token_for(&head);
    let csv = "email,role,organisation_slug,staff_id\n\
               new@physics.test,,,\n\
               l1@physics.test,,,P-1\n\
               other@biology.test,,biology,\n\
               boss@physics.test,ADMIN,,\n\
               l1@physics.test,,,\n\
               l1b@physics.test,LECTURER,biology,\n";
    let plan = app
        .query_as(&token, IMPORT, json!({ "csv": csv, "dry": true }))
        .await["importUsers"]
        .clone();
    assert_eq!(
        lines(&plan),
        [
            (2, "INVITE", "WOULD_CHANGE", ""),
            (3, "UPDATE", "WOULD_CHANGE", ""),
            (4, "INVITE", "REFUSED", "FORBIDDEN"),
            (5, "INVITE", "REFUSED", "FORBIDDEN"),
            (6, "", "REFUSED", "CONFLICT"),
            (7, "INVITE", "REFUSED", "FORBIDDEN"),
        ]
        .map(|(line, action, outcome, code)| (
            line,
            action.to_owned(),
            outcome.to_owned(),
            code.to_owned()
        )),
        "{plan}"
    );
    let job = app
        .query_as(&token, IMPORT, json!({ "csv": csv, "dry": false }))
        .await["importUsers"]
        .clone();
    let done = finished(&app, &token, &job["id"]).await;
    assert_eq!(counts(&done), (6, 2, 0, 4), "{done}");
    let invitation = app
        .query_as(
            &token,
            "{ invitations(first: 5) { nodes { email role organisation { id } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        invitation["invitations"]["nodes"],
        json!([{ "email": "new@physics.test", "role": "LECTURER",
                 "organisation": { "id": physics.id.to_string() } }])
    );
    let read = app
        .query_as(
            &token,
            "query ($id: ID!) { user(id: $id) { profile { staffId } } }",
            json!({ "id": theirs.id.to_string() }),
        )
        .await;
    assert_eq!(read["user"]["profile"]["staffId"], "P-1");
    // The organisation admin's job is theirs and the admins', not another organisation
    // admin's.
    let other_head = app
        .create_user(
            TestUser::new("head@biology.test")
                .role(Role::OrgAdmin)
                .in_organisation(biology.id),
        )
        .await;
    let body = app
        .graphql_as(
            Some(&app.token_for(&other_head)),
            "query ($id: ID!) { bulkJob(id: $id) { id } }",
            json!({ "id": job["id"] }),
        )
        .await;
    assert_eq!(error_code(&body), "FORBIDDEN", "{body}");
}

async fn five_thousand_lines_keep_to_clerks_bulk_limits_and_every_line_is_accounted_for(
    app: TestApp,
) {
    // Clerk's limits, with a one-second window instead of an hour. Whether the import reaches
    // the rate depends on the machine's speed: `the_rate_limit_is_waited_out` proves that part.
    let limits = BulkInvitationLimits {
        per_call: 10,
        calls: 25,
        window: Duration::from_secs(1),
    };
    app.clerk.emulator.set_bulk_invitation_limits(limits);
    let maths = app.create_organisation("Mathematics").await;
    let mut existing = Vec::new();
    for n in 0..20 {
        existing.push(
            app.create_user(
                TestUser::new(Box::leak(format!("staff{n}@maths.test").into_boxed_str()))
                    .role(Role::Lecturer)
                    .in_organisation(maths.id),
            )
            .await,
        );
    }
    let mut csv = String::from("email,first_name,last_name,role,organisation_slug,staff_id\n");
    let mut expected = Vec::new();
    for n in 0..5_000 {
        let line = n + 2;
        if n < 20 {
            csv.push_str(&format!(
                "staff{n}@maths.test,Staff,Number {n},LECTURER,mathematics,M-{n}\n"
            ));
            expected.push((line, "UPDATE", "CHANGED"));
        } else if n % 250 == 0 {
            csv.push_str(&format!("broken-{n}-at-nowhere,,,,,\n"));
            expected.push((line, "", "REFUSED"));
        } else {
            csv.push_str(&format!(
                "person{n}@students.test,Person,{n},LECTURER,mathematics,\n"
            ));
            expected.push((line, "INVITE", "CHANGED"));
        }
    }
    let invited = expected
        .iter()
        .filter(|(_, action, _)| *action == "INVITE")
        .count();
    let refused = expected.len() - invited - 20;
    let token = bearer(&app.token_for(&app.admin));
    let (status, job) = upload(&app, "", ("authorization", &token), "text/csv", csv.clone()).await;
    assert_eq!(status, 202, "{job}");
    assert_eq!(job["status"], "RUNNING", "{job}");
    assert_eq!(job["total"], 5_000);
    let done = finished_by_asking(&app, &job["id"]).await;
    assert_eq!(done["status"], "SUCCEEDED", "{}", done["error"]);
    assert_eq!(
        counts(&done),
        (5_000, (invited + 20) as i64, 0, refused as i64)
    );
    let got: Vec<(i64, String, String)> = lines(&done)
        .into_iter()
        .map(|(line, action, outcome, _)| (line, action, outcome))
        .collect();
    let want: Vec<(i64, String, String)> = expected
        .iter()
        .map(|(line, action, outcome)| (*line as i64, action.to_string(), outcome.to_string()))
        .collect();
    assert_eq!(got, want);
    assert!(
        done["results"]
            .as_array()
            .expect("results")
            .iter()
            .filter(|result| result["outcome"] == "REFUSED")
            .all(|result| result["code"] == "BAD_USER_INPUT" && result["message"].is_string())
    );
    // Clerk's limits held: no call over ten, every call within the rate (the emulator
    // answered the rest 429 and they were sent again after the wait).
    let calls = bulk_invitation_calls(&app);
    assert!(
        calls.iter().all(|&size| (1..=10).contains(&size)),
        "{calls:?}"
    );
    let usage = app.clerk.emulator.bulk_invitation_usage();
    assert_eq!(calls.len(), invited.div_ceil(10) + usage.rate_limited);
    assert_eq!(
        app.clerk
            .emulator
            .sent_invitation_emails()
            .iter()
            .filter(|(email, _)| email.ends_with("@students.test"))
            .count(),
        invited
    );
    let total = app
        .query_as(
            &app.token_for(&app.admin),
            "{ invitations(first: 1, filter: { status: PENDING }) { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(total["invitations"]["totalCount"], invited);

    // The same file again: every line accounted for, nothing changed, Clerk not asked.
    let calls_before = bulk_invitation_calls(&app).len();
    let token = bearer(&app.token_for(&app.admin));
    let (status, again) = upload(
        &app,
        "",
        ("authorization", &token),
        "text/csv; charset=utf-8",
        csv,
    )
    .await;
    assert_eq!(status, 202, "{again}");
    let again = finished_by_asking(&app, &again["id"]).await;
    assert_eq!(
        counts(&again),
        (5_000, 0, (invited + 20) as i64, refused as i64)
    );
    assert_eq!(bulk_invitation_calls(&app).len(), calls_before);
}

/// Posts `body` to the upload route: `query` after its path, a header of `(name, value)`.
async fn upload(
    app: &TestApp,
    query: &str,
    header: (&str, &str),
    content_type: &str,
    body: impl Into<reqwest::Body>,
) -> (u16, Value) {
    let response = app
        .client
        .post(app.url(&format!("/api/imports/users.csv{query}")))
        .header(header.0, header.1)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .expect("an answer");
    let status = response.status().as_u16();
    (status, response.json().await.expect("a JSON body"))
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

async fn the_upload_route_wants_a_bearer_token_a_csv_and_a_bounded_body(app: TestApp) {
    let csv = "email\nsomeone@new.test\n";
    let admin = bearer(&app.admin_token);
    let auth = ("authorization", admin.as_str());
    let code = |body: &Value| {
        body["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };

    // The session cookie is not enough: another site's form could send it.
    let cookie = format!("__session={}", app.admin_token);
    let (status, body) = upload(&app, "", ("cookie", &cookie), "text/csv", csv).await;
    assert_eq!((status, code(&body)), (401, "UNAUTHENTICATED".to_owned()));

    let lecturer = app
        .create_user(TestUser::new("lecturer@new.test").role(Role::Lecturer))
        .await;
    let theirs = bearer(&app.token_for(&lecturer));
    let (status, body) = upload(&app, "", ("authorization", &theirs), "text/csv", csv).await;
    assert_eq!((status, code(&body)), (403, "FORBIDDEN".to_owned()));

    let (status, body) = upload(&app, "", auth, "application/x-www-form-urlencoded", csv).await;
    assert_eq!(
        (status, code(&body)),
        (415, "UNSUPPORTED_MEDIA_TYPE".to_owned())
    );

    let (status, body) = upload(&app, "?dryRun=maybe", auth, "text/csv", csv).await;
    assert_eq!((status, code(&body)), (400, "BAD_REQUEST".to_owned()));

    let too_big = "email\n".to_owned() + &"x@y.test\n".repeat(500);
    let (status, body) = upload(&app, "", auth, "text/csv", too_big).await;
    assert_eq!((status, code(&body)), (413, "PAYLOAD_TOO_LARGE".to_owned()));

    let (status, body) = upload(&app, "", auth, "text/csv", vec![b'e', b'm', 0xff, 0xfe]).await;
    assert_eq!((status, code(&body)), (400, "BAD_REQUEST".to_owned()));

    // A dry run answers at once, with the plan.
    let (status, plan) = upload(&app, "?dryRun=true", auth, "text/csv", csv).await;
    assert_eq!(status, 200);
    assert_eq!(plan["dryRun"], true);
    assert_eq!(
        plan["results"],
        json!([{ "line": 2, "email": "someone@new.test", "action": "INVITE",
                 "outcome": "WOULD_CHANGE", "userId": null, "invitationId": null,
                 "code": null, "message": null }])
    );
}

async fn a_retry_after_of_nothing_is_still_a_wait(app: TestApp) {
    // Clerk rate-limiting with `Retry-After: 0`, again and again.
    app.clerk.emulator.inject(
        userhub::clerk::emulator::Fault::RateLimited {
            retry_after_seconds: 0,
        },
        10_000,
    );
    let csv = "email\nslow1@wait.test\nslow2@wait.test\n";
    let job = app.query(IMPORT, json!({ "csv": csv, "dry": false })).await["importUsers"].clone();
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let tried = bulk_invitation_calls(&app).len();
    // Four tries a call (the client's), then a second's wait (the job's): not a busy loop.
    assert!((1..=16).contains(&tried), "{tried} calls in 2.5 s");
    app.clerk.emulator.clear_faults();
    let done = finished(&app, &app.admin_token, &job["id"]).await;
    assert_eq!(counts(&done), (2, 2, 0, 0), "{done}");
}

async fn clerk_refusing_one_invitation_of_a_batch_refuses_that_line_only(app: TestApp) {
    // Known to Clerk, not yet to userhub: Clerk refuses to invite the address, and its bulk
    // call is all or nothing.
    app.create_clerk_user(TestUser::new("taken@clerk.test"));
    let csv = "email\nfirst@clerk.test\ntaken@clerk.test\nlast@clerk.test\n";
    let job = app.query(IMPORT, json!({ "csv": csv, "dry": false })).await["importUsers"].clone();
    let done = finished(&app, &app.admin_token, &job["id"]).await;
    assert_eq!(
        lines(&done),
        [
            (2, "INVITE", "CHANGED", ""),
            (3, "INVITE", "REFUSED", "BAD_USER_INPUT"),
            (4, "INVITE", "CHANGED", ""),
        ]
        .map(|(line, action, outcome, code)| (
            line,
            action.to_owned(),
            outcome.to_owned(),
            code.to_owned()
        )),
        "{done}"
    );
    assert!(
        done["results"][1]["message"]
            .as_str()
            .is_some_and(|message| message.contains("taken")),
        "{done}"
    );
    let sent: Vec<String> = app
        .clerk
        .emulator
        .sent_invitation_emails()
        .into_iter()
        .map(|(email, _)| email)
        .collect();
    assert_eq!(sent, ["first@clerk.test", "last@clerk.test"]);
}

async fn the_rate_limit_is_waited_out(app: TestApp) {
    // Two calls a window of three seconds: five calls cannot all be admitted in one.
    let window = Duration::from_secs(3);
    app.clerk
        .emulator
        .set_bulk_invitation_limits(BulkInvitationLimits {
            per_call: 10,
            calls: 2,
            window,
        });
    let mut csv = String::from("email\n");
    for n in 0..50 {
        csv.push_str(&format!("wait{n}@limits.test\n"));
    }
    let started = std::time::Instant::now();
    let job = app.query(IMPORT, json!({ "csv": csv, "dry": false })).await["importUsers"].clone();
    let done = finished_by_asking(&app, &job["id"]).await;
    let took = started.elapsed();
    assert_eq!(counts(&done), (50, 50, 0, 0), "{done}");
    let usage = app.clerk.emulator.bulk_invitation_usage();
    assert!(usage.rate_limited > 0, "{usage:?}");
    assert_eq!(bulk_invitation_calls(&app).len(), 5 + usage.rate_limited);
    // Five calls at two a window: the fifth in the third window at the earliest.
    assert!(took >= window * 2, "{took:?}");
}
