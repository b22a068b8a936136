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
    /// What the connection remembers to judge its packets.
    pub watch: Watch,
}

/// What a connection remembers to judge resets, SYN payloads and TTLs.
#[derive(Debug, Default)]
pub(super) struct Watch {
    /// The last acknowledgment number each direction sent.
    acks: [Option<u32>; 2],
    /// Each direction's TTL (hop limit) of its first packet.
    ttl: [Option<u8>; 2],
    /// A SYN's payload (sequence number of its first byte, bytes), held
    /// until the SYN-ACK, or the client's next segment, says whether the
    /// server took it.
    syn_data: Option<(u32, Vec<u8>)>,
}

/// How the connection judges evasions (from `[capture]`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct EvasionPolicy {
    /// Segments whose TTL is more than this below their direction's first
    /// packet's are held back until acknowledged (`None`: never).
    pub ttl_tolerance: Option<u8>,
    /// Urgent bytes are taken out of the stream (`oob`) rather than left in.
    pub urgent_oob: bool,
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
            watch: Watch::default(),
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
    /// What the connection remembers to judge its packets.
    pub watch: &'w mut Watch,
    /// How it judges them.
    pub policy: EvasionPolicy,
    /// Where the app layer's objects go.
    pub emitter: ObjectEmitter<'w>,
}

impl OpenConn<'_> {
    /// One segment of `dir` (its payload, flags, TTL and the ack it carries
    /// for the other direction). A valid reset closes both directions.
    pub fn segment(&mut self, dir: Direction, m: &TcpMeta, ttl: u8, payload: &[u8]) {
        let d = dir.index();
        let other = dir.reverse();
        let o = other.index();
        if m.rst {
            if self.rst_valid(d, m.seq) {
                self.close_unfinished();
            } else {
                self.streams[d].counters.rst_invalid += 1;
            }
            return;
        }
        let baseline = *self.watch.ttl[d].get_or_insert(ttl);
        let held = self
            .policy
            .ttl_tolerance
            .is_some_and(|t| ttl.saturating_add(t) < baseline);
        let payload = self.syn_payload(dir, m, payload);
        if m.ack {
            self.watch.acks[d] = Some(m.ack_no);
        }
        let OpenConn {
            streams,
            app,
            done,
            reasm,
            emitter,
            policy,
            ..
        } = self;
        if !done[d] {
            let s = &mut streams[d];
            let mut feed_d = |c: Chunk<'_>| feed(app, dir, c, emitter);
            if held && !m.syn {
                s.segment_held(m.seq, payload, reasm, &mut feed_d);
                if m.fin {
                    s.segment(
                        m.seq.wrapping_add(payload.len() as u32),
                        false,
                        true,
                        &[],
                        reasm,
                        &mut feed_d,
                    );
                }
            } else {
                if m.urg && policy.urgent_oob && !m.syn {
                    s.urgent(m.seq, m.urgent_ptr);
                }
                s.segment(m.seq, m.syn, m.fin, payload, reasm, &mut feed_d);
            }
            if s.finished() {
                s.close(reasm, &mut feed_d);
                app.close(dir, true, emitter);
                done[d] = true;
                if done[o] {
                    emitter.flush_held();
                }
            }
        }
        if m.ack && !done[o] {
            streams[o].peer_ack(m.ack_no, reasm, &mut |c| feed(app, other, c, emitter));
        }
    }

    /// Whether a reset from direction `d` with sequence number `seq` is
    /// one the receiver takes: its sequence number is exactly the next one
    /// expected (RFC 5961, and Suricata's rule for most OS policies) — by
    /// the sensor's account of the sender's stream, or by the receiver's
    /// own last acknowledgment. A sender whose stream has not started
    /// cannot be judged and is believed.
    fn rst_valid(&self, d: usize, seq: u32) -> bool {
        let s = &self.streams[d];
        let by_ack = self.watch.acks[1 - d];
        if !s.started() && by_ack.is_none() {
            return true;
        }
        s.next_seq() == Some(seq) || by_ack == Some(seq)
    }

    /// The payload of a segment of `dir` to reassemble now. A SYN's payload
    /// is held (the server may not take it: without TCP Fast Open it drops
    /// it and the client sends the bytes again) and given back only when
    /// the SYN-ACK acknowledges it, or the client's next segment starts
    /// after it; otherwise it is dropped (`syn_data_ignored`), as Suricata
    /// ignores SYN data the SYN-ACK does not acknowledge.
    fn syn_payload<'p>(&mut self, dir: Direction, m: &TcpMeta, payload: &'p [u8]) -> &'p [u8] {
        let client = dir == Direction::ToServer;
        if client && m.syn && !payload.is_empty() {
            self.watch.syn_data = Some((m.seq.wrapping_add(1), payload.to_vec()));
            return &[];
        }
        if let Some((seq, data)) = self.watch.syn_data.take() {
            let after = seq.wrapping_add(data.len() as u32);
            let taken = match (client, m.syn) {
                // The SYN-ACK.
                (false, true) => m.ack && m.ack_no == after,
                // The client's next segment (no SYN-ACK seen).
                (true, false) => m.seq == after,
                _ => {
                    self.watch.syn_data = Some((seq, data));
                    return payload;
                }
            };
            if taken {
                self.with_stream(Direction::ToServer, |s, reasm, out| {
                    s.segment(seq, false, false, &data, reasm, out)
                });
            } else {
                self.streams[Direction::ToServer.index()]
                    .counters
                    .syn_data_ignored += 1;
            }
        }
        payload
    }

    /// Deliver what `dir` holds out of order (its holes become gaps) to
    /// free memory.
    pub fn evict_buffer(&mut self, dir: Direction) {
        self.with_stream(dir, |s, reasm, out| s.evict_buffer(reasm, out));
    }

    /// Call `f` with `dir`'s stream, the reassembly memory and the feed of
    /// `dir`'s app layer.
    fn with_stream(
        &mut self,
        dir: Direction,
        f: impl FnOnce(&mut Stream, &mut Limits, &mut dyn FnMut(Chunk<'_>)),
    ) {
        let OpenConn {
            streams,
            app,
            reasm,
            emitter,
            ..
        } = self;
        f(&mut streams[dir.index()], reasm, &mut |c| {
            feed(app, dir, c, emitter)
        });
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
            ..
        } = self;
        for dir in Direction::BOTH {
            let i = dir.index();
            if !done[i] {
                streams[i].close(reasm, &mut |c| feed(app, dir, c, emitter));
                app.close(dir, false, emitter);
                done[i] = true;
            }
        }
        emitter.flush_held();
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
