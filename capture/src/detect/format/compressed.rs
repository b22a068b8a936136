//! Compressed single files at an object's start: a `.tar.gz`/`.tar.zst` of
//! a model directory, and the containers `joblib.dump(…, compress=…)`
//! writes (zlib by default, gzip, bz2, lzma, xz, lz4, and joblib before
//! 0.10's `ZF` header + zlib). Each is recognised by its magic, its first
//! [`DECOMPRESS_LIMIT`] decompressed bytes are produced (never more, and
//! with a decoder whose memory does not follow a length field: see
//! [`reader`]), and those are parsed as a tar or as a file; the match takes
//! the codec as its variant (`format: joblib, variant: zlib`).

use super::archive::tar_at;
use super::cursor::{Cursor, le32};
use super::{Verdict, identify_file_at};
use std::io::Read;

/// Decompressed bytes examined.
const DECOMPRESS_LIMIT: usize = 1 << 20;

/// A compression container.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Codec {
    /// gzip (RFC 1952).
    Gzip,
    /// Zstandard.
    Zstd,
    /// zlib (RFC 1950): joblib's default `compress=N`.
    Zlib,
    /// joblib < 0.10: `ZF`, the length in hex padded to 19 characters, zlib.
    Zfile,
    /// bzip2.
    Bzip2,
    /// xz (LZMA2 in the xz container).
    Xz,
    /// LZMA "alone" (`.lzma`: properties, dictionary size, length).
    Lzma,
    /// LZ4 frame.
    Lz4,
}

impl Codec {
    /// The variant a match inside is reported with.
    fn name(self) -> &'static str {
        match self {
            Codec::Gzip => "gzip",
            Codec::Zstd => "zstd",
            Codec::Zlib | Codec::Zfile => "zlib",
            Codec::Bzip2 => "bz2",
            Codec::Xz => "xz",
            Codec::Lzma => "lzma",
            Codec::Lz4 => "lz4",
        }
    }
}

/// The container `buf` starts with, by its magic (a zlib header by its
/// check bits; LZMA alone by the properties byte joblib's and xz-utils'
/// encoders write and a power-of-two-ish dictionary size).
pub(crate) fn sniff(buf: &[u8]) -> Option<Codec> {
    Some(match buf {
        [0x1f, 0x8b, 0x08, ..] => Codec::Gzip,
        [0x28, 0xb5, 0x2f, 0xfd, ..] => Codec::Zstd,
        [0xfd, b'7', b'z', b'X', b'Z', 0, ..] => Codec::Xz,
        [0x04, 0x22, 0x4d, 0x18, ..] => Codec::Lz4,
        [
            b'B',
            b'Z',
            b'h',
            b'1'..=b'9',
            0x31,
            0x41,
            0x59,
            0x26,
            0x53,
            0x59,
            ..,
        ] => Codec::Bzip2,
        [b'Z', b'F', b'0', b'x', ..] => Codec::Zfile,
        // CM 8 with a 32 KiB window, FCHECK valid, no preset dictionary.
        [0x78, flg, ..] if (0x7800u16 | u16::from(*flg)).is_multiple_of(31) && flg & 0x20 == 0 => {
            Codec::Zlib
        }
        [0x5d, 0, ..] if le32(buf, 1).is_some_and(|d| (1 << 16..=1 << 30).contains(&d)) => {
            Codec::Lzma
        }
        _ => return None,
    })
}

/// Dictionary given to LZMA decoders: only the first [`DECOMPRESS_LIMIT`]
/// bytes are produced, and no match can reach further back than the
/// output so far, so a dictionary that size decodes them exactly whatever
/// the header declares (up to 4 GiB).
const DICT_CAP: u32 = DECOMPRESS_LIMIT as u32;
/// Memory (KiB) an LZMA decoder may take with that dictionary: a
/// header's `lc`/`lp` can ask for 6 MiB of probability tables; xz-utils'
/// and Python's presets use 3/0.
const LZMA_MEM_KIB: u32 = 2048;

