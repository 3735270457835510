//! The authorisation matrix: every root field of the schema, asked by every kind of caller,
//! has an expected outcome. The field list comes from the schema itself, so a new field
//! without a row here fails this test.

use std::collections::{BTreeMap, BTreeSet};

use entity::role::Role;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{TestApp, TestUser, on_both_databases};

on_both_databases!(every_field_answers_each_caller_as_the_access_rules_say);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Caller {
    Anonymous,
    Member,
    Lecturer,
    OrgAdminOfTarget,
    OrgAdminElsewhere,
    Admin,
    Deactivated,
}

pub(crate) const CALLERS: [Caller; 7] = [
    Caller::Anonymous,
    Caller::Member,
    Caller::Lecturer,
    Caller::OrgAdminOfTarget,
    Caller::OrgAdminElsewhere,
    Caller::Admin,
    Caller::Deactivated,
];

#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Unauthenticated,
    Forbidden,
    /// Answered; for lists, exactly these ids.
    Allowed(Option<BTreeSet<String>>),
}

pub(crate) struct World {
    pub(crate) tokens: BTreeMap<Caller, Option<String>>,
    target: entity::user::Model,
    pub(crate) org_a: Uuid,
    pub(crate) org_b: Uuid,
    pub(crate) users_of_a: BTreeSet<String>,
    pub(crate) users_of_b: BTreeSet<String>,
    pub(crate) all_users: BTreeSet<String>,
    invitation_in_a: String,
    invitation_in_b: String,
    pub(crate) sync_run: String,
    /// A bulk job the organisation admin of A asked for.
    pub(crate) bulk_job: String,
}

pub(crate) async fn world(app: &TestApp) -> World {
    let a = app.create_organisation("Organisation A").await;
    let b = app.create_organisation("Organisation B").await;
    let in_a =
        |email: &'static str, role: Role| TestUser::new(email).role(role).in_organisation(a.id);
    let member = app.create_user(in_a("member@a.test", Role::Member)).await;
    let lecturer = app
        .create_user(in_a("lecturer@a.test", Role::Lecturer))
        .await;
    let org_admin_a = app
        .create_user(in_a("orgadmin@a.test", Role::OrgAdmin))
        .await;
    let target = app.create_user(in_a("target@a.test", Role::Member)).await;
    let deactivated = app.create_user(in_a("gone@a.test", Role::Lecturer)).await;
    let org_admin_b = app
        .create_user(
            TestUser::new("orgadmin@b.test")
                .role(Role::OrgAdmin)
                .in_organisation(b.id),
        )
        .await;
    let member_b = app
        .create_user(TestUser::new("member@b.test").in_organisation(b.id))
        .await;
    let deactivated_token = app.token_for(&deactivated);
    app.deactivate(&deactivated).await;
    let invitation_in_a = app
        .invite("invited@a.test", Role::Lecturer, Some(a.id))
        .await;
    let invitation_in_b = app.invite("invited@b.test", Role::Member, Some(b.id)).await;
    let sync_run = app
        .query(
            "mutation { syncUsers(wait: true) { id status } }",
            json!({}),
        )
        .await;
    assert_eq!(sync_run["syncUsers"]["status"], "SUCCEEDED");

    let ids = |users: &[&entity::user::Model]| users.iter().map(|u| u.id.to_string()).collect();
    let users_of_a: BTreeSet<String> =
        ids(&[&member, &lecturer, &org_admin_a, &target, &deactivated]);
    let users_of_b: BTreeSet<String> = ids(&[&org_admin_b, &member_b]);
    let mut all_users = users_of_a.clone();
    all_users.extend(users_of_b.iter().cloned());
    all_users.insert(app.admin.id.to_string());

    let bulk_job = userhub::service::bulk::start(
        &app.services,
        &userhub::auth::Actor {
            user: org_admin_a.clone(),
            session_id: None,
        },
        &userhub::service::Origin::cli(),
        userhub::service::bulk::BulkAction::Suspend,
        userhub::service::bulk::Targets::Ids(vec![target.id]),
        true,
    )
    .await
    .expect("a bulk job")
    .id
    .to_string();

    World {
        bulk_job,
        tokens: BTreeMap::from([
            (Caller::Anonymous, None),
            (Caller::Member, Some(app.token_for(&member))),
            (Caller::Lecturer, Some(app.token_for(&lecturer))),
            (Caller::OrgAdminOfTarget, Some(app.token_for(&org_admin_a))),
            (Caller::OrgAdminElsewhere, Some(app.token_for(&org_admin_b))),
            (Caller::Admin, Some(app.admin_token.clone())),
            (Caller::Deactivated, Some(deactivated_token)),
        ]),
        target,
        org_a: a.id,
        org_b: b.id,
        users_of_a,
        users_of_b,
        all_users,
        invitation_in_a: invitation_in_a.id.to_string(),
        invitation_in_b: invitation_in_b.id.to_string(),
        sync_run: sync_run["syncUsers"]["id"].as_str().expect("id").to_owned(),
    }
}

