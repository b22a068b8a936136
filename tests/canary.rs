//! `weightwatch canary` end to end on loopback: a dashboard, a sensor
//! capturing live on `lo` and sending to it, and receivers for the upload
//! (HTTP, raw TCP), all started here. The canary's upload, by either path,
//! must come back as an alert on the dashboard; an upload the sensor cannot
//! see must fail the test run.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn weightwatch() -> Command {
    Command::new(env!("CARGO_BIN_EXE_weightwatch"))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Kills the child when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A receiver that takes any upload (201), on its own thread.
fn receiver() -> u16 {
    let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let port = server.server_addr().to_ip().unwrap().port();
    std::thread::spawn(move || {
        for mut req in server.incoming_requests() {
            let _ = std::io::copy(req.as_reader(), &mut std::io::sink());
            let _ = req.respond(tiny_http::Response::empty(201));
        }
    });
    port
}

/// A raw TCP receiver that reads each connection to its end, on its own thread.
fn tcp_receiver() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut c in l.incoming().map_while(Result::ok) {
            let _ = std::io::copy(&mut c, &mut std::io::sink());
        }
    });
    port
}

fn canary(
    dir: &Path,
    put_port: u16,
    dash: &str,
    token: &str,
    deadline: u64,
) -> (bool, serde_json::Value) {
    let url = format!("http://127.0.0.1:{put_port}/up");
    canary_by(dir, &["--put", &url], put_port, dash, token, deadline)
}

fn canary_by(
    dir: &Path,
    path: &[&str],
    port: u16,
    dash: &str,
    token: &str,
    deadline: u64,
) -> (bool, serde_json::Value) {
    let eve = dir.join(format!("canary-{port}.json"));
    let st = weightwatch()
        .arg("canary")
        .args(path)
        .args(["--dashboard", dash, "--token", token])
        .args(["--deadline-secs", &deadline.to_string(), "--size", "262144"])
        .arg("--eve")
        .arg(&eve)
        .status()
        .unwrap();
    let text = std::fs::read_to_string(&eve).unwrap();
    let event: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
    assert_eq!(event["event_type"], "stats");
    (st.success(), event["stats"]["canary"].clone())
}

#[test]
fn canary_alert_reaches_the_dashboard() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ww.db");
    let ingest = dashboard::admin::create_token(&db, dashboard::Scope::Ingest, "sensor").unwrap();
    let read = dashboard::admin::create_token(&db, dashboard::Scope::Read, "canary").unwrap();
    let dash_port = free_port();
    let dash = format!("http://127.0.0.1:{dash_port}");
    let _serve = Running(
        weightwatch()
            .args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{dash_port}"),
                "--db",
            ])
            .arg(&db)
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let up = Instant::now() + Duration::from_secs(60);
    while agent.get(format!("{dash}/healthz")).call().is_err() {
        assert!(Instant::now() < up, "the dashboard did not start");
        std::thread::sleep(Duration::from_millis(100));
    }

    let watched = receiver();
    let unwatched = receiver();
    let raw = tcp_receiver();
    // The canary registered as such: the sensor's known-file alert says so.
    let file = dir.path().join("canary.safetensors");
    let idx = dir.path().join("canary.idx");
    let st = weightwatch()
        .args(["canary", "--size", "262144", "--write"])
        .arg(&file)
        .status()
        .unwrap();
    assert!(st.success());
    let out = weightwatch()
        .args(["index", "build", "--canary"])
        .arg(&file)
        .arg("--out")
        .arg(&idx)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let show = weightwatch()
        .args(["index", "show"])
        .arg(&idx)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&show.stdout).contains("(canary)"));
    let mut sensor = Running(
        weightwatch()
            .args([
                "capture",
                "-i",
                "lo",
                "--workers",
                "1",
                "--eve",
                "/dev/null",
            ])
            .arg("--index")
            .arg(&idx)
            .args(["--bpf", &format!("tcp port {watched} or tcp port {raw}")])
            .args(["--dashboard", &dash, "--token", &ingest, "--spool-dir"])
            .arg(dir.path().join("spool"))
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let stderr = sensor.0.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("capture handle open") {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(60))
        .expect("the sensor did not open lo (needs root / CAP_NET_RAW)");

    let (ok, result) = canary(dir.path(), watched, &dash, &read, 60);
    assert!(ok, "{result}");
    assert_eq!(result["ok"], 1);
    assert_eq!(result["put_status"], 201);

    // The raw TCP path: found by destination and the canary id in the
    // file's metadata.
    let to = format!("127.0.0.1:{raw}");
    let (ok, result) = canary_by(dir.path(), &["--tcp", &to], raw, &dash, &read, 60);
    assert!(ok, "{result}");
    assert_eq!(result["ok"], 1);
    // The registered canary was caught: the dashboard's last exfiltration test.
    let up = Instant::now() + Duration::from_secs(60);
    let last = loop {
        let mut r = agent
            .get(format!("{dash}/api/v1/canary"))
            .header("authorization", format!("Bearer {read}"))
            .call()
            .unwrap();
        let v: serde_json::Value =
            serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
        if v["last_detected"]["dest_port"] == raw || Instant::now() > up {
            break v["last_detected"].clone();
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(last["evidence"]["canary"], true, "{last}");
    assert_eq!(last["dest_port"], raw);

    // Through a path the sensor does not watch, the test fails (quickly).
    let (ok, result) = canary(dir.path(), unwatched, &dash, &read, 2);
    assert!(!ok);
    assert_eq!(result["ok"], 0);
}
