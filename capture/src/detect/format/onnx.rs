//! ONNX ModelProto, parsed as protobuf (not guessed): top-level fields must
//! be ModelProto's with the right wire types, `ir_version` must come first
//! and be 1–20, then `graph` is descended into and its `initializer`
//! TensorProtos (dims, data_type, name, raw_data length) are read as far as
//! the prefix goes.

use super::cursor::{Cursor, Fail, PResult, is_name};
use super::{Identified, Kind};
use eve::WeightFormat;

fn dtype(t: u64) -> &'static str {
    match t {
        1 => "f32",
        2 => "u8",
        3 => "i8",
        5 => "i16",
        6 => "i32",
        7 => "i64",
        9 => "bool",
        10 => "f16",
        11 => "f64",
        16 => "bf16",
        17..=20 => "f8",
        21 | 22 => "i4",
        _ => "other",
    }
}

/// (field, wire type) of the next key.
pub(crate) fn key(c: &mut Cursor<'_>) -> PResult<(u64, u8)> {
    let k = c.varint()?;
    Ok((k >> 3, (k & 7) as u8))
}

pub(crate) fn skip_value(c: &mut Cursor<'_>, wire: u8) -> PResult<()> {
    match wire {
        0 => c.varint().map(|_| ()),
        1 => c.skip(8),
        2 => {
            let n = c.varint()?;
            c.skip(n)
        }
        5 => c.skip(4),
        _ => Err(Fail::Bad),
    }
}

/// One TensorProto in `b` (possibly cut short): (numel, dtype, named).
fn tensor(b: &[u8]) -> PResult<(u64, u64, bool)> {
    let mut c = Cursor::new(b, 0);
    let (mut numel, mut dt, mut named) = (1u64, 0u64, false);
    while c.remaining() > 0 {
        let (f, w) = key(&mut c)?;
        match (f, w) {
            (1, 0) => numel = numel.saturating_mul(c.varint()?),
            (1, 2) => {
                let n = c.varint()?;
                let end = c
                    .pos()
                    .saturating_add(usize::try_from(n).unwrap_or(usize::MAX));
                while c.pos() < end {
                    numel = numel.saturating_mul(c.varint()?);
                }
            }
            (2, 0) => dt = c.varint()?,
            (8, 2) => {
                let n = c.varint()?;
                named = is_name(c.take(n as usize)?);
            }
            (9, 2) => {
                // raw_data: its length is all we need; the bytes may run on.
                let _n = c.varint()?;
                return Ok((numel, dt, named));
            }
            (f, w) if f <= 20 => skip_value(&mut c, w)?,
            _ => return Err(Fail::Bad),
        }
    }
    Ok((numel, dt, named))
}

pub(crate) fn parse(buf: &[u8]) -> PResult<Identified> {
    let mut c = Cursor::new(buf, 0);
    let (f, w) = key(&mut c)?;
    if (f, w) != (1, 0) {
        return Err(Fail::Bad);
    }
    let ir = c.varint()?;
    if !(1..=20).contains(&ir) {
        return Err(Fail::Bad);
    }
    let mut id = Identified::new(WeightFormat::Onnx, Kind::Weights);
    loop {
        let (f, w) = key(&mut c)?;
        match (f, w) {
            (2..=4 | 6, 2) => {
                let n = c.varint()?;
                if n > 4096 {
                    return Err(Fail::Bad);
                }
                let s = c.take(n as usize)?;
                let s = std::str::from_utf8(s).map_err(|_| Fail::Bad)?;
                if f == 2 && !s.is_empty() {
                    id.architecture = Some(format!("producer {}", &s[..s.len().min(64)]));
                }
            }
            (5, 0) => {
                c.varint()?;
            }
            (7, 2) => {
                let n = c.varint()?;
                id.declared_bytes = Some((c.pos() as u64).saturating_add(n));
                return graph(&mut c, n, id);
            }
            (8 | 14 | 20 | 25, 2) => {
                let n = c.varint()?;
                c.skip(n)?;
            }
            _ => return Err(Fail::Bad),
        }
    }
}

