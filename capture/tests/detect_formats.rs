//! Format fingerprints on generated weight files (every format, several
//! dtypes, random chunkings) and on negative traps.

use crate::detect_common::{meta, run_object};
use capture::detect::format::{FormatDetector, Identified, Verdict, identify};
use capture::detect::{DetectConfig, Detector};
use capture::object::ObjectEnd;
use eve::{AlertCategory, WeightFormat};
use fixtures::weights::{DType, Format, ModelSpec, negative, safetensors, tfckpt};
use std::sync::Arc;

fn detector() -> FormatDetector {
    FormatDetector::new(Arc::new(DetectConfig::default()))
}

fn identified(bytes: &[u8]) -> Identified {
    match identify(&bytes[..bytes.len().min(1 << 20)], bytes.len() <= 1 << 20) {
        Verdict::Match(id) => id,
        other => panic!("not identified: {other:?}"),
    }
}

#[test]
fn every_format_is_recognised_in_random_chunkings() {
    let spec = ModelSpec::tiny();
    let det = detector();
    for (i, format) in Format::ALL.iter().enumerate() {
        for dtype in [DType::BF16, DType::F32, DType::I8] {
            let f = format.write(&spec, dtype, 7 + i as u64);
            for (seed, max) in [(1, 1500), (2, 70_000)] {
                let (finding, fmt) =
                    run_object(&det, &meta(&f.name, f.bytes.len()), &f.bytes, 0, seed, max);
                let finding =
                    finding.unwrap_or_else(|| panic!("{format:?} {dtype:?} not detected"));
                assert_eq!(
                    finding.category,
                    AlertCategory::WeightsFormat,
                    "{format:?} {dtype:?}"
                );
                assert_eq!(
                    fmt.map(|f| f.as_str()),
                    Some(format.expected_format()),
                    "{format:?}"
                );
                assert_eq!(
                    finding.evidence["format"].as_str(),
                    Some(format.expected_format()),
                    "{format:?} {dtype:?}: {:?}",
                    finding.evidence
                );
                assert!((1..=3).contains(&finding.severity));
            }
        }
    }
}

#[test]
fn evidence_counts_tensors_params_and_names() {
    let spec = ModelSpec::tiny();
    let n_tensors = spec.tensor_shapes().len() as u64;
    let params = spec.parameters();

    let st = identified(&Format::Safetensors.write(&spec, DType::BF16, 1).bytes);
    assert_eq!((st.tensors, st.params), (n_tensors, params));
    assert!(st.dtypes.contains("bf16"));
    assert_eq!(st.model_name.as_deref(), Some("ww-tiny-llama"));
    let bytes = Format::Safetensors.write(&spec, DType::BF16, 1).bytes;
    assert_eq!(st.declared_bytes, Some(bytes.len() as u64));

    // Quantised safetensors carry a scale tensor per weight.
    let q = identified(&Format::Safetensors.write(&spec, DType::I8, 1).bytes);
    assert_eq!(q.tensors, 2 * n_tensors);
    assert!(q.dtypes.contains("i8") && q.dtypes.contains("f32"));

    let gguf_bytes = Format::Gguf.write(&spec, DType::F16, 2).bytes;
    let g = identified(&gguf_bytes);
    assert_eq!(g.architecture.as_deref(), Some("llama"));
    assert_eq!(g.model_name.as_deref(), Some("ww-tiny-llama"));
    assert_eq!((g.tensors, g.params), (n_tensors, params));
    assert_eq!(g.declared_bytes, Some(gguf_bytes.len() as u64));
    let gq = identified(&Format::Gguf.write(&spec, DType::I8, 2).bytes);
    assert!(gq.dtypes.contains("q8_0"), "{:?}", gq.dtypes);

    for f in [Format::PytorchZip, Format::PytorchPickle] {
        let t = identified(&f.write(&spec, DType::BF16, 3).bytes);
        assert_eq!((t.tensors, t.params), (n_tensors, params), "{f:?}");
        assert!(t.dtypes.contains("bf16"), "{f:?}");
    }
    let o = identified(&Format::Onnx.write(&spec, DType::F16, 4).bytes);
    assert_eq!((o.tensors, o.params), (n_tensors, params));
    assert!(o.dtypes.contains("f16"));
    let t = identified(&Format::Tflite.write(&spec, DType::F32, 5).bytes);
    assert_eq!((t.tensors, t.params), (n_tensors, params));
    let c = identified(&Format::TfCheckpointIndex.write(&spec, DType::F32, 6).bytes);
    assert_eq!((c.tensors, c.params), (n_tensors, params));
    assert_eq!(c.declared_bytes, Some(params * 4));

    let tar = identified(&Format::Tar.write(&spec, DType::BF16, 8).bytes);
    assert!(
        tar.members
            .iter()
            .any(|m| m.ends_with("model-00001-of-00002.safetensors")),
        "{:?}",
        tar.members
    );
    assert_eq!(
        tar.inner.as_ref().map(|i| i.format),
        Some(WeightFormat::Safetensors)
    );
    for f in [Format::TarGz, Format::TarZst] {
        let z = identified(&f.write(&spec, DType::BF16, 8).bytes);
        assert_eq!(z.format, WeightFormat::Tar, "{f:?}");
        assert!(z.detail.is_some());
    }
    let k = identified(&Format::Keras.write(&spec, DType::F32, 9).bytes);
    assert_eq!((k.format, k.detail), (WeightFormat::Zip, Some("keras")));

    // HDF5: datasets counted and typed by walking the root group's B-tree.
    for (d, name) in [
        (DType::BF16, "bf16"),
        (DType::F16, "f16"),
        (DType::F32, "f32"),
    ] {
        let h = identified(&Format::Hdf5.write(&spec, d, 10).bytes);
        assert_eq!(h.format, WeightFormat::Hdf5);
        assert_eq!((h.tensors, h.params), (n_tensors, params), "{d:?}");
        assert_eq!(h.dtypes.iter().collect::<Vec<_>>(), [name], "{d:?}");
    }
    // A damaged B-tree address leaves the file recognised, without a count.
    let mut h = Format::Hdf5.write(&spec, DType::F32, 10).bytes;
    let tree = h.windows(4).position(|w| w == b"TREE").expect("B-tree");
    h[tree] = b'X';
    let d = identified(&h);
    assert_eq!((d.format, d.tensors), (WeightFormat::Hdf5, 0));
}

