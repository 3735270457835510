//! Files compiled into the binary and served as they are: GraphiQL's and the admin console's.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

use crate::error::json_error;

pub struct Asset {
    pub name: &'static str,
    pub content_type: &'static str,
    pub bytes: &'static [u8],
}

/// Answers the asset called `name` among `assets`, with `cache_control`; a JSON 404 otherwise.
pub fn serve(assets: &[Asset], name: &str, cache_control: &'static str) -> Response {
    match assets.iter().find(|asset| asset.name == name) {
        Some(asset) => (
            [
                (header::CONTENT_TYPE, asset.content_type),
                (header::CACHE_CONTROL, cache_control),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            asset.bytes,
        )
            .into_response(),
        None => json_error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            format!("no asset `{name}`"),
        ),
    }
}

/// A page of ours (GraphiQL, the admin console) with its Content-Security-Policy: never cached
/// (it may carry the local admin token), never framed by another site, never sniffed, and no
/// referrer sent from it.
pub fn page(html: String, policy: &str) -> Response {
    let mut response = Html(html).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(policy) = HeaderValue::from_str(policy) {
        headers.insert(header::CONTENT_SECURITY_POLICY, policy);
    }
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}
