//! The contract with Clerk: every response the emulator gives for the calls userhub uses, and
//! every request body userhub's client sends, validate against Clerk's own OpenAPI spec
//! (Backend API 2026-05-12, vendored in tests/contract/ with its MIT licence).

use serde_json::{Map, Value, json};
use userhub::clerk::client::{CreateUser, RetryPolicy};
use userhub::clerk::emulator::{Emulator, RunningEmulator};
use userhub::clerk::{ClerkClient, IfEmailTaken};
use userhub::config::Secret;

use crate::helpers::signing_key;

const SPEC: &str = include_str!("../contract/bapi-2026-05-12.yml");

/// The spec with OpenAPI 3.0's `nullable: true` and `discriminator` rewritten as JSON Schema
/// understands them.
fn spec() -> Value {
    let mut spec: Value = serde_yaml::from_str(SPEC).expect("the spec is YAML");
    rewrite_discriminators(&mut spec);
    rewrite_nullable(&mut spec);
    spec
}

/// `oneOf` with a `discriminator` names its branch by a property: the `jsonschema` crate
/// ignores `discriminator`, so an object without that property could still match a branch
/// that leaves it optional (as the emulator's email verifications did, without `object`,
/// which real Clerk always sends). Rewritten: the property is required, is one of the
/// mapping's names, and its value selects the branch.
fn rewrite_discriminators(value: &mut Value) {
    match value {
        Value::Object(object) => {
            for child in object.values_mut() {
                rewrite_discriminators(child);
            }
            let Some(discriminator) = object.get("discriminator").cloned() else {
                return;
            };
            let (Some(property), Some(mapping)) = (
                discriminator["propertyName"].as_str(),
                discriminator["mapping"].as_object(),
            ) else {
                return;
            };
            let branches: Vec<Value> = mapping
                .iter()
                .map(|(name, target)| {
                    json!({
                        "if": { "properties": { property: { "const": name } }, "required": [property] },
                        "then": { "$ref": target },
                    })
                })
                .collect();
            let names: Vec<&String> = mapping.keys().collect();
            object.remove("discriminator");
            object.remove("oneOf");
            object.insert("required".to_owned(), json!([property]));
            object.insert(
                "properties".to_owned(),
                json!({ property: { "enum": names } }),
            );
            object.insert("allOf".to_owned(), Value::Array(branches));
        }
        Value::Array(items) => items.iter_mut().for_each(rewrite_discriminators),
        _ => {}
    }
}

fn rewrite_nullable(value: &mut Value) {
    match value {
        Value::Object(object) => {
            for child in object.values_mut() {
                rewrite_nullable(child);
            }
            if object.remove("nullable") == Some(Value::Bool(true)) {
                let original = Value::Object(std::mem::take(object));
                object.insert("anyOf".to_owned(), json!([original, { "type": "null" }]));
            }
        }
        Value::Array(items) => items.iter_mut().for_each(rewrite_nullable),
        _ => {}
    }
}

/// The operation of the spec that a concrete path and method belong to.
fn operation<'a>(spec: &'a Value, method: &str, path: &str) -> (&'a str, &'a Value) {
    let path = path.trim_start_matches("/v1");
    let paths = spec["paths"].as_object().expect("paths");
    let (template, item) = paths
        .iter()
        .filter(|(template, _)| matches_template(template, path))
        // A literal segment beats a parameter: /users/count before /users/{user_id}.
        .min_by_key(|(template, _)| template.matches('{').count())
        .unwrap_or_else(|| panic!("no path of the spec matches {path}"));
    let operation = &item[method.to_lowercase()];
    assert!(operation.is_object(), "the spec has no {method} {template}");
    (template, operation)
}

fn matches_template(template: &str, path: &str) -> bool {
    let (template, path): (Vec<&str>, Vec<&str>) =
        (template.split('/').collect(), path.split('/').collect());
    template.len() == path.len()
        && template
            .iter()
            .zip(&path)
            .all(|(t, p)| (t.starts_with('{') && t.ends_with('}') && !p.is_empty()) || t == p)
}

