//! Session tokens: what is accepted, what is refused and how, and how a token's user is
//! found (or fetched from Clerk).

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use entity::role::Role;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use userhub::clerk::emulator::{SigningKey, TokenOptions};
use userhub::config::Config;

use crate::helpers::{TestApp, TestUser, error_code, on_both_databases, signing_key};

on_both_databases!(
    a_token_minted_by_the_emulator_works_over_http,
    refused_tokens_are_401_with_the_reason,
    the_session_cookie_is_accepted_like_a_bearer_token,
    a_user_unknown_here_is_fetched_from_clerk_on_first_request,
    a_user_clerk_does_not_know_is_unauthenticated,
    removed_and_suspended_users_are_refused,
    an_unknown_key_id_is_looked_up_in_the_jwks => refetch_keys_at_once,
    a_pem_key_verifies_tokens_without_the_network => verify_with_pem,
    unreachable_signing_keys_are_503_upstream_unavailable => keys_unreachable,
);

fn refetch_keys_at_once(config: &mut Config) {
    config.jwks_refetch_seconds = 0;
}

fn verify_with_pem(config: &mut Config) {
    config.clerk_jwt_key = Some(signing_key().public_pem().to_owned());
    // No JWKS to fall back on: the PEM must do.
    config.clerk_jwks_url = Some("http://127.0.0.1:1/jwks".to_owned());
}

fn keys_unreachable(config: &mut Config) {
    config.clerk_jwks_url = Some("http://127.0.0.1:1/.well-known/jwks.json".to_owned());
}

const ME: &str = "{ me { email role organisation { name } } }";

