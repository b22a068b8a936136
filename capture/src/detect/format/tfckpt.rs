//! TensorFlow checkpoint index (`model.ckpt.index`): a LevelDB SSTable whose
//! first data-block entry has the empty key and a BundleHeaderProto value
//! (num_shards, endianness, version), followed by prefix-compressed entries
//! mapping tensor names to BundleEntryProtos (dtype, shape, shard, offset,
//! size). The header entry and at least one tensor entry must parse.

use super::cursor::{Cursor, Fail, PResult, is_name};
use super::{Identified, Kind};
use eve::WeightFormat;

fn tf_dtype(t: u64) -> &'static str {
    match t {
        1 => "f32",
        2 => "f64",
        3 => "i32",
        4 => "u8",
        6 => "i8",
        9 => "i64",
        14 => "bf16",
        19 => "f16",
        _ => "other",
    }
}

/// (dtype, numel, size) of a BundleEntryProto.
fn entry(b: &[u8]) -> PResult<(u64, u64, u64)> {
    let mut c = Cursor::new(b, 0);
    let (mut dt, mut numel, mut size) = (0, 1u64, 0);
    while c.remaining() > 0 {
        let k = c.varint()?;
        match (k >> 3, k & 7) {
            (1, 0) => dt = c.varint()?,
            (2, 2) => {
                let n = c.varint()?;
                let shape = c.take(n as usize)?;
                let mut s = Cursor::new(shape, 0);
                while s.remaining() > 0 {
                    if s.varint()? != 0x12 {
                        return Err(Fail::Bad);
                    }
                    let dn = s.varint()?;
                    let dim = s.take(dn as usize)?;
                    let mut d = Cursor::new(dim, 0);
                    while d.remaining() > 0 {
                        match d.varint()? {
                            0x08 => numel = numel.saturating_mul(d.varint()?),
                            0x12 => {
                                let l = d.varint()?;
                                d.skip(l)?;
                            }
                            _ => return Err(Fail::Bad),
                        }
                    }
                }
            }
            (3..=5, 0) => {
                let v = c.varint()?;
                if k >> 3 == 5 {
                    size = v;
                }
            }
            (6, 5) => c.skip(4)?,
            (7, 2) => {
                let n = c.varint()?;
                c.skip(n)?;
            }
            _ => return Err(Fail::Bad),
        }
    }
    if dt == 0 {
        return Err(Fail::Bad);
    }
    Ok((dt, numel, size))
}

pub(crate) fn parse_index(buf: &[u8]) -> PResult<Identified> {
    let mut c = Cursor::new(buf, 0);
    if c.varint()? != 0 || c.varint()? != 0 {
        return Err(Fail::Bad);
    }
    let vlen = c.varint()?;
    if vlen == 0 || vlen > 64 {
        return Err(Fail::Bad);
    }
    let header = c.take(vlen as usize)?;
    let mut h = Cursor::new(header, 0);
    let mut shards = 0;
    while h.remaining() > 0 {
        match h.varint()? {
            0x08 => shards = h.varint()?,
            0x10 => {
                if h.varint()? > 1 {
                    return Err(Fail::Bad);
                }
            }
            0x1a => {
                let n = h.varint()?;
                h.skip(n)?;
            }
            _ => return Err(Fail::Bad),
        }
    }
    if shards == 0 || shards > 100_000 {
        return Err(Fail::Bad);
    }
    let mut id = Identified::new(WeightFormat::TfCheckpoint, Kind::Weights);
    id.detail = Some("index");
    let mut key: Vec<u8> = Vec::new();
    let mut bytes = 0u64;
    loop {
        let step = (|| -> PResult<()> {
            let shared = c.varint()? as usize;
            let non_shared = c.varint()? as usize;
            let vlen = c.varint()? as usize;
            if shared > key.len() || non_shared > 4096 || vlen > 4096 {
                return Err(Fail::Bad);
            }
            key.truncate(shared);
            key.extend_from_slice(c.take(non_shared)?);
            if !is_name(&key) {
                return Err(Fail::Bad);
            }
            let (dt, numel, size) = entry(c.take(vlen)?)?;
            id.dtypes.insert(tf_dtype(dt).to_string());
            id.tensors += 1;
            id.params = id.params.saturating_add(numel);
            bytes = bytes.saturating_add(size);
            Ok(())
        })();
        match step {
            Ok(()) => {}
            // The restart array or the block's end: done if a tensor parsed.
            Err(_) if id.tensors >= 1 => break,
            Err(e) => return Err(e),
        }
    }
    // The index is small; what it describes is the size that matters.
    id.declared_bytes = Some(bytes);
    Ok(id)
}
