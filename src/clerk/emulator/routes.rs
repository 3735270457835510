//! The emulator's HTTP routes: Clerk's Backend API under `/v1`, and its own control routes.

use std::time::Duration;

use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::store::{ListFilter, Refusal};
use super::{Emulator, Fault, NewUser, TokenOptions};
use crate::clerk::model::Jwks;

pub(super) fn router(emulator: Emulator) -> Router {
    let api = Router::new()
        .route("/users", get(list_users).post(create_user))
        .route("/users/count", get(count_users))
        .route(
            "/users/{id}",
            get(get_user).patch(update_user).delete(delete_user),
        )
        .route("/users/{id}/metadata", patch(merge_metadata))
        .route("/users/{id}/ban", post(ban))
        .route("/users/{id}/unban", post(unban))
        .route(
            "/invitations",
            get(list_invitations).post(create_invitation),
        )
        .route("/invitations/bulk", post(create_invitations))
        .route("/invitations/{id}/revoke", post(revoke_invitation))
        .route("/jwks", get(jwks))
        .fallback(|| async { refusal(Refusal::not_found()) });
    let control = Router::new()
        .route("/session_tokens", post(mint_session_token))
        .route("/faults", post(inject_faults).delete(clear_faults))
        .route("/invitations/{id}/accept", post(accept_invitation))
        .route("/webhooks", post(configure_webhooks))
        .route("/webhooks/recover", post(recover_webhooks));
    Router::new()
        .nest(
            "/v1",
            api.layer(middleware::from_fn_with_state(emulator.clone(), inject))
                .layer(middleware::from_fn_with_state(emulator.clone(), record)),
        )
        .nest("/__emulator", control)
        .layer(middleware::from_fn_with_state(
            emulator.clone(),
            require_secret,
        ))
        .with_state(emulator)
}

/// Clerk's error body.
fn refusal(refusal: Refusal) -> Response {
    (
        refusal.status,
        Json(json!({
            "errors": [{ "message": refusal.message, "long_message": refusal.message, "code": refusal.code }],
            "clerk_trace_id": format!("emulated_{}", super::random_id(16)),
        })),
    )
        .into_response()
}

async fn require_secret(
    State(emulator): State<Emulator>,
    request: Request,
    next: Next,
) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    if presented != Some(emulator.secret()) {
        return refusal(Refusal::new(
            StatusCode::UNAUTHORIZED,
            "authentication_invalid",
            "The provided secret key is invalid.",
        ));
    }
    next.run(request).await
}

/// Keeps each request's method, path and body, for the contract test.
async fn record(State(emulator): State<Emulator>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 1 << 20).await else {
        return refusal(Refusal::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "request_body_too_large",
            "The request body is too large.",
        ));
    };
    let json = serde_json::from_slice::<Value>(&bytes).ok();
    emulator.record(parts.method.to_string(), parts.uri.path().to_owned(), json);
    next.run(Request::from_parts(parts, axum::body::Body::from(bytes)))
        .await
}

/// Answers with the next injected fault, if any. The JWKS is spared: a test that injects
/// faults means them for the calls it makes, not for token verification.
async fn inject(State(emulator): State<Emulator>, request: Request, next: Next) -> Response {
    if request.uri().path().ends_with("/jwks") {
        return next.run(request).await;
    }
    match emulator.next_fault() {
        None => next.run(request).await,
        Some(Fault::Slow(delay)) => {
            tokio::time::sleep(delay).await;
            next.run(request).await
        }
        Some(Fault::SlowAnswer(delay)) => {
            let response = next.run(request).await;
            tokio::time::sleep(delay).await;
            response
        }
        Some(Fault::RateLimited {
            retry_after_seconds,
        }) => {
            let mut response = refusal(Refusal::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_requests",
                "Too many requests, retry later",
            ));
            response.headers_mut().insert(
                header::RETRY_AFTER,
                header::HeaderValue::from(retry_after_seconds),
            );
            response
        }
        Some(Fault::ServerError) => refusal(Refusal::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_clerk_error",
            "There was an internal error on our servers",
        )),
    }
}

#[derive(Deserialize)]
struct FaultRequest {
    /// `rate_limited`, `server_error`, `slow` or `slow_answer`.
    kind: String,
    #[serde(default = "one")]
    times: usize,
    #[serde(default)]
    retry_after_seconds: u64,
    #[serde(default)]
    delay_ms: u64,
}

fn one() -> usize {
    1
}

