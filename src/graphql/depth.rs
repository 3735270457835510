//! The depth limit, applied to data and not to introspection.
//!
//! async-graphql's own `limit_depth` counts every selection, so the introspection query of
//! GraphiQL and other tools (`ofType { ofType { ... } }`, about 13 levels) is refused at any
//! limit small enough to stop abuse of the data graph. Introspection is bounded by its own
//! schema, and the complexity limit still applies to everything.
//!
//! This runs before authentication, so its cost must be linear in the document: each
//! fragment's depth is computed once and remembered. Walking a fragment again at every spread
//! made `F0 { ...F1 ...F1 } F1 { ...F2 ...F2 } …` (1.5 KB) cost 2^40 steps.

use std::collections::HashMap;

use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};

/// Why the document is refused: an operation nests deeper than `limit`.
pub(crate) fn check(document: &ExecutableDocument, limit: usize) -> Option<String> {
    let mut walk = Walk {
        document,
        fragments: HashMap::new(),
    };
    document.operations.iter().find_map(|(_, operation)| {
        let depth = walk.depth(&operation.node.selection_set.node);
        (depth > limit).then(|| {
            format!("Query is nested too deep: depth {depth} is over the limit of {limit}")
        })
    })
}

/// A fragment's depth once known; `None` while it is being walked, so a cycle (refused later
/// by validation) counts as 0 instead of looping.
struct Walk<'a> {
    document: &'a ExecutableDocument,
    fragments: HashMap<&'a str, Option<usize>>,
}

impl<'a> Walk<'a> {
    /// The deepest chain of fields below `selection_set`, leaving out introspection fields.
    fn depth(&mut self, selection_set: &'a SelectionSet) -> usize {
        let mut deepest = 0;
        for item in &selection_set.items {
            let depth = match &item.node {
                Selection::Field(field) if field.node.name.node.starts_with("__") => 0,
                Selection::Field(field) => {
                    self.depth(&field.node.selection_set.node).saturating_add(1)
                }
                Selection::InlineFragment(fragment) => {
                    self.depth(&fragment.node.selection_set.node)
                }
                Selection::FragmentSpread(spread) => {
                    self.fragment(spread.node.fragment_name.node.as_str())
                }
            };
            deepest = deepest.max(depth);
        }
        deepest
    }

    fn fragment(&mut self, name: &'a str) -> usize {
        if let Some(known) = self.fragments.get(name) {
            return known.unwrap_or(0);
        }
        let Some(fragment) = self.document.fragments.get(name) else {
            return 0;
        };
        self.fragments.insert(name, None);
        let depth = self.depth(&fragment.node.selection_set.node);
        self.fragments.insert(name, Some(depth));
        depth
    }
}
