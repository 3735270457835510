//! Starting a server for a test, seeding it through the service layer, and talking to it.

use std::sync::{Arc, OnceLock};

use entity::role::Role;
use reqwest::header::CONTENT_TYPE;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use userhub::app::{AppState, Server};
use userhub::clerk::emulator::{
    DEFAULT_AUTHORIZED_PARTY, Emulator, NewUser, RunningEmulator, SigningKey, TokenOptions,
};
use userhub::config::{Config, Secret};
use userhub::events::EventBus;
use userhub::metrics::Metrics;
use userhub::service::organisations::{self, NewOrganisation};
use userhub::service::users::{self, ClerkProfile};
use userhub::service::{Origin, Source};
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backend {
    Sqlite,
    Postgres,
}

/// Declares, for each named `async fn(TestApp)`, one test per database. `name => configure`
/// starts that test's server with `configure(&mut Config)` applied.
macro_rules! on_both_databases {
    (@configure) => { |_: &mut userhub::config::Config| {} };
    (@configure $configure:ident) => { super::$configure };
    ($($name:ident $(=> $configure:ident)?),+ $(,)?) => {
        $(
            mod $name {
                #[tokio::test]
                async fn sqlite() {
                    let app = crate::helpers::spawn_app(
                        crate::helpers::Backend::Sqlite,
                        crate::helpers::on_both_databases!(@configure $($configure)?),
                    )
                    .await
                    .expect("SQLite is always available");
                    super::$name(app).await;
                }

                #[tokio::test]
                async fn postgres() {
                    if let Some(app) = crate::helpers::spawn_app(
                        crate::helpers::Backend::Postgres,
                        crate::helpers::on_both_databases!(@configure $($configure)?),
                    )
                    .await
                    {
                        super::$name(app).await;
                    }
                }
            }
        )+
    };
}
pub(crate) use on_both_databases;

/// The webhook signing secret of every test server (Clerk's test vector).
pub(crate) const WEBHOOK_SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

pub(crate) struct TestApp {
    pub(crate) address: String,
    /// Where `/metrics` is served when `USERHUB_METRICS_LISTEN` gives it a listener of its own.
    pub(crate) metrics_address: Option<String>,
    pub(crate) client: reqwest::Client,
    pub(crate) db: DatabaseConnection,
    /// The server's change-event bus: changes made through it reach its subscribers.
    pub(crate) events: EventBus,
    /// The server's schema, for driving a subscription stream directly.
    pub(crate) schema: userhub::graphql::Executor,
    pub(crate) database_url: String,
    pub(crate) metrics: Arc<Metrics>,
    /// The server's own services (its database, Clerk client, event bus, user locks).
    pub(crate) services: userhub::service::Services,
    /// The Clerk emulator this server talks to, over HTTP.
    pub(crate) clerk: RunningEmulator,
    /// A signed-in admin: the caller of `graphql` and `query`.
    pub(crate) admin: entity::user::Model,
    pub(crate) admin_token: String,
    shutdown: Option<oneshot::Sender<()>>,
    scratch: Scratch,
}

/// What a test leaves behind, removed when it ends.
enum Scratch {
    Directory(#[allow(dead_code)] tempfile::TempDir),
    PostgresDatabase { admin_url: String, name: String },
}

/// Starts a server on a fresh database. `None` when PostgreSQL is asked for but not
/// configured (and not required).
pub(crate) async fn spawn_app(
    backend: Backend,
    configure: impl FnOnce(&mut Config),
) -> Option<TestApp> {
    let (database_url, scratch) = match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().expect("a temporary directory");
            let url = format!("sqlite://{}/userhub.db?mode=rwc", dir.path().display());
            (url, Scratch::Directory(dir))
        }
        Backend::Postgres => {
            let Some(admin_url) = postgres_url() else {
                eprintln!("skipped: TEST_DATABASE_URL is not set");
                return None;
            };
            let name = format!("userhub_test_{}", Uuid::new_v4().simple());
            let admin = Database::connect(&admin_url)
                .await
                .unwrap_or_else(|err| panic!("cannot reach TEST_DATABASE_URL: {err}"));
            admin
                .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
                .await
                .expect("create a test database");
            admin.close().await.ok();
            (
                with_database_name(&admin_url, &name),
                Scratch::PostgresDatabase { admin_url, name },
            )
        }
    };
    let clerk = Emulator::new(
        format!("sk_test_{}", Uuid::new_v4().simple()),
        signing_key(),
    )
    .start("127.0.0.1:0".parse().expect("an address"))
    .await
    .expect("the Clerk emulator starts");
    let mut config = server_config(&database_url, &clerk);
    configure(&mut config);
    let state = AppState::build(config).await.expect("the app starts");
    let db = state.services.db.clone();
    let events = state.services.events.clone();
    let schema = state.graphql.schema.clone();
    let metrics = state.metrics.clone();
    let services = state.services.clone();
    let listen = state.config.listen;
    let server = Server::bind(state, listen).await.expect("bind port 0");
    let address = format!("http://{}", server.local_addr().expect("a local address"));
    let metrics_address = server
        .metrics_addr()
        .map(|address| format!("http://{address}"));
    let (shutdown, stopped) = oneshot::channel::<()>();
    tokio::spawn(server.serve(async move {
        let _ = stopped.await;
    }));
    let admin = add_user(
        &db,
        &events,
        &clerk.emulator,
        TestUser::new("admin@userhub.test").role(Role::Admin),
    )
    .await;
    let admin_token = token_for(&clerk.emulator, &admin);
    Some(TestApp {
        address,
        metrics_address,
        client: reqwest::Client::new(),
        db,
        events,
        schema,
        database_url,
        metrics,
        services,
        clerk,
        admin,
        admin_token,
        shutdown: Some(shutdown),
        scratch,
    })
}

