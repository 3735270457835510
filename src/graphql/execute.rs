//! The one way into the schema, for HTTP and WebSocket alike.
//!
//! async-graphql can run checks like these as extensions, but a schema with any extension
//! sends every field of every response through the extension chain (a registry look-up and a
//! boxed future per field and extension): a tenth of the server's time under W1
//! (BENCHMARKS.md). Here they run once per operation, before async-graphql executes it:
//!
//! - the document is parsed once and kept in the request, so async-graphql does not parse it
//!   again: `GRAPHQL_PARSE_FAILED`;
//! - the size limit (fields and variables, `size.rs`), the depth limit (sparing
//!   introspection, `depth.rs`) and, when introspection is off, its refusal
//!   (`introspection.rs`): `GRAPHQL_VALIDATION_FAILED`;
//! - the operation is selected: `BAD_REQUEST` when the request names none of several, or one
//!   the document does not have;
//!
//! and every error of every response gets its `extensions.code` (`errors.rs`).

use async_graphql::parser::types::{DocumentOperations, OperationType, Selection};
use async_graphql::{Pos, Request, Response, ServerError};
use futures_util::StreamExt;
use futures_util::stream::BoxStream;

use super::cache::NOT_CACHEABLE;
use super::errors::{BAD_REQUEST, PARSE_FAILED, VALIDATION_FAILED, assign_codes, with_code};
use super::schema::AppSchema;
use super::{depth, introspection, size};

/// The schema, with the checks every operation passes before it runs.
#[derive(Clone)]
pub struct Executor {
    schema: AppSchema,
    max_depth: usize,
    max_fields: usize,
    introspection: bool,
}

/// A request that passed the checks, with the type of the operation it selects.
pub struct Prepared {
    request: Request,
    pub operation: OperationType,
    /// The first root field the operation selects (not its alias), for metrics; `fragment`
    /// when the operation starts with a fragment.
    pub root_field: String,
    /// A query whose root fields all read only what change events announce (`cache.rs`).
    cacheable: bool,
    /// A subscription that one execution may serve for many subscribers (`fanout.rs`).
    shareable: Option<RootField>,
}

/// The root field of an operation, as its errors name it.
#[derive(Debug, Clone)]
pub struct RootField {
    /// Its alias, or else its name.
    pub response_key: String,
    pub pos: Pos,
}

/// The subscriptions whose events are the same for every subscriber of one scope
/// (`auth::Scope`), whenever they subscribed. `syncProgress` is not: it starts with the latest
/// run as it is when each subscriber arrives.
const SHAREABLE_SUBSCRIPTIONS: [&str; 1] = ["userChanged"];

impl Prepared {
    /// Whether its answer may be kept (`cache.rs`): a query reading only what change events
    /// announce.
    pub fn is_cacheable(&self) -> bool {
        self.cacheable
    }

    /// The root field of a subscription one execution may serve for every subscriber of a
    /// scope (`fanout.rs`): its single root field is one whose events do not depend on when a
    /// subscriber arrived.
    pub fn shareable(&self) -> Option<&RootField> {
        self.shareable.as_ref()
    }

    /// The document's text, as the request gave it.
    pub fn document_text(&self) -> &str {
        &self.request.query
    }

    /// The direct path's plan of this request (`direct.rs`), when it can answer it.
    pub fn direct_plan(&mut self) -> Option<super::direct::Plan> {
        let variables = self.request.variables.clone();
        let operation_name = self.request.operation_name.clone();
        let document = self.request.parsed_query().ok()?;
        super::direct::Plan::compile(document, operation_name.as_deref(), &variables)
    }

    /// Adds data for the resolvers (the caller, the request id).
    pub fn data<D: std::any::Any + Send + Sync>(mut self, data: D) -> Prepared {
        self.request = self.request.data(data);
        self
    }
}

impl Executor {
    pub fn new(
        schema: AppSchema,
        max_depth: usize,
        max_fields: usize,
        introspection: bool,
    ) -> Executor {
        Executor {
            schema,
            max_depth,
            max_fields,
            introspection,
        }
    }

