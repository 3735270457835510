//! Builds the schema: root types, limits, extensions and the data resolvers share.

use std::time::Duration;

use async_graphql::dataloader::DataLoader;
use async_graphql::{Schema, SchemaBuilder};

use super::execute::Executor;
use super::loaders::DbLoader;
use super::mutation::Mutation;
use super::query::Query;
use super::subscription::Subscription;
use crate::config::Config;
use crate::service::Services;
use crate::service::pagination::DEFAULT_PAGE_SIZE;

pub type AppSchema = Schema<Query, Mutation, Subscription>;

fn builder() -> SchemaBuilder<Query, Mutation, Subscription> {
    // No extensions: with any, async-graphql runs every field through the extension chain.
    // What they would do runs once per operation instead (`execute.rs`).
    Schema::build(Query::default(), Mutation::default(), Subscription)
}

/// The schema a server runs, wired to its database and limits.
pub fn build_schema(services: Services, config: &Config) -> Executor {
    // Batches are formed by sibling sets (`batch.rs`), so the loader need not wait for more
    // keys: it loads at once, deduplicating and sharing work between concurrent requests.
    let loader =
        DataLoader::new(DbLoader::new(services.db.clone()), tokio::spawn).delay(Duration::ZERO);
    let mut builder = builder()
        .data(services)
        .data(loader)
        .limit_complexity(config.max_query_complexity)
        // async-graphql's parser recursion guard; well above any depth the limit allows.
        .limit_recursive_depth(64)
        .limit_directives(16);
    if !config.introspection {
        builder = builder.disable_introspection();
    }
    Executor::new(
        builder.finish(),
        config.max_query_depth,
        config.max_query_fields,
        config.introspection,
    )
}

/// The schema in SDL: what `userhub schema` prints and `schema.graphql` holds.
pub fn sdl() -> String {
    builder().finish().sdl()
}

/// A connection field costs its selection once per row it may return.
pub fn page_complexity(first: Option<i32>, child_complexity: usize) -> usize {
    let rows = first.map_or(DEFAULT_PAGE_SIZE as usize, |n| n.max(0) as usize);
    1 + rows.max(1) * child_complexity
}
