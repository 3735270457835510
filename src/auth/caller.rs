//! Who is making a request: a `Caller`, and the credentials a request carries. Turning a
//! token into a caller reads the database, so it is a service (`service::sessions`).

use axum::http::{HeaderMap, header};
use entity::user;

use crate::error::AppError;
use crate::events::Origin;

/// Who is making a request.
#[derive(Debug, Clone)]
pub enum Caller {
    Anonymous,
    /// Boxed: a caller travels with every request, mostly anonymous or cheap to move.
    User(Box<Actor>),
}

/// A signed-in, active user.
#[derive(Debug, Clone)]
pub struct Actor {
    pub user: user::Model,
    pub session_id: Option<String>,
}

impl Caller {
    /// The signed-in user, or `UNAUTHENTICATED`.
    pub fn actor(&self) -> Result<&Actor, AppError> {
        match self {
            Caller::User(actor) => Ok(actor),
            Caller::Anonymous => Err(AppError::Unauthenticated(
                "sign in: send a Clerk session token as `Authorization: Bearer <token>`".to_owned(),
            )),
        }
    }
}

impl Actor {
    /// Where this actor's changes come from, for the audit trail.
    pub fn origin(&self, correlation_id: Option<String>) -> Origin {
        Origin::user(self.user.id, correlation_id)
    }
}

/// The session token of a request: `Authorization: Bearer` (cross-origin clients) or the
/// `__session` cookie (same-origin pages), as Clerk's SDKs send it.
pub fn session_token(headers: &HeaderMap) -> Option<String> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(bearer_token);
    bearer.or_else(|| {
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|cookies| cookies.split(';'))
            .filter_map(|cookie| cookie.trim().split_once('='))
            .find(|(name, _)| *name == "__session")
            .map(|(_, value)| value.trim().to_owned())
            .filter(|value| !value.is_empty())
    })
}

/// `Bearer <token>`, with the scheme in any case.
pub fn bearer_token(value: &str) -> Option<String> {
    let (scheme, token) = value.trim().split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty())
        .then(|| token.trim().to_owned())
}
