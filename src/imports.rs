//! `POST /api/imports/users.csv`: the upload form of `importUsers`, for files bigger than a
//! GraphQL request may be (up to `USERHUB_MAX_IMPORT_BYTES`). The body is the CSV
//! (`Content-Type: text/csv`), `?dryRun=true` plans without touching anything, and the answer
//! is the job as JSON (`202 Accepted` for a run, `200 OK` for a dry run); follow a run with
//! `bulkJob` or `bulkJobProgress`.
//!
//! The session token must come as `Authorization: Bearer`: the `__session` cookie is not
//! accepted here, because another site's form could post a file with it.

use axum::Router;
use axum::extract::rejection::{QueryRejection, StringRejection};
use axum::extract::{DefaultBodyLimit, FromRef, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use entity::bulk_job;
use serde::Deserialize;
use serde_json::{Value, json};

use std::sync::Arc;

use crate::auth::caller::bearer_token;
use crate::error::json_error;
use crate::service::sessions::Authenticator;
use crate::service::{Services, bulk, imports};

/// What the import route needs; the server's state hands it over (`FromRef`).
#[derive(Clone)]
pub struct ImportState {
    pub services: Services,
    pub auth: Arc<Authenticator>,
}

pub fn routes<S>(max_bytes: usize) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    ImportState: FromRef<S>,
{
    Router::new().route(
        "/api/imports/users.csv",
        post(import_users).layer(DefaultBodyLimit::max(max_bytes)),
    )
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ImportParams {
    #[serde(default)]
    dry_run: bool,
}

async fn import_users(
    State(state): State<ImportState>,
    headers: HeaderMap,
    params: Result<Query<ImportParams>, QueryRejection>,
    body: Result<String, StringRejection>,
) -> Response {
    let Query(params) = match params {
        Ok(params) => params,
        Err(rejection) => {
            return json_error(
                StatusCode::BAD_REQUEST,
                "BAD_REQUEST",
                format!("bad query parameters: {}", rejection.body_text()),
            );
        }
    };
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(bearer_token);
    let actor = match state
        .auth
        .authenticate(token.as_deref())
        .await
        .and_then(|caller| caller.actor().cloned())
    {
        Ok(actor) => actor,
        Err(error) => return error.into_response(),
    };
    let is_csv = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|media| {
            let media = media.trim();
            media.eq_ignore_ascii_case("text/csv") || media.eq_ignore_ascii_case("text/plain")
        });
    if !is_csv {
        return json_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
            "send the file as `Content-Type: text/csv`",
        );
    }
    let csv = match body {
        Ok(csv) => csv,
        Err(rejection) => {
            let status = rejection.status();
            let code = if status == StatusCode::PAYLOAD_TOO_LARGE {
                "PAYLOAD_TOO_LARGE"
            } else {
                "BAD_REQUEST"
            };
            return json_error(status, code, rejection.body_text());
        }
    };
    let request_id = headers
        .get("x-request-id")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let origin = actor.origin(request_id);
    match imports::start(&state.services, &actor, &origin, &csv, params.dry_run).await {
        Ok(job) => {
            let status = if job.dry_run {
                StatusCode::OK
            } else {
                StatusCode::ACCEPTED
            };
            (status, axum::Json(job_json(&job))).into_response()
        }
        Err(error) => error.into_response(),
    }
}

/// A job as the GraphQL `BulkJob` spells it.
fn job_json(job: &bulk_job::Model) -> Value {
    let results: Vec<Value> = bulk::outcomes(job)
        .into_iter()
        .map(|outcome| {
            json!({
                "line": outcome.line,
                "email": outcome.email,
                "action": outcome.action.map(|action| action.to_ascii_uppercase()),
                "outcome": outcome.outcome.to_ascii_uppercase(),
                "userId": outcome.user_id,
                "invitationId": outcome.invitation_id,
                "code": outcome.code,
                "message": outcome.message,
            })
        })
        .collect();
    json!({
        "id": job.id,
        "kind": job.kind,
        "status": job.status.to_ascii_uppercase(),
        "dryRun": job.dry_run,
        "total": job.total,
        "done": job.done,
        "changed": job.changed,
        "unchanged": job.unchanged,
        "refused": job.refused,
        "results": results,
        "createdAt": job.created_at,
        "finishedAt": job.finished_at,
    })
}
