//! Every setting of userhub: its environment variable, its default and what it does, written
//! once here. `.env` is read before the environment (the environment wins). The README's
//! configuration table mirrors this file.

use std::net::SocketAddr;

use clap::{Args, ValueEnum};

/// The largest page a connection field serves; a larger `first` is a client error.
pub const MAX_PAGE_SIZE: u64 = 100;

#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Database to use: `sqlite://FILE?mode=rwc` (embedded, the default) or
    /// `postgres://USER@HOST/DB` (production).
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite://userhub.db?mode=rwc"
    )]
    pub database_url: String,

    /// Most connections the pool opens to the database.
    #[arg(long, env = "USERHUB_DB_MAX_CONNECTIONS", default_value_t = 16)]
    pub db_max_connections: u32,

    /// Address and port the HTTP server listens on.
    #[arg(long, env = "USERHUB_LISTEN", default_value = "127.0.0.1:8000")]
    pub listen: SocketAddr,

    /// Log format: `text` for people, `json` for log collectors. Filter with `RUST_LOG`.
    #[arg(long, env = "USERHUB_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Apply pending migrations when `serve` starts.
    #[arg(long, env = "USERHUB_MIGRATE_ON_START", default_value_t = true, action = clap::ArgAction::Set)]
    pub migrate_on_start: bool,

    /// Largest request body accepted on `/graphql`, in bytes.
    #[arg(long, env = "USERHUB_MAX_BODY_BYTES", default_value_t = 256 * 1024)]
    pub max_body_bytes: usize,

    /// Largest CSV accepted by `POST /api/imports/users.csv`, in bytes.
    #[arg(long, env = "USERHUB_MAX_IMPORT_BYTES", default_value_t = 4 * 1024 * 1024)]
    pub max_import_bytes: usize,

    /// Deepest selection nesting a GraphQL operation may have.
    #[arg(long, env = "USERHUB_MAX_QUERY_DEPTH", default_value_t = 12)]
    pub max_query_depth: usize,

    /// Most fields a GraphQL document may select (aliases included; each fragment counted
    /// once). An operation may also declare at most 100 variables.
    #[arg(long, env = "USERHUB_MAX_QUERY_FIELDS", default_value_t = 1000)]
    pub max_query_fields: usize,

    /// Highest complexity a GraphQL operation may have (a field costs 1; a connection field
    /// multiplies its selection by the page size asked for).
    #[arg(long, env = "USERHUB_MAX_QUERY_COMPLEXITY", default_value_t = 5000)]
    pub max_query_complexity: usize,

    /// Answer introspection queries (GraphiQL needs them). Turn off in production if the
    /// schema is private.
    #[arg(long, env = "USERHUB_INTROSPECTION", default_value_t = true, action = clap::ArgAction::Set)]
    pub introspection: bool,

    /// Clerk's Backend API secret key (`sk_...`). Without it userhub runs in local mode: it
    /// embeds the Clerk emulator and listens on loopback only.
    #[arg(long, env = "CLERK_SECRET_KEY", hide_env_values = true)]
    pub clerk_secret_key: Option<Secret>,

    /// Base URL of Clerk's Backend API.
    #[arg(
        long,
        env = "CLERK_API_URL",
        default_value = "https://api.clerk.com/v1"
    )]
    pub clerk_api_url: String,

    /// Clerk's JWT verification key (PEM). With it, session tokens are verified with no
    /// network call; without it, keys come from `CLERK_JWKS_URL`.
    #[arg(long, env = "CLERK_JWT_KEY", hide_env_values = true)]
    pub clerk_jwt_key: Option<String>,

    /// Where to fetch Clerk's signing keys (default: `{CLERK_API_URL}/jwks`).
    #[arg(long, env = "CLERK_JWKS_URL")]
    pub clerk_jwks_url: Option<String>,

    /// Comma-separated origins a session token's `azp` must be one of (unchecked when empty).
    #[arg(long, env = "CLERK_AUTHORIZED_PARTIES", value_delimiter = ',')]
    pub clerk_authorized_parties: Vec<String>,

    /// The issuer a session token's `iss` must equal (your Clerk Frontend API URL); unchecked
    /// when unset.
    #[arg(long, env = "CLERK_ISSUER")]
    pub clerk_issuer: Option<String>,

    /// Time limit for one call to Clerk's Backend API, in milliseconds; a call is tried up to
    /// 4 times (429 and 5xx are retried with backoff) before the caller gets an error.
    #[arg(long, env = "USERHUB_CLERK_TIMEOUT_MS", default_value_t = 10_000)]
    pub clerk_timeout_ms: u64,

    /// How long a WebSocket client has to send `connection_init` before it is closed (4408).
    #[arg(long, env = "USERHUB_WS_INIT_TIMEOUT_MS", default_value_t = 3000)]
    pub ws_init_timeout_ms: u64,

    /// Most operations (queries, mutations, subscriptions) one WebSocket may run at once; one
    /// more is answered with an `error` (`RATE_LIMITED`) and the socket stays open.
    #[arg(long, env = "USERHUB_WS_MAX_OPERATIONS", default_value_t = 100)]
    pub ws_max_operations: usize,

    /// Operations a minute one WebSocket may start, after a burst of
    /// `USERHUB_WS_OPERATIONS_BURST`; 0 turns the limit off. One over it is answered with an
    /// `error` (`RATE_LIMITED`). Always off in local mode.
    #[arg(long, env = "USERHUB_WS_OPERATIONS_PER_MINUTE", default_value_t = 600)]
    pub ws_operations_per_minute: u32,

    /// How many operations a WebSocket may start at once before its per-minute limit applies.
    #[arg(long, env = "USERHUB_WS_OPERATIONS_BURST", default_value_t = 100)]
    pub ws_operations_burst: u32,

    /// How long a WebSocket whose `connection_init` carried no credentials stays open: an
    /// anonymous caller sees no data, so the socket closes then (4401).
    #[arg(long, env = "USERHUB_WS_ANONYMOUS_SECONDS", default_value_t = 30)]
    pub ws_anonymous_seconds: u64,

    /// Most WebSockets one client (address, or IPv6 /64) may hold open at once; one more
    /// upgrade is answered 429. 0 turns the limit off; always off in local mode.
    #[arg(
        long,
        env = "USERHUB_WS_MAX_CONNECTIONS_PER_CLIENT",
        default_value_t = 256
    )]
    pub ws_max_connections_per_client: usize,

    /// How long a client may take to send a request's headers, in milliseconds (slow-header
    /// clients are disconnected).
    #[arg(long, env = "USERHUB_HEADER_TIMEOUT_MS", default_value_t = 10_000)]
    pub header_timeout_ms: u64,

    /// How long a request's body may take to arrive after its headers, in milliseconds; a
    /// slower one is answered 408 (`REQUEST_TIMEOUT`).
    #[arg(long, env = "USERHUB_BODY_TIMEOUT_MS", default_value_t = 10_000)]
    pub body_timeout_ms: u64,

    /// How long a request may take from the end of its headers to its answer, in
    /// milliseconds; a slower one is answered 503 (`TIMEOUT`). A WebSocket is exempt once
    /// upgraded; a sync asked to `wait` goes on when its request gives up.
    #[arg(long, env = "USERHUB_REQUEST_TIMEOUT_MS", default_value_t = 60_000)]
    pub request_timeout_ms: u64,

    /// Origins (`scheme://host[:port]`, comma-separated) whose browser pages may call the API
    /// (CORS, and cookie-authenticated WebSockets); `CLERK_AUTHORIZED_PARTIES` when unset.
    #[arg(long, env = "USERHUB_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<String>,

    /// Serve `/metrics` on this address instead of the main one (for example `127.0.0.1:9100`,
    /// reachable only from the host); the main listener then answers it 404.
    #[arg(long, env = "USERHUB_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,

    /// A bearer token `/metrics` requires (`Authorization: Bearer <token>`); open when unset.
    #[arg(long, env = "USERHUB_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<Secret>,

    /// After fetching Clerk's keys, a token naming an unknown key id triggers another fetch
    /// no sooner than this, so forged key ids cannot make userhub hammer Clerk.
    #[arg(long, env = "USERHUB_JWKS_REFETCH_SECONDS", default_value_t = 10)]
    pub jwks_refetch_seconds: u64,

    /// The signing secret of the Clerk webhook endpoint (`whsec_...`, from Clerk's dashboard).
    /// Without it `POST /api/webhooks/clerk` refuses every delivery (503); local mode makes
    /// one up and points the embedded emulator's webhooks at this server.
    #[arg(long, env = "CLERK_WEBHOOK_SECRET", hide_env_values = true)]
    pub clerk_webhook_secret: Option<Secret>,

    /// The largest webhook body accepted, in bytes.
    #[arg(long, env = "USERHUB_WEBHOOK_MAX_BYTES", default_value_t = 512 * 1024)]
    pub webhook_max_bytes: usize,

    /// How many change events a live subscriber may fall behind by before it is told so and
    /// its subscription ends (a shared ring buffer: the memory does not grow with subscribers).
    #[arg(long, env = "USERHUB_EVENT_BUFFER", default_value_t = 4096)]
    pub event_buffer: usize,

    /// A running sync sends a heartbeat every quarter of this many seconds; a run whose
    /// heartbeat is older belongs to a process that died (killed, crashed) and is marked
    /// failed by any replica, so a new run can start.
    #[arg(long, env = "USERHUB_SYNC_STALE_AFTER_SECONDS", default_value_t = 60)]
    pub sync_stale_after_seconds: u64,

    /// How often each replica looks for users whose `accessUntil` has passed, to suspend them
    /// in Clerk (milliseconds).
    #[arg(long, env = "USERHUB_ACCESS_SWEEP_MS", default_value_t = 30_000)]
    pub access_sweep_ms: u64,

    /// The response cache for queries over HTTP: `on` reuses an answer while no change has
    /// been heard since it was computed (on this replica at once, from another replica once
    /// its event arrives); `strict` also asks the database, in one cheap read, whether
    /// anything committed since; `off` computes every answer.
    #[arg(long, env = "USERHUB_CACHE", value_enum, default_value_t = CacheMode::On)]
    pub cache: CacheMode,

    /// Answer the commonest reads (pages of users with their organisations) by the direct
    /// path, which writes their JSON in one pass instead of through async-graphql's executor;
    /// `false` sends every operation through async-graphql.
    #[arg(long, env = "USERHUB_DIRECT_READS", default_value_t = true, action = clap::ArgAction::Set)]
    pub direct_reads: bool,

    /// Most bytes of answers the response cache keeps; the least recently used go first.
    #[arg(long, env = "USERHUB_CACHE_BYTES", default_value_t = 64 * 1024 * 1024)]
    pub cache_bytes: usize,

    /// Requests a minute one client may make to `/graphql` (queries, mutations, WebSocket
    /// upgrades), after a burst of `USERHUB_RATE_LIMIT_BURST`; 0 turns the limit off. A refused
    /// request gets 429 with `Retry-After`. Always off in local mode.
    #[arg(long, env = "USERHUB_RATE_LIMIT_PER_MINUTE", default_value_t = 6000)]
    pub rate_limit_per_minute: u32,

    /// How many requests a client may make at once before `USERHUB_RATE_LIMIT_PER_MINUTE` applies.
    #[arg(long, env = "USERHUB_RATE_LIMIT_BURST", default_value_t = 200)]
    pub rate_limit_burst: u32,

    /// Webhook deliveries a minute from one address (Clerk's senders), after a burst of
    /// `USERHUB_WEBHOOK_RATE_LIMIT_BURST`; 0 turns the limit off. Refused deliveries get 429,
    /// and Clerk retries them later. Always off in local mode.
    #[arg(
        long,
        env = "USERHUB_WEBHOOK_RATE_LIMIT_PER_MINUTE",
        default_value_t = 30000
    )]
    pub webhook_rate_limit_per_minute: u32,

    /// How many deliveries an address may send at once before the webhook limit applies.
    #[arg(long, env = "USERHUB_WEBHOOK_RATE_LIMIT_BURST", default_value_t = 1000)]
    pub webhook_rate_limit_burst: u32,

    /// Same as `USERHUB_TRUSTED_PROXY_HOPS=1` (kept for existing deployments).
    #[arg(long, env = "USERHUB_TRUST_FORWARDED_FOR", default_value_t = false, action = clap::ArgAction::Set)]
    pub trust_forwarded_for: bool,

    /// How many proxies in front of userhub append to `X-Forwarded-For`. The client of the
    /// rate and connection limits is the address the outermost trusted proxy appended (that
    /// many entries from the right); entries left of it are the client's own words and are
    /// ignored. 0: the peer address. IPv6 clients are keyed by their /64.
    #[arg(long, env = "USERHUB_TRUSTED_PROXY_HOPS", default_value_t = 0)]
    pub trusted_proxy_hops: usize,

    /// In local mode, fill the embedded Clerk emulator with a small demo directory.
    #[arg(long, env = "USERHUB_DEMO_DATA", default_value_t = true, action = clap::ArgAction::Set)]
    pub demo_data: bool,
}

