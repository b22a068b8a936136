//! TensorFlow Lite flatbuffer: root offset, `TFL3` identifier, Model table
//! (version must be 3), its subgraphs and the first subgraph's tensors
//! (shape, type, name), every offset bounds-checked.

use super::cursor::{Fail, PResult, is_name, le16, le32};
use super::{Identified, Kind};
use eve::WeightFormat;

struct Table<'a> {
    buf: &'a [u8],
    pos: usize,
    vt: usize,
    vt_len: usize,
}

impl<'a> Table<'a> {
    fn at(buf: &'a [u8], pos: usize) -> PResult<Self> {
        let soff = le32(buf, pos).ok_or(Fail::Short)? as i32;
        let vt = (pos as i64 - i64::from(soff)) as usize;
        let vt_len = le16(buf, vt).ok_or(Fail::Short)? as usize;
        if vt_len < 4 || !vt_len.is_multiple_of(2) || vt_len > 512 {
            return Err(Fail::Bad);
        }
        if vt.checked_add(vt_len).ok_or(Fail::Bad)? > buf.len() {
            return Err(Fail::Short);
        }
        Ok(Table {
            buf,
            pos,
            vt,
            vt_len,
        })
    }

    /// Absolute position of field `i`, if present.
    fn field(&self, i: usize) -> Option<usize> {
        let slot = 4 + 2 * i;
        if slot + 2 > self.vt_len {
            return None;
        }
        let off = le16(self.buf, self.vt + slot)? as usize;
        (off != 0).then_some(self.pos + off)
    }

    fn u32(&self, i: usize) -> PResult<Option<u32>> {
        match self.field(i) {
            None => Ok(None),
            Some(p) => le32(self.buf, p).map(Some).ok_or(Fail::Short),
        }
    }

    fn u8(&self, i: usize) -> PResult<Option<u8>> {
        match self.field(i) {
            None => Ok(None),
            Some(p) => self.buf.get(p).copied().map(Some).ok_or(Fail::Short),
        }
    }

    /// Follow the offset field `i`.
    fn target(&self, i: usize) -> PResult<Option<usize>> {
        match self.field(i) {
            None => Ok(None),
            Some(p) => {
                let rel = le32(self.buf, p).ok_or(Fail::Short)? as usize;
                Ok(Some(p.checked_add(rel).ok_or(Fail::Bad)?))
            }
        }
    }
}

/// (length, first element position) of a vector at `pos`.
fn vector(buf: &[u8], pos: usize) -> PResult<(usize, usize)> {
    let n = le32(buf, pos).ok_or(Fail::Short)? as usize;
    if n > 10_000_000 {
        return Err(Fail::Bad);
    }
    Ok((n, pos + 4))
}

fn ttype(t: u8) -> &'static str {
    match t {
        0 => "f32",
        1 => "f16",
        2 => "i32",
        3 => "u8",
        4 => "i64",
        9 => "i8",
        10 => "f64",
        7 => "i16",
        17 => "i4",
        18 => "bf16",
        _ => "other",
    }
}

pub(crate) fn parse(buf: &[u8]) -> PResult<Identified> {
    match buf.get(4..8) {
        Some(b"TFL3") => {}
        Some(_) => return Err(Fail::Bad),
        None => return Err(Fail::Short),
    }
    let root = le32(buf, 0).ok_or(Fail::Short)? as usize;
    if !(8..1 << 24).contains(&root) || !root.is_multiple_of(4) {
        return Err(Fail::Bad);
    }
    let model = Table::at(buf, root)?;
    if model.u32(0)? != Some(3) {
        return Err(Fail::Bad);
    }
    let mut id = Identified::new(WeightFormat::Tflite, Kind::Weights);
    if let Some(d) = model.target(3)? {
        let (n, p) = vector(buf, d)?;
        let s = buf.get(p..p + n.min(128)).ok_or(Fail::Short)?;
        if is_name(s) {
            id.model_name = Some(String::from_utf8_lossy(s).into_owned());
        }
    }
    let subs = model.target(2)?.ok_or(Fail::Bad)?;
    let (n_sub, first) = vector(buf, subs)?;
    if n_sub == 0 || n_sub > 10_000 {
        return Err(Fail::Bad);
    }
    let sg_pos = first + le32(buf, first).ok_or(Fail::Short)? as usize;
    let sg = Table::at(buf, sg_pos)?;
    let Some(tv) = sg.target(0)? else {
        return Ok(id);
    };
    let (n_t, tfirst) = vector(buf, tv)?;
    id.tensors = n_t as u64;
    for i in 0..n_t {
        let step = (|| -> PResult<()> {
            let slot = tfirst + 4 * i;
            let tp = slot + le32(buf, slot).ok_or(Fail::Short)? as usize;
            let t = Table::at(buf, tp)?;
            id.dtypes.insert(ttype(t.u8(1)?.unwrap_or(0)).to_string());
            if let Some(sp) = t.target(0)? {
                let (dims, d0) = vector(buf, sp)?;
                let mut numel = 1u64;
                for d in 0..dims.min(8) {
                    numel =
                        numel.saturating_mul(u64::from(le32(buf, d0 + 4 * d).ok_or(Fail::Short)?));
                }
                id.params = id.params.saturating_add(numel);
            }
            Ok(())
        })();
        match step {
            Ok(()) => {}
            Err(Fail::Short) => break,
            Err(e) => return Err(e),
        }
    }
    Ok(id)
}
