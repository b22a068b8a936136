//! Archives of model directories: zip and tar listings (member names, and the
//! first model member's own header when it is in view); compressed tars are
//! decompressed by `compressed.rs`. Zip is also where `torch.save` files,
//! `.npz` and `.keras` live.

use super::cursor::{Cursor, Fail, is_name};
use super::names::is_model_member;
use super::{Identified, Kind, Verdict, identify, identify_file_at, inflate, numpy, pickle, torch};
use eve::WeightFormat;
use std::borrow::Cow;

/// Output bytes one streamed deflated member may inflate to while its end
/// is searched for.
const INFLATE_LIMIT: u64 = 8 << 20;
/// Inflation work (output bytes) one zip walk may spend finding the ends
/// of streamed members; past it the listing stops as if the prefix ended.
const INFLATE_BUDGET: u64 = 16 << 20;
/// Bytes of a (deflated) `data.pkl` walked.
const PICKLE_LIMIT: usize = 1 << 20;
/// Bytes of a deflated model member inflated to parse its header.
const INNER_LIMIT: usize = 1 << 20;
/// Model member names kept as evidence.
const MAX_MEMBERS: usize = 8;
/// Members in view whose own bytes are identified (a wheel's model files
/// need not be named like model files: `.pkl`, `.jit`, `.hdf5`, `.bin`).
const MAX_IDENTIFIED: usize = 32;
/// Bytes of each such member (inflated when deflated) parsed.
const MEMBER_LIMIT: usize = 256 << 10;
/// Inflation output one zip listing may spend identifying members.
const MEMBER_BUDGET: u64 = 4 << 20;
/// Extensions of members never parsed for a format (code, text, images,
/// office XML): they cost inflation and hold no weights.
const NOT_MODELS: [&str; 30] = [
    "py", "pyi", "pyc", "pyx", "pxd", "c", "h", "cpp", "hpp", "js", "ts", "css", "html", "md",
    "rst", "txt", "xml", "rels", "json", "yaml", "yml", "toml", "cfg", "ini", "csv", "png", "jpg",
    "jpeg", "gif", "svg",
];

thread_local! {
    /// Zips being listed on this thread, nested (a zip member that is a
    /// zip is listed too, but not deeper).
    static DEPTH: std::cell::Cell<u8> = const { std::cell::Cell::new(0) };
}

struct Member {
    name: String,
    /// Offset of the member's (possibly compressed) data in the buffer.
    data: usize,
    /// Uncompressed size.
    size: u64,
    /// Compressed size (the bytes the member occupies).
    csize: u64,
    stored: bool,
    /// Deflated (method 8).
    deflated: bool,
    /// A data descriptor follows the data (flag bit 3).
    descriptor: bool,
}

/// Where a streamed member (general-purpose flag bit 3: sizes in a data
/// descriptor after the data, zeros in the local header, as PyTorch's
/// writer emits them) ends: `(compressed, uncompressed)` sizes.
/// Stored data: the first `PK\x07\x08` descriptor whose compressed size
/// equals its distance from the data start. Deflated data: the end of the
/// deflate stream, found by inflating (bounded by [`INFLATE_LIMIT`]).
/// `None`: the end is not in the buffer. The third value is the inflation
/// work done (output bytes), charged to the walk's budget.
fn streamed_end(buf: &[u8], data: usize, deflated: bool) -> Option<(u64, u64, u64)> {
    let rest = buf.get(data..)?;
    if deflated {
        let r = inflate::raw(rest, 0, INFLATE_LIMIT);
        return r
            .ended
            .then_some((r.consumed as u64, r.produced, r.produced));
    }
    for at in memchr::memmem::find_iter(rest, b"PK\x07\x08").take(4096) {
        let mut c = Cursor::new(rest, at + 8);
        let (Ok(csize), Ok(usize_)) = (c.u32(), c.u32()) else {
            return None;
        };
        if u64::from(csize) == at as u64 && csize == usize_ {
            return Some((at as u64, at as u64, 0));
        }
        // Zip64 descriptor: 8-byte sizes.
        let mut c = Cursor::new(rest, at + 8);
        if let (Ok(cs), Ok(us)) = (c.u64(), c.u64())
            && cs == at as u64
            && cs == us
        {
            return Some((cs, us, 0));
        }
    }
    None
}

