//! The layers of `src/` (lib.rs's map, docs/architecture.md) as a test: a module may use the
//! modules of the layers below its own, never those above or beside it. The compiler allows
//! any `crate::` path, so this reads every source file and fails on an import that points up or
//! sideways, naming the file, the line and the layer it reached.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Bottom to top. A layer lists its top-level modules (`src/<name>.rs` and `src/<name>/`).
const LAYERS: &[(&str, &[&str])] = &[
    ("settings", &["config"]),
    ("metrics and logs", &["metrics", "telemetry"]),
    (
        "the database connection and the token buckets",
        &["db", "rate_limit"],
    ),
    ("Clerk: client, wire model, emulator", &["clerk"]),
    ("errors and change events", &["error", "events"]),
    ("who is calling and what they may do", &["auth"]),
    ("the domain", &["service"]),
    ("pages and static files", &["assets"]),
    (
        "GraphQL, webhooks, downloads and uploads",
        &["graphql", "webhooks", "exports", "imports"],
    ),
    (
        "local mode: the embedded emulator and its first admin",
        &["local"],
    ),
    ("the admin console", &["admin"]),
    ("routes, the accept loop, time limits, CORS", &["app"]),
    ("the command line", &["cli"]),
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS
        .iter()
        .position(|(_, modules)| modules.contains(&module))
}

/// Every `.rs` file under `dir`.
fn sources(dir: &Path, found: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).expect("src/ is readable");
    for entry in entries {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            sources(&path, found);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            found.push(path);
        }
    }
}

/// The module path of a file: `src/graphql/types/user.rs` is `[graphql, types, user]`.
fn module_path(src: &Path, file: &Path) -> Vec<String> {
    let relative = file.strip_prefix(src).expect("under src/");
    let mut path: Vec<String> = relative
        .iter()
        .map(|part| part.to_string_lossy().trim_end_matches(".rs").to_owned())
        .collect();
    if path.last().is_some_and(|last| last == "mod") {
        path.pop();
    }
    path
}

/// The top-level modules a line of code names: `crate::x`, `crate::{x, y::z}`, and `super::`
/// chains that climb to the crate's root.
fn named_modules(line: &str, module: &[String]) -> Vec<String> {
    let mut named = Vec::new();
    let mut rest = line;
    while let Some(at) = rest.find("crate::") {
        let after = &rest[at + "crate::".len()..];
        let preceded_by_ident = rest[..at]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_alphanumeric() || c == '_');
        if !preceded_by_ident {
            if let Some(group) = after.strip_prefix('{') {
                let end = group.find('}').unwrap_or(group.len());
                for item in group[..end].split(',') {
                    named.extend(first_ident(item.trim()));
                }
            } else {
                named.extend(first_ident(after));
            }
        }
        rest = after;
    }
    let mut rest = line;
    while let Some(at) = rest.find("super::") {
        let preceded_by_ident = rest[..at]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':');
        let mut after = &rest[at..];
        let mut climbs = 0;
        while let Some(next) = after.strip_prefix("super::") {
            climbs += 1;
            after = next;
        }
        // A file's own module is the last element of its path: one `super` reaches its parent.
        if !preceded_by_ident && climbs >= module.len() {
            named.extend(first_ident(after));
        }
        rest = after;
    }
    named
}

fn first_ident(text: &str) -> Option<String> {
    let ident: String = text
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    (!ident.is_empty()).then_some(ident)
}

/// The code of a file without its comments (`//`, `//!`, `///`), string contents left as they
/// are: a path in a string literal is rare, and would only make this stricter.
fn code_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines().enumerate().filter_map(|(index, line)| {
        let code = match line.find("//") {
            Some(at) => &line[..at],
            None => line,
        };
        (!code.trim().is_empty()).then_some((index + 1, code))
    })
}

