//! W2 (webhook ingest) and W3 (subscription fan-out) against a real `userhub` process.
//!
//! Starts the release binary in local mode on the given database with a known webhook secret,
//! then:
//! - W2: posts `--events` distinct, svix-signed `user.created` deliveries with `--concurrency`
//!   clients, reports events per second, and checks every one was written;
//! - W3: for each subscriber count, starts fresh servers (one per 12,500 subscribers, replicas
//!   on one database) and a subscriber process of this program for each, which opens its share
//!   of graphql-transport-ws subscriptions to `userChanged`; measures the servers' RSS before
//!   and after (per subscriber), then sends webhooks one at a time to the first replica and
//!   measures, for every subscriber, the wall-clock time from the POST to the event's arrival
//!   (p50, p99, max).
//!
//! Run through `bench/live.sh`, which builds it and writes BENCHMARKS.md.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use common::Server;

#[path = "common.rs"]
mod common;

struct Options {
    server: String,
    database_url: String,
    events: usize,
    concurrency: usize,
    subscribers: Vec<usize>,
    rounds: usize,
}

fn options() -> Options {
    let mut options = Options {
        server: "target/release/userhub".to_owned(),
        database_url: "sqlite::memory:".to_owned(),
        events: 5_000,
        concurrency: 32,
        subscribers: vec![1_000, 10_000],
        rounds: 20,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    for pair in args.chunks(2) {
        let value = pair.get(1).cloned().unwrap_or_default();
        match pair[0].as_str() {
            "--server" => options.server = value,
            "--database-url" => options.database_url = value,
            "--events" => options.events = value.parse().expect("--events N"),
            "--concurrency" => options.concurrency = value.parse().expect("--concurrency N"),
            "--subscribers" => {
                options.subscribers = value
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(|s| s.parse().expect("--subscribers N,M"))
                    .collect();
            }
            "--rounds" => options.rounds = value.parse().expect("--rounds N"),
            other => panic!("unknown option {other}"),
        }
    }
    options
}

async fn post(client: &reqwest::Client, address: &str, index: usize, tag: &str) -> bool {
    let (body, headers) = common::delivery(index, tag);
    let mut request = client
        .post(format!("{address}/api/webhooks/clerk"))
        .body(body);
    for (name, value) in headers {
        request = request.header(name, value);
    }
    matches!(request.send().await, Ok(response) if response.status() == 200)
}

async fn total_users(client: &reqwest::Client, server: &Server) -> u64 {
    let answer: Value = client
        .post(format!("{}/graphql", server.address))
        .bearer_auth(&server.token)
        .json(&json!({ "query": "{ users(first: 1) { totalCount } }" }))
        .send()
        .await
        .expect("an answer")
        .json()
        .await
        .expect("JSON");
    answer["data"]["users"]["totalCount"].as_u64().unwrap_or(0)
}

/// A counter from the server's `/metrics`, if it has it.
async fn metric(client: &reqwest::Client, server: &Server, name: &str) -> Option<u64> {
    let text = client
        .get(format!("{}/metrics", server.address))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse().ok())
}

