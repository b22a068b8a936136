//! The fleet view over the socket: `GET /api/v1/sensors` and the sensors
//! page show every sensor and analyzer with its counters per interval, its
//! alerts per category and its spool; a sensor that goes quiet is reported
//! once (audit log, live stream) and cleared when it reports again.

use super::STORE;
use crate::common::*;
use dashboard::{DashboardConfig, Scope};
use eve::{AlertCategory, Event, EventKind, StatsEvent};
use serde_json::Value;
use std::time::{Duration, Instant};

/// A `stats` event of `sensor` with capture counters and, when given, the
/// spool section a sensor reports about its outbox.
fn report(
    id: &str,
    secs: i64,
    sensor: &str,
    packets: u64,
    drops: u64,
    spool: Option<u64>,
) -> Value {
    let mut s = StatsEvent::default();
    s.stats.uptime = 60;
    s.stats.add("capture", "packets", packets);
    s.stats.add("capture", "kernel_drops", drops);
    if let Some(pending) = spool {
        s.stats.add("spool", "pending_events", pending);
    }
    let mut e = Event::new(ts(secs), EventKind::Stats(s)).sensor(sensor);
    e.event_id = id.to_string();
    serde_json::to_value(e).unwrap()
}

fn sensor<'a>(v: &'a Value, id: &str) -> &'a Value {
    v["sensors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["sensor_id"] == id)
        .unwrap_or_else(|| panic!("no sensor {id} in {v}"))
}

#[test]
fn sensors_show_counters_per_interval_alerts_per_category_and_spool() {
    let s = TestServer::start_on(STORE);
    let ingest = s.token(Scope::Ingest);
    let read = s.token(Scope::Read);
    let alert = |id: &str, secs: i64, cat: AlertCategory| {
        sensor_alert(
            id,
            secs,
            cat,
            2,
            secs as u64,
            "10.0.0.1",
            "192.0.2.1",
            "x.example",
        )
    };
    s.ingest(
        &ingest,
        &[
            report("st-1", 0, "sensor-a", 1_000, 10, None),
            alert("a-1", 10, AlertCategory::WeightsFormat),
            alert("a-2", 11, AlertCategory::WeightsFormat),
            alert("a-3", 12, AlertCategory::EgressVolume),
            account_alert("d-1", 13, "acct-1", 0.9, None),
        ],
    );
    // Before a second report there is no interval.
    let v = s.get("/api/v1/sensors", Some(&read)).json();
    assert_eq!(sensor(&v, "sensor-a")["interval"], Value::Null, "{v}");
    // A second report 60 s later, and an older one arriving late (ignored).
    s.ingest(
        &ingest,
        &[
            report("st-2", 60, "sensor-a", 4_000, 25, Some(17)),
            report("st-0", -60, "sensor-a", 10, 0, None),
        ],
    );
    let v = s.get("/api/v1/sensors", Some(&read)).json();
    let a = sensor(&v, "sensor-a");
    assert_eq!(
        a["interval"],
        serde_json::json!({"secs": 60, "packets": 3_000, "drops": 15}),
        "{a}"
    );
    assert_eq!(
        (a["packets"].as_u64(), a["drops"].as_u64()),
        (Some(4_000), Some(25))
    );
    assert_eq!(
        a["alerts_by_category"],
        serde_json::json!({"weights_format": 2, "egress_volume": 1})
    );
    assert_eq!(a["spool"]["pending_events"], 17);
    assert_eq!(a["events"], 6);
    assert_eq!(a["stale"], false);
    let analyzer = sensor(&v, "analyzer-1");
    assert_eq!(
        analyzer["alerts_by_category"],
        serde_json::json!({"distillation": 1})
    );
    assert_eq!(analyzer["spool"], Value::Null);

    // The page shows the same, escaped like every page.
    let page = s.get("/sensors", Some(&read));
    assert_eq!(page.status, 200);
    for text in [
        "sensor-a",
        "analyzer-1",
        "3,000 packets, 15 dropped in 60 s",
        "Weight file format: 2",
        "Distillation: 1",
        "17",
    ] {
        assert!(page.body.contains(text), "{text:?} missing from the page");
    }
}

