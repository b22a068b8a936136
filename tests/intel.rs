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

/// Lines of a child's stderr, read on a thread of their own.
fn stderr_lines(child: &mut std::process::Child) -> std::sync::mpsc::Receiver<String> {
    use std::io::BufRead;
    let err = std::io::BufReader::new(child.stderr.take().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for l in err.lines().map_while(Result::ok) {
            if tx.send(l).is_err() {
                return;
            }
        }
    });
    rx
}

/// Wait for a stderr line containing `text` (bounded, so a missing line
/// fails instead of hanging); every line seen on the way in `log`.
fn wait_for(rx: &std::sync::mpsc::Receiver<String>, text: &str, log: &mut Vec<String>) {
    loop {
        let l = rx
            .recv_timeout(std::time::Duration::from_secs(120))
            .unwrap_or_else(|e| panic!("no '{text}' on stderr ({e}): {log:#?}"));
        log.push(l.clone());
        if l.contains(text) {
            return;
        }
    }
}

#[test]
fn a_changed_list_file_takes_effect_without_a_restart() {
    use fixtures::payload::Payload;
    use fixtures::pcap::{LinkType, PcapWriter};
    use fixtures::tcp::SessionOptions;
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("blocked.txt");
    std::fs::write(&list, "192.0.2.50\n").unwrap();
    let cfg = dir.path().join("weightwatch.toml");
    std::fs::write(
        &cfg,
        format!(
            "[intel]\nlists = [{:?}]\nreload_check_secs = 1\n",
            list.display().to_string()
        ),
    )
    .unwrap();
    let eve = dir.path().join("eve.json");
    // A sensor reading a pipe, as from a live tap.
    let mut sensor = Command::new(env!("CARGO_BIN_EXE_weightwatch"))
        .arg("--config")
        .arg(&cfg)
        .args(["capture", "--no-progress", "--read", "-", "--eve"])
        .arg(&eve)
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let rx = stderr_lines(&mut sensor);
    let mut log = Vec::new();
    wait_for(&rx, "threat intelligence lists loaded", &mut log);
    // The file is replaced while the sensor runs (written aside and renamed
    // over it, as feed updaters do, so it is never seen half-written): the
    // old entry goes, a new one comes (a different size, so the change
    // shows whatever the filesystem's time resolution).
    let fresh = dir.path().join("blocked.txt.new");
    std::fs::write(&fresh, "# updated\n192.0.2.60\n").unwrap();
    std::fs::rename(&fresh, &list).unwrap();
    wait_for(&rx, "an intel list changed", &mut log);
    wait_for(&rx, "threat intelligence lists loaded", &mut log);
    // Only now does traffic arrive: one upload to each address.
    let mut pcap = PcapWriter::new(sensor.stdin.take().unwrap(), LinkType::Ethernet).unwrap();
    for (i, server) in [[192, 0, 2, 50], [192, 0, 2, 60]].into_iter().enumerate() {
        let mut o = SessionOptions::ipv4(41000 + i as u16, 80);
        o.server.ip = server.into();
        o.start += i as u64 * 1_000_000;
        fixtures::scenario::http_upload_put(&mut pcap, &o, "/up", &Payload::Bytes(b"x")).unwrap();
    }
    drop(pcap); // end of input: the sensor finishes
    let status = sensor.wait().unwrap();
    assert!(status.success(), "{log:#?}");
    let hits: Vec<serde_json::Value> = std::fs::read_to_string(&eve)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|e| e["event_type"] == "alert" && e["alert"]["category"] == "intel_match")
        .collect();
    assert_eq!(hits.len(), 1, "{hits:#?} {log:#?}");
    assert_eq!(hits[0]["dest_ip"], "192.0.2.60");
    assert_eq!(hits[0]["evidence"]["line"], 2);
}
