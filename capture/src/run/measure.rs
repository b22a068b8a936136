//! Replay measurements, shared by `weightwatch bench capture` and
//! `cargo bench -p capture --bench engine` (benchmarks, never tests):
//! throughput, CPU seconds (user + system, all threads: less sensitive than
//! wall time to a busy machine) and peak memory of one replay, and the same
//! file through Suricata 7 (`benches/suricata.yaml`: no rules, unlimited
//! reassembly, SHA-256 of every file) and Debian's `tcpflow -e http` for
//! comparison. Linux only (the figures come from `/proc/self`); elsewhere
//! they read as zero.

use crate::detect::Detectors;
use crate::run::ThreadUsage;
use crate::run::pipeline::{CaptureError, Settings, Timeline};
use eve::sink::memory::CountingSink;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// What one replay measured.
#[derive(Debug, Clone)]
pub struct Measured {
    /// Packets read.
    pub packets: u64,
    /// Captured bytes read.
    pub bytes: u64,
    /// Wall-clock seconds.
    pub secs: f64,
    /// CPU seconds of the whole process, less the memory sampler's own.
    pub cpu_secs: f64,
    /// Of `cpu_secs`, those spent in the kernel (page faults of the file's
    /// mapping, releasing it, waking threads), less the sampler's own.
    pub sys_secs: f64,
    /// Minor page faults of the whole process during the run (mapping the
    /// file's pages, fresh anonymous memory).
    pub faults: u64,
    /// Peak resident memory (VmHWM), bytes: the engine's own memory plus
    /// the capture file's pages mapped at the time.
    pub peak_rss: u64,
    /// Peak anonymous resident memory (RssAnon, sampled every 2 ms), bytes:
    /// the engine's own memory without mapped file pages.
    pub peak_anon: u64,
    /// Events written.
    pub events: u64,
    /// Where the wall time went, per worker.
    pub timeline: Timeline,
}

/// Put `file` in the page cache as a capture read from disk sits there, and
/// say its size: its cached pages are dropped first (written back if dirty;
/// pages another process maps stay), then it is read through.
///
/// Why not just read it: how the pages got into the cache sets what
/// mapping them costs. A file written in small writes (the fixtures'
/// generator, through an 8 KiB `BufWriter`) is cached in 4 KiB folios, one
/// read from disk in large ones (readahead; ext4 on Linux 6.18: mostly
/// 1–2 MiB); mapping and releasing 4 KiB folios cost a replay of 300 MB
/// ~0.06–0.15 s more CPU, most of it in the kernel (`docs/performance.md`).
/// Loading every file the same way gives every run, and the reference
/// tools, the same start.
pub fn load_cold(file: &Path) -> std::io::Result<u64> {
    let mut f = std::fs::File::open(file)?;
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        // Dirty pages are not dropped: write them back first.
        f.sync_data()?;
        // SAFETY: posix_fadvise only advises the kernel about the open file
        // `f`; it reads and writes no memory of this process.
        let _ = unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    }
    std::io::copy(&mut f, &mut std::io::sink())
}

/// Replay `file` with `settings` and `detectors` into a counting sink.
pub fn replay(
    file: &Path,
    settings: &Settings,
    detectors: &Detectors,
) -> Result<Measured, CaptureError> {
    let mut sink = CountingSink::default();
    // Linux: `5` into clear_refs resets VmHWM to the current RSS.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let done = AtomicBool::new(false);
    let cpu0 = cpu_secs(false);
    let (sys0, faults0) = (sys_secs(), minor_faults());
    let (summary, (peak_anon, sampler_cpu, sampler_sys)) = std::thread::scope(|scope| {
        // The sampler's own CPU time (reading /proc 500 times a second) is
        // the measurement's, not the engine's: it is taken out of cpu_secs.
        let sampler = scope.spawn(|| {
            let start = ThreadUsage::now();
            let mut peak = status_kb("RssAnon:");
            while !done.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(2));
                peak = peak.max(status_kb("RssAnon:"));
            }
            let used = ThreadUsage::now().since(start);
            (peak, used.cpu().as_secs_f64(), used.system.as_secs_f64())
        });
        let summary = crate::run::offline::run_offline(
            std::slice::from_ref(&file.to_path_buf()),
            settings,
            detectors,
            &mut sink,
        );
        done.store(true, Ordering::Relaxed);
        (summary, sampler.join().unwrap_or((0, 0.0, 0.0)))
    });
    let summary = summary?;
    Ok(Measured {
        packets: summary.packets(),
        bytes: summary.bytes(),
        secs: summary.elapsed.as_secs_f64().max(1e-9),
        cpu_secs: (cpu_secs(false) - cpu0 - sampler_cpu).max(1e-9),
        sys_secs: (sys_secs() - sys0 - sampler_sys).max(0.0),
        faults: minor_faults().saturating_sub(faults0),
        peak_rss: peak_rss(),
        peak_anon: peak_anon * 1024,
        events: sink.events,
        timeline: summary.timeline,
    })
}

