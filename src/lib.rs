//! userhub: a GraphQL API for the users and organisations of a workload-management
//! application, kept in step with Clerk.
//!
//! # Architecture
//!
//! Layers, bottom to top; a module uses only the layers below its own (`tests/layers.rs`
//! fails on an import that points up or sideways). `docs/architecture.md` says more: where
//! each kind of change belongs, how a mutation, a webhook and a sync flow, and the rules.
//!
//! ```text
//!  cli.rs                 the command line: serve, migrate, sync, grant-admin, emulator
//!  app.rs                 AppState, routes, the accept loop, size and time limits, CORS,
//!    │                    request ids, health, metrics, shutdown
//!  admin.rs, local.rs     the admin console (assets/admin/: ES modules, one per view);
//!    │                    local mode's embedded Clerk
//!  graphql/  webhooks/    resolvers that translate (GraphqlState), the response cache
//!  exports.rs imports.rs  (cache.rs), pages of users answered directly (direct.rs);
//!    │                    svix-verified deliveries (WebhookState); CSV downloads
//!    │                    (ExportState) and uploads (ImportState): each takes its slice
//!    │                    of AppState through FromRef
//!  assets.rs              static files and pages with their security headers
//!  service/               the domain: users (reading, from_clerk, removal), accounts,
//!    │                    organisations, profiles, invitations, sync (run, reconcile,
//!    │                    report), webhooks, live, audit, bulk, imports, exports,
//!    │                    sessions, pagination;
//!    │                    write.rs the one way to write, user_locks.rs one writer per
//!    │                    user, freshness.rs the stamp that says nothing committed since
//!  auth/                  token verification, Caller and Actor, every access rule
//!  error.rs  events/      AppError; the change-event bus and Origin
//!  clerk/                 Clerk's client, wire types and emulator: knows nothing of the domain
//!  db.rs  rate_limit.rs   connect, count statements, migrate; per-client token buckets
//!  metrics.rs  telemetry.rs  config.rs
//!  entity/  migration/    (crates) SeaORM models; the schema, versioned
//! ```
//!
//! - Nothing below `graphql/` knows about GraphQL or HTTP; nothing above `service/` writes SQL.
//! - Service entry points take `service::Services` (the database, Clerk, the event bus, the
//!   metrics, the user locks: built once in `AppState::build`, registered in the schema) and
//!   the `Actor` or `Requester` whose right they check through `auth/access.rs`. Resolvers and
//!   handlers apply no access rule themselves (`tests/layers.rs` checks); a list comes back
//!   with its filter narrowed to the caller (`service::Scoped`), and its total counts that.
//! - `service/` returns `error::AppError`, which is mapped once to GraphQL error codes
//!   (`graphql/errors.rs`) and once to HTTP responses (`error.rs`).
//! - Every change goes through one unit of work, `service::Write`: its rows and their audit
//!   events (`service/audit.rs`) in one transaction, and its change events published when it
//!   commits (`events/`: in-process, or `NOTIFY` inside the transaction on PostgreSQL so every
//!   replica hears it), both or neither.
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
pub mod exports;
pub mod graphql;
pub mod imports;
pub mod local;
pub mod metrics;
pub mod rate_limit;
pub mod service;
pub mod telemetry;
pub mod webhooks;
