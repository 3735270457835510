//! Exports as CSV (RFC 4180): users within the caller's scope, with their organisation and
//! lecturer profile; the audit log, for admins. Read a page at a time, so an export of any
//! size holds one page in memory; the HTTP routes stream the pages as they are read.
//!
//! A cell that a spreadsheet would run as a formula (starting with `=`, `+`, `-`, `@`, a tab
//! or a carriage return) is written with a leading `'`: a name typed into Clerk must not
//! become a formula on an administrator's machine (OWASP's "CSV injection").

use std::collections::HashSet;

use entity::{audit_event, lecturer_profile, organisation, user};
use sea_orm::DatabaseConnection;
use uuid::Uuid;

use super::audit::{self, AuditFilter};
use super::pagination::{Cursor, PageRequest};
use super::users::{self, UserFilter, UserOrder};
use super::{organisations, profiles};
use crate::auth::Actor;
use crate::error::AppError;

/// Rows read per statement.
const PAGE_ROWS: u64 = 500;

/// The columns of a users export, in order: what `importUsers` reads back.
pub const USER_COLUMNS: [&str; 19] = [
    "id",
    "email",
    "first_name",
    "last_name",
    "role",
    "organisation_id",
    "organisation_slug",
    "is_active",
    "is_suspended",
    "staff_id",
    "job_title",
    "department",
    "contract_fte",
    "contract_start",
    "contract_end",
    "workload_target_hours",
    "last_sign_in_at",
    "last_active_at",
    "created_at",
];

/// The columns of an audit log export, in order.
pub const AUDIT_COLUMNS: [&str; 9] = [
    "occurred_at",
    "actor",
    "source",
    "action",
    "subject_type",
    "subject_id",
    "correlation_id",
    "before",
    "after",
];

/// One CSV line of these cells, each escaped.
fn line<'a>(cells: impl IntoIterator<Item = &'a str>) -> String {
    let mut out = String::new();
    for (n, cell) in cells.into_iter().enumerate() {
        if n > 0 {
            out.push(',');
        }
        push_cell(&mut out, cell);
    }
    out.push_str("\r\n");
    out
}

fn push_cell(out: &mut String, cell: &str) {
    let guarded = cell.starts_with(['=', '+', '-', '@', '\t', '\r']);
    let quoted = guarded || cell.contains([',', '"', '\n', '\r']) || cell != cell.trim();
    if quoted {
        out.push('"');
    }
    if guarded {
        out.push('\'');
    }
    for c in cell.chars() {
        if c == '"' {
            out.push('"');
        }
        out.push(c);
    }
    if quoted {
        out.push('"');
    }
}

/// Where an export is: the next page's cursor, or the end.
#[derive(Debug, Clone)]
pub struct Progress(Option<Option<Cursor>>);

impl Progress {
    /// Nothing read yet.
    pub fn start() -> Progress {
        Progress(Some(None))
    }

    pub fn is_done(&self) -> bool {
        self.0.is_none()
    }
}

/// One kind of export: its file name, its columns, and how to read its rows a page at a time
/// within a caller's scope. Its value is the filter.
pub trait Export: Clone + Send + Sync + 'static {
    /// The file's name, before its date.
    const NAME: &'static str;
    const COLUMNS: &'static [&'static str];

    /// The rows of `page` as CSV lines, how many, and the last row's cursor when more follow.
    fn rows(
        &self,
        db: &DatabaseConnection,
        actor: &Actor,
        page: PageRequest,
    ) -> impl Future<Output = Result<(String, usize, Option<Cursor>), AppError>> + Send;
}

/// The header line of an export.
pub fn header<E: Export>() -> String {
    line(E::COLUMNS.iter().copied())
}

/// The next page of an export as CSV lines, how many rows it held, and where the export is
/// then. The first call checks the caller's scope, so a refused export fails before anything
/// is sent.
pub async fn page<E: Export>(
    export: &E,
    db: &DatabaseConnection,
    actor: &Actor,
    progress: Progress,
) -> Result<(String, usize, Progress), AppError> {
    let Some(after) = progress.0 else {
        return Ok((String::new(), 0, progress));
    };
    let page = PageRequest {
        first: PAGE_ROWS,
        after,
    };
    let (lines, read, next) = export.rows(db, actor, page).await?;
    Ok((lines, read, Progress(next.map(Some))))
}

/// The users `actor` may read that match the filter, by email, with their organisation's slug
/// and their lecturer profile.
impl Export for UserFilter {
    const NAME: &'static str = "users";
    const COLUMNS: &'static [&'static str] = &USER_COLUMNS;

    async fn rows(
        &self,
        db: &DatabaseConnection,
        actor: &Actor,
        page: PageRequest,
    ) -> Result<(String, usize, Option<Cursor>), AppError> {
        let (found, _) = users::list(db, actor, self.clone(), UserOrder::EmailAsc, &page).await?;
        let models: Vec<&user::Model> = found.edges.iter().map(|edge| &edge.node).collect();
        let organisation_ids: Vec<Uuid> = models
            .iter()
            .filter_map(|user| user.organisation_id)
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let organisations = organisations::by_ids(db, &organisation_ids).await?;
        let user_ids: Vec<Uuid> = models.iter().map(|user| user.id).collect();
        let profiles = profiles::by_user_ids(db, &user_ids).await?;
        let mut out = String::new();
        for user in &models {
            let organisation = user.organisation_id.and_then(|id| organisations.get(&id));
            out.push_str(&user_line(user, organisation, profiles.get(&user.id)));
        }
        let next = models
            .last()
            .filter(|_| found.has_next_page)
            .map(|last| Cursor {
                key: Some(last.email.clone()),
                id: last.id,
            });
        Ok((out, models.len(), next))
    }
}

