//! `weightwatch capture`: the sensor.

use crate::config::Config;
use crate::sinks::SinkArgs;
use anyhow::Context;
use eve::sink::eve_file::ReopenFlag;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Arguments of `weightwatch capture`.
#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("input").required(true).args(["read", "interface"])))]
pub struct Args {
    /// Replay pcap/pcapng files (or directories of rotated captures), in time
    /// order. Packet time drives every timeout. `-` (standard input), a
    /// pipe or a FIFO is read as a stream, and must be the only input.
    /// Words after the files that are not files are a BPF expression
    /// (`-r day.pcap tcp port 80`, as tcpdump and Suricata take it).
    #[arg(long, short = 'r', value_name = "FILE|DIR|-", num_args = 1..)]
    pub read: Vec<PathBuf>,
    /// Capture live from this interface (needs CAP_NET_RAW).
    #[arg(long, short = 'i', value_name = "IFACE")]
    pub interface: Option<String>,
    /// BPF filter expression (libpcap's syntax), for live capture and
    /// replays alike; it may also be given as trailing words.
    #[arg(long, value_name = "EXPR")]
    pub bpf: Option<String>,
    /// Snapshot length for live capture (tcpdump's and Suricata's default:
    /// a smaller one cuts large frames and leaves gaps in files).
    #[arg(long, value_name = "N", default_value_t = 262_144)]
    pub snaplen: i32,
    /// Log directory: `eve.json` (unless --eve says otherwise) and
    /// `stats.json` (the run's final counters) are written there.
    #[arg(long, short = 'l', value_name = "DIR")]
    pub log_dir: Option<PathBuf>,
    /// Write the process id to this file at start and remove it at exit;
    /// refuse to start while a running process holds it.
    #[arg(long, value_name = "FILE")]
    pub pidfile: Option<PathBuf>,
    /// Checksum validation (Suricata's `-k`): `all` drops packets with a
    /// wrong checksum, `none` trusts the capture, `auto` trusts senders
    /// whose first packets all had wrong ones (checksum offload). Default:
    /// `checksum_validation` of the configuration.
    #[arg(short = 'k', long = "checksum-checks", value_name = "MODE")]
    pub checksum_checks: Option<ChecksumChecks>,
    /// BPF expression as trailing words (`… tcp port 80`).
    #[arg(value_name = "BPF", trailing_var_arg = true, num_args = 0..)]
    pub filter: Vec<String>,
    /// Worker threads (flows are sharded by a symmetric 5-tuple hash).
    /// Default: the number of cores.
    #[arg(long, value_name = "N")]
    pub workers: Option<usize>,
    /// Known-weights index built by `weightwatch index build`.
    #[arg(long, value_name = "FILE")]
    pub index: Option<PathBuf>,
    /// Do not compute SHA-256 of objects.
    #[arg(long)]
    pub no_file_hash: bool,
    /// Sensor id written into every event (default from config, else hostname).
    #[arg(long, value_name = "ID", env = "WEIGHTWATCH_SENSOR_ID")]
    pub sensor_id: Option<String>,
    /// No progress bar when replaying files (it is shown only when stderr
    /// is a terminal).
    #[arg(long)]
    pub no_progress: bool,
    /// Move every packet's time by DURATION before anything reads it
    /// (`36h`, `2years 3days`, `-90d`: earlier): events, flow timeouts and
    /// durations stay consistent.
    #[arg(long, value_name = "DURATION", allow_hyphen_values = true, value_parser = parse_shift, conflicts_with = "rebase_time")]
    pub time_shift: Option<i64>,
    /// Place the first packet of the replay (or of the live capture) at
    /// TIME (RFC 3339, e.g. `2026-11-04T12:00:00Z`, or `now`); every other
    /// packet keeps its distance to it.
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub rebase_time: Option<i64>,
    #[command(flatten)]
    pub sinks: SinkArgs,
}

