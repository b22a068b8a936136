//! HDF5 (Keras `.h5`, `model.weights.h5`): the superblock (versions 0–3) is
//! parsed and checked (offset/length sizes, base address, end-of-file
//! address); what the datasets are is judged from the link names in the
//! prefix (local heaps / link messages): Keras and PyTorch-to-HDF5 weight
//! names (`kernel`, `bias`, `vars`, `model_weights`, `*.weight`, …) make it
//! weights, otherwise it is generic tensor data (HDF5 is common in science).
//!
//! Datasets are counted and typed by walking, within the prefix only, the
//! old-style group structure h5py and Keras write by default (object header
//! v1 → symbol-table message → v1 B-tree "TREE" → symbol nodes "SNOD" →
//! each member's object header: datatype and dataspace messages), nested
//! groups included. Every address is bounds-checked against the prefix and
//! the walk is bounded (depth, nodes, visited set), so a hostile file costs
//! at most a few thousand small reads. Version-2 object headers ("OHDR") and
//! new-style groups (link messages, fractal heaps) are not walked: those
//! files are still recognised, without a dataset count.

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
    let (so, sl, eof, root) = match version {
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
            // Driver info, then the root group's symbol table entry.
            let _driver = c.u64()?;
            let _name = c.u64()?;
            (so, sl, eof, c.u64().ok())
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
            (so, sl, eof, c.u64().ok())
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
    if let Some(root) = root {
        let mut w = Walk {
            buf,
            visited: Vec::new(),
            id: &mut id,
        };
        w.object(root, 0);
    }
    Ok(id)
}

/// Deepest group nesting followed.
const MAX_DEPTH: u32 = 16;
/// Object headers and tree nodes visited at most.
const MAX_NODES: usize = 4096;
const UNDEF: u64 = u64::MAX;

/// A bounded walk of old-style groups within the prefix.
struct Walk<'a, 'b> {
    buf: &'a [u8],
    visited: Vec<u64>,
    id: &'b mut Identified,
}

impl Walk<'_, '_> {
    fn at(&self, addr: u64, len: usize) -> Option<&[u8]> {
        let start = usize::try_from(addr).ok()?;
        self.buf.get(start..start.checked_add(len)?)
    }

    fn u64_at(&self, addr: u64) -> Option<u64> {
        Some(u64::from_le_bytes(self.at(addr, 8)?.try_into().ok()?))
    }

    /// First visit of `addr` within the node budget.
    fn first_visit(&mut self, addr: u64) -> bool {
        if addr == UNDEF || self.visited.len() >= MAX_NODES || self.visited.contains(&addr) {
            return false;
        }
        self.visited.push(addr);
        true
    }

    /// An object header (version 1): a group is walked, a dataset counted.
    fn object(&mut self, addr: u64, depth: u32) {
        if depth > MAX_DEPTH || !self.first_visit(addr) {
            return;
        }
        let Some(h) = self.at(addr, 16) else { return };
        if h[0] != 1 {
            return;
        }
        let nmsgs = u16::from_le_bytes([h[2], h[3]]) as usize;
        let size = u32::from_le_bytes([h[8], h[9], h[10], h[11]]) as usize;
        let Some(body) = self.at(addr + 16, size) else {
            return;
        };
        let (mut dtype, mut numel, mut stab) = (None, None, None);
        let mut pos = 0usize;
        for _ in 0..nmsgs.min(256) {
            let Some(m) = body.get(pos..pos + 8) else {
                break;
            };
            let ty = u16::from_le_bytes([m[0], m[1]]);
            let len = u16::from_le_bytes([m[2], m[3]]) as usize;
            let Some(b) = body.get(pos + 8..pos + 8 + len) else {
                break;
            };
            match ty {
                0x0001 => numel = dataspace(b),
                0x0003 => dtype = datatype(b),
                0x0011 if b.len() >= 16 => {
                    stab = Some(u64::from_le_bytes(b[..8].try_into().unwrap_or([0xff; 8])))
                }
                _ => {}
            }
            pos += 8 + len;
        }
        if let Some(tree) = stab {
            self.tree(tree, depth + 1);
        } else if let Some(dt) = dtype {
            self.id.tensors += 1;
            self.id.params = self.id.params.saturating_add(numel.unwrap_or(0));
            self.id.dtypes.insert(dt.to_string());
        }
    }

    /// A group B-tree node (version 1, type 0): children are nodes or SNODs.
    fn tree(&mut self, addr: u64, depth: u32) {
        if depth > MAX_DEPTH + 8 || !self.first_visit(addr) {
            return;
        }
        let Some(h) = self.at(addr, 24) else { return };
        if &h[..4] != b"TREE" || h[4] != 0 {
            return;
        }
        let level = h[5];
        let entries = u16::from_le_bytes([h[6], h[7]]) as u64;
        // Keys (8 bytes: heap offsets) and children (8 bytes) alternate.
        for i in 0..entries.min(1024) {
            let Some(child) = self.u64_at(addr + 24 + 8 + 16 * i) else {
                return;
            };
            if level > 0 {
                self.tree(child, depth + 1);
            } else {
                self.symbols(child, depth);
            }
        }
    }

    /// A symbol node: entries of 40 bytes, object header address second.
    fn symbols(&mut self, addr: u64, depth: u32) {
        if !self.first_visit(addr) {
            return;
        }
        let Some(h) = self.at(addr, 8) else { return };
        if &h[..4] != b"SNOD" {
            return;
        }
        let n = u16::from_le_bytes([h[6], h[7]]) as u64;
        for i in 0..n.min(1024) {
            let Some(obj) = self.u64_at(addr + 8 + 40 * i + 8) else {
                return;
            };
            self.object(obj, depth);
        }
    }
}

/// Elements of a dataspace message (versions 1 and 2, 8-byte lengths).
fn dataspace(b: &[u8]) -> Option<u64> {
    let (version, rank) = (*b.first()?, *b.get(1)? as usize);
    let start = match version {
        1 => 8,
        2 => 4,
        _ => return None,
    };
    (0..rank).try_fold(1u64, |acc, i| {
        let d = b.get(start + 8 * i..start + 8 * i + 8)?;
        Some(acc.saturating_mul(u64::from_le_bytes(d.try_into().ok()?)))
    })
}

/// A datatype message's element type, named as the other formats name them.
fn datatype(b: &[u8]) -> Option<&'static str> {
    let class = *b.first()? & 0x0f;
    let size = u32::from_le_bytes(b.get(4..8)?.try_into().ok()?);
    match (class, size) {
        (1, 2) => {
            // Exponent size tells IEEE half from bfloat16.
            let esize = *b.get(13)?;
            Some(if esize == 8 { "bf16" } else { "f16" })
        }
        (1, 1) => Some("f8"),
        (1, 4) => Some("f32"),
        (1, 8) => Some("f64"),
        (0, n) => {
            let signed = b.get(1)? & 0x08 != 0;
            Some(match (n, signed) {
                (1, true) => "i8",
                (1, false) => "u8",
                (2, true) => "i16",
                (2, false) => "u16",
                (4, true) => "i32",
                (4, false) => "u32",
                (8, true) => "i64",
                _ => "u64",
            })
        }
        _ => Some("other"),
    }
}

fn valid_sizes(so: u8, sl: u8) -> PResult<()> {
    if matches!(so, 2 | 4 | 8 | 16) && matches!(sl, 2 | 4 | 8 | 16) {
        Ok(())
    } else {
        Err(Fail::Bad)
    }
}
