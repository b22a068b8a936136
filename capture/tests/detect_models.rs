//! Model formats beyond tensor containers, written by the fixtures by their
//! rules and named by `inspect` (the sensor's parsers) and, one of each
//! sent over HTTP in a generated capture, by the sensor: joblib dumps
//! (scikit-learn estimators; the writer is checked byte for byte against
//! joblib in its unit test), Flax msgpack, OpenVINO IR `.xml`, Core ML
//! `.mlmodel`, and llamafile (a GGUF inside an executable's zip, megabytes
//! past the prefix the other formats see). Near-misses of each are not
//! named.

use crate::engine_support::{Frames, replay, write_pcap};
use capture::detect::inspect::{Report, inspect_bytes};
use capture::detect::{DetectConfig, PolicyConfig, build};
use eve::{AlertCategory, EventKind};
use fixtures::payload::Payload;
use fixtures::scenario;
use fixtures::tcp::SessionOptions;
use fixtures::weights::joblib::Value as JValue;
use fixtures::weights::{
    DType, Format, ModelSpec, Tensor, coreml, flax, joblib, llamafile, negative, onnx, openvino,
    pcaps,
};
use serde_json::Value;

fn inspect(bytes: &[u8], name: &str) -> Report {
    let cfg = DetectConfig::default();
    inspect_bytes(
        bytes,
        bytes.len() as u64,
        Some(name),
        cfg.format_scan_bytes,
        &cfg,
    )
}

fn tensors(dtype: DType, seed: u64) -> Vec<Tensor> {
    pcaps::spec().tensors(dtype, seed)
}

fn params(t: &[Tensor]) -> u64 {
    t.iter().map(|t| t.numel() as u64).sum()
}

/// The estimator a scikit-learn user dumps: coefficients, intercepts,
/// classes and scalars.
fn estimator(t: &[Tensor]) -> Vec<u8> {
    joblib::write_estimator(
        "sklearn.linear_model._logistic",
        "LogisticRegression",
        &[
            ("C", JValue::Int(1)),
            ("solver", JValue::Str("lbfgs")),
            ("coef_", JValue::Array(&t[0])),
            ("intercept_", JValue::Array(&t[1])),
            ("n_iter_", JValue::Int(37)),
            ("_sklearn_version", JValue::Str("1.9.1")),
        ],
    )
}

/// One file of each format: (bytes, name, format, variant).
fn cases() -> Vec<(Vec<u8>, &'static str, &'static str, Option<&'static str>)> {
    let f32s = tensors(DType::F32, 7);
    let f16s = tensors(DType::F16, 8);
    let spec = ModelSpec::tiny();
    let gguf = Format::Gguf.write(&spec, DType::F16, 9).bytes;
    let exe = negative::make("elf", 10, 3 << 20).expect("elf");
    vec![
        (joblib::write_dict(&f32s), "weights.joblib", "joblib", None),
        (flax::write(&f16s), "params.msgpack", "flax_msgpack", None),
        (
            openvino::write("ww-small", &f32s).0,
            "model.xml",
            "openvino",
            None,
        ),
        (
            coreml::write(&f32s),
            "model.mlmodel",
            "coreml",
            Some("neuralNetwork"),
        ),
        (
            llamafile::write(&exe, "ww-tiny.gguf", &gguf),
            "ww-tiny.llamafile",
            "llamafile",
            None,
        ),
    ]
}