async fn a_token_minted_by_the_emulator_works_over_http(app: TestApp) {
    let org = app.create_organisation("Chemistry").await;
    let lecturer = app
        .create_user(
            TestUser::new("curie@uni.test")
                .role(Role::Lecturer)
                .in_organisation(org.id),
        )
        .await;
    // Minted over HTTP, as a client of the emulator would.
    let minted: Value = app
        .client
        .post(format!(
            "http://{}/__emulator/session_tokens",
            app.clerk.address
        ))
        .bearer_auth(app.clerk.emulator.secret())
        .json(&json!({ "user_id": lecturer.clerk_id }))
        .send()
        .await
        .expect("the emulator answers")
        .json()
        .await
        .expect("JSON");
    let token = minted["jwt"].as_str().expect("a jwt");
    let data = app.query_as(token, ME, json!({})).await;
    assert_eq!(
        data["me"],
        json!({ "email": "curie@uni.test", "role": "LECTURER", "organisation": { "name": "Chemistry" } })
    );
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn with_claims(app: &TestApp, claims: Value) -> String {
    app.clerk
        .emulator
        .mint_session_token(
            &app.admin.clerk_id,
            TokenOptions {
                extra_claims: claims,
                ..TokenOptions::default()
            },
        )
        .expect("a token")
}

fn unsigned(claims: &Value, alg: &str) -> String {
    let header = URL_SAFE_NO_PAD.encode(json!({ "alg": alg, "typ": "JWT" }).to_string());
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    format!("{header}.{payload}.")
}

async fn refused_tokens_are_401_with_the_reason(app: TestApp) {
    let emulator = &app.clerk.emulator;
    let claims = json!({
        "sub": app.admin.clerk_id, "iss": emulator.issuer(), "azp": "http://localhost:3000",
        "iat": now(), "nbf": now() - 5, "exp": now() + 60, "sid": "sess_x",
    });
    let other_key = SigningKey::generate().expect("a key");
    let hs256_with_the_public_key = jsonwebtoken::encode(
        &Header {
            kid: Some(emulator.signing_key().kid().to_owned()),
            ..Header::new(Algorithm::HS256)
        },
        &claims,
        &EncodingKey::from_secret(emulator.signing_key().public_pem().as_bytes()),
    )
    .expect("an HS256 token");

    let cases: Vec<(&str, String, &str)> = vec![
        (
            "expired",
            with_claims(
                &app,
                json!({ "exp": now() - 60, "iat": now() - 120, "nbf": now() - 120 }),
            ),
            "expired",
        ),
        (
            "not yet valid",
            with_claims(&app, json!({ "nbf": now() + 120 })),
            "not valid yet",
        ),
        (
            "wrong issuer",
            with_claims(&app, json!({ "iss": "https://evil.example" })),
            "issued by someone else",
        ),
        (
            "wrong azp",
            with_claims(&app, json!({ "azp": "https://evil.example" })),
            "another origin",
        ),
        (
            "no azp",
            with_claims(&app, json!({ "azp": null })),
            "another origin",
        ),
        (
            "pending session",
            with_claims(&app, json!({ "sts": "pending" })),
            "pending",
        ),
        (
            "wrong key, right kid",
            other_key
                .sign_as(emulator.signing_key().kid(), &claims)
                .expect("signed"),
            "signature is invalid",
        ),
        (
            "wrong key, unknown kid",
            other_key.sign(&claims).expect("signed"),
            "unknown key",
        ),
        ("alg none", unsigned(&claims, "none"), "malformed"),
        (
            "HS256 signed with the public key",
            hs256_with_the_public_key,
            "algorithm",
        ),
        ("not a JWT", "not-a-token".to_owned(), "malformed"),
        ("three garbage parts", "a.b.c".to_owned(), "malformed"),
    ];
    for (case, token, reason) in cases {
        let response = app
            .client
            .post(app.url("/graphql"))
            .bearer_auth(&token)
            .json(&json!({ "query": ME }))
            .send()
            .await
            .expect("answer");
        assert_eq!(response.status(), 401, "{case}");
        assert_eq!(response.headers()["www-authenticate"], "Bearer", "{case}");
        let body: Value = response.json().await.expect("JSON");
        assert_eq!(error_code(&body), "UNAUTHENTICATED", "{case}: {body}");
        let message = body["errors"][0]["message"].as_str().expect("message");
        assert!(message.contains(reason), "{case}: {message}");
        assert!(body.get("data").is_none(), "{case}");
    }
    // And the well-formed token of the same user is accepted.
    app.query_as(&app.admin_token, ME, json!({})).await;
}

async fn the_session_cookie_is_accepted_like_a_bearer_token(app: TestApp) {
    let response: Value = app
        .client
        .post(app.url("/graphql"))
        .header(
            "cookie",
            format!("theme=dark; __session={}; other=1", app.admin_token),
        )
        .json(&json!({ "query": ME }))
        .send()
        .await
        .expect("answer")
        .json()
        .await
        .expect("JSON");
    assert_eq!(response["data"]["me"]["email"], "admin@userhub.test");
}

async fn a_user_unknown_here_is_fetched_from_clerk_on_first_request(app: TestApp) {
    let org = app.create_organisation("Biology").await;
    // In Clerk, but userhub has not heard of them: their webhook has not arrived yet.
    let newcomer = app.create_clerk_user(
        TestUser::new("darwin@uni.test")
            .named("Charles", "Darwin")
            .role(Role::OrgAdmin)
            .in_organisation(org.id),
    );
    let token = app
        .clerk
        .emulator
        .mint_session_token(&newcomer.id, TokenOptions::default())
        .expect("a token");
    let data = app
        .query_as(
            &token,
            "{ me { id clerkId email fullName role organisation { name } } }",
            json!({}),
        )
        .await;
    assert_eq!(data["me"]["clerkId"], newcomer.id);
    assert_eq!(data["me"]["fullName"], "Charles Darwin");
    assert_eq!(data["me"]["role"], "ORG_ADMIN");
    assert_eq!(data["me"]["organisation"]["name"], "Biology");

    // Stored once, with its audit event, and found there on the next request.
    let trail = app
        .query(
            r#"query($id: String!) { auditLog(filter: { subjectId: $id }) { nodes { action actor source } } }"#,
            json!({ "id": data["me"]["id"] }),
        )
        .await;
    assert_eq!(
        trail["auditLog"]["nodes"],
        json!([{ "action": "user.created", "actor": "clerk", "source": "api" }])
    );
    let again = app.query_as(&token, "{ me { id } }", json!({})).await;
    assert_eq!(again["me"]["id"], data["me"]["id"]);
}

async fn a_user_clerk_does_not_know_is_unauthenticated(app: TestApp) {
    let token = app
        .clerk
        .emulator
        .mint_session_token("user_doesnotexist", TokenOptions::default())
        .expect("a token");
    let (status, body) = app.post_as(Some(&token), ME, json!({})).await;
    assert_eq!(status, 401);
    assert_eq!(error_code(&body), "UNAUTHENTICATED");
}

async fn removed_and_suspended_users_are_refused(app: TestApp) {
    let removed = app.create_user(TestUser::new("gone@uni.test")).await;
    let token = app.token_for(&removed);
    app.query_as(&token, ME, json!({})).await;
    app.deactivate(&removed).await;
    let (status, body) = app.post_as(Some(&token), ME, json!({})).await;
    assert_eq!(status, 403);
    assert_eq!(error_code(&body), "FORBIDDEN");

    let suspended = app.create_user(TestUser::new("banned@uni.test")).await;
    let banned = app
        .clerk
        .emulator
        .set_banned(&suspended.clerk_id, true)
        .expect("in Clerk");
    userhub::service::users::upsert_from_clerk(
        &app.db,
        &app.events,
        &crate::helpers::sync_origin(),
        userhub::service::users::ClerkProfile::of(&banned).expect("email"),
    )
    .await
    .expect("sync the ban");
    let (status, body) = app
        .post_as(Some(&app.token_for(&suspended)), ME, json!({}))
        .await;
    assert_eq!(status, 403);
    assert_eq!(body["errors"][0]["message"], "this account is suspended");
}

async fn an_unknown_key_id_is_looked_up_in_the_jwks(app: TestApp) {
    // The admin's token made the server fetch and cache the JWKS.
    app.query_as(&app.admin_token, ME, json!({})).await;
    // Clerk rotates its key: new tokens name a key id the cache does not hold.
    app.clerk
        .emulator
        .rotate_key(Arc::new(SigningKey::generate().expect("a key")));
    let token = app
        .clerk
        .emulator
        .mint_session_token(&app.admin.clerk_id, TokenOptions::default())
        .expect("a token");
    assert_ne!(token, app.admin_token);
    let data = app.query_as(&token, ME, json!({})).await;
    assert_eq!(data["me"]["email"], "admin@userhub.test");
    // Tokens signed with the previous key stay valid while Clerk still lists it.
    app.query_as(&app.admin_token, ME, json!({})).await;
}

async fn a_pem_key_verifies_tokens_without_the_network(app: TestApp) {
    let data = app.query_as(&app.admin_token, ME, json!({})).await;
    assert_eq!(data["me"]["role"], "ADMIN");
}

async fn unreachable_signing_keys_are_503_upstream_unavailable(app: TestApp) {
    let (status, body) = app.post_as(Some(&app.admin_token), ME, json!({})).await;
    assert_eq!(status, 503);
    assert_eq!(error_code(&body), "UPSTREAM_UNAVAILABLE");
    // Anonymous callers need no keys.
    let (status, _) = app.post_as(None, "{ __typename }", json!({})).await;
    assert_eq!(status, 200);
}

/// A server on SQLite, and a verifier of its emulator's tokens outside the server.
async fn app_and_verifier() -> (TestApp, userhub::auth::token::TokenVerifier) {
    use userhub::auth::token::{JwksSource, TokenVerifier};

    let app = crate::helpers::spawn_app(crate::helpers::Backend::Sqlite, |_| {})
        .await
        .expect("SQLite");
    let verifier = TokenVerifier::from_jwks(JwksSource {
        url: format!("{}/jwks", app.clerk.api_url()),
        bearer: Some(userhub::config::Secret::new(app.clerk.emulator.secret())),
    });
    (app, verifier)
}

#[tokio::test]
async fn the_jwks_is_not_refetched_for_every_unknown_key_id() {
    use userhub::auth::token::TokenError;

    let (app, verifier) = app_and_verifier().await;
    let verifier = verifier.with_refetch_floor(Duration::from_secs(3600));
    verifier.verify(&app.admin_token).await.expect("valid");
    app.clerk
        .emulator
        .rotate_key(Arc::new(SigningKey::generate().expect("a key")));
    let rotated = app
        .clerk
        .emulator
        .mint_session_token(&app.admin.clerk_id, TokenOptions::default())
        .expect("a token");
    // Within the floor, an unknown key id is refused without asking Clerk again.
    assert_eq!(
        verifier.verify(&rotated).await.err(),
        Some(TokenError::UnknownKey)
    );
}

#[tokio::test]
async fn simultaneous_first_requests_of_a_new_user_all_succeed() {
    let app = crate::helpers::spawn_app(crate::helpers::Backend::Sqlite, |_| {})
        .await
        .expect("SQLite");
    let newcomer = app.create_clerk_user(TestUser::new("eager@uni.test"));
    let token = app
        .clerk
        .emulator
        .mint_session_token(&newcomer.id, TokenOptions::default())
        .expect("a token");
    let requests = (0..8).map(|_| app.post_as(Some(&token), "{ me { id } }", json!({})));
    let answers = futures_util::future::join_all(requests).await;
    let ids: std::collections::BTreeSet<String> = answers
        .iter()
        .map(|(status, body)| {
            assert_eq!(*status, 200, "{body}");
            body["data"]["me"]["id"].as_str().expect("an id").to_owned()
        })
        .collect();
    assert_eq!(
        ids.len(),
        1,
        "one user, however many requests raced to create it"
    );
}

/// A verified token is remembered (no second RSA verification), but never past its expiry.
#[tokio::test]
async fn a_remembered_token_is_refused_once_it_expires() {
    use userhub::auth::token::TokenError;

    let (app, verifier) = app_and_verifier().await;
    // Expired two seconds ago: still inside the five seconds of leeway, for three seconds.
    let now = chrono::Utc::now().timestamp();
    let token = app
        .clerk
        .emulator
        .mint_session_token(
            &app.admin.clerk_id,
            TokenOptions {
                extra_claims: json!({ "exp": now - 2 }),
                ..TokenOptions::default()
            },
        )
        .expect("a token");
    let claims = verifier
        .verify(&token)
        .await
        .expect("valid within the leeway");
    assert_eq!(claims.sub, app.admin.clerk_id);
    assert_eq!(
        verifier.verify(&token).await.expect("remembered").sub,
        app.admin.clerk_id
    );
    // A token differing in one byte of its signature is not the remembered one.
    let at = token.rfind('.').expect("a signature") + 10;
    let flipped = if &token[at..=at] == "A" { "B" } else { "A" };
    let forged = format!("{}{flipped}{}", &token[..at], &token[at + 1..]);
    assert_eq!(
        verifier.verify(&forged).await.err(),
        Some(TokenError::Signature)
    );

    tokio::time::sleep(Duration::from_millis(4_100)).await;
    assert_eq!(
        verifier.verify(&token).await.err(),
        Some(TokenError::Expired)
    );
}

/// A JWKS endpoint whose answers can be made to fail or to wait, counting its requests.
struct JwksEndpoint {
    url: String,
    hits: Arc<std::sync::atomic::AtomicUsize>,
    failing: Arc<std::sync::atomic::AtomicBool>,
    delay_ms: Arc<std::sync::atomic::AtomicU64>,
}

async fn jwks_endpoint(key: &SigningKey) -> JwksEndpoint {
    use std::sync::atomic::Ordering;
    let hits = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let failing = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let delay_ms = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let jwks = json!({ "keys": [key.jwk()] });
    let (h, f, d) = (hits.clone(), failing.clone(), delay_ms.clone());
    let app = axum::Router::new().route(
        "/jwks",
        axum::routing::get(move || {
            let (h, f, d, jwks) = (h.clone(), f.clone(), d.clone(), jwks.clone());
            async move {
                h.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(d.load(Ordering::SeqCst))).await;
                if f.load(Ordering::SeqCst) {
                    (
                        axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                        axum::Json(json!({})),
                    )
                } else {
                    (axum::http::StatusCode::OK, axum::Json(jwks))
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let url = format!("http://{}/jwks", listener.local_addr().expect("an address"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    JwksEndpoint {
        url,
        hits,
        failing,
        delay_ms,
    }
}

fn token_with_kid(key: &SigningKey, kid: &str, subject: &str) -> String {
    let now = chrono::Utc::now().timestamp();
    key.sign_as(kid, &json!({ "sub": subject, "iat": now, "exp": now + 60 }))
        .expect("a token")
}

/// During a Clerk outage a failed fetch counts against the floor like a successful one, so
/// tokens naming unknown keys are refused at once instead of each trying again; and a fetch in
/// progress holds no lock, so tokens whose keys are cached do not wait for it.
#[tokio::test]
async fn a_failed_jwks_fetch_is_not_retried_within_the_floor_and_no_lock_is_held_across_a_fetch() {
    use std::sync::atomic::Ordering;
    use userhub::auth::token::{JwksSource, TokenError, TokenVerifier};

    let key = signing_key();
    let endpoint = jwks_endpoint(&key).await;
    endpoint.failing.store(true, Ordering::SeqCst);
    let verifier = TokenVerifier::from_jwks(JwksSource {
        url: endpoint.url.clone(),
        bearer: None,
    })
    .with_refetch_floor(Duration::from_secs(3600));
    let started = std::time::Instant::now();
    for attempt in 0..20 {
        let token = token_with_kid(&key, &format!("unknown-{attempt}"), "user_outage");
        assert!(
            matches!(
                verifier.verify(&token).await,
                Err(TokenError::KeysUnavailable(_))
            ),
            "attempt {attempt}"
        );
    }
    assert_eq!(
        endpoint.hits.load(Ordering::SeqCst),
        1,
        "one fetch in the floor"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );

    // Keys refetched at every unknown key id (floor 0), one fetch slow: a token with a cached
    // key is verified meanwhile.
    let endpoint = jwks_endpoint(&key).await;
    let verifier = Arc::new(
        TokenVerifier::from_jwks(JwksSource {
            url: endpoint.url.clone(),
            bearer: None,
        })
        .with_refetch_floor(Duration::ZERO),
    );
    verifier
        .verify(&token_with_kid(&key, key.kid(), "user_first"))
        .await
        .expect("valid");
    endpoint.delay_ms.store(2_000, Ordering::SeqCst);
    let slow = {
        let verifier = verifier.clone();
        let token = token_with_kid(&key, "rotated-away", "user_slow");
        tokio::spawn(async move { verifier.verify(&token).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = std::time::Instant::now();
    verifier
        .verify(&token_with_kid(&key, key.kid(), "user_second"))
        .await
        .expect("valid");
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "a cached key waited {:?} for a fetch",
        started.elapsed()
    );
    assert_eq!(
        slow.await.expect("the slow one").err(),
        Some(TokenError::UnknownKey)
    );
}
