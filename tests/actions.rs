//! `[[actions]]` end to end: replaying a capture whose upload raises an
//! egress alert runs the configured webhook and command. The webhook
//! receiver checks the HMAC signature itself; the command adds the alert's
//! destination to a real nftables set in a network namespace the test makes.

use hmac::{Hmac, Mac};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc;

fn weightwatch() -> Command {
    Command::new(env!("CARGO_BIN_EXE_weightwatch"))
}

/// A capture with one 150 KiB HTTP PUT from 10.1.0.10 to 10.2.0.20.
fn upload_pcap() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/pcaps/http_upload_put.pcap")
}

/// Policy under which that upload is an egress alert (severity 2).
const POLICY: &str =
    "[policy]\ninternal_networks = [\"10.1.0.0/16\"]\nupload_alert_bytes = 100000\n";

fn replay(dir: &Path, config: &str, env: &[(&str, &str)]) {
    let cfg = dir.join("weightwatch.toml");
    std::fs::write(&cfg, config).unwrap();
    let out = weightwatch()
        .arg("--config")
        .arg(&cfg)
        .args(["capture", "--no-progress", "--eve"])
        .arg(dir.join("eve.json"))
        .arg("--read")
        .arg(upload_pcap())
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let eve = std::fs::read_to_string(dir.join("eve.json")).unwrap();
    assert!(
        eve.contains("\"category\":\"egress_volume\""),
        "the replay raised no egress alert: {eve}"
    );
}

#[test]
fn webhook_posts_signed_alert() {
    let dir = tempfile::tempdir().unwrap();
    let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let port = server.server_addr().to_ip().unwrap().port();
    let (tx, rx) = mpsc::channel();
    let receiver = std::thread::spawn(move || {
        // The first request must be the signed alert; answer 503 to it once
        // so the retry from the spool is exercised, then 200.
        for (i, mut req) in server.incoming_requests().enumerate() {
            let sig = req
                .headers()
                .iter()
                .find(|h| h.field.equiv("X-Weightwatch-Signature"))
                .map(|h| h.value.to_string())
                .unwrap_or_default();
            let mut body = Vec::new();
            req.as_reader().read_to_end(&mut body).unwrap();
            let status = if i == 0 { 503 } else { 200 };
            let _ = req.respond(tiny_http::Response::empty(status));
            tx.send((sig, body)).unwrap();
            if i == 1 {
                return;
            }
        }
    });
    let config = format!(
        "{POLICY}\n[[actions]]\nname = \"hook\"\nwebhook = \"http://127.0.0.1:{port}/ww\"\n\
         secret_env = \"WW_TEST_HOOK_KEY\"\ncategories = [\"egress_volume\"]\nmin_severity = 2\n\
         spool_dir = \"{}\"\n",
        dir.path().join("hook-spool").display()
    );
    replay(dir.path(), &config, &[("WW_TEST_HOOK_KEY", "s3cret-key")]);
    receiver.join().unwrap();
    let posts: Vec<(String, Vec<u8>)> = rx.iter().collect();
    assert_eq!(posts.len(), 2, "one refused attempt and one retry");
    assert_eq!(posts[0].1, posts[1].1, "the retry resends the same body");
    for (sig, body) in &posts {
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(b"s3cret-key").unwrap();
        mac.update(body);
        let want = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        assert_eq!(sig, &want, "signature over the body");
    }
    let alert: serde_json::Value = serde_json::from_slice(&posts[1].1).unwrap();
    assert_eq!(alert["event_type"], "alert");
    assert_eq!(alert["alert"]["category"], "egress_volume");
    assert_eq!(alert["dest_ip"], "10.2.0.20");
}

#[test]
fn webhook_below_min_severity_is_not_called() {
    let dir = tempfile::tempdir().unwrap();
    let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let port = server.server_addr().to_ip().unwrap().port();
    // The egress alert is severity 2: an action for severity 1 only ignores it.
    let config = format!(
        "{POLICY}\n[[actions]]\nname = \"hook\"\nwebhook = \"http://127.0.0.1:{port}/ww\"\n\
         secret_env = \"WW_TEST_HOOK_KEY\"\nmin_severity = 1\nspool_dir = \"{}\"\n",
        dir.path().join("hook-spool").display()
    );
    replay(dir.path(), &config, &[("WW_TEST_HOOK_KEY", "k")]);
    assert!(
        server.try_recv().unwrap().is_none(),
        "the webhook was called for an alert below its severity"
    );
}

/// A network namespace with an nftables set, deleted when dropped.
struct Netns(String);

impl Netns {
    fn create() -> Option<Netns> {
        let name = format!("ww-act-{}", std::process::id());
        let ok = Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            return None;
        }
        let ns = Netns(name);
        for rule in [
            "add table inet filter",
            "add set inet filter weightwatch_block { type ipv4_addr; }",
            "add chain inet filter output { type filter hook output priority 0; policy accept; }",
            "add rule inet filter output ip daddr @weightwatch_block drop",
        ] {
            let st = ns.nft(rule);
            assert!(st.status.success(), "nft {rule}: {st:?}");
        }
        Some(ns)
    }

    fn nft(&self, rule: &str) -> std::process::Output {
        Command::new("ip")
            .args(["netns", "exec", &self.0, "nft"])
            .args(rule.split(' '))
            .output()
            .unwrap()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

#[test]
fn command_adds_destination_to_nftables_set() {
    let have_nft = Command::new("nft").arg("--version").output().is_ok();
    assert!(
        have_nft,
        "nft is missing: run scripts/setup.sh --tests (installs nftables)"
    );
    let Some(ns) = Netns::create() else {
        // Making a namespace needs root (CAP_SYS_ADMIN); CI runs as root.
        eprintln!("skipped: cannot create a network namespace (not root?)");
        return;
    };
    let before = ns.nft("list set inet filter weightwatch_block");
    assert!(!String::from_utf8_lossy(&before.stdout).contains("10.2.0.20"));
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "{POLICY}\n[[actions]]\nname = \"block\"\ncategories = [\"egress_volume\"]\n\
         command = [\"ip\", \"netns\", \"exec\", \"{}\", \"nft\", \"add\", \"element\", \"inet\", \
         \"filter\", \"weightwatch_block\", \"{{ {{dest_ip}} }}\"]\n",
        ns.0
    );
    replay(dir.path(), &config, &[]);
    let after = ns.nft("list set inet filter weightwatch_block");
    let listed = String::from_utf8_lossy(&after.stdout);
    assert!(
        listed.contains("elements = { 10.2.0.20 }"),
        "the destination was not added to the set: {listed}"
    );
    // And the set drops traffic to it: with the address on the namespace's
    // loopback, a connection to a closed port there is refused at once when
    // allowed, and hangs (SYN dropped) until `timeout` ends it when blocked.
    let exec = |args: &[&str]| {
        Command::new("ip")
            .args(["netns", "exec", &ns.0])
            .args(args)
            .output()
            .unwrap()
    };
    assert!(exec(&["ip", "link", "set", "lo", "up"]).status.success());
    let added = exec(&["ip", "addr", "add", "10.2.0.20/32", "dev", "lo"]);
    assert!(added.status.success(), "{added:?}");
    let connect = |addr: &str| {
        let script = format!("exec 3<>/dev/tcp/{addr}/9");
        exec(&["timeout", "3", "bash", "-c", &script]).status.code()
    };
    assert_eq!(
        connect("127.0.0.1"),
        Some(1),
        "an allowed address refuses at once"
    );
    assert_eq!(
        connect("10.2.0.20"),
        Some(124),
        "the blocked address should drop the SYN"
    );
}
