//! `cargo bench -p capture --bench engine [-- FILE [WORKERS...]]`: the same
//! measurement as `weightwatch bench capture`, without building the whole
//! binary. Without FILE it writes (or reuses, in `$WEIGHTWATCH_BENCH_DIR`)
//! the fixtures catalog's `large_fanout_1g` capture (1 GiB in sixteen
//! 64 MiB transfers: HTTP GETs, PUTs and raw TCP uploads, on 16 5-tuples so
//! that flows spread over workers) to a temporary directory first.
//!
//! For each worker count: the engine alone (decoding, flows, reassembly,
//! app layer, SHA-256), then with the default detectors, into a counting sink;
//! packets/s, MB/s, Gbit/s, CPU seconds (user + system, all threads: less
//! sensitive than wall time to a busy machine) and peak RSS (VmHWM, reset
//! between runs).

use capture::detect::{DetectConfig, Detectors, PolicyConfig, build};
use capture::{Settings, run_offline};
use eve::sink::memory::CountingSink;
use std::path::PathBuf;

fn peak_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .map_or(0, |kb| kb * 1024)
}

/// CPU seconds (user + system) so far of this process (all threads), or
/// of its waited-for children.
fn cpu_secs(children: bool) -> f64 {
    // Fields 14-15 (self) or 16-17 (children) of /proc/self/stat, in
    // USER_HZ (100 on Linux); the command name (field 2) may hold spaces,
    // so count after its ')'.
    let at = if children { 13 } else { 11 };
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            let rest = s.rsplit_once(')')?.1;
            let f: Vec<&str> = rest.split_whitespace().collect();
            let ticks = f.get(at)?.parse::<u64>().ok()? + f.get(at + 1)?.parse::<u64>().ok()?;
            Some(ticks as f64 / 100.0)
        })
        .unwrap_or(0.0)
}

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
    println!(
        "{:<22} {:>10} {:>8} {:>12} {:>9} {:>8} {:>7} {:>9} {:>9} {:>8}",
        "run",
        "packets",
        "secs",
        "packets/s",
        "MB/s",
        "Gbit/s",
        "cpu_s",
        "MB/cpu_s",
        "peak_MB",
        "events"
    );
    // The engine alone (decode, flows, reassembly, app layer, SHA-256),
    // then with the default detector set.
    let runs = counts
        .iter()
        .flat_map(|&n| [(n, "engine", &none), (n, "engine+detect", &detectors)]);
    for (n, label, detectors) in runs {
        let settings = Settings {
            workers: n.max(1),
            ..Default::default()
        };
        let mut sink = CountingSink::default();
        let _ = std::fs::write("/proc/self/clear_refs", "5");
        let cpu0 = cpu_secs(false);
        let s =
            run_offline(std::slice::from_ref(&file), &settings, detectors, &mut sink).expect("run");
        let cpu = (cpu_secs(false) - cpu0).max(1e-9);
        let secs = s.elapsed.as_secs_f64().max(1e-9);
        let bytes = s.bytes() as f64;
        println!(
            "{:<22} {:>10} {:>8.2} {:>12.0} {:>9.1} {:>8.2} {:>7.2} {:>9.1} {:>9.0} {:>8}",
            format!("{label} w={n}"),
            s.packets(),
            secs,
            s.packets() as f64 / secs,
            bytes / 1e6 / secs,
            bytes * 8.0 / 1e9 / secs,
            cpu,
            bytes / 1e6 / cpu,
            peak_bytes() as f64 / 1e6,
            sink.events
        );
    }
    let out = tmp.path().join("tcpflow-out");
    std::fs::create_dir_all(&out).expect("mkdir");
    let start = std::time::Instant::now();
    let cpu0 = cpu_secs(true);
    let st = std::process::Command::new("tcpflow")
        .args(["-e", "http", "-r"])
        .arg(&file)
        .arg("-o")
        .arg(&out)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
    let secs = start.elapsed().as_secs_f64().max(1e-9);
    let cpu = (cpu_secs(true) - cpu0).max(1e-9);
    match st {
        Ok(st) if st.success() => println!(
            "{:<22} {:>10} {:>8.2} {:>12} {:>9.1} {:>8.2} {:>7.2} {:>9.1}",
            "tcpflow -e http",
            "-",
            secs,
            "-",
            size as f64 / 1e6 / secs,
            size as f64 * 8.0 / 1e9 / secs,
            cpu,
            size as f64 / 1e6 / cpu
        ),
        Ok(st) => println!("tcpflow failed: {st}"),
        Err(e) => println!("tcpflow not run ({e})"),
    }
}
