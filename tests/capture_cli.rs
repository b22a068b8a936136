//! The capture command line Suricata and tcpdump users know, through the
//! real binary: a BPF expression applied to replays (`--bpf` or trailing
//! words), `-l/--log-dir`, `--pidfile`, `-k` checksum choice, and no ANSI
//! colours in logs when stderr is not a terminal.

use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn weightwatch(dir: &Path) -> Command {
    // An empty configuration: nothing from a weightwatch.toml nearby.
    let cfg = dir.join("empty.toml");
    std::fs::write(&cfg, "").unwrap();
    let mut c = Command::new(env!("CARGO_BIN_EXE_weightwatch"));
    c.current_dir(dir).arg("--config").arg(cfg);
    c
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("fixtures/pcaps/{name}"))
}

fn events(out: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(out)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect()
}

/// Sorted "src:port->dst:port" of every flow event.
fn flows(events: &[Value]) -> Vec<String> {
    let mut v: Vec<String> = events
        .iter()
        .filter(|e| e["event_type"] == "flow")
        .map(|e| {
            format!(
                "{}:{}->{}:{}",
                e["src_ip"], e["src_port"], e["dest_ip"], e["dest_port"]
            )
        })
        .collect();
    v.sort();
    v
}

fn stat(events: &[Value], section: &str, name: &str) -> u64 {
    events
        .iter()
        .rev()
        .find(|e| e["event_type"] == "stats")
        .and_then(|e| e["stats"][section][name].as_u64())
        .unwrap_or(0)
}

