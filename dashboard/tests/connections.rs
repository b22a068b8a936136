//! Hostile clients at the connection level (issue 14, items 10 and 13):
//! idle connections, oversized batches, bodies slow to parse.

use crate::common::*;
use dashboard::{DashboardConfig, Scope};
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

// 10: idle connections are closed; a real request gets through

#[test]
fn idle_connections_are_closed_and_real_requests_get_through() {
    let cfg = DashboardConfig {
        header_read_timeout_secs: 1,
        idle_timeout_secs: 2,
        max_connections: 8,
        ..DashboardConfig::default()
    };
    let s = TestServer::with_config(cfg);
    // Twenty clients: some send nothing, some half a request head, some a
    // head promising a body they never send.
    let mut idle: Vec<TcpStream> = (0..20)
        .map(|i| {
            let mut c = TcpStream::connect(s.addr).unwrap();
            match i % 3 {
                0 => {}
                1 => c
                    .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
                    .unwrap(),
                _ => c
                    .write_all(
                        b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nuser",
                    )
                    .unwrap(),
            }
            c
        })
        .collect();
    let started = Instant::now();
    let r = request("GET", &s.url("/healthz"), None, None, &[]);
    assert_eq!(r.status, 200);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "a real request waited {:?}",
        started.elapsed()
    );
    // Every idle connection is closed by the server, none is kept open.
    for (i, c) in idle.iter_mut().enumerate() {
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut buf = [0u8; 512];
        let closed = loop {
            match c.read(&mut buf) {
                Ok(0) => break true,
                Ok(_) => continue, // an error response before the close
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break false,
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => break false,
                Err(_) => break true, // reset
            }
        };
        assert!(
            closed,
            "idle connection {i} still open after {:?}",
            started.elapsed()
        );
    }
    assert!(started.elapsed() < Duration::from_secs(15));
}

// 13: large bodies: early 413, parsing off the async threads

#[test]
fn an_oversized_batch_is_refused_before_the_body_ends() {
    let cfg = DashboardConfig {
        max_batch_events: 100,
        ..DashboardConfig::default()
    };
    let s = TestServer::with_config(cfg);
    let ingest = s.token(Scope::Ingest);
    let mut c = TcpStream::connect(s.addr).unwrap();
    let head = format!(
        "POST /api/v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ingest}\r\n\
         Content-Type: application/json\r\nContent-Length: 8000000\r\n\r\n"
    );
    c.write_all(head.as_bytes()).unwrap();
    // 200 elements of an array that would go on for 8 MB; the rest never comes.
    let start: String = std::iter::once("[".to_string())
        .chain((0..200).map(|i| format!("{{\"event_id\": \"e,{i}\"}},")))
        .collect();
    c.write_all(start.as_bytes()).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = [0u8; 4096];
    let n = c.read(&mut buf).expect("an answer before the body ends");
    let text = String::from_utf8_lossy(&buf[..n]);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
}

/// A valid batch that is slow to parse: alerts with huge evidence arrays.
fn heavy_batch(tag: &str) -> String {
    let numbers: Vec<Value> = (0..350_000).map(|i| json!(i % 1000)).collect();
    let events: Vec<Value> = (0..4)
        .map(|i| {
            let mut a = account_alert(&format!("{tag}-{i}"), i, "acct", 0.9, None);
            a["evidence"]["bulk"] = Value::Array(numbers.clone());
            a
        })
        .collect();
    Value::Array(events).to_string()
}

#[test]
fn parsing_large_batches_does_not_stall_other_requests() {
    let s = TestServer::start();
    let ingest = s.token(Scope::Ingest);
    let bodies: Vec<String> = (0..2).map(|i| heavy_batch(&format!("h{i}"))).collect();
    assert!(bodies[0].len() < 16 << 20);
    let done = std::sync::atomic::AtomicUsize::new(0);
    let (worst, ingest_time) = std::thread::scope(|t| {
        let started = Instant::now();
        let posts: Vec<_> = bodies
            .iter()
            .map(|b| {
                let (s, ingest, done) = (&s, &ingest, &done);
                t.spawn(move || {
                    let r = s.post_json("/api/v1/events", Some(ingest), b);
                    done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    assert_eq!(r.status, 200, "{}", r.body);
                })
            })
            .collect();
        let mut worst = Duration::ZERO;
        while done.load(std::sync::atomic::Ordering::SeqCst) < posts.len() {
            let t0 = Instant::now();
            assert_eq!(s.get("/healthz", None).status, 200);
            worst = worst.max(t0.elapsed());
            std::thread::sleep(Duration::from_millis(20));
        }
        for p in posts {
            p.join().unwrap();
        }
        (worst, started.elapsed())
    });
    eprintln!("healthz worst {worst:?} while two batches took {ingest_time:?}");
    assert!(
        worst < Duration::from_millis(750) && worst * 4 < ingest_time,
        "healthz stalled {worst:?} while two batches took {ingest_time:?}"
    );
}
