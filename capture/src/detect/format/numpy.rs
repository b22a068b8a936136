//! NumPy `.npy`: magic `\x93NUMPY`, version, header length, a Python dict
//! literal with `descr`, `fortran_order` and `shape`.
//!
//! Float and int8 arrays are weights-shaped (`weights_format`); other dtypes
//! (uint8 images, bool masks, int64 token ids, strings) are tensor data
//! (`tensor_data`, low severity).

use super::cursor::{Cursor, Fail, PResult};
use super::{Identified, Kind};
use eve::WeightFormat;

/// dtype name, bytes per element, weights-shaped?
pub(crate) fn descr_info(d: &str) -> Option<(&'static str, u64, bool)> {
    let code = d.trim_start_matches(['<', '>', '|', '=']);
    Some(match code {
        "f2" | "e" => ("f16", 2, true),
        "f4" | "f" => ("f32", 4, true),
        "f8" | "d" => ("f64", 8, true),
        "V2" => ("bf16", 2, true),
        "V1" => ("f8", 1, true),
        "i1" | "b" => ("i8", 1, true),
        "u1" | "B" => ("u8", 1, false),
        "?" | "b1" => ("bool", 1, false),
        "i2" | "u2" => ("i16", 2, false),
        "i4" | "u4" => ("i32", 4, false),
        "i8" | "u8" => ("i64", 8, false),
        _ => return None,
    })
}

fn after<'a>(h: &'a str, key: &str) -> Option<&'a str> {
    let i = h.find(key)?;
    Some(
        h[i + key.len()..]
            .trim_start()
            .strip_prefix(':')?
            .trim_start(),
    )
}

pub(crate) fn parse_npy(buf: &[u8]) -> PResult<Identified> {
    let mut c = Cursor::new(buf, 0);
    if c.take(6)? != b"\x93NUMPY" {
        return Err(Fail::Bad);
    }
    let major = c.u8()?;
    let _minor = c.u8()?;
    let hlen = match major {
        1 => u32::from(c.u16()?),
        2 | 3 => c.u32()?,
        _ => return Err(Fail::Bad),
    };
    if hlen > 1 << 20 {
        return Err(Fail::Bad);
    }
    let header = c.take(hlen as usize)?;
    let h = std::str::from_utf8(header).map_err(|_| Fail::Bad)?;
    if !h.trim_start().starts_with('{') {
        return Err(Fail::Bad);
    }
    let descr = after(h, "'descr'").ok_or(Fail::Bad)?;
    let q = descr.chars().next().ok_or(Fail::Bad)?;
    if q != '\'' && q != '"' {
        return Err(Fail::Bad);
    }
    let descr = descr[1..].split(q).next().ok_or(Fail::Bad)?;
    if matches!(descr, "|O" | "O") {
        return object_array(buf.get(c.pos()..).unwrap_or(&[]));
    }
    let (dtype, size, weights) = descr_info(descr).ok_or(Fail::Bad)?;
    let shape = after(h, "'shape'").ok_or(Fail::Bad)?;
    let shape = shape.strip_prefix('(').ok_or(Fail::Bad)?;
    let shape = shape.split(')').next().ok_or(Fail::Bad)?;
    let mut numel = 1u64;
    let mut dims = 0;
    for d in shape.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        numel = numel.saturating_mul(d.trim_end_matches('L').parse().map_err(|_| Fail::Bad)?);
        dims += 1;
    }
    let kind = if weights && dims >= 1 {
        Kind::Weights
    } else {
        Kind::TensorData
    };
    let mut id = Identified::new(WeightFormat::Npy, kind);
    id.dtypes.insert(dtype.to_string());
    id.tensors = 1;
    id.params = numel;
    id.declared_bytes = Some((c.pos() as u64).saturating_add(numel.saturating_mul(size)));
    Ok(id)
}

/// A bare pickle (protocol 2–5) of NumPy arrays: what `paddle.save` writes
/// to a `.pdparams` (a dict of layer name → array) and `pickle.dump` of a
/// dict of weights. Reported as an `.npy` object array is: variant `pickle`.
pub(crate) fn parse_pickle(buf: &[u8]) -> PResult<Identified> {
    match buf {
        [0x80, 2..=5, ..] => object_array(buf),
        [0x80] | [] => Err(Fail::Short),
        _ => Err(Fail::Bad),
    }
}

/// An object array (`allow_pickle`): the pickle after the header, walked
/// without running it, must rebuild NumPy arrays (a dict of layer weights
/// saved with `np.save`). Variant `pickle`; weights when any array is float.
fn object_array(pickle_bytes: &[u8]) -> PResult<Identified> {
    let (s, _) = super::pickle::walk(pickle_bytes)?;
    if s.ndarrays == 0 {
        return if s.complete {
            Err(Fail::Bad)
        } else {
            Err(Fail::Short)
        };
    }
    let mut id = Identified::new(WeightFormat::Npy, Kind::TensorData);
    id.detail = Some("pickle");
    id.tensors = s.ndarrays;
    for code in &s.np_dtypes {
        if let Some((name, _, weights)) = descr_info(code) {
            id.dtypes.insert(name.to_string());
            if weights {
                id.kind = Kind::Weights;
            }
        }
    }
    Ok(id)
}
