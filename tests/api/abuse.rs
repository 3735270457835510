//! Hostile GraphQL: each attack below is refused by a limit with a clear error and a code, the
//! answer stays small, and the server answers normally afterwards. (Depth and complexity have
//! their own tests in `http.rs`; the rate limit too.)

use serde_json::{Value, json};

use crate::helpers::{TestApp, on_both_databases};

on_both_databases!(
    hostile_documents_are_refused_by_a_limit_and_the_server_carries_on,
    fragment_fan_out_is_refused_in_time_linear_in_the_document,
);

/// Posts a raw body as the test's admin: the status, the answer and its size.
async fn post(app: &TestApp, body: String) -> (u16, Value, usize) {
    let response = app
        .client
        .post(app.url("/graphql"))
        .bearer_auth(&app.admin_token)
        .header("content-type", "application/json")
        .header("accept", "application/graphql-response+json")
        .body(body)
        .send()
        .await
        .expect("the server answers");
    let status = response.status().as_u16();
    let text = response.text().await.expect("a body");
    let size = text.len();
    let value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("JSON: {text}"));
    (status, value, size)
}

fn query(document: String) -> String {
    json!({ "query": document }).to_string()
}

async fn hostile_documents_are_refused_by_a_limit_and_the_server_carries_on(app: TestApp) {
    let aliases = |count: usize, field: &str| {
        (0..count)
            .map(|index| format!("a{index}: {field}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let variables_declared: String = (0..3000)
        .map(|index| format!("$v{index}: Int"))
        .collect::<Vec<_>>()
        .join(", ");
    let nested_fragments: String = (0..300)
        .map(|index| {
            format!(
                "fragment F{index} on Query {{ __typename ...F{} }}\n",
                index + 1
            )
        })
        .collect::<String>()
        + "fragment F300 on Query { __typename }";
    let cases: Vec<(&str, String, u16, &str, &str)> = vec![
        (
            "12,000 aliases of __typename (complexity 0)",
            query(format!("{{ {} }}", aliases(12_000, "__typename"))),
            400,
            "GRAPHQL_VALIDATION_FAILED",
            "too many fields",
        ),
        (
            "a fan-out of 300 aliased user pages",
            query(format!(
                "{{ {} }}",
                aliases(300, "users(first: 100) { nodes { id } }")
            )),
            400,
            "GRAPHQL_VALIDATION_FAILED",
            "too complex",
        ),
        (
            "the same field 20,000 times (field merging)",
            query(format!("{{ {} }}", vec!["me { id }"; 20_000].join(" "))),
            400,
            "GRAPHQL_VALIDATION_FAILED",
            "too many fields",
        ),
        (
            "introspection aliased 300 times",
            query(format!(
                "{{ {} }}",
                aliases(300, "__schema { types { name fields { name type { name } } } }")
            )),
            400,
            "GRAPHQL_VALIDATION_FAILED",
            "too many fields",
        ),
        (
            "introspection 70 levels of ofType deep",
            query(format!(
                "{{ __schema {{ types {{ {}name{} }} }} }}",
                "ofType { ".repeat(70),
                " }".repeat(70)
            )),
            400,
            "GRAPHQL_PARSE_FAILED",
            "nested too deep to be parsed",
        ),
        (
            "3,000 declared variables",
            json!({
                "query": format!("query({variables_declared}) {{ __typename }}"),
                "variables": (0..3000).map(|index| (format!("v{index}"), json!(index))).collect::<serde_json::Map<_, _>>(),
            })
            .to_string(),
            400,
            "GRAPHQL_VALIDATION_FAILED",
            "too many variables",
        ),
        (
            "300 fragments spread in a chain",
            query(format!("{{ ...F0 }}\n{nested_fragments}")),
            400,
            "GRAPHQL_VALIDATION_FAILED",
            "recursion depth",
        ),
        (
            "a batch of two operations",
            json!([{ "query": "{ __typename }" }, { "query": "{ __typename }" }]).to_string(),
            400,
            "BAD_REQUEST",
            "batched operations are not supported",
        ),
        (
            "a body over 256 KiB",
            query(format!("{{ {} }}", aliases(30_000, "__typename"))),
            413,
            "PAYLOAD_TOO_LARGE",
            "over the limit",
        ),
        (
            "1,000 directives on one field",
            query(format!(
                "{{ __typename {} }}",
                "@skip(if: false) ".repeat(1000)
            )),
            400,
            "GRAPHQL_VALIDATION_FAILED",
            "directives",
        ),
        (
            "101 addresses in one inviteUsers",
            json!({
                "query": "mutation($inputs: [InviteUserInput!]!) { inviteUsers(inputs: $inputs) { email } }",
                "variables": { "inputs": (0..101).map(|index| json!({ "email": format!("bulk{index}@abuse.test") })).collect::<Vec<_>>() },
            })
            .to_string(),
            200,
            "BAD_USER_INPUT",
            "at most 100",
        ),
    ];
    for (name, body, status, code, words) in cases {
        let (answered, answer, size) = post(&app, body).await;
        let error = &answer["errors"][0];
        assert_eq!(answered, status, "{name}: {answer}");
        assert_eq!(error["extensions"]["code"], code, "{name}: {answer}");
        let message = error["message"].as_str().unwrap_or_default();
        assert!(
            message.to_lowercase().contains(words),
            "{name}: `{message}` says `{words}`"
        );
        assert!(
            error["extensions"]["requestId"].is_string(),
            "{name}: the error names its request"
        );
        assert!(
            size < 4096,
            "{name}: a small answer, not an amplification: {size} bytes"
        );
        assert!(answer["data"].is_null(), "{name}: nothing ran: {answer}");
    }
    // Still serving, and the limits leave ordinary documents alone: GraphiQL's full
    // introspection query and a page of users with everything the admin console shows.
    let (status, answer, _) = post(&app, query(crate::http::INTROSPECTION_QUERY.to_owned())).await;
    assert_eq!(status, 200, "{answer}");
    assert!(answer["data"]["__schema"]["types"].is_array(), "{answer}");
    let data = app
        .query(
            "{ users(first: 100) { totalCount nodes { id email firstName lastName role isActive isSuspended organisation { id name slug memberCount } } } }",
            json!({}),
        )
        .await;
    assert_eq!(data["users"]["totalCount"], 1);
}

/// `{ ...F0 } fragment F0 { ...F1 ...F1 } … fragment F{levels} { leaf }`: `width` spreads of
/// the next fragment at every level, so `width^levels` fields from a document of a few KB.
fn fan_out(levels: usize, width: usize, on: &str, leaf: &str) -> String {
    let mut document = String::from("{ ...F0 }\n");
    for level in 0..levels {
        let spreads = vec![format!("...F{}", level + 1); width].join(" ");
        document.push_str(&format!("fragment F{level} on {on} {{ {spreads} }}\n"));
    }
    document.push_str(&format!("fragment F{levels} on {on} {{ {leaf} }}\n"));
    document
}

/// The checks before authentication cost time linear in the document, however its fragments
/// multiply: each fan-out is refused for the fields it would execute, before anything runs
/// and without a token. (They were walked again at every spread: 2^40 steps for the first.)
async fn fragment_fan_out_is_refused_in_time_linear_in_the_document(app: TestApp) {
    let mut family = vec![
        (
            "2^40 from 41 fragments",
            fan_out(40, 2, "Query", "__typename"),
        ),
        ("3^30", fan_out(30, 3, "Query", "__typename")),
        ("10^12", fan_out(12, 10, "Query", "__typename")),
        ("2^64, saturating", fan_out(64, 2, "Query", "__typename")),
        ("2^200, saturating", fan_out(200, 2, "Query", "__typename")),
        (
            "2^40 of fields with selections",
            fan_out(40, 2, "Query", "me { id email }"),
        ),
    ];
    // Depth multiplied instead of width: each level nests the next inside a field.
    let mut nested = String::from("{ ...N0 }\n");
    for level in 0..40 {
        nested.push_str(&format!(
            "fragment N{level} on Query {{ a: __typename ...N{next} b: __typename ...N{next} }}\n",
            next = level + 1
        ));
    }
    nested.push_str("fragment N40 on Query { me { organisation { users { nodes { id } } } } }\n");
    family.push(("2^40 with deep leaves", nested));
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .expect("a client");
    for (name, document) in family {
        assert!(document.len() < 16 * 1024, "{name}: a small document");
        // The fastest of three tries, so a busy test machine does not decide the result.
        let mut fastest = std::time::Duration::MAX;
        let mut last = Value::Null;
        for _ in 0..3 {
            let started = std::time::Instant::now();
            let response = client
                .post(app.url("/graphql"))
                .header("content-type", "application/json")
                .header("accept", "application/graphql-response+json")
                .body(query(document.clone()))
                .send()
                .await
                .unwrap_or_else(|error| panic!("{name}: the server answers in time: {error}"));
            let status = response.status().as_u16();
            last = response.json().await.expect("a JSON answer");
            fastest = fastest.min(started.elapsed());
            assert_eq!(status, 400, "{name}: {last}");
        }
        let error = &last["errors"][0];
        assert_eq!(
            error["extensions"]["code"], "GRAPHQL_VALIDATION_FAILED",
            "{name}: {last}"
        );
        assert!(
            error["message"]
                .as_str()
                .unwrap_or_default()
                .contains("too many fields"),
            "{name}: {last}"
        );
        assert!(
            fastest < std::time::Duration::from_millis(50),
            "{name}: refused in {fastest:?}"
        );
    }
    // A document that spreads fragments sensibly is still served.
    let data = app
        .query(
            "{ ...A ...A } fragment A on Query { me { ...B } } fragment B on User { id email }",
            json!({}),
        )
        .await;
    assert_eq!(data["me"]["email"], app.admin.email.as_str());
}
