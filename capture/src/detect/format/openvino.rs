//! OpenVINO IR: the `.xml` graph (`<net name=… version="N">`, layers, edges)
//! whose `Const` layers name their weights in the companion `.bin` by
//! `element_type`, `shape`, `offset` and `size`. Read with `quick-xml` over
//! the prefix: the root element must be `net` with a name and an IR
//! version 2–11, and at least one layer must follow; `Const` layers are
//! counted as tensors as far as the prefix goes, and, once the whole graph
//! (`</net>`) is in view, the end of the last one in the `.bin` is the
//! declared size (the graph is judged by the weights it names, as a TF
//! `.index` is; a graph cut by the prefix declares none, as its last
//! constants may lie further). The `.bin` alone is raw
//! tensors (left to tensor statistics).

use super::cursor::{Fail, PResult};
use super::{Identified, Kind};
use eve::WeightFormat;
use quick_xml::events::{BytesStart, Event};

/// Events read at most (a 1 MiB prefix holds far fewer).
const MAX_EVENTS: u32 = 1 << 20;

fn attr(e: &BytesStart<'_>, key: &[u8]) -> Option<String> {
    e.attributes()
        .flatten()
        .find(|a| a.key.as_ref() == key)
        .map(|a| String::from_utf8_lossy(&a.value).into_owned())
}

fn dtype(t: &str) -> &'static str {
    match t {
        "f32" => "f32",
        "f16" => "f16",
        "bf16" => "bf16",
        "f64" => "f64",
        "i8" => "i8",
        "u8" => "u8",
        "i4" | "u4" | "nf4" => "i4",
        "u1" | "boolean" => "bool",
        "i16" | "u16" => "i16",
        "i32" | "u32" => "i32",
        "i64" | "u64" => "i64",
        "f8e4m3" | "f8e5m2" => "f8",
        _ => "other",
    }
}

/// An IR `.xml` at `buf[0]`.
pub(crate) fn parse(buf: &[u8]) -> PResult<Identified> {
    let text = buf.strip_prefix(b"\xef\xbb\xbf").unwrap_or(buf);
    let lead = text.trim_ascii_start();
    if !(lead.starts_with(b"<?xml") || lead.starts_with(b"<net") || lead.starts_with(b"<!--")) {
        return Err(if lead.is_empty() {
            Fail::Short
        } else {
            Fail::Bad
        });
    }
    let mut r = quick_xml::Reader::from_reader(text);
    let mut id: Option<Identified> = None;
    let mut layers = 0u32;
    let mut in_const = false;
    let mut closed = false;
    for _ in 0..MAX_EVENTS {
        let ev = match r.read_event() {
            Ok(ev) => ev,
            // The prefix ends mid-element, or the bytes are not XML.
            Err(_) => break,
        };
        let (e, empty) = match ev {
            Event::Eof => break,
            Event::Start(e) => (e, false),
            Event::Empty(e) => (e, true),
            Event::End(e) => {
                match e.name().as_ref() {
                    b"layer" => in_const = false,
                    b"net" => closed = true,
                    _ => {}
                }
                continue;
            }
            Event::Decl(_) | Event::Comment(_) | Event::Text(_) | Event::PI(_) => continue,
            _ if id.is_none() => return Err(Fail::Bad),
            _ => continue,
        };
        let Some(net) = id.as_mut() else {
            // The root element.
            let version: u32 = attr(&e, b"version")
                .and_then(|v| v.parse().ok())
                .ok_or(Fail::Bad)?;
            let name = attr(&e, b"name").ok_or(Fail::Bad)?;
            if e.name().as_ref() != b"net" || !(2..=11).contains(&version) || empty {
                return Err(Fail::Bad);
            }
            let mut n = Identified::new(WeightFormat::Openvino, Kind::Weights);
            n.model_name = Some(name.chars().take(128).collect());
            id = Some(n);
            continue;
        };
        match e.name().as_ref() {
            b"layer" => {
                layers += 1;
                in_const = !empty && attr(&e, b"type").as_deref() == Some("Const");
            }
            b"data" if in_const => {
                let (Some(t), Some(shape)) = (attr(&e, b"element_type"), attr(&e, b"shape")) else {
                    continue;
                };
                let numel = shape
                    .split(',')
                    .map(str::trim)
                    .filter(|d| !d.is_empty())
                    .try_fold(1u64, |n, d| {
                        d.parse::<u64>().ok().map(|d| n.saturating_mul(d))
                    });
                let end = attr(&e, b"offset")
                    .zip(attr(&e, b"size"))
                    .and_then(|(o, n)| {
                        Some(o.parse::<u64>().ok()?.saturating_add(n.parse().ok()?))
                    });
                if let Some(end) = end {
                    // The weights' size, as a TF `.index` is judged by its data.
                    net.declared_bytes = Some(net.declared_bytes.unwrap_or(0).max(end));
                }
                if let Some(numel) = numel {
                    net.tensors += 1;
                    net.params = net.params.saturating_add(numel);
                    net.dtypes.insert(dtype(&t).to_string());
                }
            }
            _ => {}
        }
    }
    match id {
        Some(mut net) if layers > 0 => {
            // The `.bin`'s size is known once every constant was seen; a
            // graph cut by the prefix may name more (the detector waits
            // for its window before it alerts).
            if !closed {
                net.declared_bytes = None;
                net.partial = true;
            }
            Ok(net)
        }
        // The root, but no layer yet: the prefix is too short to say.
        Some(_) => Err(Fail::Short),
        None if text.len() < 4096 => Err(Fail::Short),
        None => Err(Fail::Bad),
    }
}