fn ok(out: Output) -> Output {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `-r FILE tcp port 80` and `--bpf "tcp port 80"` keep exactly the port-80
/// flows of the unfiltered replay, and count the records left out.
#[test]
fn bpf_applies_to_replays_as_flag_or_trailing_words() {
    let dir = tempfile::tempdir().unwrap();
    let pcap = fixture("mixed_flows.pcap");
    let run = |extra: &[&str], after: &[&str]| {
        let out = ok(weightwatch(dir.path())
            .args(["capture", "--eve", "-"])
            .args(extra)
            .arg("-r")
            .arg(&pcap)
            .args(after)
            .output()
            .unwrap());
        events(&out.stdout)
    };
    let all = run(&[], &[]);
    let port80: Vec<String> = flows(&all)
        .into_iter()
        .filter(|f| f.contains(":80->") || f.ends_with(":80"))
        .collect();
    assert!(
        !port80.is_empty() && port80.len() < flows(&all).len(),
        "{all:?}"
    );
    assert_eq!(stat(&all, "capture", "bpf_filtered"), 0);
    for filtered in [
        run(&["--bpf", "tcp port 80"], &[]),
        run(&[], &["tcp", "port", "80"]),
        run(&[], &["tcp port 80"]),
    ] {
        assert_eq!(flows(&filtered), port80);
        assert!(stat(&filtered, "capture", "bpf_filtered") > 0);
        assert_eq!(
            stat(&filtered, "capture", "packets") + stat(&filtered, "capture", "bpf_filtered"),
            stat(&all, "capture", "packets")
        );
    }
    // A bad expression, or two expressions, are refused with a clear error.
    let out = weightwatch(dir.path())
        .args(["capture", "--eve", "-", "-r"])
        .arg(&pcap)
        .args(["tcp", "port", "eighty"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("BPF filter"),
        "{out:?}"
    );
    let out = weightwatch(dir.path())
        .args(["capture", "--eve", "-", "--bpf", "udp", "-r"])
        .arg(&pcap)
        .args(["tcp"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("both"),
        "{out:?}"
    );
}

/// `-l DIR` writes `eve.json` and `stats.json` there; a missing directory
/// is an error.
#[test]
fn log_dir_holds_eve_and_stats() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    ok(weightwatch(dir.path())
        .args(["capture", "-l"])
        .arg(&logs)
        .arg("-r")
        .arg(fixture("http_multipart.pcap"))
        .output()
        .unwrap());
    let eve = events(&std::fs::read(logs.join("eve.json")).unwrap());
    assert!(eve.iter().any(|e| e["event_type"] == "fileinfo"), "{eve:?}");
    let stats: Value =
        serde_json::from_str(&std::fs::read_to_string(logs.join("stats.json")).unwrap()).unwrap();
    assert_eq!(
        stats["stats"]["capture"]["packets"].as_u64(),
        Some(stat(&eve, "capture", "packets"))
    );
    assert!(stat(&eve, "capture", "packets") > 0);
    let out = weightwatch(dir.path())
        .args(["capture", "-l", "no-such-dir", "-r"])
        .arg(fixture("http_multipart.pcap"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not a directory"),
        "{out:?}"
    );
}

/// `--pidfile`: holds the sensor's pid while it runs, is gone after; a
/// file held by a running process is refused, one left by a process that
/// is gone is taken over.
#[test]
fn pidfile_is_written_held_and_removed() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("ww.pid");
    // Standard input stays open until the test says so: the sensor runs.
    let mut child = weightwatch(dir.path())
        .args(["capture", "--eve", "/dev/null", "--read", "-", "--pidfile"])
        .arg(&pidfile)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let pid = child.id().to_string();
    while std::fs::read_to_string(&pidfile).map_or(true, |t| t.trim() != pid) {
        assert!(child.try_wait().unwrap().is_none(), "the sensor exited");
        std::thread::yield_now();
    }
    // A second sensor with the same pidfile is refused.
    let out = weightwatch(dir.path())
        .args(["capture", "--eve", "/dev/null", "--pidfile"])
        .arg(&pidfile)
        .arg("-r")
        .arg(fixture("http_multipart.pcap"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("held by running process") && err.contains(&pid),
        "{err}"
    );
    stdin
        .write_all(&std::fs::read(fixture("http_multipart.pcap")).unwrap())
        .unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(!pidfile.exists(), "pidfile left behind");
    // A stale file (no such process: above Linux's largest pid) is taken
    // over, and removed at exit.
    std::fs::write(&pidfile, "4194305\n").unwrap();
    ok(weightwatch(dir.path())
        .args(["capture", "--eve", "/dev/null", "--pidfile"])
        .arg(&pidfile)
        .arg("-r")
        .arg(fixture("http_multipart.pcap"))
        .output()
        .unwrap());
    assert!(!pidfile.exists());
}

/// The fixture with every TCP checksum broken: `-k all` drops its packets,
/// `-k none` trusts them (the files are found), as Suricata's `-k`.
#[test]
fn checksum_choice_maps_onto_checksum_validation() {
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.pcap");
    std::fs::write(
        &broken,
        break_tcp_checksums(&std::fs::read(fixture("http_multipart.pcap")).unwrap()),
    )
    .unwrap();
    let run = |k: &str| {
        let out = ok(weightwatch(dir.path())
            .args(["capture", "--eve", "-", "-k", k, "-r"])
            .arg(&broken)
            .output()
            .unwrap());
        events(&out.stdout)
    };
    let files = |ev: &[Value]| ev.iter().filter(|e| e["event_type"] == "fileinfo").count();
    let all = run("all");
    assert!(stat(&all, "decoder", "invalid_tcp_checksum") > 0);
    assert_eq!(files(&all), 0);
    let none = run("none");
    assert_eq!(stat(&none, "decoder", "invalid_tcp_checksum"), 0);
    assert!(files(&none) >= 2, "{none:?}");
    let out = weightwatch(dir.path())
        .args(["capture", "--eve", "-", "-k", "some", "-r"])
        .arg(&broken)
        .output()
        .unwrap();
    assert!(!out.status.success());
}

/// A copy of an Ethernet/IPv4 classic pcap with every TCP checksum off by one.
fn break_tcp_checksums(pcap: &[u8]) -> Vec<u8> {
    let mut out = pcap.to_vec();
    let mut at = 24;
    while at + 16 <= out.len() {
        let caplen = u32::from_le_bytes(out[at + 8..at + 12].try_into().unwrap()) as usize;
        let frame = at + 16;
        let ip = frame + 14;
        if out[frame + 12..frame + 14] == [0x08, 0x00] && out[ip + 9] == 6 {
            let sum = ip + usize::from(out[ip] & 0x0f) * 4 + 16;
            out[sum + 1] = out[sum + 1].wrapping_add(1);
        }
        at = frame + caplen;
    }
    out
}

/// Logs to a pipe carry no ANSI escapes.
#[test]
fn no_ansi_colours_when_stderr_is_not_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let out = ok(weightwatch(dir.path())
        .args(["capture", "--eve", "/dev/null", "-r"])
        .arg(fixture("http_multipart.pcap"))
        .output()
        .unwrap());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("capture finished"), "{err}");
    assert!(!err.contains('\u{1b}'), "{err:?}");
}
