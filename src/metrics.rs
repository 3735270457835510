//! Process metrics, rendered in the Prometheus text format on `/metrics`.
//!
//! Atomics and a few small maps are all userhub needs; each `AppState` owns its own set, so
//! servers started side by side in one test process never mix their numbers. Every label value
//! comes from a closed set (a route, a root field of the schema, an error code, a Clerk path
//! with its ids replaced), so no client can grow the number of series.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// A Prometheus histogram of durations.
#[derive(Debug, Default)]
pub struct Histogram {
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        if let Some(index) = BUCKETS.iter().position(|bound| seconds <= *bound) {
            self.buckets[index].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros
            .fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let separator = if labels.is_empty() { "" } else { "," };
        let mut cumulative = 0;
        for (bound, bucket) in BUCKETS.iter().zip(&self.buckets) {
            cumulative += bucket.load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}{separator}le=\"{bound}\"}} {cumulative}"
            );
        }
        let count = self.count();
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels}{separator}le=\"+Inf\"}} {count}"
        );
        let braces = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum{braces} {sum}");
        let _ = writeln!(out, "{name}_count{braces} {count}");
    }
}

/// Counters keyed by their label values, e.g. `[("operation", "users"), ("outcome", "ok")]`.
#[derive(Debug, Default)]
struct CounterFamily(Mutex<BTreeMap<String, u64>>);

impl CounterFamily {
    fn add(&self, labels: &[(&str, &str)], value: u64) {
        let key = label_text(labels);
        if let Ok(mut counters) = self.0.lock() {
            *counters.entry(key).or_default() += value;
        }
    }

    fn get(&self, labels: &[(&str, &str)]) -> u64 {
        let key = label_text(labels);
        self.0
            .lock()
            .ok()
            .and_then(|counters| counters.get(&key).copied())
            .unwrap_or(0)
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        header(out, name, help, "counter");
        if let Ok(counters) = self.0.lock() {
            for (labels, value) in counters.iter() {
                let _ = writeln!(out, "{name}{{{labels}}} {value}");
            }
        }
    }
}

/// Histograms keyed by their label values.
#[derive(Debug, Default)]
struct HistogramFamily(Mutex<BTreeMap<String, std::sync::Arc<Histogram>>>);

impl HistogramFamily {
    fn observe(&self, labels: &[(&str, &str)], elapsed: Duration) {
        let key = label_text(labels);
        let histogram = match self.0.lock() {
            Ok(mut histograms) => histograms.entry(key).or_default().clone(),
            Err(_) => return,
        };
        histogram.observe(elapsed);
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        header(out, name, help, "histogram");
        if let Ok(histograms) = self.0.lock() {
            for (labels, histogram) in histograms.iter() {
                histogram.render(out, name, labels);
            }
        }
    }
}

fn label_text(labels: &[(&str, &str)]) -> String {
    let mut text = String::new();
    for (index, (name, value)) in labels.iter().enumerate() {
        if index > 0 {
            text.push(',');
        }
        let _ = write!(text, "{name}=\"{}\"", escape(value));
    }
    text
}

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Which route a request took, for labels: a closed set.
pub fn route_label(path: &str) -> &'static str {
    match path {
        "/graphql" => "graphql",
        "/api/webhooks/clerk" => "webhooks",
        "/healthz" | "/readyz" => "health",
        "/metrics" => "metrics",
        path if path.starts_with("/graphql/assets/") => "assets",
        path if path == "/admin" || path.starts_with("/admin/") => "admin",
        _ => "other",
    }
}

