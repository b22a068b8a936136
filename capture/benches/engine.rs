//! `cargo bench -p capture --bench engine [-- FILE [WORKERS...]]`: the same
//! measurement as `weightwatch bench capture`, without building the whole
//! binary. Without FILE it writes (or reuses, in `$WEIGHTWATCH_BENCH_DIR`)
//! the fixtures catalog's `large_fanout_1g` capture (1 GiB in sixteen
//! 64 MiB transfers: HTTP GETs, PUTs and raw TCP uploads, on 16 5-tuples so
//! that flows spread over workers) to a temporary directory first.
//!
//! For each worker count: the engine alone (decoding, flows, reassembly,
//! app layer, SHA-256), then with the default detectors, into a counting sink;
//! packets/s, MB/s, Gbit/s, CPU seconds and peak memory (see
//! `capture::run::measure`).

use capture::Settings;
use capture::detect::{DetectConfig, Detectors, PolicyConfig, build};
use capture::run::measure;
use std::path::PathBuf;

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let tmp = tempfile::tempdir().expect("tempdir");
    let file = match args.first() {
        Some(f) => PathBuf::from(f),
        None => {
            // WEIGHTWATCH_BENCH_DIR keeps (and reuses) the generated capture.
            let dir = std::env::var_os("WEIGHTWATCH_BENCH_DIR")
                .map_or_else(|| tmp.path().to_path_buf(), PathBuf::from);
            let entry = fixtures::catalog::find("large_fanout_1g").expect("catalog entry");
            let path = dir.join(entry.file_name());
            if !path.is_file() {
                eprintln!("writing {} …", path.display());
                std::fs::create_dir_all(&dir).expect("bench dir");
                entry.write_files(&dir).expect("write capture");
            }
            path
        }
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut counts: Vec<usize> = args.iter().skip(1).filter_map(|a| a.parse().ok()).collect();
    if counts.is_empty() {
        counts = vec![1, cores];
    }
    // Warm the page cache.
    let size = std::fs::File::open(&file)
        .and_then(|mut f| std::io::copy(&mut f, &mut std::io::sink()))
        .unwrap_or(0);
    let detectors =
        build(&PolicyConfig::default(), &DetectConfig::default(), None).expect("detectors");
    let none = Detectors::none();
    println!(
        "file {} ({:.1} MB), {cores} cores",
        file.display(),
        size as f64 / 1e6
    );
    const WIDTH: usize = 22;
    println!("{}", measure::header(WIDTH));
    // The engine alone (decode, flows, reassembly, app layer, SHA-256),
    // then with the default detector set.
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
        if label == "engine" {
            &mut engine
        } else {
            &mut detect
        }
        .push((n, m));
    }
    println!("{}", measure::tcpflow(&file, WIDTH));
    for line in measure::speedups("engine", &engine)
        .into_iter()
        .chain(measure::speedups("engine+detect", &detect))
    {
        println!("{line}");
    }
}
