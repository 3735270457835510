//! `importUsers`: a CSV of people (the users export's columns, or fewer) invites whoever is
//! new and updates whoever is there, answering line by line. Planned in full first, so that a
//! dry run answers what would happen (who would be invited, who updated, who refused and why)
//! without touching Clerk; a real run records the plan as a bulk job (`bulk_jobs`, kind
//! `import`) and carries it out in the background: invitations ten at a time through Clerk's
//! bulk endpoint, waiting out its rate limit (25 calls an hour), updates one at a time through
//! `accounts::update` and `profiles::update`. Each line goes through the single operation's own
//! service function, so the same access rules, Clerk calls, audit events and live changes
//! apply.
//!
//! Running a file twice changes nothing the second time: a line whose person is already
//! invited, or already as the line says, is `unchanged`.

use std::collections::{HashMap, HashSet};

use entity::role::Role;
use entity::{organisation, user};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};
use uuid::Uuid;

use super::accounts::{self, AccountUpdate};
use super::bulk::{self, UserOutcome};
use super::invitations::{self, Batch, NewInvitation};
use super::profiles::{self, ProfileUpdate};
use super::{Origin, Services};
use crate::auth::access::RequestedChange;
use crate::auth::{Actor, Requester};
use crate::error::AppError;

/// The most lines (the header aside) one import reads.
pub const MOST_ROWS: usize = 10_000;
/// The longest cell read: longer ones are refused, not cut.
const MOST_CELL_CHARS: usize = 320;
/// The shortest and the longest wait for Clerk's rate limit: its bulk invitation window is an
/// hour, so a longer wait is not the limit but something else, reported rather than waited for.
const LEAST_WAIT: std::time::Duration = std::time::Duration::from_secs(1);
const MOST_WAIT: std::time::Duration = std::time::Duration::from_secs(2 * 3600);
/// How often a running import writes its progress.
const RECORD_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// One line of the file, read.
#[derive(Debug, Clone, Default, PartialEq)]
struct Line {
    number: u32,
    email: String,
    first_name: Option<String>,
    last_name: Option<String>,
    role: Option<Role>,
    /// An organisation's id or slug, as written.
    organisation: Option<String>,
    staff_id: Option<String>,
    /// An export's line for a removed user (`is_active` false).
    removed: bool,
}

/// What a line will do.
#[derive(Debug, Clone)]
enum Plan {
    Invite(NewInvitation),
    Update {
        user_id: Uuid,
        account: Option<AccountUpdate>,
        profile: Option<ProfileUpdate>,
    },
}

/// Reads CSV text (RFC 4180: quoted cells may hold commas, quotes doubled, line breaks; CRLF
/// or LF) into records with the line each starts on. Blank lines are skipped.
fn records(text: &str) -> Result<Vec<(u32, Vec<String>)>, AppError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut records = Vec::new();
    let mut record: Vec<String> = Vec::new();
    let mut cell = String::new();
    let mut quoted = false;
    let mut cell_started = false;
    let mut line = 1u32;
    let mut record_line = 1u32;
    let mut chars = text.chars().peekable();
    let too_long = |line: u32| {
        AppError::validation(
            "csv",
            format!("line {line}: a cell is longer than {MOST_CELL_CHARS} characters"),
        )
    };
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    cell.push('"');
                }
                '"' => quoted = false,
                _ => {
                    if c == '\n' {
                        line += 1;
                    }
                    cell.push(c);
                }
            }
            if cell.chars().count() > MOST_CELL_CHARS {
                return Err(too_long(record_line));
            }
            continue;
        }
        match c {
            '"' if !cell_started => {
                quoted = true;
                cell_started = true;
            }
            ',' => {
                record.push(std::mem::take(&mut cell));
                cell_started = false;
            }
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' | '\r' => {
                record.push(std::mem::take(&mut cell));
                cell_started = false;
                if !(record.len() == 1 && record[0].trim().is_empty()) {
                    records.push((record_line, std::mem::take(&mut record)));
                    if records.len() > MOST_ROWS + 1 {
                        return Err(AppError::validation(
                            "csv",
                            format!("more than {MOST_ROWS} lines: import the file in parts"),
                        ));
                    }
                }
                record.clear();
                line += 1;
                record_line = line;
            }
            _ => {
                cell.push(c);
                cell_started = true;
                if cell.chars().count() > MOST_CELL_CHARS {
                    return Err(too_long(record_line));
                }
            }
        }
    }
    if quoted {
        return Err(AppError::validation(
            "csv",
            format!("line {record_line}: a quoted cell is not closed"),
        ));
    }
    record.push(cell);
    if !(record.len() == 1 && record[0].trim().is_empty()) {
        records.push((record_line, record));
    }
    if records.len() > MOST_ROWS + 1 {
        return Err(AppError::validation(
            "csv",
            format!("more than {MOST_ROWS} lines: import the file in parts"),
        ));
    }
    Ok(records)
}

