//! Every capture of the public corpus (`../shared/corpus/pcap-public`) is
//! read without a panic; malformed files give a clear per-file error or
//! counted decoder skips; no weight alert is raised on this ordinary traffic.

use crate::engine_support::{corpus_dir, corpus_files, replay};
use capture::detect::{DetectConfig, PolicyConfig, build};
use eve::EventKind;

#[test]
fn corpus_replays_without_panic_or_weight_alerts() {
    let Some(dir) = corpus_dir() else {
        eprintln!("SKIP: corpus not found at ../shared/corpus/pcap-public");
        return;
    };
    let files = corpus_files(&dir);
    assert!(files.len() > 100, "corpus has {} files", files.len());
    let detectors =
        build(&PolicyConfig::default(), &DetectConfig::default(), None).expect("detectors");
    let (mut rejected, mut cut_short, mut with_skips) = (0, 0, 0);
    let mut packets = 0;
    for f in &files {
        let (summary, events) = replay(std::slice::from_ref(f), 2, &detectors);
        let report = &summary.files[0];
        packets += summary.packets();
        let name = f.strip_prefix(&dir).unwrap_or(f).display().to_string();
        if let Some(e) = &report.error {
            assert!(
                e.contains(&f.display().to_string()),
                "error names the file: {e}"
            );
            if report.rejected {
                rejected += 1;
                eprintln!("rejected  {name}: {e}");
            } else {
                cut_short += 1;
                eprintln!("cut short {name}: {e}");
            }
        }
        let skips: u64 = summary
            .stats
            .sections
            .get("decoder")
            .map(|s| {
                s.iter()
                    .filter(|(k, _)| {
                        !matches!(
                            k.as_str(),
                            "decoded" | "ip_reassembled" | "fragment_held" | "checksum_offloaded"
                        )
                    })
                    .map(|(_, n)| n)
                    .sum()
            })
            .unwrap_or(0);
        if skips > 0 {
            with_skips += 1;
        }
        let bad_sums: u64 = ["ipv4", "tcp", "udp"]
            .iter()
            .map(|p| {
                summary
                    .stats
                    .get("decoder", &format!("invalid_{p}_checksum"))
            })
            .sum();
        eprintln!(
            "file      {name}: {} packets, {} decoded, {skips} skipped ({bad_sums} bad checksums, {} offloaded), {} flows",
            report.packets,
            summary.stats.get("decoder", "decoded"),
            summary.stats.get("decoder", "checksum_offloaded"),
            summary.stats.get("flow", "created")
        );
        // The stats event is last and counts what was read.
        let last = events.last().expect("a stats event");
        match &last.kind {
            EventKind::Stats(s) => assert_eq!(s.stats.get("capture", "packets"), report.packets),
            other => panic!("last event of {name} is {other:?}"),
        }
        for e in &events {
            if let EventKind::Alert(a) = &e.kind {
                assert!(
                    !a.alert.category.is_weights(),
                    "{name}: weight alert on ordinary traffic: {:?}",
                    a.alert
                );
            }
        }
    }
    eprintln!(
        "corpus: {} files, {packets} packets; {rejected} rejected outright, {cut_short} cut short, {with_skips} with counted decoder skips",
        files.len()
    );
    assert!(packets > 10_000);
}
