//! The demo's generated inputs: the lab's "registered" weight files with
//! their known-weights index, and the labelled API logs. Both are made by
//! code from fixed seeds, so every run (and the committed captures that
//! carry these weights) agree byte for byte.

use anyhow::Context;
use std::path::{Path, PathBuf};

/// The weight-transfer captures the demo replays besides the committed
/// ones: generated on demand (together too large to commit), from the
/// fixtures catalog.
pub const WEIGHT_CAPTURES: [&str; 6] = [
    "weights_http_put",
    "weights_raw_tcp",
    "weights_headerless",
    "weights_partial",
    "weights_midstream",
    "weights_encrypted_upload",
];

/// Write the lab's registered weight file (the one the weight captures
/// carry) into `dir` and build its known-weights index, as
/// `weightwatch index build` would; returns the index path.
pub fn registered_weights(dir: &Path) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let file = fixtures::weights::pcaps::known_file();
    let path = dir.join(&file.name);
    std::fs::write(&path, &file.bytes).with_context(|| format!("writing {}", path.display()))?;
    let mut index = capture::detect::known::Index::new(Default::default(), 1)?;
    index.add_path(&path)?;
    let out = dir.join("weights.idx");
    index.write(&out)?;
    Ok(out)
}

/// Generate the weight-transfer captures into `dir`; returns `dir`.
pub fn weight_captures(dir: &Path) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for name in WEIGHT_CAPTURES {
        let entry = fixtures::catalog::find(name)
            .with_context(|| format!("fixtures catalog has no entry {name}"))?;
        entry
            .write_files(dir)
            .with_context(|| format!("generating capture {name}"))?;
    }
    Ok(dir.to_path_buf())
}

/// The demo's API request log, generated into `dir` on first use (into a
/// scratch directory renamed into place, so an interrupted run leaves no
/// half-written log behind); returns the requests file.
pub fn api_logs(dir: &Path) -> anyhow::Result<PathBuf> {
    let spec = fixtures::logs::LogSpec::default();
    let requests = dir.join("requests.jsonl");
    if !requests.is_file() {
        eprintln!(
            "      generating API logs (seed {}, {} accounts, {} days)",
            spec.seed, spec.accounts, spec.days
        );
        let scratch = dir.with_extension("partial");
        if scratch.exists() {
            std::fs::remove_dir_all(&scratch)?;
        }
        std::fs::create_dir_all(&scratch)
            .with_context(|| format!("creating {}", scratch.display()))?;
        fixtures::logs::generate(&spec, &scratch).context("generating the demo's API logs")?;
        if dir.exists() {
            std::fs::remove_dir_all(dir)?;
        }
        std::fs::rename(&scratch, dir)
            .with_context(|| format!("moving logs to {}", dir.display()))?;
    }
    Ok(requests)
}

/// The time span of the demo's API logs (ms since the epoch, first day's
/// midnight to the last day's end).
pub fn log_window() -> (i64, i64) {
    let spec = fixtures::logs::LogSpec::default();
    let day = 86_400_000;
    (spec.start_ms, spec.start_ms + i64::from(spec.days) * day)
}

/// Where the demo places its replayed captures' first packet (µs since the
/// epoch): 09:00 UTC on the last day of the API logs, so the sensor's
/// alerts and the analyzer's fall in the same week of the overview.
pub fn replay_start() -> i64 {
    let (_, end) = log_window();
    (end - 15 * 3_600_000) * 1000
}

/// The capture files (`.pcap`, `.pcapng`) in `dirs`, leaving out the
/// fixtures' `.expect.json` sidecars.
pub fn captures_in(dirs: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for dir in dirs {
        for entry in std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
            let path = entry?.path();
            if matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("pcap" | "pcapng")
            ) {
                out.push(path);
            }
        }
    }
    out.sort();
    anyhow::ensure!(!out.is_empty(), "no captures found in {dirs:?}");
    Ok(out)
}
