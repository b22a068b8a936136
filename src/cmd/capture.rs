//! `weightwatch capture`: the sensor.

use crate::config::Config;
use crate::sinks::SinkArgs;
use std::path::PathBuf;

/// Arguments of `weightwatch capture`.
#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("input").required(true).args(["read", "interface"])))]
pub struct Args {
    /// Replay pcap/pcapng files (or directories of rotated captures), in time
    /// order. Packet time drives every timeout.
    #[arg(long, short = 'r', value_name = "FILE|DIR", num_args = 1..)]
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
pub fn run(_args: Args, _config: Config) -> anyhow::Result<()> {
    super::not_built("capture", 3)
}
