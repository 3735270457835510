//! userhub: a GraphQL API for the users and organisations of a workload-management
//! application, kept in step with Clerk.
//!
//! # Architecture
//!
//! Every path of data is a straight line, top to bottom:
//!
//! ```text
//!  HTTP (axum, hyper)     app.rs: the accept loop, routes, size and time limits, CORS,
//!    │                    request ids, health, metrics, shutdown;
//!    │                    rate_limit.rs: per-client token buckets (429, Retry-After)
//!    ├── graphql/         schema, resolvers, DataLoaders, GraphQL over HTTP and WebSocket,
//!    │                    subscriptions, GraphiQL
//!    ├── webhooks/        Clerk's deliveries: svix verification, the event envelope
//!    ├── admin.rs         the admin console (`/admin`, assets/admin/): a client of the API
//!    │
//!  service/               the domain: users, organisations, audit, pagination
//!    │
//!  entity/ (crate)        SeaORM models         migration/ (crate)  the schema, versioned
//!    │
//!  SQLite | PostgreSQL    db.rs: connect, count statements, migrate
//! ```
//!
//! - Nothing below `service/` knows about GraphQL or HTTP; nothing above it writes SQL.
//! - `service/` returns `error::AppError`, which is mapped once to GraphQL error codes
//!   (`graphql/errors.rs`) and once to HTTP responses (`error.rs`).
//! - Every change writes its audit event in the same transaction (`service/audit.rs`) and
//!   publishes one change event when it commits (`events/`: in-process, or `NOTIFY` inside the
//!   transaction on PostgreSQL so every replica hears it).
//! - A mutation holds its user from the Clerk call to the commit (`service/user_locks.rs`), so
//!   Clerk's webhook about that change, which can overtake Clerk's answer, finds it stored and
//!   the change stays credited to the person who made it.
//! - `config.rs` documents every setting.

pub mod admin;
pub mod app;
pub mod assets;
pub mod auth;
pub mod clerk;
pub mod cli;
pub mod config;
pub mod db;
pub mod error;
pub mod events;
pub mod graphql;
pub mod local;
pub mod metrics;
pub mod rate_limit;
pub mod service;
pub mod telemetry;
pub mod webhooks;
