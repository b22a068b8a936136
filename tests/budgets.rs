//! `[[policy.budgets]]` end to end: the 150 KiB HTTP PUT from 10.1.0.10 to
//! 10.2.0.20 goes over a 100 kB host budget and a 100 kB pair budget (one
//! alert each run, naming the scope and window), and stays under 1 MB ones.

use std::path::Path;
use std::process::Command;

/// Replay the upload under `budgets` (TOML of `[[policy.budgets]]`
/// entries); the budget alerts' evidence.
fn budget_alerts(dir: &Path, budgets: &str) -> Vec<serde_json::Value> {
    let cfg = dir.join("weightwatch.toml");
    // The per-flow and per-window volume alerts stay quiet (1 GB).
    std::fs::write(
        &cfg,
        format!(
            "[policy]\ninternal_networks = [\"10.1.0.0/16\"]\nupload_alert_bytes = 1000000000\n{budgets}"
        ),
    )
    .unwrap();
    let eve = dir.join("eve.json");
    let _ = std::fs::remove_file(&eve);
    let out = Command::new(env!("CARGO_BIN_EXE_weightwatch"))
        .arg("--config")
        .arg(&cfg)
        .args(["capture", "--no-progress", "--eve"])
        .arg(&eve)
        .arg("--read")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/pcaps/http_upload_put.pcap"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read_to_string(&eve)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|e| e["event_type"] == "alert")
        .map(|e| {
            assert_eq!(e["alert"]["signature_id"], 4_100_402, "{e}");
            assert_eq!(e["alert"]["category"], "egress_volume");
            e["evidence"].clone()
        })
        .collect()
}

#[test]
fn budgets_per_host_and_per_pair() {
    let dir = tempfile::tempdir().unwrap();
    let host = budget_alerts(
        dir.path(),
        "[[policy.budgets]]\nwindow_secs = 60\nhost_bytes = 100000\n\
         [[policy.budgets]]\nwindow_secs = 86400\nhost_bytes = 1000000\n",
    );
    assert_eq!(host.len(), 1, "{host:?}");
    assert_eq!(host[0]["budget_scope"], "host");
    assert_eq!(host[0]["budget_window_secs"], 60);
    assert_eq!(host[0]["internal_host"], "10.1.0.10");
    assert!(host[0]["window_bytes_out"].as_u64().unwrap() > 100_000);

    let pair = budget_alerts(
        dir.path(),
        "[[policy.budgets]]\nwindow_secs = 3600\npair_bytes = 100000\n",
    );
    assert_eq!(pair.len(), 1, "{pair:?}");
    assert_eq!(pair[0]["budget_scope"], "host_destination");
    assert_eq!(pair[0]["destination"], "10.2.0.20");

    let under = budget_alerts(
        dir.path(),
        "[[policy.budgets]]\nwindow_secs = 60\nhost_bytes = 1000000\npair_bytes = 1000000\n",
    );
    assert!(under.is_empty(), "{under:?}");
}