#[test]
fn every_module_uses_only_the_layers_below_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    files.sort();

    let mut unplaced = BTreeSet::new();
    let mut violations = Vec::new();
    for file in &files {
        let module = module_path(&src, file);
        let top = module[0].as_str();
        if matches!(top, "lib" | "main") {
            continue;
        }
        let Some(own_layer) = layer_of(top) else {
            unplaced.insert(top.to_owned());
            continue;
        };
        let text = std::fs::read_to_string(file).expect("a readable source file");
        for (line_number, code) in code_lines(&text) {
            for used in named_modules(code, &module) {
                if used == top {
                    continue;
                }
                let Some(used_layer) = layer_of(&used) else {
                    continue;
                };
                if used_layer >= own_layer {
                    violations.push(format!(
                        "{}:{line_number}: `{top}` ({}) uses `{used}` ({}): {}",
                        file.strip_prefix(&src).unwrap_or(file).display(),
                        LAYERS[own_layer].0,
                        LAYERS[used_layer].0,
                        code.trim()
                    ));
                }
            }
        }
    }
    assert!(
        unplaced.is_empty(),
        "modules in no layer: {unplaced:?}; add them to LAYERS here and to lib.rs's map"
    );
    assert!(
        violations.is_empty(),
        "imports that point up or sideways:\n{}",
        violations.join("\n")
    );
}

#[test]
fn the_reader_finds_what_it_must_refuse() {
    let module = ["service".to_owned(), "users".to_owned()];
    assert_eq!(
        named_modules("use crate::graphql::types::User;", &module),
        ["graphql"]
    );
    assert_eq!(
        named_modules("use crate::{app::AppState, error::AppError};", &module),
        ["app", "error"]
    );
    assert_eq!(
        named_modules("let x = super::super::events::bus();", &module),
        ["events"]
    );
    assert!(named_modules("use super::audit;", &module).is_empty());
    assert!(named_modules("my_crate::graphql::x()", &module).is_empty());
    let top = ["events".to_owned()];
    assert_eq!(
        named_modules("use super::service::Origin;", &top),
        ["service"]
    );
}

/// The access rules of `auth/access.rs` that a caller could apply itself: its public methods
/// named `require_*`, `may_*`, `readable_*`, `is_admin` and `invitation_if_*`.
fn access_rules(src: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(src.join("auth/access.rs")).expect("auth/access.rs");
    let mut rules: Vec<String> = code_lines(&text)
        .filter_map(|(_, code)| code.trim().strip_prefix("pub fn "))
        .filter_map(first_ident)
        .filter(|name| {
            ["require_", "may_", "readable_", "invitation_if_"]
                .iter()
                .any(|prefix| name.starts_with(prefix))
                || name == "is_admin"
        })
        .collect();
    rules.sort();
    rules.dedup();
    rules
}

/// One rule for where access is checked (docs/architecture.md): every service entry point that
/// reads or writes takes the caller and checks through `auth::access`; resolvers and handlers
/// only translate, so none of them applies a rule itself.
#[test]
fn resolvers_and_handlers_leave_access_to_the_service() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let rules = access_rules(&src);
    assert!(
        rules.len() >= 10,
        "the access rules were not found in auth/access.rs: {rules:?}"
    );
    let mut files = Vec::new();
    for layer in ["graphql", "webhooks"] {
        sources(&src.join(layer), &mut files);
    }
    files.sort();
    let mut violations = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("a readable source file");
        for (line_number, code) in code_lines(&text) {
            for rule in &rules {
                let call = format!(".{rule}(");
                if code.contains(&call) {
                    violations.push(format!(
                        "{}:{line_number}: applies `{rule}` itself: {}",
                        file.strip_prefix(&src).unwrap_or(file).display(),
                        code.trim()
                    ));
                }
            }
        }
    }
    assert!(
        violations.is_empty(),
        "access checked outside the service (move it into the service function called):\n{}",
        violations.join("\n")
    );
}
