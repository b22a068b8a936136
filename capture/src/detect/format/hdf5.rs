//! HDF5 (Keras `.h5`, `model.weights.h5`): the superblock (versions 0–3) is
//! parsed and checked (offset/length sizes, base address, end-of-file
//! address); what the datasets are is judged from the link names in the
//! prefix (local heaps / link messages): Keras and PyTorch-to-HDF5 weight
//! names (`kernel`, `bias`, `vars`, `model_weights`, `*.weight`, …) make it
//! weights, otherwise it is generic tensor data (HDF5 is common in science).

use super::cursor::{Cursor, Fail, PResult};
use super::{Identified, Kind};
use aho_corasick::AhoCorasick;
use eve::WeightFormat;
use std::sync::OnceLock;

const SIG: &[u8] = b"\x89HDF\r\n\x1a\n";

const WEIGHT_NAMES: [&str; 12] = [
    "kernel",
    "bias",
    "model_weights",
    "vars",
    "layer_names",
    "weight_names",
    "gamma",
    "moving_mean",
    ".weight",
    "embeddings",
    "self_attn",
    "q_proj",
];

fn names() -> &'static AhoCorasick {
    static AC: OnceLock<AhoCorasick> = OnceLock::new();
    AC.get_or_init(|| AhoCorasick::new(WEIGHT_NAMES).expect("static patterns"))
}

pub(crate) fn parse(buf: &[u8]) -> PResult<Identified> {
    let mut c = Cursor::new(buf, 0);
    if c.take(8)? != SIG {
        return Err(Fail::Bad);
    }
    let version = c.u8()?;
    let (so, sl, eof) = match version {
        0 | 1 => {
            let _fs = c.u8()?;
            let _root = c.u8()?;
            let _r = c.u8()?;
            let _shared = c.u8()?;
            let so = c.u8()?;
            let sl = c.u8()?;
            let _r2 = c.u8()?;
            let leaf_k = c.u16()?;
            let internal_k = c.u16()?;
            if leaf_k == 0 || internal_k == 0 {
                return Err(Fail::Bad);
            }
            c.skip(4)?;
            if version == 1 {
                c.skip(4)?;
            }
            if so != 8 {
                // Only 8-byte offsets are read further (the universal case).
                return valid_sizes(so, sl).and(Err(Fail::Bad));
            }
            let base = c.u64()?;
            let _free = c.u64()?;
            let eof = c.u64()?;
            if base != 0 {
                return Err(Fail::Bad);
            }
            (so, sl, eof)
        }
        2 | 3 => {
            let so = c.u8()?;
            let sl = c.u8()?;
            let _flags = c.u8()?;
            if so != 8 {
                return valid_sizes(so, sl).and(Err(Fail::Bad));
            }
            let base = c.u64()?;
            let _ext = c.u64()?;
            let eof = c.u64()?;
            if base != 0 {
                return Err(Fail::Bad);
            }
            (so, sl, eof)
        }
        _ => return Err(Fail::Bad),
    };
    valid_sizes(so, sl)?;
    if eof < 96 {
        return Err(Fail::Bad);
    }
    let weighty = names().find_iter(buf).take(1000).count();
    let kind = if weighty >= 2 {
        Kind::Weights
    } else {
        Kind::TensorData
    };
    let mut id = Identified::new(WeightFormat::Hdf5, kind);
    id.declared_bytes = Some(eof);
    // Object headers are not walked, so no tensor count or dtypes.
    Ok(id)
}

fn valid_sizes(so: u8, sl: u8) -> PResult<()> {
    if matches!(so, 2 | 4 | 8 | 16) && matches!(sl, 2 | 4 | 8 | 16) {
        Ok(())
    } else {
        Err(Fail::Bad)
    }
}
