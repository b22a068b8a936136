//! Replays every committed synthesized capture (`fixtures/pcaps`) and checks
//! that each expected object comes out as a `fileinfo` with the payload's
//! size and SHA-256 (whole objects), or the captured part's size and hash
//! with `gaps: true` (objects with bytes lost for good or begun before a
//! midstream pickup); and that flows carry the expected client/server,
//! `midstream` and `gaps` flags. Replays are deterministic: the same event
//! ids with one worker and with two.

use crate::engine_support::{replay, replay_with};
use capture::Settings;
use capture::detect::Detectors;
use eve::{Event, EventKind, FileState};
use fixtures::catalog::read_expected;
use fixtures::expect::Expected;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/pcaps")
}

/// Every committed capture with its sidecar.
fn fixtures() -> Vec<(PathBuf, Expected)> {
    let dir = fixture_dir();
    let mut out = Vec::new();
    for e in std::fs::read_dir(&dir).expect("fixtures/pcaps").flatten() {
        let p = e.path();
        let Some(name) = p.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let Some(stem) = name.strip_suffix(".expect.json") else {
            continue;
        };
        let expected = read_expected(&p).expect("sidecar");
        let cap = [".pcap", ".pcapng"]
            .iter()
            .map(|x| dir.join(format!("{stem}{x}")))
            .find(|c| c.is_file())
            .expect("capture next to its sidecar");
        out.push((cap, expected));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn endpoint(ip: std::net::IpAddr, port: u16) -> String {
    std::net::SocketAddr::new(ip, port).to_string()
}

/// `encrypted_hashed`: TLS and SSH streams carry a SHA-256
/// (`inspect_encrypted_streams`); by default they carry none.
fn check(cap: &Path, exp: &Expected, events: &[Event], encrypted_hashed: bool) -> Vec<String> {
    let mut problems = Vec::new();
    let name = &exp.name;
    // fileinfo events with their flow endpoints, each usable once.
    let mut infos: Vec<(String, String, &eve::FileInfo, bool)> = events
        .iter()
        .filter_map(|e| match (&e.kind, &e.net) {
            (EventKind::Fileinfo(f), Some(n)) => Some((
                endpoint(n.src_ip, n.src_port),
                endpoint(n.dest_ip, n.dest_port),
                &f.fileinfo,
                false,
            )),
            _ => None,
        })
        .collect();
    for (i, o) in exp.objects.iter().enumerate() {
        let flow = &exp.flows[o.flow];
        let dir = match o.direction {
            fixtures::tcp::Direction::ToServer => eve::Direction::ToServer,
            fixtures::tcp::Direction::ToClient => eve::Direction::ToClient,
        };
        let whole = o.gap_bytes == 0 && !o.starts_before_capture;
        let (size, sha) = if whole {
            (o.size, &o.sha256)
        } else {
            // Gaps count in the size, as Suricata's.
            (o.captured_size + o.gap_bytes, &o.captured_sha256)
        };
        let found = infos.iter_mut().find(|(c, s, f, used)| {
            !*used
                && *c == flow.client
                && *s == flow.server
                && f.direction == dir
                && f.size == size
                // A gapped object has no hash (as Suricata: it would read
                // as the file's hash).
                && if o.gap_bytes > 0 {
                    f.sha256.is_none()
                } else if matches!(o.app.as_str(), "tls" | "ssh") && !encrypted_hashed {
                    // Ciphertext names no file: not hashed (as Suricata).
                    f.sha256.is_none()
                } else {
                    f.sha256.as_deref() == Some(sha.as_str())
                }
        });
        match found {
            Some(entry) => {
                entry.3 = true;
                let f = entry.2;
                if f.gaps != (o.gap_bytes > 0) {
                    problems.push(format!(
                        "{name} object {i}: gaps {} expected {}",
                        f.gaps,
                        o.gap_bytes > 0
                    ));
                }
                // HTTP framing says when a body is whole; a raw stream cut by
                // RST is TRUNCATED even when no byte is missing.
                if whole && o.app == "http" && f.state != FileState::Closed {
                    problems.push(format!(
                        "{name} object {i}: state {:?} for a whole object",
                        f.state
                    ));
                }
                // A gap makes it TRUNCATED however it ended, as Suricata.
                if o.gap_bytes > 0 && f.state != FileState::Truncated {
                    problems.push(format!(
                        "{name} object {i}: state {:?} for an object with gaps",
                        f.state
                    ));
                }
            }
            None => problems.push(format!(
                "{name} ({}): object {i} ({} -> {} {:?}, {} bytes, {}) not found among {:?}",
                cap.display(),
                flow.client,
                flow.server,
                o.direction,
                size,
                o.app,
                infos
                    .iter()
                    .map(|(c, s, f, _)| format!(
                        "{c}->{s} {:?} {} {:?} gaps={}",
                        f.direction, f.size, f.sha256, f.gaps
                    ))
                    .collect::<Vec<_>>()
            )),
        }
    }
    // Flow facts, from the final flow event of each expected connection.
    for (i, fl) in exp.flows.iter().enumerate() {
        let ev = events.iter().rev().find_map(|e| match (&e.kind, &e.net) {
            (EventKind::Flow(f), Some(n))
                if endpoint(n.src_ip, n.src_port) == fl.client
                    && endpoint(n.dest_ip, n.dest_port) == fl.server =>
            {
                Some(f)
            }
            _ => None,
        });
        let Some(f) = ev else {
            problems.push(format!(
                "{name}: no flow event for flow {i} {} -> {}",
                fl.client, fl.server
            ));
            continue;
        };
        let tcp = f.tcp.clone().unwrap_or_default();
        if tcp.midstream != fl.midstream {
            problems.push(format!(
                "{name} flow {i}: midstream {} expected {}",
                tcp.midstream, fl.midstream
            ));
        }
        if tcp.gaps != fl.gaps {
            problems.push(format!(
                "{name} flow {i}: gaps {} expected {}",
                tcp.gaps, fl.gaps
            ));
        }
    }
    problems
}

#[test]
fn fixtures_give_expected_objects_and_flows() {
    let all = fixtures();
    assert!(all.len() >= 10, "only {} fixtures", all.len());
    let mut problems = Vec::new();
    for (cap, exp) in &all {
        let (summary, events) = replay(std::slice::from_ref(cap), 1, &Detectors::none());
        assert_eq!(summary.files[0].error, None, "{}", cap.display());
        assert_eq!(summary.packets(), exp.packets, "{}", exp.name);
        problems.extend(check(cap, exp, &events, false));
        // Asked to, the sensor hashes TLS and SSH streams too.
        if exp
            .objects
            .iter()
            .any(|o| matches!(o.app.as_str(), "tls" | "ssh"))
        {
            let mut settings = Settings::default();
            settings.config.inspect_encrypted_streams = true;
            let (_, events) = replay_with(std::slice::from_ref(cap), settings, &Detectors::none());
            problems.extend(check(cap, exp, &events, true));
        }
    }
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

fn ids(events: &[Event]) -> BTreeSet<String> {
    events
        .iter()
        .filter(|e| e.event_type() != "stats")
        .map(|e| e.event_id.clone())
        .collect()
}

#[test]
fn replay_is_deterministic_across_worker_counts() {
    let files: Vec<PathBuf> = fixtures().into_iter().map(|(p, _)| p).collect();
    // All fixtures in one run (also exercises several files in time order).
    let (_, one) = replay(&files, 1, &Detectors::none());
    let (_, two) = replay(&files, 2, &Detectors::none());
    let (_, again) = replay(&files, 2, &Detectors::none());
    assert!(one.len() > 20);
    assert_eq!(ids(&one), ids(&two));
    assert_eq!(ids(&two), ids(&again));
    // Event ids are unique.
    let n = one.iter().filter(|e| e.event_type() != "stats").count();
    assert_eq!(ids(&one).len(), n);
}

/// The realistic benchmark capture, generated small (hundreds of
/// interleaved TLS, HTTP, SSH, raw TCP and UDP connections, retransmissions):
/// every object and flow the generator wrote is reported, and one and two
/// workers give the same events.
#[test]
fn realistic_capture_gives_its_objects_with_any_worker_count() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = fixtures::realistic::Spec {
        seed: 5,
        bytes: 8_000_000,
    };
    let cap = fixtures::realistic::write_files(&spec, dir.path()).expect("generate");
    let exp = read_expected(&cap.with_extension("expect.json")).expect("sidecar");
    assert!(exp.flows.len() > 100, "{} connections", exp.flows.len());
    let (summary, one) = replay(std::slice::from_ref(&cap), 1, &Detectors::none());
    assert_eq!(summary.packets(), exp.packets);
    let problems = check(&cap, &exp, &one, false);
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
    let (_, two) = replay(std::slice::from_ref(&cap), 2, &Detectors::none());
    assert_eq!(lines(&one), lines(&two));
}

/// The events of a run but its `stats`, as sorted JSON lines.
fn lines(events: &[Event]) -> Vec<String> {
    let mut out: Vec<String> = events
        .iter()
        .filter(|e| e.event_type() != "stats")
        .map(|e| serde_json::to_string(e).expect("json"))
        .collect();
    out.sort();
    out
}

/// The run's timeline has every worker, each owning records, its phases in
/// order, all before the workers were joined and the run ended.
fn timeline_is_whole(s: &capture::RunSummary, workers: usize, what: &str) {
    let t = &s.timeline;
    assert_eq!(t.workers.len(), workers, "{what}");
    for w in &t.workers {
        assert!(w.packets > 0 && w.bytes > 0, "{what}: {w:?}");
        assert!(
            w.first <= w.read && w.read <= w.flushed && w.flushed <= t.joined,
            "{what}: {w:?}"
        );
    }
    assert!(t.joined <= s.elapsed, "{what}: {t:?}");
}

#[test]
fn shared_reading_gives_every_worker_count_the_same_events_and_counts() {
    // Several workers share one walk of the files in chunks (the IPv4
    // fragments fixture included: fragments are decoded by every worker).
    // A lookahead of one byte holds one chunk at a time, so workers wait
    // for each other and pass the reading token at every chunk.
    let files: Vec<PathBuf> = fixtures().into_iter().map(|(p, _)| p).collect();
    assert!(
        files
            .iter()
            .any(|f| f.to_string_lossy().contains("fragments")),
        "a fixture with IP fragments"
    );
    let (base, one) = replay(&files, 1, &Detectors::none());
    let reader_counts = |s: &capture::RunSummary| {
        let mut sections = s.stats.sections.clone();
        sections.retain(|name, _| matches!(name.as_str(), "capture" | "decoder"));
        (sections, s.stats.uptime)
    };
    assert!(base.stats.get("decoder", "ip_reassembled") > 0);
    timeline_is_whole(&base, 1, "1 worker");
    // A lone worker owns every record it reads.
    assert_eq!(base.timeline.workers[0].packets, base.packets());
    for (workers, lookahead) in [(2, usize::MAX), (2, 1), (3, 1), (3, 200_000)] {
        let mut settings = capture::Settings {
            workers,
            ..Default::default()
        };
        settings.config.replay_lookahead_bytes = lookahead;
        let (s, events) = replay_with(&files, settings, &Detectors::none());
        let what = format!("{workers} workers, lookahead {lookahead}");
        assert_eq!(lines(&one), lines(&events), "{what}");
        timeline_is_whole(&s, workers, &what);
        assert_eq!(reader_counts(&base), reader_counts(&s), "{what}");
        assert_eq!(
            base.files
                .iter()
                .map(|f| (&f.path, f.packets))
                .collect::<Vec<_>>(),
            s.files
                .iter()
                .map(|f| (&f.path, f.packets))
                .collect::<Vec<_>>(),
            "{what}"
        );
    }
}

#[test]
fn bad_inputs_among_good_ones_are_reported_alike_with_any_worker_count() {
    // A good capture, the same cut in the middle of a record, a file that
    // is no capture and an empty one, in one run: the shared reading (two
    // and three workers) reports each file as one worker does and loses
    // nothing read before an error.
    let dir = tempfile::tempdir().expect("tempdir");
    let files: Vec<PathBuf> = fixtures().into_iter().map(|(p, _)| p).collect();
    let good = files
        .iter()
        .max_by_key(|p| std::fs::metadata(p).map_or(0, |m| m.len()))
        .expect("a fixture");
    let bytes = std::fs::read(good).expect("read");
    let cut = dir.path().join("cut.pcap");
    std::fs::write(&cut, &bytes[..bytes.len() * 2 / 3 + 7]).expect("write");
    let junk = dir.path().join("junk.pcap");
    std::fs::write(&junk, b"this is not a capture file at all").expect("write");
    let empty = dir.path().join("empty.pcap");
    std::fs::write(&empty, b"").expect("write");
    let inputs = vec![good.clone(), cut.clone(), junk, empty];
    let (one, one_events) = replay(&inputs, 1, &Detectors::none());
    let reports = |s: &capture::RunSummary| {
        s.files
            .iter()
            .map(|f| (f.path.clone(), f.packets, f.error.clone(), f.rejected))
            .collect::<Vec<_>>()
    };
    let r = reports(&one);
    assert_eq!(r.len(), 4);
    assert_eq!(r.iter().filter(|f| f.3).count(), 2, "{r:?}");
    let cut_report = r.iter().find(|f| f.0 == cut).expect("cut reported");
    assert!(
        cut_report
            .2
            .as_deref()
            .is_some_and(|e| e.contains("truncated")),
        "{r:?}"
    );
    assert!(cut_report.1 > 0 && !cut_report.3, "{r:?}");
    assert_eq!(one.stats.get("capture", "read_errors"), 3);
    for workers in [2, 3] {
        let (s, events) = replay(&inputs, workers, &Detectors::none());
        assert_eq!(reports(&s), r, "{workers} workers");
        assert_eq!(
            s.stats.sections.get("capture"),
            one.stats.sections.get("capture")
        );
        assert_eq!(
            s.stats.sections.get("decoder"),
            one.stats.sections.get("decoder")
        );
        assert_eq!(lines(&events), lines(&one_events), "{workers} workers");
    }
}

#[test]
fn progress_counts_every_input_byte_and_a_stop_reads_no_further() {
    let dir = tempfile::tempdir().expect("tempdir");
    let junk = dir.path().join("junk.pcap");
    std::fs::write(&junk, b"not a capture").expect("write");
    let mut files: Vec<PathBuf> = fixtures().into_iter().map(|(p, _)| p).collect();
    let bytes = std::fs::read(&files[0]).expect("read");
    let cut = dir.path().join("cut.pcap");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).expect("write");
    files.extend([junk, cut]);
    let total: u64 = files
        .iter()
        .map(|f| std::fs::metadata(f).expect("size").len())
        .sum();
    for workers in [1, 2] {
        // Read to the end: progress reaches every byte of every input,
        // readable or not.
        let settings = capture::Settings {
            workers,
            ..Default::default()
        };
        let control = settings.control.clone();
        let (s, _) = replay_with(&files, settings, &Detectors::none());
        assert!(!s.interrupted);
        assert_eq!(control.bytes_read(), total, "{workers} workers");
        // A stop requested before the run: nothing is read, the run still
        // ends with its stats event and says it was interrupted.
        let settings = capture::Settings {
            workers,
            ..Default::default()
        };
        settings.control.request_stop();
        let (s, events) = replay_with(&files, settings, &Detectors::none());
        assert!(s.interrupted, "{workers} workers");
        assert_eq!(s.packets(), 0);
        assert!(s.files.is_empty(), "{:?}", s.files);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].event_type(), "stats");
    }
}

