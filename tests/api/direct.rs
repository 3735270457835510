//! The direct path (`graphql/direct.rs`, issue 18's faster uncached path): a page of users
//! written straight into JSON answers exactly what async-graphql's executor answers, for
//! random documents, variables and callers, and anything it cannot answer plainly goes down
//! the general path.

use std::sync::atomic::Ordering;

use entity::role::Role;
use serde_json::{Map, Value, json};
use userhub::config::{CacheMode, Config};

use crate::helpers::{Dice, TestApp, TestUser, ask, on_both_databases};

on_both_databases!(
    direct_answers_equal_the_executors_over_random_documents_variables_and_callers => computed,
);

/// Every answer is computed, so each ask is a run of the direct path or of the executor.
fn computed(config: &mut Config) {
    config.cache = CacheMode::Off;
    lenient(config);
}

/// Two roots of 100 users, each with most fields and its organisation's, cost more than the
/// default complexity limit; this compares answers, so both servers allow them.
fn lenient(config: &mut Config) {
    config.max_query_complexity = 50_000;
}

impl TestApp {
    fn direct_answers(&self) -> u64 {
        self.metrics.direct_answers.load(Ordering::Relaxed)
    }
}

const USER_FIELDS: [&str; 16] = [
    "id",
    "clerkId",
    "email",
    "firstName",
    "lastName",
    "fullName",
    "imageUrl",
    "role",
    "organisationId",
    "isActive",
    "isSuspended",
    "lastSignInAt",
    "createdAt",
    "updatedAt",
    "deactivatedAt",
    "__typename",
];
const ORGANISATION_FIELDS: [&str; 9] = [
    "id",
    "memberCount",
    "name",
    "slug",
    "createdAt",
    "updatedAt",
    "archivedAt",
    "isArchived",
    "__typename",
];
const PAGE_INFO_FIELDS: [&str; 5] = [
    "hasNextPage",
    "hasPreviousPage",
    "startCursor",
    "endCursor",
    "__typename",
];
const ORDERS: [&str; 4] = [
    "CREATED_AT_ASC",
    "CREATED_AT_DESC",
    "EMAIL_ASC",
    "EMAIL_DESC",
];

/// A document over `users`, with the variables it is asked with; `plannable` when the direct
/// path answers it (the rest use what it leaves to the executor: fragments, directives, a
/// field it does not plan).
struct Case {
    document: String,
    variables: Value,
    plannable: bool,
}

