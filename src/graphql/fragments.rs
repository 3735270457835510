//! One walk of a document's selections with every fragment measured once, for the checks that
//! run before authentication (`depth.rs`, `size.rs`). Walking a fragment again at every spread
//! made `F0 { ...F1 ...F1 } F1 { ...F2 ...F2 } …` (1.5 KB) cost 2^40 steps; remembered, any
//! document costs time linear in its size.

use std::collections::HashMap;

use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};

/// What is measured: a field's value from its name and its selection's value, and how the
/// values of sibling selections combine.
pub(crate) trait Measure {
    fn field(&self, name: &str, selection: usize) -> usize;
    fn siblings(&self, left: usize, right: usize) -> usize;
}

pub(crate) struct Walk<'a, M> {
    document: &'a ExecutableDocument,
    measure: M,
    /// A fragment's value once known; `None` while it is being walked, so a cycle (refused
    /// later by validation) counts as 0 instead of looping.
    fragments: HashMap<&'a str, Option<usize>>,
}

impl<'a, M: Measure> Walk<'a, M> {
    pub(crate) fn new(document: &'a ExecutableDocument, measure: M) -> Walk<'a, M> {
        Walk {
            document,
            measure,
            fragments: HashMap::new(),
        }
    }

    /// The value of a selection set, with every fragment spread expanded.
    pub(crate) fn selection_set(&mut self, selection_set: &'a SelectionSet) -> usize {
        let mut total = 0;
        for item in &selection_set.items {
            let value = match &item.node {
                Selection::Field(field) => {
                    let inner = self.selection_set(&field.node.selection_set.node);
                    self.measure.field(field.node.name.node.as_str(), inner)
                }
                Selection::InlineFragment(fragment) => {
                    self.selection_set(&fragment.node.selection_set.node)
                }
                Selection::FragmentSpread(spread) => {
                    self.fragment(spread.node.fragment_name.node.as_str())
                }
            };
            total = self.measure.siblings(total, value);
        }
        total
    }

    fn fragment(&mut self, name: &'a str) -> usize {
        if let Some(known) = self.fragments.get(name) {
            return known.unwrap_or(0);
        }
        let Some(fragment) = self.document.fragments.get(name) else {
            return 0;
        };
        self.fragments.insert(name, None);
        let value = self.selection_set(&fragment.node.selection_set.node);
        self.fragments.insert(name, Some(value));
        value
    }
}
