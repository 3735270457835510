//! The depth limit, applied to data and not to introspection.
//!
//! async-graphql's own `limit_depth` counts every selection, so the introspection query of
//! GraphiQL and other tools (`ofType { ofType { ... } }`, about 13 levels) is refused at any
//! limit small enough to stop abuse of the data graph. Introspection is bounded by its own
//! schema, and the complexity limit still applies to everything.

use std::collections::HashSet;

use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};

/// Why the document is refused: an operation nests deeper than `limit`.
pub(crate) fn check(document: &ExecutableDocument, limit: usize) -> Option<String> {
    document.operations.iter().find_map(|(_, operation)| {
        let depth = depth(
            document,
            &operation.node.selection_set.node,
            &mut HashSet::new(),
        );
        (depth > limit).then(|| {
            format!("Query is nested too deep: depth {depth} is over the limit of {limit}")
        })
    })
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
