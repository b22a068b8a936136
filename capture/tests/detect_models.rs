//! Model formats beyond tensor containers, written by the fixtures by their
//! rules and named by `inspect` (the sensor's parsers) and, one of each
//! sent over HTTP in a generated capture, by the sensor: joblib dumps
//! (scikit-learn estimators, object arrays, every `compress=` container;
//! the writer is checked byte for byte against joblib in its unit test),
//! plain pickles of estimators (`pickle.dump`), Flax msgpack, OpenVINO IR `.xml`, Core ML
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
use fixtures::weights::joblib::{Compression, Value as JValue};
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

/// The attributes of a fitted scikit-learn estimator: coefficients,
/// intercepts, scalars, and (with `names`) the feature names, an object
/// array, before the arrays.
fn attrs<'a>(t: &'a [Tensor], names: Option<&'a [&'a str]>) -> Vec<(&'static str, JValue<'a>)> {
    let mut a = vec![("C", JValue::Int(1)), ("solver", JValue::Str("lbfgs"))];
    if let Some(n) = names {
        a.push(("feature_names_in_", JValue::Objects(n)));
    }
    a.extend([
        ("coef_", JValue::Array(&t[0])),
        ("intercept_", JValue::Array(&t[1])),
        ("n_iter_", JValue::Int(37)),
        ("_sklearn_version", JValue::Str("1.9.1")),
    ]);
    a
}

const LR: (&str, &str) = ("sklearn.linear_model._logistic", "LogisticRegression");
const LR_NAME: &str = "sklearn.linear_model._logistic.LogisticRegression";

/// The estimator a scikit-learn user dumps with joblib.
fn estimator(t: &[Tensor]) -> Vec<u8> {
    joblib::write_estimator(LR.0, LR.1, &attrs(t, None))
}

/// The same estimator through `pickle.dump`.
fn pickled(t: &[Tensor]) -> Vec<u8> {
    joblib::write_pickled_estimator(LR.0, LR.1, &attrs(t, None))
}

