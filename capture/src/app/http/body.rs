//! One message body: its framing (length, chunked, until close) and what the
//! framed bytes go through (Content-Encoding decoder, multipart splitter)
//! before they reach the object sink.

use super::chunked::Chunked;
use super::encoding::{Coding, Decoder};
use super::multipart::Multipart;
use crate::app::{Ctx, INFLATE_RATIO_FLOOR};
use crate::object::{ObjectEnd, ObjectEvent, ObjectMeta};
use eve::Direction;

/// How the body's end is found.
#[derive(Debug)]
pub(crate) enum Framing {
    /// This many bytes remain.
    Length(u64),
    /// Chunked transfer coding.
    Chunked(Chunked),
    /// Everything until the connection closes.
    UntilClose,
}

/// Result of feeding bytes to a body.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// All input consumed; the body continues.
    More,
    /// The body ended after this many input bytes.
    Done(usize),
    /// Framing broke after this many input bytes (the body was ended truncated).
    Broken(usize),
}

/// A body in progress.
#[derive(Debug)]
pub(crate) struct Body {
    framing: Framing,
    sink: BodySink,
}

impl Body {
    /// A body framed by `framing`, decoded with `coding`, split as multipart
    /// when `multipart` is given, reported with `meta`.
    pub(crate) fn new(
        framing: Framing,
        coding: Option<Coding>,
        multipart: Option<Multipart>,
        meta: ObjectMeta,
    ) -> Self {
        Body {
            framing,
            sink: BodySink {
                dir: meta.direction,
                meta,
                decoder: coding.map(Decoder::new),
                multipart,
                open: false,
                decoded: 0,
                stopped: false,
                truncated: false,
            },
        }
    }

    /// Feed framed bytes.
    pub(crate) fn feed(&mut self, input: &[u8], ctx: &mut Ctx<'_>) -> Step {
        match &mut self.framing {
            Framing::Length(rem) => {
                let take = (*rem).min(input.len() as u64) as usize;
                *rem -= take as u64;
                self.sink.push(&input[..take], ctx);
                if *rem == 0 {
                    self.sink.finish(true, ctx);
                    Step::Done(take)
                } else {
                    Step::More
                }
            }
            Framing::UntilClose => {
                self.sink.push(input, ctx);
                Step::More
            }
            Framing::Chunked(ch) => {
                let mut pos = 0;
                while pos < input.len() {
                    match ch.step(&input[pos..]) {
                        Ok((n, data)) => {
                            if let Some(r) = data {
                                self.sink.push(&input[pos + r.start..pos + r.end], ctx);
                            }
                            pos += n;
                            if ch.is_done() {
                                self.sink.finish(true, ctx);
                                return Step::Done(pos);
                            }
                        }
                        Err(e) => {
                            tracing::debug!(error = %e, "chunked framing broke");
                            ctx.stats().http_bad_chunk += 1;
                            self.sink.finish(false, ctx);
                            return Step::Broken(pos);
                        }
                    }
                }
                Step::More
            }
        }
    }

    /// `n` bytes were lost. Returns false when the gap destroyed the framing
    /// (the body was then ended truncated).
    pub(crate) fn gap(&mut self, n: u64, ctx: &mut Ctx<'_>) -> bool {
        match &mut self.framing {
            Framing::Length(rem) if n <= *rem => {
                *rem -= n;
                self.sink.gap(n, ctx);
                if *rem == 0 {
                    self.sink.finish(true, ctx);
                    // The body is over; the caller resumes at the next header.
                }
                true
            }
            Framing::UntilClose => {
                self.sink.gap(n, ctx);
                true
            }
            Framing::Chunked(ch) if n <= ch.data_remaining() => {
                ch.skip_data(n);
                self.sink.gap(n, ctx);
                true
            }
            _ => {
                self.sink.gap(n, ctx);
                self.sink.finish(false, ctx);
                false
            }
        }
    }

    /// Whether a Content-Length body has been fully consumed (after a gap).
    pub(crate) fn is_finished(&self) -> bool {
        matches!(self.framing, Framing::Length(0))
    }

    /// The connection direction closed.
    pub(crate) fn close(&mut self, clean: bool, ctx: &mut Ctx<'_>) {
        let complete = clean && matches!(self.framing, Framing::UntilClose);
        if !complete {
            ctx.stats().http_truncated_bodies += 1;
        }
        self.sink.finish(complete, ctx);
    }
}

