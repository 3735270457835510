//! A Clerk emulator: an HTTP server speaking the part of Clerk's Backend API that userhub uses,
//! with Clerk's wire shapes and error bodies, its users held in memory. It signs RS256 session
//! tokens and serves their JWKS. Integration tests and local mode talk to it over real HTTP;
//! `userhub clerk-emulator` runs it alone.
//!
//! Besides Clerk's API under `/v1`, it answers `POST /__emulator/session_tokens` (mint a
//! session token for a user), which the real Clerk does through its Frontend API.

mod keys;
mod routes;
mod store;
pub mod webhooks;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rand::Rng;
use rand::distributions::Alphanumeric;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

pub use keys::SigningKey;
pub use store::Refusal;
use store::Store;

use super::model::ClerkUser;

/// The emulator's state, shared by its routes and by the process that embeds it.
#[derive(Clone)]
pub struct Emulator {
    shared: Arc<Shared>,
}

struct Shared {
    store: Mutex<Store>,
    /// Where change events go, once webhooks are configured.
    webhooks: Mutex<Option<tokio::sync::mpsc::UnboundedSender<webhooks::Event>>>,
    deliveries: Arc<Mutex<Vec<webhooks::Delivery>>>,
    /// Events whose delivery failed (no answer, or not 2xx), until `recover_webhooks`.
    failed_deliveries: Arc<Mutex<Vec<webhooks::Event>>>,
    /// Every Backend API request received: method, path and JSON body, for contract tests.
    requests: Mutex<Vec<(String, String, Option<Value>)>>,
    /// Failures to inject into the next Backend API calls, oldest first.
    faults: Mutex<std::collections::VecDeque<Fault>>,
    keys: Mutex<Keyring>,
    secret: String,
    /// `iss` of the tokens it mints: the address it serves on.
    issuer: Mutex<String>,
    /// `azp` of the tokens it mints.
    authorized_party: String,
    /// Sessions begun with `sign_in`, by id: Clerk's session objects.
    sessions: Mutex<std::collections::HashMap<String, Value>>,
    bulk_invitations: Mutex<BulkInvitationCalls>,
}

/// Clerk's limits on `POST /invitations/bulk`: at most `per_call` invitations in one call, and
/// `calls` calls in any `window` (an hour at Clerk; tests shorten it). A call over the rate is
/// answered 429 with `Retry-After`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BulkInvitationLimits {
    pub per_call: usize,
    pub calls: usize,
    pub window: Duration,
}

impl Default for BulkInvitationLimits {
    fn default() -> BulkInvitationLimits {
        BulkInvitationLimits {
            per_call: 10,
            calls: 25,
            window: Duration::from_secs(3600),
        }
    }
}

/// The bulk invitation calls of the current window, and how many were answered 429.
#[derive(Default)]
struct BulkInvitationCalls {
    limits: BulkInvitationLimits,
    admitted: std::collections::VecDeque<std::time::Instant>,
    refused: usize,
}

/// What the emulator saw of bulk invitation calls: a test checks the limits held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BulkInvitationUsage {
    pub admitted: usize,
    pub rate_limited: usize,
}

/// Where a sign-in came from, as Clerk's session activity describes it.
#[derive(Debug, Clone)]
pub struct SignInDevice {
    pub device_type: &'static str,
    pub browser: &'static str,
    pub country: &'static str,
}

impl Default for SignInDevice {
    fn default() -> SignInDevice {
        SignInDevice {
            device_type: "desktop",
            browser: "Firefox",
            country: "GB",
        }
    }
}

/// How a session ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEnd {
    /// The user signed out: `session.ended`.
    SignedOut,
    /// `session.removed`.
    Removed,
    /// An administrator revoked it: `session.revoked`.
    Revoked,
}

struct Keyring {
    current: Arc<SigningKey>,
    retired: Vec<Arc<SigningKey>>,
}