/// The table's header, for rows labelled in `width` columns.
pub fn header(width: usize) -> String {
    format!(
        "{:<width$} {:>10} {:>8} {:>12} {:>9} {:>8} {:>7} {:>9} {:>8} {:>8} {:>8}",
        "run",
        "packets",
        "secs",
        "packets/s",
        "MB/s",
        "Gbit/s",
        "cpu_s",
        "MB/cpu_s",
        "peak_MB",
        "anon_MB",
        "events"
    )
}

/// One row of the table.
pub fn row(label: &str, width: usize, m: &Measured) -> String {
    let bytes = m.bytes as f64;
    format!(
        "{label:<width$} {:>10} {:>8.2} {:>12.0} {:>9.1} {:>8.2} {:>7.2} {:>9.1} {:>8.0} {:>8.0} {:>8}",
        m.packets,
        m.secs,
        m.packets as f64 / m.secs,
        bytes / 1e6 / m.secs,
        bytes * 8.0 / 1e9 / m.secs,
        m.cpu_secs,
        bytes / 1e6 / m.cpu_secs,
        m.peak_rss as f64 / 1e6,
        m.peak_anon as f64 / 1e6,
        m.events
    )
}

/// The run's timeline on one line, in ms from its start: per worker
/// (`w0 | w1 …`) its first record or chunk, time walking and waiting,
/// through its last record, flows ended; the records it owned (MB); its
/// thread's CPU time (all of it, and the kernel's part) and minor page
/// faults; then
/// every worker joined and the run's end (the final `stats` event
/// written, the sink closed); then the kernel's share of the CPU seconds
/// and the minor page faults.
pub fn timeline_row(m: &Measured) -> String {
    format!(
        "    timeline ms: {} | joined {:.1} end {:.1} | sys_s {:.2} faults {}",
        workers_row(&m.timeline),
        ms(m.timeline.joined),
        m.secs * 1e3,
        m.sys_secs,
        m.faults
    )
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Each worker's phases and usage (`w0 … | w1 …`), as [`timeline_row`]
/// prints them.
fn workers_row(t: &Timeline) -> String {
    let workers: Vec<String> = t
        .workers
        .iter()
        .enumerate()
        .map(|(i, w)| {
            format!(
                "w{i} first {:.1} walk {:.1} wait {:.1} read {:.1} flushed {:.1} own {} ({:.1} MB) cpu {:.1} sys {:.1} faults {}",
                ms(w.first),
                ms(w.walking),
                ms(w.waiting),
                ms(w.read),
                ms(w.flushed),
                w.packets,
                w.bytes as f64 / 1e6,
                ms(w.usage.cpu()),
                ms(w.usage.system),
                w.usage.minor_faults
            )
        })
        .collect();
    workers.join(" | ")
}

/// Replay `file` `copies` times at once, each a run of its own with one
/// worker (its own mapping of the file, flow table and sink) on its own
/// threads: what lone workers cost each other on this machine when they
/// share no part of the engine — the control for several workers sharing
/// one replay. Each copy's wall seconds and timeline, in order.
pub fn replay_side_by_side(
    file: &Path,
    settings: &Settings,
    detectors: &Detectors,
    copies: usize,
) -> Result<Vec<(f64, Timeline)>, CaptureError> {
    let settings = Settings {
        workers: 1,
        ..settings.clone()
    };
    std::thread::scope(|scope| {
        let runs: Vec<_> = (0..copies)
            .map(|_| {
                scope.spawn(|| {
                    let mut sink = CountingSink::default();
                    crate::run::offline::run_offline(
                        std::slice::from_ref(&file.to_path_buf()),
                        &settings,
                        detectors,
                        &mut sink,
                    )
                })
            })
            .collect();
        runs.into_iter()
            .map(|h| {
                let s = h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))?;
                Ok((s.elapsed.as_secs_f64(), s.timeline))
            })
            .collect()
    })
}

