//! `weightwatch inspect` through the real binary: one JSON object per file
//! (stdout is a pipe here), the format and evidence of fixtures of several
//! formats, and a clear error (exit status 1) for a file that cannot be read
//! after the others are printed.

use fixtures::weights::{DType, Format, ModelSpec, torch};
use serde_json::Value;
use std::process::Command;

#[test]
fn inspect_prints_one_json_object_per_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = ModelSpec::tiny();
    let st = Format::Safetensors.write(&spec, DType::BF16, 61);
    let gguf = Format::Gguf.write(&spec, DType::F16, 62);
    let files = [
        ("model.safetensors", st.bytes.clone()),
        ("model.gguf", gguf.bytes.clone()),
        (
            "scripted.pt",
            torch::write_torchscript(&spec.tensors(DType::F32, 63), 3),
        ),
        ("notes.txt", b"nothing to see here\n".repeat(100)),
    ];
    let mut paths = Vec::new();
    for (name, bytes) in &files {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).expect("write");
        paths.push(p);
    }
    let missing = dir.path().join("missing.bin");
    let out = Command::new(env!("CARGO_BIN_EXE_weightwatch"))
        .arg("inspect")
        .args(&paths)
        .arg(&missing)
        .output()
        .expect("run weightwatch");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a missing file must fail the run");
    assert!(stderr.contains("missing.bin"), "{stderr}");
    let reports: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(reports.len(), 4, "{stdout}");
    let want = [
        ("safetensors", None),
        ("gguf", None),
        ("pytorch_zip", Some("torchscript")),
    ];
    for (r, (format, variant)) in reports.iter().zip(want) {
        assert_eq!(r["format"], format, "{r}");
        if let Some(v) = variant {
            assert_eq!(r["variant"], v, "{r}");
        }
        assert!(r["tensors"].as_u64() >= Some(1), "{r}");
        assert!(r["size"].as_u64() > Some(0), "{r}");
    }
    assert_eq!(reports[0]["params"], spec.parameters(), "{}", reports[0]);
    assert_eq!(reports[0]["dtypes"], serde_json::json!(["bf16"]));
    assert_eq!(reports[1]["architecture"], "llama", "{}", reports[1]);
    assert_eq!(reports[3]["format"], Value::Null, "{}", reports[3]);
}