/// Every root field: the operation that exercises it, how to read the ids it returned, and
/// what each caller must get.
/// A row of the matrix: the operation, how to read the ids it returned, each caller's outcome.
type Row = (Operation, IdsOf, BTreeMap<Caller, Outcome>);
type QueryRow = (String, IdsOf, BTreeMap<Caller, Outcome>);
type IdsOf = fn(&Value) -> BTreeSet<String>;
type Operation = Box<dyn Fn(&Fresh) -> String>;

/// What a mutation may change, made anew for each call so that one caller's success does not
/// decide the next caller's outcome.
struct Fresh {
    user_in_a: Uuid,
    /// An activity allocated to `user_in_a`.
    activity_in_a: Uuid,
    empty_organisation: Uuid,
    invitation_in_a: Uuid,
    n: usize,
}

fn matrix(world: &World) -> BTreeMap<&'static str, Row> {
    use Caller::*;
    use Outcome::*;
    let none: fn(&Value) -> BTreeSet<String> = |_| BTreeSet::new();
    let user_ids: fn(&Value) -> BTreeSet<String> = |data| {
        data["users"]["nodes"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|user| user["id"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    // The first cell of each line after the header: the user's id.
    let exported_ids: fn(&Value) -> BTreeSet<String> = |data| {
        data["exportUsers"]
            .as_str()
            .unwrap_or_default()
            .lines()
            .skip(1)
            .filter_map(|line| line.split(',').next())
            .map(str::to_owned)
            .collect()
    };
    let organisation_ids: fn(&Value) -> BTreeSet<String> = |data| {
        data["organisations"]["nodes"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|org| org["name"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    let invitation_ids: fn(&Value) -> BTreeSet<String> = |data| {
        data["invitations"]["nodes"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|invitation| invitation["id"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    let only = |ids: &BTreeSet<String>| Allowed(Some(ids.clone()));
    let names = |names: &[&str]| Allowed(Some(names.iter().map(|n| n.to_string()).collect()));
    let signed_in_only = |outcome: Outcome| {
        BTreeMap::from([
            (Anonymous, Unauthenticated),
            (Member, outcome.clone()),
            (Lecturer, outcome.clone()),
            (OrgAdminOfTarget, outcome.clone()),
            (OrgAdminElsewhere, outcome.clone()),
            (Admin, outcome),
            (Deactivated, Forbidden),
        ])
    };
    let mut in_a_only = signed_in_only(Allowed(None));
    in_a_only.insert(OrgAdminElsewhere, Forbidden);
    let mut admins_only = signed_in_only(Forbidden);
    admins_only.insert(Admin, Allowed(None));
    let mut managers_of_a = signed_in_only(Forbidden);
    managers_of_a.insert(OrgAdminOfTarget, Allowed(None));
    managers_of_a.insert(Admin, Allowed(None));
    // Bulk operations answer every manager; each user is then checked on its own (an org admin
    // elsewhere gets a job of refusals, without names).
    let mut managers = managers_of_a.clone();
    managers.insert(OrgAdminElsewhere, Allowed(None));

    // Each caller's users: what `users` lists and `exportUsers` writes.
    let users_in_scope = BTreeMap::from([
        (Anonymous, Unauthenticated),
        (Member, only(&world.users_of_a)),
        (Lecturer, only(&world.users_of_a)),
        (OrgAdminOfTarget, only(&world.users_of_a)),
        (OrgAdminElsewhere, only(&world.users_of_b)),
        (Admin, only(&world.all_users)),
        (Deactivated, Forbidden),
    ]);
    let one = |id: &String| BTreeSet::from([id.clone()]);
    let queries: BTreeMap<&'static str, QueryRow> = BTreeMap::from([
        (
            "syncStatus",
            (
                "{ syncStatus { inSync } }".to_owned(),
                none,
                admins_only.clone(),
            ),
        ),
        (
            "bulkJob",
            (
                format!("{{ bulkJob(id: \"{}\") {{ status }} }}", world.bulk_job),
                none,
                managers_of_a.clone(),
            ),
        ),
        (
            "bulkJobProgress",
            (
                format!(
                    "subscription {{ bulkJobProgress(id: \"{}\") {{ status }} }}",
                    world.bulk_job
                ),
                none,
                managers_of_a.clone(),
            ),
        ),
        (
            "syncRun",
            (
                format!("{{ syncRun(id: \"{}\") {{ status }} }}", world.sync_run),
                none,
                admins_only.clone(),
            ),
        ),
        (
            "invitations",
            (
                "{ invitations { totalCount nodes { id } } }".to_owned(),
                invitation_ids,
                BTreeMap::from([
                    (Anonymous, Unauthenticated),
                    (Member, Forbidden),
                    (Lecturer, Forbidden),
                    (OrgAdminOfTarget, only(&one(&world.invitation_in_a))),
                    (OrgAdminElsewhere, only(&one(&world.invitation_in_b))),
                    (
                        Admin,
                        only(&BTreeSet::from([
                            world.invitation_in_a.clone(),
                            world.invitation_in_b.clone(),
                        ])),
                    ),
                    (Deactivated, Forbidden),
                ]),
            ),
        ),
        (
            "me",
            (
                "{ me { id } }".to_owned(),
                none,
                signed_in_only(Allowed(None)),
            ),
        ),
        (
            "userChangeCursor",
            (
                "{ userChangeCursor }".to_owned(),
                none,
                signed_in_only(Allowed(None)),
            ),
        ),
        (
            "user",
            (
                format!("{{ user(id: \"{}\") {{ id }} }}", world.target.id),
                none,
                in_a_only.clone(),
            ),
        ),
        (
            "organisation",
            (
                format!(
                    "{{ organisation(id: \"{}\") {{ id users {{ totalCount }} }} }}",
                    world.org_a
                ),
                none,
                in_a_only.clone(),
            ),
        ),
        (
            "users",
            (
                "{ users(first: 100) { totalCount nodes { id } } }".to_owned(),
                user_ids,
                users_in_scope.clone(),
            ),
        ),
        (
            "organisationStats",
            (
                format!(
                    "{{ organisationStats(id: \"{}\") {{ members }} }}",
                    world.org_a
                ),
                none,
                managers_of_a.clone(),
            ),
        ),
        (
            "organisationWorkload",
            (
                format!(
                    "{{ organisationWorkload(id: \"{}\") {{ allocatedHours }} }}",
                    world.org_a
                ),
                none,
                managers_of_a.clone(),
            ),
        ),
        (
            "exportUsers",
            (
                "{ exportUsers }".to_owned(),
                exported_ids,
                users_in_scope.clone(),
            ),
        ),
        (
            "organisations",
            (
                "{ organisations { totalCount nodes { name } } }".to_owned(),
                organisation_ids,
                BTreeMap::from([
                    (Anonymous, Unauthenticated),
                    (Member, names(&["Organisation A"])),
                    (Lecturer, names(&["Organisation A"])),
                    (OrgAdminOfTarget, names(&["Organisation A"])),
                    (OrgAdminElsewhere, names(&["Organisation B"])),
                    (Admin, names(&["Organisation A", "Organisation B"])),
                    (Deactivated, Forbidden),
                ]),
            ),
        ),
        (
            "auditLog",
            (
                "{ auditLog { totalCount } }".to_owned(),
                none,
                admins_only.clone(),
            ),
        ),
        // Subscriptions are asked over WebSocket (`subscription_outcome`).
        (
            "userChanged",
            (
                format!(
                    r#"subscription {{ userChanged(organisationId: "{}") {{ kind }} }}"#,
                    world.org_a
                ),
                none,
                in_a_only.clone(),
            ),
        ),
        (
            "organisationStatsChanged",
            (
                format!(
                    r#"subscription {{ organisationStatsChanged(id: "{}") {{ members }} }}"#,
                    world.org_a
                ),
                none,
                managers_of_a.clone(),
            ),
        ),
        (
            "syncProgress",
            (
                "subscription { syncProgress { run { id } } }".to_owned(),
                none,
                admins_only.clone(),
            ),
        ),
    ]);
    let mut rows: BTreeMap<&'static str, Row> = queries
        .into_iter()
        .map(|(field, (operation, ids_of, expected))| {
            let fixed: Operation = Box::new(move |_| operation.clone());
            (field, (fixed, ids_of, expected))
        })
        .collect();

    let on_user = |mutation: &'static str, input: &'static str| -> Operation {
        Box::new(move |fresh: &Fresh| {
            format!(
                "mutation {{ {mutation}(id: \"{}\"{input}) {{ id }} }}",
                fresh.user_in_a
            )
        })
    };
    let on_organisation = |mutation: &'static str, input: &'static str| -> Operation {
        Box::new(move |fresh: &Fresh| {
            let input = input.replace("{n}", &fresh.n.to_string());
            format!(
                "mutation {{ {mutation}(id: \"{}\"{input}) {{ id }} }}",
                fresh.empty_organisation
            )
        })
    };
    let create: Operation = Box::new(|fresh: &Fresh| {
        format!(
            "mutation {{ createOrganisation(input: {{ name: \"New {}\" }}) {{ id }} }}",
            fresh.n
        )
    });
    let org_a = world.org_a;
    let invite = move |mutation: &'static str, wrap: bool| -> Operation {
        Box::new(move |fresh: &Fresh| {
            let input = format!(
                "{{ email: \"invitee{}@a.test\", role: MEMBER, organisationId: \"{org_a}\" }}",
                fresh.n
            );
            if wrap {
                format!("mutation {{ {mutation}(inputs: [{input}]) {{ email error {{ code }} }} }}")
            } else {
                format!("mutation {{ {mutation}(input: {input}) {{ id }} }}")
            }
        })
    };
    // A dry run: the matrix asks who may ask, not what a run does.
    let bulk = |mutation: &'static str, extra: &'static str| -> Operation {
        Box::new(move |fresh: &Fresh| {
            format!(
                r#"mutation {{ {mutation}(targets: {{ ids: ["{}"] }}{extra}, dryRun: true) {{ id }} }}"#,
                fresh.user_in_a
            )
        })
    };
    let revoke: Operation = Box::new(|fresh: &Fresh| {
        format!(
            "mutation {{ revokeInvitation(id: \"{}\") {{ status }} }}",
            fresh.invitation_in_a
        )
    });
    rows.extend([
        (
            "syncUsers",
            (
                Box::new(|_: &Fresh| "mutation { syncUsers(wait: true) { status } }".to_owned())
                    as Operation,
                none,
                admins_only.clone(),
            ),
        ),
        (
            "inviteUser",
            (invite("inviteUser", false), none, managers_of_a.clone()),
        ),
        (
            "inviteUsers",
            (invite("inviteUsers", true), none, managers_of_a.clone()),
        ),
        ("revokeInvitation", (revoke, none, managers_of_a.clone())),
        (
            "updateUser",
            (
                on_user("updateUser", r#", input: { firstName: "Renamed" }"#),
                none,
                managers_of_a.clone(),
            ),
        ),
        (
            "removeUser",
            (on_user("removeUser", ""), none, managers_of_a.clone()),
        ),
        (
            "suspendUser",
            (on_user("suspendUser", ""), none, managers_of_a.clone()),
        ),
        (
            "updateLecturerProfile",
            (
                Box::new(|fresh: &Fresh| {
                    format!(
                        r#"mutation {{ updateLecturerProfile(userId: "{}", input: {{ jobTitle: "Reader {}" }}) {{ id }} }}"#,
                        fresh.user_in_a, fresh.n
                    )
                }) as Operation,
                none,
                managers_of_a.clone(),
            ),
        ),
        (
            "suspendUsers",
            (bulk("suspendUsers", ""), none, managers.clone()),
        ),
        (
            "unsuspendUsers",
            (bulk("unsuspendUsers", ""), none, managers.clone()),
        ),
        (
            "removeUsers",
            (bulk("removeUsers", ""), none, managers.clone()),
        ),
        (
            "updateUsers",
            (
                bulk("updateUsers", ", input: { role: MEMBER }"),
                none,
                managers.clone(),
            ),
        ),
        (
            "importUsers",
            (
                Box::new(|fresh: &Fresh| {
                    format!(
                        r#"mutation {{ importUsers(csv: "email\nimported{}@a.test\n", dryRun: true) {{ id }} }}"#,
                        fresh.n
                    )
                }) as Operation,
                none,
                managers.clone(),
            ),
        ),
        (
            "allocateActivity",
            (
                Box::new(|fresh: &Fresh| {
                    format!(
                        r#"mutation {{ allocateActivity(userId: "{}", input: {{ academicYear: "2026/27", kind: TEACHING, name: "Seminar {}", hours: 5 }}) {{ activity {{ id }} }} }}"#,
                        fresh.user_in_a, fresh.n
                    )
                }) as Operation,
                none,
                managers_of_a.clone(),
            ),
        ),
        (
            "updateActivity",
            (
                Box::new(|fresh: &Fresh| {
                    format!(
                        r#"mutation {{ updateActivity(id: "{}", input: {{ hours: 7 }}) {{ activity {{ id }} }} }}"#,
                        fresh.activity_in_a
                    )
                }) as Operation,
                none,
                managers_of_a.clone(),
            ),
        ),
        (
            "removeActivity",
            (
                Box::new(|fresh: &Fresh| {
                    format!(
                        r#"mutation {{ removeActivity(id: "{}") {{ activity {{ id }} }} }}"#,
                        fresh.activity_in_a
                    )
                }) as Operation,
                none,
                managers_of_a.clone(),
            ),
        ),
        (
            "unsuspendUser",
            (on_user("unsuspendUser", ""), none, managers_of_a),
        ),
        ("createOrganisation", (create, none, admins_only.clone())),
        (
            "updateOrganisation",
            (
                on_organisation("updateOrganisation", r#", input: { name: "Renamed {n}" }"#),
                none,
                admins_only.clone(),
            ),
        ),
        (
            "archiveOrganisation",
            (
                on_organisation("archiveOrganisation", ""),
                none,
                admins_only,
            ),
        ),
    ]);
    rows
}

async fn mutation_fields(app: &TestApp) -> BTreeSet<String> {
    let data = app
        .query(
            "{ __schema { mutationType { fields { name } } } }",
            json!({}),
        )
        .await;
    data["__schema"]["mutationType"]["fields"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|field| field["name"].as_str().expect("name").to_owned())
        .collect()
}

async fn subscription_fields(app: &TestApp) -> BTreeSet<String> {
    let data = app
        .query(
            "{ __schema { subscriptionType { fields { name } } } }",
            json!({}),
        )
        .await;
    data["__schema"]["subscriptionType"]["fields"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|field| field["name"].as_str().expect("name").to_owned())
        .collect()
}

/// Subscribes over graphql-transport-ws as the holder of `token`: refused credentials close
/// the socket (4403), a refused subscription answers an error, an allowed one runs quietly or
/// sends its first event.
async fn subscription_outcome(app: &TestApp, token: Option<&str>, query: &str) -> Outcome {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;

    let url = app.url("/graphql").replace("http://", "ws://");
    let mut request = url.into_client_request().expect("a request");
    request.headers_mut().insert(
        "sec-websocket-protocol",
        "graphql-transport-ws".parse().expect("a header"),
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("the upgrade succeeds");
    let payload = token.map_or(
        json!({}),
        |token| json!({ "authorization": format!("Bearer {token}") }),
    );
    let messages = [
        json!({ "type": "connection_init", "payload": payload }),
        json!({ "id": "1", "type": "subscribe", "payload": { "query": query } }),
    ];
    for message in messages {
        if socket
            .send(Message::Text(message.to_string().into()))
            .await
            .is_err()
        {
            break;
        }
    }
    let code_outcome = |code: Option<&str>| match code {
        Some("UNAUTHENTICATED") => Outcome::Unauthenticated,
        Some("FORBIDDEN") => Outcome::Forbidden,
        other => panic!("unexpected error code {other:?}"),
    };
    loop {
        let Ok(message) =
            tokio::time::timeout(std::time::Duration::from_millis(400), socket.next()).await
        else {
            return Outcome::Allowed(None);
        };
        match message {
            Some(Ok(Message::Text(text))) => {
                let message: Value = serde_json::from_str(&text).expect("JSON");
                match message["type"].as_str() {
                    Some("connection_ack") => continue,
                    Some("error") => {
                        return code_outcome(message["payload"][0]["extensions"]["code"].as_str());
                    }
                    Some("next") if message["payload"].get("errors").is_some() => {
                        return code_outcome(
                            message["payload"]["errors"][0]["extensions"]["code"].as_str(),
                        );
                    }
                    Some("next") => return Outcome::Allowed(None),
                    other => panic!("unexpected message {other:?}: {message}"),
                }
            }
            Some(Ok(Message::Close(Some(frame)))) if u16::from(frame.code) == 4403 => {
                return Outcome::Forbidden;
            }
            other => panic!("unexpected: {other:?}"),
        }
    }
}

async fn root_fields(app: &TestApp) -> Vec<String> {
    let data = app
        .query(
            "{ __schema { queryType { fields { name } } mutationType { fields { name } } subscriptionType { fields { name } } } }",
            json!({}),
        )
        .await;
    ["queryType", "mutationType", "subscriptionType"]
        .iter()
        .flat_map(|kind| {
            data["__schema"][kind]["fields"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .map(|field| field["name"].as_str().expect("name").to_owned())
        .collect()
}

async fn every_field_answers_each_caller_as_the_access_rules_say(app: TestApp) {
    let world = world(&app).await;
    let matrix = matrix(&world);
    let fields = root_fields(&app).await;
    let missing: Vec<&String> = fields
        .iter()
        .filter(|f| !matrix.contains_key(f.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "fields without a row in the access matrix: {missing:?}"
    );

    let mutations = mutation_fields(&app).await;
    let subscriptions = subscription_fields(&app).await;
    let mut n = 0;
    for field in &fields {
        let (operation, ids_of, expected) = &matrix[field.as_str()];
        for caller in CALLERS {
            n += 1;
            // Only mutations get fresh things to change; queries must see the world as built.
            let fresh = if mutations.contains(field) {
                let email = format!("fresh{n}@a.test");
                let user = TestUser::new(&email).in_organisation(world.org_a);
                let user_in_a = app.create_user(user).await.id;
                let (_, activity) = userhub::service::workload::allocate(
                    &app.services,
                    userhub::auth::Requester::Operator,
                    &userhub::service::Origin::cli(),
                    user_in_a,
                    userhub::service::workload::NewActivity {
                        academic_year: "2026/27".to_owned(),
                        term: None,
                        kind: entity::role::ActivityKind::Teaching,
                        module_code: None,
                        name: "Tutorials".to_owned(),
                        hours: 10.0,
                    },
                )
                .await
                .expect("allocate an activity");
                Fresh {
                    user_in_a,
                    activity_in_a: activity.id,
                    empty_organisation: app.create_organisation(&format!("Fresh {n}")).await.id,
                    invitation_in_a: app
                        .invite(
                            &format!("pending{n}@a.test"),
                            Role::Member,
                            Some(world.org_a),
                        )
                        .await
                        .id,
                    n,
                }
            } else {
                Fresh {
                    user_in_a: Uuid::nil(),
                    activity_in_a: Uuid::nil(),
                    empty_organisation: Uuid::nil(),
                    invitation_in_a: Uuid::nil(),
                    n,
                }
            };
            let token = world.tokens[&caller].as_deref();
            if subscriptions.contains(field) {
                let outcome = subscription_outcome(&app, token, &operation(&fresh)).await;
                assert_eq!(outcome, expected[&caller], "{field} as {caller:?}");
                continue;
            }
            let (status, body) = app.post_as(token, &operation(&fresh), json!({})).await;
            let code = body["errors"][0]["extensions"]["code"].as_str();
            let outcome = match code {
                Some("UNAUTHENTICATED") => Outcome::Unauthenticated,
                Some("FORBIDDEN") => Outcome::Forbidden,
                None if status == 200 => match &expected[&caller] {
                    Outcome::Allowed(Some(_)) => Outcome::Allowed(Some(ids_of(&body["data"]))),
                    _ => Outcome::Allowed(None),
                },
                _ => panic!("{field} as {caller:?}: unexpected answer {status} {body}"),
            };
            assert_eq!(outcome, expected[&caller], "{field} as {caller:?}: {body}");
            if let (Outcome::Allowed(Some(ids)), Some(total)) = (
                &outcome,
                body["data"][field.as_str()]["totalCount"].as_u64(),
            ) {
                assert_eq!(
                    total as usize,
                    ids.len(),
                    "{field} as {caller:?}: the count matches the scope"
                );
            }
        }
    }
}
