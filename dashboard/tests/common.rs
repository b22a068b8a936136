//! A test server on a loopback socket, an HTTP client, and event builders
//! that use the real event model.

use crate::pg_cluster;
use dashboard::store::Database;
use dashboard::{DashboardConfig, Scope, Server};
use eve::{
    Alert, AlertCategory, AlertEvent, Event, EventKind, FileInfo, FileState, FileinfoEvent,
    FlowEvent, FlowReason, FlowRecord, FlowState, HttpInfo, NetworkFields, Proto, StatsEvent,
    Timestamp, TlsInfo,
};
use serde_json::{Value, json};
use std::io::{BufRead, Write};
use std::net::SocketAddr;
use std::path::Path;

/// Which store a test runs on (the store and API tests run on both).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file in a temporary directory.
    Sqlite,
    /// A fresh database on the tests' PostgreSQL cluster (`pg_cluster`).
    Postgres,
}

impl Backend {
    /// A fresh, empty database of this kind (files go in `dir`).
    pub fn fresh(self, dir: &Path) -> Database {
        match self {
            Backend::Sqlite => Database::Sqlite(dir.join("weightwatch.db")),
            Backend::Postgres => Database::Postgres(pg_cluster::fresh_database()),
        }
    }
}

/// Run `sql` in database `db` directly (rusqlite or psql): `Err` with the
/// database's message when it refuses.
pub fn run_sql(db: &Database, sql: &str) -> Result<(), String> {
    match db {
        Database::Sqlite(path) => {
            let conn = rusqlite::Connection::open(path).map_err(|e| e.to_string())?;
            conn.busy_timeout(std::time::Duration::from_secs(10))
                .map_err(|e| e.to_string())?;
            conn.execute_batch(sql).map_err(|e| e.to_string())
        }
        Database::Postgres(url) => {
            let name = url.rsplit('/').next().unwrap();
            pg_cluster::shared().psql(name, sql).map(|_| ())
        }
    }
}

/// A dashboard serving a fresh database.
pub struct TestServer {
    pub addr: SocketAddr,
    pub db: Database,
    pub _dir: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TestServer {
    /// On SQLite (tests of what no store changes).
    pub fn start() -> TestServer {
        TestServer::start_on(Backend::Sqlite)
    }

    /// On SQLite (tests of what no store changes).
    pub fn with_config(cfg: DashboardConfig) -> TestServer {
        TestServer::with_config_on(Backend::Sqlite, cfg)
    }

    pub fn start_on(store: Backend) -> TestServer {
        TestServer::with_config_on(store, DashboardConfig::default())
    }

    pub fn with_config_on(store: Backend, cfg: DashboardConfig) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let db = store.fresh(dir.path());
        TestServer::on_db(cfg, db, dir)
    }

    pub fn on_db(cfg: DashboardConfig, db: Database, dir: tempfile::TempDir) -> TestServer {
        TestServer::launch(cfg, db, dir, Vec::new())
    }