/// Fields of `choices`, some under an alias.
fn selection(dice: &mut Dice, choices: &[&str]) -> String {
    dice.some(choices)
        .into_iter()
        .map(|field| {
            if dice.below(5) == 0 {
                format!("a_{}: {field}", field.trim_start_matches('_'))
            } else {
                field.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn user_selection(dice: &mut Dice) -> String {
    let mut fields = selection(dice, &USER_FIELDS);
    if dice.below(2) == 0 {
        fields.push_str(&format!(
            " organisation {{ {} }}",
            selection(dice, &ORGANISATION_FIELDS)
        ));
    }
    fields
}

fn connection_selection(dice: &mut Dice) -> String {
    let mut fields = Vec::new();
    while fields.is_empty() {
        if dice.below(3) == 0 {
            fields.push("totalCount".to_owned());
        }
        if dice.below(4) == 0 {
            fields.push("__typename".to_owned());
        }
        if dice.below(3) == 0 {
            fields.push(format!(
                "pageInfo {{ {} }}",
                selection(dice, &PAGE_INFO_FIELDS)
            ));
        }
        if dice.below(2) == 0 {
            let mut edge = dice.some(&["cursor", "__typename"]).join(" ");
            if dice.below(4) != 0 {
                edge.push_str(&format!(" node {{ {} }}", user_selection(dice)));
            }
            fields.push(format!("edges {{ {edge} }}"));
        }
        if dice.below(2) == 0 {
            fields.push(format!("nodes {{ {} }}", user_selection(dice)));
        }
    }
    fields.join(" ")
}

/// A random case: one or two roots, each argument absent, written in the document or passed
/// as a variable (sometimes declared and not given); now and then a page size or a cursor that
/// is refused, and now and then a shape the direct path leaves to the executor.
fn case(dice: &mut Dice, organisation_ids: &[String], cursors: &[(String, String)]) -> Case {
    let mut definitions = Vec::new();
    let mut variables = Map::new();
    let mut roots = Vec::new();
    let mut plannable = true;
    for root in 0..=dice.below(2) {
        let mut arguments = Vec::new();
        let mut argument = |dice: &mut Dice, name: &str, ty: &str, value: Value| {
            match dice.below(3) {
                0 => {
                    // Written in the document: JSON's spelling is GraphQL's for these values,
                    // except object keys and enums.
                    let literal = match &value {
                        Value::String(text) if ty.starts_with("UserOrderBy") => text.clone(),
                        Value::Object(fields) => format!(
                            "{{ {} }}",
                            fields
                                .iter()
                                .map(|(key, value)| match (key.as_str(), value) {
                                    ("role", Value::String(role)) => format!("role: {role}"),
                                    _ => format!("{key}: {value}"),
                                })
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                        other => other.to_string(),
                    };
                    arguments.push(format!("{name}: {literal}"));
                }
                choice => {
                    let variable = format!("{name}{root}");
                    definitions.push(format!("${variable}: {ty}"));
                    arguments.push(format!("{name}: ${variable}"));
                    // A nullable variable is now and then declared and not given: null.
                    if choice == 1 || ty.ends_with('!') || dice.below(4) != 0 {
                        variables.insert(variable, value);
                    }
                }
            }
        };
        if dice.below(4) != 0 {
            let first = [1, 2, 3, 50, 100, 0, 101][dice.below(7)];
            argument(dice, "first", "Int", json!(first));
        }
        let order = ORDERS[dice.below(ORDERS.len())];
        if dice.below(3) != 0 {
            argument(dice, "orderBy", "UserOrderBy!", json!(order));
        }
        if dice.below(3) == 0 {
            let after = match dice.below(4) {
                0 => "not a cursor".to_owned(),
                _ => cursors
                    .iter()
                    .find(|(of, _)| of == order)
                    .map(|(_, cursor)| cursor.clone())
                    .unwrap_or_default(),
            };
            argument(dice, "after", "String", json!(after));
        }
        if dice.below(2) == 0 {
            let mut filter = Map::new();
            for _ in 0..=dice.below(2) {
                match dice.below(5) {
                    0 => filter.insert(
                        "role".to_owned(),
                        json!(["LECTURER", "MEMBER", "ORG_ADMIN", "ADMIN"][dice.below(4)]),
                    ),
                    1 => filter.insert(
                        "organisationId".to_owned(),
                        json!(organisation_ids[dice.below(organisation_ids.len())]),
                    ),
                    2 => filter.insert("isActive".to_owned(), json!(dice.below(2) == 0)),
                    3 => filter.insert("isSuspended".to_owned(), json!(dice.below(2) == 0)),
                    _ => filter.insert(
                        "search".to_owned(),
                        json!(["uni", "zoë", "o\"b", "nobody"][dice.below(4)]),
                    ),
                };
            }
            argument(dice, "filter", "UsersFilter", Value::Object(filter));
        }
        let mut fields = connection_selection(dice);
        match dice.below(8) {
            0 => {
                fields.push_str(" nodes { organisation { users { totalCount } } }");
                plannable = false;
            }
            1 => {
                fields = format!("... on UserConnection {{ {fields} }}");
                plannable = false;
            }
            2 => {
                fields.push_str(" totalCount @include(if: true)");
                plannable = false;
            }
            _ => {}
        }
        let arguments = if arguments.is_empty() {
            String::new()
        } else {
            format!("({})", arguments.join(", "))
        };
        roots.push(format!("r{root}: users{arguments} {{ {fields} }}"));
    }
    let definitions = if definitions.is_empty() {
        String::new()
    } else {
        format!("({})", definitions.join(", "))
    };
    Case {
        document: format!("query Page{definitions} {{ {} }}", roots.join(" ")),
        variables: Value::Object(variables),
        plannable,
    }
}

/// For random cases and callers (an admin, an organisation admin, a lecturer, a member of
/// another organisation, someone signed out), the direct path's answer equals the answer of
/// a server whose every operation goes through async-graphql, errors included; a case the
/// direct path can plan is answered by it the second time it is asked without errors.
async fn direct_answers_equal_the_executors_over_random_documents_variables_and_callers(
    app: TestApp,
) {
    let seed = std::env::var("USERHUB_PROPERTY_SEED")
        .ok()
        .and_then(|seed| seed.parse().ok())
        .unwrap_or(0xd1ec7_u64);
    let mut dice = Dice(seed);
    let executor = app
        .another_server(|config| {
            config.cache = CacheMode::Off;
            config.direct_reads = false;
            lenient(config);
        })
        .await;
    let physics = app.create_organisation("Physics").await;
    let chemistry = app.create_organisation("Chemistry \"&\" Co").await;
    let head = app
        .create_user(
            TestUser::new("head@uni.test")
                .named("Hélène", "Head")
                .role(Role::OrgAdmin)
                .in_organisation(physics.id),
        )
        .await;
    let lecturer = app
        .create_user(
            TestUser::new("lecturer@uni.test")
                .role(Role::Lecturer)
                .in_organisation(physics.id),
        )
        .await;
    let zoe = app
        .create_user(
            TestUser::new("zoe@uni.test")
                .named("Zoë", "O\"Brien\\")
                .in_organisation(physics.id),
        )
        .await;
    let chemist = app
        .create_user(TestUser::new("chemist@uni.test").in_organisation(chemistry.id))
        .await;
    app.create_user(TestUser::new("loner@uni.test").named("", "  "))
        .await;
    let closed = app.create_organisation("Closed").await;
    let gone = app
        .create_user(TestUser::new("gone@uni.test").in_organisation(closed.id))
        .await;
    for write in [
        format!("mutation {{ suspendUser(id: \"{}\") {{ id }} }}", zoe.id),
        format!("mutation {{ removeUser(id: \"{}\") {{ id }} }}", gone.id),
        format!(
            "mutation {{ archiveOrganisation(id: \"{}\") {{ id }} }}",
            closed.id
        ),
    ] {
        let answer = app.graphql(&write, json!({})).await;
        assert!(answer.get("errors").is_none(), "{write}: {answer}");
    }
    let callers = [
        app.admin_token.clone(),
        app.token_for(&head),
        app.token_for(&lecturer),
        app.token_for(&chemist),
        String::new(),
    ];
    let organisation_ids = [
        physics.id.to_string(),
        chemistry.id.to_string(),
        closed.id.to_string(),
    ];
    let mut cursors = Vec::new();
    for order in ORDERS {
        let page = app
            .graphql(
                &format!("{{ users(first: 2, orderBy: {order}) {{ pageInfo {{ endCursor }} }} }}"),
                json!({}),
            )
            .await;
        let cursor = page["data"]["users"]["pageInfo"]["endCursor"]
            .as_str()
            .unwrap_or_else(|| panic!("a cursor in {page}"))
            .to_owned();
        cursors.push((order.to_owned(), cursor));
    }

    let (mut direct, mut general) = (0, 0);
    for step in 0..200 {
        let case = case(&mut dice, &organisation_ids, &cursors);
        let token = &callers[dice.below(callers.len())];
        let expected = ask(
            &app.client,
            &executor.address,
            token,
            &case.document,
            &case.variables,
        )
        .await;
        let first = ask(
            &app.client,
            &app.address,
            token,
            &case.document,
            &case.variables,
        )
        .await;
        let answered_directly = app.direct_answers();
        let second = ask(
            &app.client,
            &app.address,
            token,
            &case.document,
            &case.variables,
        )
        .await;
        let took_direct_path = app.direct_answers() > answered_directly;
        let context = format!(
            "seed {seed}, step {step}, caller {}: {} with {}",
            callers
                .iter()
                .position(|caller| caller == token)
                .unwrap_or(0),
            case.document,
            case.variables
        );
        assert_eq!(first, expected, "{context}");
        assert_eq!(second, expected, "{context} (asked again)");
        assert!(
            !expected.to_string().contains("GRAPHQL_VALIDATION_FAILED"),
            "{context}: the generator wrote a document that does not run: {expected}"
        );
        let plain = expected.get("errors").is_none();
        assert_eq!(
            took_direct_path,
            case.plannable && plain,
            "{context}: answered directly {took_direct_path}, expected {}",
            case.plannable && plain
        );
        if took_direct_path {
            direct += 1;
        } else {
            general += 1;
        }
    }
    assert!(direct > 40, "{direct} answers of 200 took the direct path");
    eprintln!("direct path: {direct} of 200 asked twice, {general} by the executor");
}
