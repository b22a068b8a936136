//! Deployment: the systemd units pass `systemd-analyze verify` against this
//! build's binary, the Debian package (cargo-deb, from the debug binary: the
//! release build is too slow for CI) holds the binary, units, conffiles and
//! maintainer scripts, and a live sensor reopens its EVE file on SIGHUP as
//! logrotate's `postrotate` asks. Tests whose tool is missing (or that need
//! root) say so on stderr and pass without checking; the install on a clean
//! Debian is `packaging/test/install-in-chroot.sh` (root, network).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const UNITS: [&str; 4] = [
    "weightwatch-capture@.service",
    "weightwatch-dashboard.service",
    "weightwatch-analyze.service",
    "weightwatch-analyze.timer",
];

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn have(tool: &str, arg: &str) -> bool {
    Command::new(tool)
        .arg(arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn skip(test: &str, why: &str) {
    eprintln!("SKIPPED {test}: {why}");
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Copy the units from `units` into `dir` with their `/usr/bin/weightwatch`
/// replaced by `binary`, and run `systemd-analyze verify` on them (the
/// sensor's template as an instance). Any complaint, warnings included, is
/// an error.
fn verify_units(units: &Path, binary: &Path, dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).unwrap();
    let mut paths = vec![];
    for unit in UNITS {
        let text = std::fs::read_to_string(units.join(unit)).unwrap();
        let text = text.replace("/usr/bin/weightwatch", &binary.display().to_string());
        let name = unit.replace("@.service", "@eth1.service");
        std::fs::write(dir.join(&name), text).unwrap();
        paths.push(dir.join(name));
    }
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .args(&paths)
        .output()
        .expect("run systemd-analyze");
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.success() && stderr.trim().is_empty() {
        Ok(())
    } else {
        Err(format!("systemd-analyze verify: {}\n{stderr}", out.status))
    }
}

#[test]
fn units_pass_systemd_analyze_verify() {
    if !have("systemd-analyze", "--version") {
        return skip(
            "units_pass_systemd_analyze_verify",
            "no systemd-analyze (apt-get install systemd)",
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let binary = Path::new(env!("CARGO_BIN_EXE_weightwatch"));
    let units = repo().join("packaging/systemd");
    verify_units(&units, binary, dir.path()).unwrap_or_else(|e| panic!("{e}"));
    // The check is real: a misspelt option is reported.
    let bad = dir.path().join("bad");
    std::fs::create_dir_all(&bad).unwrap();
    for unit in UNITS {
        let text = std::fs::read_to_string(units.join(unit)).unwrap();
        std::fs::write(
            bad.join(unit),
            text.replace("ProtectSystem=", "ProtectSystm="),
        )
        .unwrap();
    }
    let err = verify_units(&bad, binary, &dir.path().join("bad-out"))
        .expect_err("a misspelt option went unnoticed");
    assert!(err.contains("ProtectSystm"), "{err}");
}

/// `cargo deb` from the debug binary into `dir`; `None` when cargo-deb is missing.
fn build_deb(dir: &Path) -> Option<PathBuf> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    if !Command::new(&cargo)
        .args(["deb", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
    {
        return None;
    }
    let deb = dir.join("weightwatch.deb");
    run(Command::new(&cargo)
        .current_dir(repo())
        .args([
            "deb",
            "--no-build",
            "--profile",
            "dev",
            "--fast",
            "--quiet",
            "--output",
        ])
        .arg(&deb));
    Some(deb)
}

fn dpkg_deb(args: &[&str], deb: &Path) -> String {
    String::from_utf8(run(Command::new("dpkg-deb").args(args).arg(deb)).stdout).unwrap()
}

#[test]
fn the_debian_package_holds_binary_units_conffiles_and_scripts() {
    const TEST: &str = "the_debian_package_holds_binary_units_conffiles_and_scripts";
    if !have("dpkg-deb", "--version") {
        return skip(TEST, "no dpkg-deb");
    }
    let dir = tempfile::tempdir().unwrap();
    let Some(deb) = build_deb(dir.path()) else {
        return skip(TEST, "no cargo-deb (cargo install cargo-deb --locked)");
    };
    let info = dpkg_deb(&["--info"], &deb);
    for want in [
        "Package: weightwatch",
        "libpcap0.8",
        "adduser",
        "postinst",
        "prerm",
        "postrm",
    ] {
        assert!(info.contains(want), "no {want:?} in\n{info}");
    }
    let ctrl = dir.path().join("control");
    run(Command::new("dpkg-deb")
        .arg("--control")
        .arg(&deb)
        .arg(&ctrl));
    let mut conf: Vec<String> = std::fs::read_to_string(ctrl.join("conffiles"))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    conf.sort();
    assert_eq!(
        conf,
        [
            "/etc/logrotate.d/weightwatch",
            "/etc/weightwatch/weightwatch.env",
            "/etc/weightwatch/weightwatch.toml"
        ]
    );
    let postinst = std::fs::read_to_string(ctrl.join("postinst")).unwrap();
    assert!(postinst.contains("adduser --system"), "{postinst}");

    let contents = dpkg_deb(&["--contents"], &deb);
    for (path, mode) in [
        ("./usr/bin/weightwatch", "-rwxr-xr-x"),
        ("./etc/weightwatch/weightwatch.env", "-rw-------"),
        ("./etc/weightwatch/weightwatch.toml", "-rw-r--r--"),
        ("./etc/logrotate.d/weightwatch", "-rw-r--r--"),
        ("./usr/share/doc/weightwatch/deploy.md", "-rw-r--r--"),
        (
            "./usr/share/doc/weightwatch/weightwatch.example.toml",
            "-rw-r--r--",
        ),
    ] {
        assert!(
            contents
                .lines()
                .any(|l| l.starts_with(mode) && l.ends_with(path)),
            "no {mode} {path} in\n{contents}"
        );
    }

    // What is inside works together: the packaged binary runs, reads the
    // packaged configuration, and the packaged units verify against it.
    let root = dir.path().join("root");
    run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&root));
    let binary = root.join("usr/bin/weightwatch");
    let version = run(Command::new(&binary).arg("--version")).stdout;
    assert_eq!(
        String::from_utf8_lossy(&version).trim(),
        format!("weightwatch {}", env!("CARGO_PKG_VERSION"))
    );
    run(Command::new(&binary)
        .arg("--config")
        .arg(root.join("etc/weightwatch/weightwatch.toml"))
        .args(["token", "list", "--db"])
        .arg(dir.path().join("check.db")));
    if have("systemd-analyze", "--version") {
        verify_units(
            &root.join("lib/systemd/system"),
            &binary,
            &dir.path().join("units"),
        )
        .unwrap_or_else(|e| panic!("the packaged units: {e}"));
    }
}

/// Poll `cond` every 50 ms for up to `secs` (a deadline, not a measurement).
fn wait_for(secs: u64, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    cond()
}

fn lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[test]
fn a_live_sensor_reopens_its_eve_file_on_sighup() {
    const TEST: &str = "a_live_sensor_reopens_its_eve_file_on_sighup";
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("w.toml");
    std::fs::write(&cfg, "[capture]\nstats_interval_secs = 1\n").unwrap();
    let eve = dir.path().join("eve-lo.json");
    let mut sensor = Command::new(env!("CARGO_BIN_EXE_weightwatch"))
        .arg("--config")
        .arg(&cfg)
        .args(["capture", "--interface", "lo", "--workers", "1", "--eve"])
        .arg(&eve)
        .env("WEIGHTWATCH_SENSOR_ID", "sighup-test")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the sensor");
    // A stats event every second: the first one shows capture is running.
    if !wait_for(20, || !lines(&eve).is_empty()) {
        let _ = sensor.kill();
        let out = sensor.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        if err.contains("ermission") || err.contains("not permitted") {
            return skip(TEST, "live capture on lo needs CAP_NET_RAW (run as root)");
        }
        panic!("no stats event from the sensor: {err}");
    }
    // logrotate: rename, then SIGHUP (as postrotate's `systemctl kill` does).
    let rotated = dir.path().join("eve-lo.json.1");
    std::fs::rename(&eve, &rotated).unwrap();
    let hup = Command::new("kill")
        .args(["-HUP", &sensor.id().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    let reopened = wait_for(20, || !lines(&eve).is_empty());
    let alive = sensor.try_wait().unwrap().is_none();
    let _ = Command::new("kill")
        .args(["-TERM", &sensor.id().to_string()])
        .status();
    let out = sensor.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(alive, "the sensor died on SIGHUP: {err}");
    assert!(reopened, "no event in the reopened EVE file: {err}");
    assert!(out.status.success(), "{err}");
    let (old, new) = (lines(&rotated), lines(&eve));
    for e in old.iter().chain(&new) {
        assert_eq!(e["sensor_id"], "sighup-test", "{e}");
    }
    // No event written to both files.
    let ids: std::collections::HashSet<_> =
        old.iter().chain(&new).map(|e| &e["event_id"]).collect();
    assert_eq!(ids.len(), old.len() + new.len());
    assert_eq!(
        new.last().unwrap()["event_type"],
        "stats",
        "the final stats event goes to the new file"
    );
}
