//! The one error type of the service layer and how it leaves the process.
//!
//! Policy: every failure a caller can act on is a variant with a stable code
//! (`AppError::code`); it is mapped once to GraphQL (`extensions.code`, in
//! `graphql::errors`) and once to HTTP (`IntoResponse` below). Database and internal failures
//! are logged with their cause chain once, where they leave the process (`ServerFault`: the
//! request middleware for HTTP answers, the GraphQL error mapping for GraphQL errors), and the
//! caller gets a generic message: the details of a 500 are for operators, not clients. Error
//! answers carry the request's id, put in as they are made (`current_request_id`).

use axum::{
    Json,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use std::sync::Arc;

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

    /// The message a client sees: a failure of the server's own is named, not detailed (its
    /// causes go to the log, `ServerFault`).
    pub fn public_message(&self) -> String {
        match self {
            AppError::Database(err) if let Some(trouble) = storage_trouble(err) => {
                format!("{}; try again later", trouble.describe())
            }
            AppError::Database(_) | AppError::Internal(_) => {
                "internal server error: the failure was logged".to_owned()
            }
            AppError::Unrecorded(_) => {
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
    let mut error = json!({ "code": code, "message": message.into() });
    if let Some(request_id) = current_request_id() {
        error["requestId"] = json!(request_id);
    }
    (status, Json(json!({ "error": error }))).into_response()
}

impl IntoResponse for AppError {
    /// The JSON error answer. A failure of the server's own (not the caller's) travels with
    /// the answer as a `ServerFault`, which the request middleware logs once, in the request's
    /// span.
    fn into_response(self) -> Response {
        let mut response = json_error(self.status(), self.code(), self.public_message());
        if let Some(fault) = ServerFault::of(&self) {
            response.extensions_mut().insert(fault);
        }
        response
    }
}

tokio::task_local! {
    /// The id of the request being answered (`x-request-id`), set by the request middleware
    /// for the handling of each request: error answers carry it as they are made.
    static REQUEST_ID: Arc<str>;
}

/// Runs `handling` with `request_id` as the request being answered.
pub async fn answering<F: std::future::Future>(
    request_id: Option<Arc<str>>,
    handling: F,
) -> F::Output {
    match request_id {
        Some(request_id) => REQUEST_ID.scope(request_id, handling).await,
        None => handling.await,
    }
}

/// The id of the request being answered, when there is one.
pub fn current_request_id() -> Option<Arc<str>> {
    REQUEST_ID.try_with(Arc::clone).ok()
}

/// A failure of the server's own, with its causes, for the log: the client is told less.
#[derive(Debug, Clone)]
pub struct ServerFault {
    pub summary: String,
    pub causes: String,
}

impl ServerFault {
    /// `Some` for the failures an operator must see (the database, a bug, a change Clerk
    /// accepted and userhub could not record); `None` for the caller's own errors.
    pub fn of(error: &AppError) -> Option<ServerFault> {
        let summary = match error {
            AppError::Database(err) => match storage_trouble(err) {
                Some(trouble) => format!("request failed: {}", trouble.describe()),
                None => "request failed".to_owned(),
            },
            AppError::Internal(_) => "request failed".to_owned(),
            AppError::Unrecorded(_) => "a change Clerk accepted was not recorded".to_owned(),
            _ => return None,
        };
        Some(ServerFault {
            summary,
            causes: error_chain(error),
        })
    }

    pub fn log(&self) {
        tracing::error!(error = %self.causes, "{}", self.summary);
    }
}

impl AppError {
    /// Logs this error if it is a failure of the server's own: where an error leaves userhub
    /// other than as an HTTP answer (a GraphQL error, a WebSocket message, one item of a bulk
    /// answer), the code that turns it into that message calls this once.
    pub fn log_if_server_fault(&self) {
        if let Some(fault) = ServerFault::of(self) {
            fault.log();
        }
    }
}
