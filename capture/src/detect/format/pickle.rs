//! A bounded pickle opcode walker: enough of the pickle virtual machine
//! (protocols 0–5 opcodes `torch.save` and NumPy emit) to count the tensors
//! of a state dict and read each storage's type and element count from its
//! persistent id, without executing anything. Stack, memo and string sizes
//! are capped; unknown opcodes end the walk as "not a pickle".

use super::cursor::{Cursor, Fail, PResult};
use std::collections::HashMap;

#[derive(Clone, Debug)]
enum V {
    Int(i64),
    Str(String),
    Global(String),
    Tuple(Vec<V>),
    /// A dict's first [`MAX_DICT`] items (joblib's array wrapper state).
    Dict(Vec<(V, V)>),
    /// An object made by `NEWOBJ` of this class.
    Obj(String),
    /// `numpy.dtype(code)`.
    Dtype(String),
    /// An array made by `numpy…_reconstruct`, its shape and dtype still to
    /// come in its `BUILD` state.
    NdArray,
    Mark,
    Other,
}

/// What a walk found.
#[derive(Clone, Debug, Default)]
pub(crate) struct Summary {
    /// `_rebuild_tensor*` / `_rebuild_parameter` reductions.
    pub rebuilds: u64,
    /// (storage class, element count) of each persistent-id storage.
    pub storages: Vec<(String, u64)>,
    /// Globals from the `torch` package seen.
    pub torch_globals: u64,
    /// NumPy arrays rebuilt (`numpy…_reconstruct` or, protocol 5,
    /// `numpy…_frombuffer` reductions).
    pub ndarrays: u64,
    /// Those arrays' (NumPy dtype code, elements), when their shape and
    /// dtype were read (the first [`MAX_ARRAYS`]).
    pub arrays: Vec<(String, u64)>,
    /// NumPy dtype codes constructed (`numpy.dtype('f4', …)`).
    pub np_dtypes: Vec<String>,
    /// Arrays joblib wrote raw after a `NumpyArrayWrapper`: (NumPy dtype
    /// code, elements); their bytes are stepped over.
    pub joblib_arrays: Vec<(String, u64)>,
    /// The first class instantiated that is not NumPy's or joblib's (the
    /// estimator of a `joblib.dump`).
    pub first_class: Option<String>,
    /// `STOP` reached.
    pub complete: bool,
}

/// joblib's wrapper of an array whose bytes follow it in the stream.
const JOBLIB_WRAPPER: &str = "joblib.numpy_pickle.NumpyArrayWrapper";
/// Items of a dict kept (the wrapper state has six).
const MAX_DICT: usize = 16;
/// joblib aligns array data to 16 bytes; more padding is not joblib's.
const MAX_PADDING: u8 = 64;
/// Arrays whose dtype and size are kept.
const MAX_ARRAYS: usize = 4096;
/// Pickles nested in a pickle (joblib's object arrays) walked.
const MAX_DEPTH: u8 = 1;

/// Elements of a shape tuple.
fn numel(shape: &[V]) -> PResult<u64> {
    let mut n = 1u64;
    for d in shape {
        let V::Int(d) = d else {
            return Err(Fail::Bad);
        };
        n = n.saturating_mul(u64::try_from(*d).map_err(|_| Fail::Bad)?);
    }
    Ok(n)
}

/// Note an inline array (`_reconstruct` state or `_frombuffer` arguments).
fn inline_array(s: &mut Summary, code: &str, shape: &[V]) {
    if s.arrays.len() < MAX_ARRAYS
        && let Ok(n) = numel(shape)
    {
        s.arrays.push((code.to_string(), n));
    }
}

