//! `joblib.dump` (scikit-learn estimators, dicts of arrays): a pickle
//! (protocol 2–5) in which every NumPy array is a
//! `joblib.numpy_pickle.NumpyArrayWrapper` whose state (shape, dtype,
//! order, alignment) is followed by the array's raw bytes outside the
//! pickle's opcodes. The bounded walker (`pickle::walk`) steps over those
//! bytes, so the arrays are counted and typed without running anything.
//! Object arrays (dtype `O`) are pickled inline by joblib: that nested
//! pickle is walked and stepped over. Compressed dumps (`compress=`) are
//! inflated by `compressed.rs` and parsed here.

use super::cursor::{Fail, PResult};
use super::{Identified, Kind};
use eve::WeightFormat;

/// A joblib pickle at `buf[0]`: at least one wrapped array.
pub(crate) fn parse(buf: &[u8]) -> PResult<Identified> {
    match buf {
        [0x80, 2..=5, ..] => {}
        [0x80] | [] => return Err(Fail::Short),
        _ => return Err(Fail::Bad),
    }
    let (s, end) = super::pickle::walk(buf)?;
    if s.joblib_arrays.is_empty() {
        return if s.complete {
            Err(Fail::Bad)
        } else {
            Err(Fail::Short)
        };
    }
    let mut id = Identified::new(WeightFormat::Joblib, Kind::TensorData);
    for (code, numel) in &s.joblib_arrays {
        let (name, _, weights) = super::numpy::element(code).ok_or(Fail::Bad)?;
        id.dtypes.insert(name.to_string());
        id.tensors += 1;
        id.params = id.params.saturating_add(*numel);
        if weights {
            id.kind = Kind::Weights;
        }
    }
    id.model_name = s.first_class;
    if s.complete {
        id.declared_bytes = Some(end as u64);
    }
    Ok(id)
}