/// Wait (bounded, so a broken watch fails instead of hanging) until the
/// sensors API says `id` is `stale`.
fn wait_stale(s: &TestServer, read: &str, id: &str, stale: bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let v = s.get("/api/v1/sensors", Some(read)).json();
        if sensor(&v, id)["stale"] == stale {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{id} never became stale={stale}: {v}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn stale_lines(s: &TestServer, read: &str, id: &str) -> usize {
    let v = s.get("/api/v1/audit?limit=1000", Some(read)).json();
    v["audit"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "sensor_stale" && e["detail"].as_str().unwrap().starts_with(id))
        .count()
}

#[test]
fn a_quiet_sensor_is_reported_once_and_cleared_when_it_reports_again() {
    let s = TestServer::with_config_on(
        STORE,
        DashboardConfig {
            stale_after_secs: 1,
            ..DashboardConfig::default()
        },
    );
    let ingest = s.token(Scope::Ingest);
    let read = s.token(Scope::Read);
    s.ingest(&ingest, &[report("q-1", 0, "sensor-q", 1, 0, None)]);
    wait_stale(&s, &read, "sensor-q", true);
    // Another sensor goes quiet later: by the time it is reported, the watch
    // has run again, and the first silence is still reported once.
    s.ingest(&ingest, &[report("r-1", 0, "sensor-r", 1, 0, None)]);
    wait_stale(&s, &read, "sensor-r", true);
    assert_eq!(stale_lines(&s, &read, "sensor-q"), 1);
    let v = s.get("/api/v1/sensors", Some(&read)).json();
    assert!(sensor(&v, "sensor-q")["stale_since"].is_string(), "{v}");
    let page = s.get("/sensors", Some(&read)).body;
    assert!(page.contains("silent"), "the page says so");

    // It reports again: cleared at once; quiet again: reported again.
    s.ingest(&ingest, &[report("q-2", 5, "sensor-q", 2, 0, None)]);
    let v = s.get("/api/v1/sensors", Some(&read)).json();
    assert_eq!(sensor(&v, "sensor-q")["stale"], false, "{v}");
    assert_eq!(sensor(&v, "sensor-q")["stale_since"], Value::Null);
    wait_stale(&s, &read, "sensor-q", true);
    assert_eq!(stale_lines(&s, &read, "sensor-q"), 2);
}

#[test]
fn each_sensor_shows_the_version_its_newest_report_names() {
    let s = TestServer::start_on(STORE);
    let ingest = s.token(Scope::Ingest);
    let read = s.token(Scope::Read);
    let versioned = |id: &str, secs: i64, sensor: &str, version: &str| {
        let mut v = report(id, secs, sensor, 1, 0, None);
        v["stats"]["version"] = version.into();
        v
    };
    s.ingest(
        &ingest,
        &[
            versioned("v-1", 0, "sensor-a", "0.3.1"),
            versioned("v-2", 60, "sensor-a", "0.4.0"),
            versioned("v-3", 0, "analyzer-1", "<b>0.4.0-rc1</b>"),
            report("v-4", 0, "sensor-old", 1, 0, None),
        ],
    );
    let v = s.get("/api/v1/sensors", Some(&read)).json();
    assert_eq!(sensor(&v, "sensor-a")["version"], "0.4.0", "{v}");
    assert_eq!(sensor(&v, "analyzer-1")["version"], "<b>0.4.0-rc1</b>");
    assert_eq!(sensor(&v, "sensor-old")["version"], Value::Null);

    let page = s.get("/sensors", Some(&read)).body;
    assert!(page.contains("<td>0.4.0</td>"), "{page}");
    assert!(
        !page.contains("0.3.1"),
        "the older report's version is gone"
    );
    assert!(page.contains("&#60;b&#62;0.4.0-rc1&#60;/b&#62;"), "escaped");
    assert!(!page.contains("<b>0.4.0-rc1"));

    // A version that is not a short line of text is refused, not stored.
    for bad in ["9".repeat(65), "1.0\n<script>".to_string()] {
        let r = s.post_json(
            "/api/v1/events",
            Some(&ingest),
            &serde_json::to_string(&[versioned("v-bad", 120, "sensor-a", &bad)]).unwrap(),
        );
        assert_eq!(r.status, 422, "{}", r.body);
        assert!(r.body.contains("stats.version"), "{}", r.body);
    }
    let v = s.get("/api/v1/sensors", Some(&read)).json();
    assert_eq!(sensor(&v, "sensor-a")["version"], "0.4.0");
}
