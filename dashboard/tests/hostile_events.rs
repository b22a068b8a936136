//! Hostile events (issue 14, items 9, 12, 14): malformed fields and
//! counters that would overflow aggregates, sensors speaking for others,
//! dates in the far future, resends with other content under the same id.

use super::STORE;
use crate::common::*;
use dashboard::Scope;
use serde_json::json;

// 9: event fields are checked; aggregates never overflow

#[test]
fn bad_fields_are_rejected_by_name_and_the_good_events_kept() {
    let s = TestServer::start_on(STORE);
    let ingest = s.token(Scope::Ingest);
    let good = flow("good", 0, 1, "10.0.0.5", "203.0.113.9", 1000);
    let mut bad_ip = flow("bad-ip", 1, 2, "10.0.0.5", "203.0.113.9", 1000);
    bad_ip["src_ip"] = json!("10.0.0.999");
    let mut bad_sev = sensor_alert(
        "bad-sev",
        2,
        eve::AlertCategory::WeightsFormat,
        2,
        3,
        "10.0.0.5",
        "203.0.113.9",
        "x.example",
    );
    bad_sev["alert"]["severity"] = json!(7);
    let mut huge = flow("huge", 3, 4, "10.0.0.5", "203.0.113.9", 0);
    huge["flow"]["bytes_toserver"] = json!(u64::MAX);
    let mut bad_port = flow("bad-port", 4, 5, "10.0.0.5", "203.0.113.9", 1000);
    bad_port["dest_port"] = json!(70000);
    let mut backwards = flow("backwards", 5, 6, "10.0.0.5", "203.0.113.9", 1000);
    backwards["flow"]["start"] = json!("2099-01-01T00:00:00Z");
    let batch = json!([good, bad_ip, bad_sev, huge, bad_port, backwards]).to_string();
    let r = s.post_json("/api/v1/events", Some(&ingest), &batch);
    assert_eq!(r.status, 422, "{}", r.body);
    let v = r.json();
    assert_eq!(v["accepted"], 1, "{v}");
    let rejected = v["rejected"].as_array().unwrap();
    let expect = [
        (1, "src_ip"),
        (2, "severity"),
        (3, "bytes_toserver"),
        (4, "dest_port"),
        (5, "start"),
    ];
    assert_eq!(rejected.len(), expect.len(), "{v}");
    for ((index, field), got) in expect.iter().zip(rejected) {
        assert_eq!(got["index"], *index, "{got}");
        let error = got["error"].as_str().unwrap();
        assert!(
            error.contains(field),
            "index {index}: {error:?} names {field}"
        );
    }
}

#[test]
fn aggregates_of_the_largest_counters_do_not_overflow() {
    let s = TestServer::start_on(STORE);
    let ingest = s.token(Scope::Ingest);
    let read = s.token(Scope::Read);
    let most = i64::MAX as u64;
    let a = flow("f1", 0, 1, "10.0.0.7", "203.0.113.9", most);
    let b = flow("f2", 1, 2, "10.0.0.7", "203.0.113.9", most);
    let alert = sensor_alert(
        "a1",
        2,
        eve::AlertCategory::WeightsFormat,
        2,
        1,
        "10.0.0.7",
        "203.0.113.9",
        "x.example",
    );
    assert_eq!(s.ingest(&ingest, &[a, b, alert]), (3, 0));
    for span in ["24h", "7d", "30d", "all"] {
        let r = s.get(&format!("/?span={span}"), Some(&read));
        assert_eq!(r.status, 200, "span {span}: {}", r.body);
        assert!(r.body.contains("10.0.0.7"), "span {span}");
    }
}

// 12: tokens bound to sensors; no events from the future

