//! The mixed load test of issue 8: `--clients` concurrent clients for `--seconds`, each
//! looping over a mix of what userhub's users do, against a real `userhub` process in local
//! mode (its embedded Clerk emulator answers the mutations and sends their webhooks back):
//!
//! | share | request |
//! | --- | --- |
//! | 50 % | a page of 20 users with their organisations and member counts |
//! | 20 % | `me` with its organisation |
//! | 5 % | a page of organisations with five members each |
//! | 15 % | a signed Clerk webhook (`user.created`, a new user each time) |
//! | 10 % | a mutation through Clerk: `updateUser` of the client's own user, or `inviteUser` |
//!
//! Every answer is checked (HTTP 200, no GraphQL error, the data asked for). Afterwards every
//! acknowledged write is looked for in the database: each webhook's user, each client's last
//! name change, each invitation. Prints the counts and latency percentiles, and exits 1 when
//! anything failed or was lost. Run through `bench/load.sh`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;
use sea_orm::{ColumnTrait, Database, EntityTrait, QueryFilter};
use serde_json::{Value, json};
use tokio::sync::Mutex;

#[path = "common.rs"]
mod common;

struct Options {
    server: String,
    database_url: String,
    clients: usize,
    seconds: u64,
}

fn options() -> Options {
    let mut options = Options {
        server: "target/release/userhub".to_owned(),
        database_url: String::new(),
        clients: 256,
        seconds: 60,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    for pair in args.chunks(2) {
        let value = pair.get(1).cloned().unwrap_or_default();
        match pair[0].as_str() {
            "--server" => options.server = value,
            "--database-url" => options.database_url = value,
            "--clients" => options.clients = value.parse().expect("--clients N"),
            "--seconds" => options.seconds = value.parse().expect("--seconds N"),
            other => panic!("unknown option {other}"),
        }
    }
    assert!(
        !options.database_url.is_empty(),
        "--database-url is required"
    );
    options
}

const USERS_PAGE: &str = "{ users(first: 20) { totalCount edges { cursor node { id email firstName role isActive organisation { id name memberCount } } } pageInfo { hasNextPage endCursor } } }";
const ME: &str = "{ me { id email role organisation { id name } } }";
const ORGANISATIONS: &str = "{ organisations(first: 10) { totalCount nodes { id name memberCount users(first: 5) { nodes { id email } } } } }";
const UPDATE: &str = "mutation($id: ID!, $name: String!) { updateUser(id: $id, input: { firstName: $name }) { id firstName } }";
const INVITE: &str = "mutation($email: String!) { inviteUser(input: { email: $email, role: LECTURER }) { id email } }";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Kind {
    UsersPage,
    Me,
    Organisations,
    Webhook,
    UpdateUser,
    InviteUser,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::UsersPage => "users page",
            Kind::Me => "me",
            Kind::Organisations => "organisations",
            Kind::Webhook => "webhook",
            Kind::UpdateUser => "updateUser",
            Kind::InviteUser => "inviteUser",
        }
    }
}

/// What one client saw and what it was told was written.
#[derive(Default)]
struct Tally {
    latencies: HashMap<Kind, Vec<f64>>,
    errors: Vec<String>,
    webhook_users: Vec<String>,
    invitations: Vec<String>,
    /// The client's own user and the last first name userhub acknowledged for it.
    last_name_change: Option<(String, String)>,
}

struct Shared {
    address: String,
    token: String,
    http: reqwest::Client,
}

impl Shared {
    async fn graphql(&self, query: &str, variables: Value) -> Result<Value, String> {
        let response = self
            .http
            .post(format!("{}/graphql", self.address))
            .bearer_auth(&self.token)
            .json(&json!({ "query": query, "variables": variables }))
            .send()
            .await
            .map_err(|err| format!("no answer: {err}"))?;
        let status = response.status().as_u16();
        let body: Value = response
            .json()
            .await
            .map_err(|err| format!("{status}, not JSON: {err}"))?;
        if status != 200 || body.get("errors").is_some() || body["data"].is_null() {
            return Err(format!("{status}: {body}"));
        }
        Ok(body["data"].clone())
    }
}