/// A cell as it was meant: the export defuses formulas with a leading `'`, taken off here.
fn cell_value(cell: &str) -> Option<String> {
    let cell = match cell.strip_prefix('\'') {
        Some(rest) if rest.starts_with(['=', '+', '-', '@', '\t', '\r']) => rest,
        _ => cell,
    };
    let cell = cell.trim();
    (!cell.is_empty()).then(|| cell.to_owned())
}

/// Where each known column is in the header.
struct Columns {
    email: usize,
    first_name: Option<usize>,
    last_name: Option<usize>,
    role: Option<usize>,
    organisation: Vec<usize>,
    staff_id: Option<usize>,
    is_active: Option<usize>,
}

impl Columns {
    fn of(header: &[String]) -> Result<Columns, AppError> {
        let names: Vec<String> = header
            .iter()
            .map(|name| {
                name.trim()
                    .to_ascii_lowercase()
                    .replace([' ', '-'], "_")
                    .replace("organization", "organisation")
            })
            .collect();
        let find = |wanted: &[&str]| {
            names
                .iter()
                .position(|name| wanted.contains(&name.as_str()))
        };
        let email = find(&["email", "email_address"]).ok_or_else(|| {
            AppError::validation(
                "csv",
                "the first line must name the columns, among them `email` (as the users export does)",
            )
        })?;
        // An id wins over a slug, and either over a column that may hold both.
        let organisation = ["organisation_id", "organisation_slug", "organisation"]
            .iter()
            .filter_map(|name| find(&[name]))
            .collect();
        Ok(Columns {
            email,
            first_name: find(&["first_name", "firstname"]),
            last_name: find(&["last_name", "lastname"]),
            role: find(&["role"]),
            organisation,
            staff_id: find(&["staff_id", "staffid"]),
            is_active: find(&["is_active"]),
        })
    }

    /// Reads one record; the error is the line's refusal.
    fn line(&self, number: u32, record: &[String]) -> Result<Line, AppError> {
        let get = |index: Option<usize>| {
            index
                .and_then(|index| record.get(index))
                .and_then(|cell| cell_value(cell))
        };
        let email = get(Some(self.email))
            .ok_or_else(|| AppError::validation("email", "the email is missing"))?;
        let email = invitations::normalise_email(&email)?;
        let role = match get(self.role) {
            None => None,
            Some(role) => Some(Role::parse(&role).ok_or_else(|| {
                AppError::validation(
                    "role",
                    format!("`{role}` is no role (ADMIN, ORG_ADMIN, LECTURER or MEMBER)"),
                )
            })?),
        };
        let removed = match get(self.is_active).map(|v| v.to_ascii_lowercase()) {
            None => false,
            Some(value) if value == "true" => false,
            Some(value) if value == "false" => true,
            Some(value) => {
                return Err(AppError::validation(
                    "is_active",
                    format!("`{value}` is neither true nor false"),
                ));
            }
        };
        let staff_id = get(self.staff_id)
            .map(|id| profiles::text("staff_id", &id, profiles::MAX_STAFF_ID_LENGTH))
            .transpose()?;
        Ok(Line {
            number,
            email,
            first_name: accounts::validate_name("first_name", get(self.first_name))?,
            last_name: accounts::validate_name("last_name", get(self.last_name))?,
            role,
            organisation: self.organisation.iter().find_map(|&index| get(Some(index))),
            staff_id,
            removed,
        })
    }
}

/// The organisations the file names, by id and by slug.
struct Organisations {
    by_id: HashMap<Uuid, organisation::Model>,
    by_slug: HashMap<String, organisation::Model>,
}

