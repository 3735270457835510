//! The authorisation matrix, walked into nested selections: every object type, reached
//! through every path the schema allows from every root query (to a depth that goes from a
//! user to their organisation, its members and back), answers each caller only with users and
//! organisations in that caller's scope. The selections come from the schema itself, so a new
//! field or type is walked without a change here. Subscription payloads are checked too: a
//! user leaving a subscriber's organisation does not bring the new one's roster with them.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use entity::role::Role;
use serde_json::{Value, json};

use crate::access::{CALLERS, Caller, World, world};
use crate::helpers::{TestApp, TestUser, error_code, on_both_databases};

on_both_databases!(
    every_path_to_a_user_or_organisation_stays_in_the_callers_scope,
    a_subscription_payload_about_a_user_who_left_shows_nothing_of_where_they_went,
);

/// How many object levels below a root field the walk goes: Query → UserConnection → User →
/// Organisation → UserConnection → User → Organisation.
const DEPTH: usize = 6;

const SCHEMA: &str = r#"{ __schema { queryType { name } types { name kind fields {
    name
    args { name defaultValue type { kind name ofType { kind name ofType { kind name } } } }
    type { kind name ofType { kind name ofType { kind name ofType { kind name } } } }
} } } }"#;

struct Field {
    name: String,
    /// The named type it returns, and whether that is an object.
    returns: String,
    object: bool,
    /// Arguments without which it cannot be asked (non-null, no default).
    required: Vec<String>,
    takes_first: bool,
}

fn named(mut ty: &Value) -> (&str, &str) {
    while ty["name"].is_null() {
        ty = &ty["ofType"];
    }
    (
        ty["name"].as_str().unwrap_or_default(),
        ty["kind"].as_str().unwrap_or_default(),
    )
}

fn fields_by_type(schema: &Value) -> BTreeMap<String, Vec<Field>> {
    let mut types = BTreeMap::new();
    for ty in schema["types"].as_array().expect("types") {
        let Some(fields) = ty["fields"].as_array() else {
            continue;
        };
        let fields = fields
            .iter()
            .map(|field| {
                let (returns, kind) = named(&field["type"]);
                let args = field["args"].as_array().cloned().unwrap_or_default();
                Field {
                    name: field["name"].as_str().unwrap_or_default().to_owned(),
                    returns: returns.to_owned(),
                    object: kind == "OBJECT",
                    required: args
                        .iter()
                        .filter(|arg| {
                            arg["type"]["kind"] == "NON_NULL" && arg["defaultValue"].is_null()
                        })
                        .map(|arg| arg["name"].as_str().unwrap_or_default().to_owned())
                        .collect(),
                    takes_first: args.iter().any(|arg| arg["name"] == "first"),
                }
            })
            .collect();
        types.insert(ty["name"].as_str().unwrap_or_default().to_owned(), fields);
    }
    types
}

/// `__typename`, `id` where there is one, and every object field that needs no argument,
/// recursively; connections as their first 3 `nodes` (edges repeat them).
fn selection(types: &BTreeMap<String, Vec<Field>>, ty: &str, depth: usize) -> String {
    let mut selected = vec!["__typename".to_owned()];
    for field in &types[ty] {
        if field.name.starts_with("__") || !field.required.is_empty() {
            continue;
        }
        if !field.object {
            if field.name == "id" {
                selected.push("id".to_owned());
            }
            continue;
        }
        if depth == 0 || field.name == "edges" || field.name == "pageInfo" {
            continue;
        }
        let args = if field.takes_first { "(first: 3)" } else { "" };
        selected.push(format!(
            "{}{args} {{ {} }}",
            field.name,
            selection(types, &field.returns, depth - 1)
        ));
    }
    selected.join(" ")
}

/// Every user and organisation id anywhere in an answer, by `__typename`.
fn reached(value: &Value, users: &mut BTreeSet<String>, organisations: &mut BTreeSet<String>) {
    match value {
        Value::Object(object) => {
            let id = object.get("id").and_then(Value::as_str).map(str::to_owned);
            match (object.get("__typename").and_then(Value::as_str), id) {
                (Some("User"), Some(id)) => {
                    users.insert(id);
                }
                (Some("Organisation"), Some(id)) => {
                    organisations.insert(id);
                }
                _ => {}
            }
            for inner in object.values() {
                reached(inner, users, organisations);
            }
        }
        Value::Array(items) => {
            for item in items {
                reached(item, users, organisations);
            }
        }
        _ => {}
    }
}

/// What `caller` may read: users, organisations.
fn scope(world: &World, caller: Caller) -> (BTreeSet<String>, BTreeSet<String>) {
    let a = BTreeSet::from([world.org_a.to_string()]);
    let b = BTreeSet::from([world.org_b.to_string()]);
    match caller {
        Caller::Admin => (world.all_users.clone(), a.union(&b).cloned().collect()),
        Caller::Member | Caller::Lecturer | Caller::OrgAdminOfTarget => {
            (world.users_of_a.clone(), a)
        }
        Caller::OrgAdminElsewhere => (world.users_of_b.clone(), b),
        Caller::Anonymous | Caller::Deactivated => (BTreeSet::new(), BTreeSet::new()),
    }
}

