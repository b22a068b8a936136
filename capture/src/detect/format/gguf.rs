//! GGUF (llama.cpp): magic, version 1–3, tensor and KV counts, typed KV
//! metadata, tensor infos. The tokenizer arrays can make the KV section
//! larger than the scanned prefix; the file is still confirmed once the
//! header and the first KV pairs parse, with the evidence seen so far.

use super::cursor::{Cursor, Fail, PResult, is_name};
use super::{Identified, Kind};
use eve::WeightFormat;

/// (name, block bytes, block elements) of GGML types by id.
pub(crate) fn ggml_type(t: u32) -> Option<(&'static str, u64, u64)> {
    Some(match t {
        0 => ("f32", 4, 1),
        1 => ("f16", 2, 1),
        2 => ("q4_0", 18, 32),
        3 => ("q4_1", 20, 32),
        6 => ("q5_0", 22, 32),
        7 => ("q5_1", 24, 32),
        8 => ("q8_0", 34, 32),
        9 => ("q8_1", 36, 32),
        10 => ("q2_k", 84, 256),
        11 => ("q3_k", 110, 256),
        12 => ("q4_k", 144, 256),
        13 => ("q5_k", 176, 256),
        14 => ("q6_k", 210, 256),
        15 => ("q8_k", 292, 256),
        16..=23 => ("iq", 0, 256),
        24 => ("i8", 1, 1),
        25 => ("i16", 2, 1),
        26 => ("i32", 4, 1),
        27 => ("i64", 8, 1),
        28 => ("f64", 8, 1),
        29 => ("iq1_m", 0, 256),
        30 => ("bf16", 2, 1),
        34 | 35 | 39 => ("tq", 0, 256),
        _ => return None,
    })
}

fn string<'a>(c: &mut Cursor<'a>, max: u64) -> PResult<&'a [u8]> {
    let n = c.u64()?;
    if n > max {
        return Err(Fail::Bad);
    }
    c.take(n as usize)
}

/// Skip (or, for strings, return) one value of GGUF type `ty`.
fn value<'a>(c: &mut Cursor<'a>, ty: u32, depth: u8) -> PResult<Option<&'a [u8]>> {
    match ty {
        0 | 1 | 7 => c.skip(1)?,
        2 | 3 => c.skip(2)?,
        4..=6 => c.skip(4)?,
        10..=12 => c.skip(8)?,
        8 => return Ok(Some(string(c, 1 << 24)?)),
        9 if depth == 0 => {
            let inner = c.u32()?;
            let n = c.u64()?;
            if n > 1 << 28 {
                return Err(Fail::Bad);
            }
            let fixed = match inner {
                0 | 1 | 7 => Some(1),
                2 | 3 => Some(2),
                4..=6 => Some(4),
                10..=12 => Some(8),
                _ => None,
            };
            match fixed {
                Some(w) => c.skip(n * w)?,
                None => {
                    for _ in 0..n {
                        value(c, inner, 1)?;
                    }
                }
            }
        }
        _ => return Err(Fail::Bad),
    }
    Ok(None)
}

pub(crate) fn parse(buf: &[u8]) -> PResult<Identified> {
    let mut c = Cursor::new(buf, 0);
    if c.take(4)? != b"GGUF" {
        return Err(Fail::Bad);
    }
    let version = c.u32()?;
    if !(2..=3).contains(&version) {
        return Err(Fail::Bad);
    }
    let n_tensors = c.u64()?;
    let n_kv = c.u64()?;
    if n_tensors > 1_000_000 || n_kv > 100_000 || n_kv == 0 && n_tensors == 0 {
        return Err(Fail::Bad);
    }
    let mut id = Identified::new(WeightFormat::Gguf, Kind::Weights);
    id.tensors = n_tensors;
    if n_tensors == 0 {
        // A tokenizer vocabulary without tensors (llama.cpp ships these).
        id.detail = Some("vocab_only");
    }
    let mut alignment = 32u64;
    let mut kv_ok = 0;
    for _ in 0..n_kv {
        let step = (|| -> PResult<()> {
            let key = string(&mut c, 65_535)?;
            if !is_name(key) {
                return Err(Fail::Bad);
            }
            let ty = c.u32()?;
            let pos = c.pos();
            let v = value(&mut c, ty, 0)?;
            match (key, v) {
                (b"general.architecture", Some(s)) => {
                    id.architecture = Some(String::from_utf8_lossy(&s[..s.len().min(64)]).into())
                }
                (b"general.name", Some(s)) => {
                    id.model_name = Some(String::from_utf8_lossy(&s[..s.len().min(128)]).into())
                }
                (b"general.alignment", None) if ty == 4 => {
                    alignment = u64::from(super::cursor::le32(buf, pos).unwrap_or(32)).max(1)
                }
                _ => {}
            }
            Ok(())
        })();
        match step {
            Ok(()) => kv_ok += 1,
            // Header and some KV pairs valid, the rest beyond the prefix.
            Err(Fail::Short) if kv_ok >= 1 => return Ok(id),
            Err(e) => return Err(e),
        }
    }
    let mut data_end = 0u64;
    let mut params = 0u64;
    for _ in 0..n_tensors {
        let step = (|| -> PResult<(u64, u64)> {
            let name = string(&mut c, 65_535)?;
            if !is_name(name) {
                return Err(Fail::Bad);
            }
            let dims = c.u32()?;
            if dims > 8 {
                return Err(Fail::Bad);
            }
            let mut numel = 1u64;
            for _ in 0..dims {
                numel = numel.saturating_mul(c.u64()?);
            }
            let ty = c.u32()?;
            let (tname, bsize, belems) = ggml_type(ty).ok_or(Fail::Bad)?;
            id.dtypes.insert(tname.to_string());
            let off = c.u64()?;
            Ok((
                numel,
                off.saturating_add((numel / belems).saturating_mul(bsize)),
            ))
        })();
        match step {
            Ok((n, end)) => {
                params = params.saturating_add(n);
                data_end = data_end.max(end);
            }
            Err(Fail::Short) => {
                id.params = params;
                return Ok(id);
            }
            Err(e) => return Err(e),
        }
    }
    id.params = params;
    let data_start = (c.pos() as u64).div_ceil(alignment) * alignment;
    id.declared_bytes = Some(data_start.saturating_add(data_end));
    Ok(id)
}
