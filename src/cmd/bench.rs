//! `weightwatch bench`: throughput measurements (benchmarks, never tests).

use crate::config::Config;
use eve::sink::memory::CountingSink;
use std::path::PathBuf;

/// `weightwatch bench …`
#[derive(clap::Subcommand, Debug)]
pub enum BenchCommand {
    /// Capture engine and detectors: packets/s, MB/s, Gbit/s for one and N
    /// workers, and peak memory, on a pcap read from page cache.
    Capture {
        /// The pcap to replay.
        file: PathBuf,
        /// Worker counts to measure (default: 1 and the number of cores).
        #[arg(long, value_name = "N", num_args = 1..)]
        workers: Vec<usize>,
        /// Known-weights index loaded for the detector runs (default: one
        /// built from the fixtures' registered file, so the chunk matcher runs).
        #[arg(long, value_name = "FILE")]
        index: Option<PathBuf>,
        /// Rounds of weightwatch, Suricata and tcpflow alternated on the
        /// file (on a shared machine: load changes hit all of them alike).
        #[arg(long, default_value_t = 1, value_name = "N")]
        rounds: usize,
        /// Skip the detector breakdown (each detector alone, engine with
        /// and without detectors).
        #[arg(long)]
        no_breakdown: bool,
    },
    /// Analyzer: rows/s, CPU seconds and peak memory of the whole
    /// analysis; then, for one JSON Lines file, the same file through
    /// Python polars and DuckDB computing plain per-account aggregates
    /// (analyzer/benches/baseline_*.py), side by side.
    Analyze {
        /// Request logs to analyze.
        #[arg(num_args = 1.., required = true)]
        logs: Vec<PathBuf>,
        /// Skip the Python polars and DuckDB baselines.
        #[arg(long)]
        no_baselines: bool,
    },
}

/// Run a benchmark.
pub fn run(cmd: BenchCommand, config: Config) -> anyhow::Result<()> {
    match cmd {
        BenchCommand::Capture {
            file,
            workers,
            index,
            rounds,
            no_breakdown,
        } => {
            let generated = index.is_none();
            let index = match index {
                Some(p) => p,
                None => bench_index()?,
            };
            let res = capture_bench(&file, &workers, rounds, &index, &config).and_then(|()| {
                if no_breakdown {
                    Ok(())
                } else {
                    detector_bench(&file, &index, &config)
                }
            });
            if generated {
                let _ = std::fs::remove_file(&index);
            }
            res
        }
        BenchCommand::Analyze { logs, no_baselines } => {
            let one_file = match logs.as_slice() {
                [f] if f.is_file() && !no_baselines => Some(f.clone()),
                _ => None,
            };
            let (secs, cpu) = analyze(logs, &config)?;
            if let Some(file) = one_file {
                baselines(&file, secs, cpu);
            }
            Ok(())
        }
    }
}

/// `weightwatch bench analyze`: the whole analysis (ingest, features,
/// templates, clusters, scores; alerts to a null sink) on the given logs.
/// Returns its wall and CPU seconds.
fn analyze(logs: Vec<PathBuf>, config: &Config) -> anyhow::Result<(f64, f64)> {
    use capture::run::measure::cpu_secs;
    let opts = analyzer::AnalyzeOptions {
        logs,
        ..Default::default()
    };
    let start = std::time::Instant::now();
    let cpu0 = cpu_secs(false);
    let mut sink = CountingSink::default();
    let report = analyzer::run(&opts, &config.analyzer, &mut sink)?;
    let secs = start.elapsed().as_secs_f64();
    let cpu = cpu_secs(false) - cpu0;
    let rows = report.ingest.rows + report.ingest.bad_total();
    println!("rows          {rows}");
    println!("bytes         {}", report.ingest.bytes);
    println!("seconds       {secs:.2}");
    println!("cpu_seconds   {cpu:.2}");
    println!("rows/s        {:.0}", rows as f64 / secs.max(1e-9));
    println!(
        "MB/s          {:.1}",
        report.ingest.bytes as f64 / 1e6 / secs.max(1e-9)
    );
    let t = report.timings;
    println!(
        "phases_s      ingest {:.2}  analysis {:.2}  output {:.2}",
        t.ingest, t.analysis, t.output
    );
    println!(
        "peak_rss_MB   {:.0}",
        capture::run::measure::peak_rss() as f64 / 1e6
    );
    println!(
        "accounts      {} ({} flagged, {} events)",
        report.analysis.accounts.len(),
        report.flagged_accounts(),
        sink.events
    );
    Ok((secs, cpu))
}