#[test]
fn joblib_dumps_are_named_with_their_arrays_and_estimator() {
    let t = tensors(DType::F32, 1);
    let r = inspect(&joblib::write_dict(&t), "w.joblib");
    assert_eq!(r.format.as_deref(), Some("joblib"), "{r:?}");
    assert_eq!(r.kind, Some("weights"));
    assert_eq!(r.tensors, t.len() as u64, "{r:?}");
    assert_eq!(r.params, params(&t), "{r:?}");
    assert!(r.dtypes.contains("f32"), "{r:?}");
    let r = inspect(&estimator(&t), "model.pkl");
    assert_eq!(r.format.as_deref(), Some("joblib"), "{r:?}");
    assert_eq!(r.tensors, 2, "{r:?}");
    assert_eq!(
        r.model_name.as_deref(),
        Some("sklearn.linear_model._logistic.LogisticRegression")
    );
    // Cut inside the third array: the arrays before it are counted.
    let whole = joblib::write_dict(&t);
    let upto: usize = t[..2].iter().map(|t| t.data.len()).sum::<usize>() + 3000;
    let r = inspect(&whole[..upto], "w.joblib");
    assert_eq!(r.format.as_deref(), Some("joblib"), "{r:?}");
    assert!((2..t.len() as u64).contains(&r.tensors), "{r:?}");
    // A wrapper whose padding is not joblib's is not a joblib dump.
    let mut bad = whole.clone();
    let pad = bad
        .windows(4)
        .position(|w| w == b"K\x10ub")
        .expect("wrapper")
        + 4;
    bad[pad] = 0x7f;
    assert_ne!(inspect(&bad, "w.joblib").format.as_deref(), Some("joblib"));
}

#[test]
fn flax_msgpack_is_named_and_plain_msgpack_is_not() {
    let t = tensors(DType::F16, 2);
    let bytes = flax::write(&t);
    let r = inspect(&bytes, "params.msgpack");
    assert_eq!(r.format.as_deref(), Some("flax_msgpack"), "{r:?}");
    assert_eq!(r.tensors, t.len() as u64, "{r:?}");
    assert_eq!(r.params, params(&t), "{r:?}");
    assert!(r.dtypes.contains("f16"), "{r:?}");
    assert_eq!(r.declared_size, Some(bytes.len() as u64));
    // Cut mid-array: still named from the arrays in view.
    let r = inspect(&bytes[..bytes.len() / 2], "params.msgpack");
    assert_eq!(r.format.as_deref(), Some("flax_msgpack"), "{r:?}");
    // A map of plain values (a msgpack API payload) holds no arrays.
    let plain = b"\x82\xa4name\xa3abc\xa5items\x93\x01\x02\x03";
    assert_eq!(inspect(plain, "x.msgpack").format, None);
    // An array whose byte length disagrees with its shape is not Flax's.
    let mut bad = bytes.clone();
    let at = bad
        .windows(8)
        .position(|w| w == b"float16\xc5" || w == b"float16\xc6")
        .expect("dtype")
        + 8;
    bad[at + 1] ^= 0x01;
    assert_ne!(
        inspect(&bad, "params.msgpack").format.as_deref(),
        Some("flax_msgpack")
    );
}

#[test]
fn openvino_ir_xml_is_named_and_other_xml_is_not() {
    let t = tensors(DType::F32, 3);
    let (xml, bin) = openvino::write("ww-small", &t);
    let r = inspect(&xml, "model.xml");
    assert_eq!(r.format.as_deref(), Some("openvino"), "{r:?}");
    assert_eq!(r.model_name.as_deref(), Some("ww-small"));
    assert_eq!(r.tensors, t.len() as u64, "{r:?}");
    assert_eq!(r.params, params(&t), "{r:?}");
    assert_eq!(r.declared_size, Some(bin.len() as u64), "{r:?}");
    // The `.bin` alone is raw tensors.
    let r = inspect(&bin, "model.bin");
    assert_eq!(r.format.as_deref(), Some("raw_tensor"), "{r:?}");
    // XML that is not an IR: another root, or a `net` without a version.
    let other = b"<?xml version=\"1.0\"?>\n<opencv_storage><cascade type_id=\"opencv-haar-classifier\"><layer type=\"Const\"/></cascade></opencv_storage>\n";
    assert_eq!(inspect(other, "haarcascade.xml").format, None);
    let noversion = b"<net name=\"x\"><layers><layer id=\"0\" type=\"Const\"/></layers></net>";
    assert_eq!(inspect(noversion, "model.xml").format, None);
}

