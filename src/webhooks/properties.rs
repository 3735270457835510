//! The verifier and the event parser under arbitrary input, as `receive` uses them: nothing
//! panics, nothing unsigned or altered is accepted, and whatever a valid signature covers is
//! either a Clerk event or a clear refusal.
//!
//! Each property runs `PROPTEST_CASES` cases (4,096 unless set) and prints how many it ran;
//! `PROPTEST_CASES=1000000 cargo test --lib webhooks::properties -- --nocapture` for a long run.

use std::sync::atomic::{AtomicU64, Ordering};

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use proptest::prelude::*;

use super::{Verifier, event};
use crate::config::Secret;

const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

fn verifier() -> Verifier {
    Verifier::new(&Secret::new(SECRET)).expect("a whsec secret")
}

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|cases| cases.parse().ok())
        .unwrap_or(4096);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn signed(id: &str, timestamp: i64, body: &[u8]) -> HeaderMap {
    let signature = svix::webhooks::Webhook::new(SECRET)
        .expect("a whsec secret")
        .sign(id, timestamp, body)
        .expect("a signature");
    headers(&[
        ("svix-id", id),
        ("svix-timestamp", &timestamp.to_string()),
        ("svix-signature", &signature),
    ])
}

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            map.append(name, value);
        }
    }
    map
}

/// Clerk-shaped JSON with arbitrary holes: the parser's inputs past a valid signature.
fn clerk_like_body() -> impl Strategy<Value = Vec<u8>> {
    let kind = prop_oneof![
        Just("user.created".to_owned()),
        Just("user.updated".to_owned()),
        Just("user.deleted".to_owned()),
        "[a-z.]{0,16}",
    ];
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(|number| serde_json::json!(number)),
        ".{0,24}".prop_map(serde_json::Value::from),
    ];
    let value = leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::from),
            proptest::collection::btree_map(
                prop_oneof![
                    Just("id".to_owned()),
                    Just("email_addresses".to_owned()),
                    Just("primary_email_address_id".to_owned()),
                    Just("email_address".to_owned()),
                    Just("public_metadata".to_owned()),
                    Just("role".to_owned()),
                    Just("organisationId".to_owned()),
                    Just("updated_at".to_owned()),
                    Just("deleted".to_owned()),
                    "[a-z_]{1,12}",
                ],
                inner,
                0..6
            )
            .prop_map(|map| serde_json::Value::Object(map.into_iter().collect())),
        ]
    });
    (kind, value, any::<bool>()).prop_map(|(kind, data, wrap)| {
        let body = if wrap {
            serde_json::json!({ "type": kind, "object": "event", "data": data })
        } else {
            data
        };
        body.to_string().into_bytes()
    })
}

/// Runs `property` on `config().cases` inputs from `strategy`, prints how many ran, and fails
/// with the smallest failing input proptest finds.
fn check<S: Strategy>(
    name: &str,
    strategy: S,
    property: impl Fn(S::Value) -> Result<(), TestCaseError>,
) where
    S::Value: std::fmt::Debug,
{
    let executions = AtomicU64::new(0);
    let mut runner = proptest::test_runner::TestRunner::new(config());
    let outcome = runner.run(&strategy, |input| {
        executions.fetch_add(1, Ordering::Relaxed);
        property(input)
    });
    eprintln!("{name}: {} executions", executions.load(Ordering::Relaxed));
    if let Err(failure) = outcome {
        panic!("{name}: {failure}");
    }
}

/// Arbitrary bytes with arbitrary (or no) svix headers are refused, never accepted.
#[test]
fn nothing_unsigned_is_accepted() {
    let header = prop_oneof!["v1,[A-Za-z0-9+/=]{0,60}", "[ -~]{0,120}"];
    let strategy = (
        proptest::collection::vec(any::<u8>(), 0..2048),
        proptest::option::of("[ -~]{0,40}"),
        proptest::option::of(prop_oneof![Just(now().to_string()), "[ -~]{0,20}"]),
        proptest::option::of(header),
        prop_oneof![Just("svix"), Just("webhook")],
    );
    check(
        "nothing_unsigned_is_accepted",
        strategy,
        |(body, id, timestamp, signature, spelling)| {
            let names = [
                format!("{spelling}-id"),
                format!("{spelling}-timestamp"),
                format!("{spelling}-signature"),
            ];
            let mut pairs = Vec::new();
            for (name, value) in names.iter().zip([&id, &timestamp, &signature]) {
                if let Some(value) = value {
                    pairs.push((name.as_str(), value.as_str()));
                }
            }
            prop_assert!(verifier().verify(&body, &headers(&pairs)).is_err());
            let _ = event::parse(&body);
            Ok(())
        },
    );
}