#[test]
fn tf_data_shard_is_named_and_tensor_shaped() {
    let spec = ModelSpec::tiny();
    let ckpt = tfckpt::write(&spec.tensors(DType::F32, 11));
    let det = detector();
    let name = "/upload/model.ckpt.data-00000-of-00001";
    let (f, fmt) = run_object(&det, &meta(name, ckpt.data.len()), &ckpt.data, 0, 3, 9000);
    assert_eq!(fmt, Some(WeightFormat::TfCheckpoint));
    assert_eq!(
        f.map(|f| f.evidence["variant"].clone()),
        Some("data_shard".into())
    );
    // The same bytes without the name are not a format (tensor stats' job).
    let (f, _) = run_object(
        &det,
        &meta("blob.bin", ckpt.data.len()),
        &ckpt.data,
        0,
        3,
        9000,
    );
    assert!(f.is_none());
}

#[test]
fn sharded_safetensors_shards_each_recognised() {
    let spec = ModelSpec::tiny();
    let files = safetensors::write_sharded(&spec.tensors(DType::BF16, 3), &spec, 3);
    let det = detector();
    let shards: Vec<_> = files
        .iter()
        .filter(|(n, _)| n.ends_with(".safetensors"))
        .collect();
    assert_eq!(shards.len(), 3);
    for (name, bytes) in shards {
        let (f, fmt) = run_object(&det, &meta(name, bytes.len()), bytes, 0, 5, 20_000);
        assert!(f.is_some(), "{name}");
        assert_eq!(fmt, Some(WeightFormat::Safetensors));
    }
}

#[test]
fn negatives_raise_no_weights_alert() {
    let det = detector();
    for kind in negative::KINDS {
        for seed in 0..3 {
            let bytes = negative::make(kind, seed, 300_000).expect("known kind");
            let (f, _) = run_object(&det, &meta("file", bytes.len()), &bytes, 0, seed, 30_000);
            match (kind, f) {
                ("image_npy", Some(f)) => {
                    assert_eq!(f.category, AlertCategory::TensorData);
                    assert_eq!(f.severity, 3);
                    assert_eq!(f.evidence["dtypes"][0], "u8");
                }
                ("image_npy", None) => panic!("uint8 image npy should be tensor_data"),
                (_, Some(f)) => panic!("{kind} seed {seed}: {f:?}"),
                (_, None) => {}
            }
        }
    }
}