/// The baselines of issue 12: what a user would do instead of the whole
/// analysis — Python polars, and DuckDB, computing 14 plain per-account
/// aggregates over the same JSON Lines file.
const BASELINES: [(&str, &str); 2] = [
    (
        "polars",
        include_str!("../../analyzer/benches/baseline_polars.py"),
    ),
    (
        "duckdb",
        include_str!("../../analyzer/benches/baseline_duckdb.py"),
    ),
];

/// Run each baseline script with `python3` on `file` (its own line: time
/// inside Python and peak RSS), with its wall and CPU seconds next to the
/// analyzer's. A missing Python or package is reported, not an error.
fn baselines(file: &std::path::Path, secs: f64, cpu: f64) {
    use capture::run::measure::cpu_secs;
    use std::io::Write;
    for (name, script) in BASELINES {
        let start = std::time::Instant::now();
        let cpu0 = cpu_secs(true);
        let child = std::process::Command::new("python3")
            .arg("-")
            .arg(file)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn();
        let out = child.and_then(|mut c| {
            if let Some(mut stdin) = c.stdin.take() {
                stdin.write_all(script.as_bytes())?;
            }
            c.wait_with_output()
        });
        let (b_secs, b_cpu) = (start.elapsed().as_secs_f64(), cpu_secs(true) - cpu0);
        match out {
            Ok(o) if o.status.success() => {
                let line = String::from_utf8_lossy(&o.stdout);
                println!(
                    "{name:<13} {} (wall {b_secs:.2} s, cpu {b_cpu:.2} s); analyzer/{name}: {:.2}x wall, {:.2}x cpu",
                    line.trim(),
                    secs / b_secs.max(1e-9),
                    cpu / b_cpu.max(1e-9)
                );
            }
            Ok(o) => {
                let err = String::from_utf8_lossy(&o.stderr);
                let last = err.lines().last().unwrap_or("").trim();
                println!(
                    "{name:<13} not run ({last}); python3 -m pip install polars==2.1.0 duckdb==2.0.0"
                );
            }
            Err(e) => println!("{name:<13} not run (python3: {e})"),
        }
    }
}

/// `weightwatch bench capture`: replay one pcap (read once first so it is in
/// page cache) through the whole engine — decoding, flows, reassembly, app
/// layer, SHA-256 and the detectors — into a counting sink, for each worker
/// count; then the same file through Suricata 7 (one packet thread, no
/// rules, unlimited reassembly, SHA-256 of every file) and `tcpflow -e http`
/// when they are installed; `rounds` times, alternated, with the ratios of
/// each round.
fn capture_bench(
    file: &std::path::Path,
    workers: &[usize],
    rounds: usize,
    index: &std::path::Path,
    config: &Config,
) -> anyhow::Result<()> {
    use anyhow::Context;
    use capture::run::measure;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut counts: Vec<usize> = if workers.is_empty() {
        vec![1, cores]
    } else {
        workers.to_vec()
    };
    counts.dedup();
    // Into the page cache as read from disk (see `measure::load_cold`).
    let size = measure::load_cold(file).with_context(|| format!("reading {}", file.display()))?;
    let detectors = capture::detect::build(&config.policy, &config.detect, Some(index))?;
    println!(
        "file {} ({:.1} MB), {cores} cores, load average {}",
        file.display(),
        size as f64 / 1e6,
        load_average()
    );
    const WIDTH: usize = 18;
    for round in 1..=rounds.max(1) {
        if rounds > 1 {
            println!("round {round} (load average {})", load_average());
        }
        println!("{}", measure::header(WIDTH));
        let mut runs = Vec::new();
        for &n in &counts {
            let mut settings = capture::Settings::new(config.capture.clone());
            settings.workers = n.max(1);
            let m = measure::replay(file, &settings, &detectors)?;
            println!("{}", measure::row(&format!("weightwatch w={n}"), WIDTH, &m));
            println!("{}", measure::timeline_row(&m));
            runs.push((n, m));
        }
        let suricata = measure::suricata(file);
        for (name, r) in [
            ("suricata", &suricata),
            ("tcpflow -e http", &measure::tcpflow(file)),
        ] {
            match r {
                Ok(r) => println!("{}", r.row(name, WIDTH)),
                Err(why) => println!("{why}"),
            }
        }
        for line in measure::speedups("weightwatch", &runs) {
            println!("{line}");
        }
        if let Ok(r) = &suricata {
            for line in measure::versus("weightwatch", &runs, "suricata", r) {
                println!("{line}");
            }
        }
    }
    Ok(())
}