/// One line per copy of [`replay_side_by_side`]: its wall time and its
/// worker's phases and usage; then, given a one-worker run of the same
/// file alone (`alone`), what each copy's worker used against it.
pub fn side_by_side_rows(
    label: &str,
    runs: &[(f64, Timeline)],
    alone: Option<&Measured>,
) -> Vec<String> {
    let mut rows: Vec<String> = runs
        .iter()
        .enumerate()
        .map(|(i, (secs, t))| {
            format!(
                "{label} copy {i}: {:.1} ms wall | {}",
                secs * 1e3,
                workers_row(t)
            )
        })
        .collect();
    if let Some(one) = alone {
        let each: Vec<String> = runs
            .iter()
            .map(|(_, t)| {
                format!(
                    "{:.2}x",
                    workers_cpu(t) / workers_cpu(&one.timeline).max(1e-9)
                )
            })
            .collect();
        rows.push(format!(
            "  {label}: each lone worker beside another used {} the CPU time of one alone",
            each.join(" / ")
        ));
    }
    rows
}

/// "`label`: N workers X.XX× one" lines: each run's MB/s against the
/// one-worker run's, from `(workers, measured)` pairs of one kind of run.
pub fn speedups(label: &str, runs: &[(usize, Measured)]) -> Vec<String> {
    let rate = |m: &Measured| m.bytes as f64 / m.secs;
    let Some((_, one)) = runs.iter().find(|(n, _)| *n == 1) else {
        return Vec::new();
    };
    runs.iter()
        .filter(|(n, _)| *n > 1)
        .map(|(n, m)| {
            format!(
                "  {label}: {n} workers {:.2}x one (their threads' CPU time {:.2}x one's)",
                rate(m) / rate(one),
                workers_cpu(&m.timeline) / workers_cpu(&one.timeline).max(1e-9)
            )
        })
        .collect()
}

/// CPU seconds of a run's workers (their threads, user and kernel).
fn workers_cpu(t: &Timeline) -> f64 {
    t.workers.iter().map(|w| w.usage.cpu().as_secs_f64()).sum()
}

/// Suricata's configuration for the side-by-side run (see its comments).
pub const SURICATA_CONFIG: &str = include_str!("../../benches/suricata.yaml");

/// What a reference tool (Suricata, tcpflow) measured on a file.
#[derive(Debug, Clone, Copy)]
pub struct Reference {
    /// File bytes.
    pub bytes: u64,
    /// Wall-clock seconds.
    pub secs: f64,
    /// CPU seconds of the tool (its waited process, all threads).
    pub cpu_secs: f64,
    /// Events it wrote (Suricata: `fileinfo` events), when counted.
    pub events: Option<u64>,
}

impl Reference {
    /// One row of the table, labelled `label`.
    pub fn row(&self, label: &str, width: usize) -> String {
        let size = self.bytes as f64;
        format!(
            "{label:<width$} {:>10} {:>8.2} {:>12} {:>9.1} {:>8.2} {:>7.2} {:>9.1} {:>8} {:>8} {:>8}",
            "-",
            self.secs,
            "-",
            size / 1e6 / self.secs,
            size * 8.0 / 1e9 / self.secs,
            self.cpu_secs,
            size / 1e6 / self.cpu_secs,
            "-",
            "-",
            self.events
                .map_or_else(|| "-".to_string(), |e| format!("{e} files")),
        )
    }
}

/// "weightwatch w=N / suricata: X.XXx wall, Y.YYx cpu" lines: each run's
/// speed against the reference's, by wall time and by CPU seconds.
pub fn versus(label: &str, runs: &[(usize, Measured)], name: &str, r: &Reference) -> Vec<String> {
    runs.iter()
        .map(|(n, m)| {
            format!(
                "  {label} w={n} / {name}: {:.2}x wall, {:.2}x per cpu second",
                r.secs / m.secs,
                (m.bytes as f64 / m.cpu_secs) / (r.bytes as f64 / r.cpu_secs)
            )
        })
        .collect()
}

/// Run `cmd`, waited, in `dir` (removed after): its wall and CPU seconds.
fn timed(mut cmd: std::process::Command) -> std::io::Result<(std::process::ExitStatus, f64, f64)> {
    let start = Instant::now();
    let cpu0 = cpu_secs(true);
    let status = cmd
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()?;
    let secs = start.elapsed().as_secs_f64().max(1e-9);
    Ok((status, secs, (cpu_secs(true) - cpu0).max(1e-9)))
}