impl Organisations {
    async fn named(db: &DatabaseConnection, lines: &[Line]) -> Result<Organisations, AppError> {
        let named: HashSet<&str> = lines
            .iter()
            .filter_map(|line| line.organisation.as_deref())
            .collect();
        let ids: Vec<Uuid> = named.iter().filter_map(|n| n.parse().ok()).collect();
        let slugs: Vec<String> = named.iter().map(|n| n.to_ascii_lowercase()).collect();
        let mut found = Vec::new();
        for chunk in ids.chunks(500) {
            found.extend(
                organisation::Entity::find()
                    .filter(organisation::Column::Id.is_in(chunk.iter().copied()))
                    .all(db)
                    .await?,
            );
        }
        for chunk in slugs.chunks(500) {
            found.extend(
                organisation::Entity::find()
                    .filter(organisation::Column::Slug.is_in(chunk.iter().cloned()))
                    .all(db)
                    .await?,
            );
        }
        Ok(Organisations {
            by_id: found.iter().map(|org| (org.id, org.clone())).collect(),
            by_slug: found
                .into_iter()
                .map(|org| (org.slug.clone(), org))
                .collect(),
        })
    }

    /// The organisation a cell names, if it may be given to people.
    fn resolve(&self, named: &str) -> Result<Uuid, AppError> {
        let found = named
            .parse::<Uuid>()
            .ok()
            .and_then(|id| self.by_id.get(&id))
            .or_else(|| self.by_slug.get(&named.to_ascii_lowercase()));
        match found {
            Some(org) if org.archived_at.is_none() => Ok(org.id),
            Some(org) => Err(AppError::validation(
                "organisation",
                format!("the organisation `{}` is archived", org.slug),
            )),
            None => Err(AppError::validation(
                "organisation",
                format!("no organisation has the id or slug `{named}`"),
            )),
        }
    }
}

/// Plans every line for `actor`: each one's outcome as planned, and what a real run does.
async fn plan(
    services: &Services,
    actor: &Actor,
    csv: &str,
) -> Result<Vec<(UserOutcome, Option<Plan>)>, AppError> {
    let db = &services.db;
    let mut records = records(csv)?.into_iter();
    let (_, header) = records.next().ok_or_else(|| {
        AppError::validation(
            "csv",
            "the file is empty: give a header line and a line a person",
        )
    })?;
    let columns = Columns::of(&header)?;
    let mut planned = Vec::new();
    let mut lines = Vec::new();
    for (number, record) in records {
        match columns.line(number, &record) {
            Ok(line) => lines.push(line),
            Err(error) => {
                let mut outcome = UserOutcome {
                    line: Some(number),
                    email: record
                        .get(columns.email)
                        .map(|email| email.trim().to_owned())
                        .unwrap_or_default(),
                    ..UserOutcome::default()
                };
                outcome.refuse(&error);
                planned.push((number, outcome, None));
            }
        }
    }
    if lines.is_empty() && planned.is_empty() {
        return Err(AppError::validation(
            "csv",
            "the file names nobody: give a line a person after the header",
        ));
    }
    let emails: Vec<String> = lines.iter().map(|line| line.email.clone()).collect();
    let mut holders: HashMap<String, user::Model> = HashMap::new();
    for chunk in emails.chunks(500) {
        let found = user::Entity::find()
            .filter(user::Column::Email.is_in(chunk.iter().cloned()))
            .filter(user::Column::IsActive.eq(true))
            .all(db)
            .await?;
        holders.extend(found.into_iter().map(|user| (user.email.clone(), user)));
    }
    let holder_ids: Vec<Uuid> = holders.values().map(|user| user.id).collect();
    let mut staff_ids = HashMap::new();
    for chunk in holder_ids.chunks(500) {
        staff_ids.extend(
            profiles::by_user_ids(db, chunk)
                .await?
                .into_iter()
                .map(|(id, profile)| (id, profile.staff_id)),
        );
    }
    let pending = invitations::pending_to(db, actor, &emails).await?;
    let organisations = Organisations::named(db, &lines).await?;
    let mut first_line_of: HashMap<String, u32> = HashMap::new();
    for line in lines {
        let mut outcome = UserOutcome {
            line: Some(line.number),
            email: line.email.clone(),
            ..UserOutcome::default()
        };
        if let Some(first) = first_line_of.get(&line.email) {
            outcome.refuse(&AppError::Conflict(format!(
                "line {first} names this address already"
            )));
            planned.push((line.number, outcome, None));
            continue;
        }
        first_line_of.insert(line.email.clone(), line.number);
        let visible_holder = holders
            .get(&line.email)
            .filter(|holder| actor.may_read_user(holder));
        let plan = match visible_holder {
            Some(holder) => plan_update(actor, &line, holder, &staff_ids, &organisations),
            None => plan_invite(actor, &line, pending.get(&line.email), &organisations),
        };
        match plan {
            Ok((decided, plan)) => {
                outcome = UserOutcome {
                    line: outcome.line,
                    email: outcome.email,
                    ..decided
                };
                planned.push((line.number, outcome, plan));
            }
            Err(error) => {
                outcome.user_id = visible_holder.map(|holder| holder.id);
                outcome.action = Some(
                    if visible_holder.is_some() {
                        "update"
                    } else {
                        "invite"
                    }
                    .to_owned(),
                );
                outcome.refuse(&error);
                planned.push((line.number, outcome, None));
            }
        }
    }
    planned.sort_by_key(|(number, ..)| *number);
    Ok(planned
        .into_iter()
        .map(|(_, outcome, plan)| (outcome, plan))
        .collect())
}

