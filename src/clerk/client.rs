//! The Clerk Backend API client: one place for the base URL, the API version, the secret key,
//! timeouts, and bounded retries with backoff and jitter on 429 and 5xx.

use std::time::Duration;

use rand::Rng;
use reqwest::{Method, StatusCode, header};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::model::{ClerkErrors, ClerkInvitation, ClerkUser, Jwks};
use crate::config::Secret;

/// One invitation of a `create_invitations` call.
#[derive(Debug, Clone)]
pub struct NewClerkInvitation {
    pub email: String,
    /// Copied to the user who accepts; carries userhub's invitation id.
    pub public_metadata: Value,
    pub redirect_url: Option<String>,
    pub if_taken: IfEmailTaken,
}

/// The Backend API version userhub is written against.
pub const API_VERSION: &str = "2026-05-12";

#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Tries in all, the first included.
    pub max_attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// A `Retry-After` longer than this is not waited for: the caller gets an error instead.
    pub max_retry_after: Duration,
    /// The limit for one HTTP exchange.
    pub request_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 4,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(3),
            max_retry_after: Duration::from_secs(10),
            request_timeout: Duration::from_secs(10),
        }
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum ClerkFailure {
    /// Clerk answered, and said no: a 4xx other than 429.
    #[error("Clerk refused the request ({status}, {code}): {message}")]
    Refused {
        status: u16,
        code: String,
        message: String,
    },
    /// Clerk could not be reached, timed out, kept failing or kept rate-limiting.
    #[error("Clerk is unavailable: {0}")]
    Unavailable(String),
    /// Clerk keeps answering 429, or asks for a longer wait than a request may take: try
    /// again after `retry_after` (a background job waits; a request gives up).
    #[error("Clerk is rate-limiting {call}: try again in {}s", retry_after.as_secs().max(1))]
    RateLimited { call: String, retry_after: Duration },
    /// Clerk answered with a body userhub cannot read.
    #[error("Clerk answered something unexpected: {0}")]
    Unreadable(String),
    /// A call that is not safe to repeat timed out or met a server error: Clerk may or may not
    /// have applied it. Its caller finds out (`create_invitation`) instead of sending it again.
    #[error("Clerk may or may not have applied the request: {0}")]
    Uncertain(String),
}

#[derive(Clone)]
pub struct ClerkClient {
    http: reqwest::Client,
    base_url: String,
    secret: Secret,
    policy: RetryPolicy,
    metrics: Option<std::sync::Arc<crate::metrics::Metrics>>,
}

impl std::fmt::Debug for ClerkClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClerkClient")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

/// Users to create (`POST /users`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct CreateUser {
    pub email_address: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_metadata: Option<Value>,
    pub skip_password_requirement: bool,
}

/// What Clerk does with an invitation to an email that already has an account or a pending
/// invitation (`ignore_existing`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IfEmailTaken {
    /// Refuse it (`form_identifier_exists`, `duplicate_record`): Clerk's default.
    Refuse,
    /// Create and send it all the same. The invitation then stays pending: Clerk copies its
    /// metadata only onto a user who signs up through it.
    InviteAnyway,
}

