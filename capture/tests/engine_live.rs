//! Live capture on real traffic (root only; skipped with a message
//! otherwise): a network namespace and a veth pair, a file served by
//! `python3 -m http.server` inside the namespace and fetched with `curl`
//! from outside, captured at once by the engine's live source and by
//! `tcpdump` to a file. Both must give the file's SHA-256.
//!
//! Impairment: this kernel has no netem, so loss comes from a token-bucket
//! filter (`tc qdisc … tbf`) with a small queue on the server's side of the
//! veth: bursts beyond it are tail-dropped before the capture point, so the
//! sensor sees holes that TCP fills later with retransmissions (segments
//! out of order at the sensor). Pure reordering without loss is not
//! produced (no netem `reorder`).

use crate::engine_support::{replay, replay_with};
use capture::decode::ChecksumMode;
use capture::detect::Detectors;
use capture::{CaptureConfig, LiveOptions, Settings, run_live};
use eve::EventKind;
use eve::sink::memory::MemorySink;
use sha2::{Digest, Sha256};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

fn have(cmd: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {cmd}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn sh(cmd: &str) -> bool {
    Command::new("sh")
        .args(["-c", cmd])
        .status()
        .is_ok_and(|s| s.success())
}

/// Namespace, veth and server, removed on drop.
struct Lab {
    ns: String,
    host_if: String,
    children: Vec<Child>,
}

impl Drop for Lab {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        sh(&format!("ip link del {} 2>/dev/null", self.host_if));
        sh(&format!("ip netns del {} 2>/dev/null", self.ns));
    }
}

