//! Relay-style forward pagination by keyset: a page is "the next `first` rows after this
//! cursor in this order", so pages stay stable while rows are added and cost the same at any
//! depth (no OFFSET).
//!
//! A cursor names its order and the row's position in it. It is opaque to clients (base64),
//! and one taken from another order is refused rather than silently misread.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Condition, Expr, ExprTrait, Func, SimpleExpr};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, Order, QueryFilter, QueryOrder, QuerySelect, Select,
};
use uuid::Uuid;

use crate::config::MAX_PAGE_SIZE;
use crate::error::AppError;

/// The page size when a client does not ask for one.
pub const DEFAULT_PAGE_SIZE: u64 = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    Asc,
    Desc,
}

/// What a page asks for: its size, and the cursor it continues from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PageRequest {
    pub first: u64,
    pub after: Option<Cursor>,
}

impl PageRequest {
    /// Checks what the client sent. `order_tag` names the order the cursor must belong to.
    pub fn parse(
        first: Option<i32>,
        after: Option<&str>,
        order_tag: &str,
    ) -> Result<PageRequest, AppError> {
        let first = match first {
            None => DEFAULT_PAGE_SIZE,
            Some(n) if n < 0 => {
                return Err(AppError::validation("first", "must not be negative"));
            }
            Some(n) if n as u64 > MAX_PAGE_SIZE => {
                return Err(AppError::validation(
                    "first",
                    format!("{n} is over the maximum page size of {MAX_PAGE_SIZE}"),
                ));
            }
            Some(n) => n as u64,
        };
        let after = after
            .map(|raw| Cursor::decode(raw, order_tag))
            .transpose()?;
        Ok(PageRequest { first, after })
    }
}

/// A position in an ordered list: the sort key of a row (absent when ordering by id alone)
/// and its id, which breaks ties.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Cursor {
    pub key: Option<String>,
    pub id: Uuid,
}

const CURSOR_VERSION: &str = "v1";

impl Cursor {
    pub fn encode(&self, order_tag: &str) -> String {
        let key = self.key.as_deref().unwrap_or("");
        let marker = if self.key.is_some() { "k" } else { "-" };
        URL_SAFE_NO_PAD.encode(format!(
            "{CURSOR_VERSION}\n{order_tag}\n{}\n{marker}{key}",
            self.id
        ))
    }

    fn decode(raw: &str, order_tag: &str) -> Result<Cursor, AppError> {
        let malformed = || AppError::validation("after", "is not a cursor this server issued");
        let bytes = URL_SAFE_NO_PAD
            .decode(raw.trim())
            .map_err(|_| malformed())?;
        let text = String::from_utf8(bytes).map_err(|_| malformed())?;
        let mut parts = text.splitn(4, '\n');
        let (Some(version), Some(tag), Some(id), Some(key)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(malformed());
        };
        if version != CURSOR_VERSION {
            return Err(malformed());
        }
        if tag != order_tag {
            return Err(AppError::validation(
                "after",
                format!("the cursor belongs to the order {tag}, not {order_tag}"),
            ));
        }
        let id = Uuid::parse_str(id).map_err(|_| malformed())?;
        let key = match key.split_at_checked(1) {
            Some(("k", key)) => Some(key.to_owned()),
            Some(("-", "")) => None,
            _ => return Err(malformed()),
        };
        Ok(Cursor { key, id })
    }
}

/// What an order sorts by before the id.
#[derive(Debug, Clone, Copy)]
pub enum SortKey<C> {
    /// A text column that is never null.
    Text(C),
    /// A timestamp column that may be null. A row without a time sorts as `NEVER`: last when
    /// the newest come first, first when the oldest do.
    Time(C),
}

/// The time a row without one sorts as.
pub const NEVER: DateTime<Utc> = DateTime::<Utc>::UNIX_EPOCH;

