//! Structured logs with `tracing`: text for people, JSON for collectors, filtered by `RUST_LOG`.

use tracing_subscriber::{EnvFilter, fmt, prelude::*};

use crate::config::LogFormat;

/// Installs the global subscriber. Called once, by the binary; tests leave logging off.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,sea_orm=warn,sea_orm_migration=warn"));
    let registry = tracing_subscriber::registry().with(filter);
    match format {
        LogFormat::Text => registry.with(fmt::layer().with_target(false)).init(),
        LogFormat::Json => registry
            .with(
                fmt::layer()
                    .json()
                    .flatten_event(true)
                    // Every line a request causes carries its `request_id` (and a sync's, its
                    // `run_id`) from the spans it runs in.
                    .with_current_span(false)
                    .with_span_list(true),
            )
            .init(),
    }
}