#[test]
fn live_capture_and_tcpdump_give_the_served_files_sha256() {
    if !is_root() {
        eprintln!("SKIP live capture test: needs root (network namespace, veth, raw capture)");
        return;
    }
    for tool in ["ip", "tc", "python3", "curl", "tcpdump"] {
        if !have(tool) {
            eprintln!("SKIP live capture test: `{tool}` is not installed");
            return;
        }
    }
    let id = std::process::id() % 100_000;
    let net = 10 + (id % 200);
    let mut lab = Lab {
        ns: format!("wwlive{id}"),
        host_if: format!("wwh{id}"),
        children: Vec::new(),
    };
    let peer = format!("wwn{id}");
    let (host_ip, srv_ip) = (format!("10.213.{net}.1"), format!("10.213.{net}.2"));
    let ok = sh(&format!(
        "set -e; ip netns add {ns}; ip link add {h} type veth peer name {p}; \
         ip link set {p} netns {ns}; ip addr add {host_ip}/24 dev {h}; ip link set {h} up; \
         ip -n {ns} addr add {srv_ip}/24 dev {p}; ip -n {ns} link set {p} up; ip -n {ns} link set lo up; \
         ip netns exec {ns} tc qdisc add dev {p} root tbf rate 200mbit burst 32kb limit 64kb",
        ns = lab.ns,
        h = lab.host_if,
        p = peer,
    ));
    if !ok {
        eprintln!("SKIP live capture test: could not create the namespace/veth lab");
        return;
    }
    // The served file: 6 MB of non-repeating bytes.
    let dir = tempfile::tempdir().expect("tempdir");
    let mut body = Vec::with_capacity(6 << 20);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    while body.len() < 6 << 20 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        body.extend_from_slice(&x.to_le_bytes());
    }
    std::fs::write(dir.path().join("weights.bin"), &body).expect("write file");
    let want = format!("{:x}", Sha256::digest(&body));
    let server = Command::new("ip")
        .args([
            "netns",
            "exec",
            &lab.ns,
            "python3",
            "-m",
            "http.server",
            "8000",
        ])
        .args(["--bind", &srv_ip, "--directory"])
        .arg(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("http.server");
    lab.children.push(server);
    let pcap = dir.path().join("tcpdump.pcap");
    let tcpdump = Command::new("tcpdump")
        .args(["-i", &lab.host_if, "-s", "0", "-U", "-w"])
        .arg(&pcap)
        .arg("tcp port 8000")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("tcpdump");
    lab.children.push(tcpdump);
    // The engine, live, in a thread.
    let mut sink = MemorySink::new();
    let events = sink.clone();
    let opts = LiveOptions {
        interface: lab.host_if.clone(),
        bpf: Some("tcp port 8000".into()),
        snaplen: 65535,
    };
    let settings = Settings {
        workers: 2,
        ..Default::default()
    };
    let control = settings.control.clone();
    let live =
        std::thread::spawn(move || run_live(&opts, &settings, &Detectors::none(), &mut sink));
    // Setup waits (not assertions): the server, tcpdump and libpcap start.
    let url = format!("http://{srv_ip}:8000/weights.bin");
    let mut fetched = false;
    for _ in 0..50 {
        std::thread::sleep(Duration::from_millis(200));
        if sh(&format!("curl -sf -o /dev/null http://{srv_ip}:8000/")) {
            fetched = sh(&format!(
                "curl -sf -o {}/got.bin {url}",
                dir.path().display()
            ));
            break;
        }
    }
    assert!(fetched, "curl could not fetch {url}");
    let got = std::fs::read(dir.path().join("got.bin")).expect("fetched file");
    assert_eq!(format!("{:x}", Sha256::digest(&got)), want);
    std::thread::sleep(Duration::from_millis(1500));
    control.request_stop();
    let summary = live.join().expect("live thread").expect("live capture");
    // Stop tcpdump cleanly (SIGINT flushes its file).
    if let Some(t) = lab.children.get_mut(1) {
        sh(&format!("kill -INT {}", t.id()));
        let _ = t.wait();
    }
    let live_hashes = hashes(&events.events());
    let live_checksum_drops = summary.stats.get("decoder", "invalid_tcp_checksum");
    eprintln!(
        "live: {} packets, tcp gaps {}, out-of-order {}, kernel drops {}, checksum offloaded {}, dropped for checksum {}, files {live_hashes:?}",
        summary.packets(),
        summary.stats.get("tcp", "gaps"),
        summary.stats.get("tcp", "out_of_order"),
        summary.stats.get("capture", "kernel_drops"),
        summary.stats.get("decoder", "checksum_offloaded"),
        live_checksum_drops,
    );
    // The file with checksums trusted: reassembly alone, on real loss and
    // retransmission, must give the served bytes.
    let trusting = Settings {
        config: CaptureConfig {
            checksum_validation: ChecksumMode::No,
            ..Default::default()
        },
        ..Default::default()
    };
    let (offline, ev) = replay_with(std::slice::from_ref(&pcap), trusting, &Detectors::none());
    let file_hashes = hashes(&ev);
    eprintln!(
        "tcpdump file: {} packets, gaps {}, out-of-order {}, duplicates/retransmissions {}, files {file_hashes:?}",
        offline.packets(),
        offline.stats.get("tcp", "gaps"),
        offline.stats.get("tcp", "out_of_order"),
        offline.stats.get("tcp", "duplicates"),
    );
    assert!(
        file_hashes.contains(&want),
        "tcpdump file: {file_hashes:?}, want {want}"
    );
    // The same file under the default `auto` checksum policy. A veth's
    // checksum state depends on the kernel: here every packet carries the
    // unfinished (offloaded) checksum and `auto` accepts both senders;
    // a kernel that finishes some of a sender's checksums in software
    // makes that sender mixed, and `auto` then drops its bad packets by
    // design (a forger's junk looks the same). So `auto` must give the
    // file, or say which packets it dropped for their checksum.
    let (auto, ev) = replay(std::slice::from_ref(&pcap), 1, &Detectors::none());
    let auto_hashes = hashes(&ev);
    let auto_checksum_drops = auto.stats.get("decoder", "invalid_tcp_checksum");
    eprintln!(
        "tcpdump file, checksums auto: offloaded {}, dropped for checksum {auto_checksum_drops}, files {auto_hashes:?}",
        auto.stats.get("decoder", "checksum_offloaded"),
    );
    assert!(
        auto_hashes.contains(&want) || auto_checksum_drops > 0,
        "tcpdump file, checksums auto: {auto_hashes:?} with no packet dropped for its checksum, want {want}"
    );
    assert!(
        live_hashes.contains(&want) || live_checksum_drops > 0,
        "live capture: {live_hashes:?} with no packet dropped for its checksum, want {want}"
    );
}

/// The SHA-256 of every file in `events`.
fn hashes(events: &[eve::Event]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Fileinfo(f) => f.fileinfo.sha256.clone(),
            _ => None,
        })
        .collect()
}