async fn inject_faults(
    State(emulator): State<Emulator>,
    Json(request): Json<FaultRequest>,
) -> Response {
    let fault = match request.kind.as_str() {
        "rate_limited" => Fault::RateLimited {
            retry_after_seconds: request.retry_after_seconds,
        },
        "server_error" => Fault::ServerError,
        "slow" => Fault::Slow(Duration::from_millis(request.delay_ms)),
        "slow_answer" => Fault::SlowAnswer(Duration::from_millis(request.delay_ms)),
        other => {
            return refusal(Refusal::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "form_param_value_invalid",
                format!(
                    "unknown fault kind `{other}`: rate_limited, server_error, slow or slow_answer"
                ),
            ));
        }
    };
    emulator.inject(fault, request.times);
    Json(json!({ "injected": request.times })).into_response()
}

async fn clear_faults(State(emulator): State<Emulator>) -> Response {
    emulator.clear_faults();
    Json(json!({ "cleared": true })).into_response()
}

fn list_filter(raw: Option<String>) -> Result<ListFilter, Refusal> {
    let mut filter = ListFilter {
        limit: 10,
        newest_first: true,
        ..ListFilter::default()
    };
    let invalid = |name: &str| {
        Refusal::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "form_param_value_invalid",
            format!("{name} is invalid"),
        )
    };
    for (key, value) in form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
        match key.as_ref() {
            "email_address" | "email_address[]" => filter.emails.push(value.into_owned()),
            "user_id" | "user_id[]" => filter.user_ids.push(value.into_owned()),
            "query" => filter.query = Some(value.into_owned()),
            "limit" => {
                filter.limit = value
                    .parse()
                    .ok()
                    .filter(|limit| (1..=500).contains(limit))
                    .ok_or_else(|| invalid("limit"))?;
            }
            "offset" => filter.offset = value.parse().map_err(|_| invalid("offset"))?,
            "starting_after" => filter.starting_after = Some(value.into_owned()),
            "order_by" => {
                filter.newest_first = match value.as_ref() {
                    "-created_at" | "created_at" => true,
                    "+created_at" => false,
                    _ => return Err(invalid("order_by")),
                }
            }
            _ => {}
        }
    }
    Ok(filter)
}

async fn list_users(State(emulator): State<Emulator>, RawQuery(raw): RawQuery) -> Response {
    match list_filter(raw).and_then(|filter| emulator.store().list(&filter)) {
        Ok(users) => Json(users).into_response(),
        Err(err) => refusal(err),
    }
}

async fn count_users(State(emulator): State<Emulator>, RawQuery(raw): RawQuery) -> Response {
    match list_filter(raw) {
        Ok(filter) => Json(json!({
            "object": "total_count",
            "total_count": emulator.store().count(&filter),
        }))
        .into_response(),
        Err(err) => refusal(err),
    }
}

async fn get_user(State(emulator): State<Emulator>, Path(id): Path<String>) -> Response {
    match emulator.store().get(&id) {
        Some(user) => Json(user).into_response(),
        None => refusal(Refusal::not_found()),
    }
}

#[derive(Deserialize)]
struct CreateUserBody {
    #[serde(default)]
    email_address: Vec<String>,
    first_name: Option<String>,
    last_name: Option<String>,
    #[serde(default)]
    public_metadata: Value,
}

async fn create_user(
    State(emulator): State<Emulator>,
    body: Option<Json<CreateUserBody>>,
) -> Response {
    let Some(Json(body)) = body else {
        return refusal(Refusal::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "form_param_missing",
            "The request body is not a user.",
        ));
    };
    let Some(email) = body.email_address.into_iter().next() else {
        return refusal(Refusal::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "form_param_missing",
            "email_address must be included.",
        ));
    };
    let created = emulator.store().create(NewUser {
        email,
        first_name: body.first_name,
        last_name: body.last_name,
        public_metadata: body.public_metadata,
    });
    match created {
        Ok(user) => Json(user).into_response(),
        Err(err) => refusal(err),
    }
}