/// Step over the array bytes joblib writes after a wrapper's `BUILD`:
/// a padding-length byte and `0xff` padding when the state asks for
/// alignment, then elements × item size bytes.
fn joblib_array(c: &mut Cursor<'_>, state: &[(V, V)], s: &mut Summary, depth: u8) -> PResult<()> {
    let get = |k: &str| {
        state
            .iter()
            .find(|(key, _)| matches!(key, V::Str(x) if x == k))
            .map(|(_, v)| v)
    };
    let Some(V::Tuple(shape)) = get("shape") else {
        return Err(Fail::Bad);
    };
    let numel = numel(shape)?;
    let Some(V::Dtype(code)) = get("dtype") else {
        return Err(Fail::Bad);
    };
    let (name, size, _) = super::numpy::element(code).ok_or(Fail::Bad)?;
    if name == "object" {
        // An object array is not raw bytes: joblib pickles it (protocol 5,
        // 2 before joblib 1.5) right there, without padding, and reads it
        // back with a fresh unpickler. Walk that pickle and go on after its
        // `STOP`.
        if depth >= MAX_DEPTH {
            return Err(Fail::Bad);
        }
        let (inner, end) = walk_at(c.rest(), depth + 1)?;
        if !inner.complete {
            return Err(Fail::Short);
        }
        s.joblib_arrays.push((code.clone(), numel));
        return c.skip(end as u64);
    }
    if get("numpy_array_alignment_bytes").is_some() {
        let pad = c.u8()?;
        if pad > MAX_PADDING || c.take(usize::from(pad))?.iter().any(|b| *b != 0xff) {
            return Err(Fail::Bad);
        }
    }
    s.joblib_arrays.push((code.clone(), numel));
    c.skip(numel.saturating_mul(size))
}

const MAX_STACK: usize = 100_000;
const MAX_MEMO: usize = 1_000_000;
const MAX_STR: usize = 1 << 16;

fn line<'a>(c: &mut Cursor<'a>) -> PResult<&'a [u8]> {
    let start = c.pos();
    loop {
        if c.u8()? == b'\n' {
            break;
        }
        if c.pos() - start > 4096 {
            return Err(Fail::Bad);
        }
    }
    Ok(c.slice(start, c.pos() - 1))
}

/// A text string's line (`STRING`, `UNICODE`: protocol 0 writes a whole
/// bytes object as one escaped line, megabytes long): as long as the
/// buffer holds.
fn long_line<'a>(c: &mut Cursor<'a>) -> PResult<&'a [u8]> {
    let n = memchr::memchr(b'\n', c.rest()).ok_or(Fail::Short)?;
    let l = c.take(n + 1)?;
    Ok(&l[..n])
}

fn pop_mark(stack: &mut Vec<V>) -> PResult<Vec<V>> {
    let i = stack
        .iter()
        .rposition(|v| matches!(v, V::Mark))
        .ok_or(Fail::Bad)?;
    let items = stack.split_off(i + 1);
    stack.pop();
    Ok(items)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(&b[..b.len().min(MAX_STR)]).into_owned()
}

/// Walk one pickle starting at `buf[0]`. Returns the summary and the offset
/// just past `STOP` (or the prefix end, with `complete == false`).
pub(crate) fn walk(buf: &[u8]) -> PResult<(Summary, usize)> {
    walk_at(buf, 0)
}

