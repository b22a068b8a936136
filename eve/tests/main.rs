//! Integration tests of the event model and sinks.

mod community_id;
mod eve_file;
mod http_sink;
mod serialization;
mod spool_format;