/// A cursor's key for a `SortKey::Time` row.
pub fn time_key(time: Option<DateTime<Utc>>) -> String {
    time.unwrap_or(NEVER)
        .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

impl<C: ColumnTrait> SortKey<C> {
    fn column(&self) -> C {
        match self {
            SortKey::Text(column) | SortKey::Time(column) => *column,
        }
    }

    /// The sort expression, its column named with its table (a query may join another with
    /// the same columns).
    pub fn expr(&self) -> SimpleExpr {
        self.expr_of(Expr::col(self.column().as_column_ref()))
    }

    /// The sort expression over the bare column name: for an outer query over a subquery.
    pub fn expr_unqualified(&self) -> SimpleExpr {
        self.expr_of(Expr::col(self.column()))
    }

    fn expr_of(&self, column: SimpleExpr) -> SimpleExpr {
        match self {
            SortKey::Text(_) => column,
            SortKey::Time(_) => Func::coalesce([column, Expr::val(NEVER)]).into(),
        }
    }

    /// A cursor's key as the value it is compared with.
    fn value(&self, key: &str) -> Result<SimpleExpr, AppError> {
        match self {
            SortKey::Text(_) => Ok(Expr::val(key.to_owned())),
            SortKey::Time(_) => DateTime::parse_from_rfc3339(key)
                .map(|time| Expr::val(time.with_timezone(&Utc)))
                .map_err(|_| AppError::validation("after", "is not a cursor this server issued")),
        }
    }
}

/// An order over an entity: an optional sort key, then the id.
#[derive(Debug, Clone, Copy)]
pub struct Keyset<C: ColumnTrait> {
    pub key: Option<SortKey<C>>,
    pub id: C,
    pub direction: Direction,
}

impl<C: ColumnTrait> Keyset<C> {
    /// Rows strictly after `cursor` in this order.
    pub fn after(&self, cursor: &Cursor) -> Result<Condition, AppError> {
        let past = |sorted: SimpleExpr, value: SimpleExpr| -> SimpleExpr {
            match self.direction {
                Direction::Asc => sorted.gt(value),
                Direction::Desc => sorted.lt(value),
            }
        };
        let id = || Expr::col(self.id.as_column_ref());
        match (&self.key, &cursor.key) {
            (None, None) => Ok(Condition::all().add(past(id(), cursor.id.into()))),
            (Some(key), Some(value)) => {
                let value = key.value(value)?;
                Ok(Condition::any().add(past(key.expr(), value.clone())).add(
                    Condition::all()
                        .add(key.expr().eq(value))
                        .add(past(id(), cursor.id.into())),
                ))
            }
            _ => Err(AppError::validation(
                "after",
                "is not a cursor this server issued",
            )),
        }
    }

    pub fn order<Q: QueryOrder>(&self, query: Q) -> Q {
        let order = self.sql_order();
        let query = match &self.key {
            Some(key) => query.order_by(key.expr(), order.clone()),
            None => query,
        };
        query.order_by(self.id, order)
    }

    pub fn sql_order(&self) -> Order {
        match self.direction {
            Direction::Asc => Order::Asc,
            Direction::Desc => Order::Desc,
        }
    }
}

/// The query for one page of `query` in the order of `keyset`: the rows after the page's
/// cursor, one more than asked for to learn whether another page follows. `None` for a page of
/// none, which needs no query.
pub fn page_query<E: EntityTrait>(
    query: Select<E>,
    keyset: Keyset<E::Column>,
    page: &PageRequest,
) -> Result<Option<Select<E>>, AppError> {
    if page.first == 0 {
        return Ok(None);
    }
    let mut query = query;
    if let Some(cursor) = &page.after {
        query = query.filter(keyset.after(cursor)?);
    }
    Ok(Some(keyset.order(query).limit(page.first + 1)))
}

/// Reads one page of `query` (`page_query`).
pub async fn fetch_page<E, C>(
    conn: &C,
    query: Select<E>,
    keyset: Keyset<E::Column>,
    page: &PageRequest,
    cursor_of: impl Fn(&E::Model) -> String,
) -> Result<Page<E::Model>, AppError>
where
    E: EntityTrait,
    C: ConnectionTrait,
{
    let Some(query) = page_query(query, keyset, page)? else {
        return Ok(Page::empty(page));
    };
    let rows = query.all(conn).await?;
    Ok(Page::from_rows(rows, page, cursor_of))
}

/// One page of results, each with the cursor that continues after it.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub edges: Vec<Edge<T>>,
    pub has_next_page: bool,
    pub has_previous_page: bool,
}

#[derive(Debug, Clone)]
pub struct Edge<T> {
    pub cursor: String,
    pub node: T,
}

impl<T> Page<T> {
    /// Builds a page from up to `first + 1` rows: the extra row only says there is more.
    pub fn from_rows(
        mut rows: Vec<T>,
        request: &PageRequest,
        cursor_of: impl Fn(&T) -> String,
    ) -> Page<T> {
        let has_next_page = rows.len() as u64 > request.first;
        rows.truncate(request.first as usize);
        Page {
            edges: rows
                .into_iter()
                .map(|node| Edge {
                    cursor: cursor_of(&node),
                    node,
                })
                .collect(),
            has_next_page,
            has_previous_page: request.after.is_some(),
        }
    }

    pub fn map<U>(self, mut f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            edges: self
                .edges
                .into_iter()
                .map(|edge| Edge {
                    cursor: edge.cursor,
                    node: f(edge.node),
                })
                .collect(),
            has_next_page: self.has_next_page,
            has_previous_page: self.has_previous_page,
        }
    }

    pub fn empty(request: &PageRequest) -> Page<T> {
        Page {
            edges: Vec::new(),
            has_next_page: false,
            has_previous_page: request.after.is_some(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_survives_its_round_trip_and_is_refused_for_another_order() {
        let cursor = Cursor {
            key: Some("ada@example.com".to_owned()),
            id: Uuid::now_v7(),
        };
        let raw = cursor.encode("EMAIL_ASC");
        let back = PageRequest::parse(Some(5), Some(&raw), "EMAIL_ASC")
            .expect("decodes")
            .after;
        assert_eq!(back, Some(cursor));
        assert!(PageRequest::parse(Some(5), Some(&raw), "CREATED_AT_ASC").is_err());
        assert!(PageRequest::parse(Some(5), Some("not a cursor"), "EMAIL_ASC").is_err());
    }

    #[test]
    fn page_sizes_outside_the_bounds_are_refused() {
        assert!(PageRequest::parse(Some(101), None, "X").is_err());
        assert!(PageRequest::parse(Some(-1), None, "X").is_err());
        assert_eq!(
            PageRequest::parse(None, None, "X").expect("default").first,
            DEFAULT_PAGE_SIZE
        );
    }
}
