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
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(cli.config).await,
        Command::Migrate => migrate(cli.config).await,
        Command::Schema => {
            print!("{}", crate::graphql::sdl());
            Ok(())
        }
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let listen = config.listen;
    let state = AppState::build(config).await?;
    let server = Server::bind(state, listen).await?;
    let address = server.local_addr()?;
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

async fn migrate(config: Config) -> anyhow::Result<()> {
    let metrics = std::sync::Arc::new(crate::metrics::Metrics::default());
    let db = crate::db::connect(&config.database_url, 2, metrics)
        .await
        .context("cannot open the database")?;
    crate::db::migrate(&db)
        .await
        .context("cannot apply the migrations")?;
    tracing::info!("migrations applied");
    Ok(())
}
