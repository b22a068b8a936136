//! Where packets come from: the [`Frame`] every source hands over, capture
//! files read in place ([`pcapfile`]), and the order input files are read in
//! ([`ordered_inputs`]). Live interfaces and pipes are read through libpcap
//! by the live run (`run/live.rs`), which owns its reader thread.

mod filter;
mod frame;
mod order;
pub mod pcapfile;

pub use filter::{BpfFilter, FilterError};
pub use frame::Frame;
pub use order::{first_packet_time, ordered_inputs};