    /// A fresh server on `store` offering these response actions on alerts.
    pub fn with_actions_on(store: Backend, actions: Vec<eve::actions::ActionConfig>) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let db = store.fresh(dir.path());
        TestServer::launch(DashboardConfig::default(), db, dir, actions)
    }

    fn launch(
        cfg: DashboardConfig,
        db: Database,
        dir: tempfile::TempDir,
        actions: Vec<eve::actions::ActionConfig>,
    ) -> TestServer {
        let spool = dir.path().join("spool");
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let db2 = db.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let server = Server::bind(&cfg, &db2, "127.0.0.1:0")
                    .await
                    .unwrap()
                    .with_actions(&actions, &spool)
                    .unwrap();
                addr_tx.send(server.local_addr().unwrap()).unwrap();
                server
                    .serve(async move {
                        let _ = stop_rx.await;
                    })
                    .await
                    .unwrap();
            });
        });
        let addr = addr_rx.recv().unwrap();
        TestServer {
            addr,
            db,
            _dir: dir,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Stop the server, keeping its database.
    pub fn stop(mut self) -> Stopped {
        let dir = std::mem::replace(&mut self._dir, tempfile::tempdir().unwrap());
        let db = self.db.clone();
        drop(self);
        Stopped { db, dir }
    }

    /// Stop and start again on the same database with `cfg`.
    pub fn restart(self, cfg: DashboardConfig) -> TestServer {
        self.stop().start_again(cfg)
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn token(&self, scope: Scope) -> String {
        dashboard::admin::create_token(&self.db, scope, "test").unwrap()
    }

    pub fn get(&self, path: &str, token: Option<&str>) -> Resp {
        request("GET", &self.url(path), token, None, &[])
    }

    pub fn post_json(&self, path: &str, token: Option<&str>, body: &str) -> Resp {
        request(
            "POST",
            &self.url(path),
            token,
            Some(body),
            &[("content-type", "application/json")],
        )
    }

    /// POST a batch, asserting 200, returning (accepted, duplicates).
    pub fn ingest(&self, token: &str, events: &[Value]) -> (u64, u64) {
        let r = self.post_json(
            "/api/v1/events",
            Some(token),
            &Value::from(events.to_vec()).to_string(),
        );
        assert_eq!(r.status, 200, "{}", r.body);
        let v = r.json();
        (
            v["accepted"].as_u64().unwrap(),
            v["duplicates"].as_u64().unwrap(),
        )
    }

    /// Every alert through the paginated API.
    pub fn all_alerts(&self, token: &str, query: &str) -> Vec<Value> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut path = format!("/api/v1/alerts?limit=1000&{query}");
            if let Some(c) = &cursor {
                path.push_str(&format!("&cursor={c}"));
            }
            let r = self.get(&path, Some(token));
            assert_eq!(r.status, 200, "{}", r.body);
            let v = r.json();
            out.extend(v["alerts"].as_array().unwrap().iter().cloned());
            match v["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => return out,
            }
        }
    }
}

/// A stopped [`TestServer`]'s database.
pub struct Stopped {
    db: Database,
    dir: tempfile::TempDir,
}

impl Stopped {
    pub fn db(&self) -> &Database {
        &self.db
    }

    pub fn start_again(self, cfg: DashboardConfig) -> TestServer {
        TestServer::on_db(cfg, self.db, self.dir)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A response read whole.
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into()
}

/// One HTTP request; never follows redirects; 4xx/5xx are not errors.
pub fn request(
    method: &str,
    url: &str,
    token: Option<&str>,
    body: Option<&str>,
    headers: &[(&str, &str)],
) -> Resp {
    try_request(method, url, token, body, headers).unwrap()
}

/// [`request`], with transport errors (refused, reset) returned.
pub fn try_request(
    method: &str,
    url: &str,
    token: Option<&str>,
    body: Option<&str>,
    headers: &[(&str, &str)],
) -> Result<Resp, ureq::Error> {
    let agent = agent();
    let mut b = ureq::http::Request::builder().method(method).uri(url);
    if let Some(t) = token {
        b = b.header("authorization", format!("Bearer {t}"));
    }
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let req = b.body(body.unwrap_or("").to_string()).unwrap();
    let mut resp = agent.run(req)?;
    let status = resp.status().as_u16();
    let headers = resp
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    let body = resp
        .body_mut()
        .with_config()
        .limit(256 << 20)
        .read_to_string()
        .unwrap_or_default();
    Ok(Resp {
        status,
        headers,
        body,
    })
}

/// A form POST to `path` from local address `from` (another loopback
/// address is another client, e.g. for the sign-in limits): the status and
/// the whole response as text.
pub fn request_from(
    from: &str,
    to: SocketAddr,
    method: &str,
    path: &str,
    form: &str,
) -> (u16, String) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let sock = tokio::net::TcpSocket::new_v4().unwrap();
        sock.bind(format!("{from}:0").parse().unwrap()).unwrap();
        let mut s = sock.connect(to).await.unwrap();
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {to}\r\nConnection: close\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
            form.len()
        );
        s.write_all(req.as_bytes()).await.unwrap();
        let mut out = Vec::new();
        s.read_to_end(&mut out).await.unwrap();
        let text = String::from_utf8_lossy(&out).to_string();
        let status = text
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        (status, text)
    })
}

pub fn ts(secs: i64) -> Timestamp {
    Timestamp::from_unix_micros(1_790_000_000_000_000 + secs * 1_000_000)
}

