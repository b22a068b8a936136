//! Detector throughput, printed (a benchmark, not a test: ignored by default).
//! Run: `cargo test -p capture --profile demo --test main detect_bench -- --ignored --nocapture`.
//! Results go into docs/performance-detectors.md.

use capture::detect::bench::measure;

#[test]
#[ignore = "benchmark: run explicitly with --ignored in an optimised profile"]
fn detector_throughput() {
    let t = measure(64 << 20);
    println!("{t:#?}");
    assert_eq!(t.bytes, 64 << 20);
}
