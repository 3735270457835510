//! Conditional GET for queries: an answer carries a strong `ETag` (a hash of its bytes), and a
//! client that sends it back in `If-None-Match` gets `304 Not Modified` with no body while the
//! answer is the same. The tag is computed once per answer: with the answer when the response
//! cache keeps it (`cache.rs`), which then answers the next request without running anything.
//! Only a complete answer (no errors) gets a tag: an error may not last. Answers depend on the
//! caller's token, so they are `private` and vary on `Authorization`; `no-cache` makes every
//! reuse ask first.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use sha2::{Digest, Sha256};

/// The tag of an answer: the first 128 bits of its SHA-256, quoted.
pub(super) fn tag_of(body: &[u8]) -> String {
    let digest = Sha256::digest(body);
    format!(
        "\"{}\"",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..16])
    )
}

/// Whether `If-None-Match` names this tag (weak comparison, as RFC 9110 asks for this header;
/// `*` names any).
pub(super) fn names_tag(if_none_match: &str, tag: &str) -> bool {
    if_none_match.split(',').map(str::trim).any(|candidate| {
        candidate == "*" || candidate.strip_prefix("W/").unwrap_or(candidate) == tag
    })
}

/// A complete answer to a GET: `304` when the client holds it already, else the answer with
/// its validators.
pub(super) fn answer(
    request: &HeaderMap,
    content_type: HeaderValue,
    body: axum::body::Bytes,
    tag: &str,
) -> Response {
    let not_modified = request
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .any(|value| names_tag(value, tag));
    let mut response = if not_modified {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (StatusCode::OK, [(header::CONTENT_TYPE, content_type)], body).into_response()
    };
    let headers = response.headers_mut();
    if let Ok(tag) = HeaderValue::from_str(tag) {
        headers.insert(header::ETAG, tag);
    }
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-cache"),
    );
    headers.append(
        header::VARY,
        HeaderValue::from_static("authorization, accept"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tag_is_named_by_itself_its_weak_form_a_list_or_a_star() {
        let tag = tag_of(br#"{"data":{"me":{"id":"1"}}}"#);
        assert!(
            tag.starts_with('"') && tag.ends_with('"') && tag.len() == 24,
            "{tag}"
        );
        assert_eq!(tag, tag_of(br#"{"data":{"me":{"id":"1"}}}"#));
        assert_ne!(tag, tag_of(br#"{"data":{"me":{"id":"2"}}}"#));
        assert!(names_tag(&tag, &tag));
        assert!(names_tag(&format!("W/{tag}"), &tag));
        assert!(names_tag(&format!("\"other\", {tag}"), &tag));
        assert!(names_tag("*", &tag));
        assert!(!names_tag("\"other\"", &tag));
        assert!(!names_tag("", &tag));
    }
}
