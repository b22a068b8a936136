//! The weightwatch sensor.
//!
//! Data flows one way: packets → flows → TCP streams → app-layer objects →
//! detectors → events → sinks. Each stage lives in its own module and knows
//! the stage below it through one small type or trait:
//!
//! - [`source`]: frames, input ordering, live interfaces (libpcap).
//! - [`pcapfile`]: pcap/pcapng files parsed in place from a memory map.
//! - [`decode`]: link layer, VLAN, IPv4/IPv6, fragments, TCP/UDP.
//! - [`flow`]: canonical 5-tuple keys and the symmetric worker hash.
//! - [`reassembly`]: per-direction TCP reassembly into in-order bytes.
//! - `worker`: flow table, timeouts and events of one worker thread.
//! - `offline`: [`run_offline`], every worker reads the files itself.
//! - `live`: [`run_live`], a reader thread feeds the workers.
//! - `pipeline`: what both share (settings, summaries, the sink thread).
//! - [`object`]: the seam between app-layer parsers and what consumes objects.
//! - [`app`]: HTTP/TLS/SSH/raw parsers that cut streams into objects.
//! - [`detect`]: the detector traits and the detectors themselves.

pub mod app;
pub mod config;
pub mod decode;
pub mod detect;
pub mod flow;
mod live;
pub mod measure;
pub mod object;
mod objects;
mod offline;
pub mod pcapfile;
mod pipeline;
pub mod reassembly;
pub mod source;
mod worker;

pub use config::CaptureConfig;
pub use live::{LiveOptions, run_live};
pub use offline::run_offline;
pub use pipeline::{CaptureError, FileReport, RunControl, RunSummary, Settings};
