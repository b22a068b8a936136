//! GGML files before GGUF (llama.cpp until August 2023): magic `ggjt`
//! (versions 1–3, tensor data aligned to 32 bytes), `ggmf` (version 1) or
//! unversioned `ggml`, then the llama hyper-parameters (seven u32), the
//! vocabulary (length-prefixed tokens, with f32 scores in `ggjt`/`ggmf`)
//! and tensors (dims, name length, GGML type, dims, name, data). Reported
//! as format `gguf` (its successor) with variant `ggjt`/`ggmf`/`ggml`.

use super::cursor::{Cursor, Fail, PResult};
use super::gguf::ggml_type;
use super::{Identified, Kind};
use eve::WeightFormat;

/// Tensors walked at most.
const MAX_TENSORS: u64 = 100_000;

pub(crate) fn parse(buf: &[u8]) -> PResult<Identified> {
    let mut c = Cursor::new(buf, 0);
    let (variant, scored, aligned) = match c.u32()? {
        0x6767_6a74 => {
            let v = c.u32()?;
            if !(1..=3).contains(&v) {
                return Err(Fail::Bad);
            }
            ("ggjt", true, true)
        }
        0x6767_6d66 => {
            if c.u32()? != 1 {
                return Err(Fail::Bad);
            }
            ("ggmf", true, false)
        }
        0x6767_6d6c => ("ggml", false, false),
        _ => return Err(Fail::Bad),
    };
    let mut h = [0u32; 7];
    for v in &mut h {
        *v = c.u32()?;
    }
    let [n_vocab, n_embd, _n_mult, n_head, n_layer, n_rot, ftype] = h;
    let sane = (1..=1_000_000).contains(&n_vocab)
        && (1..=131_072).contains(&n_embd)
        && (1..=1024).contains(&n_head)
        && (1..=1024).contains(&n_layer)
        && n_rot <= n_embd
        && ftype <= 40;
    if !sane {
        return Err(Fail::Bad);
    }
    let mut id = Identified::new(WeightFormat::Gguf, Kind::Weights);
    id.detail = Some(variant);
    id.architecture = Some("llama".into());
    // The vocabulary: tokens of at most 1 KiB; a prefix that ends inside
    // it still confirms the file once 16 tokens have parsed.
    for i in 0..n_vocab {
        let r = (|| -> PResult<()> {
            let n = c.u32()?;
            if n > 1024 {
                return Err(Fail::Bad);
            }
            c.skip(u64::from(n))?;
            if scored {
                let s = f32::from_le_bytes(c.take(4)?.try_into().map_err(|_| Fail::Bad)?);
                if !s.is_finite() {
                    return Err(Fail::Bad);
                }
            }
            Ok(())
        })();
        match r {
            Ok(()) => {}
            Err(Fail::Short) if i >= 16 => return Ok(id),
            Err(e) => return Err(e),
        }
    }
    while id.tensors < MAX_TENSORS {
        let r = (|| -> PResult<()> {
            let dims = c.u32()?;
            let name_len = c.u32()?;
            let ty = c.u32()?;
            if !(1..=4).contains(&dims) || !(1..=512).contains(&name_len) {
                return Err(Fail::Bad);
            }
            let (tname, block_bytes, block_elems) = ggml_type(ty).ok_or(Fail::Bad)?;
            let mut numel = 1u64;
            for _ in 0..dims {
                numel = numel.saturating_mul(u64::from(c.u32()?));
            }
            c.skip(u64::from(name_len))?;
            if aligned {
                let pad = (32 - c.pos() % 32) % 32;
                c.skip(pad as u64)?;
            }
            id.tensors += 1;
            id.params = id.params.saturating_add(numel);
            id.dtypes.insert(tname.to_string());
            if block_elems > 0 {
                c.skip(numel.div_ceil(block_elems).saturating_mul(block_bytes))?;
            }
            Ok(())
        })();
        match r {
            Ok(()) => {}
            Err(Fail::Short) => break,
            Err(Fail::Bad) if id.tensors > 0 => break,
            Err(e) => return Err(e),
        }
        if c.remaining() == 0 {
            break;
        }
    }
    Ok(id)
}
