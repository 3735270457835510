//! GraphiQL, served from the binary: the page and its scripts work with no network.
//!
//! The assets are GraphiQL 4.1.2 and React 18.3.1 from the npm registry, vendored with their
//! licences in `assets/graphiql/` (async-graphql's own page loads them from a CDN).

use axum::extract::Path;
use axum::http::{HeaderValue, header};
use axum::response::{Html, IntoResponse, Response};

use crate::assets::Asset;

const PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>userhub · GraphiQL</title>
  <link rel="stylesheet" href="/graphql/assets/graphiql.min.css">
  <style>html, body, #graphiql { height: 100%; margin: 0; }</style>
</head>
<body>
  <div id="graphiql">Loading GraphiQL…</div>
  <script src="/graphql/assets/react.production.min.js"></script>
  <script src="/graphql/assets/react-dom.production.min.js"></script>
  <script src="/graphql/assets/graphiql.min.js"></script>
  <script>
    const endpoint = new URL('/graphql', window.location.href);
    const socket = new URL(endpoint);
    socket.protocol = endpoint.protocol === 'https:' ? 'wss:' : 'ws:';
    const defaultHeaders = __DEFAULT_HEADERS__;
    // GraphiQL's WebSocket client does not send the header editor's headers: the token goes
    // in connection_init, where userhub looks for it.
    const wsConnectionParams = (() => {
      try { const h = JSON.parse(defaultHeaders); return h.Authorization ? { authorization: h.Authorization } : {}; }
      catch (_) { return {}; }
    })();
    const fetcher = GraphiQL.createFetcher({ url: endpoint.href, subscriptionUrl: socket.href, wsConnectionParams });
    const defaultQuery = `# Welcome to userhub. Press the run button (or Ctrl+Enter).
{
  users(first: 10) {
    totalCount
    nodes { id email fullName role isActive organisation { name } }
  }
}
`;
    ReactDOM.createRoot(document.getElementById('graphiql')).render(
      React.createElement(GraphiQL, { fetcher, defaultQuery, defaultHeaders, defaultEditorToolsVisibility: true })
    );
  </script>
</body>
</html>
"#;

/// The GraphiQL page. In local mode `admin_token` is filled into its headers, so the first
/// query just works.
pub fn page(admin_token: Option<&str>) -> Response {
    let headers = match admin_token {
        Some(token) => {
            let headers = serde_json::json!({ "Authorization": format!("Bearer {token}") });
            serde_json::to_string_pretty(&headers).unwrap_or_default()
        }
        None => "{}".to_owned(),
    };
    // A JSON string is a JavaScript string literal; `<` is escaped so no `</script>` can end
    // the script early.
    let literal = serde_json::to_string(&headers)
        .unwrap_or_else(|_| "\"\"".to_owned())
        .replace('<', "\\u003c");
    let mut response = Html(PAGE.replace("__DEFAULT_HEADERS__", &literal)).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

const ASSETS: &[Asset] = &[
    Asset {
        name: "graphiql.min.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../../assets/graphiql/graphiql.min.js"),
    },
    Asset {
        name: "graphiql.min.css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("../../assets/graphiql/graphiql.min.css"),
    },
    Asset {
        name: "react.production.min.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../../assets/graphiql/react.production.min.js"),
    },
    Asset {
        name: "react-dom.production.min.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../../assets/graphiql/react-dom.production.min.js"),
    },
];

pub async fn asset(Path(name): Path<String>) -> Response {
    // The files never change within a build.
    crate::assets::serve(ASSETS, &name, "public, max-age=86400")
}
