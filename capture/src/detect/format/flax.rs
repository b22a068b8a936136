//! Flax msgpack (`flax.serialization.to_bytes`): a msgpack map of string
//! keys whose leaves are arrays as msgpack extension type 1, each holding
//! `msgpack((shape, dtype name, raw bytes))`. The walk is bounded (depth,
//! nodes) and checks each array's byte length against shape × dtype; the
//! file is confirmed once one array's header parses, and counted as far as
//! the prefix goes. Written by hand over the prefix (not `rmp`): the walk
//! must tell "ran off the buffered prefix" from "not msgpack", and skip
//! extension payloads without decoding them.

use super::cursor::{Cursor, Fail, PResult};
use super::{Identified, Kind};
use eve::WeightFormat;

const MAX_DEPTH: u8 = 32;
const MAX_NODES: u32 = 200_000;
/// Flax's extension type code of an ndarray.
const EXT_NDARRAY: i8 = 1;

/// (name, bytes per element, weights-shaped?) of a NumPy dtype name.
fn dtype(name: &[u8]) -> Option<(&'static str, u64, bool)> {
    Some(match name {
        b"float32" => ("f32", 4, true),
        b"float16" => ("f16", 2, true),
        b"bfloat16" => ("bf16", 2, true),
        b"float64" => ("f64", 8, true),
        b"int8" => ("i8", 1, true),
        b"float8_e4m3fn" | b"float8_e5m2" => ("f8", 1, true),
        b"uint8" => ("u8", 1, false),
        b"bool" => ("bool", 1, false),
        b"int16" | b"uint16" => ("i16", 2, false),
        b"int32" | b"uint32" => ("i32", 4, false),
        b"int64" | b"uint64" => ("i64", 8, false),
        _ => return None,
    })
}

fn be(c: &mut Cursor<'_>, n: usize) -> PResult<u64> {
    Ok(c.take(n)?
        .iter()
        .fold(0u64, |v, b| (v << 8) | u64::from(*b)))
}

/// A msgpack string's bytes.
fn str_of<'a>(c: &mut Cursor<'a>) -> PResult<&'a [u8]> {
    let n = match c.u8()? {
        b @ 0xa0..=0xbf => u64::from(b & 0x1f),
        0xd9 => be(c, 1)?,
        0xda => be(c, 2)?,
        0xdb => be(c, 4)?,
        _ => return Err(Fail::Bad),
    };
    if n > 4096 {
        return Err(Fail::Bad);
    }
    c.take(n as usize)
}

/// A msgpack unsigned int (a shape dimension).
fn uint(c: &mut Cursor<'_>) -> PResult<u64> {
    match c.u8()? {
        b @ 0x00..=0x7f => Ok(u64::from(b)),
        0xcc => be(c, 1),
        0xcd => be(c, 2),
        0xce => be(c, 4),
        0xcf => be(c, 8),
        _ => Err(Fail::Bad),
    }
}

struct Walk {
    id: Identified,
    nodes: u32,
}

impl Walk {
    /// An ndarray extension's payload start: `[shape, dtype, bin]`.
    fn ndarray(&mut self, c: &mut Cursor<'_>, len: u64) -> PResult<()> {
        let start = c.pos();
        if c.u8()? != 0x93 {
            return Err(Fail::Bad);
        }
        let dims = match c.u8()? {
            b @ 0x90..=0x9f => b & 0x0f,
            _ => return Err(Fail::Bad),
        };
        let mut numel = 1u64;
        for _ in 0..dims {
            numel = numel.saturating_mul(uint(c)?);
        }
        let (name, size, weights) = dtype(str_of(c)?).ok_or(Fail::Bad)?;
        let n = match c.u8()? {
            0xc4 => be(c, 1)?,
            0xc5 => be(c, 2)?,
            0xc6 => be(c, 4)?,
            _ => return Err(Fail::Bad),
        };
        if n != numel.saturating_mul(size) || (c.pos() - start) as u64 + n != len {
            return Err(Fail::Bad);
        }
        self.id.tensors += 1;
        self.id.params = self.id.params.saturating_add(numel);
        self.id.dtypes.insert(name.to_string());
        if weights {
            self.id.kind = Kind::Weights;
        }
        c.skip(n)
    }

    fn value(&mut self, c: &mut Cursor<'_>, depth: u8) -> PResult<()> {
        self.nodes += 1;
        if depth > MAX_DEPTH || self.nodes > MAX_NODES {
            return Err(Fail::Bad);
        }
        let b = c.u8()?;
        let (map, n) = match b {
            0x80..=0x8f => (true, u64::from(b & 0x0f)),
            0xde => (true, be(c, 2)?),
            0xdf => (true, be(c, 4)?),
            0x90..=0x9f => (false, u64::from(b & 0x0f)),
            0xdc => (false, be(c, 2)?),
            0xdd => (false, be(c, 4)?),
            // nil, false, true, fixints
            0xc0 | 0xc2 | 0xc3 | 0x00..=0x7f | 0xe0..=0xff => return Ok(()),
            0xcc | 0xd0 => return c.skip(1),
            0xcd | 0xd1 => return c.skip(2),
            0xca | 0xce | 0xd2 => return c.skip(4),
            0xcb | 0xcf | 0xd3 => return c.skip(8),
            0xa0..=0xbf => return c.skip(u64::from(b & 0x1f)),
            0xd9 => {
                let n = be(c, 1)?;
                return c.skip(n);
            }
            0xda => {
                let n = be(c, 2)?;
                return c.skip(n);
            }
            0xdb => {
                let n = be(c, 4)?;
                return c.skip(n);
            }
            0xc4..=0xc9 | 0xd4..=0xd8 => {
                let len = match b {
                    0xc4 | 0xc7 => be(c, 1)?,
                    0xc5 | 0xc8 => be(c, 2)?,
                    0xc6 | 0xc9 => be(c, 4)?,
                    _ => 1 << (b - 0xd4),
                };
                if b <= 0xc6 {
                    return c.skip(len);
                }
                let ty = c.u8()? as i8;
                return if ty == EXT_NDARRAY {
                    self.ndarray(c, len)
                } else {
                    c.skip(len)
                };
            }
            _ => return Err(Fail::Bad),
        };
        if n > 1 << 20 {
            return Err(Fail::Bad);
        }
        for _ in 0..n {
            if map && !super::cursor::is_name(str_of(c)?) {
                return Err(Fail::Bad);
            }
            self.value(c, depth + 1)?;
        }
        Ok(())
    }
}

/// A Flax state at `buf[0]`: a map whose walk meets at least one ndarray.
pub(crate) fn parse(buf: &[u8]) -> PResult<Identified> {
    match buf.first() {
        Some(0x81..=0x8f | 0xde | 0xdf) => {}
        Some(_) => return Err(Fail::Bad),
        None => return Err(Fail::Short),
    }
    let mut w = Walk {
        id: Identified::new(WeightFormat::FlaxMsgpack, Kind::TensorData),
        nodes: 0,
    };
    let mut c = Cursor::new(buf, 0);
    match w.value(&mut c, 0) {
        Ok(()) if w.id.tensors > 0 => {
            w.id.declared_bytes = Some(c.pos() as u64);
            Ok(w.id)
        }
        Err(Fail::Short) if w.id.tensors > 0 => Ok(w.id),
        Err(Fail::Short) => Err(Fail::Short),
        _ => Err(Fail::Bad),
    }
}
