//! GraphQL over HTTP (the GraphQL-over-HTTP specification): `POST /graphql` with JSON,
//! `GET /graphql` for queries (and GraphiQL for browsers), content negotiation between
//! `application/graphql-response+json` and `application/json`.
//!
//! Written here rather than taken from async-graphql-axum, whose handler answers
//! `application/graphql-response+json` to every client, answers request errors with 200,
//! accepts bodies without a content type and runs mutations sent over GET.

use async_graphql::parser::types::OperationType;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::ws::{WebSocketUpgrade, rejection::WebSocketUpgradeRejection};
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::cache::Key;
use super::errors::{code_of, is_request_error_code, never_ran, stamp_request_id};
use super::graphiql;
use super::{GraphqlState, RequestId};
use crate::auth::caller::session_token;
use crate::error::AppError;
use crate::service::freshness::Footprint;

const GRAPHQL_RESPONSE_JSON: &str = "application/graphql-response+json";
const JSON: &str = "application/json";

/// The media type of a GraphQL response, chosen from the client's `Accept`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    /// Request errors are HTTP 400.
    GraphqlResponseJson,
    /// The legacy type: every well-formed GraphQL response is HTTP 200.
    Json,
}

impl Format {
    fn content_type(self) -> HeaderValue {
        match self {
            Format::GraphqlResponseJson => {
                HeaderValue::from_static("application/graphql-response+json; charset=utf-8")
            }
            Format::Json => HeaderValue::from_static("application/json; charset=utf-8"),
        }
    }
}

/// Picks the response type by the `Accept` header's preferences. No header, or only
/// wildcards, means `application/json`, which every client understands. `None`: the client
/// accepts neither type.
fn negotiate(headers: &HeaderMap) -> Option<Format> {
    let Some(accept) = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .map(str::to_owned)
        .reduce(|a, b| format!("{a},{b}"))
    else {
        return Some(Format::Json);
    };
    if accept.trim().is_empty() {
        return Some(Format::Json);
    }
    // (quality, specificity, format): the highest wins.
    let mut best: Option<(u16, u8, Format)> = None;
    for range in accept.split(',') {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let quality = parts
            .filter_map(|param| param.trim().strip_prefix("q="))
            .filter_map(|q| q.trim().parse::<f32>().ok())
            .next()
            .unwrap_or(1.0);
        let quality = (quality.clamp(0.0, 1.0) * 1000.0) as u16;
        if quality == 0 {
            continue;
        }
        let candidate = match media.as_str() {
            GRAPHQL_RESPONSE_JSON => (quality, 3, Format::GraphqlResponseJson),
            JSON => (quality, 2, Format::Json),
            "application/*" | "*/*" => (quality, 1, Format::Json),
            _ => continue,
        };
        if best.is_none_or(|current| (candidate.0, candidate.1) > (current.0, current.1)) {
            best = Some(candidate);
        }
    }
    best.map(|(_, _, format)| format)
}

fn not_acceptable() -> Response {
    error_response(
        StatusCode::NOT_ACCEPTABLE,
        "NOT_ACCEPTABLE",
        "this server answers application/graphql-response+json or application/json",
        Format::Json,
    )
}

/// An error raised before GraphQL ran, in the GraphQL response shape so that GraphQL clients
/// can show it like any other.
fn error_response(status: StatusCode, code: &str, message: &str, format: Format) -> Response {
    let mut extensions = json!({ "code": code });
    if let Some(request_id) = crate::error::current_request_id() {
        extensions["requestId"] = json!(request_id);
    }
    let body = json!({ "errors": [{ "message": message, "extensions": extensions }] });
    (
        status,
        [(header::CONTENT_TYPE, format.content_type())],
        body.to_string(),
    )
        .into_response()
}

/// The id the request-id middleware gave this request (or the client sent).
pub(super) fn request_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get("x-request-id")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
}