/// A signed delivery with one byte of its body, its id, its timestamp or one character of
/// its signature changed is refused.
#[test]
fn nothing_altered_is_accepted() {
    let strategy = (
        proptest::collection::vec(any::<u8>(), 1..1024),
        any::<prop::sample::Index>(),
        1u8..=255,
        0..4u8,
    );
    check(
        "nothing_altered_is_accepted",
        strategy,
        |(body, position, flip, what)| {
            let Ok(text) = String::from_utf8(body.clone()) else {
                // svix signs text; a body that is not UTF-8 is refused as such.
                let lossy = String::from_utf8_lossy(&body).into_owned();
                let headers = signed("msg_a", now(), lossy.as_bytes());
                prop_assert!(verifier().verify(&body, &headers).is_err());
                return Ok(());
            };
            let timestamp = now();
            let good = signed("msg_a", timestamp, text.as_bytes());
            prop_assert!(verifier().verify(text.as_bytes(), &good).is_ok());
            let mut altered_body = body.clone();
            let mut altered = good.clone();
            match what {
                0 => {
                    let index = position.index(altered_body.len());
                    altered_body[index] ^= flip;
                }
                1 => {
                    altered.insert("svix-id", HeaderValue::from_static("msg_b"));
                }
                2 => {
                    let shifted = timestamp + 1 + i64::from(flip);
                    altered.insert("svix-timestamp", HeaderValue::from(shifted));
                }
                _ => {
                    let mut bytes = good["svix-signature"].as_bytes().to_vec();
                    // Past "v1,": one base64 character becomes another (not the padding).
                    let index = 3 + position.index(bytes.len() - 3);
                    prop_assume!(bytes[index] != b'=');
                    let alphabet =
                        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
                    let replacement =
                        alphabet[(usize::from(flip) + usize::from(bytes[index])) % 64];
                    prop_assume!(replacement != bytes[index]);
                    bytes[index] = replacement;
                    let forged = HeaderValue::from_bytes(&bytes).expect("ascii");
                    altered.insert("svix-signature", forged);
                }
            }
            prop_assert!(verifier().verify(&altered_body, &altered).is_err());
            Ok(())
        },
    );
}

/// Whatever bytes a valid signature covers, the parser answers without panicking.
#[test]
fn any_signed_bytes_are_parsed_or_refused() {
    check(
        "any_signed_bytes_are_parsed_or_refused",
        proptest::collection::vec(any::<u8>(), 0..2048),
        |body| {
            if let Ok(text) = std::str::from_utf8(&body) {
                let headers = signed("msg_garbage", now(), text.as_bytes());
                prop_assert!(verifier().verify(&body, &headers).is_ok());
            }
            let _ = event::parse(&body);
            Ok(())
        },
    );
}

/// Clerk-shaped JSON with arbitrary fields and values is a Clerk event or a refusal in words.
#[test]
fn clerk_shaped_json_is_parsed_or_refused_in_words() {
    check(
        "clerk_shaped_json_is_parsed_or_refused_in_words",
        clerk_like_body(),
        |body| {
            let headers = signed("msg_shaped", now(), &body);
            prop_assert!(verifier().verify(&body, &headers).is_ok());
            match event::parse(&body) {
                Ok((kind, parsed)) => {
                    prop_assert!(!kind.is_empty());
                    if let Some(clerk_id) = parsed.clerk_id() {
                        prop_assert!(!clerk_id.is_empty());
                    }
                }
                Err(message) => prop_assert!(!message.is_empty()),
            }
            Ok(())
        },
    );
}
