//! `schema.graphql` is what `userhub schema` prints: the committed schema cannot drift.

use std::process::Command;

#[test]
fn the_committed_schema_is_what_userhub_schema_prints() {
    let output = Command::new(env!("CARGO_BIN_EXE_userhub"))
        .arg("schema")
        .env_remove("DATABASE_URL")
        .output()
        .expect("userhub schema runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let printed = String::from_utf8(output.stdout).expect("UTF-8");
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql");
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    if std::env::var("UPDATE_SCHEMA").as_deref() == Ok("1") {
        std::fs::write(path, &printed).expect("write schema.graphql");
        return;
    }
    assert!(
        printed == committed,
        "schema.graphql is out of date: run `UPDATE_SCHEMA=1 cargo test the_committed_schema` \
         (or `cargo run -- schema > schema.graphql`) and commit it"
    );
}