/// [`walk`] of a pickle nested `depth` deep.
fn walk_at(buf: &[u8], depth: u8) -> PResult<(Summary, usize)> {
    let mut c = Cursor::new(buf, 0);
    let mut s = Summary::default();
    let mut stack: Vec<V> = Vec::new();
    let mut memo: HashMap<u32, V> = HashMap::new();
    let mut ops = 0u64;
    loop {
        let op = match c.u8() {
            Ok(op) => op,
            Err(Fail::Short) if ops > 0 => return Ok((s, c.pos())),
            Err(e) => return Err(e),
        };
        ops += 1;
        if stack.len() > MAX_STACK || memo.len() > MAX_MEMO {
            return Err(Fail::Bad);
        }
        let r: PResult<()> = (|| {
            match op {
                0x80 => {
                    if c.u8()? > 5 {
                        return Err(Fail::Bad);
                    }
                }
                0x95 => c.skip(8)?,
                b'c' => {
                    let m = text(line(&mut c)?);
                    let n = text(line(&mut c)?);
                    if m == "torch" || m.starts_with("torch.") {
                        s.torch_globals += 1;
                    }
                    stack.push(V::Global(format!("{m}.{n}")));
                }
                0x93 => {
                    let n = stack.pop().ok_or(Fail::Bad)?;
                    let m = stack.pop().ok_or(Fail::Bad)?;
                    let (V::Str(m), V::Str(n)) = (m, n) else {
                        return Err(Fail::Bad);
                    };
                    if m == "torch" || m.starts_with("torch.") {
                        s.torch_globals += 1;
                    }
                    stack.push(V::Global(format!("{m}.{n}")));
                }
                b'q' => {
                    let k = u32::from(c.u8()?);
                    memo.insert(k, stack.last().cloned().ok_or(Fail::Bad)?);
                }
                b'r' => {
                    let k = c.u32()?;
                    memo.insert(k, stack.last().cloned().ok_or(Fail::Bad)?);
                }
                0x94 => {
                    let k = memo.len() as u32;
                    memo.insert(k, stack.last().cloned().ok_or(Fail::Bad)?);
                }
                b'h' => {
                    let k = u32::from(c.u8()?);
                    stack.push(memo.get(&k).cloned().ok_or(Fail::Bad)?);
                }
                b'j' => {
                    let k = c.u32()?;
                    stack.push(memo.get(&k).cloned().ok_or(Fail::Bad)?);
                }
                b'(' => stack.push(V::Mark),
                b')' => stack.push(V::Tuple(Vec::new())),
                b't' => {
                    let items = pop_mark(&mut stack)?;
                    stack.push(V::Tuple(items));
                }
                0x85..=0x87 => {
                    let n = (op - 0x84) as usize;
                    if stack.len() < n {
                        return Err(Fail::Bad);
                    }
                    let items = stack.split_off(stack.len() - n);
                    stack.push(V::Tuple(items));
                }
                b'}' => stack.push(V::Dict(Vec::new())),
                b']' => stack.push(V::Other),
                b'a' => {
                    stack.pop().ok_or(Fail::Bad)?;
                }
                b's' => {
                    if stack.len() < 3 {
                        return Err(Fail::Bad);
                    }
                    let v = stack.pop().ok_or(Fail::Bad)?;
                    let k = stack.pop().ok_or(Fail::Bad)?;
                    if let Some(V::Dict(d)) = stack.last_mut()
                        && d.len() < MAX_DICT
                    {
                        d.push((k, v));
                    }
                }
                b'u' => {
                    let items = pop_mark(&mut stack)?;
                    if let Some(V::Dict(d)) = stack.last_mut() {
                        let mut it = items.into_iter();
                        while let (Some(k), Some(v)) = (it.next(), it.next()) {
                            if d.len() >= MAX_DICT {
                                break;
                            }
                            d.push((k, v));
                        }
                    }
                }
                b'e' => {
                    pop_mark(&mut stack)?;
                }
                b'J' => stack.push(V::Int(i64::from(c.u32()? as i32))),
                b'K' => stack.push(V::Int(i64::from(c.u8()?))),
                b'M' => stack.push(V::Int(i64::from(c.u16()?))),
                0x8a => {
                    let n = c.u8()? as usize;
                    let b = c.take(n)?;
                    let mut v = 0i64;
                    for (i, x) in b.iter().take(8).enumerate() {
                        v |= i64::from(*x) << (8 * i);
                    }
                    stack.push(V::Int(v));
                }
                b'X' => {
                    let n = c.u32()? as usize;
                    stack.push(V::Str(text(c.take(n)?)));
                }
                0x8c | b'U' | b'C' => {
                    let n = c.u8()? as usize;
                    stack.push(V::Str(text(c.take(n)?)));
                }
                b'T' | b'B' => {
                    let n = c.u32()? as usize;
                    c.take(n)?;
                    stack.push(V::Other);
                }
                0x8e => {
                    let n = c.u64()?;
                    c.skip(n)?;
                    stack.push(V::Other);
                }
                b'I' | b'L' => {
                    let l = line(&mut c)?;
                    let t = std::str::from_utf8(l).map_err(|_| Fail::Bad)?;
                    let t = t.trim_end_matches('L');
                    stack.push(t.parse().map(V::Int).unwrap_or(V::Other));
                }
                b'S' | b'V' => {
                    let l = long_line(&mut c)?;
                    stack.push(V::Str(text(l)));
                }
                b'p' => {
                    let l = line(&mut c)?;
                    let k = std::str::from_utf8(l)
                        .ok()
                        .and_then(|t| t.parse().ok())
                        .ok_or(Fail::Bad)?;
                    memo.insert(k, stack.last().cloned().ok_or(Fail::Bad)?);
                }
                b'g' => {
                    let l = line(&mut c)?;
                    let k: u32 = std::str::from_utf8(l)
                        .ok()
                        .and_then(|t| t.parse().ok())
                        .ok_or(Fail::Bad)?;
                    stack.push(memo.get(&k).cloned().ok_or(Fail::Bad)?);
                }
                b'G' => {
                    c.skip(8)?;
                    stack.push(V::Other);
                }
                b'N' | 0x88 | 0x89 => stack.push(V::Other),
                b'R' | 0x81 | 0x92 => {
                    if op == 0x92 {
                        // NEWOBJ_EX: the keyword arguments on top.
                        stack.pop().ok_or(Fail::Bad)?;
                    }
                    let args = stack.pop().ok_or(Fail::Bad)?;
                    let f = stack.pop().ok_or(Fail::Bad)?;
                    // Protocols 0 and 1 make objects with
                    // `copy_reg._reconstructor(cls, object, None)`.
                    if let (V::Global(g), V::Tuple(a)) = (&f, &args)
                        && matches!(
                            g.as_str(),
                            "copy_reg._reconstructor" | "copyreg._reconstructor"
                        )
                        && let Some(V::Global(class)) = a.first()
                    {
                        note_class(&mut s, class);
                        stack.push(V::Obj(class.clone()));
                        return Ok(());
                    }
                    if let V::Global(g) = &f {
                        note_class(&mut s, g);
                    }
                    if let V::Global(g) = f {
                        if op != b'R' {
                            stack.push(V::Obj(g));
                            return Ok(());
                        }
                        if g.contains("_rebuild_tensor") || g.contains("_rebuild_parameter") {
                            s.rebuilds += 1;
                        } else if g.starts_with("numpy") && g.ends_with("._reconstruct") {
                            s.ndarrays += 1;
                            stack.push(V::NdArray);
                            return Ok(());
                        } else if g.starts_with("numpy") && g.ends_with("._frombuffer") {
                            // Protocol 5: `_frombuffer(buffer, dtype, shape, order)`.
                            s.ndarrays += 1;
                            if let V::Tuple(a) = &args
                                && let [_, V::Dtype(code), V::Tuple(shape), ..] = a.as_slice()
                            {
                                inline_array(&mut s, code, shape);
                            }
                        } else if g == "numpy.dtype"
                            && let V::Tuple(a) = args
                            && let Some(V::Str(code)) = a.first()
                        {
                            if s.np_dtypes.len() < 64 {
                                s.np_dtypes.push(code.clone());
                            }
                            stack.push(V::Dtype(code.clone()));
                            return Ok(());
                        }
                    }
                    stack.push(V::Other);
                }
                b'b' => {
                    let state = stack.pop().ok_or(Fail::Bad)?;
                    match (stack.last(), &state) {
                        (Some(V::Obj(class)), V::Dict(d)) if class == JOBLIB_WRAPPER => {
                            joblib_array(&mut c, d, &mut s, depth)?;
                        }
                        // `ndarray.__setstate__((version, shape, dtype,
                        // fortran, data))`.
                        (Some(V::NdArray), V::Tuple(t)) => {
                            if let [V::Int(_), V::Tuple(shape), V::Dtype(code), ..] = t.as_slice() {
                                inline_array(&mut s, code, shape);
                            }
                        }
                        _ => {}
                    }
                }
                b'i' => {
                    // INST: `module\nname\n`, its arguments since the mark.
                    let m = text(line(&mut c)?);
                    let n = text(line(&mut c)?);
                    pop_mark(&mut stack)?;
                    let g = format!("{m}.{n}");
                    note_class(&mut s, &g);
                    stack.push(V::Obj(g));
                }
                b'o' => {
                    // OBJ: the class and its arguments since the mark.
                    let items = pop_mark(&mut stack)?;
                    match items.into_iter().next() {
                        Some(V::Global(g)) => {
                            note_class(&mut s, &g);
                            stack.push(V::Obj(g));
                        }
                        Some(_) => stack.push(V::Other),
                        None => return Err(Fail::Bad),
                    }
                }
                b'l' | 0x91 => {
                    pop_mark(&mut stack)?;
                    stack.push(V::Other);
                }
                b'd' => {
                    let items = pop_mark(&mut stack)?;
                    let mut d = Vec::new();
                    let mut it = items.into_iter();
                    while let (Some(k), Some(v)) = (it.next(), it.next()) {
                        if d.len() >= MAX_DICT {
                            break;
                        }
                        d.push((k, v));
                    }
                    stack.push(V::Dict(d));
                }
                0x90 => {
                    pop_mark(&mut stack)?;
                }
                0x8f | 0x97 => stack.push(V::Other),
                0x98 => {
                    stack.last().ok_or(Fail::Bad)?;
                }
                b'F' | b'P' => {
                    line(&mut c)?;
                    stack.push(V::Other);
                }
                0x82 => {
                    c.u8()?;
                    stack.push(V::Other);
                }
                0x83 => {
                    c.u16()?;
                    stack.push(V::Other);
                }
                0x84 => {
                    c.u32()?;
                    stack.push(V::Other);
                }
                0x8b => {
                    let n = c.u32()? as usize;
                    c.take(n)?;
                    stack.push(V::Other);
                }
                0x8d => {
                    let n = c.u64()?;
                    let n = usize::try_from(n).map_err(|_| Fail::Short)?;
                    stack.push(V::Str(text(c.take(n)?)));
                }
                0x96 => {
                    let n = c.u64()?;
                    c.skip(n)?;
                    stack.push(V::Other);
                }
                b'Q' => {
                    let pid = stack.pop().ok_or(Fail::Bad)?;
                    if let V::Tuple(items) = pid
                        && let [V::Str(kind), V::Global(ty), _key, _loc, V::Int(n), ..] =
                            items.as_slice()
                        && kind == "storage"
                    {
                        s.storages.push((ty.clone(), (*n).max(0) as u64));
                    }
                    stack.push(V::Other);
                }
                b'0' => {
                    stack.pop().ok_or(Fail::Bad)?;
                }
                b'1' => {
                    pop_mark(&mut stack)?;
                }
                b'2' => {
                    let t = stack.last().cloned().ok_or(Fail::Bad)?;
                    stack.push(t);
                }
                b'.' => {}
                _ => return Err(Fail::Bad),
            }
            Ok(())
        })();
        match r {
            Ok(()) => {}
            Err(Fail::Short) => return Ok((s, buf.len())),
            Err(e) => return Err(e),
        }
        if op == b'.' {
            s.complete = true;
            return Ok((s, c.pos()));
        }
    }
}