/// Whether every delivery was accepted and written.
async fn ingest(options: &Options, server: &Server) -> bool {
    let client = reqwest::Client::new();
    let before = total_users(&client, server).await;
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..options.concurrency {
        let (client, next, address) = (client.clone(), next.clone(), server.address.clone());
        let events = options.events;
        workers.push(tokio::spawn(async move {
            let mut failed = 0usize;
            loop {
                let index = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if index >= events {
                    return failed;
                }
                if !post(&client, &address, index, "ingest").await {
                    failed += 1;
                }
            }
        }));
    }
    let mut failed = 0;
    for worker in workers {
        failed += worker.await.expect("a worker");
    }
    let elapsed = started.elapsed().as_secs_f64();
    let written = total_users(&client, server).await - before;
    // How many transactions applied them (group commit); a build without it has no such metric.
    if let Some(batches) = metric(&client, server, "userhub_webhook_batches_total").await {
        println!(
            "W2 transactions: {batches} for {} deliveries, {:.1} each",
            options.events,
            options.events as f64 / batches.max(1) as f64
        );
    }
    println!(
        "W2 ingest: {} events, {} clients, {:.2} s, {:.0} events/s, {} failed, {} written",
        options.events,
        options.concurrency,
        elapsed,
        options.events as f64 / elapsed,
        failed,
        written
    );
    failed == 0 && written == options.events as u64
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A graphql-transport-ws connection, initialised and acknowledged.
async fn connect(address: &str, token: &str) -> Socket {
    let url = format!("{}/graphql", address.replace("http://", "ws://"));
    let mut request = url.into_client_request().expect("a request");
    request.headers_mut().insert(
        "sec-websocket-protocol",
        "graphql-transport-ws".parse().expect("a header"),
    );
    // tungstenite zeroes its whole read buffer before every read: at the default 128 KiB, a
    // fifth of the machine went to the load generator's memset with 10,000 sockets, and
    // delivery times measured that. The messages read here are under 1 KiB.
    let config = WebSocketConfig::default().read_buffer_size(4 * 1024);
    let (mut socket, _) =
        tokio_tungstenite::connect_async_with_config(request, Some(config), false)
            .await
            .expect("the upgrade");
    let send = |message: Value| Message::Text(message.to_string().into());
    socket
        .send(send(json!({ "type": "connection_init", "payload": { "authorization": format!("Bearer {token}") } })))
        .await
        .expect("init");
    loop {
        if let Some(Ok(Message::Text(text))) = socket.next().await
            && text.contains("connection_ack")
        {
            break;
        }
    }
    socket
}

async fn subscribe(socket: &mut Socket) {
    let message = json!({ "id": "1", "type": "subscribe", "payload": { "query": "subscription { userChanged { kind user { id email } } }" } });
    socket
        .send(Message::Text(message.to_string().into()))
        .await
        .expect("subscribe");
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// How many subscribers one server and one subscriber process hold: this machine allows a
/// process 20,000 open files (`ulimit -Hn`), one per socket, so a larger run is spread over
/// several replicas on one database (PostgreSQL), as a deployment would spread it, each with
/// its own subscriber process.
const SUBSCRIBERS_PER_PROCESS: usize = 12_500;

/// Wall-clock milliseconds: the subscriber processes time arrivals against the parent's POST.
fn now_ms() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |since| since.as_secs_f64() * 1000.0)
}

/// A subscriber process: holds `count` subscriptions to one server and answers the parent's
/// commands on stdin (`subscribe`, `sent <ms>`) with one line each on stdout.
async fn subscriber_process(address: String, token: String, count: usize) {
    let (command_tx, mut commands) = tokio::sync::mpsc::unbounded_channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::stdin().lines().map_while(Result::ok) {
            if command_tx.send(line).is_err() {
                return;
            }
        }
    });
    let mut sockets = Vec::with_capacity(count);
    let mut opening = futures_util::stream::iter(0..count)
        .map(|_| connect(&address, &token))
        .buffer_unordered(64);
    while let Some(socket) = opening.next().await {
        sockets.push(socket);
    }
    println!("connected");
    // Connections first, then their subscriptions: the two costs are measured apart.
    while commands
        .recv()
        .await
        .is_some_and(|line| line != "subscribe")
    {}
    for socket in &mut sockets {
        subscribe(socket).await;
    }
    println!("subscribed");
    let (arrived, mut arrivals) = tokio::sync::mpsc::unbounded_channel::<f64>();
    for mut socket in sockets {
        let arrived = arrived.clone();
        tokio::spawn(async move {
            while let Some(Ok(message)) = socket.next().await {
                if let Message::Text(text) = message
                    && text.contains("\"next\"")
                {
                    let _ = arrived.send(now_ms());
                }
            }
        });
    }
    drop(arrived);
    while let Some(line) = commands.recv().await {
        let Some(sent) = line
            .strip_prefix("sent ")
            .and_then(|ms| ms.parse::<f64>().ok())
        else {
            return;
        };
        let mut latencies = Vec::with_capacity(count);
        while latencies.len() < count {
            match tokio::time::timeout(Duration::from_secs(30), arrivals.recv()).await {
                Ok(Some(at)) => latencies.push(format!("{:.2}", at - sent)),
                _ => break,
            }
        }
        println!("round {}", latencies.join(" "));
    }
}

/// A subscriber process started by the parent, with its stdin and its stdout's lines.
struct Subscribers {
    child: std::process::Child,
    commands: std::process::ChildStdin,
    lines: tokio::sync::mpsc::UnboundedReceiver<String>,
}

