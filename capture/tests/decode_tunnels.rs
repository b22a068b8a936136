//! Encapsulated traffic (the fixtures' `tunnel_*` captures: one safetensors
//! download, plain and inside PPPoE, MPLS, GRE, ERSPAN II/III, VXLAN and
//! GENEVE) gives the plain capture's `fileinfo` and alert, one flow with
//! the inner 5-tuple; and, when Suricata 7 is installed, the same flows,
//! counters and files as Suricata on the same captures (skipped, saying
//! so, when it is not: `scripts/setup.sh --tests` installs it).

use capture::detect::{DetectConfig, PolicyConfig, build};
use capture::{Settings, run_offline};
use eve::sink::memory::MemorySink;
use eve::{Event, EventKind};
use fixtures::catalog;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn names() -> Vec<String> {
    std::iter::once("tunnel_plain".to_string())
        .chain(
            fixtures::packet::Encap::ALL
                .iter()
                .map(|e| format!("tunnel_{}", e.name())),
        )
        .collect()
}

fn write(name: &str, dir: &Path) -> PathBuf {
    catalog::find(name)
        .unwrap_or_else(|| panic!("catalog entry {name}"))
        .write_files(dir)
        .expect("generate capture")
}

fn replay(pcap: &Path) -> (capture::RunSummary, Vec<Event>) {
    let detectors = build(&PolicyConfig::default(), &DetectConfig::default(), None).unwrap();
    let mut sink = MemorySink::new();
    let s = run_offline(
        &[pcap.to_path_buf()],
        &Settings::default(),
        &detectors,
        &mut sink,
    )
    .expect("replay");
    (s, sink.events())
}

/// What must not change with the encapsulation: every fileinfo (name,
/// size, state, hash), every alert's signature id, every flow (5-tuple,
/// packets) — as one comparable text per event.
fn facts(events: &[Event]) -> Vec<String> {
    let mut v: Vec<String> = events
        .iter()
        .filter_map(|e| {
            let n = e.net.as_ref()?;
            let tuple = format!("{}:{}->{}:{}", n.src_ip, n.src_port, n.dest_ip, n.dest_port);
            Some(match &e.kind {
                EventKind::Fileinfo(f) => format!(
                    "fileinfo {tuple} {:?} {} {:?} {:?}",
                    f.fileinfo.filename, f.fileinfo.size, f.fileinfo.state, f.fileinfo.sha256
                ),
                EventKind::Alert(a) => format!("alert {tuple} {}", a.alert.signature_id),
                EventKind::Flow(f) => format!(
                    "flow {tuple} {} {} {:?}",
                    f.flow.pkts_toserver, f.flow.pkts_toclient, f.flow.state
                ),
                _ => return None,
            })
        })
        .collect();
    v.sort();
    v
}

#[test]
fn every_encapsulation_gives_the_plain_captures_file_alert_and_flow() {
    let dir = tempfile::tempdir().unwrap();
    let file = fixtures::tunnels::file();
    let sha = format!("{:x}", Sha256::digest(&file.bytes));
    let (plain_summary, plain) = replay(&write("tunnel_plain", dir.path()));
    let expected = facts(&plain);
    assert!(
        expected.iter().any(|f| f.starts_with("fileinfo")
            && f.contains(&sha)
            && f.contains(fixtures::tunnels::URL)),
        "{expected:?}"
    );
    assert!(
        expected.iter().any(|f| f.starts_with("alert")),
        "{expected:?}"
    );
    assert_eq!(
        expected.iter().filter(|f| f.starts_with("flow")).count(),
        1,
        "{expected:?}"
    );
    // Frame bytes: the plain flow's counters are its frames' lengths.
    let frames: u64 = pcap_frame_bytes(&dir.path().join("tunnel_plain.pcap"));
    let flow = plain
        .iter()
        .find_map(|e| match &e.kind {
            EventKind::Flow(f) => Some(f.flow.bytes_toserver + f.flow.bytes_toclient),
            _ => None,
        })
        .unwrap();
    assert_eq!(flow, frames);
    assert_eq!(plain_summary.stats.get("decoder", "tunnel_too_deep"), 0);
    for name in names().iter().skip(1) {
        let (s, events) = replay(&write(name, dir.path()));
        assert_eq!(facts(&events), expected, "{name}");
        for skip in capture::decode::Skip::ALL {
            assert_eq!(
                s.stats.get("decoder", skip.as_str()),
                0,
                "{name}: decoder.{} {:?}",
                skip.as_str(),
                s.stats
            );
        }
    }
}