/// A line for someone the caller can see: what differs is changed, as `updateUser` and
/// `updateLecturerProfile` would change it. Blank cells leave things as they are.
fn plan_update(
    actor: &Actor,
    line: &Line,
    holder: &user::Model,
    staff_ids: &HashMap<Uuid, Option<String>>,
    organisations: &Organisations,
) -> Result<(UserOutcome, Option<Plan>), AppError> {
    let decided = |outcome: &str| UserOutcome {
        user_id: Some(holder.id),
        outcome: outcome.to_owned(),
        action: Some("update".to_owned()),
        ..UserOutcome::default()
    };
    if line.removed {
        return Ok((decided("unchanged"), None));
    }
    let organisation = line
        .organisation
        .as_deref()
        .map(|named| organisations.resolve(named))
        .transpose()?;
    let differs = |given: &Option<String>, current: &Option<String>| {
        given
            .as_ref()
            .filter(|given| Some(*given) != current.as_ref())
            .cloned()
    };
    let account = AccountUpdate {
        role: line.role.filter(|role| *role != holder.role),
        organisation_id: organisation
            .filter(|id| Some(*id) != holder.organisation_id)
            .map(Some),
        first_name: differs(&line.first_name, &holder.first_name),
        last_name: differs(&line.last_name, &holder.last_name),
    };
    let account_changes = account.role.is_some()
        || account.organisation_id.is_some()
        || account.first_name.is_some()
        || account.last_name.is_some();
    let current_staff_id = staff_ids.get(&holder.id).cloned().flatten();
    let staff_id = differs(&line.staff_id, &current_staff_id);
    if !account_changes && staff_id.is_none() {
        return Ok((decided("unchanged"), None));
    }
    if account_changes {
        actor.require_user_change(
            holder,
            &RequestedChange {
                role: account.role,
                organisation_id: account.organisation_id,
            },
        )?;
    }
    if staff_id.is_some() {
        actor.require_manage_user(holder)?;
    }
    Ok((
        decided("would_change"),
        Some(Plan::Update {
            user_id: holder.id,
            account: account_changes.then_some(account),
            profile: staff_id.map(|staff_id| ProfileUpdate {
                staff_id: Some(Some(staff_id)),
                ..ProfileUpdate::default()
            }),
        }),
    ))
}

/// A line for someone new (to the caller): an invitation, unless one is already pending.
fn plan_invite(
    actor: &Actor,
    line: &Line,
    pending: Option<&entity::invitation::Model>,
    organisations: &Organisations,
) -> Result<(UserOutcome, Option<Plan>), AppError> {
    let decided = |outcome: &str| UserOutcome {
        outcome: outcome.to_owned(),
        action: Some("invite".to_owned()),
        ..UserOutcome::default()
    };
    if line.removed {
        let mut skipped = decided("unchanged");
        skipped.message = Some("is_active is false: not invited again".to_owned());
        return Ok((skipped, None));
    }
    let role = line.role.unwrap_or(Role::Lecturer);
    // An organisation admin's people join their organisation unless the line says otherwise
    // (and it may not say another).
    let organisation_id = match &line.organisation {
        Some(named) => Some(organisations.resolve(named)?),
        None if actor.user.role == Role::OrgAdmin => actor.user.organisation_id,
        None => None,
    };
    actor.require_invite(role, organisation_id)?;
    if let Some(pending) = pending {
        if pending.role == role && pending.organisation_id == organisation_id {
            let mut already = decided("unchanged");
            already.invitation_id = Some(pending.id);
            already.message = Some("already invited".to_owned());
            return Ok((already, None));
        }
        return Err(AppError::Conflict(format!(
            "{} has a pending invitation with another role or organisation; revoke it to invite them again",
            line.email
        )));
    }
    let mut invite = decided("would_change");
    if line.first_name.is_some() || line.last_name.is_some() || line.staff_id.is_some() {
        invite.message = Some(
            "names and staff id are theirs to give when they sign up; import the file again after to set them"
                .to_owned(),
        );
    }
    Ok((
        invite,
        Some(Plan::Invite(NewInvitation {
            email: line.email.clone(),
            role,
            organisation_id,
            redirect_url: None,
        })),
    ))
}

