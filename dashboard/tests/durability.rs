//! Durability: a server process is killed with SIGKILL while batches stream
//! in, restarted, and every acknowledged event must be stored exactly once.
//!
//! The server runs in a child process: this test binary re-executes itself
//! with `--ignored --exact …::durability::child_server` and the database in
//! the environment (no extra binary needed). On PostgreSQL the test has a
//! cluster of its own, and after each kill of the server PostgreSQL itself
//! is stopped as a crash would stop it (`pg_ctl stop -m immediate`) and
//! started again.

use super::STORE;
use crate::common::*;
use crate::pg_cluster::Cluster;
use dashboard::store::Database;
use dashboard::{DashboardConfig, Scope, Server};
use eve::AlertCategory;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const DB_ENV: &str = "WW_DURABILITY_DB";
const ADDR_ENV: &str = "WW_DURABILITY_ADDR_FILE";

/// The server of the durability test; does nothing unless started by it.
#[test]
#[ignore = "run as a child process by acknowledged_events_survive_kill_9"]
fn child_server() {
    let (Ok(db), Ok(addr_file)) = (std::env::var(DB_ENV), std::env::var(ADDR_ENV)) else {
        return;
    };
    let cfg = DashboardConfig {
        ingest_requests_per_second: 100_000,
        ingest_burst: 100_000,
        ..DashboardConfig::default()
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async move {
        let server = Server::bind(&cfg, Database::parse(&db), "127.0.0.1:0")
            .await
            .unwrap();
        let tmp = format!("{addr_file}.tmp");
        std::fs::write(&tmp, server.local_addr().unwrap().to_string()).unwrap();
        std::fs::rename(&tmp, &addr_file).unwrap();
        server.serve(std::future::pending()).await.unwrap();
    });
}

struct Child9 {
    child: Child,
    addr: String,
}

impl Drop for Child9 {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// This module's child server test, as `--exact` names it.
fn child_test() -> String {
    let module = module_path!().split_once("::").unwrap().1;
    format!("{module}::child_server")
}

fn spawn_server(db: &str, dir: &Path, round: usize) -> Child9 {
    let addr_file: PathBuf = dir.join(format!("addr-{round}"));
    let mut srv = Child9 {
        child: Command::new(std::env::current_exe().unwrap())
            .args(["--ignored", "--exact", &child_test(), "--nocapture"])
            .env(DB_ENV, db)
            .env(ADDR_ENV, &addr_file)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
        addr: String::new(),
    };
    // The child writes its address once it listens (bounded wait, not a
    // timing assertion: only to fail instead of hanging).
    for _ in 0..1200 {
        if let Ok(addr) = std::fs::read_to_string(&addr_file) {
            srv.addr = addr;
            return srv;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("server child did not start");
}

fn batch(round: usize, n: usize, size: usize) -> Vec<Value> {
    (0..size)
        .map(|i| {
            let id = format!("r{round}-b{n}-e{i}");
            sensor_alert(
                &id,
                (n * size + i) as i64,
                AlertCategory::EgressVolume,
                2,
                i as u64,
                "10.1.0.1",
                "192.0.2.77",
                "d.example",
            )
        })
        .collect()
}

#[test]
fn acknowledged_events_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let (db, cluster) = match STORE {
        Backend::Sqlite => (dir.path().join("durable.db").display().to_string(), None),
        Backend::Postgres => {
            let c = Cluster::start().unwrap();
            (c.create_database(), Some(c))
        }
    };
    let db = db.as_str();
    // Create the schema and tokens before the first server.
    let ingest = dashboard::admin::create_token(db, Scope::Ingest, "sensor").unwrap();
    let read = dashboard::admin::create_token(db, Scope::Read, "reader").unwrap();
    let acked: Arc<Mutex<BTreeSet<String>>> = Arc::default();
    let mut sent_total = 0usize;
    let mut unacked_retry: Option<Vec<Value>> = None;
    for round in 0..3 {
        let mut srv = spawn_server(db, dir.path(), round);
        let url = format!("http://{}/api/v1/events", srv.addr);
        let stop = Arc::new(AtomicBool::new(false));
        let acked_batches = Arc::new(Mutex::new(0usize));
        // The retried batch first (a sensor's spool resends what was not acknowledged).
        let retry = unacked_retry.take();
        let sender = {
            let (acked, stop, acked_batches, url, ingest) = (
                acked.clone(),
                stop.clone(),
                acked_batches.clone(),
                url.clone(),
                ingest.clone(),
            );
            std::thread::spawn(move || {
                let mut pending: Option<Vec<Value>> = retry;
                let mut n = 0;
                let mut sent = 0;
                loop {
                    let b = pending.take().unwrap_or_else(|| {
                        n += 1;
                        batch(round, n, 50)
                    });
                    sent += b.len();
                    let body = Value::from(b.clone()).to_string();
                    let r = try_request(
                        "POST",
                        &url,
                        Some(&ingest),
                        Some(&body),
                        &[("content-type", "application/json")],
                    );
                    match r {
                        Ok(resp) if resp.status == 200 => {
                            let mut a = acked.lock().unwrap();
                            for e in &b {
                                a.insert(e["event_id"].as_str().unwrap().to_string());
                            }
                            *acked_batches.lock().unwrap() += 1;
                        }
                        // Connection refused/reset: the server is gone; this
                        // batch is unacknowledged and will be retried.
                        _ => return (Some(b), sent),
                    }
                    if stop.load(Ordering::Relaxed) {
                        return (None, sent);
                    }
                }
            })
        };
        // Kill the server mid-stream once some batches were acknowledged.
        while *acked_batches.lock().unwrap() < 20 + round * 7 {
            std::thread::sleep(Duration::from_millis(5));
        }
        srv.child.kill().unwrap(); // SIGKILL
        srv.child.wait().unwrap();
        if let Some(c) = &cluster {
            c.crash_and_restart();
        }
        stop.store(true, Ordering::Relaxed);
        let (retry, sent) = sender.join().unwrap();
        sent_total += sent;
        unacked_retry = retry;
    }
    // Restart once more, resend the last unacknowledged batch, and read everything back.
    let mut srv = spawn_server(db, dir.path(), 99);
    let url = format!("http://{}", srv.addr);
    if let Some(b) = unacked_retry {
        let r = request(
            "POST",
            &format!("{url}/api/v1/events"),
            Some(&ingest),
            Some(&Value::from(b.clone()).to_string()),
            &[],
        );
        assert_eq!(r.status, 200, "{}", r.body);
        let mut a = acked.lock().unwrap();
        for e in &b {
            a.insert(e["event_id"].as_str().unwrap().to_string());
        }
    }
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("{url}/api/v1/alerts?limit=10000");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let v = request("GET", &path, Some(&read), None, &[]).json();
        for a in v["alerts"].as_array().unwrap() {
            *counts
                .entry(a["event_id"].as_str().unwrap().to_string())
                .or_default() += 1;
        }
        match v["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    srv.child.kill().unwrap();
    srv.child.wait().unwrap();
    let acked = acked.lock().unwrap();
    assert!(
        acked.len() >= 50 * 20,
        "enough was acknowledged to mean something"
    );
    let missing: Vec<&String> = acked
        .iter()
        .filter(|id| !counts.contains_key(*id))
        .collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged events lost, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    let twice: Vec<(&String, &usize)> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "stored more than once: {twice:?}");
    assert!(counts.len() <= sent_total);
}
