//! Files compiled into the binary and served as they are: GraphiQL's and the admin console's.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

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