pub async fn post(
    State(state): State<GraphqlState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let Some(format) = negotiate(&headers) else {
        return not_acceptable();
    };
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .map(|media| media.trim().to_ascii_lowercase());
    if content_type.as_deref() != Some(JSON) {
        return error_response(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
            "send the request as Content-Type: application/json",
            format,
        );
    }
    let body = match body {
        Ok(body) => body,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return error_response(
                StatusCode::PAYLOAD_TOO_LARGE,
                "PAYLOAD_TOO_LARGE",
                &format!(
                    "the request body is over the limit of {} bytes",
                    state.config.max_body_bytes
                ),
                format,
            );
        }
        Err(rejection) => {
            return error_response(
                StatusCode::BAD_REQUEST,
                "BAD_REQUEST",
                &rejection.body_text(),
                format,
            );
        }
    };
    let value: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(value) => value,
        Err(err) => {
            return error_response(
                StatusCode::BAD_REQUEST,
                "BAD_REQUEST",
                &format!("the body is not valid JSON: {err}"),
                format,
            );
        }
    };
    if value.is_array() {
        return error_response(
            StatusCode::BAD_REQUEST,
            "BAD_REQUEST",
            "batched operations are not supported: send one operation per request",
            format,
        );
    }
    if !value.get("query").is_some_and(serde_json::Value::is_string) {
        return error_response(
            StatusCode::BAD_REQUEST,
            "BAD_REQUEST",
            "the body is not a GraphQL request: it needs a `query` string",
            format,
        );
    }
    let request: async_graphql::Request = match serde_json::from_value(value) {
        Ok(request) => request,
        Err(err) => {
            return error_response(
                StatusCode::BAD_REQUEST,
                "BAD_REQUEST",
                &format!("the body is not a GraphQL request: {err}"),
                format,
            );
        }
    };
    execute(&state, &headers, request, format, Method::Post).await
}

/// How the request came: a GET's complete answer is tagged for conditional requests
/// (`conditional.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    Get,
    Post,
}

pub async fn get(
    State(state): State<GraphqlState>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
    peer: Option<axum::Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    if let Ok(upgrade) = upgrade {
        let peer = peer.map(|axum::Extension(axum::extract::ConnectInfo(address))| address);
        return super::ws::upgrade(upgrade, &headers, peer, state);
    }
    let query = query.unwrap_or_default();
    if query.is_empty() {
        if accepts_html(&headers) {
            let token = state.local_admin_token.as_deref();
            return graphiql::page(token);
        }
        return error_response(
            StatusCode::BAD_REQUEST,
            "BAD_REQUEST",
            "GET /graphql needs a `query` parameter (or open it in a browser for GraphiQL)",
            Format::Json,
        );
    }
    let Some(format) = negotiate(&headers) else {
        return not_acceptable();
    };
    let request = match async_graphql::http::parse_query_string(&query) {
        Ok(request) => request,
        Err(err) => {
            return error_response(
                StatusCode::BAD_REQUEST,
                "BAD_REQUEST",
                &format!("the query string is not a GraphQL request: {err}"),
                format,
            );
        }
    };
    execute(&state, &headers, request, format, Method::Get).await
}

fn accepts_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"))
}

/// An authentication failure, answered before GraphQL runs.
fn refused(error: &AppError, format: Format) -> Response {
    let mut response = error_response(
        error.status(),
        error.code(),
        &error.public_message(),
        format,
    );
    if error.status() == StatusCode::UNAUTHORIZED {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    if let Some(fault) = crate::error::ServerFault::of(error) {
        response.extensions_mut().insert(fault);
    }
    response
}

/// GET runs queries only.
fn mutation_over_get(format: Format) -> Response {
    let mut response = error_response(
        StatusCode::METHOD_NOT_ALLOWED,
        "METHOD_NOT_ALLOWED",
        "mutations must be sent with POST",
        format,
    );
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("POST"));
    response
}