#[derive(Debug, Default)]
pub struct Metrics {
    pub http_requests: AtomicU64,
    pub graphql_operations: AtomicU64,
    pub graphql_errors: AtomicU64,
    pub db_statements: AtomicU64,
    pub db_statement_failures: AtomicU64,
    pub db_statement_micros: AtomicU64,
    pub db_statement_seconds: Histogram,
    pub webhooks_applied: AtomicU64,
    pub webhooks_unchanged: AtomicU64,
    pub webhooks_stale: AtomicU64,
    pub webhooks_ignored: AtomicU64,
    pub webhooks_duplicate: AtomicU64,
    pub webhooks_refused: AtomicU64,
    pub webhooks_failed: AtomicU64,
    pub rate_limited_graphql: AtomicU64,
    pub rate_limited_webhooks: AtomicU64,
    pub websocket_connections: AtomicI64,
    pub subscriptions: AtomicI64,
    /// Shared subscriptions (`graphql/fanout.rs`): the groups running, the payloads resolved
    /// and serialised for a group, and the messages sent to members.
    pub subscription_groups: AtomicI64,
    pub subscription_encodings: AtomicU64,
    pub subscription_messages: AtomicU64,
    /// Webhook deliveries by group commit (`service::webhooks::Ingest`): the transactions that
    /// applied them, and the deliveries queued or being applied now.
    pub webhook_batches: AtomicU64,
    pub webhooks_in_flight: AtomicI64,
    /// The response cache (`graphql/cache.rs`): answers reused, answers computed for want of
    /// a current one, answers dropped to stay within the byte budget, and what it holds.
    pub cache_hits: AtomicU64,
    pub cache_misses: AtomicU64,
    pub cache_evictions: AtomicU64,
    pub cache_bytes: AtomicI64,
    pub cache_entries: AtomicI64,
    /// Queries answered by the direct path (`graphql/direct.rs`).
    pub direct_answers: AtomicU64,
    http_responses: CounterFamily,
    http_seconds: HistogramFamily,
    operations: CounterFamily,
    operation_seconds: HistogramFamily,
    clerk_calls: CounterFamily,
    clerk_retries: CounterFamily,
    clerk_seconds: HistogramFamily,
    sync_runs: CounterFamily,
}

/// Keeps a gauge up while it lives: a connection, a subscription.
pub struct GaugeGuard<'a>(&'a AtomicI64);

impl<'a> GaugeGuard<'a> {
    pub fn hold(gauge: &'a AtomicI64) -> GaugeGuard<'a> {
        gauge.fetch_add(1, Ordering::Relaxed);
        GaugeGuard(gauge)
    }
}

impl Drop for GaugeGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Metrics {
    pub fn db_statements(&self) -> u64 {
        self.db_statements.load(Ordering::Relaxed)
    }

    /// One HTTP response: its route, its status class (`2xx`…) and how long it took.
    pub fn observe_http(&self, route: &'static str, status: u16, elapsed: Duration) {
        let class = match status {
            100..=199 => "1xx",
            200..=299 => "2xx",
            300..=399 => "3xx",
            400..=499 => "4xx",
            _ => "5xx",
        };
        self.http_responses
            .add(&[("route", route), ("status", class)], 1);
        self.http_seconds.observe(&[("route", route)], elapsed);
    }

    /// One GraphQL operation: its type, the root field it selects first (a field of the
    /// schema, or `unknown`), its outcome (`ok` or the first error's code) and its time.
    pub fn observe_operation(&self, kind: &str, field: &str, outcome: &str, elapsed: Duration) {
        self.operations.add(
            &[("type", kind), ("operation", field), ("outcome", outcome)],
            1,
        );
        self.operation_seconds
            .observe(&[("type", kind), ("operation", field)], elapsed);
    }

    pub fn operation_count(&self, kind: &str, field: &str, outcome: &str) -> u64 {
        self.operations
            .get(&[("type", kind), ("operation", field), ("outcome", outcome)])
    }

    /// One Clerk call, its retries included: `GET /users/{id}`, `ok` / `refused` /
    /// `unavailable` / `unreadable`.
    pub fn observe_clerk(&self, call: &str, outcome: &str, elapsed: Duration) {
        self.clerk_calls
            .add(&[("call", call), ("outcome", outcome)], 1);
        self.clerk_seconds.observe(&[("call", call)], elapsed);
    }

    /// A Clerk call tried again, and why: `rate_limited`, `server_error`, `timeout`, `connect`.
    pub fn count_clerk_retry(&self, call: &str, reason: &str) {
        self.clerk_retries
            .add(&[("call", call), ("reason", reason)], 1);
    }