/// `-k`: which checksums to validate (Suricata's words).
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChecksumChecks {
    /// Validate every checksum (`checksum_validation = "yes"`).
    All,
    /// Validate none (`"no"`).
    None,
    /// Trust offloading senders (`"auto"`).
    Auto,
}

impl From<ChecksumChecks> for capture::decode::ChecksumMode {
    fn from(k: ChecksumChecks) -> Self {
        match k {
            ChecksumChecks::All => capture::decode::ChecksumMode::Yes,
            ChecksumChecks::None => capture::decode::ChecksumMode::No,
            ChecksumChecks::Auto => capture::decode::ChecksumMode::Auto,
        }
    }
}

/// The inputs of `--read`, and the BPF expression: trailing words after
/// the files (those `--read` took that are not files, and the positional
/// ones), or `--bpf` (not both).
fn inputs_and_filter(args: &Args) -> anyhow::Result<(Vec<PathBuf>, Option<String>)> {
    let is_input = |p: &Path| p == Path::new("-") || p.exists();
    // The first value is an input even when missing (that error is the
    // replay's to report).
    let split = args
        .read
        .iter()
        .skip(1)
        .position(|p| !is_input(p))
        .map_or(args.read.len(), |i| i + 1);
    let words: Vec<String> = args.read[split..]
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .chain(args.filter.iter().cloned())
        .collect();
    let trailing = (!words.is_empty()).then(|| words.join(" "));
    let bpf = match (&args.bpf, trailing) {
        (Some(_), Some(t)) => anyhow::bail!(
            "a BPF expression was given both with --bpf and as trailing words ({t:?}): give one"
        ),
        (b, t) => b.clone().or(t),
    };
    Ok((args.read[..split].to_vec(), bpf))
}

/// Run the sensor.
pub fn run(mut args: Args, config: Config) -> anyhow::Result<()> {
    let _pidfile = args.pidfile.as_deref().map(PidFile::create).transpose()?;
    let (inputs, bpf) = inputs_and_filter(&args)?;
    let mut settings = capture::Settings::new(config.capture.clone());
    if let Some(k) = args.checksum_checks {
        settings.config.checksum_validation = k.into();
    }
    settings.bpf = bpf.clone();
    if let Some(dir) = &args.log_dir {
        anyhow::ensure!(dir.is_dir(), "--log-dir {}: not a directory", dir.display());
        if args.sinks.eve.is_none() {
            args.sinks.eve = Some(dir.join("eve.json").to_string_lossy().into_owned());
        }
    }
    if let Some(n) = args.workers {
        anyhow::ensure!(n > 0, "--workers must be at least 1");
        settings.workers = n;
    }
    settings.file_hash = !args.no_file_hash;
    settings.retime = match (args.time_shift, args.rebase_time) {
        (Some(d), _) => capture::Retime::Shift(d),
        (None, Some(at)) => capture::Retime::FirstAt(at),
        (None, None) => capture::Retime::AsCaptured,
    };
    settings.sensor_id = args.sensor_id.clone().unwrap_or_else(|| config.sensor_id());
    let mut detectors =
        capture::detect::build(&config.policy, &config.detect, args.index.as_deref())
            .context("building the detectors")?;
    if !config.intel.lists.is_empty() {
        let intel = capture::detect::intel::Intel::load(&config.intel)?;
        intel.watch().context("starting the intel list watch")?;
        detectors = detectors.with_intel(intel.clone());
        reload_on_hangup(move || {
            if let Err(e) = intel.reload() {
                tracing::error!("keeping the current intel lists: {e}");
            }
        })?;
    }
    let reopen = ReopenFlag::new();
    let mut sink = crate::sinks::build(&args.sinks, &config, Some(&reopen))?;
    // Events with nowhere to go are a mistake, not a mode: say so before
    // reading anything (`--eve /dev/null` discards on purpose).
    anyhow::ensure!(
        !sink.is_empty(),
        "no output: give --eve FILE (--eve - for standard output, --eve /dev/null to discard), --dashboard URL, or [sinks] in the configuration"
    );
    let summary = if let Some(interface) = &args.interface {
        let opts = capture::LiveOptions {
            interface: interface.clone(),
            bpf,
            snaplen: args.snaplen,
        };
        let control = settings.control.clone();
        handle_signals(move || control.request_stop(), reopen)?;
        tracing::info!(interface, workers = settings.workers, "capturing live");
        capture::run_live(&opts, &settings, &detectors, &mut sink)?
    } else {
        // Files and directories (not a pipe or standard input, which end
        // with their writer and whose size is unknown): Ctrl-C or SIGTERM
        // read no further, end the flows and write the final events; a
        // progress bar shows on a terminal.
        let files = inputs.iter().all(|p| p.is_file() || p.is_dir());
        if files {
            let control = settings.control.clone();
            handle_signals(move || control.request_stop(), reopen)?;
        }
        let show =
            files && !args.no_progress && std::io::IsTerminal::is_terminal(&std::io::stderr());
        let progress = show.then(|| Progress::start(&inputs, &settings.control));
        let summary = capture::run_offline(&inputs, &settings, &detectors, &mut sink);
        if let Some(p) = progress {
            p.finish();
        }
        summary?
    };
    if let Some(dir) = &args.log_dir {
        write_stats(&dir.join("stats.json"), &summary)?;
    }
    report(&summary)
}

