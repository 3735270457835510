//! CSV downloads: `GET /api/exports/users.csv` (the users the caller may read) and
//! `GET /api/exports/audit.csv` (the audit log, admins only), with the session token as
//! `Authorization: Bearer` (or the `__session` cookie), filtered by query parameters.
//!
//! The first page is read before the answer starts, so a refused or malformed request gets a
//! 4xx with a JSON body; then the pages stream as they are read (`service::exports`), one in
//! memory at a time.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRef, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Utc};
use entity::role::Role;
use futures_util::StreamExt;
use serde::Deserialize;

use crate::auth::caller::session_token;
use crate::error::{AppError, json_error};
use crate::service::audit::AuditFilter;
use crate::service::exports::{self, Export, Progress};
use crate::service::sessions::Authenticator;
use crate::service::users::UserFilter;
use crate::service::{Services, TimeRange};

/// What the export routes need; the server's state hands it over (`FromRef`).
#[derive(Clone)]
pub struct ExportState {
    pub services: Services,
    pub auth: Arc<Authenticator>,
}

pub fn routes<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    ExportState: FromRef<S>,
{
    Router::new()
        .route("/api/exports/users.csv", get(users))
        .route("/api/exports/audit.csv", get(audit))
}

/// The filter of a users export, as `users(filter:)` takes it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct UsersParams {
    organisation_id: Option<String>,
    /// `ADMIN`, `ORG_ADMIN`, `LECTURER` or `MEMBER`, any case.
    role: Option<String>,
    is_active: Option<bool>,
    is_suspended: Option<bool>,
    search: Option<String>,
    created_from: Option<DateTime<Utc>>,
    created_before: Option<DateTime<Utc>>,
    last_sign_in_from: Option<DateTime<Utc>>,
    last_sign_in_before: Option<DateTime<Utc>>,
    last_active_from: Option<DateTime<Utc>>,
    last_active_before: Option<DateTime<Utc>>,
}

/// The filter of an audit log export, as `auditLog(filter:)` takes it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct AuditParams {
    actor: Option<String>,
    action: Option<String>,
    subject_type: Option<String>,
    subject_id: Option<String>,
    occurred_from: Option<DateTime<Utc>>,
    occurred_before: Option<DateTime<Utc>>,
}

fn bad_parameters(rejection: &QueryRejection) -> Response {
    json_error(
        StatusCode::BAD_REQUEST,
        "BAD_REQUEST",
        format!("bad query parameters: {}", rejection.body_text()),
    )
}

async fn users(
    State(state): State<ExportState>,
    headers: HeaderMap,
    params: Result<Query<UsersParams>, QueryRejection>,
) -> Response {
    let Query(params) = match params {
        Ok(params) => params,
        Err(rejection) => return bad_parameters(&rejection),
    };
    match users_filter(params) {
        Ok(filter) => download(&state, &headers, filter).await,
        Err(error) => error.into_response(),
    }
}

fn users_filter(params: UsersParams) -> Result<UserFilter, AppError> {
    let role = params
        .role
        .map(|role| {
            Role::parse(&role.to_ascii_lowercase()).ok_or_else(|| {
                AppError::validation("role", "must be ADMIN, ORG_ADMIN, LECTURER or MEMBER")
            })
        })
        .transpose()?;
    Ok(UserFilter {
        organisation_id: params
            .organisation_id
            .map(|id| crate::service::parse_id("organisationId", &id))
            .transpose()?,
        role,
        is_active: params.is_active,
        is_suspended: params.is_suspended,
        search: params.search,
        created: TimeRange {
            from: params.created_from,
            before: params.created_before,
        },
        last_sign_in: TimeRange {
            from: params.last_sign_in_from,
            before: params.last_sign_in_before,
        },
        last_active: TimeRange {
            from: params.last_active_from,
            before: params.last_active_before,
        },
        ..UserFilter::default()
    })
}

async fn audit(
    State(state): State<ExportState>,
    headers: HeaderMap,
    params: Result<Query<AuditParams>, QueryRejection>,
) -> Response {
    let Query(params) = match params {
        Ok(params) => params,
        Err(rejection) => return bad_parameters(&rejection),
    };
    let filter = AuditFilter {
        actor: params.actor,
        action: params.action,
        subject_type: params.subject_type,
        subject_id: params.subject_id,
        occurred: TimeRange {
            from: params.occurred_from,
            before: params.occurred_before,
        },
    };
    download(&state, &headers, filter).await
}

/// The answer: the header and the first page at once, then each next page as it is read. A
/// failure after the first page ends the body early (the client sees a broken download, never
/// a short file that looks whole: no final chunk is sent).
async fn download<E: Export>(state: &ExportState, headers: &HeaderMap, export: E) -> Response {
    let actor = match state
        .auth
        .authenticate(session_token(headers).as_deref())
        .await
        .and_then(|caller| caller.actor().cloned())
    {
        Ok(actor) => actor,
        Err(error) => return error.into_response(),
    };
    let db = state.services.db.clone();
    let (chunk, _, progress) = match exports::page(&export, &db, &actor, Progress::start()).await {
        Ok(first) => first,
        Err(error) => return error.into_response(),
    };
    let opening = futures_util::stream::once(std::future::ready(Ok::<_, AppError>(format!(
        "{}{chunk}",
        exports::header::<E>()
    ))));
    let pages = futures_util::stream::try_unfold(progress, move |progress| {
        let (db, actor, export) = (db.clone(), actor.clone(), export.clone());
        async move {
            if progress.is_done() {
                return Ok(None);
            }
            let (chunk, _, progress) = exports::page(&export, &db, &actor, progress).await?;
            Ok(Some((chunk, progress)))
        }
    });
    let body = Body::from_stream(opening.chain(pages));
    let filename = format!(
        "attachment; filename=\"{}-{}.csv\"",
        E::NAME,
        Utc::now().format("%Y-%m-%d")
    );
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // Never read as a script or a page, whatever a browser guesses from the bytes.
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if let Ok(value) = HeaderValue::from_str(&filename) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    response
}