/// A failure the emulator answers one Backend API call with (the JWKS excepted), as Clerk does
/// under load or in an outage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// 429 with `Retry-After` in seconds.
    RateLimited { retry_after_seconds: u64 },
    /// 500 with Clerk's error body.
    ServerError,
    /// Answers normally, after this long.
    Slow(Duration),
    /// Does what was asked at once (its webhook goes out), then holds the answer this long:
    /// the webhook overtakes the answer, as it can when Clerk's answer is slow to come back.
    SlowAnswer(Duration),
}

/// A user to create.
#[derive(Debug, Clone, Default)]
pub struct NewUser {
    pub email: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub public_metadata: Value,
}

/// Options for a minted session token.
#[derive(Debug, Clone)]
pub struct TokenOptions {
    pub ttl: Duration,
    /// Claims to add or override, for tests of refused tokens.
    pub extra_claims: Value,
}

impl Default for TokenOptions {
    fn default() -> Self {
        TokenOptions {
            ttl: Duration::from_secs(60),
            extra_claims: json!({}),
        }
    }
}

/// The origin the emulator's tokens say they were made for.
pub const DEFAULT_AUTHORIZED_PARTY: &str = "http://localhost:3000";

impl Emulator {
    pub fn new(secret: impl Into<String>, key: Arc<SigningKey>) -> Emulator {
        Emulator {
            shared: Arc::new(Shared {
                store: Mutex::new(Store::default()),
                webhooks: Mutex::new(None),
                deliveries: Arc::new(Mutex::new(Vec::new())),
                failed_deliveries: Arc::new(Mutex::new(Vec::new())),
                requests: Mutex::new(Vec::new()),
                faults: Mutex::new(std::collections::VecDeque::new()),
                sessions: Mutex::new(std::collections::HashMap::new()),
                bulk_invitations: Mutex::new(BulkInvitationCalls::default()),
                keys: Mutex::new(Keyring {
                    current: key,
                    retired: Vec::new(),
                }),
                secret: secret.into(),
                issuer: Mutex::new("http://127.0.0.1".to_owned()),
                authorized_party: DEFAULT_AUTHORIZED_PARTY.to_owned(),
            }),
        }
    }

    pub fn secret(&self) -> &str {
        &self.shared.secret
    }

    /// The key new tokens are signed with.
    pub fn signing_key(&self) -> Arc<SigningKey> {
        lock(&self.shared.keys).current.clone()
    }

    /// Every key of the JWKS, the current one first.
    pub fn signing_keys(&self) -> Vec<Arc<SigningKey>> {
        let keys = lock(&self.shared.keys);
        std::iter::once(keys.current.clone())
            .chain(keys.retired.iter().cloned())
            .collect()
    }

    /// Signs new tokens with `key` from now on; the old keys stay in the JWKS (Clerk's key
    /// rotation).
    pub fn rotate_key(&self, key: Arc<SigningKey>) {
        let mut keys = lock(&self.shared.keys);
        let old = std::mem::replace(&mut keys.current, key);
        keys.retired.push(old);
    }

    pub fn issuer(&self) -> String {
        lock(&self.shared.issuer).clone()
    }