fn resolve<'a>(spec: &'a Value, value: &'a Value) -> &'a Value {
    match value["$ref"].as_str() {
        Some(pointer) => spec
            .pointer(pointer.trim_start_matches('#'))
            .unwrap_or_else(|| panic!("unresolved {pointer}")),
        None => value,
    }
}

/// What is wrong with `instance` against `schema`, whose `$ref`s point into the spec.
fn errors(spec: &Value, schema: &Value, instance: &Value) -> Vec<String> {
    let mut root = Map::new();
    root.insert("components".to_owned(), spec["components"].clone());
    match schema {
        Value::Object(schema) => root.extend(schema.clone()),
        other => panic!("the schema is not an object: {other}"),
    }
    let validator = jsonschema::validator_for(&Value::Object(root)).expect("a valid schema");
    validator
        .iter_errors(instance)
        .map(|error| format!("{} at {}", error, error.instance_path()))
        .take(5)
        .collect()
}

fn validate(spec: &Value, schema: &Value, instance: &Value, what: &str) {
    let errors = errors(spec, schema, instance);
    assert!(
        errors.is_empty(),
        "{what} does not match the spec: {errors:#?}\n{instance:#}"
    );
}

fn response_schema<'a>(spec: &'a Value, method: &str, path: &str, status: u16) -> &'a Value {
    let (template, operation) = operation(spec, method, path);
    let response = resolve(spec, &operation["responses"][status.to_string()]);
    let schema = &response["content"]["application/json"]["schema"];
    assert!(
        schema.is_object(),
        "the spec has no JSON body for {status} of {method} {template}"
    );
    schema
}

async fn emulator() -> RunningEmulator {
    Emulator::new("sk_test_contract", signing_key())
        .start("127.0.0.1:0".parse().expect("an address"))
        .await
        .expect("the emulator starts")
}

#[tokio::test]
async fn every_request_body_the_client_sends_matches_the_spec() {
    let spec = spec();
    let clerk = emulator().await;
    let client = ClerkClient::new(
        &clerk.api_url(),
        Secret::new("sk_test_contract"),
        RetryPolicy::default(),
    );

    let user = client
        .create_user(&CreateUser {
            email_address: vec!["ada@uni.test".to_owned()],
            first_name: Some("Ada".to_owned()),
            last_name: Some("Lovelace".to_owned()),
            public_metadata: Some(json!({ "role": "lecturer" })),
            skip_password_requirement: true,
        })
        .await
        .expect("created");
    client
        .merge_public_metadata(&user.id, json!({ "role": "admin", "organisationId": null }))
        .await
        .expect("merged");
    client
        .update_names(&user.id, Some("Augusta"), None)
        .await
        .expect("renamed");
    client
        .create_invitation(
            "new@uni.test",
            json!({ "role": "member" }),
            Some("https://app.test/welcome"),
            IfEmailTaken::Refuse,
        )
        .await
        .expect("invited");

    let requests = clerk.emulator.requests();
    let mut checked = 0;
    for (method, path, body) in &requests {
        let Some(body) = body else { continue };
        let (template, operation) = operation(&spec, method, path);
        let schema =
            &resolve(&spec, &operation["requestBody"])["content"]["application/json"]["schema"];
        validate(
            &spec,
            schema,
            body,
            &format!("the body of {method} {template}"),
        );
        checked += 1;
    }
    assert_eq!(checked, 4, "{requests:#?}");
}