/// Where framed body bytes go: decoding, multipart splitting, objects.
#[derive(Debug)]
struct BodySink {
    dir: Direction,
    meta: ObjectMeta,
    decoder: Option<Decoder>,
    multipart: Option<Multipart>,
    /// The (single, non-multipart) object is open.
    open: bool,
    /// Decoded bytes so far (bomb guard).
    decoded: u64,
    /// Decoding stopped (error or bomb); later bytes are dropped.
    stopped: bool,
    /// The object must end truncated.
    truncated: bool,
}

impl BodySink {
    fn push(&mut self, bytes: &[u8], ctx: &mut Ctx<'_>) {
        if bytes.is_empty() || self.stopped {
            return;
        }
        if self.multipart.is_none() {
            self.begin(ctx);
        }
        let Some(mut decoder) = self.decoder.take() else {
            self.emit(bytes, ctx);
            return;
        };
        let result = decoder.decode(bytes, &mut |piece, consumed| {
            self.emit_decoded(piece, consumed, ctx)
        });
        self.decoder = Some(decoder);
        if let Err(e) = result {
            tracing::debug!(error = %e, "body did not decode");
            ctx.stats().decode_errors += 1;
            self.stop();
        }
    }

    /// Emit decoded bytes (`consumed`: compressed bytes taken so far)
    /// within the bomb limits — `max_decoded_bytes` in all, and past
    /// [`INFLATE_RATIO_FLOOR`] at most `max_inflate_ratio` bytes per
    /// compressed byte; false once one is reached (the body then ends
    /// truncated, and `app.decode_bombs` counts it).
    fn emit_decoded(&mut self, piece: &[u8], consumed: u64, ctx: &mut Ctx<'_>) -> bool {
        let limits = ctx.limits;
        let mut room = limits.max_decoded_bytes.saturating_sub(self.decoded);
        if limits.max_inflate_ratio > 0 {
            let by_ratio = limits
                .max_inflate_ratio
                .saturating_mul(consumed)
                .max(INFLATE_RATIO_FLOOR);
            room = room.min(by_ratio.saturating_sub(self.decoded));
        }
        let take = (piece.len() as u64).min(room) as usize;
        self.decoded += take as u64;
        self.emit(&piece[..take], ctx);
        if take < piece.len() {
            ctx.stats().decode_bombs += 1;
            self.stop();
            return false;
        }
        true
    }

    fn stop(&mut self) {
        self.stopped = true;
        self.truncated = true;
    }

    fn begin(&mut self, ctx: &mut Ctx<'_>) {
        if !self.open {
            self.open = true;
            ctx.out
                .object(self.dir, ObjectEvent::Begin(self.meta.clone()));
        }
    }

    fn emit(&mut self, bytes: &[u8], ctx: &mut Ctx<'_>) {
        if bytes.is_empty() {
            return;
        }
        match &mut self.multipart {
            Some(m) => m.push(bytes, ctx),
            None => ctx.out.object(self.dir, ObjectEvent::Data(bytes)),
        }
    }

    fn gap(&mut self, n: u64, ctx: &mut Ctx<'_>) {
        if self.decoder.is_some() && !self.stopped {
            // A compressed stream cannot resume after lost bytes.
            ctx.stats().decode_errors += 1;
            self.stop();
        }
        match &mut self.multipart {
            Some(m) if self.decoder.is_none() => m.gap(n, ctx),
            Some(_) => {}
            None => {
                self.begin(ctx);
                ctx.out.object(self.dir, ObjectEvent::Gap(n));
            }
        }
    }

    /// End the body: `complete` when the framing completed.
    fn finish(&mut self, complete: bool, ctx: &mut Ctx<'_>) {
        let mut complete = complete;
        if let Some(mut d) = self.decoder.take()
            && !self.stopped
            && let Err(e) = d.finish(&mut |piece, consumed| self.emit_decoded(piece, consumed, ctx))
        {
            tracing::debug!(error = %e, "body decoding incomplete");
            if complete {
                ctx.stats().decode_errors += 1;
            }
            complete = false;
        }
        let complete = complete && !self.truncated;
        if let Some(m) = &mut self.multipart {
            m.finish(complete, ctx);
        }
        if std::mem::take(&mut self.open) && self.multipart.is_none() {
            let end = if complete {
                ObjectEnd::Complete
            } else {
                ObjectEnd::Truncated
            };
            ctx.out.object(self.dir, ObjectEvent::End(end));
        }
        self.stopped = true;
    }
}