    /// The store, locked. Dropping the guard hands the webhook events of whatever changed to
    /// delivery, so every change path emits its events without having to remember to.
    fn store(&self) -> StoreGuard<'_> {
        StoreGuard {
            store: lock(&self.shared.store),
            emulator: self,
        }
    }

    /// Delivers a webhook for every user change from now on, to `endpoint`.
    pub fn deliver_webhooks(&self, endpoint: webhooks::Endpoint) {
        let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
        *lock(&self.shared.webhooks) = Some(sender);
        tokio::spawn(webhooks::deliver(
            endpoint,
            receiver,
            self.shared.deliveries.clone(),
            self.shared.failed_deliveries.clone(),
        ));
    }

    /// Sends again, in their order, every event whose delivery failed (Svix's "recover
    /// failed messages"); returns how many.
    pub fn recover_webhooks(&self) -> usize {
        let failed = std::mem::take(&mut *lock(&self.shared.failed_deliveries));
        let count = failed.len();
        if let Some(sender) = lock(&self.shared.webhooks).as_ref() {
            for event in failed {
                let _ = sender.send(event);
            }
        }
        count
    }

    /// Every webhook delivery attempted so far.
    pub fn webhook_deliveries(&self) -> Vec<webhooks::Delivery> {
        lock(&self.shared.deliveries).clone()
    }

    fn publish(&self, events: Vec<(&'static str, Value)>) {
        if events.is_empty() {
            return;
        }
        if let Some(sender) = lock(&self.shared.webhooks).as_ref() {
            for (kind, data) in events {
                let _ = sender.send(webhooks::envelope(kind, data));
            }
        }
    }

    /// Creates a user as the Backend API's `POST /users` does.
    pub fn create_user(&self, user: NewUser) -> Result<ClerkUser, Refusal> {
        let created = self.store().create(user)?;
        parse(created).ok_or_else(|| {
            Refusal::new(
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                "internal_clerk_error",
                "the emulator made a user it cannot read",
            )
        })
    }

    /// Puts back a user userhub already knows, under the same Clerk id: local mode rebuilds its
    /// emulator from the database at start, since the emulator keeps nothing on disk.
    pub fn restore_user(&self, clerk_id: &str, user: NewUser) -> Result<ClerkUser, Refusal> {
        let restored = self.store().restore(clerk_id, user)?;
        parse(restored).ok_or_else(|| {
            Refusal::new(
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                "internal_clerk_error",
                "the emulator made a user it cannot read",
            )
        })
    }

    /// Deep-merges into a user's public metadata, as `PATCH /users/{id}/metadata` does.
    pub fn merge_public_metadata(&self, id: &str, patch: Value) -> Option<ClerkUser> {
        self.store()
            .merge_metadata(id, &json!({ "public_metadata": patch }))
            .and_then(parse)
    }

    /// Changes a user's names, as `PATCH /users/{id}` does.
    pub fn update_names(
        &self,
        id: &str,
        first_name: Option<&str>,
        last_name: Option<&str>,
    ) -> Option<ClerkUser> {
        self.store()
            .update(
                id,
                &json!({ "first_name": first_name, "last_name": last_name }),
            )
            .ok()
            .and_then(parse)
    }

    /// Deletes a user, as `DELETE /users/{id}` does.
    pub fn delete_user(&self, id: &str) -> bool {
        self.store().delete(id).is_some()
    }

    /// Bans or unbans a user, as `POST /users/{id}/ban` and `/unban` do.
    pub fn set_banned(&self, id: &str, banned: bool) -> Option<ClerkUser> {
        self.store().set_banned(id, banned).and_then(parse)
    }

    /// A person accepts an invitation: their user is created with its email and metadata.
    pub fn accept_invitation(
        &self,
        id: &str,
        first_name: Option<String>,
        last_name: Option<String>,
    ) -> Result<ClerkUser, Refusal> {
        let user = self.store().accept(id, first_name, last_name)?;
        parse(user).ok_or_else(|| {
            Refusal::new(
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                "internal_clerk_error",
                "the emulator made a user it cannot read",
            )
        })
    }

    /// An invitation as Clerk holds it.
    pub fn invitation(&self, id: &str) -> Option<Value> {
        self.store().invitation(id)
    }

    /// The invitation emails Clerk would have sent: (address, invitation id).
    pub fn sent_invitation_emails(&self) -> Vec<(String, String)> {
        self.store().sent_emails()
    }

    /// Every user, in no particular order.
    pub fn users(&self) -> Vec<ClerkUser> {
        self.store().all().into_iter().filter_map(parse).collect()
    }

    pub fn user(&self, id: &str) -> Option<ClerkUser> {
        self.store().get(id).and_then(parse)
    }

    /// Every Backend API request received so far: method, path and JSON body.
    pub fn requests(&self) -> Vec<(String, String, Option<Value>)> {
        lock(&self.shared.requests).clone()
    }

    fn record(&self, method: String, path: String, body: Option<Value>) {
        lock(&self.shared.requests).push((method, path, body));
    }

    /// Answers the next `times` Backend API calls with `fault`.
    pub fn inject(&self, fault: Fault, times: usize) {
        let mut faults = lock(&self.shared.faults);
        faults.extend(std::iter::repeat_n(fault, times));
    }

    /// Sets the limits of `POST /invitations/bulk` (Clerk's by default).
    pub fn set_bulk_invitation_limits(&self, limits: BulkInvitationLimits) {
        lock(&self.shared.bulk_invitations).limits = limits;
    }

    pub fn bulk_invitation_limits(&self) -> BulkInvitationLimits {
        lock(&self.shared.bulk_invitations).limits
    }

    /// Counts a bulk invitation call against the window, or answers how long until it may be
    /// made.
    fn admit_bulk_invitation_call(&self) -> Result<(), Duration> {
        let mut calls = lock(&self.shared.bulk_invitations);
        let now = std::time::Instant::now();
        let window = calls.limits.window;
        while calls
            .admitted
            .front()
            .is_some_and(|admitted| now.duration_since(*admitted) >= window)
        {
            calls.admitted.pop_front();
        }
        if calls.admitted.len() < calls.limits.calls {
            calls.admitted.push_back(now);
            return Ok(());
        }
        calls.refused += 1;
        let oldest = calls.admitted.front().copied().unwrap_or(now);
        Err(window.saturating_sub(now.duration_since(oldest)))
    }

    /// Bulk invitation calls admitted within the current window, and all refused with 429.
    pub fn bulk_invitation_usage(&self) -> BulkInvitationUsage {
        let calls = lock(&self.shared.bulk_invitations);
        BulkInvitationUsage {
            admitted: calls.admitted.len(),
            rate_limited: calls.refused,
        }
    }

    /// Drops every fault not yet used.
    pub fn clear_faults(&self) {
        lock(&self.shared.faults).clear();
    }

    fn next_fault(&self) -> Option<Fault> {
        lock(&self.shared.faults).pop_front()
    }

    pub fn user_count(&self) -> usize {
        self.store().len()
    }

    /// Signs a session token for a user, with Clerk's claims.
    pub fn mint_session_token(
        &self,
        user_id: &str,
        options: TokenOptions,
    ) -> anyhow::Result<String> {
        let now = chrono::Utc::now().timestamp();
        let mut claims = json!({
            "sub": user_id,
            "sid": format!("sess_{}", random_id(27)),
            "iss": self.issuer(),
            "azp": self.shared.authorized_party,
            "iat": now,
            "nbf": now - 5,
            "exp": now + options.ttl.as_secs() as i64,
            "v": 2,
        });
        if let (Some(claims), Some(extra)) =
            (claims.as_object_mut(), options.extra_claims.as_object())
        {
            for (key, value) in extra {
                claims.insert(key.clone(), value.clone());
            }
        }
        self.signing_key().sign(&claims)
    }

    /// Signs a user in as Clerk does: a session begins (`session.created` is sent) and a
    /// session token for it is minted. Answers the session id and the token; `None` for an
    /// unknown or banned user.
    pub fn sign_in(&self, user_id: &str, device: SignInDevice) -> Option<(String, String)> {
        let user = self.user(user_id).filter(|user| !user.banned)?;
        let now = chrono::Utc::now().timestamp_millis();
        let session_id = format!("sess_{}", random_id(27));
        let session = json!({
            "object": "session",
            "id": session_id,
            "user_id": user.id,
            "client_id": format!("client_{}", random_id(27)),
            "status": "active",
            "last_active_at": now,
            "latest_activity": {
                "object": "session_activity",
                "id": format!("sess_activity_{}", random_id(27)),
                "device_type": device.device_type,
                "is_mobile": device.device_type == "mobile",
                "browser_name": device.browser,
                "country": device.country,
            },
            "expire_at": now + 7 * 24 * 3_600_000,
            "abandon_at": now + 30 * 24 * 3_600_000,
            "created_at": now,
            "updated_at": now,
        });
        lock(&self.shared.sessions).insert(session_id.clone(), session.clone());
        self.publish(vec![("session.created", session)]);
        let token = self
            .mint_session_token(
                user_id,
                TokenOptions {
                    extra_claims: json!({ "sid": session_id }),
                    ..TokenOptions::default()
                },
            )
            .ok()?;
        Some((session_id, token))
    }

    /// Ends a session begun with `sign_in`: `session.ended` (signed out), `session.removed`
    /// or `session.revoked`, as `how` says. Answers the session as it now is; `None` for an
    /// unknown one.
    pub fn end_session(&self, session_id: &str, how: SessionEnd) -> Option<Value> {
        let now = chrono::Utc::now().timestamp_millis();
        let (kind, status) = match how {
            SessionEnd::SignedOut => ("session.ended", "ended"),
            SessionEnd::Removed => ("session.removed", "removed"),
            SessionEnd::Revoked => ("session.revoked", "revoked"),
        };
        let session = {
            let mut sessions = lock(&self.shared.sessions);
            let session = sessions.get_mut(session_id)?;
            session["status"] = json!(status);
            session["last_active_at"] = json!(now);
            session["updated_at"] = json!(now);
            session.clone()
        };
        self.publish(vec![(kind, session.clone())]);
        Some(session)
    }

    /// Serves the emulator on `address` (port 0 for any free port) until the handle is dropped.
    pub async fn start(self, address: SocketAddr) -> anyhow::Result<RunningEmulator> {
        let listener = TcpListener::bind(address).await?;
        let local = listener.local_addr()?;
        *lock(&self.shared.issuer) = format!("http://{local}");
        let (stop, stopped) = oneshot::channel::<()>();
        let router = routes::router(self.clone());
        tokio::spawn(async move {
            let serve = axum::serve(listener, router).with_graceful_shutdown(async move {
                let _ = stopped.await;
            });
            if let Err(err) = serve.await {
                tracing::error!(error = %err, "the Clerk emulator stopped");
            }
        });
        Ok(RunningEmulator {
            emulator: self,
            address: local,
            _stop: stop,
        })
    }
}

