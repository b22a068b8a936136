//! Bad input never crashes the format parsers: the layouts real files come
//! in (TorchScript with streamed members, deflated torch zip, legacy tar,
//! `ggjt`, pickled arrays, joblib, Flax msgpack, OpenVINO IR, Core ML,
//! llamafile) with bytes flipped and cut anywhere, through
//! `inspect` (the sensor's `format::recognise` and tensor statistics) and,
//! base64-encoded in JSON, through the `encoded` detector.

use crate::detect_common::run_object;
use base64::Engine;
use capture::detect::DetectConfig;
use capture::detect::encoded::EncodedDetector;
use capture::detect::inspect::inspect_bytes;
use capture::object::ObjectMeta;
use fixtures::weights::{
    DType, Format, ModelSpec, coreml, flax, ggml, joblib, llamafile, numpy, openvino, torch,
};
use proptest::prelude::*;
use std::sync::{Arc, OnceLock};

/// The seed files (small: a micro model).
fn seeds() -> &'static [Vec<u8>] {
    static SEEDS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    SEEDS.get_or_init(|| {
        let spec = ModelSpec::micro();
        let t = spec.tensors(DType::F16, 5);
        vec![
            torch::write_torchscript(&t, 3),
            torch::write_torchscript(&t, 1),
            torch::write_zip_deflated(&t),
            torch::write_legacy_tar(&t),
            ggml::write_ggjt(&spec, true, 6, 3),
            numpy::write_pickled(&t),
            joblib::write_dict(&t),
            flax::write(&t),
            openvino::write("micro", &t).0,
            coreml::write(&t),
            llamafile::write(
                b"\x7fELF\x02\x01\x01\0",
                "m.gguf",
                &Format::Gguf.write(&spec, DType::F16, 7).bytes,
            ),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn mutated_model_files_never_panic(
        which in 0usize..11,
        flips in proptest::collection::vec((any::<u32>(), any::<u8>()), 0..12),
        cut in any::<u32>(),
    ) {
        let mut b = seeds()[which].clone();
        for (at, v) in flips {
            let n = b.len();
            b[at as usize % n] = v;
        }
        b.truncate(1 + cut as usize % b.len());
        let cfg = DetectConfig::default();
        let r = inspect_bytes(&b, b.len() as u64, Some("model.pt"), cfg.format_scan_bytes, &cfg);
        prop_assert!(r.scanned == b.len() as u64);
        let text = format!(
            "{{\"w\": \"{}\"}}",
            base64::engine::general_purpose::STANDARD.encode(&b)
        );
        let det = EncodedDetector::new(Arc::new(cfg));
        let _ = run_object(&det, &ObjectMeta::default(), text.as_bytes(), 0, 1, 9000);
    }
}
