//! With introspection switched off, async-graphql answers `__schema` and `__type` with a
//! silent `null`. This extension refuses them instead, with an error a client can read.

use std::sync::Arc;

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextParseQuery};
use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::{ServerError, ServerResult, Variables};

use super::errors::{VALIDATION_FAILED, with_code};

pub struct RefuseIntrospection;

impl ExtensionFactory for RefuseIntrospection {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(RefuseIntrospectionExtension)
    }
}

struct RefuseIntrospectionExtension;

#[async_trait::async_trait]
impl Extension for RefuseIntrospectionExtension {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let document = next.run(ctx, query, variables).await?;
        let at_root = document
            .operations
            .iter()
            .any(|(_, operation)| introspects(&operation.node.selection_set.node))
            || document
                .fragments
                .values()
                .any(|fragment| introspects(&fragment.node.selection_set.node));
        if at_root {
            return Err(with_code(
                ServerError::new("introspection is disabled on this server", None),
                VALIDATION_FAILED,
            ));
        }
        Ok(document)
    }
}

/// `__schema` or `__type` anywhere in a selection; `__typename` is not introspection.
fn introspects(selection_set: &SelectionSet) -> bool {
    selection_set.items.iter().any(|item| match &item.node {
        Selection::Field(field) => {
            matches!(field.node.name.node.as_str(), "__schema" | "__type")
                || introspects(&field.node.selection_set.node)
        }
        Selection::InlineFragment(fragment) => introspects(&fragment.node.selection_set.node),
        Selection::FragmentSpread(_) => false,
    })
}