/// Walk zip local headers from `at`; stops at the prefix end, a data
/// descriptor without sizes, or the central directory.
fn zip_members(buf: &[u8], at: usize) -> (Vec<Member>, bool) {
    let mut out = Vec::new();
    let inflated = &mut 0u64;
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
            let data = c.pos();
            let descriptor = flags & 8 != 0;
            if descriptor && csize == 0 {
                if *inflated > INFLATE_BUDGET {
                    return Err(Fail::Short);
                }
                let (cs, us, work) = streamed_end(buf, data, method == 8).ok_or(Fail::Short)?;
                *inflated += work;
                csize = cs;
                usize_ = us;
            }
            let m = Member {
                name: String::from_utf8_lossy(name).into_owned(),
                data,
                size: usize_,
                csize,
                stored: method == 0,
                deflated: method == 8,
                descriptor,
            };
            let next = next_header(buf, &m).ok_or(Fail::Short)?;
            c = Cursor::new(buf, next);
            if next > buf.len() {
                return Err(Fail::Short);
            }
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
        Some(m) => next_header(buf, m)?,
        None => at,
    };
    let mut c = Cursor::new(buf, start);
    if c.u32().ok()? != 0x0403_4b50 {
        return None;
    }
    c.skip(2).ok()?;
    let flags = c.u16().ok()?;
    let method = c.u16().ok()?;
    c.skip(8 + 4).ok()?;
    let mut size = u64::from(c.u32().ok()?);
    let nlen = c.u16().ok()? as usize;
    let xlen = c.u16().ok()? as usize;
    let name = c.take(nlen).ok()?;
    c.skip(xlen as u64).ok()?;
    if flags & 8 != 0 && size == 0 {
        // Streamed: the data runs at least to the end of the view.
        size = c.remaining() as u64;
    }
    is_name(name).then(|| Member {
        name: String::from_utf8_lossy(name).into_owned(),
        data: c.pos(),
        size,
        csize: size,
        stored: method == 0,
        deflated: method == 8,
        descriptor: false,
    })
}

/// Offset of the local header after member `m` (past its data descriptor:
/// optional signature, crc-32, two sizes of 4 or, in zip64, 8 bytes).
fn next_header(buf: &[u8], m: &Member) -> Option<usize> {
    let end = m.data.checked_add(usize::try_from(m.csize).ok()?)?;
    if !m.descriptor {
        return Some(end);
    }
    let (sig, at) = if buf.get(end..end + 4) == Some(b"PK\x07\x08") {
        (4, end + 8)
    } else {
        (0, end + 4)
    };
    let small = Cursor::new(buf, at).u32().ok().map(u64::from) == Some(m.csize & 0xffff_ffff);
    Some(end + sig + 4 + if small { 8 } else { 16 })
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
    if let Some(v) = torch_zip(buf, at, &members, complete) {
        return v;
    }
    // np.savez: every member an .npy.
    if members.iter().all(|m| m.name.ends_with(".npy")) {
        let first = &members[0];
        let mut id = Identified::new(WeightFormat::Npz, Kind::TensorData);
        id.tensors = members.len() as u64;
        id.offset = at as u64;
        if let Ok(inner) = numpy::parse_npy(&member_bytes(buf, first, 64 * 1024)) {
            id.kind = inner.kind;
            id.dtypes = inner.dtypes;
            id.params = inner.params;
        } else {
            // Header not in view: names decide.
            id.kind = Kind::Weights;
        }
        return Verdict::Match(id);
    }
    let names: Vec<&str> = members.iter().map(|m| m.name.as_str()).collect();
    let keras = names.contains(&"config.json") && names.iter().any(|n| n.ends_with(".weights.h5"));
    let identified = identify_members(buf, &members);
    let model: Vec<&Member> = members
        .iter()
        .filter(|m| is_model_member(&m.name) || identified.iter().any(|(n, ..)| *n == m.name))
        .collect();
    let dir_kind = directory_kind(&names);
    if model.is_empty() && !keras && dir_kind.is_none() {
        return if short && !complete {
            Verdict::NeedMore
        } else {
            Verdict::No
        };
    }
    let mut id = Identified::new(WeightFormat::Zip, Kind::ModelArchive);
    id.offset = at as u64;
    id.detail = if keras { Some("keras") } else { dir_kind };
    id.member_formats = identified;
    id.partial = short;
    id.members = model
        .iter()
        .take(MAX_MEMBERS)
        .map(|m| m.name.clone())
        .collect();
    // The first model member (of the first few) whose own header parses.
    id.inner = model
        .iter()
        .take(MAX_MEMBERS)
        .find_map(|m| inner_file(buf, m))
        .map(Box::new);
    Verdict::Match(id)
}

