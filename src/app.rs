//! The HTTP server: its shared state, its routes, and its life from bind to graceful shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Context as _;
use axum::extract::{DefaultBodyLimit, FromRef, Request, State};
use axum::http::{HeaderName, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use tokio::net::TcpListener;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::admin::AdminState;
use crate::auth::TokenVerifier;
use crate::auth::token::JwksSource;
use crate::clerk::ClerkClient;
use crate::clerk::client::RetryPolicy;
use crate::config::{Config, Secret};
use crate::error::json_error;
use crate::events::EventBus;
use crate::graphql::cache::ResponseCache;
use crate::graphql::{self, GraphqlState};
use crate::local::LocalMode;
use crate::metrics::Metrics;
use crate::rate_limit::{Guarded, RateLimiter};
use crate::service::Services;
use crate::service::freshness::Freshness;
use crate::service::sessions::Authenticator;
use crate::webhooks::WebhookState;

/// What every request handler shares. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The domain's dependencies: the database, Clerk, the event bus, the metrics.
    pub services: Services,
    /// What the GraphQL handlers share: the schema, the authenticator, the open sockets.
    pub graphql: GraphqlState,
    pub config: Arc<Config>,
    pub metrics: Arc<Metrics>,
    /// Verifies Clerk's webhook deliveries; `None` when no webhook secret is configured.
    pub webhooks: Option<Arc<crate::webhooks::Verifier>>,
    /// Applies verified deliveries, concurrent ones in one transaction.
    pub ingest: crate::service::webhooks::Ingest,
    /// Present in local mode: the embedded emulator and the admin token.
    pub local: Option<Arc<LocalMode>>,
    /// Per-client limits on `/graphql` and on the webhook route; `None` when off.
    pub graphql_limit: Option<Arc<RateLimiter>>,
    pub webhook_limit: Option<Arc<RateLimiter>>,
}

impl FromRef<AppState> for GraphqlState {
    fn from_ref(state: &AppState) -> GraphqlState {
        state.graphql.clone()
    }
}

impl FromRef<AppState> for WebhookState {
    fn from_ref(state: &AppState) -> WebhookState {
        WebhookState {
            services: state.services.clone(),
            verifier: state.webhooks.clone(),
            ingest: state.ingest.clone(),
        }
    }
}

impl FromRef<AppState> for crate::exports::ExportState {
    fn from_ref(state: &AppState) -> crate::exports::ExportState {
        crate::exports::ExportState {
            services: state.services.clone(),
            auth: state.graphql.auth.clone(),
        }
    }
}

impl FromRef<AppState> for crate::imports::ImportState {
    fn from_ref(state: &AppState) -> crate::imports::ImportState {
        crate::imports::ImportState {
            services: state.services.clone(),
            auth: state.graphql.auth.clone(),
        }
    }
}

impl FromRef<AppState> for AdminState {
    fn from_ref(state: &AppState) -> AdminState {
        AdminState {
            auth: state.graphql.auth.clone(),
            local: state.local.clone(),
        }
    }
}

