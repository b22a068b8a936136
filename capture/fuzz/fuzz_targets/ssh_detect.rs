//! Fuzz target: Protocol detection and the SSH parser: raw bytes on both directions (inputs starting with SSH- reach the banner parser).
//!
//! The first byte picks the segment size, so segment boundaries move too.
#![no_main]

use capture::app::{AppConnection, AppLimits};
use capture::object::{ObjectEvent, ObjectSink};
use eve::Direction;
use libfuzzer_sys::fuzz_target;

/// Discards objects (collecting them would only cost memory).
struct Discard;
impl ObjectSink for Discard {
    fn object(&mut self, _dir: Direction, _event: ObjectEvent<'_>) {}
}

fuzz_target!(|data: &[u8]| {
    let Some((&seg, data)) = data.split_first() else {
        return;
    };
    let seg = usize::from(seg % 64) + 1;
    let (a, b) = data.split_at(data.len() / 2);
    let up = [b"".as_slice(), a].concat();
    let down = [b"".as_slice(), b].concat();
    let limits = AppLimits {
        max_header_bytes: 1024,
        max_decoded_bytes: 1 << 16,
    };
    let mut conn = AppConnection::new(&limits, false);
    let mut out = Discard;
    let (mut u, mut d) = (up.as_slice(), down.as_slice());
    while !u.is_empty() || !d.is_empty() {
        let n = seg.min(u.len());
        conn.data(Direction::ToServer, &u[..n], &mut out);
        u = &u[n..];
        let n = seg.min(d.len());
        conn.data(Direction::ToClient, &d[..n], &mut out);
        d = &d[n..];
    }
    conn.gap(Direction::ToClient, 7, &mut out);
    conn.close(Direction::ToServer, true, &mut out);
    conn.close(Direction::ToClient, false, &mut out);
});
