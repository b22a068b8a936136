//! A TCP connection in the flow table: its two reassembled streams, the
//! app layer they feed, and the objects open in it.

use super::emitter::{ObjectEmitter, ObjectTracker};
use crate::app::{AppConnection, AppLimits};
use crate::decode::TcpMeta;
use crate::object::ObjectSink;
use crate::reassembly::{Chunk, Limits, OsPolicy, Stream};
use eve::Direction;

/// One TCP connection's state.
pub(super) struct TcpConn {
    /// The two directions' reassembly, by [`Direction::index`].
    pub streams: [Stream; 2],
    /// The app layer both streams feed.
    pub app: AppConnection,
    /// The objects open in the connection.
    pub objects: ObjectTracker,
    /// Direction closed (FIN reached or RST).
    pub done: [bool; 2],
    /// Some direction lost bytes.
    pub gaps: bool,
    /// Picked up mid-connection (no SYN seen).
    pub midstream: bool,
}

impl TcpConn {
    /// A new connection; `midstream` when its handshake was not seen;
    /// `policies`: the overlap policy of each direction's receiver.
    pub fn new(limits: &AppLimits, midstream: bool, policies: [OsPolicy; 2]) -> Self {
        TcpConn {
            streams: policies.map(Stream::with_policy),
            app: AppConnection::new(limits, midstream),
            objects: ObjectTracker::default(),
            done: [false; 2],
            gaps: false,
            midstream,
        }
    }
}

/// A TCP connection opened for one call into it: its streams and app layer,
/// the worker's reassembly memory, and the emitter its objects go to.
pub(super) struct OpenConn<'w> {
    /// The two directions' reassembly.
    pub streams: &'w mut [Stream; 2],
    /// The app layer.
    pub app: &'w mut AppConnection,
    /// Directions closed.
    pub done: &'w mut [bool; 2],
    /// The worker's reassembly limits and memory in use.
    pub reasm: &'w mut Limits,
    /// Where the app layer's objects go.
    pub emitter: ObjectEmitter<'w>,
}

impl OpenConn<'_> {
    /// One segment of `dir` (its payload, flags and the ack it carries for
    /// the other direction). A reset closes both directions.
    pub fn segment(&mut self, dir: Direction, m: &TcpMeta, payload: &[u8]) {
        if m.rst {
            self.close_unfinished();
            return;
        }
        let OpenConn {
            streams,
            app,
            done,
            reasm,
            emitter,
        } = self;
        let d = dir.index();
        if !done[d] {
            streams[d].segment(m.seq, m.syn, m.fin, payload, reasm, &mut |c| {
                feed(app, dir, c, emitter)
            });
            if streams[d].finished() {
                streams[d].close(reasm, &mut |c| feed(app, dir, c, emitter));
                app.close(dir, true, emitter);
                done[d] = true;
            }
        }
        let other = dir.reverse();
        let o = other.index();
        if m.ack && !done[o] {
            streams[o].peer_ack(m.ack_no, reasm, &mut |c| feed(app, other, c, emitter));
        }
    }

    /// Deliver what `dir` holds out of order (its holes become gaps) to
    /// free memory.
    pub fn evict_buffer(&mut self, dir: Direction) {
        let OpenConn {
            streams,
            app,
            reasm,
            emitter,
            ..
        } = self;
        streams[dir.index()].evict_buffer(reasm, &mut |c| feed(app, dir, c, emitter));
    }

    /// Close every direction not closed yet, client → server first, as not
    /// clean (a reset, a timeout, a shutdown): held bytes are delivered,
    /// holes become gaps, and the app layer ends its objects.
    pub fn close_unfinished(&mut self) {
        let OpenConn {
            streams,
            app,
            done,
            reasm,
            emitter,
        } = self;
        for dir in Direction::BOTH {
            let i = dir.index();
            if !done[i] {
                streams[i].close(reasm, &mut |c| feed(app, dir, c, emitter));
                app.close(dir, false, emitter);
                done[i] = true;
            }
        }
    }

    /// Both directions are closed.
    pub fn closed(&self) -> bool {
        self.done[0] && self.done[1]
    }
}

/// Hand one reassembled chunk of `dir` to the app layer.
fn feed(app: &mut AppConnection, dir: Direction, c: Chunk<'_>, out: &mut dyn ObjectSink) {
    match c {
        Chunk::Data(b) => app.data(dir, b, out),
        Chunk::Gap(n) => app.gap(dir, n, out),
    }
}
