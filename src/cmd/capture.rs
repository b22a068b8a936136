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
    let detectors = capture::detect::build(&config.policy, &config.detect, args.index.as_deref())
        .context("building the detectors")?;
    let mut sink = crate::sinks::build(&args.sinks, &config)?;
    if sink.is_empty() {
        tracing::warn!("no sink configured (--eve, --dashboard or [sinks]): events are discarded");
    }
    let summary = if let Some(interface) = &args.interface {
        let opts = capture::LiveOptions {
            interface: interface.clone(),
            bpf: args.bpf.clone(),
            snaplen: args.snaplen,
        };
        let stop = Arc::new(AtomicBool::new(false));
        stop_on_signal(stop.clone())?;
        tracing::info!(interface, workers = settings.workers, "capturing live");
        capture::run_live(&opts, &settings, &detectors, &mut sink, stop)?
    } else {
        capture::run_offline(&args.read, &settings, &detectors, &mut sink)?
    };
    report(&summary)
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
        rejected == 0,
        "{rejected} of {} input file(s) could not be read (see above)",
        summary.files.len()
    );
    Ok(())
}

/// Set `stop` on SIGINT or SIGTERM (the capture then ends every flow and
/// writes its final events).
fn stop_on_signal(stop: Arc<AtomicBool>) -> anyhow::Result<()> {
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
            stop.store(true, Ordering::Relaxed);
        })
        .context("starting the signal thread")?;
    Ok(())
}
