//! Archives of model directories: zip and tar listings (member names, and the
//! first model member's own header when it is in view), and gzip/zstd
//! compressed tar whose first `DECOMPRESS_LIMIT` decompressed bytes name the
//! members. Zip is also where `torch.save` files, `.npz` and `.keras` live.

use super::cursor::{Cursor, Fail, is_name};
use super::names::is_model_member;
use super::{Identified, Kind, Verdict, identify_file_at, numpy, pickle, torch};
use eve::WeightFormat;
use std::io::Read;

/// Decompressed bytes examined for a compressed tar.
const DECOMPRESS_LIMIT: usize = 1 << 20;
/// Model member names kept as evidence.
const MAX_MEMBERS: usize = 8;

struct Member {
    name: String,
    data: usize,
    size: u64,
    stored: bool,
}

/// Walk zip local headers from `at`; stops at the prefix end, a data
/// descriptor without sizes, or the central directory.
fn zip_members(buf: &[u8], at: usize) -> (Vec<Member>, bool) {
    let mut out = Vec::new();
    let mut c = Cursor::new(buf, at);
    let mut short = false;
    while out.len() < 10_000 {
        let r = (|| -> Result<Option<Member>, Fail> {
            let sig = c.u32()?;
            if sig != 0x0403_4b50 {
                return Ok(None);
            }
            let _ver = c.u16()?;
            let flags = c.u16()?;
            let method = c.u16()?;
            c.skip(8)?;
            let mut csize = u64::from(c.u32()?);
            let mut usize_ = u64::from(c.u32()?);
            let nlen = c.u16()? as usize;
            let xlen = c.u16()? as usize;
            let name = c.take(nlen)?;
            let extra = c.take(xlen)?;
            if !is_name(name) {
                return Err(Fail::Bad);
            }
            if csize == 0xffff_ffff || usize_ == 0xffff_ffff {
                // Zip64 extended information extra field.
                let mut x = Cursor::new(extra, 0);
                while x.remaining() >= 4 {
                    let (id, len) = (x.u16()?, x.u16()?);
                    let body = x.take(len as usize)?;
                    if id == 1 && body.len() >= 16 {
                        let mut b = Cursor::new(body, 0);
                        usize_ = b.u64()?;
                        csize = b.u64()?;
                    }
                }
            }
            let m = Member {
                name: String::from_utf8_lossy(name).into_owned(),
                data: c.pos(),
                size: usize_,
                stored: method == 0,
            };
            if flags & 8 != 0 && csize == 0 {
                return Err(Fail::Short);
            }
            c.skip(csize)?;
            Ok(Some(m))
        })();
        match r {
            Ok(Some(m)) => out.push(m),
            Ok(None) => break,
            Err(Fail::Short) => {
                short = true;
                break;
            }
            Err(Fail::Bad) => break,
        }
        if short {
            break;
        }
    }
    (out, short)
}

/// Re-read the header of the member cut off by the prefix end (its data
/// runs past the buffer), so it can still be named.
fn last_partial(buf: &[u8], members: &[Member], at: usize) -> Option<Member> {
    let start = match members.last() {
        Some(m) => m.data.checked_add(usize::try_from(m.size).ok()?)?,
        None => at,
    };
    let mut c = Cursor::new(buf, start);
    if c.u32().ok()? != 0x0403_4b50 {
        return None;
    }
    c.skip(2 + 2).ok()?;
    let method = c.u16().ok()?;
    c.skip(8 + 4).ok()?;
    let size = u64::from(c.u32().ok()?);
    let nlen = c.u16().ok()? as usize;
    let xlen = c.u16().ok()? as usize;
    let name = c.take(nlen).ok()?;
    c.skip(xlen as u64).ok()?;
    is_name(name).then(|| Member {
        name: String::from_utf8_lossy(name).into_owned(),
        data: c.pos(),
        size,
        stored: method == 0,
    })
}

