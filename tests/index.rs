//! Known weights through the real binary: `weightwatch index build` registers
//! weight files, `index show` lists them, and `capture --read … --index …
//! --eve -` raises a `weights_known` alert naming the registered file, the
//! bytes matched and the coverage, on the fixtures' weights captures.

use fixtures::weights::{DType, Format, ModelSpec, pcaps};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn weightwatch() -> Command {
    Command::new(env!("CARGO_BIN_EXE_weightwatch"))
}

fn run_ok(cmd: &mut Command) -> (String, String) {
    let out = cmd.output().expect("run weightwatch");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(out.status.success(), "{cmd:?} failed:\n{stderr}");
    (stdout, stderr)
}

/// The registered file of the weights captures and an unrelated model, on disk.
fn weight_files(dir: &Path) -> (PathBuf, PathBuf) {
    let models = dir.join("models");
    std::fs::create_dir_all(&models).expect("mkdir");
    let known = pcaps::known_file();
    let known_path = models.join(&known.name);
    std::fs::write(&known_path, &known.bytes).expect("write known file");
    let other = Format::Gguf.write(&ModelSpec::tiny(), DType::F16, 4242);
    let other_path = models.join(&other.name);
    std::fs::write(&other_path, &other.bytes).expect("write other file");
    (known_path, other_path)
}

fn build_index(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let (known, other) = weight_files(dir);
    let idx = dir.join("weights.idx");
    let (stdout, stderr) = run_ok(
        weightwatch()
            .args(["index", "build"])
            .arg(&known)
            .arg(&other)
            .arg("--out")
            .arg(&idx),
    );
    assert!(stdout.contains("2 files"), "{stdout}");
    assert!(stderr.contains(&known.display().to_string()), "{stderr}");
    (idx, known, other)
}

/// `weights_known` alerts of `capture --read <entry> --index idx --eve -`.
fn known_alerts(dir: &Path, entry: &str, idx: &Path) -> Vec<Value> {
    let e = fixtures::catalog::find(entry).unwrap_or_else(|| panic!("catalog entry {entry}"));
    let sub = dir.join(entry);
    std::fs::create_dir_all(&sub).expect("mkdir");
    let pcap = e.write_files(&sub).expect("generate capture");
    let (stdout, _) = run_ok(
        weightwatch()
            .args(["capture", "--read"])
            .arg(&pcap)
            .arg("--index")
            .arg(idx)
            .args(["--eve", "-"]),
    );
    stdout
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .filter(|v| v["event_type"] == "alert" && v["alert"]["category"] == "weights_known")
        .collect()
}

#[test]
fn index_build_and_show_list_the_registered_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (idx, known, other) = build_index(dir.path());
    let (stdout, _) = run_ok(weightwatch().args(["index", "show"]).arg(&idx));
    for (path, size) in [
        (&known, pcaps::known_file().bytes.len()),
        (
            &other,
            std::fs::metadata(&other).expect("stat").len() as usize,
        ),
    ] {
        let line = stdout
            .lines()
            .find(|l| l.contains(&path.display().to_string()))
            .unwrap_or_else(|| panic!("{} not listed:\n{stdout}", path.display()));
        assert!(
            line.contains(&size.to_string()),
            "size {size} not in {line}"
        );
    }
    // A damaged index is refused with its path named.
    let mut bytes = std::fs::read(&idx).expect("read index");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 1;
    let bad = dir.path().join("bad.idx");
    std::fs::write(&bad, &bytes).expect("write");
    let out = weightwatch()
        .args(["index", "show"])
        .arg(&bad)
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad.idx"));
}

#[test]
fn capture_with_index_names_the_registered_file_bytes_and_coverage() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (idx, known, _) = build_index(dir.path());
    let size = pcaps::known_file().bytes.len() as f64;
    // weights_partial carries the file's first 40 %; weights_midstream all
    // of it but the capture joins after 120 KiB.
    for (entry, lo, hi) in [
        ("weights_partial", 0.3, 0.41),
        ("weights_midstream", 0.8, 1.0),
    ] {
        let alerts = known_alerts(dir.path(), entry, &idx);
        assert_eq!(alerts.len(), 1, "{entry}: {alerts:?}");
        let ev = &alerts[0]["evidence"];
        assert_eq!(ev["known_file"], known.display().to_string(), "{entry}");
        let matched = ev["matched_bytes"].as_f64().unwrap_or(0.0);
        assert!(
            matched > 0.0 && matched <= size * hi,
            "{entry}: matched {matched}"
        );
        let cov = ev["coverage"].as_f64().unwrap_or(-1.0);
        assert!((lo..=hi).contains(&cov), "{entry}: coverage {cov}");
        assert!(
            alerts[0]["flow_id"].is_u64(),
            "{entry}: alert carries the flow"
        );
    }
}

#[test]
fn capture_without_a_matching_file_raises_no_known_alert() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_, other) = weight_files(dir.path());
    let idx = dir.path().join("other.idx");
    run_ok(
        weightwatch()
            .args(["index", "build"])
            .arg(&other)
            .arg("--out")
            .arg(&idx),
    );
    assert!(known_alerts(dir.path(), "weights_partial", &idx).is_empty());
}
