//! Two `weightwatch serve` processes on one PostgreSQL are one dashboard:
//! an alert ingested through one reaches the other's live stream, and
//! still does after PostgreSQL restarts (each server's `LISTEN` connection
//! reconnects). The cluster is started by the test (`pg_cluster`, shared
//! with the dashboard's tests).

use crate::pg_cluster::Cluster;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Lines, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `weightwatch serve` process, killed when dropped.
struct Serve {
    child: Child,
    port: u16,
}

impl Serve {
    fn start(db: &str) -> Serve {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(env!("CARGO_BIN_EXE_weightwatch"))
            .args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--db",
                db,
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let serve = Serve { child, port };
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "serve did not listen");
            std::thread::sleep(Duration::from_millis(100));
        }
        serve
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// POST one alert; the HTTP status and the answer.
    fn ingest(&self, token: &str, id: &str) -> (u16, String) {
        let mut evidence = serde_json::Map::new();
        evidence.insert("format".into(), "safetensors".into());
        let body = eve::AlertEvent::new(
            eve::Alert::new(
                format!("replica test {id}"),
                1001,
                eve::AlertCategory::WeightsFormat,
                1,
            ),
            evidence,
        );
        let mut event =
            eve::Event::new(eve::Timestamp::now(), eve::EventKind::Alert(Box::new(body)))
                .sensor("sensor-r");
        event.event_id = id.to_string();
        let alert = json!([event]);
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into();
        match agent
            .post(self.url("/api/v1/events"))
            .header("authorization", format!("Bearer {token}"))
            .content_type("application/json")
            .send(alert.to_string())
        {
            Ok(mut r) => (
                r.status().as_u16(),
                r.body_mut().read_to_string().unwrap_or_default(),
            ),
            Err(e) => (0, e.to_string()),
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `/api/v1/stream` (server-sent events) over a raw socket.
struct Stream(Lines<BufReader<TcpStream>>);

impl Stream {
    fn open(s: &Serve, token: &str) -> Stream {
        let mut sock = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
        // Bounded, so a lost update fails the test instead of hanging it.
        sock.set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        write!(
            sock,
            "GET /api/v1/stream HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\
             Accept: text/event-stream\r\n\r\n"
        )
        .unwrap();
        let mut lines = BufReader::new(sock).lines();
        let status = lines.next().unwrap().unwrap();
        assert!(status.contains("200"), "{status}");
        for l in lines.by_ref() {
            if l.unwrap().is_empty() {
                break;
            }
        }
        Stream(lines)
    }

    /// The `event_id` of the next `alert` update.
    fn next_alert(&mut self) -> String {
        let mut kind = None;
        for l in self.0.by_ref() {
            let l = l.expect("the stream delivers before its read timeout");
            if let Some(k) = l.strip_prefix("event: ") {
                kind = Some(k.to_string());
            } else if let (Some("alert"), Some(d)) = (kind.as_deref(), l.strip_prefix("data: ")) {
                let v: Value = serde_json::from_str(d).unwrap();
                return v["event_id"].as_str().unwrap().to_string();
            }
        }
        panic!("the stream ended");
    }
}

fn token(db: &str, scope: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_weightwatch"))
        .args([
            "token", "create", "--scope", scope, "--name", scope, "--db", db,
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[test]
fn two_serve_processes_share_live_updates_across_a_postgres_restart() {
    let cluster = Cluster::start().expect("PostgreSQL for the test");
    let db = cluster.create_database();
    let (ingest, read) = (token(&db, "ingest"), token(&db, "read"));
    let a = Serve::start(&db);
    let b = Serve::start(&db);
    let mut on_b = Stream::open(&b, &read);

    assert_eq!(a.ingest(&ingest, "before-restart").0, 200);
    assert_eq!(on_b.next_alert(), "before-restart");

    // PostgreSQL stops as a crash stops it and starts again on its port.
    cluster.crash_and_restart();
    // Both servers' listening connections come back (an update announced
    // before B listens again would not be replayed, as documented).
    let name = db.rsplit('/').next().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let listening = cluster
            .psql(
                name,
                "SELECT count(*) FROM pg_stat_activity WHERE query = 'LISTEN weightwatch_live'",
            )
            .unwrap_or_default();
        if listening.trim() == "2" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the servers did not listen again: {listening:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let (status, body) = a.ingest(&ingest, "after-restart");
    assert_eq!(status, 200, "{body}");
    assert_eq!(on_b.next_alert(), "after-restart");
}
