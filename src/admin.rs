//! The admin console at `/admin`: the seed's `/admin/users` page, served from the binary.
//!
//! It is a client of userhub's own GraphQL API (HTTP for queries and mutations, the
//! WebSocket for `userChanged` and `syncProgress`), so it holds no privilege of its own: what
//! it shows and offers follows the caller's role, and the API refuses anyway. The assets in
//! `assets/admin/` are plain HTML, CSS and JavaScript with no build step and nothing fetched
//! from a CDN.
//!
//! In local mode the page is given the printed admin token, and one extra route stands in for
//! the invitee: Clerk would email an invitation link; the embedded emulator accepts it instead,
//! which creates the user and sends the signed `user.created` webhook a real sign-up would.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{FromRef, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;

use crate::assets::Asset;
use crate::auth::caller::session_token;
use crate::error::{AppError, json_error};
use crate::local::LocalMode;
use crate::service::sessions::Authenticator;

/// The views of the console; each is a real path, so a reload or a shared link opens it.
const VIEWS: [&str; 9] = [
    "/admin",
    "/admin/users",
    "/admin/organisations",
    "/admin/invitations",
    "/admin/dashboard",
    "/admin/workload",
    "/admin/import",
    "/admin/sync",
    "/admin/audit",
];

/// What the console's routes need; the server's state hands it over (`FromRef`).
#[derive(Clone)]
pub struct AdminState {
    pub auth: Arc<Authenticator>,
    /// Present in local mode.
    pub local: Option<Arc<LocalMode>>,
}

pub fn routes<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    AdminState: FromRef<S>,
{
    let mut router = Router::new()
        .route("/admin/assets/{*name}", get(asset))
        .route(
            "/admin/local/invitations/{id}/accept",
            post(accept_invitation_locally),
        );
    for view in VIEWS {
        router = router.route(view, get(page));
    }
    router
}

const PAGE: &str = include_str!("../assets/admin/index.html");

/// Everything the page may load or connect to is this server: no CDN, no inline script.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; \
     form-action 'self'";

async fn page(State(state): State<AdminState>) -> Response {
    let config = json!({
        "localMode": state.local.is_some(),
        "adminToken": state.local.as_ref().map(|local| local.admin_token.as_str()),
    });
    // The configuration is JSON inside a non-executable script element; `<` is escaped so no
    // `</script>` can end it early.
    let config = config.to_string().replace('<', "\\u003c");
    crate::assets::page(
        PAGE.replace("__USERHUB_CONFIG__", &config),
        CONTENT_SECURITY_POLICY,
    )
}

/// One file of `assets/admin/`, served under `/admin/assets/` by its path there.
macro_rules! asset {
    ($name:literal, $content_type:literal) => {
        Asset {
            name: $name,
            content_type: $content_type,
            bytes: include_bytes!(concat!("../assets/admin/", $name)),
        }
    };
}

/// The console: ES modules the browser loads as they are (main.js imports the rest), its
/// stylesheet and its icon.
const ASSETS: &[Asset] = &[
    asset!("main.js", "text/javascript; charset=utf-8"),
    asset!("state.js", "text/javascript; charset=utf-8"),
    asset!("documents.js", "text/javascript; charset=utf-8"),
    asset!("dom.js", "text/javascript; charset=utf-8"),
    asset!("api.js", "text/javascript; charset=utf-8"),
    asset!("live.js", "text/javascript; charset=utf-8"),
    asset!("roles.js", "text/javascript; charset=utf-8"),
    asset!("views/users.js", "text/javascript; charset=utf-8"),
    asset!("views/invite.js", "text/javascript; charset=utf-8"),
    asset!("views/invitations.js", "text/javascript; charset=utf-8"),
    asset!("views/organisations.js", "text/javascript; charset=utf-8"),
    asset!("views/sync.js", "text/javascript; charset=utf-8"),
    asset!("views/audit.js", "text/javascript; charset=utf-8"),
    asset!("views/dashboard.js", "text/javascript; charset=utf-8"),
    asset!("views/workload.js", "text/javascript; charset=utf-8"),
    asset!("views/import.js", "text/javascript; charset=utf-8"),
    asset!("admin.css", "text/css; charset=utf-8"),
    asset!("favicon.svg", "image/svg+xml"),
];

async fn asset(Path(name): Path<String>) -> Response {
    // Revalidated each time: the page and its script must come from the same build.
    crate::assets::serve(ASSETS, &name, "no-cache")
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct AcceptRequest {
    first_name: Option<String>,
    last_name: Option<String>,
}

/// Local mode only: the invitee accepts invitation `id` (Clerk's `inv_...`) in the embedded
/// emulator. Admins only, like everything that acts for someone else.
async fn accept_invitation_locally(
    State(state): State<AdminState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Option<Json<AcceptRequest>>,
) -> Response {
    let Some(local) = state.local.as_ref() else {
        return json_error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "accepting invitations here is for local mode only: with Clerk, the invitee follows \
             the link in Clerk's email",
        );
    };
    let caller = match state
        .auth
        .authenticate(session_token(&headers).as_deref())
        .await
    {
        Ok(caller) => caller,
        Err(err) => return err.into_response(),
    };
    if let Err(err) = caller
        .actor()
        .and_then(|actor| actor.require_admin().map(|()| actor))
    {
        return err.into_response();
    }
    let body = body.map(|Json(body)| body).unwrap_or_default();
    match local
        .emulator
        .emulator
        .accept_invitation(&id, body.first_name, body.last_name)
    {
        Ok(user) => Json(json!({
            "accepted": true,
            "clerkUserId": user.id,
        }))
        .into_response(),
        Err(refusal) if refusal.status == StatusCode::NOT_FOUND => {
            AppError::not_found("invitation", &id).into_response()
        }
        Err(refusal) => json_error(StatusCode::CONFLICT, "CONFLICT", refusal.message),
    }
}

#[cfg(test)]
mod tests {
    use super::ASSETS;

    /// A module added to `assets/admin/` and imported by the page must be served too, or the
    /// console stops at a failed import.
    #[test]
    fn every_file_of_the_console_is_served() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/admin");
        let mut on_disk = Vec::new();
        let mut folders = vec![root.clone()];
        while let Some(folder) = folders.pop() {
            for entry in std::fs::read_dir(&folder).expect("assets/admin is readable") {
                let path = entry.expect("an entry").path();
                if path.is_dir() {
                    folders.push(path);
                } else if path.file_name().is_some_and(|name| name != "index.html") {
                    let relative = path.strip_prefix(&root).expect("under the root");
                    on_disk.push(relative.to_string_lossy().replace('\\', "/"));
                }
            }
        }
        on_disk.sort();
        let mut served: Vec<String> = ASSETS.iter().map(|asset| asset.name.to_owned()).collect();
        served.sort();
        assert_eq!(served, on_disk);
    }
}