#[test]
fn coreml_mlmodel_is_named_and_onnx_stays_onnx() {
    let t = tensors(DType::F32, 4);
    let bytes = coreml::write(&t);
    let r = inspect(&bytes, "model.mlmodel");
    assert_eq!(r.format.as_deref(), Some("coreml"), "{r:?}");
    assert_eq!(r.variant.as_deref(), Some("neuralNetwork"), "{r:?}");
    assert_eq!(r.tensors, t.len() as u64, "{r:?}");
    assert_eq!(r.params, params(&t), "{r:?}");
    assert_eq!(r.declared_size, Some(bytes.len() as u64));
    // Cut inside the network: named, with the layers in view.
    let r = inspect(&bytes[..bytes.len() / 2], "model.mlmodel");
    assert_eq!(r.format.as_deref(), Some("coreml"), "{r:?}");
    assert!(r.tensors < t.len() as u64, "{r:?}");
    // ONNX shares field 1's shape; it stays ONNX.
    let r = inspect(&onnx::write(&t, &ModelSpec::tiny()), "model.onnx");
    assert_eq!(r.format.as_deref(), Some("onnx"), "{r:?}");
    // A spec version out of range, or an unknown model type, is not Core ML.
    let mut bad = bytes.clone();
    bad[1] = 0x40;
    assert_ne!(inspect(&bad, "m.mlmodel").format.as_deref(), Some("coreml"));
}

#[test]
fn llamafile_is_named_with_its_gguf() {
    let spec = ModelSpec::tiny();
    let gguf = Format::Gguf.write(&spec, DType::F16, 5).bytes;
    let exe = negative::make("elf", 6, 3 << 20).expect("elf");
    let bytes = llamafile::write(&exe, "ww-tiny.Q8_0.gguf", &gguf);
    let r = inspect(&bytes, "ww-tiny.llamafile");
    assert_eq!(r.format.as_deref(), Some("llamafile"), "{r:?}");
    assert_eq!(r.members, vec!["ww-tiny.Q8_0.gguf".to_string()], "{r:?}");
    let inner = r.member.as_ref().expect("member");
    assert_eq!(inner.format.as_deref(), Some("gguf"), "{r:?}");
    assert_eq!(r.architecture.as_deref(), Some("llama"), "{r:?}");
    assert_eq!(r.tensors, inner.tensors);
    assert!(r.tensors > 0, "{r:?}");
    // The executable alone, or with a zip of other files, is not.
    assert_eq!(inspect(&exe, "server").format, None);
    let other = llamafile::write(&exe, "notes.txt", b"not a model");
    assert_eq!(inspect(&other, "server").format, None);
}

#[test]
fn each_model_format_over_http_is_named_by_the_sensor() {
    let cases = cases();
    let mut frames = Frames::default();
    for (i, (bytes, name, _, _)) in cases.iter().enumerate() {
        scenario::http_upload_put(
            &mut frames,
            &SessionOptions::ipv4(45_000 + i as u16, 80),
            &format!("/upload/{name}"),
            &Payload::Bytes(bytes),
        )
        .expect("session");
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let pcap = dir.path().join("models.pcap");
    write_pcap(&pcap, frames.0);
    let detectors =
        build(&PolicyConfig::default(), &DetectConfig::default(), None).expect("detectors");
    let (_, events) = replay(&[pcap], 1, &detectors);
    let mut got: Vec<(String, Option<String>)> = events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Alert(a) if a.alert.category == AlertCategory::WeightsFormat => {
                let s = |k: &str| {
                    a.evidence
                        .get(k)
                        .and_then(Value::as_str)
                        .map(str::to_string)
                };
                Some((s("format").unwrap_or_default(), s("variant")))
            }
            _ => None,
        })
        .collect();
    got.sort();
    let mut want: Vec<(String, Option<String>)> = cases
        .iter()
        .map(|(_, _, f, v)| (f.to_string(), v.map(str::to_string)))
        .collect();
    want.sort();
    assert_eq!(got, want);
}
