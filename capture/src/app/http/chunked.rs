//! Incremental decoder of `Transfer-Encoding: chunked` framing.
//!
//! Never buffers: it walks the input once and hands back ranges of chunk
//! data. Size lines, chunk extensions and trailers are bounded.

use std::ops::Range;

/// Longest chunk-size line (with extensions) accepted.
const MAX_SIZE_LINE: usize = 4096;
/// Most trailer bytes accepted after the last chunk.
const MAX_TRAILERS: usize = 64 * 1024;

/// Why chunked framing broke.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ChunkError {
    /// The size line was not hex, overflowed, or was too long.
    #[error("bad chunk size line")]
    BadSize,
    /// Chunk data was not followed by CRLF.
    #[error("chunk data not followed by CRLF")]
    BadChunkEnd,
    /// Trailers were too long.
    #[error("trailers too long")]
    TrailersTooLong,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// In the size line: value so far, hex digits seen, in extensions, line length.
    Size {
        value: u64,
        digits: u8,
        ext: bool,
        len: usize,
    },
    /// Inside chunk data.
    Data(u64),
    /// After chunk data: expecting CR LF (`cr` once the CR was seen).
    DataEnd { cr: bool },
    /// In the trailer section: bytes on the current line, total bytes.
    Trailer { line: usize, total: usize },
    /// Last chunk and trailers seen.
    Done,
}

/// Chunked framing state.
#[derive(Clone, Debug)]
pub(crate) struct Chunked {
    state: State,
}

impl Default for Chunked {
    fn default() -> Self {
        Chunked {
            state: State::Size {
                value: 0,
                digits: 0,
                ext: false,
                len: 0,
            },
        }
    }
}

impl Chunked {
    /// Whether the last chunk and its trailers were seen.
    pub(crate) fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Bytes of chunk data still expected in the current chunk (0 outside data).
    pub(crate) fn data_remaining(&self) -> u64 {
        match self.state {
            State::Data(n) => n,
            _ => 0,
        }
    }

    /// Skip `n` bytes of chunk data lost in a gap; `n` must not exceed
    /// [`Chunked::data_remaining`].
    pub(crate) fn skip_data(&mut self, n: u64) {
        if let State::Data(rem) = self.state {
            let rem = rem.saturating_sub(n);
            self.state = if rem == 0 {
                State::DataEnd { cr: false }
            } else {
                State::Data(rem)
            };
        }
    }

    /// Consume a prefix of `input`: returns how many bytes were consumed and
    /// the range of chunk data among them (if any). Stops after one data
    /// range, at `Done`, or when the input is exhausted.
    pub(crate) fn step(
        &mut self,
        input: &[u8],
    ) -> Result<(usize, Option<Range<usize>>), ChunkError> {
        let mut i = 0;
        while i < input.len() {
            match &mut self.state {
                State::Done => break,
                State::Data(rem) => {
                    let avail = (input.len() - i) as u64;
                    let take = (*rem).min(avail) as usize;
                    *rem -= take as u64;
                    if *rem == 0 {
                        self.state = State::DataEnd { cr: false };
                    }
                    return Ok((i + take, Some(i..i + take)));
                }
                State::Size {
                    value,
                    digits,
                    ext,
                    len,
                } => {
                    let b = input[i];
                    i += 1;
                    *len += 1;
                    if *len > MAX_SIZE_LINE {
                        return Err(ChunkError::BadSize);
                    }
                    if b == b'\n' {
                        if *digits == 0 {
                            return Err(ChunkError::BadSize);
                        }
                        self.state = if *value == 0 {
                            State::Trailer { line: 0, total: 0 }
                        } else {
                            State::Data(*value)
                        };
                    } else if *ext {
                        // Chunk extensions (and the CR before LF) are skipped.
                    } else if let Some(d) = (b as char).to_digit(16) {
                        *value = value
                            .checked_mul(16)
                            .and_then(|v| v.checked_add(u64::from(d)))
                            .ok_or(ChunkError::BadSize)?;
                        *digits += 1;
                    } else if matches!(b, b';' | b' ' | b'\t' | b'\r') && *digits > 0 {
                        *ext = true;
                    } else {
                        return Err(ChunkError::BadSize);
                    }
                }
                State::DataEnd { cr } => {
                    let b = input[i];
                    i += 1;
                    match b {
                        b'\r' if !*cr => *cr = true,
                        b'\n' => {
                            self.state = State::Size {
                                value: 0,
                                digits: 0,
                                ext: false,
                                len: 0,
                            }
                        }
                        _ => return Err(ChunkError::BadChunkEnd),
                    }
                }
                State::Trailer { line, total } => {
                    let b = input[i];
                    i += 1;
                    *total += 1;
                    if *total > MAX_TRAILERS {
                        return Err(ChunkError::TrailersTooLong);
                    }
                    match b {
                        b'\n' if *line == 0 => self.state = State::Done,
                        b'\n' => *line = 0,
                        b'\r' if *line == 0 => {}
                        _ => *line += 1,
                    }
                }
            }
        }
        Ok((i, None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(input: &[u8]) -> Result<(Vec<u8>, bool), ChunkError> {
        let mut c = Chunked::default();
        let mut out = Vec::new();
        let mut pos = 0;
        while pos < input.len() && !c.is_done() {
            let (n, r) = c.step(&input[pos..])?;
            if let Some(r) = r {
                out.extend_from_slice(&input[pos + r.start..pos + r.end]);
            }
            pos += n;
        }
        Ok((out, c.is_done()))
    }

    #[test]
    fn decodes_chunks_extensions_and_trailers() {
        let body =
            b"4;name=v\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nX-T: 1\r\n\r\n";
        let (out, done) = decode(body).unwrap();
        assert_eq!(out, b"Wikipedia in\r\n\r\nchunks.");
        assert!(done);
    }

    #[test]
    fn rejects_bad_sizes_without_panicking() {
        assert_eq!(decode(b"zz\r\n"), Err(ChunkError::BadSize));
        assert_eq!(decode(b"\r\n"), Err(ChunkError::BadSize));
        assert_eq!(decode(b"-1\r\n"), Err(ChunkError::BadSize));
        assert_eq!(decode(b"10000000000000000\r\n"), Err(ChunkError::BadSize));
        assert_eq!(decode(b"2\r\nabXY"), Err(ChunkError::BadChunkEnd));
        // The largest u64 size is accepted as framing; it just never completes.
        assert_eq!(
            decode(b"ffffffffffffffff\r\nab").unwrap(),
            (b"ab".to_vec(), false)
        );
    }
}