/// The members in view (the first [`MAX_IDENTIFIED`]) whose own first
/// bytes a format recognises as weights or a model archive, whatever their
/// names: stored data read in place, deflated data inflated (at most
/// [`MEMBER_LIMIT`] bytes each, [`MEMBER_BUDGET`] in all), a member cut by
/// the prefix's end parsed as far as it goes.
fn identify_members(
    buf: &[u8],
    members: &[Member],
) -> Vec<(String, WeightFormat, Option<&'static str>)> {
    let mut out = Vec::new();
    let depth = DEPTH.with(|d| d.get());
    if depth >= 2 {
        return out;
    }
    DEPTH.with(|d| d.set(depth + 1));
    let mut spent = 0u64;
    for m in members.iter().take(MAX_IDENTIFIED) {
        let ext = m.name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
        if m.size == 0
            || !(m.stored || m.deflated)
            || m.name.ends_with('/')
            || ext.is_some_and(|e| NOT_MODELS.contains(&e.as_str()))
        {
            continue;
        }
        if m.deflated {
            if spent >= MEMBER_BUDGET {
                break;
            }
            spent += m.size.min(MEMBER_LIMIT as u64);
        }
        let bytes = member_bytes(buf, m, MEMBER_LIMIT);
        let complete = bytes.len() as u64 >= m.size;
        let v = match identify(&bytes, complete) {
            Verdict::Match(id) => Some(id),
            _ => None,
        };
        if let Some(id) = v.filter(|id| id.kind != Kind::TensorData) {
            out.push((m.name.clone(), id.format, id.detail));
        }
    }
    DEPTH.with(|d| d.set(depth));
    out
}

/// What kind of model directory an archive's member names show: a NeMo
/// checkpoint (`model_config.yaml` + `model_weights.ckpt`), a TensorFlow
/// SavedModel (`saved_model.pb`, `variables/`), a Core ML package
/// (`.mlpackage/`), PaddlePaddle (`.pdparams`).
fn directory_kind(names: &[&str]) -> Option<&'static str> {
    let base = |n: &&str| n.rsplit('/').next().unwrap_or(n).to_string();
    let bases: Vec<String> = names.iter().map(base).collect();
    let has = |b: &str| bases.iter().any(|x| x == b);
    if has("model_config.yaml") && bases.iter().any(|b| b.ends_with(".ckpt")) {
        Some("nemo")
    } else if has("saved_model.pb") {
        Some("saved_model")
    } else if names.iter().any(|n| n.contains(".mlpackage/")) {
        Some("mlpackage")
    } else if bases.iter().any(|b| b.ends_with(".pdparams")) {
        Some("paddle")
    } else {
        None
    }
}

/// A member's own format, when its header is in view (a deflated member is
/// inflated, bounded, and marked `deflated` unless it has its own variant).
fn inner_file(buf: &[u8], m: &Member) -> Option<Identified> {
    if m.deflated {
        match identify_file_at(&member_bytes(buf, m, INNER_LIMIT), 0) {
            Verdict::Match(mut i) => {
                i.detail = i.detail.or(Some("deflated"));
                Some(i)
            }
            _ => None,
        }
    } else if m.stored {
        match identify_file_at(buf, m.data) {
            Verdict::Match(i) => Some(i),
            _ => None,
        }
    } else {
        None
    }
}

/// A member's bytes as far as they are in view: stored data borrowed,
/// deflated data inflated (bounded by `keep` output bytes).
fn member_bytes<'a>(buf: &'a [u8], m: &Member, keep: usize) -> Cow<'a, [u8]> {
    let end = usize::try_from(m.csize)
        .ok()
        .and_then(|n| m.data.checked_add(n))
        .unwrap_or(usize::MAX)
        .min(buf.len());
    let raw = buf.get(m.data..end).unwrap_or(&[]);
    if m.deflated {
        Cow::Owned(inflate::raw(raw, keep, keep as u64).out)
    } else {
        Cow::Borrowed(&raw[..raw.len().min(keep)])
    }
}

/// `<root>/data/<n>` (or `<root>/tensors/<n>` in TorchScript archives of
/// torch 1.0–1.3): a storage of PyTorch's zip layout.
fn is_storage(name: &str) -> bool {
    let mut parts = name.rsplit('/');
    matches!(
        (parts.next(), parts.next(), parts.next()),
        (Some(n), Some("data" | "tensors"), Some(_))
            if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())
    )
}