impl AppState {
    /// Connects to the database, migrates it when configured to, connects to Clerk (or, in
    /// local mode, starts the emulator), and builds the schema.
    pub async fn build(mut config: Config) -> anyhow::Result<AppState> {
        let emulator = if config.is_local_mode() {
            if !config.listen.ip().is_loopback() {
                anyhow::bail!(
                    "local mode (no CLERK_SECRET_KEY) serves a built-in admin token, so it listens \
                     on loopback only; {} is not a loopback address",
                    config.listen
                );
            }
            let emulator = crate::local::start_emulator().await?;
            config.clerk_api_url = emulator.api_url();
            config.clerk_secret_key = Some(Secret::new(emulator.emulator.secret()));
            config.clerk_jwks_url = None;
            config.clerk_jwt_key = None;
            // The embedded emulator signs its webhooks with this (a configured one, or a new
            // one); `Server::bind` points them at this server once its port is known.
            if config.clerk_webhook_secret.is_none() {
                config.clerk_webhook_secret = Some(Secret::new(crate::webhooks::random_secret()));
            }
            Some(emulator)
        } else {
            None
        };
        let metrics = Arc::new(Metrics::default());
        let db = crate::db::connect(
            &config.database_url,
            config.db_max_connections,
            metrics.clone(),
        )
        .await
        .with_context(|| {
            format!(
                "cannot open the database at {}",
                redact_url(&config.database_url)
            )
        })?;
        if config.migrate_on_start {
            crate::db::migrate(&db)
                .await
                .context("cannot apply the database migrations")?;
        }
        let events = EventBus::for_database(&config.database_url, &db, config.event_buffer)
            .await
            .context("cannot start the change-event bus")?;
        let webhooks = match &config.clerk_webhook_secret {
            Some(secret) => Some(Arc::new(
                crate::webhooks::Verifier::new(secret)
                    .context("CLERK_WEBHOOK_SECRET is not a whsec_ secret")?,
            )),
            None => None,
        };
        let secret = config
            .clerk_secret_key
            .clone()
            .context("CLERK_SECRET_KEY is required outside local mode")?;
        let policy = RetryPolicy {
            request_timeout: std::time::Duration::from_millis(config.clerk_timeout_ms),
            ..RetryPolicy::default()
        };
        let clerk = ClerkClient::new(&config.clerk_api_url, secret.clone(), policy)
            .with_metrics(metrics.clone());
        let verifier = match &config.clerk_jwt_key {
            Some(pem) => TokenVerifier::from_pem(pem)
                .context("CLERK_JWT_KEY is not an RSA public key in PEM")?,
            None => {
                let url = config.jwks_url();
                // The secret key goes to Clerk's Backend API and nowhere else.
                let bearer = url
                    .starts_with(config.clerk_api_url.trim_end_matches('/'))
                    .then_some(secret);
                TokenVerifier::from_jwks(JwksSource { url, bearer })
            }
        }
        .with_refetch_floor(std::time::Duration::from_secs(config.jwks_refetch_seconds))
        .with_issuer(config.clerk_issuer.clone())
        .with_authorized_parties(config.clerk_authorized_parties.clone());
        let services = Services::new(
            db.clone(),
            clerk,
            events.clone(),
            metrics.clone(),
            config.sync_stale_after(),
        );
        let auth = Arc::new(Authenticator::new(verifier, services.clone()));
        let local = match emulator {
            Some(emulator) => Some(Arc::new(
                crate::local::prepare(&services, emulator, config.demo_data).await?,
            )),
            None => None,
        };
        let schema = graphql::build_schema(services.clone(), &config);
        // Local mode is one person on loopback: nothing to limit.
        let (graphql_limit, webhook_limit) = if local.is_some() {
            (None, None)
        } else {
            (
                RateLimiter::new(
                    Guarded::Graphql,
                    config.rate_limit_per_minute,
                    config.rate_limit_burst,
                    config.proxy_hops(),
                    metrics.clone(),
                ),
                RateLimiter::new(
                    Guarded::Webhooks,
                    config.webhook_rate_limit_per_minute,
                    config.webhook_rate_limit_burst,
                    config.proxy_hops(),
                    metrics.clone(),
                ),
            )
        };
        let config = Arc::new(config);
        let graphql = GraphqlState {
            schema,
            config: config.clone(),
            metrics: metrics.clone(),
            auth,
            cache: Arc::new(ResponseCache::new(
                Freshness::new(config.cache, events.clone(), &db, &config.database_url),
                config.cache_bytes,
                metrics.clone(),
            )),
            direct: Arc::new(crate::graphql::direct::DirectReads::new(
                db.clone(),
                config.direct_reads,
                metrics.clone(),
            )),
            sockets: Arc::default(),
            fanout: Arc::new(crate::graphql::fanout::Fanout::new(metrics.clone())),
            local_admin_token: local
                .as_ref()
                .map(|local| Arc::from(local.admin_token.as_str())),
        };
        Ok(AppState {
            ingest: crate::service::webhooks::Ingest::start(services.clone()),
            services,
            graphql,
            config,
            metrics,
            webhooks,
            local,
            graphql_limit,
            webhook_limit,
        })
    }
}

/// Hides the password of a database URL, for messages.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let credentials = &url[scheme_end + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

