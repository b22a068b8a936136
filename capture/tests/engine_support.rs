//! Helpers for engine tests: locating the corpus, running the engine into
//! memory, and building small captures.

use capture::{RunSummary, Settings, detect::Detectors, run_offline};
use eve::Event;
use eve::sink::memory::MemorySink;
use fixtures::pcap::{LinkType, Micros, PacketSink, PcapWriter};
use std::path::{Path, PathBuf};

/// Ethernet frames kept in memory, so several sessions can be interleaved
/// by time (or rewritten) before they are written.
#[derive(Default)]
pub struct Frames(pub Vec<(Micros, Vec<u8>)>);

impl PacketSink for Frames {
    fn link_type(&self) -> LinkType {
        LinkType::Ethernet
    }
    fn write_packet(&mut self, ts: Micros, frame: &[u8]) -> fixtures::Result<()> {
        self.0.push((ts, frame.to_vec()));
        Ok(())
    }
    fn packets(&self) -> u64 {
        self.0.len() as u64
    }
}

/// Write `frames` (stable-sorted by time) as an Ethernet pcap.
pub fn write_pcap(path: &Path, mut frames: Vec<(Micros, Vec<u8>)>) {
    frames.sort_by_key(|(ts, _)| *ts);
    let file = std::fs::File::create(path).expect("create pcap");
    let mut w = PcapWriter::new(std::io::BufWriter::new(file), LinkType::Ethernet).expect("pcap");
    for (ts, f) in &frames {
        w.write_packet(*ts, f).expect("write");
    }
    w.finish().expect("finish");
}

/// `<workspace>/../shared/corpus/pcap-public`, if present.
pub fn corpus_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/pcap-public");
    dir.is_dir().then_some(dir)
}

/// Every capture file (`.pcap`, `.pcapng`, `.cap`) below `dir`, sorted.
pub fn corpus_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("corpus dir").flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p
                .extension()
                .is_some_and(|x| x == "pcap" || x == "pcapng" || x == "cap")
            {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Replay `files` with `workers` workers into memory.
pub fn replay(
    files: &[PathBuf],
    workers: usize,
    detectors: &Detectors,
) -> (RunSummary, Vec<Event>) {
    let settings = Settings {
        workers,
        ..Default::default()
    };
    replay_with(files, settings, detectors)
}

/// Replay `files` with `settings` (sensor id `test-sensor`) into memory.
pub fn replay_with(
    files: &[PathBuf],
    mut settings: Settings,
    detectors: &Detectors,
) -> (RunSummary, Vec<Event>) {
    settings.sensor_id = "test-sensor".into();
    let mut sink = MemorySink::default();
    let summary = run_offline(files, &settings, detectors, &mut sink).expect("run");
    let events = sink.events().to_vec();
    (summary, events)
}