/// Starts an import: plans it for `actor` and, unless `dry_run`, records the job and carries it
/// out in the background. Answers the job as it stands.
pub async fn start(
    services: &Services,
    actor: &Actor,
    origin: &Origin,
    csv: &str,
    dry_run: bool,
) -> Result<entity::bulk_job::Model, AppError> {
    actor.require_bulk()?;
    bulk::ensure_may_start(services, actor, dry_run).await?;
    let planned = plan(services, actor, csv).await?;
    let (outcomes, plans): (Vec<UserOutcome>, Vec<Option<Plan>>) = planned.into_iter().unzip();
    let job = bulk::insert_job(services, actor, "import", &outcomes, dry_run).await?;
    if !dry_run {
        let job_id = job.id;
        bulk::in_background(services, job_id, {
            let (services, origin, requester) = (services.clone(), origin.clone(), actor.user.id);
            async move { run(&services, requester, &origin, job_id, outcomes, plans).await }
        });
    }
    Ok(job)
}

/// Writes progress at most once a `RECORD_INTERVAL`: an import's outcomes are one document of
/// up to `MOST_ROWS` entries.
struct Recorder {
    last: std::time::Instant,
}

impl Recorder {
    async fn changed(
        &mut self,
        services: &Services,
        job_id: Uuid,
        outcomes: &[UserOutcome],
    ) -> Result<(), AppError> {
        if self.last.elapsed() >= RECORD_INTERVAL {
            self.flush(services, job_id, outcomes).await?;
        }
        Ok(())
    }

    async fn flush(
        &mut self,
        services: &Services,
        job_id: Uuid,
        outcomes: &[UserOutcome],
    ) -> Result<(), AppError> {
        bulk::record_progress(services, job_id, outcomes).await?;
        self.last = std::time::Instant::now();
        Ok(())
    }
}

async fn run(
    services: &Services,
    requester: Uuid,
    origin: &Origin,
    job_id: Uuid,
    mut outcomes: Vec<UserOutcome>,
    plans: Vec<Option<Plan>>,
) -> Result<(), AppError> {
    let mut recorder = Recorder {
        last: std::time::Instant::now(),
    };
    let mut invites: Vec<(usize, NewInvitation)> = Vec::new();
    let result = async {
        for (index, plan) in plans.into_iter().enumerate() {
            match plan {
                None => {}
                Some(Plan::Invite(new)) => {
                    invites.push((index, new));
                    if invites.len() == invitations::CLERK_BATCH {
                        let batch = std::mem::take(&mut invites);
                        send(services, requester, origin, job_id, &mut outcomes, batch).await?;
                        recorder.changed(services, job_id, &outcomes).await?;
                    }
                }
                Some(Plan::Update {
                    user_id,
                    account,
                    profile,
                }) => {
                    let actor = bulk::requester_now(services, requester).await?;
                    let done = update(services, &actor, origin, user_id, account, profile).await;
                    match done {
                        Ok(()) => outcomes[index].outcome = "changed".to_owned(),
                        Err(error) => outcomes[index].refuse(&error),
                    }
                    recorder.changed(services, job_id, &outcomes).await?;
                }
            }
        }
        if !invites.is_empty() {
            let batch = std::mem::take(&mut invites);
            send(services, requester, origin, job_id, &mut outcomes, batch).await?;
        }
        Ok::<(), AppError>(())
    }
    .await;
    // What was done is recorded whether the job ends well or not.
    recorder.flush(services, job_id, &outcomes).await?;
    result?;
    bulk::finish(services, job_id, "succeeded", None).await
}

