//! A user as Clerk has them, brought into userhub: read into a `ClerkProfile`, then created
//! or updated when Clerk's state is newer than the stored one (webhooks, sync, sign-in, and a
//! mutation's own write all come this way).

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use entity::role::Role;
use entity::{organisation, user};
use sea_orm::{
    ActiveModelTrait, DatabaseTransaction, EntityTrait, IntoActiveModel, Set, TransactionTrait,
};
use uuid::Uuid;

use super::removal::is_buried;
use super::{find_by_clerk_id, snapshot};
use crate::clerk::model::{ClerkUser, from_millis};
use crate::error::AppError;
use crate::events::{ChangeKind, EventBus};
use crate::service::audit::{Action, Change};
use crate::service::{Origin, Write};

/// A user as Clerk describes them, already read into userhub's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClerkProfile {
    pub clerk_id: String,
    pub email: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub image_url: Option<String>,
    pub role: Role,
    pub organisation_id: Option<Uuid>,
    pub banned: bool,
    pub last_sign_in_at: Option<DateTime<Utc>>,
    pub last_active_at: Option<DateTime<Utc>>,
    /// Clerk's `updated_at`, Unix milliseconds.
    pub updated_at_ms: i64,
    /// The invitation the user accepted, when Clerk made them from one of userhub's.
    pub invitation_id: Option<Uuid>,
}

impl ClerkProfile {
    /// A Clerk user in userhub's terms; `None` for a user with no email address at all.
    pub fn of(user: &ClerkUser) -> Option<ClerkProfile> {
        Some(ClerkProfile {
            clerk_id: user.id.clone(),
            email: user.primary_email()?.to_owned(),
            first_name: non_empty(&user.first_name),
            last_name: non_empty(&user.last_name),
            image_url: non_empty(&user.image_url),
            role: user.role(),
            organisation_id: user.organisation_id(),
            banned: user.banned,
            last_sign_in_at: user.last_sign_in_at.and_then(from_millis),
            last_active_at: user.last_active_at.and_then(from_millis),
            updated_at_ms: user.updated_at,
            invitation_id: user.invitation_id(),
        })
    }
}

fn non_empty(value: &Option<String>) -> Option<String> {
    value
        .as_deref()
        .map(str::trim)
        .filter(|text| !text.is_empty())
        .map(str::to_owned)
}

/// What `upsert_from_clerk` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Upserted {
    Created(user::Model),
    Updated(user::Model),
    /// The profile matched what is stored.
    Unchanged(user::Model),
    /// The stored state is newer than the profile: nothing was written.
    Stale(user::Model),
}

impl Upserted {
    pub fn user(&self) -> &user::Model {
        match self {
            Upserted::Created(user)
            | Upserted::Updated(user)
            | Upserted::Unchanged(user)
            | Upserted::Stale(user) => user,
        }
    }
}

/// Brings the row of a Clerk user in line with Clerk's state, if that state is newer than the
/// one stored, writes the audit event in the same transaction, and publishes the change when
/// it commits. A user Clerk has deleted is not brought back: `CONFLICT`.
pub async fn upsert_from_clerk<C>(
    db: &C,
    events: &EventBus,
    origin: &Origin,
    profile: ClerkProfile,
) -> Result<Upserted, AppError>
where
    C: TransactionTrait<Transaction = DatabaseTransaction>,
{
    let clerk_id = profile.clerk_id.clone();
    let outcome = match upsert_once(db, events, origin, profile.clone()).await {
        // Another writer (a webhook, a sync, a parallel first request) inserted this user
        // between our read and our insert: the row exists now, so the update path applies.
        Err(AppError::Conflict(_)) => upsert_once(db, events, origin, profile).await,
        outcome => outcome,
    }?;
    outcome.ok_or_else(|| AppError::Conflict(format!("Clerk has deleted the user `{clerk_id}`")))
}

async fn upsert_once<C>(
    db: &C,
    events: &EventBus,
    origin: &Origin,
    profile: ClerkProfile,
) -> Result<Option<Upserted>, AppError>
where
    C: TransactionTrait<Transaction = DatabaseTransaction>,
{
    let mut write = Write::begin(db, origin).await?;
    let outcome = upsert_in(&mut write, profile).await?;
    write.commit(events).await?;
    Ok(outcome)
}

