//! EVE as other writers send it: timestamps in Suricata's form and in RFC
//! 3339.

use super::STORE;
use crate::common::*;
use dashboard::Scope;
use eve::AlertCategory;

/// An alert written with `+0000`, `+00:00` and `Z` offsets is taken, and the
/// time filter takes every form too.
#[test]
fn every_timestamp_form_is_accepted() {
    let s = TestServer::start_on(STORE);
    let ingest = s.token(Scope::Ingest);
    let read = s.token(Scope::Read);
    let mut events = Vec::new();
    for (i, offset) in ["+0000", "+00:00", "Z"].into_iter().enumerate() {
        let mut a = sensor_alert(
            &format!("ts-{i}"),
            i as i64,
            AlertCategory::WeightsFormat,
            1,
            i as u64 + 1,
            "10.0.0.5",
            "198.51.100.7",
            "x.example",
        );
        let written = a["timestamp"].as_str().unwrap().to_string();
        assert!(written.ends_with("+0000"), "{written}");
        let base = written.trim_end_matches("+0000");
        a["timestamp"] = format!("{base}{offset}").into();
        events.push(a);
    }
    assert_eq!(s.ingest(&ingest, &events), (3, 0));
    let from = ts(1).to_string();
    let from_rfc = from.replace("+0000", "+00:00");
    for q in [from.replace('+', "%2B"), from_rfc.replace('+', "%2B")] {
        let got = s.all_alerts(&read, &format!("from={q}"));
        let ids: Vec<&str> = got
            .iter()
            .map(|a| a["event_id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["ts-2", "ts-1"], "from={q}");
    }
}
