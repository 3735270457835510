//! The depth limit, applied to data and not to introspection.
//!
//! async-graphql's own `limit_depth` counts every selection, so the introspection query of
//! GraphiQL and other tools (`ofType { ofType { ... } }`, about 13 levels) is refused at any
//! limit small enough to stop abuse of the data graph. Introspection is bounded by its own
//! schema, and the complexity limit still applies to everything. It runs before
//! authentication, so fragments are measured once each (`fragments.rs`).

use async_graphql::parser::types::ExecutableDocument;

use super::fragments::{Measure, Walk};

/// The deepest chain of fields, leaving out introspection fields.
struct Depth;

impl Measure for Depth {
    fn field(&self, name: &str, selection: usize) -> usize {
        if name.starts_with("__") {
            0
        } else {
            selection.saturating_add(1)
        }
    }

    fn siblings(&self, left: usize, right: usize) -> usize {
        left.max(right)
    }
}

/// Why the document is refused: an operation nests deeper than `limit`.
pub(crate) fn check(document: &ExecutableDocument, limit: usize) -> Option<String> {
    let mut walk = Walk::new(document, Depth);
    document.operations.iter().find_map(|(_, operation)| {
        let depth = walk.selection_set(&operation.node.selection_set.node);
        (depth > limit).then(|| {
            format!("Query is nested too deep: depth {depth} is over the limit of {limit}")
        })
    })
}
