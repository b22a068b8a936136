//! Fuzz target: TLS record framing and hello parsing: both directions start like a TLS handshake record.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    capture_fuzz::drive_app(
        data,
        &[0x16, 0x03, 0x01, 0x02, 0x00, 0x01],
        &[0x16, 0x03, 0x03, 0x00, 0x60, 0x02],
    );
});
