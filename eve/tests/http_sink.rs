//! The dashboard sink delivers every event exactly once across receiver
//! restarts, lost acknowledgements and its own restarts.

use eve::sink::EventSink;
use eve::sink::http::{HttpSink, HttpSinkConfig};
use eve::{Event, EventKind, Stats, StatsEvent, Timestamp};
use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// What the test receiver has stored, shared across its restarts (as a
/// dashboard's database would be).
#[derive(Default)]
struct Store {
    ids: Vec<String>,
    seen: HashSet<String>,
    posts: u64,
    events_received: u64,
    /// Answer every Nth batch with a 500 after storing it (a lost ack).
    lose_ack_every: u64,
    /// Reject (422) events whose sensor_id is "poison".
    reject_poison: bool,
}

struct Receiver {
    server: Arc<tiny_http::Server>,
    thread: Option<JoinHandle<()>>,
}

impl Receiver {
    fn start(addr: &str, store: Arc<Mutex<Store>>) -> Receiver {
        let server = Arc::new(tiny_http::Server::http(addr).expect("bind receiver"));
        let s = server.clone();
        let thread = std::thread::spawn(move || {
            for mut req in s.incoming_requests() {
                assert_eq!(req.url(), "/api/v1/events");
                let auth = req
                    .headers()
                    .iter()
                    .find(|h| h.field.equiv("Authorization"))
                    .map(|h| h.value.to_string());
                if auth.as_deref() != Some("Bearer tok") {
                    let _ = req.respond(tiny_http::Response::empty(401));
                    continue;
                }
                let mut body = String::new();
                req.as_reader().read_to_string(&mut body).unwrap();
                let events: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap();
                let mut st = store.lock().unwrap();
                st.posts += 1;
                st.events_received += events.len() as u64;
                let (mut accepted, mut dups, mut rejected) = (0, 0, vec![]);
                for (i, e) in events.iter().enumerate() {
                    if st.reject_poison && e["sensor_id"] == "poison" {
                        rejected.push(serde_json::json!({"index": i, "error": "poison"}));
                        continue;
                    }
                    let id = e["event_id"].as_str().unwrap().to_string();
                    if st.seen.insert(id.clone()) {
                        st.ids.push(id);
                        accepted += 1;
                    } else {
                        dups += 1;
                    }
                }
                let lose = st.lose_ack_every > 0 && st.posts.is_multiple_of(st.lose_ack_every);
                drop(st);
                let status = if lose {
                    500
                } else if rejected.is_empty() {
                    200
                } else {
                    422
                };
                let reply = serde_json::json!({"accepted": accepted, "duplicates": dups, "rejected": rejected});
                let _ = req.respond(
                    tiny_http::Response::from_string(reply.to_string()).with_status_code(status),
                );
            }
        });
        Receiver {
            server,
            thread: Some(thread),
        }
    }

    fn stop(mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}

fn free_addr() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().to_string()
}

fn config(addr: &str, spool: &std::path::Path) -> HttpSinkConfig {
    let mut c = HttpSinkConfig::new(format!("http://{addr}"), "tok", spool.to_path_buf());
    c.batch_events = 7;
    c.retry_min = Duration::from_millis(10);
    c.retry_max = Duration::from_millis(100);
    c.request_timeout = Duration::from_secs(5);
    c.close_timeout = Duration::from_secs(30);
    c
}

fn event(i: usize, sensor: &str) -> Event {
    let mut s = Stats::default();
    s.add("test", "i", i as u64);
    Event::new(Timestamp::now(), EventKind::Stats(StatsEvent { stats: s })).sensor(sensor)
}