/// The settings of every test server: on `database_url`, talking to `clerk`.
fn server_config(database_url: &str, clerk: &RunningEmulator) -> Config {
    let mut config = Config::with_database(database_url.to_owned());
    config.listen = "127.0.0.1:0".parse().expect("an address");
    config.db_max_connections = 5;
    // Every test is one client on loopback; the rate-limit tests turn the limits on.
    config.rate_limit_per_minute = 0;
    config.webhook_rate_limit_per_minute = 0;
    config.ws_operations_per_minute = 0;
    config.clerk_api_url = clerk.api_url();
    config.clerk_secret_key = Some(Secret::new(clerk.emulator.secret()));
    // As in production: tokens must come from this Clerk, for this origin.
    config.clerk_issuer = Some(clerk.emulator.issuer());
    config.clerk_authorized_parties = vec![DEFAULT_AUTHORIZED_PARTY.to_owned()];
    config.clerk_webhook_secret = Some(Secret::new(WEBHOOK_SECRET));
    config
}

/// A second server in this process on a test's database and Clerk: another replica (its own
/// pool, event bus and cache). It stops when dropped.
pub(crate) struct OtherServer {
    pub(crate) address: String,
    _shutdown: oneshot::Sender<()>,
}

impl TestApp {
    pub(crate) async fn another_server(&self, configure: impl FnOnce(&mut Config)) -> OtherServer {
        let mut config = server_config(&self.database_url, &self.clerk);
        configure(&mut config);
        let state = AppState::build(config)
            .await
            .expect("the second server starts");
        let listen = state.config.listen;
        let server = Server::bind(state, listen).await.expect("bind port 0");
        let address = format!("http://{}", server.local_addr().expect("a local address"));
        let (shutdown, stopped) = oneshot::channel::<()>();
        tokio::spawn(server.serve(async move {
            let _ = stopped.await;
        }));
        OtherServer {
            address,
            _shutdown: shutdown,
        }
    }
}

/// Adds a user to Clerk (the emulator) and to userhub, the way a sync does.
async fn add_user(
    db: &DatabaseConnection,
    events: &EventBus,
    clerk: &Emulator,
    user: TestUser<'_>,
) -> entity::user::Model {
    let clerk_user = add_clerk_user(clerk, user);
    let profile = ClerkProfile::of(&clerk_user).expect("an email address");
    users::upsert_from_clerk(db, events, &sync_origin(), profile)
        .await
        .expect("create a user")
        .user()
        .clone()
}

fn add_clerk_user(clerk: &Emulator, user: TestUser<'_>) -> userhub::clerk::model::ClerkUser {
    clerk
        .create_user(NewUser {
            email: user.email.to_owned(),
            first_name: user.first_name.map(str::to_owned),
            last_name: user.last_name.map(str::to_owned),
            public_metadata: json!({
                "role": user.role.as_str(),
                "organisationId": user.organisation_id.map(|id| id.to_string()),
            }),
        })
        .expect("the emulator creates the user")
}

fn token_for(clerk: &Emulator, user: &entity::user::Model) -> String {
    clerk
        .mint_session_token(&user.clerk_id, TokenOptions::default())
        .expect("a token")
}

/// One RSA key for every emulator of the test process: generating one takes a while.
pub(crate) fn signing_key() -> Arc<SigningKey> {
    static KEY: OnceLock<Arc<SigningKey>> = OnceLock::new();
    KEY.get_or_init(|| Arc::new(SigningKey::generate().expect("an RSA key")))
        .clone()
}

fn postgres_url() -> Option<String> {
    match std::env::var("TEST_DATABASE_URL") {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ if std::env::var("USERHUB_REQUIRE_POSTGRES").as_deref() == Ok("1") => {
            panic!("USERHUB_REQUIRE_POSTGRES=1 but TEST_DATABASE_URL is not set")
        }
        _ => None,
    }
}

