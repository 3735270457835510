//! The size limit: how many fields a document selects and how many variables an operation
//! declares, counted before anything else looks at it.
//!
//! The complexity limit leaves out `__typename`, so without this a 256 KB body could ask for
//! 15,000 of them; and every declared but unused variable is an error of its own, so a body
//! declaring 5,000 earned an answer of almost a megabyte. Both cost time linear in the body;
//! this refuses them in one pass, with one error.

use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};

/// Most variables one operation may declare.
pub(crate) const MAX_VARIABLES: usize = 100;

/// Why the document is refused: more than `max_fields` field selections (in its operations
/// and fragments, aliases included, each fragment counted once), or an operation with more
/// than `MAX_VARIABLES` variables.
pub(crate) fn check(document: &ExecutableDocument, max_fields: usize) -> Option<String> {
    let mut fields = 0;
    for (_, operation) in document.operations.iter() {
        let variables = operation.node.variable_definitions.len();
        if variables > MAX_VARIABLES {
            return Some(format!(
                "Query declares too many variables: {variables} is over the limit of \
                 {MAX_VARIABLES}"
            ));
        }
        fields += count(&operation.node.selection_set.node);
    }
    for fragment in document.fragments.values() {
        fields += count(&fragment.node.selection_set.node);
    }
    (fields > max_fields).then(|| {
        format!("Query selects too many fields: {fields} is over the limit of {max_fields}")
    })
}

fn count(selection_set: &SelectionSet) -> usize {
    selection_set
        .items
        .iter()
        .map(|item| match &item.node {
            Selection::Field(field) => 1 + count(&field.node.selection_set.node),
            Selection::InlineFragment(fragment) => count(&fragment.node.selection_set.node),
            Selection::FragmentSpread(_) => 0,
        })
        .sum()
}