/// Constant tensors of at least this many elements count as weights
/// (smaller ones are shapes, axes and scalars).
const MIN_CONSTANT: u64 = 16;
/// Subgraph nesting followed (`If`/`Loop` bodies).
const MAX_DEPTH: u8 = 4;

fn add_tensor(b: &[u8], id: &mut Identified) {
    if let Ok((numel, dt, _)) = tensor(b)
        && numel >= MIN_CONSTANT
    {
        id.tensors += 1;
        id.params = id.params.saturating_add(numel);
        if dt != 0 {
            id.dtypes.insert(dtype(dt).to_string());
        }
    }
}

/// Length-delimited fields `(field, bytes in view)` of a message, until it
/// ends or breaks.
fn fields(b: &[u8]) -> Vec<(u64, &[u8])> {
    let mut c = Cursor::new(b, 0);
    let mut out = Vec::new();
    while c.remaining() > 0 && out.len() < 100_000 {
        let Ok((f, w)) = key(&mut c) else { break };
        if w != 2 {
            if skip_value(&mut c, w).is_err() {
                break;
            }
            continue;
        }
        let Ok(n) = c.varint() else { break };
        let start = c.pos();
        let avail = c.remaining().min(usize::try_from(n).unwrap_or(usize::MAX));
        out.push((f, c.slice(start, start + avail)));
        if c.skip(n).is_err() {
            break;
        }
    }
    out
}

/// Tensors held by a NodeProto's attributes (`t`, `tensors`) and, down
/// to [`MAX_DEPTH`], by its subgraphs (`g`, `graphs`).
fn node_constants(node: &[u8], depth: u8, id: &mut Identified) {
    for (f, attr) in fields(node) {
        if f != 5 {
            continue;
        }
        for (af, v) in fields(attr) {
            match af {
                5 | 10 => add_tensor(v, id),
                6 | 11 if depth < MAX_DEPTH => {
                    for (gf, gv) in fields(v) {
                        match gf {
                            1 => node_constants(gv, depth + 1, id),
                            5 => add_tensor(gv, id),
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
    }
}

fn graph(c: &mut Cursor<'_>, len: u64, mut id: Identified) -> PResult<Identified> {
    let end = (c.pos() as u64).saturating_add(len);
    let mut fields = 0;
    while (c.pos() as u64) < end {
        let parsed: PResult<()> = (|| {
            let (f, w) = key(c)?;
            if w != 2 || !matches!(f, 1..=5 | 10..=16) {
                return Err(Fail::Bad);
            }
            let n = c.varint()?;
            let start = c.pos();
            if f == 1 {
                // A node: its `Constant` tensors (and subgraphs') are
                // weights too (exporters that fold initializers into
                // nodes); best effort, what is in view.
                let avail = c.remaining().min(n as usize);
                node_constants(c.slice(start, start + avail), 0, &mut id);
            }
            if f == 5 {
                let avail = c.remaining().min(n as usize);
                let (numel, dt, named) = tensor(c.slice(start, start + avail)).or_else(|e| {
                    if avail < n as usize {
                        Ok((0, 0, true))
                    } else {
                        Err(e)
                    }
                })?;
                if !named && avail == n as usize {
                    return Err(Fail::Bad);
                }
                id.tensors += 1;
                id.params = id.params.saturating_add(numel);
                if dt != 0 {
                    id.dtypes.insert(dtype(dt).to_string());
                }
            }
            c.skip(n)
        })();
        match parsed {
            Ok(()) => fields += 1,
            Err(Fail::Short) if fields >= 1 || id.tensors >= 1 => return Ok(id),
            Err(e) => return Err(e),
        }
    }
    if fields == 0 {
        return Err(Fail::Bad);
    }
    Ok(id)
}
