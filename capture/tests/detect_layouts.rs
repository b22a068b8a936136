//! Model layouts others use, written here by their rules and named by
//! `inspect` (the sensor's parsers): GGML `ggjt` (llama.cpp before GGUF),
//! quantized safetensors (EXL2, GPTQ, AWQ, bitsandbytes) and MLX, Keras 3
//! `.keras`, and model directories in archives (TensorFlow SavedModel,
//! NeMo, PaddlePaddle, Core ML packages); one of each over HTTP through
//! the sensor.

use crate::engine_support::{Frames, replay, write_pcap};
use capture::detect::inspect::{Report, inspect_bytes};
use capture::detect::{DetectConfig, PolicyConfig, build};
use eve::{AlertCategory, EventKind};
use fixtures::payload::Payload;
use fixtures::scenario;
use fixtures::tcp::SessionOptions;
use fixtures::weights::{
    DType, Format, ModelSpec, WeightFile, archive, coreml, ggml, numpy, tfckpt, torch,
};
use serde_json::{Map, Value, json};

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

fn assert_named(r: &Report, format: &str, variant: Option<&str>) {
    assert_eq!(r.format.as_deref(), Some(format), "{r:?}");
    assert_eq!(r.variant.as_deref(), variant, "{r:?}");
}

/// A safetensors file of `(name, dtype, shape)` tensors (data: a
/// deterministic byte pattern) with `metadata`.
fn safetensors(tensors: &[(&str, &str, &[u64])], metadata: Option<Value>) -> Vec<u8> {
    let size = |d: &str| match d {
        "I32" | "F32" => 4,
        "F16" | "BF16" | "I16" => 2,
        _ => 1,
    };
    let mut header = Map::new();
    if let Some(m) = metadata {
        header.insert("__metadata__".into(), m);
    }
    let mut off = 0u64;
    for (name, dtype, shape) in tensors {
        let n = shape.iter().product::<u64>() * size(dtype);
        header.insert(
            (*name).into(),
            json!({"dtype": dtype, "shape": shape, "data_offsets": [off, off + n]}),
        );
        off += n;
    }
    let h = serde_json::to_vec(&Value::Object(header)).expect("json");
    let mut out = (h.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&h);
    out.extend((0..off).map(|i| ((i * 2_654_435_761) >> 13) as u8));
    out
}

#[test]
fn quantized_and_mlx_safetensors_report_the_quantization() {
    let l = "model.layers.0.self_attn.q_proj";
    let name = |s: &str| format!("{l}.{s}");
    let (qw, qz, sc, gi) = (
        name("qweight"),
        name("qzeros"),
        name("scales"),
        name("g_idx"),
    );
    let gptq = safetensors(
        &[
            (&qw, "I32", &[512, 4096]),
            (&qz, "I32", &[32, 512]),
            (&sc, "F16", &[32, 4096]),
            (&gi, "I32", &[4096]),
        ],
        None,
    );
    assert_named(
        &inspect(&gptq, "model.safetensors"),
        "safetensors",
        Some("gptq"),
    );
    let awq = safetensors(
        &[
            (&qw, "I32", &[4096, 512]),
            (&qz, "I32", &[32, 512]),
            (&sc, "F16", &[32, 4096]),
        ],
        Some(json!({"format": "pt"})),
    );
    assert_named(
        &inspect(&awq, "model.safetensors"),
        "safetensors",
        Some("awq"),
    );
    let (q, p, s) = (name("q_weight"), name("q_invperm"), name("q_scale"));
    let exl2 = safetensors(
        &[
            (&q, "I32", &[1024, 4096]),
            (&p, "I16", &[4096]),
            (&s, "I32", &[64, 512]),
        ],
        None,
    );
    assert_named(
        &inspect(&exl2, "output.safetensors"),
        "safetensors",
        Some("exl2"),
    );
    let (w, st) = (name("weight"), name("weight.quant_state.bitsandbytes__nf4"));
    let bnb = safetensors(&[(&w, "U8", &[8_388_608, 1]), (&st, "U8", &[64])], None);
    assert_named(
        &inspect(&bnb, "model.safetensors"),
        "safetensors",
        Some("bitsandbytes"),
    );
    let mlx = safetensors(
        &[(&w, "F16", &[4096, 4096])],
        Some(json!({"format": "mlx"})),
    );
    assert_named(
        &inspect(&mlx, "model.safetensors"),
        "safetensors",
        Some("mlx"),
    );
    let plain = safetensors(&[(&w, "F16", &[4096, 4096])], Some(json!({"format": "pt"})));
    assert_named(&inspect(&plain, "model.safetensors"), "safetensors", None);
}

#[test]
fn ggjt_files_are_named_as_legacy_gguf() {
    // Small enough that every tensor header lies in the first MiB.
    let spec = fixtures::weights::pcaps::spec();
    for (version, f16) in [(1, false), (2, true), (3, true)] {
        let bytes = ggml::write_ggjt(&spec, f16, 70 + version as u64, version);
        let r = inspect(&bytes, "ggml-model-q4_0.bin");
        assert_named(&r, "gguf", Some("ggjt"));
        assert_eq!(r.tensors, spec.tensor_shapes().len() as u64, "{r:?}");
        assert_eq!(r.params, spec.parameters(), "{r:?}");
        assert!(r.dtypes.contains(if f16 { "f16" } else { "f32" }), "{r:?}");
    }
    // The magic alone, with absurd hyper-parameters, is not a model.
    let mut fake = b"tjgg\x01\0\0\0".to_vec();
    fake.extend(std::iter::repeat_n(0xffu8, 4096));
    assert_eq!(inspect(&fake, "x.bin").format.as_deref(), None);
}

