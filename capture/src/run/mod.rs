//! Runs: what drives the pipeline from a source to the sinks. `offline`
//! replays files (every worker reads them itself, see [`run_offline`]),
//! `live` reads an interface or a pipe (a reader thread feeds the workers,
//! see [`run_live`]), `pipeline` holds what both share (settings, summaries,
//! the sink thread), and [`measure`] times replays for the benchmarks.

mod live;
pub mod measure;
mod offline;
mod pipeline;
mod thread_usage;

pub use live::{LiveOptions, run_live};
pub use offline::run_offline;
pub use pipeline::{
    CaptureError, FileReport, Retime, RunControl, RunSummary, Settings, Timeline, WorkerPhases,
};
pub use thread_usage::ThreadUsage;