fn user_line(
    user: &user::Model,
    organisation: Option<&organisation::Model>,
    profile: Option<&lecturer_profile::Model>,
) -> String {
    let text = |value: &Option<String>| value.clone().unwrap_or_default();
    let number = |value: Option<f64>| value.map(|n| n.to_string()).unwrap_or_default();
    let cells = [
        user.id.to_string(),
        user.email.clone(),
        text(&user.first_name),
        text(&user.last_name),
        user.role.as_str().to_uppercase(),
        user.organisation_id
            .map(|id| id.to_string())
            .unwrap_or_default(),
        organisation.map(|org| org.slug.clone()).unwrap_or_default(),
        user.is_active.to_string(),
        user.banned.to_string(),
        profile.and_then(|p| p.staff_id.clone()).unwrap_or_default(),
        profile
            .and_then(|p| p.job_title.clone())
            .unwrap_or_default(),
        profile
            .and_then(|p| p.department.clone())
            .unwrap_or_default(),
        number(profile.and_then(|p| p.contract_fte)),
        profile
            .and_then(|p| p.contract_start)
            .map(|date| date.to_string())
            .unwrap_or_default(),
        profile
            .and_then(|p| p.contract_end)
            .map(|date| date.to_string())
            .unwrap_or_default(),
        number(profile.and_then(|p| p.workload_target_hours)),
        user.last_sign_in_at
            .map(|at| at.to_rfc3339())
            .unwrap_or_default(),
        user.last_active_at
            .map(|at| at.to_rfc3339())
            .unwrap_or_default(),
        user.created_at.to_rfc3339(),
    ];
    line(cells.iter().map(String::as_str))
}

/// The audit log, newest first. Admins only.
impl Export for AuditFilter {
    const NAME: &'static str = "audit-log";
    const COLUMNS: &'static [&'static str] = &AUDIT_COLUMNS;

    async fn rows(
        &self,
        db: &DatabaseConnection,
        actor: &Actor,
        page: PageRequest,
    ) -> Result<(String, usize, Option<Cursor>), AppError> {
        let (found, _) = audit::list(db, actor, self.clone(), &page).await?;
        let events: Vec<&audit_event::Model> = found.edges.iter().map(|edge| &edge.node).collect();
        let mut out = String::new();
        for event in &events {
            out.push_str(&audit_line(event));
        }
        let next = events
            .last()
            .filter(|_| found.has_next_page)
            .map(|last| Cursor {
                key: None,
                id: last.id,
            });
        Ok((out, events.len(), next))
    }
}

fn audit_line(event: &audit_event::Model) -> String {
    let json = |value: &Option<serde_json::Value>| {
        value
            .as_ref()
            .map(|value| value.to_string())
            .unwrap_or_default()
    };
    let cells = [
        event.occurred_at.to_rfc3339(),
        event.actor.clone(),
        event.source.clone(),
        event.action.clone(),
        event.subject_type.clone(),
        event.subject_id.clone(),
        event.correlation_id.clone().unwrap_or_default(),
        json(&event.before),
        json(&event.after),
    ];
    line(cells.iter().map(String::as_str))
}

/// A whole export in one string, for answers that cannot stream (GraphQL): refused beyond
/// `max_rows`, with the download route named instead.
pub async fn users_csv(
    db: &DatabaseConnection,
    actor: &Actor,
    filter: &UserFilter,
    max_rows: usize,
) -> Result<String, AppError> {
    let mut out = header::<UserFilter>();
    let mut rows = 0;
    let mut progress = Progress::start();
    while !progress.is_done() {
        let (chunk, read, next) = page(filter, db, actor, progress).await?;
        rows += read;
        if rows > max_rows {
            return Err(AppError::validation(
                "filter",
                format!(
                    "the export holds more than {max_rows} users: narrow the filter, or download \
                     it whole from GET /api/exports/users.csv"
                ),
            ));
        }
        out.push_str(&chunk);
        progress = next;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_are_quoted_when_they_must_be_and_formulas_are_defused() {
        assert_eq!(
            line(["plain", "a,b", "say \"hi\"", ""]),
            "plain,\"a,b\",\"say \"\"hi\"\"\",\r\n"
        );
        assert_eq!(line(["two\nlines"]), "\"two\nlines\"\r\n");
        assert_eq!(
            line(["=HYPERLINK(\"x\")"]),
            "\"'=HYPERLINK(\"\"x\"\")\"\r\n"
        );
        assert_eq!(
            line(["+1", "-2", "@SUM(A1)"]),
            "\"'+1\",\"'-2\",\"'@SUM(A1)\"\r\n"
        );
        assert_eq!(line([" padded "]), "\" padded \"\r\n");
    }
}
