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

    /// Deepest selection nesting a GraphQL operation may have.
    #[arg(long, env = "USERHUB_MAX_QUERY_DEPTH", default_value_t = 12)]
    pub max_query_depth: usize,

    /// Highest complexity a GraphQL operation may have (a field costs 1; a connection field
    /// multiplies its selection by the page size asked for).
    #[arg(long, env = "USERHUB_MAX_QUERY_COMPLEXITY", default_value_t = 5000)]
    pub max_query_complexity: usize,

    /// Answer introspection queries (GraphiQL needs them). Turn off in production if the
    /// schema is private.
    #[arg(long, env = "USERHUB_INTROSPECTION", default_value_t = true, action = clap::ArgAction::Set)]
    pub introspection: bool,
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
            max_query_depth: 12,
            max_query_complexity: 5000,
            introspection: true,
        }
    }

    pub fn is_postgres(&self) -> bool {
        self.database_url.starts_with("postgres:") || self.database_url.starts_with("postgresql:")
    }
}
