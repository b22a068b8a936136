//! Detector throughput, printed (a benchmark, not a test: ignored by default).
//! Run: `cargo test -p capture --profile perf --test main detect_bench -- --ignored --nocapture`.
//! Results go into docs/performance.md.

use capture::detect::bench::measure;
use capture::detect::known::{ChunkParams, Index};
use capture::detect::{DetectConfig, Detectors, PolicyConfig, build};
use capture::{Settings, run_offline};
use eve::sink::memory::MemorySink;

#[test]
#[ignore = "benchmark: run explicitly with --ignored in an optimised profile"]
fn detector_throughput() {
    let t = measure(64 << 20);
    println!("{t:#?}");
    assert_eq!(t.bytes, 64 << 20);
}

#[test]
#[ignore = "benchmark: run explicitly with --ignored in an optimised profile"]
fn engine_with_and_without_detectors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let entry = fixtures::catalog::find("large_http_download_256m").expect("catalog entry");
    let pcap = entry.write_files(dir.path()).expect("generate");
    let size = std::fs::metadata(&pcap).map(|m| m.len()).unwrap_or(0);
    let mut idx = Index::new(ChunkParams::default(), 1).expect("params");
    let f = fixtures::weights::pcaps::known_file();
    idx.add("known.safetensors", f.bytes.as_slice())
        .expect("add");
    let ip = dir.path().join("w.idx");
    idx.write(&ip).expect("write");
    let all = build(
        &PolicyConfig::default(),
        &DetectConfig::default(),
        Some(&ip),
    )
    .expect("build");
    for (name, det) in [
        ("engine alone", Detectors::none()),
        (
            "all detectors, no index",
            build(&PolicyConfig::default(), &DetectConfig::default(), None).expect("build"),
        ),
        ("all detectors + index", all),
    ] {
        let settings = Settings {
            workers: 1,
            ..Settings::default()
        };
        let mut sink = MemorySink::new();
        let s = run_offline(std::slice::from_ref(&pcap), &settings, &det, &mut sink).expect("run");
        let secs = s.elapsed.as_secs_f64().max(1e-9);
        println!(
            "{name:<24} {:.1} MB in {secs:.2} s = {:.1} MB/s (1 worker)",
            size as f64 / 1e6,
            size as f64 / 1e6 / secs
        );
    }
}
