//! llamafile: an executable (Actually Portable Executable `MZqFpD`, ELF or
//! PE) whose appended zip carries the model as a stored `.gguf` member.
//! The executable part is megabytes long, so the GGUF lies past the
//! prefix the other formats see: once an object's prefix is recognised as
//! nothing but starts like an executable, [`Finder`] follows the rest of
//! the stream (a `memchr` search for zip local headers, carrying a few KiB
//! across chunks) up to [`MAX_SCAN`] bytes, buffers at most `window` bytes
//! of the first stored `.gguf` member it meets and parses them as GGUF.

use super::cursor::le16;
use super::{Identified, Kind, Verdict};
use eve::WeightFormat;

/// Bytes of an executable followed before giving up (llamafile's own code
/// and GPU libraries come before the model: tens of MiB).
pub const MAX_SCAN: u64 = 512 << 20;
/// Bytes kept across chunks to find a local header split between them.
const CARRY: usize = 4096;

/// Whether `buf` starts like an executable (APE, ELF, PE).
pub fn is_executable(buf: &[u8]) -> bool {
    buf.starts_with(b"MZqFpD") || buf.starts_with(b"\x7fELF") || buf.starts_with(b"MZ")
}

/// Follows an executable's bytes for a stored `.gguf` zip member.
#[derive(Debug)]
pub struct Finder {
    window: usize,
    /// Bytes of the stream since `base` not yet searched past (≤ CARRY
    /// plus one chunk), or the member's bytes once found.
    pending: Vec<u8>,
    /// Stream offset of `pending[0]`.
    base: u64,
    /// The member's name and stream offset, once its header was seen.
    member: Option<(String, u64)>,
    done: bool,
}

impl Finder {
    /// A finder that buffers at most `window` bytes of the member.
    pub fn new(window: usize) -> Self {
        Finder {
            window,
            pending: Vec::new(),
            base: 0,
            member: None,
            done: false,
        }
    }

    /// True once nothing more is wanted.
    pub fn done(&self) -> bool {
        self.done
    }

    /// Feed the stream's next bytes (contiguous from offset 0). Returns the
    /// identification once the member's window is full.
    pub fn feed(&mut self, bytes: &[u8]) -> Option<Identified> {
        if self.done {
            return None;
        }
        if self.member.is_some() {
            let room = self.window.saturating_sub(self.pending.len());
            self.pending
                .extend_from_slice(&bytes[..bytes.len().min(room)]);
            return (self.pending.len() >= self.window)
                .then(|| self.finish())
                .flatten();
        }
        self.pending.extend_from_slice(bytes);
        let mut from = 0;
        while let Some(i) = memchr::memmem::find(&self.pending[from..], b"PK\x03\x04") {
            let at = from + i;
            match local_gguf(&self.pending[at..]) {
                Header::Gguf(name, data) => {
                    self.member = Some((name, self.base + (at + data) as u64));
                    let rest = self.pending.split_off(at + data);
                    self.base += (at + data) as u64;
                    self.pending = Vec::new();
                    return self.feed(&rest);
                }
                Header::Short => {
                    self.trim(at);
                    return self.check_cap();
                }
                Header::Other => from = at + 4,
            }
        }
        let keep = self.pending.len().saturating_sub(CARRY);
        self.trim(keep);
        self.check_cap()
    }

    fn trim(&mut self, at: usize) {
        self.pending.drain(..at);
        self.base += at as u64;
    }

    fn check_cap(&mut self) -> Option<Identified> {
        if self.base >= MAX_SCAN {
            self.done = true;
            self.pending = Vec::new();
        }
        None
    }

    /// Decide on what was buffered (at the stream's end, or a gap).
    pub fn finish(&mut self) -> Option<Identified> {
        if self.done {
            return None;
        }
        self.done = true;
        let (name, offset) = self.member.take()?;
        let gguf = match super::identify_file_at(&self.pending, 0) {
            Verdict::Match(id) if id.format == WeightFormat::Gguf => id,
            _ => return None,
        };
        self.pending = Vec::new();
        let mut id = Identified::new(WeightFormat::Llamafile, Kind::Weights);
        id.dtypes = gguf.dtypes.clone();
        id.tensors = gguf.tensors;
        id.params = gguf.params;
        id.architecture = gguf.architecture.clone();
        id.model_name = gguf.model_name.clone();
        id.members = vec![name];
        id.offset = offset;
        id.inner = Some(Box::new(gguf));
        Some(id)
    }
}

enum Header {
    /// A stored member named `*.gguf`: its name and where its data starts.
    Gguf(String, usize),
    /// The header runs past the bytes held.
    Short,
    /// Another member, or not a header.
    Other,
}

/// A zip local file header at `b[0]`.
fn local_gguf(b: &[u8]) -> Header {
    let (Some(method), Some(nlen), Some(xlen)) = (le16(b, 8), le16(b, 26), le16(b, 28)) else {
        return Header::Short;
    };
    let (nlen, xlen) = (usize::from(nlen), usize::from(xlen));
    if 30 + nlen + xlen > CARRY {
        return Header::Other;
    }
    let Some(name) = b.get(30..30 + nlen) else {
        return Header::Short;
    };
    if b.len() < 30 + nlen + xlen {
        return Header::Short;
    }
    if method != 0 || !name.ends_with(b".gguf") || !super::cursor::is_name(name) {
        return Header::Other;
    }
    Header::Gguf(String::from_utf8_lossy(name).into_owned(), 30 + nlen + xlen)
}
