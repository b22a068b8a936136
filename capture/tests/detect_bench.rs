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
    let t = measure(128 << 20, &DetectConfig::default());
    println!("{t:#?}");
    assert_eq!(t.bytes, 128 << 20);
}

/// Engine alone, all detectors without an index, all detectors with one, on
/// the same pcap, one worker. `WW_BENCH_PCAP=FILE` replays that file instead
/// of generating `large_http_download_256m`; `WW_BENCH_ONLY=engine|noindex|index`
/// runs one variant (for `valgrind --tool=callgrind`, one process per variant).
#[test]
#[ignore = "benchmark: run explicitly with --ignored in an optimised profile"]
fn engine_with_and_without_detectors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pcap = match std::env::var_os("WW_BENCH_PCAP") {
        Some(p) => std::path::PathBuf::from(p),
        None => {
            let entry = fixtures::catalog::find("large_http_download_256m").expect("catalog entry");
            entry.write_files(dir.path()).expect("generate")
        }
    };
    let only = std::env::var("WW_BENCH_ONLY").ok();
    let size = std::fs::metadata(&pcap).map(|m| m.len()).unwrap_or(0);
    let mut idx = Index::new(ChunkParams::default(), 1).expect("params");
    let f = fixtures::weights::pcaps::known_file();
    idx.add("known.safetensors", f.bytes.as_slice())
        .expect("add");
    let ip = dir.path().join("w.idx");
    idx.write(&ip).expect("write");
    let mut cfg = DetectConfig::default();
    if std::env::var_os("WW_BENCH_EVERY_BYTE").is_some() {
        cfg.known_window_stride_bytes = cfg.known_window_bytes;
    }
    let variants = [
        ("engine", "engine alone", None),
        ("noindex", "all detectors, no index", Some(None)),
        ("index", "all detectors + index", Some(Some(ip.as_path()))),
    ];
    for (key, name, det) in variants {
        if only.as_deref().is_some_and(|o| o != key) {
            continue;
        }
        let det = match det {
            None => Detectors::none(),
            Some(index) => build(&PolicyConfig::default(), &cfg, index).expect("build"),
        };
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