/// `upsert_from_clerk` inside a caller's write. `None` when Clerk has deleted the user (a
/// tombstone and no row): nothing is written.
pub(crate) async fn upsert_in(
    write: &mut Write,
    profile: ClerkProfile,
) -> Result<Option<Upserted>, AppError> {
    let conn = write.conn();
    // An organisation userhub does not know is kept as unassigned; sync status reports it.
    let organisation_exists = match profile.organisation_id {
        Some(id) => organisation::Entity::find_by_id(id)
            .one(conn)
            .await?
            .is_some(),
        None => false,
    };
    let existing = find_by_clerk_id(conn, &profile.clerk_id).await?;
    if existing.is_none() && is_buried(conn, &profile.clerk_id).await? {
        return Ok(None);
    }
    let outcome = apply_profile(write, profile, existing, organisation_exists).await?;
    Ok(Some(outcome))
}

/// The email as userhub stores it: trimmed, lower case, and present.
fn stored_email(profile: &ClerkProfile) -> Result<String, AppError> {
    let email = profile.email.trim().to_lowercase();
    if email.is_empty() {
        return Err(AppError::validation(
            "email",
            "a user needs an email address",
        ));
    }
    Ok(email)
}

/// The row of a user Clerk has and userhub has not, as it is first stored.
fn new_row(
    profile: ClerkProfile,
    email: String,
    organisation_id: Option<Uuid>,
    now: DateTime<Utc>,
) -> user::Model {
    user::Model {
        id: Uuid::now_v7(),
        clerk_id: profile.clerk_id,
        email,
        first_name: profile.first_name,
        last_name: profile.last_name,
        image_url: profile.image_url,
        role: profile.role,
        organisation_id,
        is_active: true,
        banned: profile.banned,
        last_sign_in_at: profile.last_sign_in_at,
        last_active_at: profile.last_active_at,
        clerk_updated_at: profile.updated_at_ms,
        created_at: now,
        updated_at: now,
        deactivated_at: None,
    }
}

fn created_change(created: &user::Model) -> Change {
    Change::created(Action::UserCreated, created)
}

/// Many Clerk users brought in in one write (a sync page, a batch of webhook deliveries).
/// What they need is read at once (`read`: the stored rows, which organisations exist, which
/// new ids are buried); each profile is then brought in (`bring`: a stored user is updated
/// there and then, a new one waits), and `finish` inserts the new ones together.
pub(crate) struct Bringing {
    stored: HashMap<String, user::Model>,
    organisations: HashSet<Uuid>,
    buried: HashSet<String>,
    arrivals: Vec<Arrival>,
}

/// What `Bringing::bring` did with a profile.
#[derive(Debug)]
pub(crate) enum Brought {
    /// A new user, inserted by `finish`.
    Waiting,
    /// A stored user, brought up to date.
    Updated,
    /// A stored user who already matched the profile.
    Unchanged,
    /// A stored user newer than the profile, or deactivated: nothing is written.
    Stale,
    /// Clerk deleted this user before userhub heard of them: nothing is written.
    Buried,
}

impl Bringing {
    /// Reads what bringing in `profiles` needs, in three statements; `clerk_ids` are the users
    /// whose stored rows are wanted (the profiles', and any others the caller will `take`).
    pub(crate) async fn read<C: sea_orm::ConnectionTrait>(
        conn: &C,
        clerk_ids: Vec<String>,
        profiles: &[&ClerkProfile],
    ) -> Result<Bringing, AppError> {
        let stored = super::by_clerk_ids(conn, clerk_ids).await?;
        let organisations = crate::service::organisations::known_among(
            conn,
            profiles.iter().filter_map(|p| p.organisation_id).collect(),
        )
        .await?;
        // A user deleted in Clerk before we heard of them: the deletion wins.
        let buried = super::buried_among(
            conn,
            profiles
                .iter()
                .filter(|p| !stored.contains_key(&p.clerk_id))
                .map(|p| p.clerk_id.clone())
                .collect(),
        )
        .await?;
        Ok(Bringing {
            stored,
            organisations,
            buried,
            arrivals: Vec::new(),
        })
    }

