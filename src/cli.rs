//! The `userhub` command line: `serve` (the default), `migrate`, `schema`.

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use crate::app::{AppState, Server, shutdown_signal};
use crate::config::Config;

#[derive(Debug, Parser)]
#[command(
    name = "userhub",
    version,
    about = "GraphQL API for users and organisations, kept in step with Clerk"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub config: Config,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the API (the default).
    Serve,
    /// Apply pending database migrations, then exit.
    Migrate,
    /// Print the GraphQL schema (SDL), then exit.
    Schema,
    /// Reconcile the database with every Clerk user, showing progress; exits non-zero if the
    /// sync fails or another is already running.
    Sync,
    /// Make the Clerk user with this email an admin (in Clerk's metadata and here), to
    /// bootstrap the first admin.
    GrantAdmin {
        /// The user's email address in Clerk.
        email: String,
    },
    /// Run the Clerk emulator alone, for developing against it.
    ClerkEmulator {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8001")]
        emulator_listen: std::net::SocketAddr,
        /// Fill it with this many generated users (for benchmarks).
        #[arg(long, default_value_t = 0)]
        seed_users: usize,
    },
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(cli.config).await,
        Command::Migrate => migrate(cli.config).await,
        Command::Schema => {
            print!("{}", crate::graphql::sdl());
            Ok(())
        }
        Command::GrantAdmin { email } => grant_admin(cli.config, &email).await,
        Command::Sync => sync(cli.config).await,
        Command::ClerkEmulator {
            emulator_listen,
            seed_users,
        } => clerk_emulator(cli.config, emulator_listen, seed_users).await,
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let listen = config.listen;
    let state = AppState::build(config).await?;
    let server = Server::bind(state, listen).await?;
    let address = server.local_addr()?;
    if let Some(local) = &server.state().local {
        print_local_mode_banner(address, local);
    }
    tracing::info!(
        database = %crate::app::redact_url(&server.state().config.database_url),
        "userhub listening on http://{address} (GraphiQL at http://{address}/graphql)"
    );
    server
        .serve(shutdown_signal())
        .await
        .context("the server stopped with an error")?;
    tracing::info!("stopped");
    Ok(())
}

fn print_local_mode_banner(address: std::net::SocketAddr, local: &crate::local::LocalMode) {
    let rule = "=".repeat(78);
    println!(
        "\n{rule}\n  userhub is in LOCAL MODE: no CLERK_SECRET_KEY is set, so a built-in Clerk\n  \
         emulator stands in for Clerk at {emulator}. Nothing here reaches Clerk.\n\n  \
         GraphiQL:     http://{address}/graphql   (the admin token is already in its headers)\n  \
         Admin token:  {token}\n\n  \
         curl -s http://{address}/graphql -H 'content-type: application/json' \\\n    \
         -H 'authorization: Bearer {token}' \\\n    \
         -d '{{\"query\":\"{{ me {{ email role }} users(first: 10) {{ totalCount }} }}\"}}'\n{rule}\n",
        emulator = local.emulator.api_url(),
        token = local.admin_token,
    );
}

async fn open_database(config: &Config) -> anyhow::Result<sea_orm::DatabaseConnection> {
    let metrics = std::sync::Arc::new(crate::metrics::Metrics::default());
    let db = crate::db::connect(&config.database_url, 2, metrics)
        .await
        .context("cannot open the database")?;
    crate::db::migrate(&db)
        .await
        .context("cannot apply the migrations")?;
    Ok(db)
}

async fn migrate(config: Config) -> anyhow::Result<()> {
    open_database(&config).await?;
    tracing::info!("migrations applied");
    Ok(())
}