#[test]
fn files_under_the_threshold_are_silent() {
    let spec = ModelSpec::micro();
    let det = detector();
    for format in Format::ALL {
        let f = format.write(&spec, DType::F32, 1);
        if f.bytes.len() >= DetectConfig::default().min_object_bytes as usize {
            continue;
        }
        let (finding, _) = run_object(&det, &meta(&f.name, f.bytes.len()), &f.bytes, 0, 1, 4000);
        assert!(
            finding.is_none(),
            "{format:?} ({} bytes): {finding:?}",
            f.bytes.len()
        );
    }
}

#[test]
fn stray_magics_in_text_do_not_alert() {
    let mut text = negative::make("text", 4, 200_000).expect("text");
    for (at, magic) in [
        (100usize, &b"GGUF"[..]),
        (5000, b"PK\x03\x04"),
        (9000, b"\x89HDF\r\n\x1a\n"),
        (12000, b"\x93NUMPY"),
        (20000, b"ustar"),
        (30000, b"TFL3"),
        (0, b"\x08\x08\x12\x07pytorch"),
    ] {
        text[at..at + magic.len()].copy_from_slice(magic);
    }
    let det = detector();
    let (f, fmt) = run_object(&det, &meta("notes.txt", text.len()), &text, 0, 9, 5000);
    assert!(f.is_none() && fmt.is_none(), "{f:?}");
}

/// The scan keeps the magics of earlier attempts (at 4 KiB, 16 KiB, …) and
/// scans only new bytes: a GGUF whose magic an attempt's end cuts is still
/// found, at the same offset the whole buffer gives.
#[test]
fn a_magic_cut_by_an_attempt_boundary_is_found() {
    let gguf = Format::Gguf.write(&ModelSpec::tiny(), DType::F16, 3).bytes;
    let det = detector();
    for at in (4090..=4097).chain(16_380..=16_385) {
        let mut bytes = b"GET /index.html 200\n".repeat(at / 20 + 1);
        bytes.truncate(at);
        bytes.extend_from_slice(&gguf);
        let whole = identified(&bytes);
        assert_eq!(whole.offset, at as u64);
        let mut scan = det.begin(&meta("blob.bin", bytes.len())).expect("scan");
        let mut finding = None;
        let cuts = [0, 4096, 16_384, bytes.len()];
        for w in cuts.windows(2) {
            finding = finding.or(scan.data(w[0] as u64, &bytes[w[0]..w[1]]));
        }
        let f = finding
            .or_else(|| scan.end(ObjectEnd::Complete))
            .unwrap_or_else(|| panic!("GGUF at {at} not detected"));
        let mut want = whole.evidence();
        let size = whole.declared_bytes.unwrap_or(bytes.len() as u64);
        want.insert("object_bytes".into(), size.into());
        assert_eq!(f.evidence, want, "at {at}");
    }
}

#[test]
fn model_archive_without_a_declared_size_alerts_once_big_enough() {
    let spec = ModelSpec::tiny();
    let f = Format::Zip.write(&spec, DType::BF16, 2);
    let mut m = meta(&f.name, 0);
    m.declared_size = None;
    let det: &dyn Detector = &detector();
    let (finding, _) = run_object(det, &m, &f.bytes, 0, 2, 3000);
    let finding = finding.expect("zip of a model directory");
    assert!(
        finding.evidence["model_members"]
            .as_array()
            .is_some_and(|a| !a.is_empty())
    );
}

#[test]
fn damaged_and_truncated_files_never_panic() {
    let spec = ModelSpec::tiny();
    let mut r = fixtures::weights::Rng::new(42);
    for format in Format::ALL {
        let f = format.write(&spec, DType::F16, 3);
        let head = &f.bytes[..f.bytes.len().min(300_000)];
        for round in 0..40 {
            let mut b = head.to_vec();
            // Flip a few bytes in the first KiB (headers), sometimes truncate.
            for _ in 0..(1 + round % 6) {
                let i = r.below(b.len().min(1024) as u64) as usize;
                b[i] = r.next_u64() as u8;
            }
            if round % 3 == 0 {
                b.truncate(r.below(b.len() as u64) as usize);
            }
            let _ = identify(&b, round % 2 == 0);
        }
    }
    for _ in 0..200 {
        let n = r.below(5000) as usize;
        let _ = identify(&r.bytes(n), true);
    }
}
