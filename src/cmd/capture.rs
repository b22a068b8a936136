//! `weightwatch capture`: the sensor.

use crate::config::Config;
use crate::sinks::SinkArgs;
use anyhow::Context;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Arguments of `weightwatch capture`.
#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("input").required(true).args(["read", "interface"])))]
pub struct Args {
    /// Replay pcap/pcapng files (or directories of rotated captures), in time
    /// order. Packet time drives every timeout. `-` (standard input), a
    /// pipe or a FIFO is read as a stream, and must be the only input.
    #[arg(long, short = 'r', value_name = "FILE|DIR|-", num_args = 1..)]
    pub read: Vec<PathBuf>,
    /// Capture live from this interface (needs CAP_NET_RAW).
    #[arg(long, short = 'i', value_name = "IFACE")]
    pub interface: Option<String>,
    /// BPF filter expression for live capture.
    #[arg(long, value_name = "EXPR")]
    pub bpf: Option<String>,
    /// Snapshot length for live capture.
    #[arg(long, value_name = "N", default_value_t = 65535)]
    pub snaplen: i32,
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
    #[arg(long, value_name = "ID")]
    pub sensor_id: Option<String>,
    /// No progress bar when replaying files (it is shown only when stderr
    /// is a terminal).
    #[arg(long)]
    pub no_progress: bool,
    #[command(flatten)]
    pub sinks: SinkArgs,
}

/// Run the sensor.
pub fn run(args: Args, config: Config) -> anyhow::Result<()> {
    let mut settings = capture::Settings::new(config.capture.clone());
    if let Some(n) = args.workers {
        anyhow::ensure!(n > 0, "--workers must be at least 1");
        settings.workers = n;
    }
    settings.file_hash = !args.no_file_hash;
    settings.sensor_id = args.sensor_id.clone().unwrap_or_else(|| config.sensor_id());
    let mut detectors =
        capture::detect::build(&config.policy, &config.detect, args.index.as_deref())
            .context("building the detectors")?;
    if !config.intel.lists.is_empty() {
        let intel = capture::detect::intel::Intel::load(&config.intel)?;
        detectors = detectors.with_intel(intel.clone());
        reload_on_hangup(move || {
            if let Err(e) = intel.reload() {
                tracing::error!("keeping the current intel lists: {e}");
            }
        })?;
    }
    let mut sink = crate::sinks::build(&args.sinks, &config)?;
    // Events with nowhere to go are a mistake, not a mode: say so before
    // reading anything (`--eve /dev/null` discards on purpose).
    anyhow::ensure!(
        !sink.is_empty(),
        "no output: give --eve FILE (--eve - for standard output, --eve /dev/null to discard), --dashboard URL, or [sinks] in the configuration"
    );
    let summary = if let Some(interface) = &args.interface {
        let opts = capture::LiveOptions {
            interface: interface.clone(),
            bpf: args.bpf.clone(),
            snaplen: args.snaplen,
        };
        let control = settings.control.clone();
        stop_on_signal(move || control.request_stop())?;
        tracing::info!(interface, workers = settings.workers, "capturing live");
        capture::run_live(&opts, &settings, &detectors, &mut sink)?
    } else {
        // Files and directories (not a pipe or standard input, which end
        // with their writer and whose size is unknown): Ctrl-C or SIGTERM
        // read no further, end the flows and write the final events; a
        // progress bar shows on a terminal.
        let files = args.read.iter().all(|p| p.is_file() || p.is_dir());
        if files {
            let control = settings.control.clone();
            stop_on_signal(move || control.request_stop())?;
        }
        let show =
            files && !args.no_progress && std::io::IsTerminal::is_terminal(&std::io::stderr());
        let progress = show.then(|| Progress::start(&args.read, &settings.control));
        let summary = capture::run_offline(&args.read, &settings, &detectors, &mut sink);
        if let Some(p) = progress {
            p.finish();
        }
        summary?
    };
    report(&summary)
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
/// writes its final events).
fn stop_on_signal(stop: impl FnOnce() + Send + 'static) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the signal handler")?;
    std::thread::Builder::new()
        .name("capture-signals".into())
        .spawn(move || {
            rt.block_on(async {
                use tokio::signal::unix::{SignalKind, signal};
                let term = signal(SignalKind::terminate());
                match term {
                    Ok(mut term) => {
                        tokio::select! {
                            _ = tokio::signal::ctrl_c() => {}
                            _ = term.recv() => {}
                        }
                    }
                    Err(_) => {
                        let _ = tokio::signal::ctrl_c().await;
                    }
                }
            });
            stop();
        })
        .context("starting the signal thread")?;
    Ok(())
}
