//! Upgrades: a database written by a newer weightwatch (a higher schema
//! version) is refused on start with a message that says so, and is left
//! exactly as it was.

use dashboard::store::migrations;
use dashboard::{DashboardConfig, Server};

#[test]
fn a_database_from_a_newer_schema_is_refused_and_not_changed() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("weightwatch.db");
    let newer = migrations::latest() + 1;
    {
        // What a future release might leave: a table this one does not know.
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute_batch(&format!(
            "CREATE TABLE future_things (x INTEGER); PRAGMA user_version = {newer};"
        ))
        .unwrap();
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let err = match rt.block_on(Server::bind(
        &DashboardConfig::default(),
        &db,
        "127.0.0.1:0",
    )) {
        Ok(_) => panic!("a database of schema version {newer} was opened"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.contains(&format!("schema version {newer} is newer"))
            && err.contains(&format!("this weightwatch's {}", migrations::latest()))
            && err.contains("not changed"),
        "{err}"
    );
    let conn = rusqlite::Connection::open(&db).unwrap();
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, newer);
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(tables, vec!["future_things"], "no migration ran");
}
