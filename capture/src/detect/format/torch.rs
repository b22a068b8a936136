//! PyTorch `torch.save`: the legacy pickle stream (magic number
//! 0x1950a86a20f9469cfc6c, protocol version 1001, sys info, the object) and
//! the evidence both layouts share (a state-dict pickle whose tensors
//! reference storages by persistent id).

use super::cursor::{Fail, PResult};
use super::pickle::{self, Summary};
use super::{Identified, Kind};
use eve::WeightFormat;

const MAGIC: &[u8] = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.";
const VERSION: &[u8] = b"\x80\x02M\xe9\x03.";

/// Evidence from a state-dict pickle; `Bad` unless it rebuilds tensors.
pub(crate) fn from_summary(s: &Summary, format: WeightFormat) -> PResult<Identified> {
    if s.rebuilds == 0 && s.storages.is_empty() {
        return if s.complete {
            Err(Fail::Bad)
        } else {
            Err(Fail::Short)
        };
    }
    let mut id = Identified::new(format, Kind::Weights);
    id.tensors = s.rebuilds.max(s.storages.len() as u64);
    let mut bytes = 0u64;
    for (class, n) in &s.storages {
        let (d, size) = pickle::storage_dtype(class);
        id.dtypes.insert(d.to_string());
        id.params = id.params.saturating_add(*n);
        bytes = bytes.saturating_add(n.saturating_mul(size));
    }
    if s.complete && bytes > 0 {
        id.declared_bytes = Some(bytes);
    }
    Ok(id)
}

pub(crate) fn parse_legacy(buf: &[u8]) -> PResult<Identified> {
    let n = buf.len().min(MAGIC.len());
    if buf[..n] != MAGIC[..n] {
        return Err(Fail::Bad);
    }
    let rest = buf.get(MAGIC.len()..).ok_or(Fail::Short)?;
    let n = rest.len().min(VERSION.len());
    if rest[..n] != VERSION[..n] || n < VERSION.len() {
        return if rest[..n] == VERSION[..n] {
            Err(Fail::Short)
        } else {
            Err(Fail::Bad)
        };
    }
    let rest = &rest[VERSION.len()..];
    let (info, used) = pickle::walk(rest)?;
    if !info.complete {
        return Err(Fail::Short);
    }
    let (s, _) = pickle::walk(&rest[used..])?;
    let mut id = from_summary(&s, WeightFormat::PytorchPickle)?;
    id.detail = Some("legacy");
    if let Some(b) = id.declared_bytes {
        // Each storage is preceded by its u64 element count.
        id.declared_bytes =
            Some(b.saturating_add(8 * s.storages.len() as u64 + buf.len().min(used + 64) as u64));
    }
    Ok(id)
}
