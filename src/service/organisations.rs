//! Organisations: the units users belong to.

use std::collections::HashMap;

use entity::organisation;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter,
    QuerySelect, Set, sea_query::Condition,
};
use serde_json::json;
use uuid::Uuid;

use super::audit::{self, Action, Change};
use super::pagination::{Cursor, Direction, Keyset, Page, PageRequest, SortKey, fetch_page};
use super::{Origin, Scoped, Services, Write, users};
use crate::auth::{Actor, Requester};
use crate::error::AppError;

/// Which organisations to list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct OrganisationFilter {
    /// Case-insensitive substring of the name or slug.
    pub search: Option<String>,
    /// Archived organisations are left out unless this is true.
    pub include_archived: bool,
    /// Only these organisations (the caller's scope); `None` for all.
    pub only: Option<Vec<Uuid>>,
}

impl OrganisationFilter {
    /// Narrows this filter to the organisations `actor` may read (`auth::access` decides).
    fn narrow_for(&mut self, actor: &Actor) {
        self.only = actor.readable_organisations();
    }

    fn condition(&self) -> Result<Condition, AppError> {
        let mut condition = Condition::all();
        if let Some(only) = &self.only {
            condition = condition.add(organisation::Column::Id.is_in(only.iter().copied()));
        }
        if !self.include_archived {
            condition = condition.add(organisation::Column::ArchivedAt.is_null());
        }
        if let Some(search) = &self.search {
            for term in users::search_terms(search)? {
                condition = condition.add(
                    Condition::any()
                        .add(users::lower_like(organisation::Column::Name, &term))
                        .add(users::lower_like(organisation::Column::Slug, &term)),
                );
            }
        }
        Ok(condition)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum OrganisationOrder {
    #[default]
    NameAsc,
    NameDesc,
    CreatedAtAsc,
    CreatedAtDesc,
}

impl OrganisationOrder {
    pub fn tag(self) -> &'static str {
        match self {
            OrganisationOrder::NameAsc => "NAME_ASC",
            OrganisationOrder::NameDesc => "NAME_DESC",
            OrganisationOrder::CreatedAtAsc => "CREATED_AT_ASC",
            OrganisationOrder::CreatedAtDesc => "CREATED_AT_DESC",
        }
    }

    fn keyset(self) -> Keyset<organisation::Column> {
        let (key, direction) = match self {
            OrganisationOrder::NameAsc => (
                Some(SortKey::Text(organisation::Column::Name)),
                Direction::Asc,
            ),
            OrganisationOrder::NameDesc => (
                Some(SortKey::Text(organisation::Column::Name)),
                Direction::Desc,
            ),
            OrganisationOrder::CreatedAtAsc => (None, Direction::Asc),
            OrganisationOrder::CreatedAtDesc => (None, Direction::Desc),
        };
        Keyset {
            key,
            id: organisation::Column::Id,
            direction,
        }
    }

    fn cursor(self, org: &organisation::Model) -> String {
        let key = match self {
            OrganisationOrder::NameAsc | OrganisationOrder::NameDesc => Some(org.name.clone()),
            OrganisationOrder::CreatedAtAsc | OrganisationOrder::CreatedAtDesc => None,
        };
        Cursor { key, id: org.id }.encode(self.tag())
    }
}

pub async fn get<C: ConnectionTrait>(conn: &C, id: Uuid) -> Result<organisation::Model, AppError> {
    organisation::Entity::find_by_id(id)
        .one(conn)
        .await?
        .ok_or_else(|| AppError::not_found("organisation", id))
}

/// The organisations with these ids; missing ids are simply absent from the map.
pub async fn by_ids<C: ConnectionTrait>(
    conn: &C,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, organisation::Model>, AppError> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    Ok(organisation::Entity::find()
        .filter(organisation::Column::Id.is_in(ids.iter().copied()))
        .all(conn)
        .await?
        .into_iter()
        .map(|org| (org.id, org))
        .collect())
}

/// Which of these organisations exist (archived ones too), in one statement.
pub(crate) async fn known_among<C: ConnectionTrait>(
    conn: &C,
    ids: std::collections::HashSet<Uuid>,
) -> Result<std::collections::HashSet<Uuid>, AppError> {
    if ids.is_empty() {
        return Ok(Default::default());
    }
    Ok(organisation::Entity::find()
        .select_only()
        .column(organisation::Column::Id)
        .filter(organisation::Column::Id.is_in(ids))
        .into_tuple::<Uuid>()
        .all(conn)
        .await?
        .into_iter()
        .collect())
}

/// One organisation, if the caller may read it: `FORBIDDEN` for another organisation than the
/// caller's (admins read all), then `NOT_FOUND` for an unknown id.
pub async fn read<C: ConnectionTrait>(
    conn: &C,
    actor: &Actor,
    id: Uuid,
) -> Result<organisation::Model, AppError> {
    check_readable(actor, id)?;
    get(conn, id).await
}

/// Whether the caller may read this organisation and its members, wherever it was reached
/// from (a user's organisation, a mutation's result, a subscription's payload).
pub fn check_readable(actor: &Actor, id: Uuid) -> Result<(), AppError> {
    actor.require_organisation_readable(id)
}

/// A page of the organisations `actor` may read that match `filter`, and the filter as
/// narrowed to them (for `total`).
pub async fn list<C: ConnectionTrait>(
    conn: &C,
    actor: &Actor,
    mut filter: OrganisationFilter,
    order: OrganisationOrder,
    page: &PageRequest,
) -> Result<(Page<organisation::Model>, Scoped<OrganisationFilter>), AppError> {
    filter.narrow_for(actor);
    let query = organisation::Entity::find().filter(filter.condition()?);
    let found = fetch_page(conn, query, order.keyset(), page, |org| order.cursor(org)).await?;
    Ok((found, Scoped::new(filter)))
}

/// How many organisations a list holds, within its caller's scope.
pub async fn total<C: ConnectionTrait>(
    conn: &C,
    filter: &Scoped<OrganisationFilter>,
) -> Result<u64, AppError> {
    Ok(organisation::Entity::find()
        .filter(filter.filter().condition()?)
        .count(conn)
        .await?)
}

/// What a new organisation needs.
#[derive(Debug, Clone)]
pub struct NewOrganisation {
    pub name: String,
    /// Derived from the name when absent.
    pub slug: Option<String>,
    /// `DEFAULT_STANDARD_HOURS` when absent.
    pub standard_hours: Option<i32>,
}

/// Changes to an organisation; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct OrganisationUpdate {
    pub name: Option<String>,
    pub slug: Option<String>,
    pub standard_hours: Option<i32>,
}