pub fn net(flow_id: u64, src: &str, dest: &str) -> NetworkFields {
    let mut n = NetworkFields::new(
        flow_id,
        src.parse().unwrap(),
        40000 + (flow_id % 20000) as u16,
        dest.parse().unwrap(),
        443,
        Proto::Tcp,
    );
    n.app_proto = Some("tls".into());
    n
}

/// A sensor alert on a flow (the argument list mirrors the fields it sets).
#[allow(clippy::too_many_arguments)]
pub fn sensor_alert(
    id: &str,
    secs: i64,
    category: AlertCategory,
    severity: u8,
    flow_id: u64,
    src: &str,
    dest: &str,
    sni: &str,
) -> Value {
    let mut evidence = serde_json::Map::new();
    evidence.insert("bytes".into(), json!(1_234_567_890u64));
    evidence.insert("format".into(), json!("safetensors"));
    evidence.insert("tensors".into(), json!(291));
    let mut a = AlertEvent::new(
        Alert::new(
            format!("weights upload {id}"),
            1000 + severity as u32,
            category,
            severity,
        ),
        evidence,
    );
    a.tls = Some(TlsInfo {
        sni: Some(sni.into()),
        ..TlsInfo::default()
    });
    let mut e = Event::new(ts(secs), EventKind::Alert(Box::new(a)))
        .sensor("sensor-a")
        .network(net(flow_id, src, dest));
    e.event_id = id.to_string();
    serde_json::to_value(e).unwrap()
}

/// An analyzer alert about an account.
pub fn account_alert(
    id: &str,
    secs: i64,
    account: &str,
    score: f64,
    cluster: Option<&str>,
) -> Value {
    // The analyzer's evidence shape (analyzer/src/alerts.rs) plus a timeline.
    let evidence = json!({
        "score": score,
        "families": ["harvest", "output_layer"],
        "signals": [
            {"name": "prompt_diversity", "family": "harvest", "value": 0.93, "threshold": 0.8, "detail": "distinct topics"},
            {"name": "logprobs_rate", "family": "output_layer", "value": 0.4, "threshold": 0.5, "detail": ""}
        ],
        "volume": {"requests": 12000, "requests_per_day": 4000.0, "active_hours": 22},
        "requests_per_hour": {"start": "2026-09-21T10:00:00Z", "step_hours": 1, "counts": [10, 50, 400, 900, 850]},
        "sample_prompts": [
            {"ts": "2026-09-21T10:00:00.000000+00:00", "kind": "reasoning", "prompt": "Explain step by step: 17*23"},
            {"ts": "2026-09-21T10:01:00.000000+00:00", "kind": "template", "prompt": "Translate to French: hello"}
        ],
    });
    let mut a = AlertEvent::new(
        Alert::new(
            "distillation suspected",
            2001,
            AlertCategory::Distillation,
            1,
        ),
        evidence.as_object().unwrap().clone(),
    );
    a.account_id = Some(account.into());
    a.cluster_id = cluster.map(String::from);
    let mut e = Event::new(ts(secs), EventKind::Alert(Box::new(a))).sensor("analyzer-1");
    e.event_id = id.to_string();
    serde_json::to_value(e).unwrap()
}

/// An analyzer cluster alert.
pub fn cluster_alert(id: &str, secs: i64, cluster: &str, members: &[&str]) -> Value {
    let mut a = AlertEvent::new(
        Alert::new(
            "distillation cluster",
            2002,
            AlertCategory::DistillationCluster,
            1,
        ),
        json!({"accounts": members.len()})
            .as_object()
            .unwrap()
            .clone(),
    );
    a.cluster_id = Some(cluster.into());
    a.members = Some(members.iter().map(|m| m.to_string()).collect());
    let mut e = Event::new(ts(secs), EventKind::Alert(Box::new(a))).sensor("analyzer-1");
    e.event_id = id.to_string();
    serde_json::to_value(e).unwrap()
}

