//! Direct answers: pages of users written straight into the response's bytes.
//!
//! async-graphql resolves every field of every object as a boxed future polled through a
//! `FuturesUnordered`, collects the results in a `Value` tree and then serialises the tree.
//! Under W1 (50 users × 8 fields and their organisations) that generic machinery is most of
//! a request's CPU (BENCHMARKS.md). A query whose root fields are all `users`, selecting plain
//! fields of the connection, of its users and of their organisations, is the directory's
//! commonest read, so it has a path of its own: its plan is made once, its rows are read
//! through the service in the caller's scope as the resolvers read them (the users and their
//! organisations in one statement where the resolvers use two), and its JSON is written in
//! one pass.
//!
//! Only what async-graphql has already run is planned. A plan is kept for a request (the
//! document, the operation and the variables, in full) after async-graphql checked it and
//! answered it without an error. Every rule it checked therefore holds for the same request
//! again: the schema's validation, the size and depth limits, and the complexity limit,
//! which depends on the variables. Anything the direct path cannot answer plainly (a caller
//! signed out, a bad cursor, a user whose organisation the caller may not read, a failed
//! statement) sends the request down the general path, which answers it as it always did.
//!
//! The answer is the general path's JSON (`tests/api/direct.rs` compares the two over random
//! documents and callers), except that an object's fields come in the order the document
//! selects them, as the GraphQL specification says; async-graphql puts a field that had to
//! wait (an organisation, a count) after the ones that did not.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, Field, OperationType, Selection, SelectionSet,
};
use async_graphql::{InputType, Positioned, ScalarType, Variables};
use axum::body::Bytes;
use entity::{organisation, user};
use hashlink::LruCache;
use sea_orm::DatabaseConnection;
use uuid::Uuid;

use super::query::users::{UserOrderBy, UsersFilterInput};
use super::types::Role;
use super::types::user::full_name;
use crate::auth::{Actor, Caller};
use crate::metrics::Metrics;
use crate::service::freshness::Footprint;
use crate::service::organisations;
use crate::service::pagination::{Page, PageRequest};
use crate::service::users::{self, UserOrder};

/// Plans kept, the least recently used dropped first.
const MOST_PLANS: usize = 1024;
/// A request larger than this (document, operation name and variables) is not planned: the
/// plans' memory stays within `MOST_PLANS` × this, and documents that large are not W1's.
const LARGEST_PLANNED_REQUEST: usize = 4096;

/// A request, as plans are kept by: everything async-graphql checked.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PlanKey {
    query: String,
    operation_name: Option<String>,
    variables: String,
}

/// The plans of requests async-graphql answered, and the database they read.
pub struct DirectReads {
    db: DatabaseConnection,
    enabled: bool,
    plans: Mutex<LruCache<PlanKey, Arc<Plan>>>,
    metrics: Arc<Metrics>,
}

impl DirectReads {
    pub fn new(db: DatabaseConnection, enabled: bool, metrics: Arc<Metrics>) -> DirectReads {
        DirectReads {
            db,
            enabled,
            plans: Mutex::new(LruCache::new(MOST_PLANS)),
            metrics,
        }
    }

    /// The key of a request that may be planned; `None` with the direct path off or for a
    /// request too large to keep.
    pub fn key_of(&self, request: &async_graphql::Request) -> Option<PlanKey> {
        if !self.enabled {
            return None;
        }
        let size = request.query.len() + request.operation_name.as_ref().map_or(0, String::len);
        if size > LARGEST_PLANNED_REQUEST {
            return None;
        }
        let variables = serde_json::to_string(&request.variables).ok()?;
        (size + variables.len() <= LARGEST_PLANNED_REQUEST).then(|| PlanKey {
            query: request.query.clone(),
            operation_name: request.operation_name.clone(),
            variables,
        })
    }

    /// The plan kept for this request, if async-graphql answered it before.
    pub fn plan(&self, key: &PlanKey) -> Option<Arc<Plan>> {
        self.lock().get(key).cloned()
    }