/// A full-time academic year's hours where the organisation has not set its own (the
/// column's default).
pub const DEFAULT_STANDARD_HOURS: i32 = 1_650;

/// A year has 8,760 hours; a full-time post carries at least one.
fn validate_standard_hours(hours: i32) -> Result<i32, AppError> {
    if (1..=8_760).contains(&hours) {
        Ok(hours)
    } else {
        Err(AppError::validation(
            "standardHours",
            format!("must be between 1 and 8760 hours a year, not {hours}"),
        ))
    }
}

const MAX_NAME_LENGTH: usize = 200;

fn validate_name(name: &str) -> Result<String, AppError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(AppError::validation("name", "must not be empty"));
    }
    if name.chars().count() > MAX_NAME_LENGTH {
        return Err(AppError::validation(
            "name",
            format!("must be at most {MAX_NAME_LENGTH} characters"),
        ));
    }
    Ok(name.to_owned())
}

/// A slug is lower-case letters, digits and single hyphens: safe in a URL as it stands.
fn validate_slug(slug: &str) -> Result<String, AppError> {
    let valid = !slug.is_empty()
        && slug.len() <= 64
        && slug
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !slug.starts_with('-')
        && !slug.ends_with('-')
        && !slug.contains("--");
    if valid {
        Ok(slug.to_owned())
    } else {
        Err(AppError::validation(
            "slug",
            "must be 1 to 64 lower-case letters, digits and single hyphens",
        ))
    }
}

fn slugify(name: &str) -> String {
    let mut slug = String::new();
    for c in name.chars().flat_map(char::to_lowercase) {
        let folded = fold_accent(c);
        if folded.chars().all(|c| c.is_ascii_alphanumeric()) && !folded.is_empty() {
            slug.push_str(folded);
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
    }
    let slug = slug.trim_end_matches('-');
    slug.chars()
        .take(64)
        .collect::<String>()
        .trim_end_matches('-')
        .to_owned()
}

/// The common Latin accents, folded to their base letters, so "Zürich" slugs as "zurich".
fn fold_accent(c: char) -> &'static str {
    match c {
        'a'..='z' | '0'..='9' => {
            const ASCII: &str = "abcdefghijklmnopqrstuvwxyz0123456789";
            let index = ASCII.find(c).unwrap_or(0);
            &ASCII[index..index + 1]
        }
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' => "a",
        'æ' => "ae",
        'ç' | 'ć' | 'č' => "c",
        'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ę' => "e",
        'ì' | 'í' | 'î' | 'ï' | 'ī' => "i",
        'ł' => "l",
        'ñ' | 'ń' => "n",
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' => "o",
        'œ' => "oe",
        'ś' | 'š' => "s",
        'ß' => "ss",
        'ù' | 'ú' | 'û' | 'ü' | 'ū' => "u",
        'ý' | 'ÿ' => "y",
        'ź' | 'ż' | 'ž' => "z",
        _ => "",
    }
}

impl audit::Subject for organisation::Model {
    fn subject_id(&self) -> String {
        self.id.to_string()
    }

    fn snapshot(&self) -> serde_json::Value {
        snapshot(self)
    }
}

