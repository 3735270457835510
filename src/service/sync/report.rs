//! Clerk against the database, without changing either: what a sync would do.

use std::collections::{HashMap, HashSet};

use entity::{organisation, user};
use sea_orm::{EntityTrait, QuerySelect};
use uuid::Uuid;

use super::reconcile::ClerkPages;
use crate::auth::Actor;
use crate::error::AppError;
use crate::service::Services;
use crate::service::users;

/// How many samples of each kind of drift a report lists.
const SAMPLES: usize = 20;

/// A kind of drift: how many, and a few of them (emails).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Drift {
    pub count: i64,
    pub sample: Vec<String>,
}

impl Drift {
    fn add(&mut self, email: &str) {
        self.count += 1;
        if self.sample.len() < SAMPLES {
            self.sample.push(email.to_owned());
        }
    }
}

/// Clerk against the database, without changing either: what a sync would do.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub clerk_count: i64,
    /// Active users here.
    pub database_count: i64,
    /// In Clerk, not here (or here but inactive).
    pub missing_in_database: Drift,
    /// Active here, gone from Clerk.
    pub missing_in_clerk: Drift,
    /// In both, with different data.
    pub differing: Drift,
    /// Users whose `organisationId` in Clerk names no organisation here.
    pub unknown_organisations: Drift,
}

impl Report {
    /// Nothing to repair: every Clerk user is here as Clerk has them, and nobody here is gone
    /// from Clerk. (An organisation Clerk names that userhub lacks is reported, not repaired.)
    pub fn in_sync(&self) -> bool {
        self.missing_in_database.count == 0
            && self.missing_in_clerk.count == 0
            && self.differing.count == 0
    }
}

pub async fn report(services: &Services, actor: &Actor) -> Result<Report, AppError> {
    actor.require_admin()?;
    let Services { db, clerk, .. } = services;
    let mut report = Report::default();
    let mut stored: HashMap<String, user::Model> = user::Entity::find()
        .all(db)
        .await?
        .into_iter()
        .map(|user| (user.clerk_id.clone(), user))
        .collect();
    let organisations: HashSet<Uuid> = organisation::Entity::find()
        .select_only()
        .column(organisation::Column::Id)
        .into_tuple::<Uuid>()
        .all(db)
        .await?
        .into_iter()
        .collect();
    report.database_count = stored.values().filter(|user| user.is_active).count() as i64;
    let mut pages = ClerkPages::new(clerk);
    while let Some(page) = pages.next().await? {
        for clerk_user in page {
            report.clerk_count += 1;
            let Some(profile) = users::ClerkProfile::of(&clerk_user) else {
                continue;
            };
            if profile
                .organisation_id
                .is_some_and(|id| !organisations.contains(&id))
            {
                report.unknown_organisations.add(&profile.email);
            }
            match stored.remove(&profile.clerk_id) {
                Some(user) if user.is_active => {
                    let organisation = profile
                        .organisation_id
                        .filter(|id| organisations.contains(id));
                    let same = user.email == profile.email.trim().to_lowercase()
                        && user.first_name == profile.first_name
                        && user.last_name == profile.last_name
                        && user.role == profile.role
                        && user.organisation_id == organisation
                        && user.banned == profile.banned;
                    if !same {
                        report.differing.add(&user.email);
                    }
                }
                _ => report.missing_in_database.add(&profile.email),
            }
        }
    }
    let mut remaining: Vec<&user::Model> = stored.values().filter(|user| user.is_active).collect();
    remaining.sort_by(|a, b| a.email.cmp(&b.email));
    for user in remaining {
        report.missing_in_clerk.add(&user.email);
    }
    Ok(report)
}