async fn grant_admin(config: Config, email: &str) -> anyhow::Result<()> {
    use crate::clerk::ClerkClient;
    use crate::clerk::client::RetryPolicy;
    use crate::service::Origin;
    use crate::service::users::{self, ClerkProfile};

    let Some(secret) = config.clerk_secret_key.clone() else {
        anyhow::bail!(
            "grant-admin changes a Clerk account: set CLERK_SECRET_KEY (in local mode the admin \
             token printed at start already belongs to an admin)"
        );
    };
    let clerk = ClerkClient::new(&config.clerk_api_url, secret, RetryPolicy::default());
    let found = clerk.users_by_email(email.trim()).await?;
    let user = match found.as_slice() {
        [user] => user,
        [] => anyhow::bail!("Clerk has no user with the email address {email}"),
        many => anyhow::bail!(
            "Clerk has {} users with the email address {email}: {}",
            many.len(),
            many.iter()
                .map(|user| user.id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let updated = clerk
        .merge_public_metadata(
            &user.id,
            serde_json::json!({ crate::clerk::model::ROLE_KEY: "admin" }),
        )
        .await?;
    let profile = ClerkProfile::of(&updated).context("the Clerk user has no email address")?;
    let db = open_database(&config).await?;
    let events = crate::events::EventBus::publisher(&db);
    let row = users::upsert_from_clerk(&db, &events, &Origin::cli(), profile).await?;
    println!(
        "{} ({}) is now an admin, in Clerk and in userhub (user id {}).",
        email,
        user.id,
        row.user().id
    );
    Ok(())
}

async fn sync(config: Config) -> anyhow::Result<()> {
    use std::io::Write as _;

    use crate::clerk::ClerkClient;
    use crate::clerk::client::RetryPolicy;
    use crate::service::Services;
    use crate::service::sync::{self, Launched, RunCounts};

    let Some(secret) = config.clerk_secret_key.clone() else {
        anyhow::bail!(
            "sync reads Clerk: set CLERK_SECRET_KEY (local mode's emulator lives inside `serve`)"
        );
    };
    let clerk = ClerkClient::new(&config.clerk_api_url, secret, RetryPolicy::default());
    let db = open_database(&config).await?;
    let events = crate::events::EventBus::publisher(&db);
    let services = Services::new(
        db,
        clerk,
        events,
        Default::default(),
        config.sync_stale_after(),
    );
    let (progress, mut updates) = tokio::sync::watch::channel(RunCounts::default());
    let began = std::time::Instant::now();
    let finished = match sync::launch(&services, crate::auth::Requester::Operator, progress).await?
    {
        Launched::Started { finished, .. } => finished,
        Launched::AlreadyRunning(run) => anyhow::bail!(
            "a sync is already running (run {}, started {})",
            run.id,
            run.started_at
        ),
    };
    let printer = tokio::spawn(async move {
        while updates.changed().await.is_ok() {
            let now = updates.borrow().clone();
            let rate = now.seen as f64 / began.elapsed().as_secs_f64().max(0.001);
            let bar = match now.total {
                Some(total) if total > 0 => {
                    let done = (now.seen.min(total) * 30 / total) as usize;
                    format!(
                        "[{}{}] {:>3}% ",
                        "#".repeat(done),
                        "-".repeat(30 - done),
                        now.seen * 100 / total
                    )
                }
                _ => String::new(),
            };
            eprint!(
                "\r{bar}{} seen, {} created, {} updated, {} deactivated, {:.0} users/s   ",
                now.seen, now.created, now.updated, now.deactivated, rate
            );
            let _ = std::io::stderr().flush();
            if now.finished {
                eprintln!();
                break;
            }
        }
    });
    // The run's task drops `progress` when it ends, which ends the printer.
    let finished = finished.await;
    let _ = printer.await;
    let run = finished.context("the sync's task failed")??;
    println!(
        "sync {} succeeded in {:.1}s: {} seen, {} created, {} updated, {} deactivated",
        run.id,
        began.elapsed().as_secs_f64(),
        run.seen,
        run.created,
        run.updated,
        run.deactivated
    );
    Ok(())
}

async fn clerk_emulator(
    config: Config,
    address: std::net::SocketAddr,
    seed_users: usize,
) -> anyhow::Result<()> {
    use crate::clerk::emulator::{Emulator, NewUser, SigningKey};

    let secret = config
        .clerk_secret_key
        .map(|secret| secret.expose().to_owned())
        .unwrap_or_else(|| format!("sk_test_{}", crate::clerk::emulator::random_id(32)));
    let key = std::sync::Arc::new(SigningKey::generate()?);
    let emulator = Emulator::new(secret.clone(), key);
    let roles = ["member", "lecturer", "lecturer", "org_admin"];
    for i in 0..seed_users {
        emulator
            .create_user(NewUser {
                email: format!("user{i:07}@bench.userhub.test"),
                first_name: Some(format!("First{i}")),
                last_name: Some(format!("Last{i}")),
                public_metadata: serde_json::json!({ "role": roles[i % roles.len()] }),
            })
            .map_err(|refusal| anyhow::anyhow!("cannot seed: {}", refusal.message))?;
    }
    let running = emulator.start(address).await?;
    println!(
        "Clerk emulator on {api}\n  CLERK_API_URL={api}\n  CLERK_SECRET_KEY={secret}\n\n\
         Mint a session token:  curl -s http://{root}/__emulator/session_tokens -H 'authorization: Bearer {secret}' \\\n  \
         -H 'content-type: application/json' -d '{{\"user_id\":\"user_...\"}}'",
        api = running.api_url(),
        root = running.address,
    );
    shutdown_signal().await;
    Ok(())
}
