//! `cargo bench -p capture --bench engine [-- FILE|ENTRY [WORKERS...]]`: the
//! same measurement as `weightwatch bench capture`, without building the
//! whole binary. Given a fixtures catalog entry's name instead of a file
//! (default: `large_fanout_1g`, 1 GiB in sixteen 64 MiB transfers: HTTP
//! GETs, PUTs and raw TCP uploads, on 16 5-tuples so that flows spread over
//! workers; or `realistic_300m`, a busy uplink; or `realistic_<MB>m`, the
//! same traffic at any size, seed 19) it writes (or reuses, in
//! `$WEIGHTWATCH_BENCH_DIR`) that capture first.
//!
//! For each worker count: the engine alone (decoding, flows, reassembly,
//! app layer, SHA-256), then with every detector and a known-weights index
//! (of the fixtures' registered file), into a counting sink;
//! packets/s, MB/s, Gbit/s, CPU seconds and peak memory (see
//! `capture::run::measure`); then Suricata 7 (`benches/suricata.yaml`) and
//! `tcpflow -e http` on the same file, and the ratios.
//!
//! `--side-by-side`: after them, two lone workers at once — two one-worker
//! replays of the file, each a run of its own, engine alone then every
//! detector — with each one's timeline (its worker's CPU time and faults):
//! what two busy cores cost each other on this machine when they share no
//! part of the engine, against which two sharing workers are judged.

use capture::Settings;
use capture::detect::known::{ChunkParams, Index};
use capture::detect::{DetectConfig, Detectors, PolicyConfig, build};
use capture::run::measure;
use std::path::PathBuf;

/// The binary's allocator (`src/main.rs`), so the figures are the product's.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `realistic_<MB>m` that is not a catalog entry: the realistic capture
/// at that size (seed 19), e.g. `realistic_1500m` to tell fixed costs from
/// per-packet ones.
fn realistic_spec(name: &str) -> Option<fixtures::realistic::Spec> {
    if fixtures::catalog::find(name).is_some() {
        return None;
    }
    let mb: u64 = name
        .strip_prefix("realistic_")?
        .strip_suffix('m')?
        .parse()
        .ok()?;
    Some(fixtures::realistic::Spec {
        bytes: mb * 1_000_000,
        ..Default::default()
    })
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let tmp = tempfile::tempdir().expect("tempdir");
    // FILE, or a catalog entry's name (default `large_fanout_1g`), written
    // once into $WEIGHTWATCH_BENCH_DIR (kept and reused) or a temporary
    // directory.
    let file = match args.first() {
        Some(f) if std::path::Path::new(f).is_file() => PathBuf::from(f),
        arg => {
            let dir = std::env::var_os("WEIGHTWATCH_BENCH_DIR")
                .map_or_else(|| tmp.path().to_path_buf(), PathBuf::from);
            let name = arg.map_or("large_fanout_1g", String::as_str);
            std::fs::create_dir_all(&dir).expect("bench dir");
            if let Some(spec) = realistic_spec(name) {
                // `realistic_<MB>m` of any size (seed 19), as `weightwatch
                // fixtures realistic --size-mb MB` writes it.
                let path = dir.join(format!(
                    "realistic_{}m_s{}.pcap",
                    spec.bytes / 1_000_000,
                    spec.seed
                ));
                if !path.is_file() {
                    eprintln!("writing {} …", path.display());
                    fixtures::realistic::write_files(&spec, &dir).expect("write capture");
                }
                path
            } else {
                let entry = fixtures::catalog::find(name)
                    .unwrap_or_else(|| panic!("{name}: neither a file nor a catalog entry"));
                let path = dir.join(entry.file_name());
                if !path.is_file() {
                    eprintln!("writing {} …", path.display());
                    entry.write_files(&dir).expect("write capture");
                }
                path
            }
        }
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut counts: Vec<usize> = args.iter().skip(1).filter_map(|a| a.parse().ok()).collect();
    if counts.is_empty() {
        counts = vec![1, cores];
    }
    // Into the page cache as read from disk (see `measure::load_cold`).
    let size = measure::load_cold(&file).unwrap_or(0);
    // Every detector, and a known-weights index of the fixtures' registered
    // file (as `weightwatch bench capture` loads) so the chunk matcher runs.
    let index = tmp.path().join("known.idx");
    let mut idx = Index::new(ChunkParams::default(), 1).expect("index params");
    let known = fixtures::weights::pcaps::known_file();
    idx.add(&known.name, known.bytes.as_slice())
        .expect("index the known file");
    idx.write(&index).expect("write index");
    let detectors = build(
        &PolicyConfig::default(),
        &DetectConfig::default(),
        Some(&index),
    )
    .expect("detectors");
    let none = Detectors::none();
    println!(
        "file {} ({:.1} MB), {cores} cores",
        file.display(),
        size as f64 / 1e6
    );
    const WIDTH: usize = 22;
    println!("{}", measure::header(WIDTH));
    // The engine alone (decode, flows, reassembly, app layer, SHA-256),
    // then with every detector and the index.
    let runs = counts
        .iter()
        .flat_map(|&n| [(n, "engine", &none), (n, "engine+detect", &detectors)]);
    let (mut engine, mut detect) = (Vec::new(), Vec::new());
    for (n, label, detectors) in runs {
        let settings = Settings {
            workers: n.max(1),
            ..Default::default()
        };
        let m = measure::replay(&file, &settings, detectors).expect("run");
        println!("{}", measure::row(&format!("{label} w={n}"), WIDTH, &m));
        println!("{}", measure::timeline_row(&m));
        if label == "engine" {
            &mut engine
        } else {
            &mut detect
        }
        .push((n, m));
    }
    if std::env::args().any(|a| a == "--side-by-side") {
        for (label, detectors, alone) in [
            ("engine", &none, &engine),
            ("engine+detect", &detectors, &detect),
        ] {
            let settings = Settings::default();
            let runs = measure::replay_side_by_side(&file, &settings, detectors, 2).expect("run");
            let one = alone.iter().find(|(n, _)| *n == 1).map(|(_, m)| m);
            for line in measure::side_by_side_rows(&format!("{label} 1+1"), &runs, one) {
                println!("{line}");
            }
        }
    }
    // `--no-reference`: weightwatch alone (A/B runs of the engine).
    let suricata = if std::env::args().any(|a| a == "--no-reference") {
        Err("suricata and tcpflow not run (--no-reference)".to_string())
    } else {
        let s = measure::suricata(&file);
        for (name, r) in [
            ("suricata", &s),
            ("tcpflow -e http", &measure::tcpflow(&file)),
        ] {
            match r {
                Ok(r) => println!("{}", r.row(name, WIDTH)),
                Err(why) => println!("{why}"),
            }
        }
        s
    };
    for line in measure::speedups("engine", &engine)
        .into_iter()
        .chain(measure::speedups("engine+detect", &detect))
    {
        println!("{line}");
    }
    if let Ok(r) = &suricata {
        for line in measure::versus("engine+detect", &detect, "suricata", r) {
            println!("{line}");
        }
    }
}