/// Suricata 7 on `file` with [`SURICATA_CONFIG`], one packet thread
/// (`--runmode single`), no rules, EVE into a temporary directory (removed
/// after; its `fileinfo` events are counted first). `Err` says why it did
/// not run.
pub fn suricata(file: &Path) -> Result<Reference, String> {
    let bytes = std::fs::metadata(file).map_or(0, |m| m.len());
    let dir = std::env::temp_dir().join(format!("weightwatch-suricata-{}", std::process::id()));
    let setup = || -> std::io::Result<()> {
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join("suricata.yaml"), SURICATA_CONFIG)?;
        std::fs::write(dir.join("empty.rules"), "")
    };
    if let Err(e) = setup() {
        return Err(format!("{}: {e}", dir.display()));
    }
    let mut cmd = std::process::Command::new("suricata");
    cmd.arg("-c")
        .arg(dir.join("suricata.yaml"))
        .arg("-S")
        .arg(dir.join("empty.rules"))
        .args(["--runmode", "single", "-r"])
        .arg(file)
        .arg("-l")
        .arg(&dir);
    let res = timed(cmd);
    let files = std::fs::read_to_string(dir.join("eve.json"))
        .ok()
        .map(|t| t.matches("\"event_type\":\"fileinfo\"").count() as u64);
    let _ = std::fs::remove_dir_all(&dir);
    match res {
        Ok((st, secs, cpu_secs)) if st.success() => Ok(Reference {
            bytes,
            secs,
            cpu_secs,
            events: files,
        }),
        Ok((st, ..)) => Err(format!("suricata failed: {st}")),
        Err(e) => Err(format!(
            "suricata not run ({e}); scripts/setup.sh --bench installs Suricata 7 from Debian backports"
        )),
    }
}

/// `tcpflow -e http -r FILE -o DIR` (into a temporary directory, removed
/// after), or why it did not run.
pub fn tcpflow(file: &Path) -> Result<Reference, String> {
    let bytes = std::fs::metadata(file).map_or(0, |m| m.len());
    let out = std::env::temp_dir().join(format!("weightwatch-tcpflow-{}", std::process::id()));
    if let Err(e) = std::fs::create_dir_all(&out) {
        return Err(format!("tcpflow not run ({}: {e})", out.display()));
    }
    let mut cmd = std::process::Command::new("tcpflow");
    cmd.args(["-e", "http", "-r"]).arg(file).arg("-o").arg(&out);
    let res = timed(cmd);
    let _ = std::fs::remove_dir_all(&out);
    match res {
        Ok((st, secs, cpu_secs)) if st.success() => Ok(Reference {
            bytes,
            secs,
            cpu_secs,
            events: None,
        }),
        Ok((st, ..)) => Err(format!("tcpflow failed: {st}")),
        Err(e) => Err(format!(
            "tcpflow not run ({e}); install Debian's tcpflow to compare"
        )),
    }
}

/// A `kB` line of `/proc/self/status`.
fn status_kb(key: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with(key))?;
            line.split_whitespace().nth(1)?.parse().ok()
        })
        .unwrap_or(0)
}

/// CPU seconds (user + system) so far of this process (all threads), or of
/// its waited-for children.
pub fn cpu_secs(children: bool) -> f64 {
    // Fields 14-15 (self) or 16-17 (children) of /proc/self/stat, in
    // USER_HZ (100 on Linux); the command name (field 2) may hold spaces,
    // so count after its ')'.
    let at = if children { 13 } else { 11 };
    stat_cpu_secs("/proc/self/stat", at)
}

/// System CPU seconds so far of this process (all threads).
fn sys_secs() -> f64 {
    stat_field("/proc/self/stat", 12).map_or(0.0, |t| t as f64 / 100.0)
}

/// Minor page faults so far of this process (all threads).
fn minor_faults() -> u64 {
    stat_field("/proc/self/stat", 7).unwrap_or(0)
}

/// Field `at` (counted after the command name, from 0 = field 3) of a
/// `/proc/…/stat` file.
fn stat_field(path: &str, at: usize) -> Option<u64> {
    let s = std::fs::read_to_string(path).ok()?;
    s.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(at)?
        .parse()
        .ok()
}

/// Two CPU-time fields (`at`, `at + 1` after the command name) of a
/// `/proc/…/stat` file, in seconds.
fn stat_cpu_secs(path: &str, at: usize) -> f64 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| {
            let rest = s.rsplit_once(')')?.1;
            let f: Vec<&str> = rest.split_whitespace().collect();
            let ticks = f.get(at)?.parse::<u64>().ok()? + f.get(at + 1)?.parse::<u64>().ok()?;
            Some(ticks as f64 / 100.0)
        })
        .unwrap_or(0.0)
}

/// Peak resident memory (VmHWM) of this process since the last reset, in
/// bytes.
pub fn peak_rss() -> u64 {
    status_kb("VmHWM:") * 1024
}