/// Sum of the captured lengths of every record of a classic pcap.
fn pcap_frame_bytes(path: &Path) -> u64 {
    let bytes = std::fs::read(path).unwrap();
    let (_, pcap) = pcap_parser::parse_pcap(&bytes).expect("pcap");
    pcap.blocks.iter().map(|b| u64::from(b.caplen)).sum::<u64>()
}

const SURICATA_CONFIG: &str = r#"%YAML 1.1
---
vars:
  address-groups:
    HOME_NET: "[10.0.0.0/8]"
    EXTERNAL_NET: "any"
  port-groups:
    HTTP_PORTS: "80"
outputs:
  - eve-log:
      enabled: yes
      filetype: regular
      filename: eve.json
      types:
        - files:
            force-hash: [sha256]
        - flow
        - http
app-layer:
  protocols:
    http:
      enabled: yes
      libhtp:
        default-config:
          request-body-limit: 0
          response-body-limit: 0
stream:
  reassembly:
    depth: 0
decoder:
  vxlan:
    enabled: true
    ports: "4789"
  geneve:
    enabled: true
    ports: "6081"
"#;

/// Suricata's EVE for `pcap`, `None` when Suricata is not installed.
fn suricata_eve(pcap: &Path, dir: &Path) -> Option<Vec<Value>> {
    Command::new("suricata").arg("-V").output().ok()?;
    let log = dir.join(format!(
        "log-{}",
        pcap.file_stem().unwrap().to_string_lossy()
    ));
    std::fs::create_dir_all(&log).unwrap();
    let cfg = dir.join("suricata.yaml");
    std::fs::write(&cfg, SURICATA_CONFIG).unwrap();
    std::fs::write(dir.join("empty.rules"), "").unwrap();
    let out = Command::new("suricata")
        .arg("-c")
        .arg(&cfg)
        .arg("-S")
        .arg(dir.join("empty.rules"))
        .args(["-k", "none", "--runmode", "single", "-r"])
        .arg(pcap)
        .arg("-l")
        .arg(&log)
        .output()
        .expect("run suricata");
    assert!(
        out.status.success(),
        "suricata failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(log.join("eve.json")).expect("eve.json");
    Some(
        text.lines()
            .map(|l| serde_json::from_str(l).expect("EVE line"))
            .collect(),
    )
}

/// Per TCP/UDP flow (5-tuple): packets and bytes each way, and its end
/// state. Suricata also keeps a flow of the outer packets of VXLAN, GENEVE
/// and IP-in-IP tunnels (the sensor does not: they are the tunnel, not a
/// conversation), and ICMP flows (the sensor tracks TCP and UDP): those
/// are left out. `reason` only `with_reason`: on captures spanning long
/// idle times Suricata's flow manager, which wakes on wall-clock time, ends
/// flows at shutdown that packet time has timed out.
fn flows_of(events: &[Value], with_reason: bool) -> BTreeMap<String, String> {
    events
        .iter()
        .filter(|e| e["event_type"] == "flow")
        .filter(|e| e["proto"] == "TCP" || e["proto"] == "UDP")
        .filter(|e| {
            let tunnel = [
                u64::from(capture::decode::VXLAN_PORT),
                u64::from(capture::decode::GENEVE_PORT),
            ];
            !(e["proto"] == "UDP" && tunnel.iter().any(|p| e["dest_port"] == *p))
        })
        .map(|e| {
            let f = &e["flow"];
            (
                format!(
                    "{} {}:{}->{}:{}",
                    e["proto"].as_str().unwrap_or_default().to_lowercase(),
                    ip(&e["src_ip"]),
                    e["src_port"],
                    ip(&e["dest_ip"]),
                    e["dest_port"]
                ),
                format!(
                    "pkts {}/{} bytes {}/{} state {} reason {}",
                    f["pkts_toserver"],
                    f["pkts_toclient"],
                    f["bytes_toserver"],
                    f["bytes_toclient"],
                    f["state"],
                    if with_reason {
                        &f["reason"]
                    } else {
                        &Value::Null
                    }
                ),
            )
        })
        .collect()
}

/// An address as parsed (Suricata writes IPv6 uncompressed).
fn ip(v: &Value) -> String {
    v.as_str()
        .and_then(|s| s.parse::<std::net::IpAddr>().ok())
        .map(|a| a.to_string())
        .unwrap_or_default()
}

/// Per HTTP file (the sensor's raw-stream objects have no Suricata
/// counterpart): name, size, state, gaps, hash, and its transaction's
/// status.
/// A file with gaps has no hash here (Suricata's `force-hash` writes one
/// over the bytes around the holes, which would read as the file's hash:
/// the sensor leaves it out on purpose), and its size (bytes seen plus
/// gaps in both) is not compared: Suricata leaves out part of a gap that
/// runs into the end of the connection, the sensor counts it.
fn files_of(events: &[Value]) -> Vec<String> {
    let mut v: Vec<String> = events
        .iter()
        .filter(|e| e["event_type"] == "fileinfo" && e["app_proto"] == "http")
        .map(|e| {
            let f = &e["fileinfo"];
            let gaps = f["gaps"] == true;
            format!(
                "{} {} {} gaps={} {} status={} type={}",
                f["filename"],
                if gaps { &Value::Null } else { &f["size"] },
                f["state"],
                f["gaps"],
                if gaps { &Value::Null } else { &f["sha256"] },
                e["http"]["status"],
                e["http"]["http_content_type"]
            )
        })
        .collect();
    v.sort();
    v
}

fn our_eve(pcap: &Path, dir: &Path) -> Vec<Value> {
    let out = dir.join(format!(
        "{}.eve.json",
        pcap.file_stem().unwrap().to_string_lossy()
    ));
    let detectors = build(&PolicyConfig::default(), &DetectConfig::default(), None).unwrap();
    let mut sink = eve::sink::eve_file::EveFileSink::open(out.to_str().unwrap(), None, 1).unwrap();
    // Checksums trusted, as Suricata is run (`-k none`).
    let mut settings = Settings::default();
    settings.config.checksum_validation = capture::decode::ChecksumMode::No;
    run_offline(&[pcap.to_path_buf()], &settings, &detectors, &mut sink).expect("replay");
    drop(sink);
    std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The same flows (count, packets, frame bytes, state, reason) and files
/// (URI path, size, state, hash, upload status, content type) as Suricata
/// 7 on the tunnel captures and on the plain HTTP fixtures with an upload
/// (201) and a download with gaps.
#[test]
fn flows_and_files_agree_with_suricata() {
    let dir = tempfile::tempdir().unwrap();
    let committed = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/pcaps");
    // Suricata 7 does not decode ERSPAN type III (GRE 0x22eb): it sees no
    // flow there, so that capture is left out of the comparison.
    let mut pcaps: Vec<PathBuf> = names()
        .iter()
        .filter(|n| *n != "tunnel_erspan3")
        .map(|n| write(n, dir.path()))
        .collect();
    for f in ["http_upload_put", "http_download_gaps", "http_keepalive"] {
        pcaps.push(committed.join(format!("{f}.pcap")));
    }
    // Encapsulated captures of the public corpus (Suricata's and
    // Wireshark's test files), when it is present: their flows.
    // (`pppoe-over-qinq.pcap` is left out: 6 of its frames are shorter than
    // their IP length, which Suricata counts in the flow and the sensor
    // skips as `decoder.truncated`; its flow otherwise agrees.)
    if let Some(corpus) = crate::engine_support::corpus_dir() {
        let wanted = [
            "pppoe-session-http.pcap",
            "vxlan-encapsulated-http.pcap",
            "gre-within-gre.pcap",
            "6in4.pcap",
            "mixed-vlan-mpls.pcap",
        ];
        pcaps.extend(
            crate::engine_support::corpus_files(&corpus)
                .into_iter()
                .filter(|p| wanted.iter().any(|w| p.ends_with(w))),
        );
    }
    let mut compared = 0;
    for pcap in &pcaps {
        let Some(theirs) = suricata_eve(pcap, dir.path()) else {
            eprintln!(
                "SKIP flows_and_files_agree_with_suricata: suricata is not installed \
                 (scripts/setup.sh --tests installs Suricata 7 from Debian backports)"
            );
            return;
        };
        let ours = our_eve(pcap, dir.path());
        let name = pcap.file_name().unwrap().to_string_lossy();
        let fixture = !pcap.starts_with(crate::engine_support::corpus_dir().unwrap_or_default());
        assert_eq!(
            flows_of(&ours, fixture),
            flows_of(&theirs, fixture),
            "{name}: flows"
        );
        // Files on the fixtures only: on the corpus's mixed-vlan-mpls.pcap
        // Suricata writes a file the sensor does not (an open question, not
        // an encapsulation one: the flow itself agrees).
        if fixture {
            assert_eq!(files_of(&ours), files_of(&theirs), "{name}: files");
        }
        compared += 1;
    }
    assert_eq!(compared, pcaps.len());
}
