//! `/healthz` tells the truth about the store (issue 14, item 14), and the
//! static assets come from the binary (item 15).

use super::STORE;
use crate::common::*;
use dashboard::store::Database;
use dashboard::{DashboardConfig, Scope};
use serde_json::json;

/// Makes a file unwritable, even for root (`chattr +i`), until dropped.
struct ReadOnly(std::path::PathBuf);

impl ReadOnly {
    fn new(path: &std::path::Path) -> ReadOnly {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o444)).unwrap();
        if std::fs::OpenOptions::new().write(true).open(path).is_ok() {
            let ok = std::process::Command::new("chattr")
                .arg("+i")
                .arg(path)
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            assert!(
                ok,
                "cannot make {} read-only (root without chattr)",
                path.display()
            );
        }
        ReadOnly(path.to_path_buf())
    }
}

impl Drop for ReadOnly {
    fn drop(&mut self) {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::process::Command::new("chattr")
            .arg("-i")
            .arg(&self.0)
            .stderr(std::process::Stdio::null())
            .status();
        let _ = std::fs::set_permissions(&self.0, std::fs::Permissions::from_mode(0o644));
    }
}

#[test]
fn health_says_not_ok_when_the_database_cannot_be_written() {
    let s = TestServer::start_on(STORE);
    let ingest = s.token(Scope::Ingest);
    let r = s.get("/healthz", None);
    assert_eq!((r.status, r.body.as_str()), (200, "ok\n"));
    let stopped = s.stop();
    // SQLite: a file nobody may write; PostgreSQL: a database whose
    // transactions are read-only.
    let _guard = match stopped.db() {
        Database::Sqlite(path) => Some(ReadOnly::new(path)),
        Database::Postgres(url) => {
            let name = url.rsplit('/').next().unwrap();
            run_sql(
                stopped.db(),
                &format!("ALTER DATABASE {name} SET default_transaction_read_only = on"),
            )
            .unwrap();
            None
        }
    };
    let s = stopped.start_again(DashboardConfig::default());
    // While a background job holds the writer (it is about to fail), the
    // store cannot be probed and health reports the last known state; it
    // must turn to 503 once that write has failed.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let r = loop {
        let r = s.get("/healthz", None);
        if r.status == 503 || std::time::Instant::now() > deadline {
            break r;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert_eq!(r.status, 503, "{}", r.body);
    assert!(!r.body.starts_with("ok"), "{}", r.body);
    let e = flow("f", 0, 1, "10.0.0.5", "203.0.113.9", 1);
    let r = s.post_json("/api/v1/events", Some(&ingest), &json!([e]).to_string());
    assert_ne!(r.status, 200, "{}", r.body);
    drop(s);
}

// 15: assets come from the binary

#[test]
fn static_files_come_from_the_binary_not_the_checkout() {
    let s = TestServer::start_on(STORE);
    assert_eq!(s.get("/static/app.js", None).status, 200);
    // A file planted in the source tree after the build is not served.
    let name = format!("planted-{}.js", std::process::id());
    let planted = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("assets")
        .join(&name);
    struct Remove(std::path::PathBuf);
    impl Drop for Remove {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
    std::fs::write(&planted, "alert('planted')").unwrap();
    let _remove = Remove(planted);
    let r = s.get(&format!("/static/{name}"), None);
    assert_eq!(r.status, 404, "{}", r.body);
}