pub(crate) fn snapshot(org: &organisation::Model) -> serde_json::Value {
    json!({
        "id": org.id,
        "name": org.name,
        "slug": org.slug,
        "archivedAt": org.archived_at,
        "standardHours": org.standard_hours,
    })
}

/// Creates an organisation and its audit event, together.
pub async fn create(
    services: &Services,
    requester: Requester<'_>,
    origin: &Origin,
    new: NewOrganisation,
) -> Result<organisation::Model, AppError> {
    requester.require_admin()?;
    let name = validate_name(&new.name)?;
    let slug = match new.slug {
        Some(slug) => validate_slug(slug.trim())?,
        None => validate_slug(&slugify(&name)).map_err(|_| {
            AppError::validation("slug", "cannot be derived from the name: give one")
        })?,
    };
    let standard_hours =
        validate_standard_hours(new.standard_hours.unwrap_or(DEFAULT_STANDARD_HOURS))?;
    let now = super::now();
    let Services { db, events, .. } = services;
    let mut write = Write::begin(db, origin).await?;
    let org = organisation::ActiveModel {
        id: Set(Uuid::now_v7()),
        name: Set(name),
        slug: Set(slug),
        created_at: Set(now),
        updated_at: Set(now),
        archived_at: Set(None),
        standard_hours: Set(standard_hours),
    }
    .insert(write.conn())
    .await?;
    write
        .audit(Change::created(Action::OrganisationCreated, &org))
        .await?;
    write.organisation_changed(&org);
    write.commit(events).await?;
    Ok(org)
}

/// Renames an organisation, changes its slug or its standard hours, with its audit event.
pub async fn update(
    services: &Services,
    requester: Requester<'_>,
    origin: &Origin,
    id: Uuid,
    update: OrganisationUpdate,
) -> Result<organisation::Model, AppError> {
    requester.require_admin()?;
    let name = update.name.map(|name| validate_name(&name)).transpose()?;
    let slug = update
        .slug
        .map(|slug| validate_slug(slug.trim()))
        .transpose()?;
    let standard_hours = update
        .standard_hours
        .map(validate_standard_hours)
        .transpose()?;
    let Services { db, events, .. } = services;
    let mut write = Write::begin(db, origin).await?;
    let current = get(write.conn(), id).await?;
    let unchanged = name.as_ref().is_none_or(|name| *name == current.name)
        && slug.as_ref().is_none_or(|slug| *slug == current.slug)
        && standard_hours.is_none_or(|hours| hours == current.standard_hours);
    if unchanged {
        return Ok(current);
    }
    let before = snapshot(&current);
    let mut row: organisation::ActiveModel = current.into();
    if let Some(name) = name {
        row.name = Set(name);
    }
    if let Some(slug) = slug {
        row.slug = Set(slug);
    }
    if let Some(hours) = standard_hours {
        row.standard_hours = Set(hours);
    }
    row.updated_at = Set(super::now());
    let updated = row.update(write.conn()).await?;
    write
        .audit(Change::changed(
            Action::OrganisationUpdated,
            before,
            &updated,
        ))
        .await?;
    write.organisation_changed(&updated);
    write.commit(events).await?;
    Ok(updated)
}

/// Archives an organisation. Refused while it has active users: they must be moved or
/// removed first, so nobody is left in an organisation that no longer shows. Archiving an
/// archived organisation changes nothing.
pub async fn archive(
    services: &Services,
    requester: Requester<'_>,
    origin: &Origin,
    id: Uuid,
) -> Result<organisation::Model, AppError> {
    requester.require_admin()?;
    let Services { db, events, .. } = services;
    let mut write = Write::begin(db, origin).await?;
    let current = get(write.conn(), id).await?;
    if current.archived_at.is_some() {
        return Ok(current);
    }
    let active = users::count(
        write.conn(),
        &users::UserFilter {
            organisation_id: Some(id),
            is_active: Some(true),
            ..users::UserFilter::default()
        },
    )
    .await?;
    if active > 0 {
        return Err(AppError::Conflict(format!(
            "the organisation still has {active} active user(s): move or remove them first"
        )));
    }
    let before = snapshot(&current);
    let now = super::now();
    let mut row: organisation::ActiveModel = current.into();
    row.archived_at = Set(Some(now));
    row.updated_at = Set(now);
    let archived = row.update(write.conn()).await?;
    write
        .audit(Change::changed(
            Action::OrganisationArchived,
            before,
            &archived,
        ))
        .await?;
    write.organisation_changed(&archived);
    write.commit(events).await?;
    Ok(archived)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_derived_from_names() {
        assert_eq!(
            slugify("School of Computing & Maths"),
            "school-of-computing-maths"
        );
        assert_eq!(slugify("  Ünïversity of Zürich!  "), "university-of-zurich");
        assert_eq!(slugify("!!!"), "");
    }
}