/// Remember the first class instantiated that is not NumPy's, joblib's or
/// the standard library's (the estimator of a dump).
fn note_class(s: &mut Summary, g: &str) {
    const PLUMBING: [&str; 8] = [
        "numpy",
        "joblib",
        "builtins",
        "__builtin__",
        "copyreg",
        "copy_reg",
        "_codecs",
        "collections",
    ];
    if s.first_class.is_none() && !PLUMBING.iter().any(|m| g.starts_with(&format!("{m}."))) {
        s.first_class = Some(g.to_string());
    }
}

/// Normalised dtype of a torch storage class (`torch.BFloat16Storage` → `bf16`).
pub(crate) fn storage_dtype(class: &str) -> (&'static str, u64) {
    let c = class.rsplit('.').next().unwrap_or(class);
    match c {
        "FloatStorage" => ("f32", 4),
        "HalfStorage" => ("f16", 2),
        "BFloat16Storage" => ("bf16", 2),
        "DoubleStorage" => ("f64", 8),
        "CharStorage" => ("i8", 1),
        "ByteStorage" => ("u8", 1),
        "ShortStorage" => ("i16", 2),
        "IntStorage" => ("i32", 4),
        "LongStorage" => ("i64", 8),
        "BoolStorage" => ("bool", 1),
        c if c.starts_with("Float8_e4m3") => ("f8_e4m3", 1),
        c if c.starts_with("Float8_e5m2") => ("f8_e5m2", 1),
        _ => ("other", 1),
    }
}