impl Subscribers {
    fn start(server: &Server, count: usize) -> Self {
        let mut child = std::process::Command::new(std::env::current_exe().expect("this program"))
            .args([
                "--subscriber-process",
                &server.address,
                &server.token,
                &count.to_string(),
            ])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("a subscriber process");
        let commands = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        let (line_tx, lines) = tokio::sync::mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in
                std::io::BufRead::lines(std::io::BufReader::new(stdout)).map_while(Result::ok)
            {
                if line_tx.send(line).is_err() {
                    return;
                }
            }
        });
        Self {
            child,
            commands,
            lines,
        }
    }

    fn tell(&mut self, command: &str) {
        use std::io::Write;
        writeln!(self.commands, "{command}").expect("the subscriber process listens");
        self.commands
            .flush()
            .expect("the subscriber process listens");
    }

    async fn answer(&mut self) -> String {
        self.lines
            .recv()
            .await
            .expect("the subscriber process answers")
    }
}

impl Drop for Subscribers {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn fan_out(options: &Options, subscribers: usize) {
    let replicas = subscribers.div_ceil(SUBSCRIBERS_PER_PROCESS).max(1);
    assert!(
        replicas == 1 || !options.database_url.starts_with("sqlite"),
        "{subscribers} subscribers need {replicas} replicas on one database: use PostgreSQL"
    );
    // Fresh servers for each size, so RSS is measured from the same start; one after the
    // other, so the first has migrated the database before the next starts.
    let servers: Vec<Server> = (0..replicas)
        .map(|_| common::start(&options.server, &options.database_url, false))
        .collect();
    let rss = || -> u64 {
        servers
            .iter()
            .map(|server| common::rss_kib(server.child.id()))
            .sum()
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle_rss = rss();
    let mut processes: Vec<Subscribers> = servers
        .iter()
        .enumerate()
        .map(|(index, server)| {
            let share = subscribers / replicas + usize::from(index < subscribers % replicas);
            Subscribers::start(server, share)
        })
        .collect();
    for process in &mut processes {
        assert_eq!(process.answer().await, "connected");
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let connected_rss = rss();
    for process in &mut processes {
        process.tell("subscribe");
    }
    for process in &mut processes {
        assert_eq!(process.answer().await, "subscribed");
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let loaded_rss = rss();
    let per = |from: u64, to: u64| to.saturating_sub(from) as f64 / subscribers as f64;
    let per_subscriber = per(idle_rss, loaded_rss) * 1024.0;

    // Every webhook goes to the first replica; the others hear of it through NOTIFY.
    let client = reqwest::Client::new();
    let mut latencies = Vec::new();
    for round in 0..options.rounds {
        let sent = format!("sent {:.3}", now_ms());
        for process in &mut processes {
            process.tell(&sent);
        }
        assert!(
            post(
                &client,
                &servers[0].address,
                round,
                &format!("fan{subscribers}")
            )
            .await
        );
        let mut received = 0;
        for process in &mut processes {
            let answer = process.answer().await;
            for latency in answer.split_whitespace().skip(1) {
                latencies.push(latency.parse::<f64>().expect("a latency"));
                received += 1;
            }
        }
        if received < subscribers {
            println!(
                "W3 round {round}: only {received} of {subscribers} subscribers received the event"
            );
        }
    }
    latencies.sort_by(f64::total_cmp);
    println!(
        "W3 fan-out: {} subscribers, {} servers, {} events, delivery p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; RSS idle {} KiB, with subscribers {} KiB, {:.1} KiB per subscriber ({:.1} KiB the connection, {:.1} KiB the subscription)",
        subscribers,
        replicas,
        options.rounds,
        percentile(&latencies, 50.0),
        percentile(&latencies, 99.0),
        latencies.last().copied().unwrap_or(0.0),
        idle_rss,
        loaded_rss,
        per_subscriber / 1024.0,
        per(idle_rss, connected_rss),
        per(connected_rss, loaded_rss),
    );
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [flag, address, token, count] = args.as_slice()
        && flag == "--subscriber-process"
    {
        subscriber_process(
            address.clone(),
            token.clone(),
            count.parse().expect("a count"),
        )
        .await;
        return;
    }
    let options = options();
    if options.events > 0 {
        let server = common::start(&options.server, &options.database_url, false);
        if !ingest(&options, &server).await {
            eprintln!("W2 FAILED: every delivery must be accepted and written");
            // Exiting skips destructors: stop the server first.
            drop(server);
            std::process::exit(1);
        }
    }
    for &subscribers in &options.subscribers {
        fan_out(&options, subscribers).await;
    }
}
