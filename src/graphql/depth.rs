//! The depth limit, applied to data and not to introspection.
//!
//! async-graphql's own `limit_depth` counts every selection, so the introspection query of
//! GraphiQL and other tools (`ofType { ofType { ... } }`, about 13 levels) is refused at any
//! limit small enough to stop abuse of the data graph. Introspection is bounded by its own
//! schema, and the complexity limit still applies to everything.

use std::collections::HashSet;
use std::sync::Arc;

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextParseQuery};
use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::{ServerError, ServerResult, Variables};

use super::errors::{VALIDATION_FAILED, with_code};

pub struct DepthLimit(pub usize);

impl ExtensionFactory for DepthLimit {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(DepthLimitExtension(self.0))
    }
}

struct DepthLimitExtension(usize);

#[async_trait::async_trait]
impl Extension for DepthLimitExtension {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let document = next.run(ctx, query, variables).await?;
        for (_, operation) in document.operations.iter() {
            let depth = depth(
                &document,
                &operation.node.selection_set.node,
                &mut HashSet::new(),
            );
            if depth > self.0 {
                return Err(with_code(
                    ServerError::new(
                        format!(
                            "Query is nested too deep: depth {depth} is over the limit of {}",
                            self.0
                        ),
                        None,
                    ),
                    VALIDATION_FAILED,
                ));
            }
        }
        Ok(document)
    }
}

/// The deepest chain of fields below `selection_set`, leaving out introspection fields.
/// `visiting` holds the fragments on the current path, so a cycle (refused later by
/// validation) cannot loop here.
fn depth<'a>(
    document: &'a ExecutableDocument,
    selection_set: &'a SelectionSet,
    visiting: &mut HashSet<&'a str>,
) -> usize {
    selection_set
        .items
        .iter()
        .map(|item| match &item.node {
            Selection::Field(field) => {
                if field.node.name.node.starts_with("__") {
                    0
                } else {
                    1 + depth(document, &field.node.selection_set.node, visiting)
                }
            }
            Selection::InlineFragment(fragment) => {
                depth(document, &fragment.node.selection_set.node, visiting)
            }
            Selection::FragmentSpread(spread) => {
                let name = spread.node.fragment_name.node.as_str();
                match document.fragments.get(&spread.node.fragment_name.node) {
                    Some(fragment) if visiting.insert(name) => {
                        let inner = depth(document, &fragment.node.selection_set.node, visiting);
                        visiting.remove(name);
                        inner
                    }
                    _ => 0,
                }
            }
        })
        .max()
        .unwrap_or(0)
}