    /// The stored row of a user, taken out (a deletion's), if there is one.
    pub(crate) fn take(&mut self, clerk_id: &str) -> Option<user::Model> {
        self.stored.remove(clerk_id)
    }

    /// Brings one profile in, credited to `origin`. Each Clerk id is brought in once a write.
    pub(crate) async fn bring(
        &mut self,
        write: &mut Write,
        profile: ClerkProfile,
        origin: &Origin,
    ) -> Result<Brought, AppError> {
        let organisation_exists = profile
            .organisation_id
            .is_some_and(|id| self.organisations.contains(&id));
        Ok(match self.stored.remove(&profile.clerk_id) {
            None if self.buried.contains(&profile.clerk_id) => Brought::Buried,
            None => {
                self.arrivals.push(Arrival {
                    profile,
                    organisation_exists,
                    origin: origin.clone(),
                });
                Brought::Waiting
            }
            existing => {
                write.act_for(origin);
                match apply_profile(write, profile, existing, organisation_exists).await? {
                    // A row was there: `apply_profile` updates it or leaves it.
                    Upserted::Created(_) | Upserted::Updated(_) => Brought::Updated,
                    Upserted::Unchanged(_) => Brought::Unchanged,
                    Upserted::Stale(_) => Brought::Stale,
                }
            }
        })
    }

    /// Inserts the new users; how many.
    pub(crate) async fn finish(self, write: &mut Write) -> Result<usize, AppError> {
        create_many(write, self.arrivals).await
    }
}

/// A user new to userhub, for `create_many`.
#[derive(Debug)]
struct Arrival {
    pub profile: ClerkProfile,
    /// Whether userhub knows the profile's organisation.
    pub organisation_exists: bool,
    /// Who brought them: a sync run, or the webhook delivery about them.
    pub origin: Origin,
}

/// `apply_profile` for many users none of whom is stored or buried (a sync page's new users,
/// a batch of deliveries' new users): the rows in one statement, their audit events in
/// another, one look-up of pending invitations for all their emails. The same rows, events
/// and changes as one by one, each credited to its own origin.
async fn create_many(write: &mut Write, mut arrivals: Vec<Arrival>) -> Result<usize, AppError> {
    // One order for every writer of many users (sync pages, webhook batches): two inserting
    // the same new users wait for each other's unique keys in turn rather than deadlock.
    arrivals.sort_by(|a, b| a.profile.clerk_id.cmp(&b.profile.clerk_id));
    let now = crate::service::now();
    let mut rows = Vec::with_capacity(arrivals.len());
    let mut origins = Vec::with_capacity(arrivals.len());
    let mut invitations = Vec::with_capacity(arrivals.len());
    for arrival in arrivals {
        invitations.push(arrival.profile.invitation_id);
        let email = stored_email(&arrival.profile)?;
        let organisation_id = arrival
            .profile
            .organisation_id
            .filter(|_| arrival.organisation_exists);
        rows.push(new_row(arrival.profile, email, organisation_id, now));
        origins.push(arrival.origin);
    }
    if rows.is_empty() {
        return Ok(0);
    }
    user::Entity::insert_many(
        rows.iter()
            .map(|row| row.clone().into_active_model().reset_all()),
    )
    .exec_without_returning(write.conn())
    .await?;
    write
        .audit_many(
            origins
                .iter()
                .cloned()
                .zip(rows.iter().map(created_change))
                .collect(),
        )
        .await?;
    let invited = crate::service::invitations::pending_among(
        write.conn(),
        rows.iter().map(|row| row.email.clone()).collect(),
    )
    .await?;
    let own_origin = write.origin().clone();
    for ((row, origin), invitation_id) in rows.iter().zip(&origins).zip(invitations) {
        // An invitation meets its user (docs/architecture.md, rule 3), credited to whoever
        // brought the user.
        if invited.contains(&row.email) {
            write.act_for(origin);
            crate::service::invitations::accept_for_email(write, &row.email, invitation_id).await?;
        }
    }
    write.act_for(&own_origin);
    let count = rows.len();
    for row in rows {
        write.user_changed(ChangeKind::Created, None, row);
    }
    Ok(count)
}