#[test]
fn exactly_once_across_receiver_restart_and_lost_acks() {
    let addr = free_addr();
    let spool = tempfile::tempdir().unwrap();
    let store = Arc::new(Mutex::new(Store {
        lose_ack_every: 4,
        ..Store::default()
    }));
    let mut rx = Some(Receiver::start(&addr, store.clone()));
    let mut sink = HttpSink::start(config(&addr, spool.path())).unwrap();
    let mut sent = Vec::new();
    for i in 0..300 {
        if i == 100 {
            rx.take().unwrap().stop(); // the dashboard goes down mid-stream
        }
        if i == 200 {
            rx = Some(Receiver::start(&addr, store.clone())); // and comes back
        }
        let e = event(i, "s1");
        sent.push(e.event_id.clone());
        sink.emit(&e).unwrap();
        if i % 10 == 0 {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    sink.close().expect("everything delivered");
    rx.unwrap().stop();
    let st = store.lock().unwrap();
    assert_eq!(st.ids, sent, "every event stored once, in order");
    assert!(
        st.events_received > sent.len() as u64,
        "lost acks caused retries ({} received)",
        st.events_received
    );
    assert!(sink.stats().duplicates.load(Ordering::Relaxed) > 0);
    assert_eq!(sink.stats().dropped_full.load(Ordering::Relaxed), 0);
}

#[test]
fn spooled_events_survive_a_sink_restart() {
    let addr = free_addr();
    let spool = tempfile::tempdir().unwrap();
    let mut sent = Vec::new();
    {
        // No dashboard at all: everything stays in the spool.
        let mut c = config(&addr, spool.path());
        c.close_timeout = Duration::from_millis(200);
        let mut sink = HttpSink::start(c).unwrap();
        for i in 0..50 {
            let e = event(i, "s1");
            sent.push(e.event_id.clone());
            sink.emit(&e).unwrap();
        }
        let err = sink.close().unwrap_err().to_string();
        assert!(err.contains("spooled"), "{err}");
    }
    let store = Arc::new(Mutex::new(Store::default()));
    let rx = Receiver::start(&addr, store.clone());
    let mut sink = HttpSink::start(config(&addr, spool.path())).unwrap();
    sink.close()
        .expect("the spool drains once the dashboard is up");
    rx.stop();
    assert_eq!(store.lock().unwrap().ids, sent);
}

#[test]
fn rejected_events_are_not_retried_forever() {
    let addr = free_addr();
    let spool = tempfile::tempdir().unwrap();
    let store = Arc::new(Mutex::new(Store {
        reject_poison: true,
        ..Store::default()
    }));
    let rx = Receiver::start(&addr, store.clone());
    let mut sink = HttpSink::start(config(&addr, spool.path())).unwrap();
    let mut good = Vec::new();
    for i in 0..20 {
        let e = event(i, if i % 5 == 0 { "poison" } else { "s1" });
        if i % 5 != 0 {
            good.push(e.event_id.clone());
        }
        sink.emit(&e).unwrap();
    }
    sink.close().unwrap();
    rx.stop();
    assert_eq!(store.lock().unwrap().ids, good);
    assert_eq!(sink.stats().rejected.load(Ordering::Relaxed), 4);
}

#[test]
fn a_full_spool_drops_and_counts() {
    let addr = free_addr();
    let spool = tempfile::tempdir().unwrap();
    let mut c = config(&addr, spool.path());
    c.spool_max_bytes = 2_000;
    c.close_timeout = Duration::from_millis(100);
    let mut sink = HttpSink::start(c).unwrap();
    for i in 0..100 {
        sink.emit(&event(i, "s1")).unwrap();
    }
    let spooled = sink.stats().spooled.load(Ordering::Relaxed);
    let dropped = sink.stats().dropped_full.load(Ordering::Relaxed);
    assert_eq!(spooled + dropped, 100);
    assert!(
        dropped > 0 && spooled > 0,
        "spooled {spooled}, dropped {dropped}"
    );
    assert!(sink.close().is_err());
}

#[test]
fn bad_url_is_a_clear_error() {
    let spool = tempfile::tempdir().unwrap();
    let c = HttpSinkConfig::new("localhost:8080", "t", spool.path().to_path_buf());
    let err = HttpSink::start(c).err().unwrap().to_string();
    assert!(err.contains("http://"), "{err}");
}