/// `--time-shift`: a duration in words (humantime), optionally signed, in µs.
fn parse_shift(s: &str) -> Result<i64, String> {
    let (sign, rest) = match s.trim().strip_prefix('-') {
        Some(r) => (-1, r),
        None => (1, s.trim().trim_start_matches('+')),
    };
    let d = humantime::parse_duration(rest.trim()).map_err(|e| format!("{s:?}: {e}"))?;
    let micros = i64::try_from(d.as_micros()).map_err(|_| format!("{s:?}: too long"))?;
    Ok(sign * micros)
}

/// `--rebase-time`: RFC 3339 or `now`, in µs since the epoch.
pub(crate) fn parse_time(s: &str) -> Result<i64, String> {
    if s.trim().eq_ignore_ascii_case("now") {
        return Ok(eve::Timestamp::now().unix_micros());
    }
    eve::Timestamp::parse(s.trim())
        .map(|t| t.unix_micros())
        .map_err(|e| format!("{s:?} is not an RFC 3339 time (2026-11-04T12:00:00Z) or `now`: {e}"))
}

/// The run's final counters, as the body of the final `stats` event.
fn write_stats(path: &Path, summary: &capture::RunSummary) -> anyhow::Result<()> {
    let mut text = serde_json::to_string_pretty(&serde_json::json!({ "stats": summary.stats }))?;
    text.push('\n');
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// A pid file: written at start, removed when dropped (at exit, whether
/// the run succeeded or not).
struct PidFile {
    path: PathBuf,
}

impl PidFile {
    /// Write our pid to `path`, unless a running process holds it (a file
    /// left by a process that is gone is taken over).
    fn create(path: &Path) -> anyhow::Result<PidFile> {
        if let Ok(text) = std::fs::read_to_string(path)
            && let Ok(pid) = text.trim().parse::<u32>()
            && pid != std::process::id()
            && Path::new("/proc").join(pid.to_string()).exists()
        {
            anyhow::bail!(
                "--pidfile {}: held by running process {pid} (another sensor?)",
                path.display()
            );
        }
        std::fs::write(path, format!("{}\n", std::process::id()))
            .with_context(|| format!("writing --pidfile {}", path.display()))?;
        Ok(PidFile {
            path: path.to_path_buf(),
        })
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        // Only our own: another process may have taken a stale file over.
        let ours = std::fs::read_to_string(&self.path)
            .is_ok_and(|t| t.trim() == std::process::id().to_string());
        if ours {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// A progress bar on stderr over the bytes of the input files, fed from
/// the replay's [`capture::RunControl`] by a thread of its own.
struct Progress {
    done: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl Progress {
    fn start(inputs: &[PathBuf], control: &Arc<capture::RunControl>) -> Progress {
        // Directories count with the captures in them.
        let total: u64 = capture::source::ordered_inputs(inputs)
            .unwrap_or_default()
            .iter()
            .filter_map(|f| std::fs::metadata(f).ok())
            .map(|m| m.len())
            .sum();
        let bar = indicatif::ProgressBar::new(total);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{spinner} replaying {bytes}/{total_bytes} [{wide_bar}] {bytes_per_sec} eta {eta}",
        ) {
            bar.set_style(style);
        }
        let done = Arc::new(AtomicBool::new(false));
        let (stop, control) = (done.clone(), control.clone());
        let thread = std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                bar.set_position(control.bytes_read());
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            bar.finish_and_clear();
        });
        Progress { done, thread }
    }

    fn finish(self) {
        self.done.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
    }
}

/// Log what happened; fail when a file was rejected or the sink failed.
fn report(summary: &capture::RunSummary) -> anyhow::Result<()> {
    let mut rejected = 0;
    for f in &summary.files {
        if let Some(e) = &f.error {
            if f.rejected {
                rejected += 1;
                tracing::error!("{e}");
            } else {
                tracing::warn!("{e}");
            }
        }
    }
    let s = &summary.stats;
    tracing::info!(
        packets = summary.packets(),
        bytes = summary.bytes(),
        flows = s.get("flow", "created"),
        objects = s.get("files", "objects"),
        alerts = s.get("detect", "object_alerts") + s.get("detect", "flow_alerts"),
        events = summary.events,
        secs = summary.elapsed.as_secs_f64(),
        "capture finished"
    );
    if let Some(e) = &summary.sink_error {
        anyhow::bail!("writing events failed: {e}");
    }
    anyhow::ensure!(
        !summary.interrupted,
        "stopped by a signal before the end of the input (the events of what was read are written)"
    );
    anyhow::ensure!(
        rejected == 0,
        "{rejected} of {} input file(s) could not be read (see above)",
        summary.files.len()
    );
    Ok(())
}

/// Call `reload` on every SIGHUP, from a thread of its own.
fn reload_on_hangup(reload: impl Fn() + Send + 'static) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the SIGHUP handler")?;
    // Registered here, before capture starts, so an early SIGHUP is not fatal.
    let mut hup = rt
        .block_on(async { tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) })
        .context("listening for SIGHUP")?;
    std::thread::Builder::new()
        .name("capture-reload".into())
        .spawn(move || {
            rt.block_on(async {
                while hup.recv().await.is_some() {
                    reload();
                }
            })
        })
        .context("starting the SIGHUP thread")?;
    Ok(())
}

/// Call `stop` on SIGINT or SIGTERM (the capture then ends every flow and
/// writes its final events); on SIGHUP ask the EVE file to be reopened
/// (logrotate's `postrotate`), and keep running.
fn handle_signals(stop: impl FnOnce() + Send + 'static, reopen: ReopenFlag) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the signal handler")?;
    // Registered here, before any packet is read, so that a SIGHUP never
    // meets the default action (which ends the process).
    let (mut term, mut hup) = rt
        .block_on(async {
            Ok::<_, std::io::Error>((
                signal(SignalKind::terminate())?,
                signal(SignalKind::hangup())?,
            ))
        })
        .context("installing the SIGTERM and SIGHUP handlers")?;
    std::thread::Builder::new()
        .name("capture-signals".into())
        .spawn(move || {
            rt.block_on(async {
                loop {
                    tokio::select! {
                        _ = tokio::signal::ctrl_c() => break,
                        _ = term.recv() => break,
                        Some(()) = hup.recv() => {
                            tracing::info!("SIGHUP: reopening the EVE file");
                            reopen.request();
                        }
                    }
                }
            });
            stop();
        })
        .context("starting the signal thread")?;
    Ok(())
}
