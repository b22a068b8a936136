//! Re-timing a replay (`Settings::retime`, the `--time-shift` and
//! `--rebase-time` options): every packet's time moves by the same amount
//! before anything reads it, so the events of a shifted replay are the
//! events of the replay as captured with every time moved by that amount —
//! flows that end by idle timeout mid-replay included — with one worker or
//! several, and the first packet lands exactly where it was placed.

use crate::engine_support::replay_with;
use capture::detect::Detectors;
use capture::{Retime, Settings};
use eve::{Event, EventKind, Timestamp};
use serde_json::Value;
use std::path::{Path, PathBuf};

const HOUR: i64 = 3_600_000_000;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/pcaps")
        .join(name)
}

/// A copy of the first `keep` records of the classic little-endian µs pcap
/// `src`, each record's time moved by `by` µs (its header rewritten).
fn moved_copy(src: &Path, keep: usize, by: i64, dst: &Path) {
    let mut b = std::fs::read(src).expect("fixture");
    assert_eq!(
        &b[..4],
        &[0xd4, 0xc3, 0xb2, 0xa1],
        "a little-endian µs pcap"
    );
    let mut at = 24;
    for _ in 0..keep {
        if at + 16 > b.len() {
            break;
        }
        let word = |b: &[u8], o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap());
        let ts = i64::from(word(&b, at)) * 1_000_000 + i64::from(word(&b, at + 4)) + by;
        b[at..at + 4].copy_from_slice(&((ts / 1_000_000) as u32).to_le_bytes());
        b[at + 4..at + 8].copy_from_slice(&((ts % 1_000_000) as u32).to_le_bytes());
        at += 16 + word(&b, at + 8) as usize;
    }
    b.truncate(at);
    std::fs::write(dst, b).expect("write copy");
}

/// Every event as JSON with each time in it moved back by `by` µs and its
/// ids left out (event and flow ids are derived from the flow's start
/// time, as a flow id names one flow of a 5-tuple), sorted.
fn normalised(events: &[Event], by: i64) -> Vec<String> {
    fn walk(v: &mut Value, by: i64) {
        match v {
            Value::String(s) => {
                if let Ok(t) = Timestamp::parse(s) {
                    *s = Timestamp::from_unix_micros(t.unix_micros() - by).to_string();
                }
            }
            Value::Array(a) => a.iter_mut().for_each(|x| walk(x, by)),
            Value::Object(o) => {
                o.remove("event_id");
                o.remove("flow_id");
                o.values_mut().for_each(|x| walk(x, by));
            }
            _ => {}
        }
    }
    let mut out: Vec<String> = events
        .iter()
        .map(|e| {
            let mut v = serde_json::to_value(e).expect("json");
            walk(&mut v, by);
            v.to_string()
        })
        .collect();
    out.sort();
    out
}

fn replay(files: &[PathBuf], workers: usize, retime: Retime) -> Vec<Event> {
    let mut settings = Settings {
        workers,
        retime,
        ..Default::default()
    };
    // Idle flows end after a minute of packet time.
    settings.config.tcp_idle_timeout_secs = 60;
    replay_with(files, settings, &Detectors::none()).1
}

fn timed_out(events: &[Event]) -> usize {
    events
        .iter()
        .filter(|e| match &e.kind {
            EventKind::Flow(f) => f.flow.reason == eve::FlowReason::Timeout,
            _ => false,
        })
        .count()
}

#[test]
fn shifted_and_rebased_replays_move_every_time_by_the_same_amount() {
    let dir = tempfile::tempdir().expect("tmp");
    // A download cut short (it never closes), then two hours later (a
    // second file) another connection: the first ends by idle timeout,
    // driven by the later packets' time.
    let (cut, later) = (dir.path().join("cut.pcap"), dir.path().join("later.pcap"));
    moved_copy(&fixture("http_download.pcap"), 6, 0, &cut);
    moved_copy(&fixture("raw_tcp_rst.pcap"), usize::MAX, 2 * HOUR, &later);
    let files = vec![cut, later];
    let first = capture::source::first_packet_time(&files[0]).expect("first packet");

    let as_captured = replay(&files, 1, Retime::AsCaptured);
    assert!(timed_out(&as_captured) > 0, "a flow ends by idle timeout");
    let base = normalised(&as_captured, 0);

    // Back 900 days and forward 36 hours, one worker and two.
    for shift in [-900 * 24 * HOUR, 36 * HOUR] {
        for workers in [1, 2] {
            let got = replay(&files, workers, Retime::Shift(shift));
            assert_eq!(
                normalised(&got, shift),
                base,
                "shift {shift} µs, {workers} workers"
            );
        }
    }

    // Placed: the first packet's flow starts exactly at the given time.
    let at = Timestamp::parse("2026-11-04T12:00:00Z")
        .unwrap()
        .unix_micros();
    for workers in [1, 2] {
        let got = replay(&files, workers, Retime::FirstAt(at));
        assert_eq!(normalised(&got, at - first), base, "{workers} workers");
        let earliest = got
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::Flow(f) => Some(f.flow.start.unix_micros()),
                _ => None,
            })
            .min();
        assert_eq!(earliest, Some(at));
    }
}
