//! What the app-layer fuzz targets share: a connection driven with the
//! input cut into both directions.

use capture::app::{AppConnection, AppLimits};
use capture::object::{ObjectEvent, ObjectSink};
use eve::Direction;

/// Discards objects (collecting them would only cost memory).
struct Discard;

impl ObjectSink for Discard {
    fn object(&mut self, _dir: Direction, _event: ObjectEvent<'_>) {}
}

/// Drive one [`AppConnection`] with `data`: its first byte picks the
/// segment size (so segment boundaries move too), the first half of the
/// rest follows `up` client → server and the second half follows `down`
/// server → client, segments alternating; then a gap in the responses and
/// both directions close (the request side cleanly).
pub fn drive_app(data: &[u8], up: &[u8], down: &[u8]) {
    let Some((&seg, data)) = data.split_first() else {
        return;
    };
    let seg = usize::from(seg % 64) + 1;
    let (a, b) = data.split_at(data.len() / 2);
    let up = [up, a].concat();
    let down = [down, b].concat();
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
}