/// The same server URL with another database name.
fn with_database_name(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    let mut out = format!("{}/{name}", &base[..path_start]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Scratch::PostgresDatabase { admin_url, name } = &self.scratch {
            let (admin_url, name) = (admin_url.clone(), name.clone());
            // Drop runs inside the test's runtime, which cannot be blocked on; a thread with a
            // runtime of its own can.
            let dropped = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a runtime");
                runtime.block_on(async {
                    let admin = Database::connect(&admin_url).await?;
                    admin
                        .execute_unprepared(&format!(
                            "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                        ))
                        .await?;
                    admin.close().await
                })
            })
            .join();
            if !matches!(dropped, Ok(Ok(()))) {
                eprintln!(
                    "warning: the test database {} was not dropped",
                    self.db_name()
                );
            }
        }
    }
}

impl TestApp {
    fn db_name(&self) -> &str {
        match &self.scratch {
            Scratch::PostgresDatabase { name, .. } => name,
            Scratch::Directory(_) => "(sqlite)",
        }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// Posts an operation as the test's admin and returns the response body, asserting
    /// HTTP 200.
    pub(crate) async fn graphql(&self, query: &str, variables: Value) -> Value {
        self.graphql_as(Some(&self.admin_token), query, variables)
            .await
    }

    /// Posts an operation as the holder of `token` (anonymously for `None`), asserting HTTP 200.
    pub(crate) async fn graphql_as(
        &self,
        token: Option<&str>,
        query: &str,
        variables: Value,
    ) -> Value {
        let (status, body) = self.post_as(token, query, variables).await;
        assert_eq!(status, 200, "unexpected status; body: {body}");
        body
    }

    /// Posts an operation as the holder of `token` and returns the status and body.
    pub(crate) async fn post_as(
        &self,
        token: Option<&str>,
        query: &str,
        variables: Value,
    ) -> (u16, Value) {
        let mut request = self
            .client
            .post(self.url("/graphql"))
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("the server answers");
        let status = response.status().as_u16();
        let body: Value = response.json().await.expect("a JSON body");
        (status, body)
    }

    /// A session token for `user`, signed by the emulator.
    pub(crate) fn token_for(&self, user: &entity::user::Model) -> String {
        token_for(&self.clerk.emulator, user)
    }

    /// Runs an operation as the holder of `token`, asserting it succeeds; returns `data`.
    pub(crate) async fn query_as(&self, token: &str, query: &str, variables: Value) -> Value {
        let body = self.graphql_as(Some(token), query, variables).await;
        assert!(body.get("errors").is_none(), "unexpected errors: {body}");
        body["data"].clone()
    }

    /// Posts an operation that must succeed, and returns its `data`.
    pub(crate) async fn query(&self, query: &str, variables: Value) -> Value {
        let body = self.graphql(query, variables).await;
        assert!(body.get("errors").is_none(), "unexpected errors: {body}");
        body["data"].clone()
    }

    /// Posts raw bytes to `/graphql` with the given headers.
    pub(crate) async fn post_raw(
        &self,
        body: impl Into<reqwest::Body>,
        headers: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut request = self
            .client
            .post(self.url("/graphql"))
            .bearer_auth(&self.admin_token)
            .body(body);
        if !headers
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case("content-type"))
        {
            request = request.header(CONTENT_TYPE, "application/json");
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send().await.expect("the server answers")
    }

    /// How many SQL statements `operation` costs the server: the least of three runs. The
    /// counter is the server's, and a statement of its own running at the same moment (a
    /// background sweep, on a loaded machine late) adds to one run, never takes away; CI saw
    /// one extra statement in one run of one page size.
    pub(crate) async fn statements_for(&self, query: &str, variables: Value) -> (u64, Value) {
        let mut fewest = u64::MAX;
        let mut data = Value::Null;
        for _ in 0..3 {
            let before = self.metrics.db_statements();
            data = self.query(query, variables.clone()).await;
            fewest = fewest.min(self.metrics.db_statements() - before);
        }
        (fewest, data)
    }

    pub(crate) async fn create_organisation(&self, name: &str) -> entity::organisation::Model {
        organisations::create(
            &self.services,
            userhub::auth::Requester::Operator,
            &Origin::cli(),
            NewOrganisation {
                name: name.to_owned(),
                slug: None,
                standard_hours: None,
            },
        )
        .await
        .expect("create an organisation")
    }

    /// Adds a user to Clerk (the emulator) and to userhub, the way a sync does.
    pub(crate) async fn create_user(&self, user: TestUser<'_>) -> entity::user::Model {
        add_user(&self.db, &self.events, &self.clerk.emulator, user).await
    }

    /// Adds a user to Clerk only: userhub has not heard of them yet.
    pub(crate) fn create_clerk_user(&self, user: TestUser<'_>) -> userhub::clerk::model::ClerkUser {
        add_clerk_user(&self.clerk.emulator, user)
    }

    /// Sends an invitation as the test's admin, through Clerk (the emulator).
    pub(crate) async fn invite(
        &self,
        email: &str,
        role: Role,
        organisation_id: Option<Uuid>,
    ) -> entity::invitation::Model {
        let admin = userhub::auth::Actor {
            user: self.admin.clone(),
            session_id: None,
        };
        userhub::service::invitations::invite(
            &self.services,
            &admin,
            &admin.origin(None),
            userhub::service::invitations::NewInvitation {
                email: email.to_owned(),
                role,
                organisation_id,
                redirect_url: None,
            },
        )
        .await
        .expect("an invitation")
    }

    /// Soft-deletes a user, as removal in Clerk does.
    pub(crate) async fn deactivate(&self, user: &entity::user::Model) {
        users::deactivate(&self.db, &self.events, &Origin::cli(), user.id)
            .await
            .expect("deactivate");
    }
}

pub(crate) fn sync_origin() -> Origin {
    Origin {
        actor: "sync".to_owned(),
        source: Source::Sync,
        correlation_id: None,
    }
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct TestUser<'a> {
    pub(crate) email: &'a str,
    pub(crate) first_name: Option<&'a str>,
    pub(crate) last_name: Option<&'a str>,
    pub(crate) role: Role,
    pub(crate) organisation_id: Option<Uuid>,
}

impl<'a> TestUser<'a> {
    pub(crate) fn new(email: &'a str) -> TestUser<'a> {
        TestUser {
            email,
            first_name: None,
            last_name: None,
            role: Role::Member,
            organisation_id: None,
        }
    }

    /// Someone with `role` in `organisation`.
    pub(crate) fn in_role(email: &'a str, role: Role, organisation_id: Uuid) -> TestUser<'a> {
        TestUser::new(email)
            .role(role)
            .in_organisation(organisation_id)
    }

    pub(crate) fn named(mut self, first: &'a str, last: &'a str) -> TestUser<'a> {
        self.first_name = Some(first);
        self.last_name = Some(last);
        self
    }

    pub(crate) fn role(mut self, role: Role) -> TestUser<'a> {
        self.role = role;
        self
    }

