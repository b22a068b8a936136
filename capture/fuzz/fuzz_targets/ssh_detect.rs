//! Fuzz target: Protocol detection and the SSH parser: raw bytes on both directions (inputs starting with SSH- reach the banner parser).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    capture_fuzz::drive_app(data, b"", b"");
});