#[tokio::test]
async fn every_response_of_the_emulator_matches_the_spec() {
    let spec = spec();
    let clerk = emulator().await;
    let http = reqwest::Client::new();
    let api = clerk.api_url();
    let call = |method: reqwest::Method, path: String, body: Option<Value>| {
        let mut request = http
            .request(method.clone(), format!("{api}{path}"))
            .bearer_auth("sk_test_contract");
        if let Some(body) = body {
            request = request.json(&body);
        }
        async move {
            let response = request.send().await.expect("the emulator answers");
            let status = response.status().as_u16();
            (
                method,
                path,
                status,
                response.json::<Value>().await.expect("a JSON body"),
            )
        }
    };
    let created = call(
        reqwest::Method::POST,
        "/users".to_owned(),
        Some(json!({ "email_address": ["grace@uni.test"], "first_name": "Grace", "public_metadata": { "role": "admin" } })),
    )
    .await;
    let id = created.3["id"].as_str().expect("an id").to_owned();
    let invited = call(
        reqwest::Method::POST,
        "/invitations".to_owned(),
        Some(json!({ "email_address": "new@uni.test", "public_metadata": { "role": "member" } })),
    )
    .await;
    let invitation = invited.3["id"].as_str().expect("an id").to_owned();

    let answers = vec![
        created,
        invited,
        call(reqwest::Method::GET, format!("/users/{id}"), None).await,
        call(
            reqwest::Method::GET,
            "/users?limit=10&order_by=%2Bcreated_at".to_owned(),
            None,
        )
        .await,
        call(reqwest::Method::GET, "/users/count".to_owned(), None).await,
        call(
            reqwest::Method::PATCH,
            format!("/users/{id}/metadata"),
            Some(json!({ "public_metadata": { "organisationId": "x" } })),
        )
        .await,
        call(
            reqwest::Method::PATCH,
            format!("/users/{id}"),
            Some(json!({ "last_name": "Hopper" })),
        )
        .await,
        call(reqwest::Method::POST, format!("/users/{id}/ban"), None).await,
        call(reqwest::Method::POST, format!("/users/{id}/unban"), None).await,
        call(
            reqwest::Method::GET,
            "/invitations?status=pending".to_owned(),
            None,
        )
        .await,
        call(
            reqwest::Method::POST,
            format!("/invitations/{invitation}/revoke"),
            None,
        )
        .await,
        call(reqwest::Method::GET, "/jwks".to_owned(), None).await,
        // Clerk's errors.
        call(reqwest::Method::GET, "/users/user_missing".to_owned(), None).await,
        call(
            reqwest::Method::POST,
            "/users".to_owned(),
            Some(json!({ "email_address": ["grace@uni.test"] })),
        )
        .await,
        call(reqwest::Method::DELETE, format!("/users/{id}"), None).await,
    ];
    let expected_statuses = [
        200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 404, 422, 200,
    ];
    for ((method, path, status, body), expected) in answers.iter().zip(expected_statuses) {
        assert_eq!(*status, expected, "{method} {path}: {body}");
        let path = path.split('?').next().unwrap_or_default();
        let schema = response_schema(&spec, method.as_str(), &format!("/v1{path}"), *status);
        validate(
            &spec,
            schema,
            body,
            &format!("the {status} answer to {method} {path}"),
        );
    }
}

#[test]
fn the_check_refuses_what_clerk_would_not_send() {
    let spec = spec();
    let user = json!({ "$ref": "#/components/schemas/User" });
    // Far from a user.
    assert!(!errors(&spec, &user, &json!({ "id": 1 })).is_empty());
    // A real shape with a required field gone, or a nullable one given a wrong type.
    let mut almost: Value = serde_json::from_str(SAMPLE_USER).expect("JSON");
    assert!(
        errors(&spec, &user, &almost).is_empty(),
        "the sample is a valid user"
    );
    almost.as_object_mut().expect("object").remove("banned");
    assert!(
        !errors(&spec, &user, &almost).is_empty(),
        "a missing required field is caught"
    );
    let mut wrong: Value = serde_json::from_str(SAMPLE_USER).expect("JSON");
    wrong["first_name"] = json!(42);
    assert!(
        !errors(&spec, &user, &wrong).is_empty(),
        "a wrong type is caught"
    );
    wrong["first_name"] = Value::Null;
    assert!(
        errors(&spec, &user, &wrong).is_empty(),
        "null is allowed where the spec says nullable"
    );
    // A `oneOf` with a discriminator: the discriminating property must be there and must
    // name a branch the rest of the object matches.
    let mut undiscriminated: Value = serde_json::from_str(SAMPLE_USER).expect("JSON");
    let verification = &mut undiscriminated["email_addresses"][0]["verification"];
    verification
        .as_object_mut()
        .expect("object")
        .remove("object");
    assert!(
        !errors(&spec, &user, &undiscriminated).is_empty(),
        "a verification without its `object` is caught"
    );
    undiscriminated["email_addresses"][0]["verification"]["object"] = json!("verification_otp");
    assert!(
        !errors(&spec, &user, &undiscriminated).is_empty(),
        "a verification that names another branch than its shape is caught"
    );
    undiscriminated["email_addresses"][0]["verification"] = Value::Null;
    assert!(
        errors(&spec, &user, &undiscriminated).is_empty(),
        "a null verification is still allowed"
    );
}