async fn client(
    shared: Arc<Shared>,
    number: usize,
    own_user: Option<String>,
    deadline: Instant,
) -> Tally {
    let mut tally = Tally::default();
    let mut sequence = 0usize;
    while Instant::now() < deadline {
        sequence += 1;
        let roll: u32 = rand::thread_rng().gen_range(0..100);
        let started = Instant::now();
        let (kind, outcome) = match roll {
            0..50 => (
                Kind::UsersPage,
                shared
                    .graphql(USERS_PAGE, json!({}))
                    .await
                    .and_then(|data| {
                        data["users"]["edges"]
                            .is_array()
                            .then_some(())
                            .ok_or_else(|| format!("no edges: {data}"))
                    }),
            ),
            50..70 => (
                Kind::Me,
                shared.graphql(ME, json!({})).await.and_then(|data| {
                    data["me"]["id"]
                        .is_string()
                        .then_some(())
                        .ok_or_else(|| format!("no me: {data}"))
                }),
            ),
            70..75 => (
                Kind::Organisations,
                shared
                    .graphql(ORGANISATIONS, json!({}))
                    .await
                    .and_then(|data| {
                        data["organisations"]["nodes"]
                            .is_array()
                            .then_some(())
                            .ok_or_else(|| format!("no organisations: {data}"))
                    }),
            ),
            75..90 => {
                let index = number * 1_000_000 + sequence;
                let (body, headers) = common::delivery(index, "load");
                let mut request = shared
                    .http
                    .post(format!("{}/api/webhooks/clerk", shared.address))
                    .body(body);
                for (name, value) in headers {
                    request = request.header(name, value);
                }
                let outcome = match request.send().await {
                    Ok(response) if response.status() == 200 => {
                        tally.webhook_users.push(format!("user_bench_load_{index}"));
                        Ok(())
                    }
                    Ok(response) => Err(format!(
                        "webhook {}: {}",
                        response.status(),
                        response.text().await.unwrap_or_default()
                    )),
                    Err(err) => Err(format!("webhook: no answer: {err}")),
                };
                (Kind::Webhook, outcome)
            }
            _ => match &own_user {
                Some(user) => {
                    let name = format!("Load{number}n{sequence}");
                    let outcome = shared
                        .graphql(UPDATE, json!({ "id": user, "name": name }))
                        .await
                        .and_then(|data| {
                            if data["updateUser"]["firstName"] == name.as_str() {
                                tally.last_name_change = Some((user.clone(), name.clone()));
                                Ok(())
                            } else {
                                Err(format!("updateUser answered {data}"))
                            }
                        });
                    (Kind::UpdateUser, outcome)
                }
                None => {
                    let email = format!("invitee{number}n{sequence}@load.test");
                    let outcome = shared
                        .graphql(INVITE, json!({ "email": email }))
                        .await
                        .and_then(|data| match data["inviteUser"]["id"].as_str() {
                            Some(id) => {
                                tally.invitations.push(id.to_owned());
                                Ok(())
                            }
                            None => Err(format!("inviteUser answered {data}")),
                        });
                    (Kind::InviteUser, outcome)
                }
            },
        };
        let elapsed = started.elapsed().as_secs_f64() * 1000.0;
        tally.latencies.entry(kind).or_default().push(elapsed);
        if let Err(error) = outcome {
            tally.errors.push(format!("{}: {error}", kind.name()));
        }
    }
    tally
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() {
    let options = options();
    let server = common::start(&options.server, &options.database_url, true);
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(options.clients)
        .timeout(Duration::from_secs(60))
        .build()
        .expect("a client");
    let shared = Arc::new(Shared {
        address: server.address.clone(),
        token: server.token.clone(),
        http,
    });
    // The demo directory's users, each owned by one client that renames it over and over.
    let users = shared
        .graphql("{ users(first: 100) { nodes { id } } }", json!({}))
        .await
        .expect("the demo users");
    let owned: Vec<String> = users["users"]["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .filter_map(|node| node["id"].as_str().map(str::to_owned))
        .collect();

    let started = Instant::now();
    let deadline = started + Duration::from_secs(options.seconds);
    let tallies = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for number in 0..options.clients {
        let (shared, tallies) = (shared.clone(), tallies.clone());
        let own_user = owned.get(number).cloned();
        tasks.push(tokio::spawn(async move {
            let tally = client(shared, number, own_user, deadline).await;
            tallies.lock().await.push(tally);
        }));
    }
    for task in tasks {
        task.await.expect("a client");
    }
    let wall = started.elapsed().as_secs_f64();
    let rss_mib = common::rss_kib(server.child.id()) as f64 / 1024.0;

    let tallies = std::mem::take(&mut *tallies.lock().await);
    let mut by_kind: HashMap<Kind, Vec<f64>> = HashMap::new();
    let mut all = Vec::new();
    let mut errors = Vec::new();
    let (mut webhook_users, mut invitations, mut renames) = (Vec::new(), Vec::new(), Vec::new());
    for tally in tallies {
        for (kind, latencies) in tally.latencies {
            all.extend_from_slice(&latencies);
            by_kind.entry(kind).or_default().extend(latencies);
        }
        errors.extend(tally.errors);
        webhook_users.extend(tally.webhook_users);
        invitations.extend(tally.invitations);
        renames.extend(tally.last_name_change);
    }

    // Every acknowledged write, looked for in the database.
    let db = Database::connect(&options.database_url)
        .await
        .expect("the database");
    let mut lost = Vec::new();
    for chunk in webhook_users.chunks(1000) {
        let found: std::collections::HashSet<String> = entity::user::Entity::find()
            .filter(entity::user::Column::ClerkId.is_in(chunk.iter().cloned()))
            .all(&db)
            .await
            .expect("users")
            .into_iter()
            .map(|user| user.clerk_id)
            .collect();
        lost.extend(
            chunk
                .iter()
                .filter(|id| !found.contains(*id))
                .map(|id| format!("webhook user {id}")),
        );
    }
    for chunk in invitations.chunks(1000) {
        let ids: Vec<uuid::Uuid> = chunk.iter().filter_map(|id| id.parse().ok()).collect();
        let found = entity::invitation::Entity::find()
            .filter(entity::invitation::Column::Id.is_in(ids))
            .all(&db)
            .await
            .expect("invitations")
            .len();
        if found != chunk.len() {
            lost.push(format!(
                "{} of {} invitations",
                chunk.len() - found,
                chunk.len()
            ));
        }
    }
    for (user, name) in &renames {
        let id: uuid::Uuid = user.parse().expect("a user id");
        let row = entity::user::Entity::find_by_id(id)
            .one(&db)
            .await
            .expect("a user");
        let stored = row.and_then(|row| row.first_name);
        if stored.as_deref() != Some(name.as_str()) {
            lost.push(format!(
                "user {user}: last acknowledged name {name}, stored {stored:?}"
            ));
        }
    }

    all.sort_by(f64::total_cmp);
    println!(
        "LOAD: {:.0} s, {} clients: {} requests, {:.0} req/s, {} errors, {} lost writes \
         ({} acknowledged webhooks, {} invitations, {} users renamed, last names checked); \
         latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; server RSS {:.1} MiB",
        wall,
        options.clients,
        all.len(),
        all.len() as f64 / wall,
        errors.len(),
        lost.len(),
        webhook_users.len(),
        invitations.len(),
        renames.len(),
        percentile(&all, 50.0),
        percentile(&all, 99.0),
        all.last().copied().unwrap_or(0.0),
        rss_mib
    );
    let mut kinds: Vec<_> = by_kind.into_iter().collect();
    kinds.sort_by_key(|(kind, _)| *kind);
    for (kind, mut latencies) in kinds {
        latencies.sort_by(f64::total_cmp);
        println!(
            "LOAD {}: {} requests, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            kind.name(),
            latencies.len(),
            percentile(&latencies, 50.0),
            percentile(&latencies, 99.0),
            latencies.last().copied().unwrap_or(0.0)
        );
    }
    for error in errors.iter().take(10) {
        println!("error: {error}");
    }
    for missing in lost.iter().take(10) {
        println!("lost: {missing}");
    }
    if !errors.is_empty() || !lost.is_empty() {
        std::process::exit(1);
    }
}