pub(crate) fn zip_at(buf: &[u8], at: usize, complete: bool) -> Verdict {
    let (mut members, short) = zip_members(buf, at);
    if short && let Some(m) = last_partial(buf, &members, at) {
        members.push(m);
    }
    if members.is_empty() {
        return if short && !complete {
            Verdict::NeedMore
        } else {
            Verdict::No
        };
    }
    // torch.save: `<root>/data.pkl` (stored) first, storages in `<root>/data/N`.
    if let Some(pkl) = members
        .iter()
        .find(|m| m.name.ends_with("/data.pkl") && m.stored)
    {
        let end = pkl.data.saturating_add(pkl.size as usize).min(buf.len());
        if let Some(bytes) = buf.get(pkl.data..end)
            && let Ok((s, _)) = pickle::walk(bytes)
        {
            match torch::from_summary(&s, WeightFormat::PytorchZip) {
                Ok(mut id) => {
                    id.offset = at as u64;
                    id.members = members
                        .iter()
                        .take(MAX_MEMBERS)
                        .map(|m| m.name.clone())
                        .collect();
                    return Verdict::Match(id);
                }
                Err(Fail::Short) if !complete => return Verdict::NeedMore,
                Err(_) => {}
            }
        }
    }
    // np.savez: every member an .npy.
    if members.iter().all(|m| m.name.ends_with(".npy")) {
        let first = &members[0];
        let mut id = Identified::new(WeightFormat::Npz, Kind::TensorData);
        id.tensors = members.len() as u64;
        id.offset = at as u64;
        if first.stored
            && let Ok(inner) = numpy::parse_npy(buf.get(first.data..).unwrap_or(&[]))
        {
            id.kind = inner.kind;
            id.dtypes = inner.dtypes;
            id.params = inner.params;
        } else {
            // Compressed (savez_compressed): names decide.
            id.kind = Kind::Weights;
        }
        return Verdict::Match(id);
    }
    let names: Vec<&str> = members.iter().map(|m| m.name.as_str()).collect();
    let keras = names.contains(&"config.json") && names.iter().any(|n| n.ends_with(".weights.h5"));
    let model: Vec<&Member> = members
        .iter()
        .filter(|m| is_model_member(&m.name))
        .collect();
    if model.is_empty() && !keras {
        return if short && !complete {
            Verdict::NeedMore
        } else {
            Verdict::No
        };
    }
    let mut id = Identified::new(WeightFormat::Zip, Kind::ModelArchive);
    id.offset = at as u64;
    if keras {
        id.detail = Some("keras");
    }
    id.members = model
        .iter()
        .take(MAX_MEMBERS)
        .map(|m| m.name.clone())
        .collect();
    if let Some(m) = model.first().filter(|m| m.stored)
        && let Verdict::Match(inner) = identify_file_at(buf, m.data)
    {
        id.inner = Some(Box::new(inner));
    }
    Verdict::Match(id)
}

/// Parse octal (or GNU base-256) tar numbers.
fn tar_number(f: &[u8]) -> Option<u64> {
    if f.first().is_some_and(|b| b & 0x80 != 0) {
        let mut v = 0u64;
        for b in &f[1..] {
            v = v.checked_mul(256)?.checked_add(u64::from(*b))?;
        }
        return Some(v);
    }
    let s = std::str::from_utf8(f).ok()?;
    let s = s.trim_matches(|c: char| c == '\0' || c == ' ');
    if s.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(s, 8).ok()
}

fn tar_header_ok(h: &[u8]) -> bool {
    let Some(sum) = tar_number(&h[148..156]) else {
        return false;
    };
    let calc: u64 = h
        .iter()
        .enumerate()
        .map(|(i, b)| {
            if (148..156).contains(&i) {
                32
            } else {
                u64::from(*b)
            }
        })
        .sum();
    calc == sum
}

fn cstr(b: &[u8]) -> &[u8] {
    let n = b.iter().position(|c| *c == 0).unwrap_or(b.len());
    &b[..n]
}