    pub(crate) fn in_organisation(mut self, organisation_id: Uuid) -> TestUser<'a> {
        self.organisation_id = Some(organisation_id);
        self
    }
}

/// The text `GET /metrics` at `address` answers now.
pub(crate) async fn scrape_metrics(address: &str) -> String {
    reqwest::get(format!("{address}/metrics"))
        .await
        .expect("/metrics answers")
        .text()
        .await
        .expect("text")
}

/// The value of one sample of a scrape, named with its labels; panics, showing the scrape, when
/// it is not there.
pub(crate) fn metric(text: &str, sample: &str) -> u64 {
    text.lines()
        .find_map(|line| line.strip_prefix(sample)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or_else(|| panic!("{sample} in {text}"))
}

/// The `extensions.code` of the first error of a response.
pub(crate) fn error_code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no error code in {body}"))
}

/// Posts `query` to the server at `address` as the holder of `token` (signed out when it is
/// empty); the whole body, with
/// the request ids of its errors left out (they differ from request to request) and its
/// errors in one order (root fields run at once, and fail in any order).
pub(crate) async fn ask(
    client: &reqwest::Client,
    address: &str,
    token: &str,
    query: &str,
    variables: &Value,
) -> Value {
    let mut request = client
        .post(format!("{address}/graphql"))
        .json(&json!({ "query": query, "variables": variables }));
    if !token.is_empty() {
        request = request.bearer_auth(token);
    }
    let mut body: Value = request
        .send()
        .await
        .expect("the server answers")
        .json()
        .await
        .expect("a JSON body");
    if let Some(errors) = body.get_mut("errors").and_then(Value::as_array_mut) {
        for error in errors.iter_mut() {
            if let Some(extensions) = error.get_mut("extensions").and_then(Value::as_object_mut) {
                extensions.remove("requestId");
            }
        }
        errors.sort_by_key(Value::to_string);
    }
    body
}

/// A small seeded generator (xorshift), so a failure names the seed that found it.
pub(crate) struct Dice(pub(crate) u64);

impl Dice {
    pub(crate) fn below(&mut self, bound: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % bound as u64) as usize
    }

    pub(crate) fn some<'a>(&mut self, choices: &[&'a str]) -> Vec<&'a str> {
        let picked: Vec<&str> = choices
            .iter()
            .copied()
            .filter(|_| self.below(2) == 0)
            .collect();
        if picked.is_empty() {
            vec![choices[self.below(choices.len())]]
        } else {
            picked
        }
    }
}
