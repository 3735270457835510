//! With introspection switched off, async-graphql answers `__schema` and `__type` with a
//! silent `null`. They are refused instead (`execute.rs`), with an error a client can read.

use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};

/// Why the document is refused when introspection is off: it asks for `__schema` or `__type`.
pub(crate) fn check(document: &ExecutableDocument) -> Option<String> {
    let introspecting = document
        .operations
        .iter()
        .any(|(_, operation)| introspects(&operation.node.selection_set.node))
        || document
            .fragments
            .values()
            .any(|fragment| introspects(&fragment.node.selection_set.node));
    introspecting.then(|| "introspection is disabled on this server".to_owned())
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
