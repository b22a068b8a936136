//! Core ML `.mlmodel`: a protobuf `Model` (coremltools' `Model.proto`),
//! parsed as protobuf: `specificationVersion` (field 1, 1–10) first, then
//! only `description` (2, a `ModelDescription` whose fields are checked),
//! `isUpdatable` (10) and one model type (a known field of the `Type`
//! oneof, 200–3003). Neural networks (`neuralNetwork`, and its classifier
//! and regressor) are walked: each layer's parameters count a tensor per
//! `WeightParams` (float, float16, raw or int8 values), as far as the
//! prefix goes.
//!
//! An ML program (`mlProgram`, Core ML 5 on: the `.mlmodel` of an
//! `.mlpackage`) keeps its weights apart, in the package's
//! `weights/weight.bin`: MIL blob storage (coremltools'
//! `MILBlob/Blob/StorageFormat.hpp`), parsed by [`parse_weights`].

use super::cursor::{Cursor, Fail, PResult};
use super::onnx::{key, skip_value};
use super::{Identified, Kind};
use eve::WeightFormat;

/// The variant (the `Type` oneof's field name) of a model type field.
fn model_type(field: u64) -> Option<&'static str> {
    Some(match field {
        200 => "pipelineClassifier",
        201 => "pipelineRegressor",
        202 => "pipeline",
        300 => "glmRegressor",
        301 => "supportVectorRegressor",
        302 => "treeEnsembleRegressor",
        303 => "neuralNetworkRegressor",
        304 => "bayesianProbitRegressor",
        400 => "glmClassifier",
        401 => "supportVectorClassifier",
        402 => "treeEnsembleClassifier",
        403 => "neuralNetworkClassifier",
        404 => "kNearestNeighborsClassifier",
        500 => "neuralNetwork",
        501 => "itemSimilarityRecommender",
        502 => "mlProgram",
        555 => "customModel",
        556 => "linkedModel",
        560 => "classConfidenceThresholding",
        600..=606 => "featureEngineering",
        900 => "identity",
        2000..=2006 => "coreMLModels",
        3000..=3003 => "visionFeaturePrint",
        _ => return None,
    })
}

/// A length-delimited field's bytes, as far as the prefix holds them, and
/// whether all of them are there.
fn len_field<'a>(c: &mut Cursor<'a>) -> PResult<(&'a [u8], bool)> {
    let n = c.varint()?;
    let n = usize::try_from(n).map_err(|_| Fail::Bad)?;
    if c.remaining() >= n {
        Ok((c.take(n)?, true))
    } else {
        let rest = c.remaining();
        Ok((c.take(rest)?, false))
    }
}

/// `ModelDescription`: inputs (1), outputs (10), predicted feature and
/// probabilities names (11, 12), training inputs (50), metadata (100).
fn description(b: &[u8]) -> PResult<()> {
    let mut c = Cursor::new(b, 0);
    while c.remaining() > 0 {
        match key(&mut c)? {
            (1 | 10 | 11 | 12 | 50 | 100, 2) => skip_value(&mut c, 2)?,
            _ => return Err(Fail::Bad),
        }
    }
    Ok(())
}

/// Elements and dtype of a `WeightParams` (floatValue 1, float16Value 2,
/// rawValue 30, int8RawValue 31, quantization 40, isUpdatable 50), or
/// `None` when `b` is not one with values.
fn weight_params(b: &[u8]) -> Option<(u64, &'static str)> {
    let mut c = Cursor::new(b, 0);
    let mut found = None;
    while c.remaining() > 0 {
        let (f, w) = key(&mut c).ok()?;
        match (f, w) {
            (1 | 2 | 30 | 31, 2) => {
                let n = c.varint().ok()?;
                c.skip(n).ok()?;
                let (per, dt) = match f {
                    1 => (4, "f32"),
                    2 => (2, "f16"),
                    31 => (1, "i8"),
                    _ => (1, "u8"),
                };
                if n == 0 || found.is_some() {
                    return None;
                }
                found = Some((n / per, dt));
            }
            (40, 2) => skip_value(&mut c, 2).ok()?,
            (50, 0) => skip_value(&mut c, 0).ok()?,
            _ => return None,
        }
    }
    found
}

/// Layers of a `NeuralNetwork` (field 1, each a `NeuralNetworkLayer`): the
/// weights in each layer's parameters (fields ≥ 100).
fn network(b: &[u8], id: &mut Identified) {
    let mut c = Cursor::new(b, 0);
    while let Ok((f, w)) = key(&mut c) {
        let Ok((layer, _)) = (if w == 2 { len_field(&mut c) } else { break }) else {
            break;
        };
        if f != 1 {
            continue;
        }
        let mut l = Cursor::new(layer, 0);
        while let Ok((lf, lw)) = key(&mut l) {
            let Ok((params, whole)) = (if lw == 2 { len_field(&mut l) } else { break }) else {
                break;
            };
            if lf < 100 {
                continue;
            }
            let mut p = Cursor::new(params, 0);
            while let Ok((_, pw)) = key(&mut p) {
                if pw != 2 {
                    if skip_value(&mut p, pw).is_err() {
                        break;
                    }
                    continue;
                }
                let Ok((sub, full)) = len_field(&mut p) else {
                    break;
                };
                if let Some((n, dt)) = full.then(|| weight_params(sub)).flatten() {
                    id.tensors += 1;
                    id.params = id.params.saturating_add(n);
                    id.dtypes.insert(dt.to_string());
                }
            }
            if !whole {
                return;
            }
        }
    }
}