/// PyTorch's zip layout: `torch.save` (1.6 on) and TorchScript archives
/// (`torch.jit.save`, every serialization version: `data.pkl`,
/// `constants.pkl`, `code/`, `data/`, `version`; torch 1.0–1.3's
/// `model.json`, `tensors/`, `attributes.pkl`). `<root>/data.pkl`, stored
/// or deflated, is walked when in view; otherwise (TorchScript writes the
/// storages first, so a large model's `data.pkl` lies past the prefix) the
/// storages `<root>/data/<n>` identify it, by their data aligned to 64
/// bytes as PyTorch's writer places it, and their first in view is typed by
/// tensor statistics. `code/` or `constants.pkl` make the variant
/// `torchscript`. `None`: not this layout.
fn torch_zip(buf: &[u8], at: usize, members: &[Member], complete: bool) -> Option<Verdict> {
    let under_root = |m: &Member| m.name.split_once('/').map(|(_, r)| r.to_string());
    // `torch.save` writes `data.pkl` first; `torch.jit.save` writes the
    // storages first and its records (`data.pkl`, `code/`, `constants.pkl`)
    // after them.
    let script = members.first().is_some_and(|m| is_storage(&m.name))
        || members.iter().filter_map(under_root).any(|r| {
            r.starts_with("code/")
                || r == "constants.pkl"
                || r == "model.json"
                || r == "attributes.pkl"
                || r.ends_with(".debug_pkl")
        });
    let marked = members
        .iter()
        .filter_map(under_root)
        .any(|r| r == "version" || r == "byteorder" || r == ".data/version");
    let storages: Vec<&Member> = members.iter().filter(|m| is_storage(&m.name)).collect();
    let pkl = members
        .iter()
        .find(|m| under_root(m).as_deref() == Some("data.pkl"));
    let mut found = None;
    if let Some(p) = pkl
        && let Ok((s, _)) = pickle::walk(&member_bytes(buf, p, PICKLE_LIMIT))
    {
        let cut = p.data.saturating_add(p.csize as usize) > buf.len();
        match torch::from_summary(&s, WeightFormat::PytorchZip) {
            Ok(id) => found = Some(id),
            Err(Fail::Short) if cut && !complete => return Some(Verdict::NeedMore),
            Err(_) => {}
        }
    }
    if found.is_none() {
        let aligned = storages.iter().all(|m| m.stored && m.data % 64 == 0);
        if storages.is_empty() || !aligned || (storages.len() < 2 && !marked && !script) {
            return None;
        }
        let mut id = Identified::new(WeightFormat::PytorchZip, Kind::Weights);
        id.detail = Some("storages");
        id.tensors = storages.len() as u64;
        if let Some(d) = storages.iter().find_map(|m| {
            let end = m.data.saturating_add(m.size as usize).min(buf.len());
            super::super::stats::classify(buf.get(m.data..end)?)
        }) {
            id.dtypes.insert(d.name().to_string());
        }
        found = Some(id);
    }
    let mut id = found?;
    if script {
        id.detail = Some("torchscript");
    }
    id.offset = at as u64;
    id.members = members
        .iter()
        .filter(|m| !is_storage(&m.name))
        .take(MAX_MEMBERS)
        .map(|m| m.name.clone())
        .collect();
    Some(Verdict::Match(id))
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
    // torch.save before 0.1.10: a tar of `sys_info`, `pickle`, `tensors`, `storages`.
    if ["pickle", "tensors", "storages"]
        .iter()
        .all(|l| names.iter().any(|n| n == l))
    {
        let mut id = Identified::new(WeightFormat::PytorchPickle, Kind::Weights);
        id.detail = Some("legacy_tar");
        id.offset = at as u64;
        id.members = names.iter().take(MAX_MEMBERS).cloned().collect();
        return Verdict::Match(id);
    }
    let model: Vec<String> = names
        .iter()
        .filter(|n| is_model_member(n))
        .take(MAX_MEMBERS)
        .cloned()
        .collect();
    let all: Vec<&str> = names.iter().map(String::as_str).collect();
    let dir_kind = directory_kind(&all);
    if model.is_empty() && dir_kind.is_none() {
        return if short && !complete {
            Verdict::NeedMore
        } else {
            Verdict::No
        };
    }
    let mut id = Identified::new(WeightFormat::Tar, Kind::ModelArchive);
    id.offset = at as u64;
    id.detail = dir_kind;
    id.members = model;
    if let Some(d) = first_model_data {
        let inner = match identify_file_at(buf, d) {
            Verdict::Match(i) => Some(i),
            // A zip member (a `.nemo`'s `model_weights.ckpt` is a torch zip).
            _ if buf.get(d..d + 4) == Some(b"PK\x03\x04") => match zip_at(buf, d, complete) {
                Verdict::Match(i) => Some(i),
                _ => None,
            },
            _ => None,
        };
        id.inner = inner.map(Box::new);
    }
    Verdict::Match(id)
}