/// What a Clerk profile means for the stored row: decided from values alone, written by
/// `apply_profile`.
#[derive(Debug)]
enum Decision {
    /// No row: this one is stored.
    Create(user::Model),
    /// The stored row is newer, or Clerk deleted the user: nothing is written.
    Stale(user::Model),
    /// The profile says what the row says; a newer Clerk timestamp is still kept, so an older
    /// event arriving after this one is not applied over it.
    Unchanged {
        current: user::Model,
        newer_timestamp: Option<i64>,
    },
    Update {
        current: Box<user::Model>,
        updated: Box<user::Model>,
        action: Action,
        kind: ChangeKind,
    },
}

fn decide(
    profile: ClerkProfile,
    existing: Option<user::Model>,
    organisation_exists: bool,
    now: DateTime<Utc>,
) -> Result<Decision, AppError> {
    let email = stored_email(&profile)?;
    let organisation_id = profile.organisation_id.filter(|_| organisation_exists);
    let Some(current) = existing else {
        return Ok(Decision::Create(new_row(
            profile,
            email,
            organisation_id,
            now,
        )));
    };
    // A deactivated row stays as it is: Clerk deleted that user, and any profile of theirs
    // that arrives now is older than the deletion.
    if !current.is_active || current.clerk_updated_at > profile.updated_at_ms {
        return Ok(Decision::Stale(current));
    }
    let banned = profile.banned;
    // Sessions' events (`service::sessions`) may have seen a later sign-in or activity than
    // this user object shows: the later of the two stands.
    let last_sign_in_at = profile.last_sign_in_at.max(current.last_sign_in_at);
    let last_active_at = profile.last_active_at.max(current.last_active_at);
    let updated = user::Model {
        id: current.id,
        is_active: current.is_active,
        created_at: current.created_at,
        deactivated_at: current.deactivated_at,
        last_sign_in_at,
        last_active_at,
        ..new_row(profile, email, organisation_id, now)
    };
    let unchanged = current.email == updated.email
        && current.first_name == updated.first_name
        && current.last_name == updated.last_name
        && current.image_url == updated.image_url
        && current.role == updated.role
        && current.organisation_id == updated.organisation_id
        && current.banned == updated.banned
        && current.last_sign_in_at == updated.last_sign_in_at
        && current.last_active_at == updated.last_active_at;
    if unchanged {
        let newer_timestamp = (updated.clerk_updated_at > current.clerk_updated_at)
            .then_some(updated.clerk_updated_at);
        return Ok(Decision::Unchanged {
            current,
            newer_timestamp,
        });
    }
    let action = if current.role != updated.role {
        Action::UserRoleChanged
    } else if current.banned != banned {
        if banned {
            Action::UserSuspended
        } else {
            Action::UserUnsuspended
        }
    } else {
        Action::UserUpdated
    };
    let kind = match (current.banned, banned) {
        (false, true) => ChangeKind::Suspended,
        (true, false) => ChangeKind::Unsuspended,
        _ => ChangeKind::Updated,
    };
    Ok(Decision::Update {
        current: Box::new(current),
        updated: Box::new(updated),
        action,
        kind,
    })
}

