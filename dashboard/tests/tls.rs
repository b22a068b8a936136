//! HTTPS with the test's own CA: the dashboard serves its certificate, a
//! sensor's sink trusting only that CA delivers over it, clients that do not
//! trust the CA (or speak plain HTTP) get nothing, the session cookie is
//! `Secure`, and a reloaded certificate is used for new connections.

use crate::common::sensor_alert;
use dashboard::{DashboardConfig, Scope, Server};
use eve::AlertCategory;
use eve::sink::EventSink;
use eve::sink::http::{HttpSink, HttpSinkConfig, private_ca};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// A CA that signs leaf certificates for the names asked.
struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

impl TestCa {
    fn new() -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "weightwatch test CA");
        let key = KeyPair::generate().unwrap();
        let pem = params.self_signed(&key).unwrap().pem();
        TestCa {
            issuer: Issuer::new(params, key),
            pem,
        }
    }

    /// Write a certificate for `names` and its key to `cert`, `key`.
    fn leaf(&self, names: &[&str], cert: &Path, key: &Path) {
        let params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        let k = KeyPair::generate().unwrap();
        let c = params.signed_by(&k, &self.issuer).unwrap();
        std::fs::write(cert, c.pem()).unwrap();
        std::fs::write(key, k.serialize_pem()).unwrap();
    }
}

struct TlsServer {
    addr: SocketAddr,
    db: PathBuf,
    tls: Arc<dashboard::tls::TlsFiles>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

fn start(dir: &Path, cert: &Path, key: &Path) -> TlsServer {
    let db = dir.join("ww.db");
    let (tx, rx) = std::sync::mpsc::channel();
    let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let (db2, cert, key) = (db.clone(), cert.to_path_buf(), key.to_path_buf());
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let server = Server::bind(&DashboardConfig::default(), &db2, "127.0.0.1:0")
                .await
                .unwrap()
                .with_tls(&cert, &key)
                .unwrap();
            tx.send((server.local_addr().unwrap(), server.tls().unwrap()))
                .unwrap();
            server
                .serve(async move {
                    let _ = stop_rx.await;
                })
                .await
                .unwrap();
        });
    });
    let (addr, tls) = rx.recv().unwrap();
    TlsServer {
        addr,
        db,
        tls,
        _stop: stop,
    }
}

fn agent(tls: Option<ureq::tls::TlsConfig>) -> ureq::Agent {
    let mut b = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(20)));
    if let Some(t) = tls {
        b = b.tls_config(t);
    }
    b.build().into()
}

#[test]
fn https_with_a_private_ca() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new();
    let ca_pem = dir.path().join("ca.pem");
    std::fs::write(&ca_pem, &ca.pem).unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    // First a certificate for another name: 127.0.0.1 does not match it.
    ca.leaf(&["dashboard.lab.internal"], &cert, &key);
    let srv = start(dir.path(), &cert, &key);
    let base = format!("https://127.0.0.1:{}", srv.addr.port());
    let trusting = agent(Some(private_ca(&ca_pem).unwrap()));
    assert!(
        trusting.get(format!("{base}/healthz")).call().is_err(),
        "a certificate for another name must be refused"
    );

    // Renewed for the right name: reloaded without a restart.
    ca.leaf(&["127.0.0.1", "localhost"], &cert, &key);
    srv.tls.reload().unwrap();
    let r = trusting.get(format!("{base}/healthz")).call().unwrap();
    assert_eq!(r.status(), 200);

    // A client with only the public roots does not trust the lab's CA, and
    // plain HTTP gets no HTTP answer.
    assert!(agent(None).get(format!("{base}/healthz")).call().is_err());
    let plain = agent(None)
        .get(format!("http://127.0.0.1:{}/healthz", srv.addr.port()))
        .call();
    assert!(plain.is_err(), "plain HTTP answered: {plain:?}");

    // A sensor's sink trusting only the CA delivers over HTTPS.
    let ingest = dashboard::admin::create_token(&srv.db, Scope::Ingest, "sensor").unwrap();
    let mut sink_cfg = HttpSinkConfig::new(&base, ingest, dir.path().join("spool"));
    sink_cfg.ca_cert = Some(ca_pem.clone());
    sink_cfg.close_timeout = Duration::from_secs(30);
    let mut sink = HttpSink::start(sink_cfg).unwrap();
    let alert: eve::Event = serde_json::from_value(sensor_alert(
        "tls-alert-1",
        30,
        AlertCategory::WeightsFormat,
        1,
        7,
        "10.0.0.5",
        "203.0.113.9",
        "upload.example",
    ))
    .unwrap();
    sink.emit(&alert).unwrap();
    sink.close().expect("delivered over HTTPS");
    assert_eq!(
        sink.stats()
            .delivered
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    let read = dashboard::admin::create_token(&srv.db, Scope::Read, "reader").unwrap();
    let mut r = trusting
        .get(format!("{base}/api/v1/alerts"))
        .header("Authorization", &format!("Bearer {read}"))
        .call()
        .unwrap();
    let body = r.body_mut().read_to_string().unwrap();
    assert!(body.contains("tls-alert-1"), "{body}");

    // The session cookie is Secure under TLS.
    dashboard::admin::add_user(&srv.db, "alice", "correct horse battery staple").unwrap();
    let no_redirects: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .tls_config(private_ca(&ca_pem).unwrap())
        .build()
        .into();
    let r = no_redirects
        .post(format!("{base}/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .send("username=alice&password=correct+horse+battery+staple")
        .unwrap();
    assert_eq!(r.status(), 303);
    let cookie = r
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(cookie.contains("; Secure"), "{cookie}");
}
