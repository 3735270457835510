//! A sync's work: every Clerk user brought in, a page at a time, then the users Clerk no longer
//! has deactivated (docs/architecture.md, rule 4).

use std::collections::HashSet;

use entity::{sync_run, user};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use tokio::sync::watch;
use uuid::Uuid;

use super::{PAGE_SIZE, RunCounts, heartbeat, origin};
use crate::clerk::ClerkClient;
use crate::error::AppError;
use crate::events::{EventBus, SyncProgress};
use crate::service::users;
use crate::service::{Origin, Write};

pub(super) async fn reconcile(
    db: &DatabaseConnection,
    clerk: &ClerkClient,
    events: &EventBus,
    started: &sync_run::Model,
    progress: &watch::Sender<RunCounts>,
) -> Result<(), AppError> {
    let run_id = started.id;
    let origin = origin(run_id);
    let total = clerk.count_users().await.ok();
    progress.send_modify(|progress| {
        progress.run_id = Some(run_id);
        progress.total = total;
    });
    // Only users that existed before the pass began can be missing from it: one created while
    // it ran (a sign-up's `user.created`) may come after the page that would have listed it.
    let existing: HashSet<Uuid> = user::Entity::find()
        .select_only()
        .column(user::Column::Id)
        .filter(user::Column::IsActive.eq(true))
        .into_tuple::<Uuid>()
        .all(db)
        .await?
        .into_iter()
        .collect();
    let mut seen: HashSet<String> = HashSet::new();
    let mut pages = ClerkPages::new(clerk);
    let mut next_page = pages.next().await?;
    while let Some(page) = next_page {
        let profiles: Vec<_> = page.iter().filter_map(users::ClerkProfile::of).collect();
        seen.extend(page.into_iter().map(|user| user.id));
        // The next page's cursor is this page's last id, so Clerk can be read while this page
        // is written: the sync takes the longer of the two sides, not their sum.
        let (applied, fetched) =
            tokio::join!(apply_page(db, events, &origin, profiles), pages.next());
        let (created, updated) = applied?;
        next_page = fetched?;
        progress.send_modify(|progress| {
            progress.seen = seen.len() as i64;
            progress.created += created;
            progress.updated += updated;
        });
        let snapshot = progress.borrow().clone();
        heartbeat(db, run_id, &snapshot).await?;
        let mut run = started.clone();
        run.seen = snapshot.seen;
        run.created = snapshot.created;
        run.updated = snapshot.updated;
        run.heartbeat_at = crate::service::now();
        events
            .publish_sync_progress(
                db,
                SyncProgress {
                    run,
                    total: snapshot.total,
                },
            )
            .await;
    }

    // Only now, after a complete pass, is "not in Clerk" known to mean "deleted in Clerk", and
    // only for users that were here when it began.
    let gone: Vec<user::Model> = user::Entity::find()
        .filter(user::Column::IsActive.eq(true))
        .order_by_asc(user::Column::Id)
        .all(db)
        .await?
        .into_iter()
        .filter(|user| existing.contains(&user.id) && !seen.contains(&user.clerk_id))
        .collect();
    let deactivated = gone.len() as i64;
    if !gone.is_empty() {
        let mut write = Write::begin(db, &origin).await?;
        for user in gone {
            users::apply_deactivation(&mut write, user).await?;
        }
        write.commit(events).await?;
    }
    progress.send_modify(|progress| progress.deactivated = deactivated);
    Ok(())
}

/// Clerk's users a page at a time, oldest first, by cursor (`starting_after`): offsets time
/// out on large instances. A page shorter than asked for is the last.
pub(super) struct ClerkPages<'a> {
    clerk: &'a ClerkClient,
    after: Option<String>,
    done: bool,
}

impl<'a> ClerkPages<'a> {
    pub(super) fn new(clerk: &'a ClerkClient) -> ClerkPages<'a> {
        ClerkPages {
            clerk,
            after: None,
            done: false,
        }
    }

    pub(super) async fn next(
        &mut self,
    ) -> Result<Option<Vec<crate::clerk::model::ClerkUser>>, AppError> {
        if self.done {
            return Ok(None);
        }
        let mut query = vec![
            ("limit", PAGE_SIZE.to_string()),
            ("order_by", "+created_at".to_owned()),
        ];
        if let Some(after) = &self.after {
            query.push(("starting_after", after.clone()));
        }
        let page = self.clerk.list_users(&query).await?;
        self.done = page.len() < PAGE_SIZE;
        self.after = page.last().map(|user| user.id.clone());
        if self.after.is_none() {
            self.done = true;
        }
        Ok(Some(page))
    }
}

/// Applies one page in one transaction: what it needs is read in three queries
/// (`users::Bringing`), and only what changed is written.
async fn apply_page(
    db: &DatabaseConnection,
    events: &EventBus,
    origin: &Origin,
    mut profiles: Vec<users::ClerkProfile>,
) -> Result<(i64, i64), AppError> {
    if profiles.is_empty() {
        return Ok((0, 0));
    }
    let mut write = Write::begin(db, origin).await?;
    let mut bringing = users::Bringing::read(
        write.conn(),
        profiles.iter().map(|p| p.clerk_id.clone()).collect(),
        &profiles.iter().collect::<Vec<_>>(),
    )
    .await?;
    // Clerk-id order, as webhook batches write, so the two take row locks in one order.
    profiles.sort_by(|a, b| a.clerk_id.cmp(&b.clerk_id));
    let mut updated = 0;
    for profile in profiles {
        if let users::Brought::Updated = bringing.bring(&mut write, profile, origin).await? {
            updated += 1;
        }
    }
    let created = bringing.finish(&mut write).await? as i64;
    write.commit(events).await?;
    Ok((created, updated))
}
