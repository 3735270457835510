//! Local mode: with no Clerk account configured, userhub embeds the Clerk emulator so that
//! everything works on a bare machine, says so loudly, and hands out an admin session token.
//!
//! The emulator keeps its users in memory, so at each start it is rebuilt from the database's
//! users (same Clerk ids); an empty database gets a small demo directory instead.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use entity::role::Role;
use serde_json::json;

use crate::auth::Requester;
use crate::clerk::emulator::{Emulator, NewUser, RunningEmulator, SigningKey, TokenOptions};
use crate::clerk::model::{ORGANISATION_KEY, ROLE_KEY};
use crate::service::organisations::{self, NewOrganisation};
use crate::service::users::{self, ClerkProfile};
use crate::service::{Origin, Services, Source};

/// How long the printed admin token lasts. The emulator's key is new at every start, so a
/// token never outlives the process anyway.
const ADMIN_TOKEN_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

pub const LOCAL_ADMIN_EMAIL: &str = "admin@userhub.local";

pub struct LocalMode {
    pub emulator: RunningEmulator,
    pub admin_token: String,
}

/// Starts the embedded emulator on a free loopback port.
pub async fn start_emulator() -> anyhow::Result<RunningEmulator> {
    let key = SigningKey::generate().context("cannot make the emulator's signing key")?;
    let secret = format!("sk_local_{}", crate::clerk::emulator::random_id(32));
    Emulator::new(secret, Arc::new(key))
        .start(([127, 0, 0, 1], 0).into())
        .await
        .context("cannot start the embedded Clerk emulator")
}

fn local_origin() -> Origin {
    Origin {
        actor: "system".to_owned(),
        source: Source::Sync,
        correlation_id: Some("local-mode".to_owned()),
    }
}

/// Fills the emulator (and, for an empty database, the database), makes sure an admin exists,
/// and signs a token for them.
pub async fn prepare(
    services: &Services,
    emulator: RunningEmulator,
    demo_data: bool,
) -> anyhow::Result<LocalMode> {
    let Services { db, events, .. } = services;
    let clerk = &emulator.emulator;
    let known = users::all(db).await?;
    if known.is_empty() && demo_data {
        seed_demo_directory(services, clerk).await?;
    }
    // Users deleted in Clerk stay deleted: only the active ones go back into the emulator.
    for user in known.iter().filter(|user| user.is_active) {
        let metadata = json!({
            ROLE_KEY: user.role.as_str(),
            ORGANISATION_KEY: user.organisation_id.map(|id| id.to_string()),
        });
        clerk
            .restore_user(
                &user.clerk_id,
                NewUser {
                    email: user.email.clone(),
                    first_name: user.first_name.clone(),
                    last_name: user.last_name.clone(),
                    public_metadata: metadata,
                },
            )
            .map_err(|refusal| {
                anyhow::anyhow!("cannot restore {}: {}", user.email, refusal.message)
            })?;
        if user.banned {
            clerk.set_banned(&user.clerk_id, true);
        }
    }

    let admin = match users::all(db)
        .await?
        .into_iter()
        .find(|user| user.role == Role::Admin && user.is_active && !user.banned)
    {
        Some(admin) => admin,
        None => {
            let created = clerk
                .create_user(NewUser {
                    email: LOCAL_ADMIN_EMAIL.to_owned(),
                    first_name: Some("Local".to_owned()),
                    last_name: Some("Admin".to_owned()),
                    public_metadata: json!({ ROLE_KEY: "admin" }),
                })
                .map_err(|refusal| {
                    anyhow::anyhow!("cannot create the local admin: {}", refusal.message)
                })?;
            let profile =
                ClerkProfile::of(&created).context("the local admin has no email address")?;
            users::upsert_from_clerk(db, events, &local_origin(), profile)
                .await?
                .user()
                .clone()
        }
    };
    let admin_token = clerk.mint_session_token(
        &admin.clerk_id,
        TokenOptions {
            ttl: ADMIN_TOKEN_TTL,
            ..TokenOptions::default()
        },
    )?;
    Ok(LocalMode {
        emulator,
        admin_token,
    })
}

/// A few organisations and a few dozen people, enough to see pagination, roles and filters.
async fn seed_demo_directory(services: &Services, clerk: &Emulator) -> anyhow::Result<()> {
    const ORGANISATIONS: [&str; 3] = [
        "School of Computing",
        "School of Mathematics",
        "Faculty of Arts",
    ];
    const FIRST: [&str; 12] = [
        "Ada",
        "Alan",
        "Grace",
        "Edsger",
        "Barbara",
        "Donald",
        "Katherine",
        "John",
        "Frances",
        "Tim",
        "Margaret",
        "Dennis",
    ];
    const LAST: [&str; 12] = [
        "Lovelace",
        "Turing",
        "Hopper",
        "Dijkstra",
        "Liskov",
        "Knuth",
        "Johnson",
        "McCarthy",
        "Allen",
        "Berners-Lee",
        "Hamilton",
        "Ritchie",
    ];
    let origin = local_origin();
    let mut organisation_ids = Vec::new();
    for name in ORGANISATIONS {
        let org = organisations::create(
            services,
            Requester::Operator,
            &origin,
            NewOrganisation {
                name: name.to_owned(),
                slug: None,
                standard_hours: None,
            },
        )
        .await?;
        organisation_ids.push(org.id);
    }
    for i in 0..36 {
        let organisation = organisation_ids[i % organisation_ids.len()];
        let role = match i {
            0..=2 => "org_admin",
            _ if i % 3 == 0 => "member",
            _ => "lecturer",
        };
        let first = FIRST[i % FIRST.len()];
        let last = LAST[(i * 5) % LAST.len()];
        let created = clerk
            .create_user(NewUser {
                email: format!("{}.{}{}@demo.userhub.local", first.to_lowercase(), last.to_lowercase(), i),
                first_name: Some(first.to_owned()),
                last_name: Some(last.to_owned()),
                public_metadata: json!({ ROLE_KEY: role, ORGANISATION_KEY: organisation.to_string() }),
            })
            .map_err(|refusal| anyhow::anyhow!("cannot create a demo user: {}", refusal.message))?;
        if let Some(profile) = ClerkProfile::of(&created) {
            users::upsert_from_clerk(&services.db, &services.events, &origin, profile).await?;
        }
    }
    tracing::info!("local mode: a demo directory of 3 organisations and 36 users was created");
    Ok(())
}