/// One line's update: its account through `accounts::update`, its staff id through
/// `profiles::update`.
async fn update(
    services: &Services,
    actor: &Actor,
    origin: &Origin,
    user_id: Uuid,
    account: Option<AccountUpdate>,
    profile: Option<ProfileUpdate>,
) -> Result<(), AppError> {
    if let Some(account) = account {
        accounts::update(services, actor, origin, user_id, account).await?;
    }
    if let Some(profile) = profile {
        profiles::update(services, Requester::User(actor), origin, user_id, profile).await?;
    }
    Ok(())
}

/// Sends a batch of invitations, waiting out Clerk's rate limit (and saying, while it waits,
/// that the job still runs), and records each line's outcome.
async fn send(
    services: &Services,
    requester: Uuid,
    origin: &Origin,
    job_id: Uuid,
    outcomes: &mut [UserOutcome],
    batch: Vec<(usize, NewInvitation)>,
) -> Result<(), AppError> {
    let news: Vec<NewInvitation> = batch.iter().map(|(_, new)| new.clone()).collect();
    loop {
        // The requester as the database says now, for every call: a demotion stops the job.
        let actor = bulk::requester_now(services, requester).await?;
        match invitations::invite_batch(services, &actor, origin, &news).await? {
            Batch::Sent(results) => {
                for ((index, _), result) in batch.iter().zip(results) {
                    match result {
                        Ok(invitation) => {
                            outcomes[*index].outcome = "changed".to_owned();
                            outcomes[*index].invitation_id = Some(invitation.id);
                        }
                        Err(error) => outcomes[*index].refuse(&error),
                    }
                }
                return Ok(());
            }
            Batch::RateLimited(asked) => {
                if asked > MOST_WAIT {
                    return Err(AppError::Upstream(format!(
                        "Clerk asks to wait {} minutes before the next invitations: import the rest of the file later (what was done stays done)",
                        asked.as_secs() / 60
                    )));
                }
                // Never straight back: a `Retry-After: 0` must not become a busy loop.
                let wait = asked.max(LEAST_WAIT);
                tracing::info!(%job_id, wait_ms = wait.as_millis() as u64, "an import waits out Clerk's rate limit");
                let mut left = wait;
                while !left.is_zero() {
                    let step = left.min(bulk::HEARTBEAT);
                    tokio::time::sleep(step).await;
                    left -= step;
                    bulk::record_progress(services, job_id, outcomes).await?;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cells(records: &[(u32, Vec<String>)]) -> Vec<(u32, Vec<&str>)> {
        records
            .iter()
            .map(|(line, cells)| (*line, cells.iter().map(String::as_str).collect()))
            .collect()
    }

    #[test]
    fn csv_cells_may_be_quoted_hold_commas_quotes_and_line_breaks() {
        let read = records("email,first_name\r\n\"a@x.io\",\"Smith, \"\"Jo\"\"\"\n\nb@x.io,\"two\nlines\"\nc@x.io,").unwrap();
        assert_eq!(
            cells(&read),
            vec![
                (1, vec!["email", "first_name"]),
                (2, vec!["a@x.io", "Smith, \"Jo\""]),
                (4, vec!["b@x.io", "two\nlines"]),
                (6, vec!["c@x.io", ""]),
            ]
        );
    }

    #[test]
    fn an_unclosed_quote_or_an_overlong_cell_is_refused_with_its_line() {
        let error = records("email\n\"a@x.io\n").unwrap_err();
        assert!(error.to_string().contains("line 2"), "{error}");
        let error = records(&format!("email\n{}\n", "a".repeat(400))).unwrap_err();
        assert!(error.to_string().contains("line 2"), "{error}");
    }

    #[test]
    fn the_exports_formula_guard_is_taken_off() {
        assert_eq!(cell_value("'=SUM(A1)").as_deref(), Some("=SUM(A1)"));
        assert_eq!(cell_value("'quoted").as_deref(), Some("'quoted"));
        assert_eq!(cell_value("  "), None);
    }

    #[test]
    fn columns_are_found_by_name_in_any_case_and_order() {
        let header: Vec<String> = ["Staff ID", "EMAIL", "Organization", "role"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let columns = Columns::of(&header).unwrap();
        let line = columns
            .line(
                2,
                &["S1", " Ada@Uni.Example ", "cs", "org-admin"].map(String::from),
            )
            .unwrap();
        assert_eq!(line.email, "ada@uni.example");
        assert_eq!(line.staff_id.as_deref(), Some("S1"));
        assert_eq!(line.organisation.as_deref(), Some("cs"));
        assert_eq!(line.role, Some(Role::OrgAdmin));
        assert!(Columns::of(&["name".to_owned()]).is_err());
    }
}
