//! Upgrades: a database written by a newer weightwatch (a higher schema
//! version) is refused on start with a message that says so, and is left
//! exactly as it was (on either store).

use super::STORE;
use crate::common::{Backend, run_sql};
use crate::pg_cluster;
use dashboard::store::{Database, migrations, postgres};
use dashboard::{DashboardConfig, Server};

/// One value from `sql` in `db` (as text).
fn query_one(db: &Database, sql: &str) -> String {
    match db {
        Database::Sqlite(path) => {
            let conn = rusqlite::Connection::open(path).unwrap();
            conn.query_row(sql, [], |r| r.get::<_, rusqlite::types::Value>(0))
                .map(|v| match v {
                    rusqlite::types::Value::Integer(i) => i.to_string(),
                    rusqlite::types::Value::Text(t) => t,
                    other => format!("{other:?}"),
                })
                .unwrap()
        }
        Database::Postgres(url) => {
            let name = url.rsplit('/').next().unwrap();
            pg_cluster::shared()
                .psql(name, sql)
                .unwrap()
                .trim()
                .to_string()
        }
    }
}

#[test]
fn a_database_from_a_newer_schema_is_refused_and_not_changed() {
    let dir = tempfile::tempdir().unwrap();
    let db = STORE.fresh(dir.path());
    let supported = match STORE {
        Backend::Sqlite => migrations::latest(),
        Backend::Postgres => postgres::schema_version(),
    };
    let newer = supported + 1;
    // What a future release might leave: a table this one does not know.
    let (setup, version_sql, tables_sql) = match STORE {
        Backend::Sqlite => (
            format!("CREATE TABLE future_things (x INTEGER); PRAGMA user_version = {newer};"),
            "PRAGMA user_version",
            "SELECT group_concat(name, ',') FROM \
             (SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name)",
        ),
        Backend::Postgres => (
            format!(
                "CREATE TABLE future_things (x INTEGER);
                 CREATE TABLE schema_version (version BIGINT NOT NULL);
                 INSERT INTO schema_version (version) VALUES ({newer});"
            ),
            "SELECT version FROM schema_version",
            "SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_tables \
             WHERE schemaname = 'public'",
        ),
    };
    run_sql(&db, &setup).unwrap();
    let tables_before = query_one(&db, tables_sql);
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
            && err.contains(&format!("this weightwatch's {supported}"))
            && err.contains("not changed"),
        "{err}"
    );
    assert_eq!(query_one(&db, version_sql), newer.to_string());
    assert_eq!(
        query_one(&db, tables_sql),
        tables_before,
        "no migration ran"
    );
    match STORE {
        Backend::Sqlite => assert_eq!(tables_before, "future_things"),
        Backend::Postgres => assert_eq!(tables_before, "future_things,schema_version"),
    }
}