/// The tensors largest first: a compressed dump must still be over the
/// sensor's 64 KiB floor on the wire.
fn largest(t: &[Tensor]) -> Vec<Tensor> {
    let mut t = t.to_vec();
    t.sort_by_key(|t| std::cmp::Reverse(t.numel()));
    t
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
        (
            joblib::compress(&estimator(&largest(&f32s)), Compression::Zlib),
            "model.joblib",
            "joblib",
            Some("zlib"),
        ),
        (
            joblib::compress(
                &estimator(&largest(&tensors(DType::F32, 14))),
                Compression::Xz,
            ),
            "model.joblib.xz",
            "joblib",
            Some("xz"),
        ),
        (pickled(&f32s), "model.pkl", "pickle", None),
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
            coreml::write_weight_bin(&f16s),
            "weight.bin",
            "coreml",
            Some("blob_storage"),
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
fn object_arrays_in_a_joblib_dump_do_not_desync_the_walk() {
    let t = tensors(DType::F32, 11);
    let names = ["age", "income", "region"];
    let bytes = joblib::write_estimator(LR.0, LR.1, &attrs(&t, Some(&names)));
    let r = inspect(&bytes, "model.joblib");
    assert_eq!(r.format.as_deref(), Some("joblib"), "{r:?}");
    assert_eq!(r.model_name.as_deref(), Some(LR_NAME));
    // The object array and both float arrays after it, to the end.
    assert_eq!(r.tensors, 3, "{r:?}");
    assert_eq!(r.params, 3 + params(&t[..2]), "{r:?}");
    assert!(
        r.dtypes.contains("object") && r.dtypes.contains("f32"),
        "{r:?}"
    );
    assert_eq!(r.declared_size, Some(bytes.len() as u64), "{r:?}");
    // The nested pickle cut short: named from what came before, or not at
    // all, never past it.
    let at = bytes
        .windows(2)
        .position(|w| w == [0x80, 5])
        .expect("nested pickle");
    let r = inspect(&bytes[..at + 40], "model.joblib");
    assert!(r.tensors <= 1, "{r:?}");
    // A nested pickle that is not one (a raw byte where it starts).
    let mut bad = bytes.clone();
    bad[at] = b'x';
    assert_ne!(
        inspect(&bad, "model.joblib").declared_size,
        Some(bytes.len() as u64)
    );
}

#[test]
fn compressed_joblib_dumps_are_named_with_their_codec() {
    let t = tensors(DType::F32, 12);
    let dump = estimator(&t);
    for c in Compression::ALL {
        let z = joblib::compress(&dump, c);
        let r = inspect(&z, "model.joblib");
        assert_eq!(r.format.as_deref(), Some("joblib"), "{c:?}: {r:?}");
        assert_eq!(r.variant.as_deref(), Some(c.name()), "{c:?}: {r:?}");
        assert_eq!(r.model_name.as_deref(), Some(LR_NAME), "{c:?}");
        assert_eq!(r.tensors, 2, "{c:?}: {r:?}");
        assert_eq!(r.params, params(&t[..2]), "{c:?}: {r:?}");
        // The uncompressed dump's size is what the header declares.
        assert_eq!(r.declared_size, Some(dump.len() as u64), "{c:?}");
        // Cut, or with its compressed bytes broken: never a panic, and a
        // broken stream is not named from bytes it did not decode.
        for cut in [1, 7, 33, z.len() / 3, z.len() / 2] {
            let _ = inspect(&z[..cut], "model.joblib");
        }
        let mut bad = z.clone();
        let mid = bad.len() / 2;
        for b in &mut bad[24..mid] {
            *b ^= 0x5a;
        }
        let r = inspect(&bad, "model.joblib");
        assert_ne!(r.declared_size, Some(dump.len() as u64), "{c:?}: {r:?}");
    }
    // A compressed file that holds no model is not named.
    let text: Vec<u8> = b"timestamp,value\n".repeat(20_000);
    for c in Compression::ALL {
        let r = inspect(&joblib::compress(&text, c), "data.csv.z");
        assert_eq!(r.format, None, "{c:?}: {r:?}");
    }
}

#[test]
fn a_pickled_estimator_is_named_with_its_class_and_arrays() {
    let t = tensors(DType::F32, 13);
    let bytes = pickled(&t);
    let r = inspect(&bytes, "model.pkl");
    assert_eq!(r.format.as_deref(), Some("pickle"), "{r:?}");
    assert_eq!(r.kind, Some("weights"));
    assert_eq!(r.model_name.as_deref(), Some(LR_NAME));
    assert_eq!(r.tensors, 2, "{r:?}");
    assert_eq!(r.params, params(&t[..2]), "{r:?}");
    assert!(r.dtypes.contains("f32"), "{r:?}");
    assert_eq!(r.declared_size, Some(bytes.len() as u64));
    // With an object array among its attributes.
    let names = ["a", "b"];
    let with = joblib::write_pickled_estimator(LR.0, LR.1, &attrs(&t, Some(&names)));
    let r = inspect(&with, "model.pkl");
    assert_eq!(r.tensors, 3, "{r:?}");
    assert!(r.dtypes.contains("object"), "{r:?}");
    // A plain dict of arrays stays a pickle of arrays (`npy`, `pickle`).
    let r = inspect(&joblib::write_pickled_dict(&t), "weights.pkl");
    assert_eq!(r.format.as_deref(), Some("npy"), "{r:?}");
    assert_eq!(r.variant.as_deref(), Some("pickle"), "{r:?}");
    assert_eq!(r.tensors, t.len() as u64, "{r:?}");
    assert_eq!(r.params, params(&t), "{r:?}");
    // Cut inside the second array: the class and the first array.
    let r = inspect(&bytes[..bytes.len() - 100], "model.pkl");
    assert_eq!(r.format.as_deref(), Some("pickle"), "{r:?}");
    assert_eq!(r.declared_size, None, "{r:?}");
    // A model library's object without arrays (a CRF holding its model
    // file as bytes) is a pickled model; another class's object is not.
    let crf = joblib::write_pickled_estimator(
        "sklearn_crfsuite.estimator",
        "CRF",
        &[("c1", JValue::Int(0)), ("algorithm", JValue::Str("lbfgs"))],
    );
    let r = inspect(&crf, "model.pkl");
    assert_eq!(r.format.as_deref(), Some("pickle"), "{r:?}");
    assert_eq!(
        r.model_name.as_deref(),
        Some("sklearn_crfsuite.estimator.CRF")
    );
    let other = joblib::write_pickled_estimator(
        "myapp.settings",
        "Config",
        &[("c1", JValue::Int(0)), ("algorithm", JValue::Str("lbfgs"))],
    );
    assert_eq!(inspect(&other, "state.pkl").format, None);
    // Protocol 0 (no header; Python 2's default): `copy_reg._reconstructor`
    // of the class, as pyvi's `pyvi.pkl` in the corpus opens.
    let p0 = b"ccopy_reg\n_reconstructor\np0\n(csklearn.linear_model._logistic\nLogisticRegression\np1\nc__builtin__\nobject\np2\nNtp3\nRp4\n(dp5\nS'C'\np6\nI1\nsb.";
    let r = inspect(p0, "model.pkl");
    assert_eq!(r.format.as_deref(), Some("pickle"), "{r:?}");
    assert_eq!(r.model_name.as_deref(), Some(LR_NAME));
    // Text that opens like a `GLOBAL` is not a pickle.
    let text = b"cat\nmeow\nand then some prose about cats\n".repeat(100);
    assert_eq!(inspect(&text, "cats.txt").format, None);
    // Every prefix and single-byte corruption of the head: no panic.
    for cut in 0..600.min(bytes.len()) {
        let _ = inspect(&bytes[..cut], "model.pkl");
        let mut bad = bytes.clone();
        bad[cut] ^= 0xff;
        let _ = inspect(&bad, "model.pkl");
    }
}

/// The evidence `members` ({name, format}) of the weights alerts of
/// `bytes` sent over HTTP, per alert.
fn members_over_http(bytes: &[u8], name: &str) -> Vec<Vec<(String, String)>> {
    let mut frames = Frames::default();
    scenario::http_upload_put(
        &mut frames,
        &SessionOptions::ipv4(46_000, 80),
        &format!("/upload/{name}"),
        &Payload::Bytes(bytes),
    )
    .expect("session");
    let dir = tempfile::tempdir().expect("tempdir");
    let pcap = dir.path().join("zip.pcap");
    write_pcap(&pcap, frames.0);
    let detectors =
        build(&PolicyConfig::default(), &DetectConfig::default(), None).expect("detectors");
    let (_, events) = replay(&[pcap], 1, &detectors);
    events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Alert(a) if a.alert.category == AlertCategory::WeightsFormat => Some(
                a.evidence
                    .get("members")
                    .and_then(Value::as_array)
                    .map(|m| {
                        m.iter()
                            .map(|x| {
                                let s = |k: &str| x[k].as_str().unwrap_or_default().to_string();
                                (s("name"), s("format"))
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
            ),
            _ => None,
        })
        .collect()
}

#[test]
fn the_sensor_names_a_wheels_model_members_by_their_bytes() {
    use fixtures::weights::archive::{ZipMember, zip_with};
    let t = tensors(DType::F32, 17);
    let m = |name: &str, data: Vec<u8>, deflate: bool| ZipMember {
        name: name.into(),
        data,
        deflate,
    };
    // A wheel whose model files are not named like model files: a pickled
    // estimator (deflated) and Core ML weights (stored), after code.
    let wheel = zip_with(
        &[
            m("pkg/__init__.py", b"import os\n".repeat(50), true),
            m("pkg/data/classifier.dat", pickled(&largest(&t)), true),
            m("pkg/data/weights.blob", coreml::write_weight_bin(&t), false),
            m(
                "pkg-1.0.dist-info/RECORD",
                b"pkg/__init__.py,,\n".to_vec(),
                true,
            ),
        ],
        1,
        false,
    );
    let got = members_over_http(&wheel, "pkg-1.0-py3-none-any.whl");
    assert_eq!(
        got,
        vec![vec![
            ("pkg/data/classifier.dat".to_string(), "pickle".to_string()),
            ("pkg/data/weights.blob".to_string(), "coreml".to_string()),
        ]],
    );
    // The same code and text without a model: no weights alert.
    let plain = zip_with(
        &[
            m("pkg/__init__.py", b"import os\n".repeat(50), true),
            m(
                "pkg/data/words.dat",
                b"the quick brown fox ".repeat(8000),
                true,
            ),
            m(
                "pkg/data/table.bin",
                negative::make("text", 18, 200_000).expect("text"),
                false,
            ),
        ],
        1,
        false,
    );
    assert!(members_over_http(&plain, "pkg-1.0-py3-none-any.whl").is_empty());
    // Zips nested deeper than one level are not listed (bounded work).
    let mut nested = zip_with(
        &[m(
            "pkg/data/weights.blob",
            coreml::write_weight_bin(&t),
            false,
        )],
        1,
        false,
    );
    for i in 0..40 {
        nested = zip_with(&[m(&format!("n{i}.dat"), nested, false)], 1, false);
    }
    let r = inspect(&nested, "deep.zip");
    assert_ne!(r.format.as_deref(), Some("coreml"), "{r:?}");
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
fn coreml_ml_program_weights_are_named() {
    let mut t = tensors(DType::F16, 15);
    t[1] = tensors(DType::F32, 16).swap_remove(1);
    let bytes = coreml::write_weight_bin(&t);
    let r = inspect(&bytes, "weight.bin");
    assert_eq!(r.format.as_deref(), Some("coreml"), "{r:?}");
    assert_eq!(r.variant.as_deref(), Some("blob_storage"), "{r:?}");
    assert_eq!(r.tensors, t.len() as u64, "{r:?}");
    assert_eq!(r.params, params(&t), "{r:?}");
    assert!(
        r.dtypes.contains("f16") && r.dtypes.contains("f32"),
        "{r:?}"
    );
    assert_eq!(r.declared_size, Some(bytes.len() as u64));
    // Cut: the blobs in view, no declared size.
    let r = inspect(&bytes[..bytes.len() / 2], "weight.bin");
    assert_eq!(r.format.as_deref(), Some("coreml"), "{r:?}");
    assert!((1..t.len() as u64).contains(&r.tensors), "{r:?}");
    assert_eq!(r.declared_size, None, "{r:?}");
    // The program that names them.
    let r = inspect(&coreml::write_ml_program(), "model.mlmodel");
    assert_eq!(r.format.as_deref(), Some("coreml"), "{r:?}");
    assert_eq!(r.variant.as_deref(), Some("mlProgram"), "{r:?}");
    // Another version, a broken sentinel, an offset that is not right
    // after its metadata, an unknown data type: not blob storage.
    for (at, v) in [(4, 1u8), (64, 0xee), (80, 0xc0), (68, 99)] {
        let mut bad = bytes.clone();
        bad[at] = v;
        let r = inspect(&bad, "weight.bin");
        assert_ne!(r.variant.as_deref(), Some("blob_storage"), "{at}: {r:?}");
    }
    // Every prefix of the head and a flipped byte anywhere in it: no panic.
    for cut in 0..300 {
        let _ = inspect(&bytes[..cut], "weight.bin");
        let mut bad = bytes.clone();
        bad[cut] ^= 0xff;
        let _ = inspect(&bad, "weight.bin");
    }
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
