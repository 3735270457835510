//! The size limit: how many fields a document selects and how many variables an operation
//! declares, counted before anything else looks at it.
//!
//! The complexity limit leaves out `__typename`, so without this a 256 KB body could ask for
//! 15,000 of them; and every declared but unused variable is an error of its own, so a body
//! declaring 5,000 earned an answer of almost a megabyte. Both cost time linear in the body;
//! this refuses them in one pass, with one error.
//!
//! Fields are counted as executed: a fragment counts at every spread, so `F0 { ...F1 ...F1 }
//! F1 { ...F2 ...F2 } …` selects 2^40 fields from 1.5 KB. Each fragment is counted once
//! (`fragments.rs`) and counts saturate, so the check stays linear in the document.

use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};

use super::fragments::{Measure, Walk};

/// Most variables one operation may declare.
pub(crate) const MAX_VARIABLES: usize = 100;

/// Why the document is refused: more than `max_fields` field selections (aliases included,
/// fragments expanded where they are spread, every definition counted at least once), or an
/// operation with more than `MAX_VARIABLES` variables.
pub(crate) fn check(document: &ExecutableDocument, max_fields: usize) -> Option<String> {
    let mut counter = Walk::new(document, Executed);
    let mut executed: usize = 0;
    let mut written: usize = 0;
    for (_, operation) in document.operations.iter() {
        let variables = operation.node.variable_definitions.len();
        if variables > MAX_VARIABLES {
            return Some(format!(
                "Query declares too many variables: {variables} is over the limit of \
                 {MAX_VARIABLES}"
            ));
        }
        executed =
            executed.saturating_add(counter.selection_set(&operation.node.selection_set.node));
        written = written.saturating_add(written_fields(&operation.node.selection_set.node));
    }
    for fragment in document.fragments.values() {
        written = written.saturating_add(written_fields(&fragment.node.selection_set.node));
    }
    let fields = executed.max(written);
    (fields > max_fields).then(|| {
        if fields == usize::MAX {
            format!("Query selects too many fields: far over the limit of {max_fields}")
        } else {
            format!("Query selects too many fields: {fields} is over the limit of {max_fields}")
        }
    })
}

/// Fields as the document spells them, each fragment once: unused fragments count too.
fn written_fields(selection_set: &SelectionSet) -> usize {
    selection_set
        .items
        .iter()
        .map(|item| match &item.node {
            Selection::Field(field) => 1 + written_fields(&field.node.selection_set.node),
            Selection::InlineFragment(fragment) => {
                written_fields(&fragment.node.selection_set.node)
            }
            Selection::FragmentSpread(_) => 0,
        })
        .fold(0, usize::saturating_add)
}

/// Fields as executed, with every spread expanded; counts saturate.
struct Executed;

impl Measure for Executed {
    fn field(&self, _name: &str, selection: usize) -> usize {
        selection.saturating_add(1)
    }

    fn siblings(&self, left: usize, right: usize) -> usize {
        left.saturating_add(right)
    }
}