pub fn router(state: AppState) -> Router {
    let mut graphql = get(graphql::http::get).post(graphql::http::post);
    if let Some(limiter) = &state.graphql_limit {
        graphql = graphql.layer(middleware::from_fn_with_state(
            limiter.clone(),
            crate::rate_limit::limit,
        ));
    }
    let mut webhooks = axum::routing::post(crate::webhooks::receive)
        .layer(DefaultBodyLimit::max(state.config.webhook_max_bytes));
    if let Some(limiter) = &state.webhook_limit {
        webhooks = webhooks.layer(middleware::from_fn_with_state(
            limiter.clone(),
            crate::rate_limit::limit,
        ));
    }
    // Downloads read as much as a query can, so they draw on the same budget.
    let mut exports = crate::exports::routes();
    if let Some(limiter) = &state.graphql_limit {
        exports = exports.route_layer(middleware::from_fn_with_state(
            limiter.clone(),
            crate::rate_limit::limit,
        ));
    }
    let mut imports = crate::imports::routes(state.config.max_import_bytes);
    if let Some(limiter) = &state.graphql_limit {
        imports = imports.route_layer(middleware::from_fn_with_state(
            limiter.clone(),
            crate::rate_limit::limit,
        ));
    }
    let cors = cors(&state);
    let mut router = Router::new();
    // With a listener of its own, `/metrics` is not on this one.
    if state.config.metrics_listen.is_none() {
        router = router.route("/metrics", get(metrics));
    }
    let router = router
        .route("/graphql", graphql)
        .route("/graphql/assets/{name}", get(graphql::graphiql::asset))
        .route("/api/webhooks/clerk", webhooks)
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .merge(crate::admin::routes())
        .merge(exports)
        .merge(imports)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(state.config.max_body_bytes))
        .layer(middleware::from_fn_with_state(state.clone(), limit_time))
        .layer(middleware::from_fn_with_state(state.clone(), local_host_only))
        .layer(middleware::from_fn_with_state(state.clone(), count_requests))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(TraceLayer::new_for_http().make_span_with(|request: &Request| {
            let request_id = request
                .headers()
                .get(REQUEST_ID)
                .and_then(|value| value.to_str().ok())
                .unwrap_or("");
            tracing::info_span!("http", method = %request.method(), path = %request.uri().path(), request_id)
        }))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid));
    // Outermost, so a preflight is answered before any limit and every answer (errors, 429s)
    // carries the headers a browser needs to read it.
    match cors {
        Some(cors) => router.layer(cors).with_state(state),
        None => router.with_state(state),
    }
}

/// CORS for browser frontends on other origins (a Next.js app on `localhost:3000` calling
/// `:8000`): the allowed origins are `USERHUB_CORS_ORIGINS`, else `CLERK_AUTHORIZED_PARTIES`
/// (in local mode, the emulator's `http://localhost:3000` when neither is set). Only they get
/// `Access-Control-Allow-Origin`, with credentials (the `__session` cookie); any other origin
/// gets no CORS header, so its pages cannot read an answer. `None` when no origin is allowed.
fn cors(state: &AppState) -> Option<tower_http::cors::CorsLayer> {
    use axum::http::{HeaderValue, Method};
    use tower_http::cors::{AllowOrigin, CorsLayer};

    let mut origins = state.config.browser_origins();
    if origins.is_empty() && state.local.is_some() {
        origins.push(crate::clerk::emulator::DEFAULT_AUTHORIZED_PARTY.to_owned());
    }
    let origins: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|origin| match HeaderValue::from_str(origin) {
            Ok(value) => Some(value),
            Err(_) => {
                tracing::warn!(origin, "not a valid origin; left out of CORS");
                None
            }
        })
        .collect();
    if origins.is_empty() {
        return None;
    }
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_credentials(true)
            .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                header::ACCEPT,
                header::IF_NONE_MATCH,
                REQUEST_ID,
            ])
            // A page that revalidates a query over GET reads the tag it got.
            .expose_headers([REQUEST_ID, header::RETRY_AFTER, header::ETAG])
            .max_age(Duration::from_secs(600)),
    )
}

/// Counts and times every request; answers it with its id at hand, so every error answer
/// names it and a client quoting it leads an operator to the request's log lines; and logs,
/// once, a failure of the server's own that the answer carries (`ServerFault`).
async fn count_requests(State(state): State<AppState>, request: Request, next: Next) -> Response {
    state.metrics.http_requests.fetch_add(1, Ordering::Relaxed);
    let route = crate::metrics::route_label(request.uri().path());
    let request_id = request
        .headers()
        .get(REQUEST_ID)
        .and_then(|id| id.to_str().ok())
        .map(Arc::from);
    let started = std::time::Instant::now();
    let response = crate::error::answering(request_id, next.run(request)).await;
    state
        .metrics
        .observe_http(route, response.status().as_u16(), started.elapsed());
    if let Some(fault) = response.extensions().get::<crate::error::ServerFault>() {
        fault.log();
    }
    response
}

