//! Process counters, rendered in the Prometheus text format on `/metrics`.
//!
//! A handful of atomics is all userhub needs; each `AppState` owns its own set, so servers
//! started side by side in one test process never mix their numbers.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct Metrics {
    pub http_requests: AtomicU64,
    pub graphql_operations: AtomicU64,
    pub graphql_errors: AtomicU64,
    pub db_statements: AtomicU64,
    pub db_statement_failures: AtomicU64,
    pub db_statement_micros: AtomicU64,
    pub webhooks_applied: AtomicU64,
    pub webhooks_unchanged: AtomicU64,
    pub webhooks_stale: AtomicU64,
    pub webhooks_ignored: AtomicU64,
    pub webhooks_duplicate: AtomicU64,
    pub webhooks_refused: AtomicU64,
    pub webhooks_failed: AtomicU64,
    pub rate_limited_graphql: AtomicU64,
    pub rate_limited_webhooks: AtomicU64,
}

impl Metrics {
    pub fn db_statements(&self) -> u64 {
        self.db_statements.load(Ordering::Relaxed)
    }

    pub fn count_webhook(&self, outcome: crate::service::webhooks::Outcome) {
        use crate::service::webhooks::Outcome;
        let counter = match outcome {
            Outcome::Applied => &self.webhooks_applied,
            Outcome::Unchanged => &self.webhooks_unchanged,
            Outcome::Stale => &self.webhooks_stale,
            Outcome::Ignored => &self.webhooks_ignored,
            Outcome::Duplicate => &self.webhooks_duplicate,
        };
        counter.fetch_add(1, Ordering::Relaxed);
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
        ];
        for (name, help, value) in counters {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} counter");
            let _ = writeln!(out, "{name} {}", value.load(Ordering::Relaxed));
        }
        let name = "userhub_webhooks_total";
        let _ = writeln!(out, "# HELP {name} Clerk webhook deliveries, by outcome.");
        let _ = writeln!(out, "# TYPE {name} counter");
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
        let name = "userhub_rate_limited_total";
        let _ = writeln!(
            out,
            "# HELP {name} Requests refused with 429 by a rate limit, by route."
        );
        let _ = writeln!(out, "# TYPE {name} counter");
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