pub(crate) fn tar_at(buf: &[u8], at: usize, complete: bool) -> Verdict {
    let mut pos = at;
    let mut names = Vec::new();
    let mut first_model_data = None;
    let mut short = false;
    let mut long_name: Option<String> = None;
    while names.len() < 10_000 {
        let Some(h) = buf.get(pos..pos + 512) else {
            short = true;
            break;
        };
        if h.iter().all(|b| *b == 0) || &h[257..262] != b"ustar" || !tar_header_ok(h) {
            break;
        }
        let Some(size) = tar_number(&h[124..136]) else {
            break;
        };
        let data = pos + 512;
        let name = match long_name.take() {
            Some(n) => n,
            None => {
                let prefix = cstr(&h[345..500]);
                let base = cstr(&h[..100]);
                let mut n = String::from_utf8_lossy(prefix).into_owned();
                if !n.is_empty() {
                    n.push('/');
                }
                n.push_str(&String::from_utf8_lossy(base));
                n
            }
        };
        match h[156] {
            b'L' => {
                let end = data.saturating_add(size as usize).min(buf.len());
                long_name = buf
                    .get(data..end)
                    .map(|b| String::from_utf8_lossy(cstr(b)).into_owned());
            }
            b'0' | 0 => {
                if is_model_member(&name) && first_model_data.is_none() {
                    first_model_data = Some(data);
                }
                names.push(name);
            }
            _ => names.push(name),
        }
        let Some(next) = size
            .div_ceil(512)
            .checked_mul(512)
            .and_then(|s| usize::try_from(s).ok())
            .and_then(|s| data.checked_add(s))
        else {
            break;
        };
        pos = next;
    }
    if names.is_empty() {
        return if short && !complete {
            Verdict::NeedMore
        } else {
            Verdict::No
        };
    }
    let model: Vec<String> = names
        .iter()
        .filter(|n| is_model_member(n))
        .take(MAX_MEMBERS)
        .cloned()
        .collect();
    if model.is_empty() {
        return if short && !complete {
            Verdict::NeedMore
        } else {
            Verdict::No
        };
    }
    let mut id = Identified::new(WeightFormat::Tar, Kind::ModelArchive);
    id.offset = at as u64;
    id.members = model;
    if let Some(d) = first_model_data
        && let Verdict::Match(inner) = identify_file_at(buf, d)
    {
        id.inner = Some(Box::new(inner));
    }
    Verdict::Match(id)
}

/// Compression of a `.tar.gz` / `.tar.zst`.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Codec {
    /// gzip (RFC 1952).
    Gzip,
    /// Zstandard.
    Zstd,
}

fn decompress_prefix(buf: &[u8], codec: Codec) -> Vec<u8> {
    let mut out = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    let mut reader: Box<dyn Read> = match codec {
        Codec::Gzip => Box::new(flate2::read::GzDecoder::new(buf)),
        Codec::Zstd => match zstd::stream::read::Decoder::with_buffer(buf) {
            Ok(d) => Box::new(d),
            Err(_) => return out,
        },
    };
    while out.len() < DECOMPRESS_LIMIT {
        match reader.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&chunk[..n.min(DECOMPRESS_LIMIT - out.len())]),
        }
    }
    out
}

pub(crate) fn compressed(buf: &[u8], codec: Codec, complete: bool) -> Verdict {
    let plain = decompress_prefix(buf, codec);
    if plain.len() < 512 {
        return if complete {
            Verdict::No
        } else {
            Verdict::NeedMore
        };
    }
    let full = complete || plain.len() >= DECOMPRESS_LIMIT;
    let v = if plain.get(257..262) == Some(b"ustar") {
        tar_at(&plain, 0, full)
    } else {
        match identify_file_at(&plain, 0) {
            Verdict::NeedMore if full => Verdict::No,
            v => v,
        }
    };
    match v {
        Verdict::Match(mut id) => {
            id.detail = Some(match codec {
                Codec::Gzip => "gzip",
                Codec::Zstd => "zstd",
            });
            Verdict::Match(id)
        }
        other => other,
    }
}