/// Authenticates the caller, then answers the request from the response cache (`cache.rs`),
/// or checks and runs it, or answers why it cannot run.
async fn execute(
    state: &GraphqlState,
    headers: &HeaderMap,
    request: async_graphql::Request,
    format: Format,
    method: Method,
) -> Response {
    use std::sync::atomic::Ordering;
    let started = std::time::Instant::now();
    // Taken before anything is read: what is read next is at least this current.
    let stamp = state.cache.stamp().await;
    let caller = match state
        .auth
        .authenticate_at(session_token(headers).as_deref(), stamp.as_ref())
        .await
    {
        Ok(caller) => caller,
        Err(error) => return refused(&error, format),
    };
    state
        .metrics
        .graphql_operations
        .fetch_add(1, Ordering::Relaxed);
    // Looked up before the document is even parsed: only a query that passed every check and
    // ran without an error was kept, and the same request would pass and run the same way.
    let key = stamp.as_ref().and_then(|_| Key::of(&request, &caller));
    if let (Some(key), Some(stamp)) = (&key, &stamp)
        && let Some(answer) = state.cache.get(key, stamp)
    {
        state
            .metrics
            .observe_operation("query", &answer.root_field, "ok", started.elapsed());
        return complete_answer(headers, format, method, answer.body, &answer.tag);
    }
    // A request async-graphql answered before may have a plan the direct path answers.
    let plan_key = state.direct.key_of(&request);
    let plan = plan_key.as_ref().and_then(|key| state.direct.plan(key));
    if let Some(plan) = &plan
        && let Some(body) = state.direct.answer(plan, &caller).await
    {
        state
            .metrics
            .observe_operation("query", "users", "ok", started.elapsed());
        return match (key, stamp) {
            (Some(key), Some(stamp)) => {
                let footprint = plan.footprint(&caller);
                let answer = state.cache.put(key, stamp, footprint, "users", body);
                complete_answer(headers, format, method, answer.body, &answer.tag)
            }
            _ => tagged_answer(headers, format, method, body),
        };
    }
    let mut prepared = state.schema.prepare(request);
    // Planned now, kept once async-graphql has answered it without an error.
    let learned = match (&mut prepared, plan_key, plan) {
        (Ok(prepared), Some(key), None) => prepared.direct_plan().map(|plan| (key, plan)),
        _ => None,
    };
    // An answer the direct path could have given depends on what its plan reads.
    let footprint = learned
        .as_ref()
        .map_or(Footprint::Everything, |(_, plan)| plan.footprint(&caller));
    if method == Method::Get
        && prepared
            .as_ref()
            .is_ok_and(|prepared| prepared.operation == OperationType::Mutation)
    {
        return mutation_over_get(format);
    }
    let request_id = request_id(headers);
    let (mut response, kind, root_field, kept_as) = match prepared {
        Ok(prepared) => {
            let kind = match prepared.operation {
                OperationType::Query => "query",
                OperationType::Mutation => "mutation",
                OperationType::Subscription => "subscription",
            };
            let root_field = prepared.root_field.clone();
            let kept_as = match (key, stamp) {
                (Some(key), Some(stamp)) if prepared.is_cacheable() => Some((key, stamp)),
                _ => None,
            };
            let prepared = prepared.data(caller).data(RequestId(request_id.clone()));
            (state.schema.run(prepared).await, kind, root_field, kept_as)
        }
        Err(errors) => (
            async_graphql::Response::from_errors(errors),
            "invalid",
            String::new(),
            None,
        ),
    };
    state
        .metrics
        .graphql_errors
        .fetch_add(response.errors.len() as u64, Ordering::Relaxed);
    let first_code = response.errors.first().map(code_of);
    // A field that failed validation may be any name a client made up: not a label.
    let outcome = match &first_code {
        None => "ok".to_owned(),
        Some(code) => code
            .clone()
            .unwrap_or_else(|| "INTERNAL_SERVER_ERROR".to_owned()),
    };
    let label = if first_code
        .as_ref()
        .is_some_and(|code| code.as_deref().is_some_and(is_request_error_code))
    {
        "(invalid)"
    } else {
        root_field.as_str()
    };
    state
        .metrics
        .observe_operation(kind, label, &outcome, started.elapsed());
    if let Some(request_id) = &request_id {
        stamp_request_id(&mut response, request_id);
    }

    let request_error = never_ran(&response);
    let status = if request_error && format == Format::GraphqlResponseJson {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let complete = response.errors.is_empty();
    // A request error never ran, so its response has no `data` entry at all.
    let body = if request_error {
        serde_json::to_vec(&json!({ "errors": response.errors }))
    } else {
        serde_json::to_vec(&response)
    };
    match body {
        Ok(body) if complete => {
            if let Some((key, plan)) = learned {
                state.direct.keep(key, plan);
            }
            let body = Bytes::from(body);
            match kept_as {
                Some((key, stamp)) => {
                    let answer = state.cache.put(key, stamp, footprint, &root_field, body);
                    complete_answer(headers, format, method, answer.body, &answer.tag)
                }
                None => tagged_answer(headers, format, method, body),
            }
        }
        Ok(body) => (
            status,
            [(header::CONTENT_TYPE, format.content_type())],
            body,
        )
            .into_response(),
        Err(err) => {
            tracing::error!(error = %err, "a GraphQL response could not be serialised");
            error_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL_SERVER_ERROR",
                "internal server error: the failure was logged",
                format,
            )
        }
    }
}

/// An answer with no errors that the cache does not keep: over GET with the tag computed now.
fn tagged_answer(headers: &HeaderMap, format: Format, method: Method, body: Bytes) -> Response {
    match method {
        Method::Get => {
            let tag = super::conditional::tag_of(&body);
            complete_answer(headers, format, method, body, &tag)
        }
        // A POST answer carries no tag.
        Method::Post => complete_answer(headers, format, method, body, ""),
    }
}

/// An answer with no errors: over GET with its validators (`conditional.rs`), over POST as it is.
fn complete_answer(
    headers: &HeaderMap,
    format: Format,
    method: Method,
    body: Bytes,
    tag: &str,
) -> Response {
    match method {
        Method::Get => super::conditional::answer(headers, format.content_type(), body, tag),
        Method::Post => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, format.content_type())],
            body,
        )
            .into_response(),
    }
}