/// In local mode, answers only requests addressed to loopback by name (`Host: 127.0.0.1`,
/// `localhost` or `[::1]`, any port). The server listens on loopback, but a page of any site can
/// point its own domain name at 127.0.0.1 (DNS rebinding) and read the answers as same-origin:
/// GraphiQL's and the console's pages carry the admin token.
async fn local_host_only(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if state.local.is_none() {
        return next.run(request).await;
    }
    let host = request
        .uri()
        .host()
        .map(str::to_owned)
        .or_else(|| {
            request
                .headers()
                .get(header::HOST)
                .and_then(|host| host.to_str().ok())
                .map(|host| match host.rsplit_once(':') {
                    Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => {
                        name.to_owned()
                    }
                    _ => host.to_owned(),
                })
        })
        .unwrap_or_default();
    if matches!(
        host.to_ascii_lowercase().as_str(),
        "127.0.0.1" | "localhost" | "[::1]" | "::1"
    ) {
        next.run(request).await
    } else {
        json_error(
            StatusCode::FORBIDDEN,
            "HOST_NOT_ALLOWED",
            "local mode answers only requests to 127.0.0.1, localhost or [::1]",
        )
    }
}

/// Bounds a request in time: its body must arrive within `USERHUB_BODY_TIMEOUT_MS` (408), and
/// its answer be ready within `USERHUB_REQUEST_TIMEOUT_MS` (503), so a client that trickles
/// its body, or a request stuck on a dependency, does not hold a connection and a worker.
async fn limit_time(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let body_timeout = Duration::from_millis(state.config.body_timeout_ms.max(1));
    let request_timeout = Duration::from_millis(state.config.request_timeout_ms.max(1));
    let late = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let request = request.map(|body| {
        axum::body::Body::new(DeadlineBody {
            inner: body,
            deadline: Box::pin(tokio::time::sleep(body_timeout)),
            late: late.clone(),
        })
    });
    let answered = tokio::time::timeout(request_timeout, next.run(request)).await;
    if late.load(Ordering::Relaxed) {
        return json_error(
            StatusCode::REQUEST_TIMEOUT,
            "REQUEST_TIMEOUT",
            format!(
                "the request body did not arrive within {} ms",
                body_timeout.as_millis()
            ),
        );
    }
    answered.unwrap_or_else(|_| {
        json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "TIMEOUT",
            format!(
                "the request was not answered within {} ms; try again later",
                request_timeout.as_millis()
            ),
        )
    })
}

/// A request body that fails, and says so in `late`, once its deadline passes.
struct DeadlineBody {
    inner: axum::body::Body,
    deadline: std::pin::Pin<Box<tokio::time::Sleep>>,
    late: Arc<std::sync::atomic::AtomicBool>,
}

