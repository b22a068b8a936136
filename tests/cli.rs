//! The command line describes every subcommand and rejects bad configuration.

use std::process::Command;

fn weightwatch() -> Command {
    Command::new(env!("CARGO_BIN_EXE_weightwatch"))
}

#[test]
fn every_subcommand_has_help() {
    for sub in [
        "capture", "index", "analyze", "serve", "token", "user", "purge", "demo", "bench",
        "fixtures",
    ] {
        let out = weightwatch().args([sub, "--help"]).output().unwrap();
        assert!(out.status.success(), "{sub} --help failed");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("Usage: weightwatch"), "{sub}: {text}");
    }
}

#[test]
fn unknown_config_key_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("w.toml");
    std::fs::write(&cfg, "[sinks]\nnot_a_key = 1\n").unwrap();
    let out = weightwatch()
        .args(["--config", cfg.to_str().unwrap(), "token", "list", "--db"])
        .arg(dir.path().join("x.db"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not_a_key"), "{err}");
}