/// The heart of `upsert_from_clerk`, for callers that hold a write and have already read the
/// stored row and whether the profile's organisation exists (`Bringing`).
async fn apply_profile(
    write: &mut Write,
    profile: ClerkProfile,
    existing: Option<user::Model>,
    organisation_exists: bool,
) -> Result<Upserted, AppError> {
    let invitation_id = profile.invitation_id;
    let decision = decide(
        profile,
        existing,
        organisation_exists,
        crate::service::now(),
    )?;
    let outcome = match decision {
        Decision::Create(row) => {
            let created = row
                .into_active_model()
                .reset_all()
                .insert(write.conn())
                .await?;
            write.audit(created_change(&created)).await?;
            // An invitation meets its user (docs/architecture.md, rule 3).
            crate::service::invitations::accept_for_email(write, &created.email, invitation_id)
                .await?;
            write.user_changed(ChangeKind::Created, None, created.clone());
            Upserted::Created(created)
        }
        Decision::Stale(current) => Upserted::Stale(current),
        Decision::Unchanged {
            current,
            newer_timestamp: None,
        } => Upserted::Unchanged(current),
        Decision::Unchanged {
            current,
            newer_timestamp: Some(timestamp),
        } => {
            let mut row = current.into_active_model();
            row.clerk_updated_at = Set(timestamp);
            Upserted::Unchanged(row.update(write.conn()).await?)
        }
        Decision::Update {
            current,
            updated,
            action,
            kind,
        } => {
            let updated = updated
                .into_active_model()
                .reset_all()
                .update(write.conn())
                .await?;
            write
                .audit(Change::changed(action, snapshot(&current), &updated))
                .await?;
            write.user_changed(kind, Some(&current), updated.clone());
            Upserted::Updated(updated)
        }
    };
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(updated_at_ms: i64) -> ClerkProfile {
        ClerkProfile {
            clerk_id: "user_1".to_owned(),
            email: " Ada@Uni.Test ".to_owned(),
            first_name: Some("Ada".to_owned()),
            last_name: Some("Lovelace".to_owned()),
            image_url: None,
            role: Role::Lecturer,
            organisation_id: Some(Uuid::nil()),
            banned: false,
            last_sign_in_at: None,
            last_active_at: None,
            updated_at_ms,
            invitation_id: None,
        }
    }

    fn stored(updated_at_ms: i64) -> user::Model {
        let created = DateTime::from_timestamp(1_700_000_000, 0).expect("a valid time");
        user::Model {
            id: Uuid::from_u128(7),
            created_at: created,
            updated_at: created,
            ..new_row(
                profile(updated_at_ms),
                "ada@uni.test".to_owned(),
                Some(Uuid::nil()),
                created,
            )
        }
    }

    #[test]
    fn a_new_user_is_created_with_a_clean_email_and_only_a_known_organisation() {
        let now = crate::service::now();
        let Ok(Decision::Create(row)) = decide(profile(10), None, false, now) else {
            panic!("a user with no row is created");
        };
        assert_eq!(row.email, "ada@uni.test");
        assert_eq!(row.organisation_id, None);
        assert_eq!((row.created_at, row.updated_at), (now, now));
        assert!(row.is_active);
    }

    #[test]
    fn an_older_profile_or_a_removed_user_is_stale() {
        let now = crate::service::now();
        let decision = decide(profile(5), Some(stored(10)), true, now);
        assert!(matches!(decision, Ok(Decision::Stale(_))), "{decision:?}");
        let removed = user::Model {
            is_active: false,
            ..stored(10)
        };
        let decision = decide(profile(20), Some(removed), true, now);
        assert!(matches!(decision, Ok(Decision::Stale(_))), "{decision:?}");
    }

    #[test]
    fn the_same_profile_later_keeps_only_its_timestamp() {
        let now = crate::service::now();
        let decision = decide(profile(20), Some(stored(10)), true, now);
        assert!(
            matches!(
                decision,
                Ok(Decision::Unchanged {
                    newer_timestamp: Some(20),
                    ..
                })
            ),
            "{decision:?}"
        );
        let decision = decide(profile(10), Some(stored(10)), true, now);
        assert!(
            matches!(
                decision,
                Ok(Decision::Unchanged {
                    newer_timestamp: None,
                    ..
                })
            ),
            "{decision:?}"
        );
    }

    #[test]
    fn a_change_keeps_the_row_identity_and_names_what_changed() {
        let now = crate::service::now();
        let current = stored(10);
        let banned = ClerkProfile {
            banned: true,
            ..profile(20)
        };
        let Ok(Decision::Update {
            updated,
            action,
            kind,
            ..
        }) = decide(banned, Some(current.clone()), true, now)
        else {
            panic!("a ban is an update");
        };
        assert_eq!(
            (action, kind),
            (Action::UserSuspended, ChangeKind::Suspended)
        );
        assert_eq!(
            (updated.id, updated.created_at, updated.updated_at),
            (current.id, current.created_at, now)
        );
        assert_eq!((updated.banned, updated.clerk_updated_at), (true, 20));

        let promoted = ClerkProfile {
            role: Role::OrgAdmin,
            ..profile(30)
        };
        let Ok(Decision::Update { action, kind, .. }) = decide(promoted, Some(current), true, now)
        else {
            panic!("a new role is an update");
        };
        assert_eq!(
            (action, kind),
            (Action::UserRoleChanged, ChangeKind::Updated)
        );
    }
}