impl http_body::Body for DeadlineBody {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        use std::task::Poll;
        if let Poll::Ready(frame) = std::pin::Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame);
        }
        if self.deadline.as_mut().poll(cx).is_ready() {
            self.late.store(true, Ordering::Relaxed);
            return Poll::Ready(Some(Err(axum::Error::new(
                "the request body did not arrive in time",
            ))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// The process is up and answering.
async fn healthz() -> Response {
    Json(json!({ "status": "ok" })).into_response()
}

/// The process can do its work: the database answers and its schema is this binary's.
async fn readyz(State(state): State<AppState>) -> Response {
    let database = tokio::time::timeout(Duration::from_secs(2), state.services.db.ping()).await;
    let database_ok = matches!(database, Ok(Ok(())));
    let migrations_current = if database_ok {
        crate::db::migrations_current(&state.services.db).await.ok()
    } else {
        None
    };
    // A replica that cannot hear changes would serve subscriptions that stay silent.
    let listening = state.services.events.is_listening();
    let ready = database_ok && migrations_current == Some(true) && listening;
    let body = json!({
        "status": if ready { "ready" } else { "not_ready" },
        "database": if database_ok { "ok" } else { "unreachable" },
        "events": if listening { "listening" } else { "reconnecting" },
        "migrations": match migrations_current {
            Some(true) => "current",
            Some(false) => "pending",
            None => "unknown",
        },
        "warnings": state.config.warnings(),
    });
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

async fn metrics(State(state): State<AppState>, headers: axum::http::HeaderMap) -> Response {
    if let Some(token) = &state.config.metrics_token {
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(crate::auth::caller::bearer_token);
        // Compared in constant time: the answer's timing says nothing of the token.
        let matches = presented.is_some_and(|presented| {
            presented.len() == token.expose().len()
                && presented
                    .bytes()
                    .zip(token.expose().bytes())
                    .fold(0u8, |differ, (a, b)| differ | (a ^ b))
                    == 0
        });
        if !matches {
            return json_error(
                StatusCode::UNAUTHORIZED,
                "UNAUTHENTICATED",
                "/metrics needs `Authorization: Bearer <USERHUB_METRICS_TOKEN>`",
            );
        }
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}

async fn not_found() -> Response {
    json_error(StatusCode::NOT_FOUND, "NOT_FOUND", "no such route")
}

async fn method_not_allowed() -> Response {
    json_error(
        StatusCode::METHOD_NOT_ALLOWED,
        "METHOD_NOT_ALLOWED",
        "this route does not take that method",
    )
}

/// A server bound to its port, not yet serving.
pub struct Server {
    listener: TcpListener,
    /// `USERHUB_METRICS_LISTEN`: `/metrics` alone.
    metrics_listener: Option<TcpListener>,
    state: AppState,
}

impl Server {
    pub async fn bind(state: AppState, address: SocketAddr) -> anyhow::Result<Server> {
        let listener = TcpListener::bind(address)
            .await
            .with_context(|| format!("cannot listen on {address}"))?;
        if let (Some(local), Some(secret)) = (&state.local, &state.config.clerk_webhook_secret) {
            let address = listener.local_addr()?;
            local
                .emulator
                .emulator
                .deliver_webhooks(crate::clerk::emulator::webhooks::Endpoint {
                    url: format!("http://{address}/api/webhooks/clerk"),
                    secret: secret.expose().to_owned(),
                    switches: Default::default(),
                });
        }
        let metrics_listener = match state.config.metrics_listen {
            Some(address) => Some(
                TcpListener::bind(address)
                    .await
                    .with_context(|| format!("cannot listen for /metrics on {address}"))?,
            ),
            None => None,
        };
        for warning in state.config.warnings() {
            tracing::warn!("{warning}");
        }
        Ok(Server {
            listener,
            metrics_listener,
            state,
        })
    }

    /// Where `/metrics` is served when it has a listener of its own.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener
            .as_ref()
            .and_then(|listener| listener.local_addr().ok())
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` completes, then lets requests in flight finish.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let db = self.state.services.db.clone();
        let pruning = tokio::spawn(async move {
            // First an hour after start: a server that starts has nothing of its own to prune.
            let hour = Duration::from_secs(3600);
            let mut every_hour = tokio::time::interval_at(tokio::time::Instant::now() + hour, hour);
            loop {
                every_hour.tick().await;
                match crate::service::webhooks::prune(&db).await {
                    Ok(0) => {}
                    Ok(pruned) => tracing::info!(pruned, "forgot old webhook deliveries"),
                    Err(err) => tracing::warn!(error = %err, "cannot prune old webhook deliveries"),
                }
                match crate::service::bulk::fail_abandoned(&db).await {
                    Ok(0) => {}
                    Ok(failed) => tracing::warn!(failed, "marked interrupted bulk jobs failed"),
                    Err(err) => {
                        tracing::warn!(error = %err, "cannot look for interrupted bulk jobs")
                    }
                }
                match crate::service::bulk::prune(&db).await {
                    Ok(0) => {}
                    Ok(pruned) => tracing::info!(pruned, "forgot old bulk jobs and dry runs"),
                    Err(err) => tracing::warn!(error = %err, "cannot prune old bulk jobs"),
                }
                match crate::service::change_feed::prune(&db).await {
                    Ok(0) => {}
                    Ok(pruned) => tracing::info!(pruned, "forgot old changes of the change feed"),
                    Err(err) => tracing::warn!(error = %err, "cannot prune the change feed"),
                }
            }
        });
        // Any replica notices a sync whose process died, so its run does not stay `running`.
        let db = self.state.services.db.clone();
        let metrics = self.state.metrics.clone();
        let stale_after = self.state.config.sync_stale_after();
        let sweeping = tokio::spawn(async move {
            let mut ticks =
                tokio::time::interval((stale_after / 2).max(Duration::from_millis(500)));
            loop {
                ticks.tick().await;
                match crate::service::sync::fail_interrupted(&db, stale_after).await {
                    Ok(0) => {}
                    Ok(failed) => {
                        for _ in 0..failed {
                            metrics.count_sync_run("interrupted");
                        }
                        tracing::warn!(failed, "marked failed a sync whose process stopped");
                    }
                    Err(err) => tracing::warn!(error = %err, "cannot look for interrupted syncs"),
                }
            }
        });
        // Every replica suspends the users whose access has ended; the user locks make it
        // idempotent across them (`service::access_ends`).
        let services = self.state.services.clone();
        let every = Duration::from_millis(self.state.config.access_sweep_ms.max(100));
        let ending_access = tokio::spawn(async move {
            // The first a period after start, as the others: a statement at start would count
            // against whatever the server is asked first.
            let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                match crate::service::access_ends::sweep(&services).await {
                    Ok(0) => {}
                    Ok(suspended) => {
                        tracing::info!(suspended, "suspended users whose access ended")
                    }
                    Err(err) => tracing::warn!(error = %err, "cannot look for ended access"),
                }
            }
        });
        let metrics_serving = self.metrics_listener.map(|listener| {
            let router = Router::new()
                .route("/metrics", get(self::metrics))
                .fallback(not_found)
                .with_state(self.state.clone());
            tokio::spawn(async move { axum::serve(listener, router).await })
        });
        let header_timeout = Duration::from_millis(self.state.config.header_timeout_ms.max(1));
        let served =
            serve_connections(self.listener, router(self.state), header_timeout, shutdown).await;
        pruning.abort();
        sweeping.abort();
        ending_access.abort();
        if let Some(metrics_serving) = metrics_serving {
            metrics_serving.abort();
        }
        served
    }
}

/// Accepts connections and serves `router` on each until `shutdown`, then lets each finish the
/// request it is answering. It does what `axum::serve` does not: every connection gets
/// `TCP_NODELAY` (without it a WebSocket answer sent as `next` then `complete` waits for the
/// client's delayed ACK, 40 ms an operation) and hyper's header-read timer, so a client that
/// sends its headers slowly is disconnected. The peer's address is put in each request, as
/// `ConnectInfo`, for the rate and connection limits.
async fn serve_connections(
    listener: TcpListener,
    router: Router,
    header_timeout: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    use tower::ServiceExt as _;

    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .enable_connect_protocol();
    let builder = Arc::new(builder);
    // Dropped at shutdown: each connection then finishes gracefully. Each holds a clone of
    // `open`, so the receiver's `closed` completes when the last one is gone.
    let (stop, stopping) = tokio::sync::watch::channel(());
    let (open, mut all_closed) = tokio::sync::mpsc::channel::<()>(1);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of file descriptors, for example: wait instead of spinning.
                    tracing::warn!(error = %err, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        if let Err(err) = stream.set_nodelay(true) {
            tracing::debug!(error = %err, "cannot set TCP_NODELAY");
        }
        let service = router.clone().map_request(
            move |request: axum::http::Request<hyper::body::Incoming>| {
                let mut request = request.map(axum::body::Body::new);
                request
                    .extensions_mut()
                    .insert(axum::extract::ConnectInfo(peer));
                request
            },
        );
        let service = hyper_util::service::TowerToHyperService::new(service);
        let builder = builder.clone();
        let mut stopping = stopping.clone();
        let open = open.clone();
        tokio::spawn(async move {
            let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
            tokio::pin!(connection);
            let result = tokio::select! {
                result = connection.as_mut() => result,
                _ = stopping.changed() => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(err) = result {
                tracing::trace!(error = %err, "connection ended with an error");
            }
            drop(open);
        });
    }
    drop(listener);
    drop(stop);
    drop(open);
    while all_closed.recv().await.is_some() {}
    Ok(())
}

/// Completes on Ctrl+C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %err, "cannot listen for Ctrl+C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::error!(error = %err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}
