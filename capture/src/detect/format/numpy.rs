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

/// [`descr_info`], and the other element types arrays inside pickles
/// hold: objects (pickled, no raw bytes: size 0), records (`V<n>`:
/// scikit-learn's tree nodes), strings (`U<n>`, `S<n>`), complex numbers
/// and datetimes. Not weights.
pub(crate) fn element(d: &str) -> Option<(&'static str, u64, bool)> {
    if let Some(info) = descr_info(d) {
        return Some(info);
    }
    let code = d.trim_start_matches(['<', '>', '|', '=']);
    let (kind, rest) = code.split_at(code.find(|c: char| c.is_ascii_digit())?);
    let digits = rest.split('[').next()?;
    let n: u64 = digits.parse().ok()?;
    Some(match kind {
        "O" => ("object", 0, false),
        "V" => ("record", n, false),
        "U" => ("str", n.saturating_mul(4), false),
        "S" | "a" => ("bytes", n, false),
        "c" if n == 8 || n == 16 => ("complex", n, false),
        "M" | "m" if n == 8 => ("datetime", n, false),
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

/// Packages whose objects are trained models: a pickle that instantiates
/// one of their classes first is a pickled model even without NumPy
/// arrays (a CRF's model file as bytes, a booster's buffer).
const MODEL_PACKAGES: [&str; 19] = [
    "sklearn",
    "sklearn_crfsuite",
    "pycrfsuite",
    "xgboost",
    "lightgbm",
    "catboost",
    "gensim",
    "statsmodels",
    "hmmlearn",
    "imblearn",
    "nltk",
    "spacy",
    "fasttext",
    "keras",
    "tensorflow",
    "transformers",
    "sentence_transformers",
    "umap",
    "prophet",
];

/// A bare pickle (protocol 2–5) holding NumPy arrays. An object of a class
/// that is not NumPy's or the standard library's (`pickle.dump` of a
/// scikit-learn estimator) is format `pickle` with the class as
/// `model_name`, and so is one of a class of [`MODEL_PACKAGES`] without
/// arrays; plain containers of arrays (what `paddle.save` writes to a
/// `.pdparams`: a dict of layer name → array; `pickle.dump` of a dict of
/// weights) are reported as an `.npy` object array is: variant `pickle`.
/// Protocols 0 and 1 have no header: taken when the first opcode is a
/// `GLOBAL` of a dotted name.
pub(crate) fn parse_pickle(buf: &[u8]) -> PResult<Identified> {
    match buf {
        [0x80, 2..=5, ..] => {}
        [b'c', rest @ ..] => {
            let Some(n) = rest.iter().take(256).position(|b| *b == b'\n') else {
                return Err(if rest.len() < 256 {
                    Fail::Short
                } else {
                    Fail::Bad
                });
            };
            let module = &rest[..n];
            let ident = |b: &u8| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'.';
            if module.is_empty() || !module.iter().all(ident) || module[0].is_ascii_digit() {
                return Err(Fail::Bad);
            }
        }
        [0x80] | [] => return Err(Fail::Short),
        _ => return Err(Fail::Bad),
    }
    let (s, end) = super::pickle::walk(buf)?;
    let class = s.first_class.clone().filter(|c| !c.starts_with("torch"));
    let model = class.as_deref().is_some_and(|c| {
        let top = c.split('.').next().unwrap_or(c);
        MODEL_PACKAGES.contains(&top)
    });
    let mut id = match arrays_of(&s) {
        Ok(id) => id,
        Err(_) if model => Identified::new(WeightFormat::Pickle, Kind::Weights),
        Err(e) => return Err(e),
    };
    if let Some(class) = class {
        id.format = WeightFormat::Pickle;
        id.detail = None;
        id.model_name = Some(class);
        if s.complete {
            id.declared_bytes = Some(end as u64);
        }
    }
    Ok(id)
}

/// An object array (`allow_pickle`): the pickle after the header.
fn object_array(pickle_bytes: &[u8]) -> PResult<Identified> {
    arrays_of(&super::pickle::walk(pickle_bytes)?.0)
}

/// A walked pickle that rebuilt NumPy arrays (a dict of layer weights
/// saved with `np.save`), without running it: `npy`, variant `pickle`,
/// with the arrays' dtypes and elements; weights when any array is float.
fn arrays_of(s: &super::pickle::Summary) -> PResult<Identified> {
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
    let mut note = |code: &str| {
        let (name, _, weights) = element(code)?;
        id.dtypes.insert(name.to_string());
        if weights {
            id.kind = Kind::Weights;
        }
        Some(())
    };
    // Arrays whose dtype was read; the dtypes constructed otherwise.
    for (code, _) in &s.arrays {
        note(code);
    }
    if s.arrays.is_empty() {
        for code in &s.np_dtypes {
            note(code);
        }
    }
    id.params = s.arrays.iter().fold(0u64, |a, (_, n)| a.saturating_add(*n));
    Ok(id)
}
