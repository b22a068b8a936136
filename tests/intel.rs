//! `[intel] lists` end to end: replaying captures raises `intel_match`
//! naming the list and line, for a listed domain (the HTTP Host or TLS SNI
//! is a subdomain of it) and for an address in a feed's CSV export.

use std::path::Path;
use std::process::Command;

/// Replay `pcap` with `lists`; the `intel_match` alerts' evidence.
fn intel_alerts(dir: &Path, pcap: &str, lists: &[&Path]) -> Vec<serde_json::Value> {
    let cfg = dir.join("weightwatch.toml");
    let quoted: Vec<String> = lists
        .iter()
        .map(|p| format!("{:?}", p.display().to_string()))
        .collect();
    std::fs::write(&cfg, format!("[intel]\nlists = [{}]\n", quoted.join(", "))).unwrap();
    let eve = dir.join("eve.json");
    let _ = std::fs::remove_file(&eve); // the sink appends
    let out = Command::new(env!("CARGO_BIN_EXE_weightwatch"))
        .arg("--config")
        .arg(&cfg)
        .args(["capture", "--no-progress", "--eve"])
        .arg(&eve)
        .arg("--read")
        .arg(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("fixtures/pcaps")
                .join(pcap),
        )
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
        .filter(|e| e["event_type"] == "alert" && e["alert"]["category"] == "intel_match")
        .map(|e| {
            assert_eq!(e["alert"]["signature_id"], 4_100_700);
            e["evidence"].clone()
        })
        .collect()
}

#[test]
fn listed_domains_and_addresses_raise_intel_match() {
    let dir = tempfile::tempdir().unwrap();
    let domains = dir.path().join("domains.txt");
    std::fs::write(
        &domains,
        "# lab blocklist\nexample.org\nexample-storage.net   # file hosting\nexample.internal\n",
    )
    .unwrap();
    let feed = dir.path().join("feed.csv");
    std::fs::write(
        &feed,
        "# first_seen_utc,dst_ip,dst_port,c2_status,last_online,malware\n\
         \"2024-05-01 10:00:00\",\"192.0.2.1\",443,\"online\",2024-05-02,Emotet\n\
         \"2024-05-01 10:00:00\",\"10.2.0.20\",443,\"online\",2024-05-02,QakBot\n",
    )
    .unwrap();

    // The TLS upload's SNI is upload.example-storage.net: a subdomain.
    let tls = intel_alerts(dir.path(), "tls13_upload.pcap", &[&domains]);
    assert_eq!(tls.len(), 1, "{tls:?}");
    assert_eq!(tls[0]["matched"], "TLS server name");
    assert_eq!(tls[0]["value"], "upload.example-storage.net");
    assert_eq!(tls[0]["entry"], "example-storage.net");
    assert_eq!(tls[0]["line"], 3);
    assert_eq!(tls[0]["list"], domains.display().to_string());

    // The HTTP PUT's Host is weights.example.internal.
    let http = intel_alerts(dir.path(), "http_upload_put.pcap", &[&domains]);
    assert_eq!(http.len(), 1, "{http:?}");
    assert_eq!(http[0]["matched"], "HTTP Host");
    assert_eq!(http[0]["line"], 4);

    // Its destination address is in the feed's third line.
    let ip = intel_alerts(dir.path(), "http_upload_put.pcap", &[&feed]);
    assert_eq!(ip.len(), 1, "{ip:?}");
    assert_eq!(ip[0]["matched"], "destination address");
    assert_eq!(ip[0]["value"], "10.2.0.20");
    assert_eq!(ip[0]["line"], 3);

    // Unlisted: nothing.
    let other = dir.path().join("other.txt");
    std::fs::write(&other, "example.com\n198.51.100.0/24\n").unwrap();
    assert!(intel_alerts(dir.path(), "http_upload_put.pcap", &[&other]).is_empty());
}
