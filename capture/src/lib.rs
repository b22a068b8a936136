//! The weightwatch sensor.
//!
//! Data flows one way: packets → flows → TCP streams → app-layer objects →
//! detectors → events → sinks. Each stage lives in its own module and knows
//! the stage below it through one small type or trait:
//!
//! - [`source`]: the frame type, pcap/pcapng files parsed in place from a
//!   memory map, the order input files are read in.
//! - [`decode`]: link layer, VLAN, IPv4/IPv6, fragments, TCP/UDP.
//! - [`flow`]: canonical 5-tuple keys and the symmetric worker hash.
//! - [`reassembly`]: per-direction TCP reassembly into in-order bytes.
//! - [`app`]: HTTP/TLS/SSH/raw parsers that cut streams into objects.
//! - [`object`]: the seam between app-layer parsers and what consumes objects.
//! - [`detect`]: the detector traits and the detectors themselves.
//! - `engine`: one worker thread's flow table, timeouts and events: it
//!   drives a packet through the stages above and turns what they find
//!   into `flow`, `fileinfo` and `alert` events.
//!
//! [`run`] drives the stages: [`run_offline`] replays files (every worker
//! reads them itself), [`run_live`] reads an interface (libpcap) or a pipe
//! (a reader thread feeds the workers).

pub mod app;
pub mod config;
pub mod decode;
pub mod detect;
mod engine;
pub mod flow;
pub mod object;
pub mod reassembly;
pub mod run;
pub mod source;

pub use config::CaptureConfig;
pub use run::{
    CaptureError, FileReport, LiveOptions, Retime, RunControl, RunSummary, Settings, run_live,
    run_offline,
};
