//! What the benchmark clients share: the server process in local mode, its RSS, and signed
//! Clerk deliveries.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use serde_json::json;

/// The webhook secret the servers are started with.
pub(crate) const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

pub(crate) struct Server {
    pub(crate) child: Child,
    pub(crate) address: String,
    /// The local admin token.
    pub(crate) token: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn start(server: &str, database_url: &str, demo_data: bool) -> Server {
    let mut child = Command::new(server)
        .env("DATABASE_URL", database_url)
        .env("CLERK_WEBHOOK_SECRET", SECRET)
        .env("USERHUB_DEMO_DATA", demo_data.to_string())
        .env("USERHUB_LISTEN", "127.0.0.1:0")
        .env("USERHUB_LOG_FORMAT", "json")
        .env("RUST_LOG", "warn,userhub::cli=info")
        .env_remove("CLERK_SECRET_KEY")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the server starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let (mut address, mut token) = (None, None);
    while address.is_none() || token.is_none() {
        let line = lines.next().expect("the server prints").expect("a line");
        if line.contains("Admin token:") {
            token = line.split_whitespace().last().map(str::to_owned);
        }
        if line.contains("listening")
            && let Some(at) = line.find("http://")
        {
            let rest = &line[at..];
            let end = rest[7..]
                .find(|c: char| c == '/' || c == '"' || c.is_whitespace())
                .map_or(rest.len(), |end| end + 7);
            address = Some(rest[..end].to_owned());
        }
    }
    // Keep draining stdout so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Server {
        child,
        address: address.expect("an address"),
        token: token.expect("a token"),
    }
}

pub(crate) fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with("VmRSS:"))
                .and_then(|line| line.split_whitespace().nth(1))
                .and_then(|kib| kib.parse().ok())
        })
        .unwrap_or(0)
}

pub(crate) fn delivery(index: usize, tag: &str) -> (String, Vec<(&'static str, String)>) {
    let id = format!("user_bench_{tag}_{index}");
    let body = json!({
        "type": "user.created",
        "object": "event",
        "data": {
            "id": id,
            "email_addresses": [{ "id": format!("idn_{index}"), "email_address": format!("{tag}{index}@bench.test") }],
            "primary_email_address_id": format!("idn_{index}"),
            "first_name": "Bench",
            "last_name": format!("User{index}"),
            "public_metadata": { "role": "member" },
            "updated_at": 1_700_000_000_000i64 + index as i64,
        },
    })
    .to_string();
    let svix_id = format!("msg_{tag}_{index}");
    let timestamp = chrono::Utc::now().timestamp();
    let signature = svix::webhooks::Webhook::new(SECRET)
        .expect("secret")
        .sign(&svix_id, timestamp, body.as_bytes())
        .expect("signature");
    (
        body,
        vec![
            ("svix-id", svix_id),
            ("svix-timestamp", timestamp.to_string()),
            ("svix-signature", signature),
            ("content-type", "application/json".to_owned()),
        ],
    )
}
