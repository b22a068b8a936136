//! The command line describes every subcommand and rejects bad configuration.

use std::process::Command;

fn weightwatch() -> Command {
    Command::new(env!("CARGO_BIN_EXE_weightwatch"))
}

#[test]
fn every_subcommand_has_help() {
    for sub in [
        "capture", "index", "analyze", "model", "labels", "serve", "token", "user", "purge",
        "demo", "bench", "fixtures", "canary",
    ] {
        let out = weightwatch().args([sub, "--help"]).output().unwrap();
        assert!(out.status.success(), "{sub} --help failed");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("Usage: weightwatch"), "{sub}: {text}");
    }
}

#[test]
fn unknown_config_key_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("w.toml");
    std::fs::write(&cfg, "[sinks]\nnot_a_key = 1\n").unwrap();
    let out = weightwatch()
        .args(["--config", cfg.to_str().unwrap(), "token", "list", "--db"])
        .arg(dir.path().join("x.db"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not_a_key"), "{err}");
}

/// `tcpdump -w - | weightwatch capture --read -`: a capture on standard
/// input gives the same objects as the file.
#[test]
fn capture_reads_standard_input() {
    use std::io::Write;
    use std::process::Stdio;
    let pcap =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/pcaps/http_multipart.pcap");
    let hashes = |eve: &[u8]| {
        let mut v: Vec<String> = String::from_utf8_lossy(eve)
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|e| e["event_type"] == "fileinfo")
            .map(|e| format!("{} {}", e["fileinfo"]["sha256"], e["fileinfo"]["size"]))
            .collect();
        v.sort();
        v
    };
    let from_file = weightwatch()
        .args(["capture", "--eve", "-", "--read"])
        .arg(&pcap)
        .output()
        .unwrap();
    assert!(from_file.status.success(), "{from_file:?}");
    let mut child = weightwatch()
        .args(["capture", "--eve", "-", "--read", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let bytes = std::fs::read(&pcap).unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || stdin.write_all(&bytes));
    let from_stdin = child.wait_with_output().unwrap();
    feeder.join().unwrap().unwrap();
    assert!(from_stdin.status.success(), "{from_stdin:?}");
    let expected = hashes(&from_file.stdout);
    assert!(expected.len() >= 2, "{expected:?}");
    assert_eq!(hashes(&from_stdin.stdout), expected);
}

/// `weightwatch labels export` writes the labels CSV of a database (with no
/// verdicts: the header) and refuses a database that does not exist.
#[test]
fn labels_export_writes_csv_and_needs_a_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("w.db");
    let created = weightwatch()
        .args(["token", "list", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    assert!(created.status.success(), "{created:?}");
    let out = dir.path().join("labels.csv");
    let r = weightwatch()
        .args(["labels", "export", "--db"])
        .arg(&db)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(r.status.success(), "{r:?}");
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        "account_id,label,scenario\n"
    );
    let r = weightwatch()
        .args(["labels", "export", "--db"])
        .arg(dir.path().join("missing.db"))
        .output()
        .unwrap();
    assert!(!r.status.success());
    assert!(String::from_utf8_lossy(&r.stderr).contains("no such database"));
}

/// A capture with no output is refused before reading anything; `--eve
/// /dev/null` discards on purpose.
#[test]
fn capture_without_an_output_is_an_error() {
    let pcap =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/pcaps/http_multipart.pcap");
    let dir = tempfile::tempdir().unwrap();
    // An empty configuration: no [sinks] from a weightwatch.toml nearby.
    let cfg = dir.path().join("w.toml");
    std::fs::write(&cfg, "").unwrap();
    let out = weightwatch()
        .current_dir(dir.path())
        .args(["--config", cfg.to_str().unwrap(), "capture", "--read"])
        .arg(&pcap)
        .output()
        .unwrap();
    assert!(!out.status.success(), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no output") && err.contains("/dev/null"),
        "{err}"
    );
    let out = weightwatch()
        .current_dir(dir.path())
        .args([
            "--config",
            cfg.to_str().unwrap(),
            "capture",
            "--eve",
            "/dev/null",
            "--read",
        ])
        .arg(&pcap)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
}

/// `capture --time-shift` and `--rebase-time` move the replay's times as
/// asked (`now` included), and bad values are clear errors.
#[test]
fn capture_retimes_a_replay() {
    let pcap =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/pcaps/http_multipart.pcap");
    let earliest = |extra: &[&str]| -> i64 {
        let out = weightwatch()
            .args(["capture", "--eve", "-", "--read"])
            .arg(&pcap)
            .args(extra)
            .output()
            .unwrap();
        assert!(out.status.success(), "{extra:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|e| e["event_type"] == "flow")
            .map(|e| {
                eve::Timestamp::parse(e["flow"]["start"].as_str().unwrap())
                    .unwrap()
                    .unix_micros()
            })
            .min()
            .expect("a flow")
    };
    let hour = 3_600_000_000;
    let base = earliest(&[]);
    assert_eq!(earliest(&["--time-shift", "-36h"]), base - 36 * hour);
    assert_eq!(earliest(&["--time-shift", "2days 1h"]), base + 49 * hour);
    let at = "2026-11-04T12:00:00Z";
    assert_eq!(
        earliest(&["--rebase-time", at]),
        eve::Timestamp::parse(at).unwrap().unix_micros()
    );
    let before = eve::Timestamp::now().unix_micros();
    let now = earliest(&["--rebase-time", "now"]);
    assert!(before <= now && now <= eve::Timestamp::now().unix_micros());

    for (bad, says) in [
        (&["--rebase-time", "yesterday"][..], "RFC 3339"),
        (&["--time-shift", "5 parsecs"][..], "parsecs"),
        (
            &["--time-shift", "1h", "--rebase-time", "now"][..],
            "cannot be used with",
        ),
    ] {
        let out = weightwatch()
            .args(["capture", "--eve", "/dev/null", "--read"])
            .arg(&pcap)
            .args(bad)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{bad:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{bad:?}: {err}");
    }
}