#[test]
fn a_bound_token_speaks_only_for_its_sensors() {
    let s = TestServer::start_on(STORE);
    let bound =
        dashboard::admin::create_token_for(&s.db, Scope::Ingest, "dc1", &["sensor-a".to_string()])
            .unwrap();
    let read = s.token(Scope::Read);
    let own = stats("own", 0, "sensor-a", 100, 0);
    let other = stats("other", 1, "sensor-b", 100, 0);
    let mut anonymous = stats("anon", 2, "x", 100, 0);
    anonymous.as_object_mut().unwrap().remove("sensor_id");
    let batch = json!([own, other, anonymous]).to_string();
    let r = s.post_json("/api/v1/events", Some(&bound), &batch);
    assert_eq!(r.status, 422, "{}", r.body);
    let v = r.json();
    assert_eq!(v["accepted"], 1, "{v}");
    let rejected = v["rejected"].as_array().unwrap();
    assert_eq!(rejected.len(), 2, "{v}");
    assert_eq!(rejected[0]["index"], 1);
    assert_eq!(rejected[1]["index"], 2);
    for r in rejected {
        assert!(r["error"].as_str().unwrap().contains("sensor_id"), "{r}");
    }
    let sensors = s.get("/api/v1/sensors", Some(&read)).json();
    let ids: Vec<&str> = sensors["sensors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["sensor_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["sensor-a"]);
    // An unbound token may still speak for any sensor.
    let any = s.token(Scope::Ingest);
    assert_eq!(s.ingest(&any, &[stats("b2", 3, "sensor-b", 1, 0)]), (1, 0));
}

#[test]
fn events_from_the_far_future_are_rejected() {
    let s = TestServer::start_on(STORE);
    let ingest = s.token(Scope::Ingest);
    let read = s.token(Scope::Read);
    let now = chrono::Utc::now().timestamp();
    let secs_from_ts_base = |unix: i64| unix - 1_790_000_000;
    let mut future = stats("future", 0, "sensor-a", 999, 999);
    future["timestamp"] = json!("9999-12-31T23:59:59Z");
    let soon = stats("soon", secs_from_ts_base(now + 60), "sensor-a", 1, 0);
    let r = s.post_json(
        "/api/v1/events",
        Some(&ingest),
        &json!([future, soon]).to_string(),
    );
    assert_eq!(r.status, 422, "{}", r.body);
    let v = r.json();
    assert_eq!(v["accepted"], 1, "{v}");
    assert_eq!(v["rejected"][0]["index"], 0, "{v}");
    assert!(
        v["rejected"][0]["error"]
            .as_str()
            .unwrap()
            .contains("timestamp"),
        "{v}"
    );
    // Later stats still move the sensor's health.
    let later = stats("later", secs_from_ts_base(now + 120), "sensor-a", 5, 0);
    assert_eq!(s.ingest(&ingest, &[later]), (1, 0));
    let sensors = s.get("/api/v1/sensors", Some(&read)).json();
    assert_eq!(sensors["sensors"][0]["packets"], 5, "{sensors}");
}

// 14: conflicting resends

#[test]
fn the_same_event_id_with_other_content_is_a_conflict() {
    let s = TestServer::start_on(STORE);
    let ingest = s.token(Scope::Ingest);
    let read = s.token(Scope::Read);
    let first = flow("f-1", 0, 1, "10.0.0.5", "203.0.113.9", 1000);
    assert_eq!(s.ingest(&ingest, std::slice::from_ref(&first)), (1, 0));
    // A resend is a duplicate, as before.
    assert_eq!(s.ingest(&ingest, std::slice::from_ref(&first)), (0, 1));
    let mut changed = first.clone();
    changed["flow"]["bytes_toserver"] = json!(999_999);
    let good = flow("f-2", 1, 2, "10.0.0.5", "203.0.113.9", 1000);
    let r = s.post_json(
        "/api/v1/events",
        Some(&ingest),
        &json!([good, changed, first]).to_string(),
    );
    assert_eq!(r.status, 422, "{}", r.body);
    let v = r.json();
    assert_eq!(v["accepted"], 1, "{v}");
    assert_eq!(v["duplicates"], 1, "{v}");
    assert_eq!(v["rejected"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["rejected"][0]["index"], 1, "{v}");
    assert_eq!(v["rejected"][0]["event_id"], "f-1", "{v}");
    let error = v["rejected"][0]["error"].as_str().unwrap();
    assert!(error.contains("conflict"), "{error}");
    // The stored event is the first one.
    let alert = sensor_alert(
        "a",
        2,
        eve::AlertCategory::WeightsFormat,
        2,
        1,
        "10.0.0.5",
        "203.0.113.9",
        "x.example",
    );
    s.ingest(&ingest, &[alert]);
    let list = s.get("/api/v1/alerts", Some(&read)).json();
    let id = list["alerts"][0]["id"].as_i64().unwrap();
    let d = s.get(&format!("/api/v1/alerts/{id}"), Some(&read)).json();
    assert_eq!(d["flows"][0]["flow"]["bytes_toserver"], 1000, "{d}");
}