/// The 1-, 5- and 15-minute load averages (`/proc/loadavg`), or `?`.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg").map_or_else(
        |_| "?".to_string(),
        |s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "),
    )
}

/// A known-weights index of the fixtures' registered file, written to a
/// temporary path, for benchmarks run without `--index`.
fn bench_index() -> anyhow::Result<PathBuf> {
    use capture::detect::known::{ChunkParams, Index};
    let file = fixtures::weights::pcaps::known_file();
    let mut index = Index::new(ChunkParams::default(), 1)?;
    index.add(&file.name, file.bytes.as_slice())?;
    let path = std::env::temp_dir().join(format!("weightwatch-bench-{}.idx", std::process::id()));
    index.write(&path)?;
    Ok(path)
}

/// Detector costs: each detector's own MB/s on 128 MiB of generated data,
/// then the same pcap through one worker with no detectors and with every
/// detector plus the index, alternated (A B A B A B) so load changes hit both
/// alike; best run of each.
fn detector_bench(
    file: &std::path::Path,
    index: &std::path::Path,
    config: &Config,
) -> anyhow::Result<()> {
    let t = capture::detect::bench::measure(128 << 20, &config.detect);
    let d = &config.detect;
    println!(
        "detectors, single thread, one {:.0} MB object of generated data:",
        t.bytes as f64 / 1e6
    );
    println!(
        "  tensor classifier     {:>8.1} MB/s bf16 windows, {:.1} MB/s random windows, {:.1} MB/s as driven (sampled windows)",
        t.classifier_tensor_mb_s, t.classifier_random_mb_s, t.stats_scan_mb_s
    );
    println!(
        "  chunk matcher         {:>8.1} MB/s every byte, {:.1} MB/s as configured (first {} MiB, then {} KiB every {} MiB), unknown bytes",
        t.matcher_every_byte_mb_s,
        t.matcher_mb_s,
        d.known_full_scan_bytes >> 20,
        d.known_window_bytes >> 10,
        d.known_window_stride_bytes >> 20
    );
    println!("  format scan           {:>8.1} MB/s", t.format_scan_mb_s);
    let all = capture::detect::build(&config.policy, &config.detect, Some(index))?;
    let none = capture::detect::Detectors::none();
    let mut best = [f64::INFINITY; 2];
    let mut bytes = 0u64;
    for _ in 0..3 {
        for (i, det) in [&none, &all].into_iter().enumerate() {
            let mut settings = capture::Settings::new(config.capture.clone());
            settings.workers = 1;
            let mut sink = CountingSink::default();
            let s = capture::run_offline(&[file.to_path_buf()], &settings, det, &mut sink)?;
            bytes = s.bytes();
            best[i] = best[i].min(s.elapsed.as_secs_f64().max(1e-9));
        }
    }
    let mb_s = |secs: f64| bytes as f64 / 1e6 / secs;
    println!(
        "same pcap, 1 worker, best of 3 alternated runs, index {}:",
        index.display()
    );
    println!("  engine alone          {:>8.1} MB/s", mb_s(best[0]));
    println!("  all detectors + index {:>8.1} MB/s", mb_s(best[1]));
    println!(
        "  all detectors / engine alone: {:.1} % (target >= 80 %)",
        100.0 * best[0] / best[1]
    );
    Ok(())
}