/// A user as the emulator makes one (checked against the spec above).
const SAMPLE_USER: &str = r#"{
  "id": "user_1", "object": "user", "external_id": null, "primary_email_address_id": "idn_1",
  "primary_phone_number_id": null, "primary_web3_wallet_id": null, "username": null,
  "first_name": "Ada", "last_name": null, "image_url": "https://img.clerk.com/x", "has_image": false,
  "public_metadata": {}, "private_metadata": {}, "unsafe_metadata": {},
  "email_addresses": [{ "id": "idn_1", "object": "email_address", "email_address": "ada@uni.test",
    "reserved": false, "verification": { "object": "verification_admin", "status": "verified", "strategy": "admin", "attempts": null, "expire_at": null },
    "linked_to": [], "created_at": 1, "updated_at": 1 }],
  "phone_numbers": [], "web3_wallets": [], "passkeys": [], "password_enabled": false,
  "two_factor_enabled": false, "totp_enabled": false, "backup_code_enabled": false,
  "mfa_enabled_at": null, "mfa_disabled_at": null, "external_accounts": [], "saml_accounts": [],
  "enterprise_accounts": [], "last_sign_in_at": null, "banned": false, "locked": false,
  "lockout_expires_in_seconds": null, "verification_attempts_remaining": 100, "created_at": 1,
  "updated_at": 1, "delete_self_enabled": true, "create_organization_enabled": true,
  "last_active_at": null, "legal_accepted_at": null
}"#;

#[tokio::test]
async fn the_secret_key_never_appears_in_errors_or_debug_output() {
    let secret = "sk_live_never_print_me_0123456789";
    let clerk = emulator().await;
    let client = ClerkClient::new(
        &clerk.api_url(),
        Secret::new(secret),
        RetryPolicy::default(),
    );
    assert!(!format!("{client:?}").contains(secret));
    assert!(!format!("{:?}", Secret::new(secret)).contains(secret));
    // Refused (wrong key), missing, and unreachable: none of the errors names the key.
    let refused = client
        .list_invitations(Some("pending"), 10, 0)
        .await
        .expect_err("wrong key");
    assert!(matches!(
        refused,
        userhub::clerk::ClerkFailure::Refused { status: 401, .. }
    ));
    let unreachable = ClerkClient::new(
        "http://127.0.0.1:1/v1",
        Secret::new(secret),
        RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        },
    )
    .get_user("user_x")
    .await
    .expect_err("nothing listens there");
    for error in [
        refused.to_string(),
        unreachable.to_string(),
        format!("{unreachable:?}"),
    ] {
        assert!(!error.contains(secret), "{error}");
        assert!(!error.contains("never_print_me"), "{error}");
    }
    let config = userhub::config::Config {
        clerk_secret_key: Some(Secret::new(secret)),
        ..userhub::config::Config::with_database("sqlite::memory:")
    };
    assert!(!format!("{config:?}").contains(secret));
}

#[tokio::test]
async fn the_client_lists_invitations_by_status() {
    let clerk = emulator().await;
    let client = ClerkClient::new(
        &clerk.api_url(),
        Secret::new("sk_test_contract"),
        RetryPolicy::default(),
    );
    let first = client
        .create_invitation("a@uni.test", json!({}), None, IfEmailTaken::Refuse)
        .await
        .expect("invited");
    client
        .create_invitation("b@uni.test", json!({}), None, IfEmailTaken::Refuse)
        .await
        .expect("invited");
    client.revoke_invitation(&first.id).await.expect("revoked");
    let pending = client
        .list_invitations(Some("pending"), 10, 0)
        .await
        .expect("listed");
    assert_eq!(
        pending
            .iter()
            .map(|i| i.email_address.as_str())
            .collect::<Vec<_>>(),
        ["b@uni.test"]
    );
    let all = client.list_invitations(None, 10, 0).await.expect("listed");
    assert_eq!(all.len(), 2);
    assert_eq!(all[1].status, "revoked");
}