    /// A sync run that ended: `succeeded`, `failed`, or `interrupted` (found dead).
    pub fn count_sync_run(&self, outcome: &str) {
        self.sync_runs.add(&[("outcome", outcome)], 1);
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        let counters = [
            (
                "userhub_http_requests_total",
                "HTTP requests received.",
                &self.http_requests,
            ),
            (
                "userhub_graphql_operations_total",
                "GraphQL operations executed.",
                &self.graphql_operations,
            ),
            (
                "userhub_graphql_errors_total",
                "GraphQL errors answered.",
                &self.graphql_errors,
            ),
            (
                "userhub_db_statements_total",
                "SQL statements sent to the database.",
                &self.db_statements,
            ),
            (
                "userhub_db_statement_failures_total",
                "SQL statements that failed.",
                &self.db_statement_failures,
            ),
            (
                "userhub_db_statement_microseconds_total",
                "Time spent in SQL statements.",
                &self.db_statement_micros,
            ),
            (
                "userhub_response_cache_hits_total",
                "Query answers reused from the response cache.",
                &self.cache_hits,
            ),
            (
                "userhub_response_cache_misses_total",
                "Cacheable queries computed because no current answer was cached.",
                &self.cache_misses,
            ),
            (
                "userhub_graphql_direct_answers_total",
                "Queries answered by the direct path instead of async-graphql's executor.",
                &self.direct_answers,
            ),
            (
                "userhub_response_cache_evictions_total",
                "Answers dropped from the response cache to stay within USERHUB_CACHE_BYTES.",
                &self.cache_evictions,
            ),
            (
                "userhub_subscription_encodings_total",
                "Payloads of shared subscriptions resolved and serialised, once for every \
                 subscriber of the group.",
                &self.subscription_encodings,
            ),
            (
                "userhub_subscription_messages_total",
                "Payloads of shared subscriptions sent to subscribers.",
                &self.subscription_messages,
            ),
            (
                "userhub_webhook_batches_total",
                "Transactions that applied webhook deliveries together; \
                 userhub_webhooks_total over this is the deliveries per transaction.",
                &self.webhook_batches,
            ),
        ];
        for (name, help, value) in counters {
            header(&mut out, name, help, "counter");
            let _ = writeln!(out, "{name} {}", value.load(Ordering::Relaxed));
        }
        let gauges = [
            (
                "userhub_websocket_connections",
                "Open GraphQL WebSocket connections.",
                &self.websocket_connections,
            ),
            (
                "userhub_subscriptions",
                "Operations running over GraphQL WebSocket connections: live subscriptions, and \
                 queries while they run.",
                &self.subscriptions,
            ),
            (
                "userhub_subscription_groups",
                "Shared subscriptions running: subscribers asking the same subscription with the \
                 same access share one.",
                &self.subscription_groups,
            ),
            (
                "userhub_webhooks_in_flight",
                "Verified webhook deliveries queued or being applied now.",
                &self.webhooks_in_flight,
            ),
            (
                "userhub_response_cache_bytes",
                "Bytes of answers (and their keys) the response cache holds.",
                &self.cache_bytes,
            ),
            (
                "userhub_response_cache_entries",
                "Answers the response cache holds.",
                &self.cache_entries,
            ),
        ];
        for (name, help, value) in gauges {
            header(&mut out, name, help, "gauge");
            let _ = writeln!(out, "{name} {}", value.load(Ordering::Relaxed));
        }
        self.http_responses.render(
            &mut out,
            "userhub_http_responses_total",
            "HTTP responses, by route and status class.",
        );
        self.http_seconds.render(
            &mut out,
            "userhub_http_request_duration_seconds",
            "Time to answer an HTTP request, by route (a WebSocket: until the upgrade).",
        );
        self.operations.render(
            &mut out,
            "userhub_graphql_requests_total",
            "GraphQL operations over HTTP, by type, first root field and outcome (ok or the \
             first error's code).",
        );
        self.operation_seconds.render(
            &mut out,
            "userhub_graphql_request_duration_seconds",
            "Time to run a GraphQL operation over HTTP, by type and first root field.",
        );
        let name = "userhub_webhooks_total";
        header(
            &mut out,
            name,
            "Clerk webhook deliveries, by outcome.",
            "counter",
        );
        for (outcome, value) in [
            ("applied", &self.webhooks_applied),
            ("unchanged", &self.webhooks_unchanged),
            ("stale", &self.webhooks_stale),
            ("ignored", &self.webhooks_ignored),
            ("duplicate", &self.webhooks_duplicate),
            ("refused", &self.webhooks_refused),
            ("failed", &self.webhooks_failed),
        ] {
            let _ = writeln!(
                out,
                "{name}{{outcome=\"{outcome}\"}} {}",
                value.load(Ordering::Relaxed)
            );
        }
        self.clerk_calls.render(
            &mut out,
            "userhub_clerk_requests_total",
            "Calls to Clerk's Backend API (retries included), by call and outcome.",
        );
        self.clerk_retries.render(
            &mut out,
            "userhub_clerk_retries_total",
            "Clerk calls tried again, by call and reason.",
        );
        self.clerk_seconds.render(
            &mut out,
            "userhub_clerk_request_duration_seconds",
            "Time of a Clerk call, its retries and waits included, by call.",
        );
        self.sync_runs.render(
            &mut out,
            "userhub_sync_runs_total",
            "Sync runs ended here, by outcome (interrupted: found dead and marked failed).",
        );
        let name = "userhub_db_statement_duration_seconds";
        header(&mut out, name, "Time of one SQL statement.", "histogram");
        self.db_statement_seconds.render(&mut out, name, "");
        let name = "userhub_rate_limited_total";
        header(
            &mut out,
            name,
            "Requests refused with 429 by a rate limit, by route.",
            "counter",
        );
        for (route, value) in [
            ("graphql", &self.rate_limited_graphql),
            ("webhooks", &self.rate_limited_webhooks),
        ] {
            let _ = writeln!(
                out,
                "{name}{{route=\"{route}\"}} {}",
                value.load(Ordering::Relaxed)
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_histogram_renders_cumulative_buckets_a_sum_and_a_count() {
        let metrics = Metrics::default();
        metrics.observe_operation("query", "users", "ok", Duration::from_millis(3));
        metrics.observe_operation("query", "users", "ok", Duration::from_millis(40));
        metrics.observe_operation("query", "users", "FORBIDDEN", Duration::from_millis(2));
        let text = metrics.render();
        let line = |start: &str| {
            text.lines()
                .find(|line| line.starts_with(start))
                .unwrap_or_else(|| panic!("{start} in\n{text}"))
                .to_owned()
        };
        assert_eq!(
            line(
                "userhub_graphql_requests_total{type=\"query\",operation=\"users\",outcome=\"ok\"}"
            ),
            "userhub_graphql_requests_total{type=\"query\",operation=\"users\",outcome=\"ok\"} 2"
        );
        assert!(line("userhub_graphql_request_duration_seconds_bucket{type=\"query\",operation=\"users\",le=\"0.0025\"}").ends_with(" 1"));
        assert!(line("userhub_graphql_request_duration_seconds_bucket{type=\"query\",operation=\"users\",le=\"0.005\"}").ends_with(" 2"));
        assert!(line("userhub_graphql_request_duration_seconds_bucket{type=\"query\",operation=\"users\",le=\"+Inf\"}").ends_with(" 3"));
        assert_eq!(
            line(
                "userhub_graphql_request_duration_seconds_sum{type=\"query\",operation=\"users\"}"
            ),
            "userhub_graphql_request_duration_seconds_sum{type=\"query\",operation=\"users\"} 0.045"
        );
        assert_eq!(metrics.operation_count("query", "users", "FORBIDDEN"), 1);
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label_text(&[("a", "x\"y\\z")]), "a=\"x\\\"y\\\\z\"");
    }
}