impl ClerkClient {
    pub fn new(base_url: &str, secret: Secret, policy: RetryPolicy) -> ClerkClient {
        let http = reqwest::Client::builder()
            .timeout(policy.request_timeout)
            .connect_timeout(Duration::from_secs(5))
            .user_agent(concat!("userhub/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        ClerkClient {
            http,
            base_url: base_url.trim_end_matches('/').to_owned(),
            secret,
            policy,
            metrics: None,
        }
    }

    /// Counts and times every call, its outcome and its retries into `metrics`.
    pub fn with_metrics(mut self, metrics: std::sync::Arc<crate::metrics::Metrics>) -> ClerkClient {
        self.metrics = Some(metrics);
        self
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// `GET /users/{id}`; `None` when Clerk has no such user.
    pub async fn get_user(&self, id: &str) -> Result<Option<ClerkUser>, ClerkFailure> {
        if !is_clerk_id(id) {
            return Ok(None);
        }
        match self
            .send(Method::GET, &format!("/users/{id}"), &[], None)
            .await
        {
            Ok(user) => Ok(Some(user)),
            Err(ClerkFailure::Refused { status: 404, .. }) => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// `GET /users` with the given query parameters.
    pub async fn list_users(
        &self,
        query: &[(&str, String)],
    ) -> Result<Vec<ClerkUser>, ClerkFailure> {
        self.send(Method::GET, "/users", query, None).await
    }

    /// `GET /users/count`.
    pub async fn count_users(&self) -> Result<i64, ClerkFailure> {
        let count: Value = self.send(Method::GET, "/users/count", &[], None).await?;
        count["total_count"]
            .as_i64()
            .ok_or_else(|| ClerkFailure::Unreadable("GET /users/count: no total_count".to_owned()))
    }

    pub async fn users_by_email(&self, email: &str) -> Result<Vec<ClerkUser>, ClerkFailure> {
        self.list_users(&[("email_address[]", email.to_owned())])
            .await
    }

    pub async fn create_user(&self, user: &CreateUser) -> Result<ClerkUser, ClerkFailure> {
        let body =
            serde_json::to_value(user).map_err(|err| ClerkFailure::Unreadable(err.to_string()))?;
        self.send(Method::POST, "/users", &[], Some(&body)).await
    }

    /// `PATCH /users/{id}/metadata`: Clerk deep-merges `public_metadata`; `null` removes a key.
    pub async fn merge_public_metadata(
        &self,
        id: &str,
        public_metadata: Value,
    ) -> Result<ClerkUser, ClerkFailure> {
        let body = json!({ "public_metadata": public_metadata });
        self.send(
            Method::PATCH,
            &format!("/users/{id}/metadata"),
            &[],
            Some(&body),
        )
        .await
    }

    /// `PATCH /users/{id}`: names. (Metadata goes through `merge_public_metadata`.)
    pub async fn update_names(
        &self,
        id: &str,
        first_name: Option<&str>,
        last_name: Option<&str>,
    ) -> Result<ClerkUser, ClerkFailure> {
        let mut body = serde_json::Map::new();
        if let Some(first_name) = first_name {
            body.insert("first_name".to_owned(), json!(first_name));
        }
        if let Some(last_name) = last_name {
            body.insert("last_name".to_owned(), json!(last_name));
        }
        self.send(
            Method::PATCH,
            &format!("/users/{id}"),
            &[],
            Some(&Value::Object(body)),
        )
        .await
    }

    /// `DELETE /users/{id}`. A user Clerk no longer has counts as deleted.
    pub async fn delete_user(&self, id: &str) -> Result<(), ClerkFailure> {
        match self
            .send::<Value>(Method::DELETE, &format!("/users/{id}"), &[], None)
            .await
        {
            Ok(_) | Err(ClerkFailure::Refused { status: 404, .. }) => Ok(()),
            Err(err) => Err(err),
        }
    }

    /// `POST /users/{id}/ban` (revokes every session) or `/unban`.
    pub async fn set_banned(&self, id: &str, banned: bool) -> Result<ClerkUser, ClerkFailure> {
        let action = if banned { "ban" } else { "unban" };
        self.send(Method::POST, &format!("/users/{id}/{action}"), &[], None)
            .await
    }

    /// `POST /invitations` with `notify: true`: Clerk sends the email. `public_metadata` is
    /// copied to the user who accepts.
    ///
    /// Creating is not safe to repeat: after a timeout or a server error Clerk may already have
    /// made the invitation (and sent its email), and a second `POST` would make another or be
    /// refused as a duplicate. So such an attempt is followed by a look-up of the pending
    /// invitations for the address, matched by `public_metadata[INVITATION_KEY]` (userhub's
    /// own id, unique per invitation), and only if none is found is it sent again.
    pub async fn create_invitation(
        &self,
        email: &str,
        public_metadata: Value,
        redirect_url: Option<&str>,
        if_taken: IfEmailTaken,
    ) -> Result<ClerkInvitation, ClerkFailure> {
        let key = public_metadata
            .get(crate::clerk::model::INVITATION_KEY)
            .cloned()
            .filter(|key| !key.is_null());
        let mut body = json!({
            "email_address": email,
            "public_metadata": public_metadata,
            "notify": true,
            "ignore_existing": if_taken == IfEmailTaken::InviteAnyway,
        });
        if let Some(redirect_url) = redirect_url {
            body["redirect_url"] = json!(redirect_url);
        }
        let mut attempt = 0;
        loop {
            attempt += 1;
            let failure = match self
                .send_with(Method::POST, "/invitations", &[], Some(&body), false)
                .await
            {
                Err(ClerkFailure::Uncertain(reason)) => reason,
                done => return done,
            };
            // Without a key of ours there is no telling Clerk's invitation from another's.
            let Some(key) = &key else {
                return Err(ClerkFailure::Unavailable(failure));
            };
            if let Some(made) = self.pending_invitation(email, key).await? {
                return Ok(made);
            }
            if attempt >= self.policy.max_attempts {
                return Err(ClerkFailure::Unavailable(format!(
                    "{failure}, {attempt} times"
                )));
            }
            self.count_retry("POST /invitations", "uncertain");
            tokio::time::sleep(self.backoff(attempt)).await;
        }
    }

    /// `POST /invitations/bulk`: up to Clerk's 10 invitations in one call, all made or none,
    /// answered in the order asked. Each item's `public_metadata` must carry userhub's
    /// invitation id (`INVITATION_KEY`): after an uncertain failure the pending invitations
    /// are read, those already made are kept, and only the rest are sent again. A 429 that
    /// outlasts the retries fails `RateLimited`, for the caller to wait out.
    pub async fn create_invitations(
        &self,
        items: &[NewClerkInvitation],
    ) -> Result<Vec<ClerkInvitation>, ClerkFailure> {
        let key_of = |item: &NewClerkInvitation| {
            item.public_metadata
                .get(crate::clerk::model::INVITATION_KEY)
                .cloned()
                .unwrap_or(Value::Null)
        };
        let mut made: Vec<Option<ClerkInvitation>> = vec![None; items.len()];
        let mut attempt = 0;
        loop {
            attempt += 1;
            let missing: Vec<usize> = (0..items.len()).filter(|&i| made[i].is_none()).collect();
            if missing.is_empty() {
                return Ok(made.into_iter().flatten().collect());
            }
            let body = Value::Array(
                missing
                    .iter()
                    .map(|&i| {
                        let item = &items[i];
                        let mut body = json!({
                            "email_address": item.email,
                            "public_metadata": item.public_metadata,
                            "notify": true,
                            "ignore_existing": item.if_taken == IfEmailTaken::InviteAnyway,
                        });
                        if let Some(redirect_url) = &item.redirect_url {
                            body["redirect_url"] = json!(redirect_url);
                        }
                        body
                    })
                    .collect(),
            );
            let failure = match self
                .send_with::<Vec<ClerkInvitation>>(
                    Method::POST,
                    "/invitations/bulk",
                    &[],
                    Some(&body),
                    false,
                )
                .await
            {
                Ok(answered) => {
                    if answered.len() != missing.len() {
                        return Err(ClerkFailure::Unreadable(format!(
                            "POST /invitations/bulk answered {} invitations for {}",
                            answered.len(),
                            missing.len()
                        )));
                    }
                    for (i, invitation) in missing.into_iter().zip(answered) {
                        made[i] = Some(invitation);
                    }
                    continue;
                }
                Err(ClerkFailure::Uncertain(reason)) => reason,
                Err(other) => return Err(other),
            };
            if items.iter().any(|item| key_of(item).is_null()) {
                return Err(ClerkFailure::Unavailable(failure));
            }
            for invitation in self.pending_invitations().await? {
                let key = invitation
                    .public_metadata
                    .get(crate::clerk::model::INVITATION_KEY)
                    .cloned();
                if let Some(i) = missing.iter().copied().find(|&i| {
                    key.as_ref() == Some(&key_of(&items[i]))
                        && invitation
                            .email_address
                            .eq_ignore_ascii_case(&items[i].email)
                }) {
                    made[i] = Some(invitation);
                }
            }
            if made.iter().all(Option::is_some) {
                continue;
            }
            if attempt >= self.policy.max_attempts {
                return Err(ClerkFailure::Unavailable(format!(
                    "{failure}, {attempt} times"
                )));
            }
            self.count_retry("POST /invitations/bulk", "uncertain");
            tokio::time::sleep(self.backoff(attempt)).await;
        }
    }

    /// Every pending invitation.
    async fn pending_invitations(&self) -> Result<Vec<ClerkInvitation>, ClerkFailure> {
        const PAGE: usize = 500;
        let mut all = Vec::new();
        loop {
            let page = self
                .list_invitations(Some("pending"), PAGE, all.len())
                .await?;
            let last = page.len() < PAGE;
            all.extend(page);
            if last {
                return Ok(all);
            }
        }
    }

    /// The pending invitation to `email` that carries `key` in its public metadata.
    async fn pending_invitation(
        &self,
        email: &str,
        key: &Value,
    ) -> Result<Option<ClerkInvitation>, ClerkFailure> {
        const PAGE: usize = 500;
        let mut offset = 0;
        loop {
            let page = self.list_invitations(Some("pending"), PAGE, offset).await?;
            let found = page.iter().find(|invitation| {
                invitation.email_address.eq_ignore_ascii_case(email)
                    && invitation
                        .public_metadata
                        .get(crate::clerk::model::INVITATION_KEY)
                        == Some(key)
            });
            if let Some(found) = found {
                return Ok(Some(found.clone()));
            }
            if page.len() < PAGE {
                return Ok(None);
            }
            offset += PAGE;
        }
    }

    /// `GET /invitations`, newest first; `status` narrows to pending, accepted, revoked or
    /// expired.
    pub async fn list_invitations(
        &self,
        status: Option<&str>,
        limit: usize,
        offset: usize,
    ) -> Result<Vec<ClerkInvitation>, ClerkFailure> {
        let mut query = vec![
            ("limit", limit.clamp(1, 500).to_string()),
            ("offset", offset.to_string()),
        ];
        if let Some(status) = status {
            query.push(("status", status.to_owned()));
        }
        self.send(Method::GET, "/invitations", &query, None).await
    }

    /// `POST /invitations/{id}/revoke`.
    pub async fn revoke_invitation(&self, id: &str) -> Result<ClerkInvitation, ClerkFailure> {
        self.send(
            Method::POST,
            &format!("/invitations/{id}/revoke"),
            &[],
            None,
        )
        .await
    }

    /// `GET /jwks`: the keys Clerk signs session tokens with.
    pub async fn jwks(&self) -> Result<Jwks, ClerkFailure> {
        self.send(Method::GET, "/jwks", &[], None).await
    }

    /// Sends one call, retrying what can be retried, and reads the answer as `T`.
    async fn send<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<T, ClerkFailure> {
        self.send_with(method, path, query, body, true).await
    }

    /// `send`; a call that is not `safe_to_repeat` is not sent again once Clerk may have
    /// received it (a timeout, a 5xx): it fails `Uncertain`. A refused connection or a 429
    /// means Clerk did not act, so those are retried either way.
    async fn send_with<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
        safe_to_repeat: bool,
    ) -> Result<T, ClerkFailure> {
        let started = std::time::Instant::now();
        let call = format!("{method} {}", path_template(path));
        let result = self
            .send_retrying(&call, method, path, query, body, safe_to_repeat)
            .await;
        if let Some(metrics) = &self.metrics {
            let outcome = match &result {
                Ok(_) => "ok",
                Err(ClerkFailure::Refused { .. }) => "refused",
                Err(ClerkFailure::Unavailable(_)) => "unavailable",
                Err(ClerkFailure::RateLimited { .. }) => "rate_limited",
                Err(ClerkFailure::Unreadable(_)) => "unreadable",
                Err(ClerkFailure::Uncertain(_)) => "uncertain",
            };
            metrics.observe_clerk(&call, outcome, started.elapsed());
        }
        result
    }

    fn count_retry(&self, call: &str, reason: &str) {
        if let Some(metrics) = &self.metrics {
            metrics.count_clerk_retry(call, reason);
        }
    }

    async fn send_retrying<T: DeserializeOwned>(
        &self,
        call: &str,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
        safe_to_repeat: bool,
    ) -> Result<T, ClerkFailure> {
        let url = format!("{}{path}", self.base_url);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut request = self
                .http
                .request(method.clone(), &url)
                .bearer_auth(self.secret.expose())
                .header("Clerk-API-Version", API_VERSION)
                .query(query);
            if let Some(body) = body {
                request = request.json(body);
            }
            let last = attempt >= self.policy.max_attempts;
            let outcome = request.send().await;
            let response = match outcome {
                Ok(response) => response,
                Err(err) => {
                    // The error text names the URL, never the key.
                    let reason = if err.is_timeout() {
                        "timed out".to_owned()
                    } else {
                        format!("cannot connect ({})", without_url(&err))
                    };
                    if !safe_to_repeat && !err.is_connect() {
                        return Err(ClerkFailure::Uncertain(format!("{method} {path} {reason}")));
                    }
                    if last {
                        return Err(ClerkFailure::Unavailable(format!(
                            "{method} {path} {reason} after {attempt} attempts"
                        )));
                    }
                    self.count_retry(
                        call,
                        if err.is_timeout() {
                            "timeout"
                        } else {
                            "connect"
                        },
                    );
                    tokio::time::sleep(self.backoff(attempt)).await;
                    continue;
                }
            };
            let status = response.status();
            if status.is_success() {
                let bytes = response
                    .bytes()
                    .await
                    .map_err(|err| ClerkFailure::Unavailable(without_url(&err)))?;
                return serde_json::from_slice(&bytes)
                    .map_err(|err| ClerkFailure::Unreadable(format!("{method} {path}: {err}")));
            }
            if status.is_server_error() && !safe_to_repeat {
                return Err(ClerkFailure::Uncertain(format!(
                    "{method} {path} answered {status}"
                )));
            }
            if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
                let retry_after = retry_after(response.headers());
                let limited = status == StatusCode::TOO_MANY_REQUESTS;
                if last {
                    if limited {
                        return Err(ClerkFailure::RateLimited {
                            call: call.to_owned(),
                            retry_after: retry_after.unwrap_or(self.policy.max_delay),
                        });
                    }
                    return Err(ClerkFailure::Unavailable(format!(
                        "{method} {path} answered {status} {attempt} times"
                    )));
                }
                let wait = match retry_after {
                    Some(wait) if wait > self.policy.max_retry_after => {
                        return Err(ClerkFailure::RateLimited {
                            call: call.to_owned(),
                            retry_after: wait,
                        });
                    }
                    Some(wait) => wait,
                    None => self.backoff(attempt),
                };
                let reason = if status == StatusCode::TOO_MANY_REQUESTS {
                    "rate_limited"
                } else {
                    "server_error"
                };
                self.count_retry(call, reason);
                tokio::time::sleep(wait).await;
                continue;
            }
            let errors: ClerkErrors = response.json().await.unwrap_or_default();
            let first = errors.errors.into_iter().next().unwrap_or_default();
            return Err(ClerkFailure::Refused {
                status: status.as_u16(),
                code: if first.code.is_empty() {
                    status.as_str().to_owned()
                } else {
                    first.code
                },
                message: if first.long_message.is_empty() {
                    first.message
                } else {
                    first.long_message
                },
            });
        }
    }

    /// Exponential backoff with up to 50 % jitter, so retrying callers spread out.
    fn backoff(&self, attempt: u32) -> std::time::Duration {
        let exponential = self
            .policy
            .base_delay
            .saturating_mul(1 << attempt.saturating_sub(1).min(10));
        let capped = exponential.min(self.policy.max_delay);
        let jitter = rand::thread_rng().gen_range(0..=capped.as_millis() as u64 / 2);
        capped + Duration::from_millis(jitter)
    }
}

fn retry_after(headers: &header::HeaderMap) -> Option<Duration> {
    headers
        .get(header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

fn without_url(err: &reqwest::Error) -> String {
    let mut text = err.to_string();
    if let Some(url) = err.url() {
        text = text.replace(url.as_str(), "");
    }
    text
}

/// A Backend API path with its ids replaced, for metric labels: `/users/{id}/metadata`.
fn path_template(path: &str) -> String {
    const WORDS: [&str; 9] = [
        "users",
        "bulk",
        "count",
        "metadata",
        "ban",
        "unban",
        "invitations",
        "revoke",
        "jwks",
    ];
    path.split('/')
        .map(|segment| {
            if segment.is_empty() || WORDS.contains(&segment) {
                segment
            } else {
                "{id}"
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Clerk ids are `user_` and base62; anything else is not one, and is not put into a URL.
pub fn is_clerk_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}