/// A finished flow.
pub fn flow(id: &str, secs: i64, flow_id: u64, src: &str, dest: &str, up: u64) -> Value {
    let f = FlowEvent {
        flow: FlowRecord {
            pkts_toserver: up / 1400 + 1,
            pkts_toclient: 10,
            bytes_toserver: up,
            bytes_toclient: 5000,
            start: ts(secs - 10),
            end: ts(secs),
            state: FlowState::Closed,
            reason: FlowReason::Closed,
            plaintext_toserver: None,
            plaintext_toclient: None,
        },
        tls: Some(TlsInfo {
            sni: Some("upload.example.net".into()),
            ..TlsInfo::default()
        }),
        ssh: None,
        tcp: None,
    };
    let mut e = Event::new(ts(secs), EventKind::Flow(f))
        .sensor("sensor-a")
        .network(net(flow_id, src, dest));
    e.event_id = id.to_string();
    serde_json::to_value(e).unwrap()
}

/// A fileinfo of an HTTP upload.
pub fn fileinfo(
    id: &str,
    secs: i64,
    flow_id: u64,
    src: &str,
    dest: &str,
    filename: &str,
    url: &str,
) -> Value {
    let f = FileinfoEvent {
        fileinfo: FileInfo {
            filename: Some(filename.into()),
            size: 4096,
            sha256: Some("ab".repeat(32)),
            state: FileState::Closed,
            gaps: false,
            direction: eve::Direction::ToServer,
            format: Some(eve::WeightFormat::Safetensors),
            content_type: None,
        },
        http: Some(HttpInfo {
            hostname: Some("upload.example.net".into()),
            url: Some(url.into()),
            http_method: Some("PUT".into()),
            ..HttpInfo::default()
        }),
        tls: None,
    };
    let mut e = Event::new(ts(secs), EventKind::Fileinfo(f))
        .sensor("sensor-a")
        .network(net(flow_id, src, dest));
    e.event_id = id.to_string();
    serde_json::to_value(e).unwrap()
}

/// Sensor counters.
pub fn stats(id: &str, secs: i64, sensor: &str, packets: u64, drops: u64) -> Value {
    let mut s = StatsEvent::default();
    s.stats.uptime = 60;
    s.stats.add("capture", "packets", packets);
    s.stats.add("capture", "kernel_drops", drops);
    let mut e = Event::new(ts(secs), EventKind::Stats(s)).sensor(sensor);
    e.event_id = id.to_string();
    serde_json::to_value(e).unwrap()
}

/// The alert as the API shows it, minus the two fields the store adds.
pub fn strip_store_fields(mut v: Value) -> Value {
    let m = v.as_object_mut().unwrap();
    m.remove("id");
    m.remove("status");
    v
}

/// A live-stream subscription over a raw socket.
pub struct Stream(std::io::Lines<std::io::BufReader<std::net::TcpStream>>);

impl Stream {
    /// Subscribe to `s`'s live stream with read token `token`.
    pub fn open(s: &TestServer, token: &str) -> Stream {
        let mut sock = std::net::TcpStream::connect(s.addr).unwrap();
        // Bounded, so a lost update fails the test instead of hanging it.
        sock.set_read_timeout(Some(std::time::Duration::from_secs(60)))
            .unwrap();
        write!(
            sock,
            "GET /api/v1/stream HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\n\
             Accept: text/event-stream\r\n\r\n",
            s.addr
        )
        .unwrap();
        let mut lines = std::io::BufReader::new(sock).lines();
        let status = lines.next().unwrap().unwrap();
        assert!(status.contains("200"), "{status}");
        // Headers end with an empty line; the subscription is live by then.
        for l in lines.by_ref() {
            if l.unwrap().is_empty() {
                break;
            }
        }
        Stream(lines)
    }

    /// The next update other than an incident's: (event name, data as
    /// JSON).
    pub fn next(&mut self) -> (String, Value) {
        loop {
            let (kind, data) = self.any();
            if kind != "incident" {
                return (kind, data);
            }
        }
    }

    /// The next incident update (other updates skipped).
    pub fn next_incident(&mut self) -> Value {
        loop {
            let (kind, data) = self.any();
            if kind == "incident" {
                return data;
            }
        }
    }

    /// The next update of any kind.
    fn any(&mut self) -> (String, Value) {
        let mut kind = None;
        for l in self.0.by_ref() {
            let l = l.expect("the stream delivers before its read timeout");
            if let Some(k) = l.strip_prefix("event: ") {
                kind = Some(k.to_string());
            } else if let (Some(k), Some(d)) = (&kind, l.strip_prefix("data: ")) {
                return (k.clone(), serde_json::from_str(d).unwrap());
            }
        }
        panic!("the stream ended");
    }
}