    /// Keeps the plan of a request async-graphql has just answered without an error.
    pub fn keep(&self, key: PlanKey, plan: Plan) {
        self.lock().insert(key, Arc::new(plan));
    }

    /// The answer of a planned request for this caller; `None` when it needs the general
    /// path (which then answers whatever went wrong).
    pub async fn answer(&self, plan: &Plan, caller: &Caller) -> Option<Bytes> {
        let actor = caller.actor().ok()?;
        let mut out = Json::with_capacity(plan.capacity_hint.load(Ordering::Relaxed));
        out.raw(b"{\"data\":{");
        for (index, root) in plan.roots.iter().enumerate() {
            if index > 0 {
                out.raw(b",");
            }
            out.key(&root.key);
            let page = self.read_page(actor, root).await?;
            write_connection(&mut out, &root.selection, &page)?;
        }
        out.raw(b"}}");
        plan.capacity_hint.store(out.0.len(), Ordering::Relaxed);
        self.metrics.direct_answers.fetch_add(1, Ordering::Relaxed);
        Some(Bytes::from(out.0))
    }

    /// What one root `users` field reads: the page, with its users' organisations in the same
    /// statement when they are selected, and the count when selected. The executor's resolvers
    /// read the organisations in a statement of their own.
    async fn read_page(&self, actor: &Actor, root: &Root) -> Option<ReadPage> {
        let order: UserOrder = root.order.into();
        let request = PageRequest::parse(root.first, root.after.as_deref(), order.tag()).ok()?;
        let filter = root.filter.clone().unwrap_or_default().into_domain().ok()?;
        let (page, organisations, scope) = if root.selection.reads_organisations() {
            let (page, scope) =
                users::list_with_organisations(&self.db, actor, filter, order, &request)
                    .await
                    .ok()?;
            let mut organisations = HashMap::new();
            let page = page.map(|(user, organisation)| {
                if let Some(organisation) = organisation {
                    organisations.insert(organisation.id, organisation);
                }
                user
            });
            // `User.organisation` refuses each organisation the caller may not read: a
            // partial answer with errors, which the executor gives.
            for edge in &page.edges {
                if let Some(id) = edge.node.organisation_id {
                    organisations::check_readable(actor, id).ok()?;
                }
            }
            (page, organisations, scope)
        } else {
            let (page, scope) = users::list(&self.db, actor, filter, order, &request)
                .await
                .ok()?;
            (page, HashMap::new(), scope)
        };
        let total = if root.selection.counts() {
            Some(users::total(&self.db, &scope).await.ok()?)
        } else {
            None
        };
        // Every organisation on the page was checked readable above, which is what
        // `Organisation.memberCount` asks of its caller.
        let member_counts = if root.selection.counts_members() {
            let ids: Vec<Uuid> = organisations.keys().copied().collect();
            users::count_by_organisation(&self.db, &ids, &users::counted_as_members())
                .await
                .ok()?
        } else {
            HashMap::new()
        };
        Some(ReadPage {
            page,
            organisations,
            total,
            member_counts,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LruCache<PlanKey, Arc<Plan>>> {
        self.plans.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

struct ReadPage {
    page: Page<user::Model>,
    organisations: HashMap<Uuid, organisation::Model>,
    total: Option<u64>,
    /// Each organisation's `memberCount`, by the organisation's id.
    member_counts: HashMap<Uuid, u64>,
}

/// What a planned request reads and writes: its root `users` fields, their arguments and the
/// fields selected under them, each under its response key.
#[derive(Debug)]
pub struct Plan {
    roots: Vec<Root>,
    /// The size of the last answer, so the next starts with room for it.
    capacity_hint: AtomicUsize,
}

#[derive(Debug)]
struct Root {
    key: String,
    first: Option<i32>,
    after: Option<String>,
    filter: Option<UsersFilterInput>,
    order: UserOrderBy,
    selection: Selected<ConnectionField>,
}

/// Fields under their response keys, in the document's order.
#[derive(Debug)]
struct Selected<F>(Vec<(String, F)>);

#[derive(Debug)]
enum ConnectionField {
    Typename,
    TotalCount,
    PageInfo(Selected<PageInfoField>),
    Edges(Selected<EdgeField>),
    Nodes(Selected<UserField>),
}

#[derive(Debug)]
enum PageInfoField {
    Typename,
    HasNextPage,
    HasPreviousPage,
    StartCursor,
    EndCursor,
}

#[derive(Debug)]
enum EdgeField {
    Typename,
    Cursor,
    Node(Selected<UserField>),
}

#[derive(Debug)]
enum UserField {
    Typename,
    Id,
    ClerkId,
    Email,
    FirstName,
    LastName,
    FullName,
    ImageUrl,
    Role,
    OrganisationId,
    Organisation(Selected<OrganisationField>),
    IsActive,
    IsSuspended,
    LastSignInAt,
    LastActiveAt,
    CreatedAt,
    UpdatedAt,
    DeactivatedAt,
}

#[derive(Debug)]
enum OrganisationField {
    Typename,
    Id,
    Name,
    Slug,
    CreatedAt,
    UpdatedAt,
    ArchivedAt,
    IsArchived,
    MemberCount,
}

impl Selected<ConnectionField> {
    /// Whether any user selected on the page, under `nodes` or `edges { node }`, selects a
    /// field for which `asks` holds.
    fn any_user_field(&self, asks: impl Fn(&UserField) -> bool) -> bool {
        let users = |fields: &Selected<UserField>| fields.0.iter().any(|(_, field)| asks(field));
        self.0.iter().any(|(_, field)| match field {
            ConnectionField::Nodes(fields) => users(fields),
            ConnectionField::Edges(edge) => edge.0.iter().any(|(_, field)| match field {
                EdgeField::Node(fields) => users(fields),
                _ => false,
            }),
            _ => false,
        })
    }

    fn reads_organisations(&self) -> bool {
        self.any_user_field(|field| matches!(field, UserField::Organisation(_)))
    }

    /// Whether any of its users' organisations is asked for its `memberCount`.
    fn counts_members(&self) -> bool {
        self.any_user_field(|field| match field {
            UserField::Organisation(organisation) => organisation
                .0
                .iter()
                .any(|(_, field)| matches!(field, OrganisationField::MemberCount)),
            _ => false,
        })
    }

    fn counts(&self) -> bool {
        self.0
            .iter()
            .any(|(_, field)| matches!(field, ConnectionField::TotalCount))
    }
}

impl Plan {
    /// What an answer to this plan for `caller` depends on: one organisation's users and record
    /// when every root is confined to the same organisation (by its filter, or by the caller's
    /// scope), else anything.
    pub fn footprint(&self, caller: &Caller) -> Footprint {
        let Ok(actor) = caller.actor() else {
            return Footprint::Everything;
        };
        let mut confined = self.roots.iter().map(|root| {
            let filter = root.filter.clone().unwrap_or_default().into_domain().ok()?;
            users::confined_to(actor, filter)
        });
        match confined.next().flatten() {
            Some(first) if confined.all(|other| other == Some(first)) => {
                Footprint::Organisation(first)
            }
            _ => Footprint::Everything,
        }
    }

    /// The plan of an operation the direct path can answer: a query whose root fields are
    /// all `users`, with no fragments or directives, selecting only the fields planned here.
    /// `None` for anything else.
    pub fn compile(
        document: &ExecutableDocument,
        operation_name: Option<&str>,
        variables: &Variables,
    ) -> Option<Plan> {
        if !document.fragments.is_empty() {
            return None;
        }
        let operation = match (&document.operations, operation_name) {
            (DocumentOperations::Single(operation), _) => operation,
            (DocumentOperations::Multiple(operations), Some(name)) => operations.get(name)?,
            (DocumentOperations::Multiple(operations), None) if operations.len() == 1 => {
                operations.values().next()?
            }
            (DocumentOperations::Multiple(_), None) => return None,
        };
        let operation = &operation.node;
        if operation.ty != OperationType::Query || !operation.directives.is_empty() {
            return None;
        }
        let argument = |value: &Positioned<async_graphql_value::Value>| {
            value
                .node
                .clone()
                .into_const_with(|name| {
                    // As async-graphql resolves a variable: given, or its default, or null
                    // when its type is nullable.
                    operation
                        .variable_definitions
                        .iter()
                        .find(|definition| definition.node.name.node == name)
                        .and_then(|definition| {
                            variables
                                .get(&definition.node.name.node)
                                .or_else(|| definition.node.default_value())
                        })
                        .cloned()
                        .ok_or(())
                })
                .ok()
        };
        let mut roots = Vec::new();
        for (key, field) in fields(&operation.selection_set)? {
            if field.name.node != "users" {
                return None;
            }
            let mut root = Root {
                key,
                first: None,
                after: None,
                filter: None,
                order: UserOrderBy::default(),
                selection: connection(&field.selection_set)?,
            };
            for (name, value) in &field.arguments {
                let value = Some(argument(value)?);
                match name.node.as_str() {
                    "first" => root.first = InputType::parse(value).ok()?,
                    "after" => root.after = InputType::parse(value).ok()?,
                    "filter" => root.filter = InputType::parse(value).ok()?,
                    "orderBy" => root.order = InputType::parse(value).ok()?,
                    _ => return None,
                }
            }
            roots.push(root);
        }
        Some(Plan {
            roots,
            capacity_hint: AtomicUsize::new(1024),
        })
    }
}

/// The fields of a selection set under their response keys; `None` when it has a fragment,
/// a directive, or one response key twice (which async-graphql merges).
fn fields(set: &Positioned<SelectionSet>) -> Option<Vec<(String, &Field)>> {
    let mut fields: Vec<(String, &Field)> = Vec::with_capacity(set.node.items.len());
    for item in &set.node.items {
        let Selection::Field(field) = &item.node else {
            return None;
        };
        let field = &field.node;
        if !field.directives.is_empty() {
            return None;
        }
        let key = field.response_key().node.to_string();
        if fields.iter().any(|(seen, _)| *seen == key) {
            return None;
        }
        fields.push((key, field));
    }
    Some(fields)
}

/// A leaf: no arguments, no selection.
fn leaf<F>(field: &Field, planned: F) -> Option<F> {
    (field.arguments.is_empty() && field.selection_set.node.items.is_empty()).then_some(planned)
}

/// An object field: no arguments.
fn object<F>(
    field: &Field,
    planned: impl FnOnce(&Positioned<SelectionSet>) -> Option<F>,
) -> Option<F> {
    if field.arguments.is_empty() {
        planned(&field.selection_set)
    } else {
        None
    }
}

/// A selection set planned field by field; `None` when `plan` refuses any of its fields.
fn select<F>(
    set: &Positioned<SelectionSet>,
    plan: impl Fn(&Field) -> Option<F>,
) -> Option<Selected<F>> {
    fields(set)?
        .into_iter()
        .map(|(key, field)| plan(field).map(|planned| (key, planned)))
        .collect::<Option<Vec<_>>>()
        .map(Selected)
}

fn connection(set: &Positioned<SelectionSet>) -> Option<Selected<ConnectionField>> {
    select(set, |field| match field.name.node.as_str() {
        "__typename" => leaf(field, ConnectionField::Typename),
        "totalCount" => leaf(field, ConnectionField::TotalCount),
        "pageInfo" => object(field, |set| page_info(set).map(ConnectionField::PageInfo)),
        "edges" => object(field, |set| edge(set).map(ConnectionField::Edges)),
        "nodes" => object(field, |set| user(set).map(ConnectionField::Nodes)),
        _ => None,
    })
}

fn page_info(set: &Positioned<SelectionSet>) -> Option<Selected<PageInfoField>> {
    select(set, |field| {
        let planned = match field.name.node.as_str() {
            "__typename" => PageInfoField::Typename,
            "hasNextPage" => PageInfoField::HasNextPage,
            "hasPreviousPage" => PageInfoField::HasPreviousPage,
            "startCursor" => PageInfoField::StartCursor,
            "endCursor" => PageInfoField::EndCursor,
            _ => return None,
        };
        leaf(field, planned)
    })
}

fn edge(set: &Positioned<SelectionSet>) -> Option<Selected<EdgeField>> {
    select(set, |field| match field.name.node.as_str() {
        "__typename" => leaf(field, EdgeField::Typename),
        "cursor" => leaf(field, EdgeField::Cursor),
        "node" => object(field, |set| user(set).map(EdgeField::Node)),
        _ => None,
    })
}

fn user(set: &Positioned<SelectionSet>) -> Option<Selected<UserField>> {
    select(set, |field| {
        let planned = match field.name.node.as_str() {
            "organisation" => {
                return object(field, |set| organisation(set).map(UserField::Organisation));
            }
            "__typename" => UserField::Typename,
            "id" => UserField::Id,
            "clerkId" => UserField::ClerkId,
            "email" => UserField::Email,
            "firstName" => UserField::FirstName,
            "lastName" => UserField::LastName,
            "fullName" => UserField::FullName,
            "imageUrl" => UserField::ImageUrl,
            "role" => UserField::Role,
            "organisationId" => UserField::OrganisationId,
            "isActive" => UserField::IsActive,
            "isSuspended" => UserField::IsSuspended,
            "lastSignInAt" => UserField::LastSignInAt,
            "lastActiveAt" => UserField::LastActiveAt,
            "createdAt" => UserField::CreatedAt,
            "updatedAt" => UserField::UpdatedAt,
            "deactivatedAt" => UserField::DeactivatedAt,
            _ => return None,
        };
        leaf(field, planned)
    })
}

fn organisation(set: &Positioned<SelectionSet>) -> Option<Selected<OrganisationField>> {
    select(set, |field| {
        let planned = match field.name.node.as_str() {
            "__typename" => OrganisationField::Typename,
            "id" => OrganisationField::Id,
            "name" => OrganisationField::Name,
            "slug" => OrganisationField::Slug,
            "createdAt" => OrganisationField::CreatedAt,
            "updatedAt" => OrganisationField::UpdatedAt,
            "archivedAt" => OrganisationField::ArchivedAt,
            "isArchived" => OrganisationField::IsArchived,
            "memberCount" => OrganisationField::MemberCount,
            _ => return None,
        };
        leaf(field, planned)
    })
}

/// JSON written as it is produced. Strings and scalars go through serde_json and
/// async-graphql's own conversions, so they are spelt as the general path spells them.
struct Json(Vec<u8>);

impl Json {
    fn with_capacity(capacity: usize) -> Json {
        Json(Vec::with_capacity(capacity))
    }

    fn raw(&mut self, bytes: &[u8]) {
        self.0.extend_from_slice(bytes);
    }

    fn key(&mut self, key: &str) {
        self.string(key);
        self.raw(b":");
    }

    fn string(&mut self, value: &str) {
        // Writing into a Vec cannot fail; serde_json escapes as it does for the general path.
        if serde_json::to_writer(&mut self.0, value).is_err() {
            self.raw(b"null");
        }
    }

    fn optional_string(&mut self, value: Option<&str>) {
        match value {
            Some(value) => self.string(value),
            None => self.raw(b"null"),
        }
    }

    fn boolean(&mut self, value: bool) {
        self.raw(if value { b"true" } else { b"false" });
    }

    fn value(&mut self, value: &async_graphql::Value) -> Option<()> {
        serde_json::to_writer(&mut self.0, value).ok()
    }

    fn time(&mut self, value: &chrono::DateTime<chrono::Utc>) -> Option<()> {
        self.value(&ScalarType::to_value(value))
    }

    fn optional_time(&mut self, value: Option<&chrono::DateTime<chrono::Utc>>) -> Option<()> {
        match value {
            Some(value) => self.time(value),
            None => {
                self.raw(b"null");
                Some(())
            }
        }
    }

    /// `{` then each selected field as `write` spells it, then `}`.
    fn object<F>(
        &mut self,
        selected: &Selected<F>,
        mut write: impl FnMut(&mut Json, &F) -> Option<()>,
    ) -> Option<()> {
        self.raw(b"{");
        for (index, (key, field)) in selected.0.iter().enumerate() {
            if index > 0 {
                self.raw(b",");
            }
            self.key(key);
            write(self, field)?;
        }
        self.raw(b"}");
        Some(())
    }
}

fn write_connection(
    out: &mut Json,
    selected: &Selected<ConnectionField>,
    read: &ReadPage,
) -> Option<()> {
    let page = &read.page;
    out.object(selected, |out, field| {
        match field {
            ConnectionField::Typename => out.string("UserConnection"),
            ConnectionField::TotalCount => out.raw(read.total?.to_string().as_bytes()),
            ConnectionField::PageInfo(selected) => out.object(selected, |out, field| {
                match field {
                    PageInfoField::Typename => out.string("PageInfo"),
                    PageInfoField::HasNextPage => out.boolean(page.has_next_page),
                    PageInfoField::HasPreviousPage => out.boolean(page.has_previous_page),
                    PageInfoField::StartCursor => {
                        out.optional_string(page.edges.first().map(|edge| edge.cursor.as_str()))
                    }
                    PageInfoField::EndCursor => {
                        out.optional_string(page.edges.last().map(|edge| edge.cursor.as_str()))
                    }
                }
                Some(())
            })?,
            ConnectionField::Edges(selected) => {
                out.raw(b"[");
                for (index, edge) in page.edges.iter().enumerate() {
                    if index > 0 {
                        out.raw(b",");
                    }
                    out.object(selected, |out, field| match field {
                        EdgeField::Typename => {
                            out.string("UserEdge");
                            Some(())
                        }
                        EdgeField::Cursor => {
                            out.string(&edge.cursor);
                            Some(())
                        }
                        EdgeField::Node(selected) => write_user(out, selected, &edge.node, read),
                    })?;
                }
                out.raw(b"]");
            }
            ConnectionField::Nodes(selected) => {
                out.raw(b"[");
                for (index, edge) in page.edges.iter().enumerate() {
                    if index > 0 {
                        out.raw(b",");
                    }
                    write_user(out, selected, &edge.node, read)?;
                }
                out.raw(b"]");
            }
        }
        Some(())
    })
}

fn write_user(
    out: &mut Json,
    selected: &Selected<UserField>,
    user: &user::Model,
    read: &ReadPage,
) -> Option<()> {
    out.object(selected, |out, field| {
        match field {
            UserField::Typename => out.string("User"),
            UserField::Id => out.string(&user.id.to_string()),
            UserField::ClerkId => out.string(&user.clerk_id),
            UserField::Email => out.string(&user.email),
            UserField::FirstName => out.optional_string(user.first_name.as_deref()),
            UserField::LastName => out.optional_string(user.last_name.as_deref()),
            UserField::FullName => out.string(&full_name(user)),
            UserField::ImageUrl => out.optional_string(user.image_url.as_deref()),
            UserField::Role => {
                out.value(&async_graphql::resolver_utils::enum_value(Role::from(
                    user.role,
                )))?;
            }
            UserField::OrganisationId => {
                out.optional_string(user.organisation_id.map(|id| id.to_string()).as_deref())
            }
            UserField::Organisation(selected) => {
                match user
                    .organisation_id
                    .and_then(|id| read.organisations.get(&id))
                {
                    Some(found) => write_organisation(out, selected, found, read)?,
                    None => out.raw(b"null"),
                }
            }
            UserField::IsActive => out.boolean(user.is_active),
            UserField::IsSuspended => out.boolean(user.banned),
            UserField::LastSignInAt => out.optional_time(user.last_sign_in_at.as_ref())?,
            UserField::LastActiveAt => out.optional_time(user.last_active_at.as_ref())?,
            UserField::CreatedAt => out.time(&user.created_at)?,
            UserField::UpdatedAt => out.time(&user.updated_at)?,
            UserField::DeactivatedAt => out.optional_time(user.deactivated_at.as_ref())?,
        }
        Some(())
    })
}

fn write_organisation(
    out: &mut Json,
    selected: &Selected<OrganisationField>,
    found: &organisation::Model,
    read: &ReadPage,
) -> Option<()> {
    out.object(selected, |out, field| {
        match field {
            OrganisationField::Typename => out.string("Organisation"),
            OrganisationField::Id => out.string(&found.id.to_string()),
            OrganisationField::Name => out.string(&found.name),
            OrganisationField::Slug => out.string(&found.slug),
            OrganisationField::CreatedAt => out.time(&found.created_at)?,
            OrganisationField::UpdatedAt => out.time(&found.updated_at)?,
            OrganisationField::ArchivedAt => out.optional_time(found.archived_at.as_ref())?,
            OrganisationField::IsArchived => out.boolean(found.archived_at.is_some()),
            OrganisationField::MemberCount => {
                let members = read.member_counts.get(&found.id).copied().unwrap_or(0);
                out.raw(members.to_string().as_bytes());
            }
        }
        Some(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(query: &str, variables: serde_json::Value) -> Option<Plan> {
        let document = async_graphql::parser::parse_query(query).expect("a document");
        Plan::compile(&document, None, &Variables::from_json(variables))
    }

    #[test]
    fn pages_of_users_with_their_organisations_are_planned() {
        let w1 = "query W1($first: Int!) { users(first: $first) { nodes { id email firstName \
                  lastName role isActive organisation { id name } } } }";
        let planned = plan(w1, serde_json::json!({ "first": 50 })).expect("W1 is planned");
        assert_eq!(planned.roots.len(), 1);
        assert_eq!(planned.roots[0].first, Some(50));
        assert!(planned.roots[0].selection.reads_organisations());
        assert!(!planned.roots[0].selection.counts());
        assert!(!planned.roots[0].selection.counts_members());
        let counted = "{ users { edges { node { organisation { name memberCount } } } } }";
        let planned = plan(counted, serde_json::json!({})).expect("member counts are planned");
        assert!(planned.roots[0].selection.counts_members());
        let both = "{ a: users(orderBy: EMAIL_DESC, filter: { role: LECTURER }) { totalCount \
                    edges { cursor node { __typename fullName } } } b: users { pageInfo { \
                    endCursor } } }";
        let planned = plan(both, serde_json::json!({})).expect("two roots are planned");
        assert_eq!(planned.roots[0].order, UserOrderBy::EmailDesc);
        assert!(planned.roots[0].selection.counts());
    }

    #[test]
    fn anything_else_is_left_to_the_executor() {
        for query in [
            "mutation { removeUser(id: \"x\") { id } }",
            "{ me { id } }",
            "{ users { nodes { id } } me { id } }",
            "{ users { ...page } } fragment page on UserConnection { totalCount }",
            "{ users { nodes { ... on User { id } } } }",
            "{ users { totalCount @include(if: true) } }",
            "{ users { nodes { organisation { users { totalCount } } } } }",
            "{ users { nodes { id } nodes { email } } }",
            "query Q($first: Int!) { users(first: $first) { totalCount } }",
            "{ users(first: \"many\") { totalCount } }",
        ] {
            assert!(
                plan(query, serde_json::json!({})).is_none(),
                "{query} is planned"
            );
        }
    }
}
