//! EVE file sink: one JSON object per line, appended, rotated by size.

use eve::sink::EventSink;
use eve::sink::eve_file::EveFileSink;
use eve::{Event, EventKind, StatsEvent, Timestamp};

fn event() -> Event {
    Event::new(Timestamp::now(), EventKind::Stats(StatsEvent::default()))
}

#[test]
fn writes_lines_and_rotates() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("eve.json");
    let p = path.to_str().unwrap();
    let line_len = event().to_json_line().len() as u64 + 1;
    let mut sink = EveFileSink::open(p, Some(line_len * 3), 2).unwrap();
    let mut ids = vec![];
    for _ in 0..10 {
        let e = event();
        ids.push(e.event_id.clone());
        sink.emit(&e).unwrap();
    }
    sink.close().unwrap();
    let read = |p: &std::path::Path| -> Vec<String> {
        std::fs::read_to_string(p)
            .unwrap()
            .lines()
            .map(|l| {
                let e: Event = serde_json::from_str(l).unwrap();
                e.event_id
            })
            .collect()
    };
    // 10 events, 3 per file: current holds the last one, .1 and .2 the three before each.
    assert_eq!(read(&path), ids[9..].to_vec());
    assert_eq!(read(&dir.path().join("eve.json.1")), ids[6..9].to_vec());
    assert_eq!(read(&dir.path().join("eve.json.2")), ids[3..6].to_vec());
    assert!(
        !dir.path().join("eve.json.3").exists(),
        "only `keep` rotated files"
    );
}

#[test]
fn appends_to_an_existing_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("eve.json");
    for _ in 0..2 {
        let mut sink = EveFileSink::open(path.to_str().unwrap(), None, 1).unwrap();
        sink.emit(&event()).unwrap();
        sink.close().unwrap();
    }
    assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 2);
}

#[test]
fn reopens_its_path_when_asked_after_an_external_rotation() {
    use eve::sink::eve_file::ReopenFlag;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("eve.json");
    let rotated = dir.path().join("eve.json.1");
    let flag = ReopenFlag::new();
    let mut sink = EveFileSink::open(path.to_str().unwrap(), None, 1)
        .unwrap()
        .reopen_on(flag.clone());
    let (a, b, c) = (event(), event(), event());
    sink.emit(&a).unwrap();
    // logrotate renames the file; until the signal the sink still writes
    // to the renamed file (its open handle).
    std::fs::rename(&path, &rotated).unwrap();
    sink.emit(&b).unwrap();
    assert!(!path.exists(), "no reopen before it is asked for");
    flag.request();
    sink.emit(&c).unwrap();
    sink.close().unwrap();
    let ids = |p: &std::path::Path| -> Vec<String> {
        std::fs::read_to_string(p)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<Event>(l).unwrap().event_id)
            .collect()
    };
    assert_eq!(ids(&rotated), vec![a.event_id, b.event_id]);
    assert_eq!(
        ids(&path),
        vec![c.event_id],
        "the new file after the reopen"
    );
}
