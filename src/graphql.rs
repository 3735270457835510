//! The GraphQL API: its schema, its types, and how it is served over HTTP.
//!
//! Resolvers translate between GraphQL and the service layer and do nothing else: they parse
//! arguments into domain values, call `service::`, and wrap the result in a GraphQL type.

pub mod batch;
pub mod depth;
pub mod errors;
pub mod execute;
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

use crate::auth::Caller;

static ANONYMOUS: Caller = Caller::Anonymous;

/// The caller of the operation being resolved, as the transport authenticated them.
pub(crate) fn caller<'a>(ctx: &async_graphql::Context<'a>) -> &'a Caller {
    ctx.data_opt::<Caller>().unwrap_or(&ANONYMOUS)
}