/// A secret from the configuration: usable, never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;

    fn from_str(value: &str) -> Result<Secret, Self::Err> {
        Ok(Secret(value.to_owned()))
    }
}

/// How the response cache decides that an answer is still current (`USERHUB_CACHE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CacheMode {
    Off,
    On,
    Strict,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

impl Config {
    /// The defaults with another database: what tests and tools start from.
    pub fn with_database(database_url: impl Into<String>) -> Config {
        Config {
            database_url: database_url.into(),
            db_max_connections: 16,
            listen: SocketAddr::from(([127, 0, 0, 1], 8000)),
            log_format: LogFormat::Text,
            migrate_on_start: true,
            max_body_bytes: 256 * 1024,
            max_import_bytes: 4 * 1024 * 1024,
            max_query_depth: 12,
            max_query_fields: 1000,
            max_query_complexity: 5000,
            introspection: true,
            clerk_secret_key: None,
            clerk_api_url: "https://api.clerk.com/v1".to_owned(),
            clerk_jwt_key: None,
            clerk_jwks_url: None,
            clerk_authorized_parties: Vec::new(),
            clerk_issuer: None,
            jwks_refetch_seconds: 10,
            ws_init_timeout_ms: 3000,
            clerk_timeout_ms: 10_000,
            demo_data: true,
            clerk_webhook_secret: None,
            webhook_max_bytes: 512 * 1024,
            event_buffer: 4096,
            sync_stale_after_seconds: 60,
            access_sweep_ms: 30_000,
            cache: CacheMode::On,
            cache_bytes: 64 * 1024 * 1024,
            direct_reads: true,
            rate_limit_per_minute: 6000,
            rate_limit_burst: 200,
            webhook_rate_limit_per_minute: 30000,
            webhook_rate_limit_burst: 1000,
            trust_forwarded_for: false,
            trusted_proxy_hops: 0,
            ws_max_operations: 100,
            ws_operations_per_minute: 600,
            ws_operations_burst: 100,
            ws_anonymous_seconds: 30,
            ws_max_connections_per_client: 256,
            header_timeout_ms: 10_000,
            body_timeout_ms: 10_000,
            request_timeout_ms: 60_000,
            cors_origins: Vec::new(),
            metrics_listen: None,
            metrics_token: None,
        }
    }