struct StoreGuard<'a> {
    store: MutexGuard<'a, Store>,
    emulator: &'a Emulator,
}

impl std::ops::Deref for StoreGuard<'_> {
    type Target = Store;

    fn deref(&self) -> &Store {
        &self.store
    }
}

impl std::ops::DerefMut for StoreGuard<'_> {
    fn deref_mut(&mut self) -> &mut Store {
        &mut self.store
    }
}

impl Drop for StoreGuard<'_> {
    fn drop(&mut self) {
        let events = self.store.take_events();
        self.emulator.publish(events);
    }
}

/// An emulator serving on a port; it stops when this is dropped.
pub struct RunningEmulator {
    pub emulator: Emulator,
    pub address: SocketAddr,
    _stop: oneshot::Sender<()>,
}

impl RunningEmulator {
    /// The Backend API base URL, what `CLERK_API_URL` is set to.
    pub fn api_url(&self) -> String {
        format!("http://{}/v1", self.address)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    match mutex.lock() {
        Ok(guard) => guard,
        // The emulator's state is only ever replaced whole, so a panic cannot leave it torn.
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// The store keeps Clerk's JSON; this reads a user back as the client's type.
fn parse(user: Value) -> Option<ClerkUser> {
    serde_json::from_value(user).ok()
}

pub(crate) fn random_id(length: usize) -> String {
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(length)
        .map(char::from)
        .collect()
}
