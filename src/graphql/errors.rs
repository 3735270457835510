//! Gives every GraphQL error an `extensions.code`, in one place.
//!
//! - parse errors: `GRAPHQL_PARSE_FAILED`; validation errors, limits included:
//!   `GRAPHQL_VALIDATION_FAILED`; other errors raised before execution (an unknown operation
//!   name): `BAD_REQUEST`. These are "request errors": no data, HTTP 400 under
//!   `application/graphql-response+json`.
//! - errors from the service layer carry an `AppError`: its code, and its public message
//!   (internal failures are logged there and answered generically).
//! - anything else raised during execution comes from async-graphql coercing an input value,
//!   so it is `BAD_USER_INPUT`.

use std::sync::Arc;

use async_graphql::{Response, ServerError};

use crate::error::AppError;

pub const PARSE_FAILED: &str = "GRAPHQL_PARSE_FAILED";
pub const VALIDATION_FAILED: &str = "GRAPHQL_VALIDATION_FAILED";
pub const BAD_REQUEST: &str = "BAD_REQUEST";

/// The codes that mean the operation never ran.
pub fn is_request_error_code(code: &str) -> bool {
    matches!(code, PARSE_FAILED | VALIDATION_FAILED | BAD_REQUEST)
}

/// Whether a response says its operation never ran (no data, a request error): over a
/// WebSocket it is answered with `error` and nothing after it.
pub fn never_ran(response: &Response) -> bool {
    response.data == async_graphql::Value::Null
        && response
            .errors
            .iter()
            .any(|error| code_of(error).is_some_and(|code| is_request_error_code(&code)))
}

/// Gives every error of a response its code. Parse errors, limits and operation selection
/// were coded before the operation ran (`execute.rs`); an uncoded error of a response with no
/// data and no path is one of async-graphql's validation rules.
pub(crate) fn assign_codes(response: &mut Response) {
    let never_ran = response.data == async_graphql::Value::Null;
    for error in &mut response.errors {
        assign_code(error, never_ran);
    }
}

/// Names, in every error of `response`, the request it answers, as the logs do.
pub fn stamp_request_id(response: &mut Response, request_id: &str) {
    for error in &mut response.errors {
        error
            .extensions
            .get_or_insert_with(Default::default)
            .set("requestId", request_id);
    }
}

pub fn code_of(error: &ServerError) -> Option<String> {
    error
        .extensions
        .as_ref()
        .and_then(|extensions| extensions.get("code"))
        .and_then(|code| match code {
            async_graphql::Value::String(code) => Some(code.clone()),
            _ => None,
        })
}

pub fn with_code(mut error: ServerError, code: &str) -> ServerError {
    error
        .extensions
        .get_or_insert_with(Default::default)
        .set("code", code);
    error
}

fn assign_code(error: &mut ServerError, never_ran: bool) {
    let app_error = error
        .source::<AppError>()
        .or_else(|| error.source::<Arc<AppError>>().map(Arc::as_ref));
    if let Some(app_error) = app_error {
        let code = app_error.code();
        let field = app_error.field().map(str::to_owned);
        app_error.log_if_server_fault();
        error.message = app_error.public_message();
        let extensions = error.extensions.get_or_insert_with(Default::default);
        extensions.set("code", code);
        if let Some(field) = field {
            extensions.set("field", field);
        }
        return;
    }
    if code_of(error).is_some() {
        return;
    }
    let code = if never_ran && error.path.is_empty() {
        VALIDATION_FAILED
    } else {
        "BAD_USER_INPUT"
    };
    error
        .extensions
        .get_or_insert_with(Default::default)
        .set("code", code);
}
