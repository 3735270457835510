//! Per-client rate limits for `/graphql` and the webhook route: a token bucket per client
//! address, answered with 429 and `Retry-After` when empty.
//!
//! A client is its peer address, or behind `USERHUB_TRUSTED_PROXY_HOPS` proxies the address the
//! outermost of them appended to `X-Forwarded-For` (`client_of`): entries further left were
//! written by the client and prove nothing. An IPv6 client is its /64, which one host is
//! usually given whole. The buckets live in this process: with several replicas a client may
//! make up to the limit at each of them.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::metrics::Metrics;

/// Past this many clients, buckets that have refilled completely are forgotten (a full bucket
/// and no bucket mean the same), so memory follows the clients active in the last moments.
const MAX_REMEMBERED_CLIENTS: usize = 10_000;

/// The route a limit guards; it decides the shape of the refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guarded {
    /// `/graphql`: refused as a GraphQL response with `extensions.code`.
    Graphql,
    /// `/api/webhooks/clerk`: refused as userhub's HTTP error body.
    Webhooks,
}

pub struct RateLimiter {
    guarded: Guarded,
    per_second: f64,
    burst: f64,
    proxy_hops: usize,
    buckets: Mutex<Buckets>,
    metrics: Arc<Metrics>,
}

struct Buckets {
    clients: HashMap<IpAddr, Bucket>,
    pruned: Instant,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

impl RateLimiter {
    /// `None` when `per_minute` is 0: no limit.
    pub fn new(
        guarded: Guarded,
        per_minute: u32,
        burst: u32,
        proxy_hops: usize,
        metrics: Arc<Metrics>,
    ) -> Option<Arc<RateLimiter>> {
        (per_minute > 0).then(|| {
            Arc::new(RateLimiter {
                guarded,
                per_second: f64::from(per_minute) / 60.0,
                burst: f64::from(burst.max(1)),
                proxy_hops,
                buckets: Mutex::new(Buckets {
                    clients: HashMap::new(),
                    pruned: Instant::now(),
                }),
                metrics,
            })
        })
    }

    /// Takes a token for `client`, or says how long until one is there.
    fn take(&self, client: IpAddr, now: Instant) -> Result<(), Duration> {
        // A panic while holding the lock leaves the map usable: every bucket is valid alone.
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let Buckets { clients, pruned } = &mut *buckets;
        // At most once a second, so that many new clients cannot make every request a scan.
        if clients.len() >= MAX_REMEMBERED_CLIENTS
            && now.saturating_duration_since(*pruned) >= Duration::from_secs(1)
        {
            clients.retain(|_, bucket| self.refilled(*bucket, now).tokens < self.burst);
            *pruned = now;
        }
        let bucket = clients.entry(client).or_insert(Bucket {
            tokens: self.burst,
            updated: now,
        });
        *bucket = self.refilled(*bucket, now);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                (1.0 - bucket.tokens) / self.per_second,
            ))
        }
    }

    fn refilled(&self, bucket: Bucket, now: Instant) -> Bucket {
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        Bucket {
            tokens: (bucket.tokens + elapsed * self.per_second).min(self.burst),
            updated: now,
        }
    }

    fn client(&self, request: &Request) -> Option<IpAddr> {
        let peer = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(address)| *address);
        client_of(request.headers(), peer, self.proxy_hops)
    }

    fn refusal(&self, wait: Duration) -> Response {
        let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        let seconds = seconds.max(1);
        let message = format!("too many requests from this client: try again in {seconds} s");
        let body = match self.guarded {
            Guarded::Graphql => json!({
                "errors": [{ "message": message, "extensions": { "code": "RATE_LIMITED" } }]
            }),
            Guarded::Webhooks => json!({ "error": { "code": "RATE_LIMITED", "message": message } }),
        };
        let mut response = (StatusCode::TOO_MANY_REQUESTS, axum::Json(body)).into_response();
        if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
    }
}

/// The client a request comes from, as limits key it: the peer, or behind `proxy_hops`
/// trusted proxies the address the outermost one appended to `X-Forwarded-For` (the
/// `proxy_hops`-th entry from the right, every header line read in order); IPv6 as its /64.
/// `None` without a peer (an in-process call). A list shorter than the hops (a request that
/// did not pass every proxy) keys on its left-most entry, the furthest address known.
pub fn client_of(
    headers: &HeaderMap,
    peer: Option<SocketAddr>,
    proxy_hops: usize,
) -> Option<IpAddr> {
    let peer = peer?.ip();
    if proxy_hops == 0 {
        return Some(key(peer));
    }
    let forwarded: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .collect();
    let appended = forwarded
        .len()
        .checked_sub(proxy_hops)
        .and_then(|index| forwarded.get(index))
        .or(forwarded.first());
    let client = appended
        .and_then(|entry| parse_forwarded(entry))
        .unwrap_or(peer);
    Some(key(client))
}

/// An `X-Forwarded-For` entry: an address, possibly with a port (`1.2.3.4:5`, `[::1]:5`).
fn parse_forwarded(entry: &str) -> Option<IpAddr> {
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|address| address.ip()))
}