    /// Parses and checks a request; the errors, with their codes, when it cannot run.
    pub fn prepare(&self, mut request: Request) -> Result<Prepared, Vec<ServerError>> {
        let operation_name = request.operation_name.clone();
        let document = request.parsed_query().map_err(|mut error| {
            if error.message.starts_with("recursion limit exceeded") {
                error.message = "Query is nested too deep to be parsed: it is over the \
                                     parser's recursion limit"
                    .to_owned();
            }
            vec![with_code(error, PARSE_FAILED)]
        })?;
        let operation = match (&document.operations, operation_name.as_deref()) {
            (DocumentOperations::Single(operation), _) => Ok(operation),
            (DocumentOperations::Multiple(operations), Some(name)) => operations
                .get(name)
                .ok_or_else(|| format!(r#"Unknown operation named "{name}""#)),
            (DocumentOperations::Multiple(operations), None) if operations.len() == 1 => operations
                .values()
                .next()
                .ok_or_else(|| "the document has no operation".to_owned()),
            (DocumentOperations::Multiple(_), None) => {
                Err("Operation name required in request.".to_owned())
            }
        }
        .map_err(|message| vec![with_code(ServerError::new(message, None), BAD_REQUEST)])?;
        let operation_type = operation.node.ty;
        let roots = &operation.node.selection_set.node.items;
        let cacheable = operation_type == OperationType::Query
            && roots.iter().all(|item| match &item.node {
                Selection::Field(field) => !NOT_CACHEABLE.contains(&field.node.name.node.as_str()),
                // A fragment at the root is not looked into: not kept.
                _ => false,
            });
        let shareable = match roots.as_slice() {
            [root] if operation_type == OperationType::Subscription => match &root.node {
                // A subscription resuming from a cursor replays what its subscriber missed:
                // each is its own.
                Selection::Field(field)
                    if SHAREABLE_SUBSCRIPTIONS.contains(&field.node.name.node.as_str())
                        && !field
                            .node
                            .arguments
                            .iter()
                            .any(|(name, _)| name.node == "after") =>
                {
                    Some(RootField {
                        response_key: field.node.response_key().node.to_string(),
                        pos: field.pos,
                    })
                }
                _ => None,
            },
            _ => None,
        };
        let root_field = match operation.node.selection_set.node.items.first() {
            Some(item) => match &item.node {
                Selection::Field(field) => field.node.name.node.to_string(),
                _ => "fragment".to_owned(),
            },
            None => "none".to_owned(),
        };
        let refusal = size::check(document, self.max_fields)
            .or_else(|| depth::check(document, self.max_depth))
            .or_else(|| {
                (!self.introspection)
                    .then(|| introspection::check(document))
                    .flatten()
            });
        if let Some(message) = refusal {
            return Err(vec![with_code(
                ServerError::new(message, None),
                VALIDATION_FAILED,
            )]);
        }
        Ok(Prepared {
            request,
            operation: operation_type,
            root_field,
            cacheable,
            shareable,
        })
    }

    /// Runs a prepared query or mutation.
    pub async fn run(&self, prepared: Prepared) -> Response {
        let mut response = self.schema.execute(prepared.request).await;
        assign_codes(&mut response);
        response
    }

    /// Runs any prepared operation as a stream: a subscription's events, or the one answer of
    /// a query or mutation.
    pub fn stream(&self, prepared: Prepared) -> BoxStream<'static, Response> {
        if prepared.operation == OperationType::Subscription {
            self.schema
                .execute_stream(prepared.request)
                .map(|mut response| {
                    assign_codes(&mut response);
                    response
                })
                .boxed()
        } else {
            let executor = self.clone();
            futures_util::stream::once(async move { executor.run(prepared).await }).boxed()
        }
    }

    /// Prepares and runs any operation as a stream; a request that cannot run: its errors, as
    /// the one response.
    pub fn execute_stream(&self, request: Request) -> BoxStream<'static, Response> {
        match self.prepare(request) {
            Ok(prepared) => self.stream(prepared),
            Err(errors) => {
                futures_util::stream::once(async move { Response::from_errors(errors) }).boxed()
            }
        }
    }
}
