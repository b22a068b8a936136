//! `weightwatch serve --tls-cert --tls-key` as a process: SIGHUP makes it
//! serve a renewed certificate without a restart.

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn leaf(issuer: &Issuer<'_, KeyPair>, name: &str, cert: &Path, key: &Path) {
    let k = KeyPair::generate().unwrap();
    let c = CertificateParams::new(vec![name.to_string()])
        .unwrap()
        .signed_by(&k, issuer)
        .unwrap();
    std::fs::write(cert, c.pem()).unwrap();
    std::fs::write(key, k.serialize_pem()).unwrap();
}

#[test]
fn sighup_reloads_the_certificate() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate().unwrap();
    let ca_pem = dir.path().join("ca.pem");
    std::fs::write(&ca_pem, ca.self_signed(&ca_key).unwrap().pem()).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    leaf(&issuer, "dashboard.lab.internal", &cert, &key);

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut serve = Command::new(env!("CARGO_BIN_EXE_weightwatch"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--db"])
        .arg(dir.path().join("ww.db"))
        .arg("--tls-cert")
        .arg(&cert)
        .arg("--tls-key")
        .arg(&key)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "serve did not listen");
        std::thread::sleep(Duration::from_millis(100));
    }
    let tls = eve::sink::http::private_ca(&ca_pem).unwrap();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .tls_config(tls)
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into();
    let url = format!("https://127.0.0.1:{port}/healthz");
    assert!(
        agent.get(&url).call().is_err(),
        "the first certificate does not name 127.0.0.1"
    );

    leaf(&issuer, "127.0.0.1", &cert, &key);
    let hup = Command::new("kill")
        .args(["-HUP", &serve.id().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    // New connections get the renewed certificate once the signal is handled.
    let reloaded = loop {
        if let Ok(r) = agent.get(&url).call() {
            break r.status();
        }
        if Instant::now() > deadline {
            let _ = serve.kill();
            panic!("the renewed certificate was not served after SIGHUP");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(reloaded, 200);
    assert!(
        serve.try_wait().unwrap().is_none(),
        "SIGHUP must not end serve"
    );
    let _ = serve.kill();
    let _ = serve.wait();
}
