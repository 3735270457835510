//! GraphiQL, served from the binary: the page and its scripts work with no network.
//!
//! The assets are GraphiQL 4.1.2 and React 18.3.1 from the npm registry, vendored with their
//! licences in `assets/graphiql/` (async-graphql's own page loads them from a CDN).

use axum::extract::Path;
use axum::response::Response;

use crate::assets::Asset;

const PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>userhub · GraphiQL</title>
  <link rel="stylesheet" href="/graphql/assets/graphiql.min.css">
  <style nonce="__NONCE__">html, body, #graphiql { height: 100%; margin: 0; }</style>
</head>
<body>
  <div id="graphiql">Loading GraphiQL…</div>
  <script src="/graphql/assets/react.production.min.js"></script>
  <script src="/graphql/assets/react-dom.production.min.js"></script>
  <script src="/graphql/assets/graphiql.min.js"></script>
  <script nonce="__NONCE__">
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
    // The page's one inline script runs by a nonce made for this answer, so no script a
    // query result or header could smuggle in runs; styles stay open because GraphiQL's editor
    // sets style attributes. No other site may frame it (its buttons act with the token).
    let nonce = {
        use base64::Engine as _;
        let bytes: [u8; 16] = rand::random();
        base64::engine::general_purpose::STANDARD.encode(bytes)
    };
    let html = PAGE
        .replace("__DEFAULT_HEADERS__", &literal)
        .replace("__NONCE__", &nonce);
    let policy = format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}'; style-src 'self' 'unsafe-inline'; \
         img-src 'self' data:; font-src 'self' data:; connect-src 'self'; object-src 'none'; \
         base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    );
    crate::assets::page(html, &policy)
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