    /// Local mode: no Clerk account configured, so the embedded emulator stands in for it.
    /// How long a running sync may go without a heartbeat (at least a second).
    pub fn sync_stale_after(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.sync_stale_after_seconds.max(1))
    }

    pub fn is_local_mode(&self) -> bool {
        self.clerk_secret_key.is_none()
    }

    pub fn jwks_url(&self) -> String {
        self.clerk_jwks_url
            .clone()
            .unwrap_or_else(|| format!("{}/jwks", self.clerk_api_url.trim_end_matches('/')))
    }

    /// What this configuration leaves open that production should not, said at start-up and in
    /// `/readyz`.
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        if self.is_local_mode() {
            return warnings;
        }
        if self.clerk_issuer.is_none() {
            warnings.push(
                "CLERK_ISSUER is not set: a token's `iss` is not checked (set it to your Clerk \
                 Frontend API URL)"
                    .to_owned(),
            );
        }
        if self.clerk_authorized_parties.is_empty() {
            warnings.push(
                "CLERK_AUTHORIZED_PARTIES is not set: a token made for any origin is accepted \
                 (set it to your frontends' origins)"
                    .to_owned(),
            );
        }
        if self.metrics_listen.is_none() && self.metrics_token.is_none() {
            warnings.push(
                "/metrics is open on the main listener: set USERHUB_METRICS_LISTEN or \
                 USERHUB_METRICS_TOKEN"
                    .to_owned(),
            );
        }
        warnings
    }

    /// Proxies trusted to append to `X-Forwarded-For`.
    pub fn proxy_hops(&self) -> usize {
        if self.trusted_proxy_hops == 0 && self.trust_forwarded_for {
            1
        } else {
            self.trusted_proxy_hops
        }
    }

    /// The browser origins allowed to call the API: `USERHUB_CORS_ORIGINS`, else
    /// `CLERK_AUTHORIZED_PARTIES`.
    pub fn browser_origins(&self) -> Vec<String> {
        let origins = if self.cors_origins.is_empty() {
            &self.clerk_authorized_parties
        } else {
            &self.cors_origins
        };
        origins
            .iter()
            .map(|origin| origin.trim().trim_end_matches('/').to_owned())
            .filter(|origin| !origin.is_empty())
            .collect()
    }

    pub fn is_postgres(&self) -> bool {
        self.database_url.starts_with("postgres:") || self.database_url.starts_with("postgresql:")
    }
}