async fn update_user(
    State(emulator): State<Emulator>,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Response {
    match emulator.store().update(&id, &body) {
        Ok(user) => Json(user).into_response(),
        Err(err) => refusal(err),
    }
}

async fn merge_metadata(
    State(emulator): State<Emulator>,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Response {
    match emulator.store().merge_metadata(&id, &body) {
        Some(user) => Json(user).into_response(),
        None => refusal(Refusal::not_found()),
    }
}

async fn delete_user(State(emulator): State<Emulator>, Path(id): Path<String>) -> Response {
    match emulator.store().delete(&id) {
        Some(deleted) => Json(deleted).into_response(),
        None => refusal(Refusal::not_found()),
    }
}

async fn ban(State(emulator): State<Emulator>, Path(id): Path<String>) -> Response {
    set_banned(&emulator, &id, true)
}

async fn unban(State(emulator): State<Emulator>, Path(id): Path<String>) -> Response {
    set_banned(&emulator, &id, false)
}

fn set_banned(emulator: &Emulator, id: &str, banned: bool) -> Response {
    match emulator.store().set_banned(id, banned) {
        Some(user) => Json(user).into_response(),
        None => refusal(Refusal::not_found()),
    }
}

async fn create_invitation(State(emulator): State<Emulator>, Json(body): Json<Value>) -> Response {
    match emulator.store().invite(&body) {
        Ok(invitation) => Json(invitation).into_response(),
        Err(err) => refusal(err),
    }
}

/// `POST /invitations/bulk`: an array of invitations, all made or none; at most
/// `per_call` of them, and at most `calls` calls a window (429 with `Retry-After` beyond).
async fn create_invitations(State(emulator): State<Emulator>, Json(body): Json<Value>) -> Response {
    let Some(items) = body.as_array() else {
        return refusal(Refusal::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "form_param_format_invalid",
            "The request body must be an array of invitations.",
        ));
    };
    let limits = emulator.bulk_invitation_limits();
    if items.is_empty() || items.len() > limits.per_call {
        return refusal(Refusal::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "form_param_exceeds_allowed_limit",
            format!("Send 1 to {} invitations per request.", limits.per_call),
        ));
    }
    if let Err(wait) = emulator.admit_bulk_invitation_call() {
        let mut response = refusal(Refusal::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_requests",
            "Too many requests, retry later",
        ));
        // Whole seconds, rounded up, as the header allows: never early.
        let seconds = wait.as_millis().div_ceil(1000).max(1) as u64;
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from(seconds));
        return response;
    }
    match emulator.store().invite_many(items) {
        Ok(invitations) => Json(invitations).into_response(),
        Err(err) => refusal(err),
    }
}

async fn list_invitations(State(emulator): State<Emulator>, RawQuery(raw): RawQuery) -> Response {
    let (mut status, mut limit, mut offset) = (None, 10, 0);
    for (key, value) in form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
        match key.as_ref() {
            "status" => status = Some(value.into_owned()),
            "limit" => limit = value.parse().unwrap_or(10usize).clamp(1, 500),
            "offset" => offset = value.parse().unwrap_or(0),
            _ => {}
        }
    }
    Json(
        emulator
            .store()
            .invitations(status.as_deref(), limit, offset),
    )
    .into_response()
}

async fn revoke_invitation(State(emulator): State<Emulator>, Path(id): Path<String>) -> Response {
    match emulator.store().revoke(&id) {
        Ok(invitation) => Json(invitation).into_response(),
        Err(err) => refusal(err),
    }
}

#[derive(Deserialize, Default)]
struct AcceptRequest {
    first_name: Option<String>,
    last_name: Option<String>,
}

async fn accept_invitation(
    State(emulator): State<Emulator>,
    Path(id): Path<String>,
    body: Option<Json<AcceptRequest>>,
) -> Response {
    let body = body.map(|Json(body)| body).unwrap_or_default();
    match emulator
        .store()
        .accept(&id, body.first_name, body.last_name)
    {
        Ok(user) => Json(user).into_response(),
        Err(err) => refusal(err),
    }
}

async fn recover_webhooks(State(emulator): State<Emulator>) -> Response {
    Json(json!({ "recovered": emulator.recover_webhooks() })).into_response()
}

async fn configure_webhooks(
    State(emulator): State<Emulator>,
    Json(endpoint): Json<super::webhooks::Endpoint>,
) -> Response {
    emulator.deliver_webhooks(endpoint);
    Json(json!({ "configured": true })).into_response()
}

async fn jwks(State(emulator): State<Emulator>) -> Response {
    Json(Jwks {
        keys: emulator
            .signing_keys()
            .iter()
            .map(|key| key.jwk().clone())
            .collect(),
    })
    .into_response()
}

#[derive(Deserialize)]
struct SessionTokenRequest {
    user_id: String,
    #[serde(default)]
    ttl_seconds: Option<u64>,
}

async fn mint_session_token(
    State(emulator): State<Emulator>,
    Json(request): Json<SessionTokenRequest>,
) -> Response {
    if emulator.store().get(&request.user_id).is_none() {
        return refusal(Refusal::not_found());
    }
    let options = TokenOptions {
        ttl: Duration::from_secs(request.ttl_seconds.unwrap_or(60)),
        ..TokenOptions::default()
    };
    match emulator.mint_session_token(&request.user_id, options) {
        Ok(jwt) => Json(json!({ "object": "token", "jwt": jwt })).into_response(),
        Err(err) => refusal(Refusal::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_clerk_error",
            err.to_string(),
        )),
    }
}