async fn every_path_to_a_user_or_organisation_stays_in_the_callers_scope(app: TestApp) {
    let world = world(&app).await;
    let schema = app.query(SCHEMA, json!({})).await["__schema"].clone();
    let types = fields_by_type(&schema);
    let query_type = schema["queryType"]["name"].as_str().expect("a query type");
    // Values for the root fields that need an id: a user, an organisation, a run of each side.
    let user_in_b = world.users_of_b.iter().next().expect("a user in B").clone();
    let user_in_a = world.users_of_a.iter().next().expect("a user in A").clone();
    let ids_for = |returns: &str| -> Vec<String> {
        match returns {
            "User" => vec![user_in_a.clone(), user_in_b.clone()],
            "Organisation" | "OrganisationStats" | "OrganisationWorkload" => {
                vec![world.org_a.to_string(), world.org_b.to_string()]
            }
            "SyncRun" => vec![world.sync_run.clone()],
            "BulkJob" => vec![world.bulk_job.clone()],
            other => panic!("a root field returning {other} needs an id: add its values here"),
        }
    };
    let mut documents = Vec::new();
    for field in &types[query_type] {
        let inner = if field.object {
            format!("{{ {} }}", selection(&types, &field.returns, DEPTH))
        } else {
            String::new()
        };
        match field.required.as_slice() {
            [] => documents.push(format!("{{ {}{inner} }}", field.name)),
            [argument] => {
                for id in ids_for(&field.returns) {
                    documents.push(format!("{{ {}({argument}: \"{id}\"){inner} }}", field.name));
                }
            }
            more => panic!("{} needs {more:?}: give the walk their values", field.name),
        }
    }
    let mut seen_through_organisations = 0;
    for caller in CALLERS {
        let token = world.tokens[&caller].as_deref();
        let (readable_users, readable_organisations) = scope(&world, caller);
        for document in &documents {
            let (status, body) = app.post_as(token, document, json!({})).await;
            assert!(
                status == 200 || status == 401 || status == 403,
                "{caller:?} {document}: {status} {body}"
            );
            assert!(
                body["errors"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .all(|error| error["extensions"]["code"] != "GRAPHQL_VALIDATION_FAILED"),
                "the walk's document is valid: {body}"
            );
            let (mut users, mut organisations) = (BTreeSet::new(), BTreeSet::new());
            reached(&body["data"], &mut users, &mut organisations);
            let outside: Vec<_> = users.difference(&readable_users).collect();
            assert!(
                outside.is_empty(),
                "{caller:?} reached users outside their scope {outside:?} through {document}: {body}"
            );
            let outside: Vec<_> = organisations.difference(&readable_organisations).collect();
            assert!(
                outside.is_empty(),
                "{caller:?} reached organisations outside their scope {outside:?} through {document}: {body}"
            );
            if caller == Caller::Admin && document.starts_with("{ organisations") {
                seen_through_organisations += users.len();
            }
        }
    }
    // The walk really went through organisations to their members.
    assert!(seen_through_organisations > 0, "the walk reached no member");
}

/// An organisation admin of A follows A's changes; a user of A moves to B. The payload says
/// they left, and asking for where they went answers `FORBIDDEN`, not B's members.
async fn a_subscription_payload_about_a_user_who_left_shows_nothing_of_where_they_went(
    app: TestApp,
) {
    let a = app.create_organisation("Organisation A").await;
    let b = app.create_organisation("Organisation B").await;
    let watcher = app
        .create_user(
            TestUser::new("watcher@a.test")
                .role(Role::OrgAdmin)
                .in_organisation(a.id),
        )
        .await;
    let mover = app
        .create_user(TestUser::new("mover@a.test").in_organisation(a.id))
        .await;
    app.create_user(
        TestUser::new("secret@b.test")
            .role(Role::Lecturer)
            .in_organisation(b.id),
    )
    .await;
    let mut subscriber = app
        .subscribe(
            &app.token_for(&watcher),
            "subscription { userChanged { kind previousOrganisationId user { email organisation { id name memberCount users { nodes { email role } } } } } }",
            json!({}),
        )
        .await;
    app.query(
        "mutation ($id: ID!, $org: ID) { updateUser(id: $id, input: { organisationId: $org }) { id } }",
        json!({ "id": mover.id.to_string(), "org": b.id.to_string() }),
    )
    .await;
    let payload = tokio::time::timeout(Duration::from_secs(10), subscriber.next_payload())
        .await
        .expect("the change arrives");
    let change = &payload["data"]["userChanged"];
    assert_eq!(change["user"]["email"], "mover@a.test", "{payload}");
    assert_eq!(change["previousOrganisationId"], a.id.to_string());
    assert!(change["user"]["organisation"].is_null(), "{payload}");
    assert_eq!(error_code(&payload), "FORBIDDEN", "{payload}");
    assert!(
        !payload.to_string().contains("secret@b.test"),
        "B's roster leaked: {payload}"
    );
}
