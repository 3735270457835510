//! The one error type of the service layer and how it leaves the process.
//!
//! Policy: every failure a caller can act on is a variant with a stable code
//! (`AppError::code`); it is mapped once to GraphQL (`extensions.code`, in
//! `graphql::errors`) and once to HTTP (`IntoResponse` below). Database and internal failures
//! are logged with their cause chain where they are answered, and the caller gets a generic
//! message: the details of a 500 are for operators, not clients.

use axum::{
    Json,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use sea_orm::{DbErr, SqlErr};
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{entity} `{id}` was not found")]
    NotFound { entity: &'static str, id: String },

    #[error("{0}")]
    Unauthenticated(String),

    #[error("{0}")]
    Forbidden(String),

    #[error("invalid `{field}`: {message}")]
    Validation { field: String, message: String },

    #[error("{0}")]
    Conflict(String),

    /// Clerk could not be reached or kept failing.
    #[error("Clerk is unavailable: {0}")]
    Upstream(String),

    #[error("the database failed")]
    Database(#[source] DbErr),

    /// Clerk accepted a change and the database then failed to record it. Clerk is the
    /// truth: the next webhook or sync brings the row in line.
    #[error("Clerk accepted the change but userhub could not record it")]
    Unrecorded(#[source] Box<AppError>),

    #[error("internal error")]
    Internal(#[source] anyhow::Error),

    /// A live subscription lost events (it fell behind, or the event connection dropped) and
    /// ends, so the client can reload and subscribe again rather than trust a gapped stream.
    #[error("{0}")]
    EventsMissed(String),
}

impl AppError {
    pub fn validation(field: impl Into<String>, message: impl Into<String>) -> AppError {
        AppError::Validation {
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn not_found(entity: &'static str, id: impl ToString) -> AppError {
        AppError::NotFound {
            entity,
            id: id.to_string(),
        }
    }

    /// The stable, machine-readable code: `extensions.code` in GraphQL, `error.code` in HTTP.
    pub fn code(&self) -> &'static str {
        match self {
            AppError::NotFound { .. } => "NOT_FOUND",
            AppError::Unauthenticated(_) => "UNAUTHENTICATED",
            AppError::Forbidden(_) => "FORBIDDEN",
            AppError::Validation { .. } => "BAD_USER_INPUT",
            AppError::Conflict(_) => "CONFLICT",
            AppError::Upstream(_) => "UPSTREAM_UNAVAILABLE",
            AppError::EventsMissed(_) => "EVENTS_MISSED",
            AppError::Database(err) if storage_trouble(err).is_some() => "DATABASE_UNAVAILABLE",
            AppError::Database(_) | AppError::Internal(_) | AppError::Unrecorded(_) => {
                "INTERNAL_SERVER_ERROR"
            }
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            AppError::NotFound { .. } => StatusCode::NOT_FOUND,
            AppError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            AppError::Forbidden(_) => StatusCode::FORBIDDEN,
            AppError::Validation { .. } => StatusCode::BAD_REQUEST,
            AppError::Conflict(_) => StatusCode::CONFLICT,
            AppError::Upstream(_) | AppError::EventsMissed(_) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Database(err) if storage_trouble(err).is_some() => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            AppError::Database(_) | AppError::Internal(_) | AppError::Unrecorded(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }

    /// The message a client sees. Internal failures are logged here, once, with their causes.
    pub fn public_message(&self) -> String {
        match self {
            AppError::Database(err) if let Some(trouble) = storage_trouble(err) => {
                tracing::error!(error = %error_chain(self), "request failed: {}", trouble.describe());
                format!("{}; try again later", trouble.describe())
            }
            AppError::Database(_) | AppError::Internal(_) => {
                tracing::error!(error = %error_chain(self), "request failed");
                "internal server error: the failure was logged".to_owned()
            }
            AppError::Unrecorded(_) => {
                tracing::error!(error = %error_chain(self), "a change Clerk accepted was not recorded");
                "Clerk accepted the change, but userhub could not record it; the next webhook or \
                 sync will (the failure was logged)"
                    .to_owned()
            }
            other => other.to_string(),
        }
    }

    /// The field a validation error is about, for clients that place errors next to inputs.
    pub fn field(&self) -> Option<&str> {
        match self {
            AppError::Validation { field, .. } => Some(field),
            _ => None,
        }
    }
}

impl From<crate::clerk::ClerkFailure> for AppError {
    /// Clerk's refusals are the caller's to fix (a taken email, an invalid value); everything
    /// else means Clerk cannot be relied on right now.
    fn from(err: crate::clerk::ClerkFailure) -> AppError {
        use crate::clerk::ClerkFailure;
        match err {
            ClerkFailure::Refused { status: 404, .. } => AppError::NotFound {
                entity: "Clerk user",
                id: "(the user's Clerk id)".to_owned(),
            },
            ClerkFailure::Refused {
                status,
                code,
                message,
            } if (400..500).contains(&status) => AppError::Validation {
                field: "clerk".to_owned(),
                message: format!("Clerk refused: {message} ({code})"),
            },
            other => AppError::Upstream(other.to_string()),
        }
    }
}

impl From<DbErr> for AppError {
    /// Unique-key violations are the caller's doing (a slug or id already taken), so they
    /// become `Conflict` here, in one place; everything else is a database failure.
    fn from(err: DbErr) -> AppError {
        match err.sql_err() {
            Some(SqlErr::UniqueConstraintViolation(detail)) => {
                AppError::Conflict(format!("already exists: {}", unique_subject(&detail)))
            }
            Some(SqlErr::ForeignKeyConstraintViolation(_)) => {
                AppError::Conflict("refers to something that does not exist".to_owned())
            }
            _ => AppError::Database(err),
        }
    }
}

/// A database failure that is not a bug but the database's state: the caller may retry once
/// an operator has fixed it, and is told which.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageTrouble {
    /// No connection could be had, or the one in use broke (a restart, a network fault).
    Unreachable,
    /// The disk under the database is full.
    Full,
    /// The database accepts reads only (a read-only file or file system, a standby).
    ReadOnly,
}

impl StorageTrouble {
    pub fn describe(self) -> &'static str {
        match self {
            StorageTrouble::Unreachable => "the database cannot be reached",
            StorageTrouble::Full => "the database cannot be written: its disk is full",
            StorageTrouble::ReadOnly => "the database cannot be written: it is read-only",
        }
    }
}

/// Tells a database that is down, full or read-only from other database failures.
pub fn storage_trouble(err: &DbErr) -> Option<StorageTrouble> {
    use sea_orm::RuntimeErr;
    use sea_orm::sqlx::Error as SqlxError;
    let runtime = match err {
        DbErr::ConnectionAcquire(_) => return Some(StorageTrouble::Unreachable),
        DbErr::Conn(runtime) | DbErr::Exec(runtime) | DbErr::Query(runtime) => runtime,
        _ => return None,
    };
    let RuntimeErr::SqlxError(sqlx) = runtime else {
        return None;
    };
    match sqlx.as_ref() {
        SqlxError::Io(_)
        | SqlxError::Tls(_)
        | SqlxError::Protocol(_)
        | SqlxError::PoolTimedOut
        | SqlxError::PoolClosed
        | SqlxError::WorkerCrashed => Some(StorageTrouble::Unreachable),
        SqlxError::Database(database) => {
            let code = database.code()?;
            match code.as_ref() {
                // PostgreSQL's SQLSTATEs: disk full, read-only transaction, and the server
                // shutting down, starting up or refusing connections.
                "53100" => Some(StorageTrouble::Full),
                "25006" => Some(StorageTrouble::ReadOnly),
                "57P01" | "57P02" | "57P03" => Some(StorageTrouble::Unreachable),
                state if state.starts_with("08") => Some(StorageTrouble::Unreachable),
                // SQLite's (extended) result codes: the low byte is the primary code.
                other => match other.parse::<u32>().map(|code| code & 0xff) {
                    Ok(13) => Some(StorageTrouble::Full),
                    Ok(8) => Some(StorageTrouble::ReadOnly),
                    Ok(10) | Ok(14) => Some(StorageTrouble::Unreachable),
                    _ => None,
                },
            }
        }
        _ => None,
    }
}

/// Names the constraint without echoing the database's full message (it may quote values).
fn unique_subject(detail: &str) -> String {
    let lower = detail.to_ascii_lowercase();
    for candidate in [
        "slug",
        "clerk_id",
        "clerk_invitation_id",
        "svix_id",
        "email",
    ] {
        if lower.contains(candidate) {
            return candidate.to_owned();
        }
    }
    "a unique value".to_owned()
}

/// `error: cause: cause`, for logs.
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The JSON body of every HTTP error userhub answers outside GraphQL.
pub fn json_error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    (
        status,
        Json(json!({ "error": { "code": code, "message": message.into() } })),
    )
        .into_response()
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        json_error(self.status(), self.code(), self.public_message())
    }
}

/// Puts the request id into a JSON error answer: `error.requestId` in userhub's HTTP errors,
/// `extensions.requestId` of each error in GraphQL's. Other answers pass unchanged.
pub async fn stamp_request_id(response: Response, request_id: &str) -> Response {
    let is_json = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.contains("json"));
    if !is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    // userhub's error answers are small (the size limit bounds a GraphQL one); a larger body
    // cannot be one of them, and is replaced by a generic error rather than held in memory.
    let Ok(bytes) = axum::body::to_bytes(body, 1 << 20).await else {
        return json_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL_SERVER_ERROR",
            "internal server error: the answer could not be read",
        );
    };
    let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
        return Response::from_parts(parts, axum::body::Body::from(bytes));
    };
    let id = serde_json::Value::String(request_id.to_owned());
    if let Some(error) = value
        .get_mut("error")
        .and_then(|error| error.as_object_mut())
    {
        error.insert("requestId".to_owned(), id.clone());
    }
    if let Some(errors) = value
        .get_mut("errors")
        .and_then(|errors| errors.as_array_mut())
    {
        for error in errors.iter_mut().filter_map(|error| error.as_object_mut()) {
            let extensions = error.entry("extensions").or_insert_with(|| json!({}));
            if let Some(extensions) = extensions.as_object_mut() {
                extensions.insert("requestId".to_owned(), id.clone());
            }
        }
    }
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    Response::from_parts(parts, axum::body::Body::from(value.to_string()))
}
