//! Incremental Content-Encoding decoding (gzip, deflate) with bounded memory.
//!
//! flate2's write-side decoders are fed compressed bytes as they arrive; the
//! decoded output lands in a small `Vec` that is handed to the caller and
//! cleared after every step, so memory stays at flate2's 32 KiB window and
//! output buffer however much a body expands.

use flate2::write::{DeflateDecoder, GzDecoder, ZlibDecoder};
use std::io::Write;

/// A Content-Encoding this module decodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Coding {
    /// `gzip` / `x-gzip`.
    Gzip,
    /// `deflate`: zlib-wrapped per RFC 9110, but raw deflate is common, so
    /// the wrapper is detected from the first two bytes.
    Deflate,
}

/// The body did not decode.
#[derive(Debug, thiserror::Error)]
#[error("corrupt {0:?} stream: {1}")]
pub(crate) struct DecodeError(Coding, std::io::Error);

enum Inner {
    /// Deflate before its first two bytes are known.
    Sniff(Vec<u8>),
    Gzip(GzDecoder<Vec<u8>>),
    Zlib(ZlibDecoder<Vec<u8>>),
    Raw(DeflateDecoder<Vec<u8>>),
}

/// One body's decoder.
pub(crate) struct Decoder {
    coding: Coding,
    inner: Inner,
    /// The compressed stream ended; later bytes are ignored.
    finished: bool,
    /// Compressed bytes taken so far.
    consumed: u64,
}

impl std::fmt::Debug for Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decoder")
            .field("coding", &self.coding)
            .field("finished", &self.finished)
            .finish()
    }
}

/// Whether two bytes start a zlib stream (RFC 1950: CM 8, window <= 32K, FCHECK).
fn is_zlib_header(b0: u8, b1: u8) -> bool {
    b0 & 0x0f == 8 && b0 >> 4 <= 7 && (u16::from(b0) << 8 | u16::from(b1)) % 31 == 0
}

impl Decoder {
    /// A decoder for `coding`.
    pub(crate) fn new(coding: Coding) -> Self {
        let inner = match coding {
            Coding::Gzip => Inner::Gzip(GzDecoder::new(Vec::new())),
            Coding::Deflate => Inner::Sniff(Vec::with_capacity(2)),
        };
        Decoder {
            coding,
            inner,
            finished: false,
            consumed: 0,
        }
    }

    fn err(&self, e: std::io::Error) -> DecodeError {
        DecodeError(self.coding, e)
    }

    /// Decode `input`, passing decoded pieces to `emit` with the
    /// compressed bytes taken so far; `emit` returns false to stop (the
    /// rest of the input is then dropped).
    pub(crate) fn decode(
        &mut self,
        mut input: &[u8],
        emit: &mut dyn FnMut(&[u8], u64) -> bool,
    ) -> Result<(), DecodeError> {
        if let Inner::Sniff(head) = &mut self.inner {
            let take = (2 - head.len()).min(input.len());
            head.extend_from_slice(&input[..take]);
            input = &input[take..];
            if head.len() < 2 {
                return Ok(());
            }
            let head = std::mem::take(head);
            self.inner = if is_zlib_header(head[0], head[1]) {
                Inner::Zlib(ZlibDecoder::new(Vec::new()))
            } else {
                Inner::Raw(DeflateDecoder::new(Vec::new()))
            };
            if !self.feed(&head, emit)? {
                return Ok(());
            }
        }
        self.feed(input, emit)?;
        Ok(())
    }

    /// Returns false when `emit` asked to stop.
    fn feed(
        &mut self,
        mut input: &[u8],
        emit: &mut dyn FnMut(&[u8], u64) -> bool,
    ) -> Result<bool, DecodeError> {
        while !input.is_empty() && !self.finished {
            let n = match self.write(input) {
                Ok(n) => n,
                Err(e) => return Err(self.err(e)),
            };
            self.consumed += n as u64;
            if !self.drain(emit) {
                return Ok(false);
            }
            if n == 0 {
                // End of the compressed stream: trailing bytes are ignored.
                self.finished = true;
            }
            input = &input[n..];
        }
        if let Err(e) = self.flush() {
            return Err(self.err(e));
        }
        Ok(self.drain(emit))
    }

    /// The body ended: flush what is left. Err if the stream was incomplete.
    pub(crate) fn finish(
        &mut self,
        emit: &mut dyn FnMut(&[u8], u64) -> bool,
    ) -> Result<(), DecodeError> {
        let r = match &mut self.inner {
            Inner::Sniff(head) if head.is_empty() => Ok(()),
            Inner::Sniff(_) => Err(std::io::ErrorKind::UnexpectedEof.into()),
            Inner::Gzip(d) => d.try_finish(),
            Inner::Zlib(d) => d.try_finish(),
            Inner::Raw(d) => d.try_finish(),
        };
        self.drain(emit);
        r.map_err(|e| self.err(e))
    }

    fn write(&mut self, input: &[u8]) -> std::io::Result<usize> {
        match &mut self.inner {
            Inner::Sniff(_) => Ok(0),
            Inner::Gzip(d) => d.write(input),
            Inner::Zlib(d) => d.write(input),
            Inner::Raw(d) => d.write(input),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match &mut self.inner {
            Inner::Sniff(_) => Ok(()),
            Inner::Gzip(d) => d.flush(),
            Inner::Zlib(d) => d.flush(),
            Inner::Raw(d) => d.flush(),
        }
    }

    /// Hand decoded bytes to `emit` and clear them; false if `emit` said stop.
    fn drain(&mut self, emit: &mut dyn FnMut(&[u8], u64) -> bool) -> bool {
        let consumed = self.consumed;
        let out = match &mut self.inner {
            Inner::Sniff(_) => return true,
            Inner::Gzip(d) => d.get_mut(),
            Inner::Zlib(d) => d.get_mut(),
            Inner::Raw(d) => d.get_mut(),
        };
        if out.is_empty() {
            return true;
        }
        let go_on = emit(out, consumed);
        out.clear();
        go_on
    }
}
