//! The weightwatch sensor.
//!
//! Data flows one way: packets → flows → TCP streams → app-layer objects →
//! detectors → events → sinks. Each stage lives in its own module and knows
//! the stage below it through one small type or trait:
//!
//! - [`object`]: the seam between app-layer parsers and what consumes objects.
//! - [`detect`]: the detector traits and the detectors themselves.

pub mod app;
pub mod config;
pub mod detect;
pub mod object;

pub use config::CaptureConfig;