/// A Core ML model at `buf[0]`.
pub(crate) fn parse(buf: &[u8]) -> PResult<Identified> {
    let mut c = Cursor::new(buf, 0);
    if key(&mut c)? != (1, 0) {
        return Err(Fail::Bad);
    }
    if !(1..=10).contains(&c.varint()?) {
        return Err(Fail::Bad);
    }
    let mut described = false;
    loop {
        let (f, w) = key(&mut c)?;
        match (f, w) {
            (2, 2) if !described => {
                let (d, whole) = len_field(&mut c)?;
                if !whole {
                    return Err(Fail::Short);
                }
                description(d)?;
                described = true;
            }
            (10, 0) => skip_value(&mut c, 0)?,
            (f, 2) if described => {
                let variant = model_type(f).ok_or(Fail::Bad)?;
                let mut id = Identified::new(WeightFormat::Coreml, Kind::Weights);
                id.detail = Some(variant);
                let (body, whole) = len_field(&mut c)?;
                if matches!(f, 303 | 403 | 500) {
                    network(body, &mut id);
                }
                if whole {
                    id.declared_bytes = Some(c.pos() as u64);
                }
                return Ok(id);
            }
            _ => return Err(Fail::Bad),
        }
    }
}

/// MIL blob storage's alignment of headers, metadata and data.
const BLOB_ALIGN: u64 = 64;
/// `blob_metadata.sentinel`.
const BLOB_SENTINEL: u32 = 0xDEAD_BEEF;
/// Blob metadata walked (a large model has a few thousand blobs).
const MAX_BLOBS: u32 = 1 << 20;

/// A `BlobDataType`'s name and bits per element (1 Float16 … 17
/// Float8E5M2, as coremltools 8 defines them).
fn blob_dtype(code: u32) -> Option<(&'static str, u64)> {
    Some(match code {
        1 => ("f16", 16),
        2 => ("f32", 32),
        3 => ("u8", 8),
        4 => ("i8", 8),
        5 => ("bf16", 16),
        6 => ("i16", 16),
        7 => ("u16", 16),
        8 => ("i4", 4),
        9 => ("u1", 1),
        10 => ("u2", 2),
        11 => ("u4", 4),
        12 => ("u3", 3),
        13 => ("u6", 6),
        14 => ("i32", 32),
        15 => ("u32", 32),
        16 => ("f8_e4m3", 8),
        17 => ("f8_e5m2", 8),
        _ => return None,
    })
}

/// An ML program's `weight.bin` at `buf[0]`: a 64-byte `storage_header`
/// (blob count, version 2, zeros), then per blob a 64-byte
/// `blob_metadata` (sentinel `0xDEADBEEF`, data type, size in bytes, the
/// data's offset: right after the metadata, 64-byte aligned) and the
/// data. Every blob in view is counted: a tensor, its elements, its type;
/// the declared size is the end of the last blob once all are in view.
/// Variant `blob_storage`.
pub(crate) fn parse_weights(buf: &[u8]) -> PResult<Identified> {
    let mut c = Cursor::new(buf, 0);
    let count = c.u32()?;
    if c.u32()? != 2 || !(1..=MAX_BLOBS).contains(&count) {
        return Err(Fail::Bad);
    }
    if c.take(56)?.iter().any(|b| *b != 0) {
        return Err(Fail::Bad);
    }
    let mut id = Identified::new(WeightFormat::Coreml, Kind::Weights);
    id.detail = Some("blob_storage");
    let mut at = BLOB_ALIGN;
    for _ in 0..count {
        let Ok(pos) = usize::try_from(at) else {
            break;
        };
        let mut m = Cursor::new(buf, pos);
        let meta = (|| Ok((m.u32()?, m.u32()?, m.u64()?, m.u64()?)))();
        let (sentinel, dtype, size, offset) = match meta {
            Ok(v) => v,
            Err(Fail::Short) if id.tensors > 0 => {
                id.declared_bytes = None;
                return Ok(id);
            }
            Err(e) => return Err(e),
        };
        let (name, bits) = blob_dtype(dtype).ok_or(Fail::Bad)?;
        if sentinel != BLOB_SENTINEL || offset != at + BLOB_ALIGN || size == 0 {
            return Err(Fail::Bad);
        }
        id.tensors += 1;
        id.params = id.params.saturating_add(size.saturating_mul(8) / bits);
        id.dtypes.insert(name.to_string());
        let end = offset.checked_add(size).ok_or(Fail::Bad)?;
        at = end.div_ceil(BLOB_ALIGN).saturating_mul(BLOB_ALIGN);
        id.declared_bytes = Some(end);
    }
    if id.tensors < u64::from(count) {
        id.declared_bytes = None;
    }
    Ok(id)
}