#[test]
fn limits_bite_are_counted_and_nothing_breaks() {
    let files: Vec<PathBuf> = fixtures().into_iter().map(|(p, _)| p).collect();
    let (_, normal) = replay(&files, 1, &Detectors::none());
    let mut settings = capture::Settings {
        workers: 1,
        ..Default::default()
    };
    settings.config.max_flows = 16;
    settings.config.stream_ooo_max_bytes = 3000;
    settings.config.reassembly_memcap_bytes = 8000;
    let (s, tight) = replay_with(&files, settings, &Detectors::none());
    let count = |ev: &[Event], t: &str| ev.iter().filter(|e| e.event_type() == t).count();
    assert!(s.stats.get("flow", "evicted") > 0, "{:?}", s.stats);
    assert!(
        s.stats.get("tcp", "stream_ooo_limit") + s.stats.get("tcp", "reassembly_memcap_drops") > 0,
        "{:?}",
        s.stats
    );
    assert!(s.stats.get("tcp", "gaps") > 0);
    // Every object still ends in a fileinfo; some now have gaps.
    assert!(count(&tight, "fileinfo") >= count(&normal, "fileinfo"));
    let gappy = |ev: &[Event]| {
        ev.iter()
            .filter(|e| matches!(&e.kind, EventKind::Fileinfo(f) if f.fileinfo.gaps))
            .count()
    };
    assert!(gappy(&tight) > gappy(&normal));
}

#[test]
fn a_directory_replays_its_captures_and_skips_other_files() {
    // fixtures/pcaps holds captures and their .expect.json sidecars.
    let (summary, events) = replay(&[fixture_dir()], 2, &Detectors::none());
    let n = fixtures().len();
    assert_eq!(summary.files.len(), n);
    assert!(summary.files.iter().all(|f| f.error.is_none()));
    let expected: usize = fixtures().iter().map(|(_, e)| e.objects.len()).sum();
    let fileinfos = events
        .iter()
        .filter(|e| e.event_type() == "fileinfo")
        .count();
    assert!(
        fileinfos >= expected,
        "{fileinfos} fileinfo events for {expected} objects"
    );
}
