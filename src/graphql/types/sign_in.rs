use async_graphql::{ID, Object};
use chrono::{DateTime, Utc};
use entity::sign_in;

/// A Clerk session of a user's: one sign-in, from its start until it ended.
pub struct SignIn(pub(crate) sign_in::Model);

#[Object]
impl SignIn {
    /// Clerk's session id (`sess_...`).
    async fn session_id(&self) -> ID {
        ID(self.0.session_id.clone())
    }

    async fn started_at(&self) -> DateTime<Utc> {
        self.0.started_at
    }

    /// The session's last activity, as Clerk last reported it.
    async fn last_active_at(&self) -> DateTime<Utc> {
        self.0.last_active_at
    }

    /// `null` while the session may still be in use.
    async fn ended_at(&self) -> Option<DateTime<Utc>> {
        self.0.ended_at
    }

    /// Clerk's status: `active`, `ended`, `removed`, `revoked`, ...
    async fn status(&self) -> &str {
        &self.0.status
    }

    /// `desktop`, `mobile`, ... as Clerk saw it.
    async fn device_type(&self) -> Option<&str> {
        self.0.device_type.as_deref()
    }

    async fn browser(&self) -> Option<&str> {
        self.0.browser.as_deref()
    }

    /// The country Clerk located the sign-in in (ISO 3166 code).
    async fn country(&self) -> Option<&str> {
        self.0.country.as_deref()
    }
}
