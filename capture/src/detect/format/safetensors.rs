//! safetensors: u64 LE header length, then a JSON object mapping tensor names
//! to `{dtype, shape, data_offsets}` (plus optional `__metadata__`).

use super::cursor::{Cursor, Fail, PResult};
use super::{Identified, Kind};
use eve::WeightFormat;

/// The format's own cap on the header (100 MB).
const MAX_HEADER: u64 = 100_000_000;

fn dtype_size(d: &str) -> Option<u64> {
    Some(match d {
        "F64" | "I64" | "U64" | "C64" => 8,
        "F32" | "I32" | "U32" => 4,
        "F16" | "BF16" | "I16" | "U16" => 2,
        "F8_E4M3" | "F8_E5M2" | "F8_E8M0" | "I8" | "U8" | "BOOL" => 1,
        "F4" | "F6_E2M3" | "F6_E3M2" => 1,
        _ => return None,
    })
}

/// The quantization (or MLX) layout a header's tensor names and metadata
/// show: EXL2 (`q_weight`, `q_invperm`, `q_scale`), GPTQ (`qweight`,
/// `qzeros`, `scales`, `g_idx`), AWQ (the same without `g_idx`),
/// bitsandbytes (`quant_state.bitsandbytes__nf4|fp4`, `weight_format`),
/// MLX (`__metadata__.format == "mlx"`).
fn quantization(map: &serde_json::Map<String, serde_json::Value>) -> Option<&'static str> {
    let has = |suffix: &str| map.keys().any(|k| k.ends_with(suffix));
    let meta = map.get("__metadata__").and_then(|m| m.as_object());
    let meta_is = |k: &str, v: &str| {
        meta.and_then(|m| m.get(k))
            .and_then(|x| x.as_str())
            .is_some_and(|x| x.eq_ignore_ascii_case(v))
    };
    if has(".q_weight") && (has(".q_invperm") || has(".q_scale")) {
        Some("exl2")
    } else if has(".qweight") && has(".qzeros") {
        if meta_is("quant_method", "awq") || !has(".g_idx") {
            Some("awq")
        } else {
            Some("gptq")
        }
    } else if map.keys().any(|k| k.contains("quant_state.bitsandbytes")) || has(".SCB") {
        Some("bitsandbytes")
    } else if meta_is("format", "mlx") {
        Some("mlx")
    } else {
        None
    }
}

pub(crate) fn parse(buf: &[u8]) -> PResult<Identified> {
    let mut c = Cursor::new(buf, 0);
    let n = c.u64()?;
    if !(2..=MAX_HEADER).contains(&n) {
        return Err(Fail::Bad);
    }
    match buf.get(8) {
        Some(b'{') => {}
        Some(_) => return Err(Fail::Bad),
        None => return Err(Fail::Short),
    }
    let Some(header) = buf.get(8..8 + n as usize) else {
        // Cheap early rejection of non-JSON before waiting for the rest.
        let seen = &buf[8..];
        let head = &seen[..seen.len().min(64)];
        if !head
            .iter()
            .all(|b| b.is_ascii() && !b.is_ascii_control() || b.is_ascii_whitespace())
        {
            return Err(Fail::Bad);
        }
        return Err(Fail::Short);
    };
    let map: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(header).map_err(|_| Fail::Bad)?;
    let mut id = Identified::new(WeightFormat::Safetensors, Kind::Weights);
    let mut end = 0u64;
    id.detail = quantization(&map);
    for (name, v) in &map {
        if name == "__metadata__" {
            if let Some(m) = v.as_object() {
                for k in ["model", "name", "model_name", "base_model"] {
                    if let Some(s) = m.get(k).and_then(|s| s.as_str()) {
                        id.model_name
                            .get_or_insert_with(|| s.chars().take(128).collect());
                    }
                }
                if let Some(s) = m.get("architecture").and_then(|s| s.as_str()) {
                    id.architecture = Some(s.chars().take(64).collect());
                }
            }
            continue;
        }
        let t = v.as_object().ok_or(Fail::Bad)?;
        let dtype = t.get("dtype").and_then(|d| d.as_str()).ok_or(Fail::Bad)?;
        let size = dtype_size(dtype).ok_or(Fail::Bad)?;
        let shape = t.get("shape").and_then(|s| s.as_array()).ok_or(Fail::Bad)?;
        let mut numel = 1u64;
        for d in shape {
            numel = numel.saturating_mul(d.as_u64().ok_or(Fail::Bad)?);
        }
        let off = t
            .get("data_offsets")
            .and_then(|o| o.as_array())
            .ok_or(Fail::Bad)?;
        let (b, e) = match off.as_slice() {
            [b, e] => (b.as_u64().ok_or(Fail::Bad)?, e.as_u64().ok_or(Fail::Bad)?),
            _ => return Err(Fail::Bad),
        };
        if e < b
            || (size > 0
                && e - b != numel.saturating_mul(size)
                && !dtype.starts_with("F4")
                && !dtype.starts_with("F6"))
        {
            return Err(Fail::Bad);
        }
        end = end.max(e);
        id.dtypes.insert(dtype.to_ascii_lowercase());
        id.tensors += 1;
        id.params = id.params.saturating_add(numel);
    }
    if id.tensors == 0 {
        return Err(Fail::Bad);
    }
    id.declared_bytes = Some((8 + n).saturating_add(end));
    Ok(id)
}
