//! userhub's integration tests: the real server on a random port, real HTTP, a fresh database
//! per test.
//!
//! Every test runs twice, as `<test>::sqlite` and `<test>::postgres`. The PostgreSQL run uses
//! `TEST_DATABASE_URL` (each test creates and drops a database of its own); without it that
//! run is skipped, unless `USERHUB_REQUIRE_POSTGRES=1` makes a missing database a failure.

mod helpers;
mod live;

mod abuse;
mod access;
mod access_ends;
mod access_nested;
mod activity;
mod audit;
mod auth;
mod bulk;
mod cache;
mod change_feed;
mod contract;
mod direct;
mod emulator_webhooks;
mod events;
mod exports;
mod fanout;
mod faults;
mod http;
mod imports;
mod ingest;
mod invitations;
mod last_admin;
mod mutations;
mod organisations;
mod process;
mod profiles;
mod schema;
mod statements;
mod stats;
mod storage_faults;
mod subscriptions;
mod sync;
mod users;
mod webhooks;
mod websocket;
mod websocket_access;
mod workload;
