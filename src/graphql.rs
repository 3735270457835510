//! The GraphQL API: its schema, its types, and how it is served over HTTP.
//!
//! Resolvers translate between GraphQL and the service layer and do nothing else: they parse
//! arguments into domain values, call `service::`, and wrap the result in a GraphQL type.

pub mod batch;
pub mod cache;
mod conditional;
pub mod depth;
pub mod direct;
pub mod errors;
pub mod execute;
pub mod fanout;
mod fragments;
pub mod graphiql;
pub mod http;
pub mod introspection;
pub mod loaders;
pub mod mutation;
pub mod query;
pub mod schema;
pub mod size;
pub mod subscription;
pub mod types;
pub mod ws;

pub use execute::Executor;
pub use schema::{AppSchema, build_schema, sdl};

use std::sync::Arc;

use crate::auth::Caller;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::service::sessions::Authenticator;

/// What the GraphQL handlers (HTTP and WebSocket) share; the server's state hands it to them
/// (`axum::extract::FromRef`). Cheap to clone.
#[derive(Clone)]
pub struct GraphqlState {
    pub schema: Executor,
    pub config: Arc<Config>,
    pub metrics: Arc<Metrics>,
    pub auth: Arc<Authenticator>,
    /// Answers of queries, reused while current (`cache.rs`).
    pub cache: Arc<cache::ResponseCache>,
    /// Plans of the commonest reads, answered without async-graphql's executor (`direct.rs`).
    pub direct: Arc<direct::DirectReads>,
    /// WebSockets open per client.
    pub sockets: Arc<ws::OpenSockets>,
    /// Live subscriptions shared by subscribers of one scope.
    pub fanout: Arc<fanout::Fanout>,
    /// In local mode, the printed admin token: GraphiQL is given it, and sockets are not
    /// rate-limited (one person on loopback).
    pub local_admin_token: Option<Arc<str>>,
}

impl GraphqlState {
    pub fn is_local_mode(&self) -> bool {
        self.local_admin_token.is_some()
    }
}

/// The id of the request an operation came in (HTTP, or the WebSocket's upgrade), which the
/// transport puts beside the caller: the audit trail correlates by it.
#[derive(Debug, Clone)]
pub struct RequestId(pub Option<String>);

static ANONYMOUS: Caller = Caller::Anonymous;

/// The domain's dependencies, registered once in the schema (`schema::build_schema`).
pub(crate) fn services<'a>(ctx: &async_graphql::Context<'a>) -> &'a crate::service::Services {
    ctx.data_unchecked::<crate::service::Services>()
}

/// The caller of the operation being resolved, as the transport authenticated them.
pub(crate) fn caller<'a>(ctx: &async_graphql::Context<'a>) -> &'a Caller {
    ctx.data_opt::<Caller>().unwrap_or(&ANONYMOUS)
}