/// IPv4 as it is (IPv4-mapped IPv6 included); IPv6 by its /64.
fn key(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(Ipv6Addr::from(prefix))
            }
        },
    }
}

/// The middleware: a request without a known client address (an in-process call) passes.
pub async fn limit(
    State(limiter): State<Arc<RateLimiter>>,
    request: Request,
    next: Next,
) -> Response {
    if let Some(client) = limiter.client(&request)
        && let Err(wait) = limiter.take(client, Instant::now())
    {
        let counter = match limiter.guarded {
            Guarded::Graphql => &limiter.metrics.rate_limited_graphql,
            Guarded::Webhooks => &limiter.metrics.rate_limited_webhooks,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        return limiter.refusal(wait);
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(per_minute: u32, burst: u32) -> Arc<RateLimiter> {
        RateLimiter::new(
            Guarded::Graphql,
            per_minute,
            burst,
            0,
            Arc::new(Metrics::default()),
        )
        .expect("a limiter")
    }

    #[test]
    fn a_burst_is_allowed_then_the_rate_and_each_client_has_its_own_bucket() {
        let limiter = limiter(60, 3);
        let start = Instant::now();
        let alice: IpAddr = [10, 0, 0, 1].into();
        let bob: IpAddr = [10, 0, 0, 2].into();
        for _ in 0..3 {
            assert_eq!(limiter.take(alice, start), Ok(()));
        }
        let wait = limiter.take(alice, start).expect_err("the bucket is empty");
        assert!(wait > Duration::from_millis(900) && wait <= Duration::from_secs(1));
        assert_eq!(limiter.take(bob, start), Ok(()));
        // One a second refills one token.
        assert_eq!(limiter.take(alice, start + Duration::from_secs(1)), Ok(()));
        assert!(limiter.take(alice, start + Duration::from_secs(1)).is_err());
    }

    #[test]
    fn refilled_buckets_are_forgotten_once_there_are_many_clients() {
        let limiter = limiter(60, 2);
        let start = Instant::now() + Duration::from_secs(2);
        for i in 0..MAX_REMEMBERED_CLIENTS as u32 {
            assert_eq!(limiter.take(IpAddr::from(i.to_be_bytes()), start), Ok(()));
        }
        let clients = |limiter: &RateLimiter| limiter.buckets.lock().expect("lock").clients.len();
        assert_eq!(clients(&limiter), MAX_REMEMBERED_CLIENTS);
        // A second later every one of them is full again, so a new client clears them away.
        let later = start + Duration::from_secs(1);
        assert_eq!(limiter.take([192, 0, 2, 1].into(), later), Ok(()));
        assert_eq!(clients(&limiter), 1);
    }

    #[test]
    fn the_client_is_what_the_trusted_proxy_appended_and_ipv6_is_keyed_by_its_64() {
        let peer: SocketAddr = "10.0.0.9:40000".parse().expect("an address");
        let headers = |values: &[&str]| {
            let mut headers = HeaderMap::new();
            for value in values {
                headers.append("x-forwarded-for", value.parse().expect("a header"));
            }
            headers
        };
        let ip = |text: &str| text.parse::<IpAddr>().expect("an address");
        // No proxy trusted: the header is the client's word, ignored.
        assert_eq!(
            client_of(&headers(&["203.0.113.7"]), Some(peer), 0),
            Some(ip("10.0.0.9"))
        );
        // One proxy: it appended the real client last; the client forged the first entry.
        let forged = headers(&["1.1.1.1, 198.51.100.4"]);
        assert_eq!(client_of(&forged, Some(peer), 1), Some(ip("198.51.100.4")));
        // Two proxies, over two header lines.
        let two = headers(&["1.1.1.1, 198.51.100.4", "172.16.0.2"]);
        assert_eq!(client_of(&two, Some(peer), 2), Some(ip("198.51.100.4")));
        // Fewer entries than hops: the furthest one known; none: the peer.
        assert_eq!(
            client_of(&headers(&["198.51.100.4"]), Some(peer), 3),
            Some(ip("198.51.100.4"))
        );
        assert_eq!(
            client_of(&HeaderMap::new(), Some(peer), 1),
            Some(ip("10.0.0.9"))
        );
        // IPv6: every address of one /64 is one client; a port is allowed; mapped IPv4 is IPv4.
        let v6 = |text: &str| client_of(&headers(&[text]), Some(peer), 1);
        assert_eq!(
            v6("2001:db8:1:2::1"),
            v6("2001:db8:1:2:ffff:ffff:ffff:ffff")
        );
        assert_eq!(v6("2001:db8:1:2::1"), Some(ip("2001:db8:1:2::")));
        assert_ne!(v6("2001:db8:1:2::1"), v6("2001:db8:1:3::1"));
        assert_eq!(v6("[2001:db8:1:2::1]:443"), Some(ip("2001:db8:1:2::")));
        assert_eq!(v6("::ffff:192.0.2.1"), Some(ip("192.0.2.1")));
        assert_eq!(v6("not an address"), Some(ip("10.0.0.9")));
    }

    #[test]
    fn no_limit_is_none() {
        assert!(
            RateLimiter::new(Guarded::Webhooks, 0, 10, 0, Arc::new(Metrics::default())).is_none()
        );
    }
}