fn file(name: &str, bytes: Vec<u8>) -> WeightFile {
    WeightFile {
        name: name.into(),
        bytes,
    }
}

/// A model directory in an archive: the archive, its name, the format,
/// variant and inner format `inspect` must report.
type Directory = (
    Vec<u8>,
    &'static str,
    &'static str,
    &'static str,
    Option<&'static str>,
);

/// The model directories.
fn directories() -> Vec<Directory> {
    let spec = ModelSpec::tiny();
    let tensors = spec.tensors(DType::F32, 80);
    let ckpt = tfckpt::write(&tensors);
    let saved = archive::zip(&[
        file(
            "resnet/saved_model.pb",
            b"\x08\x01\x12\x04\x0a\x02\x08\x01".to_vec(),
        ),
        file("resnet/variables/variables.index", ckpt.index),
        file("resnet/variables/variables.data-00000-of-00001", ckpt.data),
    ]);
    let nemo = archive::tar(&[
        file(
            "./model_config.yaml",
            b"target: nemo.collections.asr.models.EncDecCTCModel\n".to_vec(),
        ),
        file("./model_weights.ckpt", torch::write_zip(&tensors)),
    ]);
    let paddle = archive::tar(&[
        file("inference/model.pdmodel", b"\x0a\x04feed".to_vec()),
        file("inference/model.pdparams", numpy::write_pickled(&tensors)),
    ]);
    let mlpackage = archive::zip(&[
        file("m.mlpackage/Manifest.json", b"{}".to_vec()),
        file(
            "m.mlpackage/Data/com.apple.CoreML/model.mlmodel",
            coreml::write_ml_program(),
        ),
        file(
            "m.mlpackage/Data/com.apple.CoreML/weights/weight.bin",
            coreml::write_weight_bin(&tensors),
        ),
    ]);
    let keras = Format::Keras.write(&spec, DType::F32, 81).bytes;
    vec![
        (
            saved,
            "saved_model.zip",
            "zip",
            "saved_model",
            Some("tf_checkpoint"),
        ),
        (nemo, "asr.nemo", "tar", "nemo", Some("pytorch_zip")),
        (paddle, "ocr.tar", "tar", "paddle", Some("npy")),
        (
            mlpackage,
            "m.mlpackage.zip",
            "zip",
            "mlpackage",
            Some("coreml"),
        ),
        (keras, "model.keras", "zip", "keras", Some("hdf5")),
    ]
}

#[test]
fn model_directories_in_archives_are_named() {
    for (bytes, name, format, variant, inner) in directories() {
        let r = inspect(&bytes, name);
        assert_named(&r, format, Some(variant));
        if let Some(i) = inner {
            let m = r
                .member
                .as_ref()
                .unwrap_or_else(|| panic!("{name}: no member {r:?}"));
            assert_eq!(m.format.as_deref(), Some(i), "{name}: {r:?}");
        }
    }
}

#[test]
fn each_layout_over_http_is_named_by_the_sensor() {
    let mut cases: Vec<(Vec<u8>, String, &str, &str)> = directories()
        .into_iter()
        .map(|(b, n, f, v, _)| (b, n.to_string(), f, v))
        .collect();
    let spec = ModelSpec::tiny();
    cases.push((
        ggml::write_ggjt(&spec, true, 90, 3),
        "ggml-model-f16.bin".into(),
        "gguf",
        "ggjt",
    ));
    let mut frames = Frames::default();
    for (i, (bytes, name, _, _)) in cases.iter().enumerate() {
        scenario::http_upload_put(
            &mut frames,
            &SessionOptions::ipv4(44_000 + i as u16, 80),
            &format!("/upload/{name}"),
            &Payload::Bytes(bytes),
        )
        .expect("session");
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let pcap = dir.path().join("layouts.pcap");
    write_pcap(&pcap, frames.0);
    let detectors =
        build(&PolicyConfig::default(), &DetectConfig::default(), None).expect("detectors");
    let (_, events) = replay(&[pcap], 1, &detectors);
    let mut got: Vec<(String, String)> = events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Alert(a) if a.alert.category == AlertCategory::WeightsFormat => {
                let s = |k: &str| {
                    a.evidence
                        .get(k)
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string()
                };
                Some((s("format"), s("variant")))
            }
            _ => None,
        })
        .collect();
    got.sort();
    let mut want: Vec<(String, String)> = cases
        .iter()
        .map(|(_, _, f, v)| (f.to_string(), v.to_string()))
        .collect();
    want.sort();
    assert_eq!(got, want);
}

#[test]
fn pickled_arrays_are_named_npy_pickle() {
    let tensors = fixtures::weights::pcaps::spec().tensors(DType::F32, 95);
    let r = inspect(&numpy::write_pickled(&tensors), "model.pdparams");
    assert_named(&r, "npy", Some("pickle"));
    assert_eq!(r.tensors, tensors.len() as u64, "{r:?}");
    assert!(r.dtypes.contains("f32"), "{r:?}");
    // A pickle of plain Python values is not.
    let mut p = fixtures::weights::pickle::Pickler::new();
    p.empty_dict()
        .mark()
        .string("lr")
        .int(3)
        .string("name")
        .string("x");
    p.setitems();
    assert_eq!(inspect(&p.finish(), "state.pkl").format, None);
}