/// A decoder of `codec` over `buf`, or `None` when its header is not
/// valid. The readers of `flate2`, `zstd`, `bzip2` and `lz4_flex` bound
/// their memory by the format (bzip2 900 KB blocks, LZ4 4 MiB blocks;
/// zstd's window is capped at 8 MiB); LZMA's dictionary is capped by
/// [`DICT_CAP`]. The xz container is read here by hand (stream header,
/// one block header with one LZMA2 filter) because the crate's `XzReader`
/// allocates the dictionary the block header declares, or refuses it
/// above a limit, while a bounded prefix needs only [`DICT_CAP`].
fn reader<'a>(buf: &'a [u8], codec: Codec) -> Option<Box<dyn Read + 'a>> {
    Some(match codec {
        Codec::Gzip => Box::new(flate2::read::GzDecoder::new(buf)),
        Codec::Zlib => Box::new(flate2::read::ZlibDecoder::new(buf)),
        Codec::Zfile => {
            // "ZF" + 19 characters; joblib <= 0.8.4 on Python 2 wrote one more.
            let mut at = 21;
            if buf.get(at) == Some(&b' ') {
                at += 1;
            }
            Box::new(flate2::read::ZlibDecoder::new(buf.get(at..)?))
        }
        Codec::Zstd => {
            let mut d = zstd::stream::read::Decoder::with_buffer(buf).ok()?;
            // 8 MiB windows (what levels up to 19 use), not the 128 MiB a
            // frame header may ask for by default.
            d.window_log_max(23).ok()?;
            Box::new(d)
        }
        Codec::Bzip2 => Box::new(bzip2::read::BzDecoder::new(buf)),
        Codec::Lz4 => Box::new(lz4_flex::frame::FrameDecoder::new(buf)),
        Codec::Lzma => {
            let mut c = Cursor::new(buf, 0);
            let props = c.u8().ok()?;
            let dict = c.u32().ok()?;
            let size = c.u64().ok()?;
            let dict = dict.clamp(4096, DICT_CAP);
            if lzma_rust2::lzma_get_memory_usage_by_props(dict, props).ok()? > LZMA_MEM_KIB {
                return None;
            }
            Box::new(
                lzma_rust2::LzmaReader::new_with_props(c.rest(), size, props, dict, None).ok()?,
            )
        }
        Codec::Xz => {
            let (data, dict) = xz_block(buf)?;
            Box::new(lzma_rust2::Lzma2Reader::new(
                data,
                dict.clamp(4096, DICT_CAP),
                None,
            ))
        }
    })
}

/// The xz stream's first block: its LZMA2 data and dictionary size.
/// Stream header: magic, flags (`00 0x`), CRC-32. Block header: its size
/// ((byte + 1) × 4), flags (filter count − 1, optional compressed and
/// uncompressed sizes), then the filter flags: id 0x21 (LZMA2) with one
/// property byte, the dictionary size code.
fn xz_block(buf: &[u8]) -> Option<(&[u8], u32)> {
    let mut c = Cursor::new(buf, 6);
    if c.u8().ok()? != 0 || c.u8().ok()? > 0x0f {
        return None;
    }
    c.skip(4).ok()?;
    let start = c.pos();
    let size = (usize::from(c.u8().ok()?) + 1) * 4;
    if size == 4 {
        return None;
    }
    let flags = c.u8().ok()?;
    if flags & 0x03 != 0 || flags & 0x3c != 0 {
        return None;
    }
    if flags & 0x40 != 0 {
        c.varint().ok()?;
    }
    if flags & 0x80 != 0 {
        c.varint().ok()?;
    }
    if c.varint().ok()? != 0x21 || c.varint().ok()? != 1 {
        return None;
    }
    let code = c.u8().ok()?;
    let dict = match code {
        0..=39 => (2 | u32::from(code & 1)) << (code / 2 + 11),
        40 => u32::MAX,
        _ => return None,
    };
    buf.get(start + size..).map(|d| (d, dict))
}

/// The first [`DECOMPRESS_LIMIT`] decompressed bytes, and whether the
/// stream broke before giving any.
fn decompress_prefix(buf: &[u8], codec: Codec) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    let Some(mut reader) = reader(buf, codec) else {
        return (out, true);
    };
    let mut chunk = [0u8; 16 * 1024];
    while out.len() < DECOMPRESS_LIMIT {
        match reader.read(&mut chunk) {
            Ok(0) => break,
            Err(_) => {
                let broke = out.is_empty();
                return (out, broke);
            }
            Ok(n) => out.extend_from_slice(&chunk[..n.min(DECOMPRESS_LIMIT - out.len())]),
        }
    }
    (out, false)
}

/// A compressed tar of a model directory, or a compressed model file, at
/// `buf[0]`.
pub(crate) fn compressed(buf: &[u8], codec: Codec, complete: bool) -> Verdict {
    let (plain, broken) = decompress_prefix(buf, codec);
    if broken && plain.is_empty() {
        // The header already broke the codec's rules: not this container.
        return if complete || buf.len() >= 64 {
            Verdict::No
        } else {
            Verdict::NeedMore
        };
    }
    let full = complete || plain.len() >= DECOMPRESS_LIMIT;
    let v = if plain.get(257..262) == Some(b"ustar") {
        tar_at(&plain, 0, full)
    } else {
        match identify_file_at(&plain, 0) {
            Verdict::NeedMore if full => Verdict::No,
            v => v,
        }
    };
    match v {
        Verdict::Match(mut id) => {
            id.detail = Some(codec.name());
            Verdict::Match(id)
        }
        other => other,
    }
}
