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
use async_graphql::{Request, Response, ServerError};
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
}

impl Prepared {
    /// Whether its answer may be kept (`cache.rs`): a query reading only what change events
    /// announce.
    pub fn is_cacheable(&self) -> bool {
        self.cacheable
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
        })
    }

    /// Runs a prepared query or mutation.
    pub async fn run(&self, prepared: Prepared) -> Response {
        let mut response = self.schema.execute(prepared.request).await;
        assign_codes(&mut response);
        response
    }

    /// Runs any operation as a stream: a subscription's events, or the one answer of a query
    /// or mutation (a request that cannot run: its errors).
    pub fn execute_stream(&self, request: Request) -> BoxStream<'static, Response> {
        match self.prepare(request) {
            Ok(prepared) if prepared.operation == OperationType::Subscription => self
                .schema
                .execute_stream(prepared.request)
                .map(|mut response| {
                    assign_codes(&mut response);
                    response
                })
                .boxed(),
            Ok(prepared) => {
                let executor = self.clone();
                futures_util::stream::once(async move { executor.run(prepared).await }).boxed()
            }
            Err(errors) => {
                futures_util::stream::once(async move { Response::from_errors(errors) }).boxed()
            }
        }
    }
}
