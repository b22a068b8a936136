//! TLS to PostgreSQL: a cluster that refuses plain TCP connections
//! (`hostssl` only) and presents a certificate of the test's own CA,
//! issued for `localhost`. `sslmode=verify-full` with that CA works for
//! everything the server does (ingest, reads, the `LISTEN` connection of
//! the live stream); a wrong CA, a name the certificate does not carry, or
//! no TLS at all is refused.

use super::replicas::alert;
use crate::common::*;
use crate::pg_cluster::Cluster;
use dashboard::store::{Database, PgStore};
use dashboard::{DashboardConfig, Scope};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use std::path::Path;

/// A CA named `name` (its PEM written to `path`) that can sign certificates.
fn ca(path: &Path, name: &str) -> Issuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let key = KeyPair::generate().unwrap();
    std::fs::write(path, params.self_signed(&key).unwrap().pem()).unwrap();
    Issuer::new(params, key)
}

#[test]
fn the_store_reaches_postgres_over_verified_tls_and_nothing_less() {
    let dir = tempfile::tempdir().unwrap();
    let (ca_pem, other_pem) = (dir.path().join("ca.pem"), dir.path().join("other.pem"));
    let issuer = ca(&ca_pem, "the lab's CA");
    ca(&other_pem, "another CA");
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    let cluster = Cluster::start_tls(&cert.pem(), &key.serialize_pem()).unwrap();
    let plain = cluster.create_database();
    let on =
        |host: &str, params: &str| format!("{}?{params}", plain.replacen("127.0.0.1", host, 1));
    let root = |p: &Path| format!("sslrootcert={}", p.display());

    // Refused: no TLS; the wrong CA; a name the certificate does not carry.
    for (url, why) in [
        (on("127.0.0.1", "sslmode=disable"), "pg_hba.conf rejects"),
        (
            on(
                "localhost",
                &format!("sslmode=verify-full&{}", root(&other_pem)),
            ),
            "UnknownIssuer",
        ),
        (
            on(
                "127.0.0.1",
                &format!("sslmode=verify-full&{}", root(&ca_pem)),
            ),
            "not valid for name",
        ),
    ] {
        let err = PgStore::connect(&url, 1).err().expect(&url).to_string();
        assert!(err.contains(why), "{url}: {err}");
    }
    // Accepted: verify-ca checks the chain and not the name.
    PgStore::connect(
        &on("127.0.0.1", &format!("sslmode=verify-ca&{}", root(&ca_pem))),
        1,
    )
    .unwrap();

    // The whole server over verify-full: ingest, read, live stream.
    let url = on(
        "localhost",
        &format!("sslmode=verify-full&{}", root(&ca_pem)),
    );
    let s = TestServer::on_db(
        DashboardConfig::default(),
        Database::Postgres(url),
        tempfile::tempdir().unwrap(),
    );
    let ingest = s.token(Scope::Ingest);
    let read = s.token(Scope::Read);
    let mut live = Stream::open(&s, &read);
    s.ingest(&ingest, &[alert("tls-1", 1, "weights.tls-test.example")]);
    let (kind, data) = live.next();
    assert_eq!(
        (kind.as_str(), &data["event_id"]),
        ("alert", &"tls-1".into())
    );
    let found = s.all_alerts(&read, "q=tls-test");
    assert_eq!(found.len(), 1);
    // Every connection of the server is encrypted (the cluster would have
    // refused a plain one; this says so from PostgreSQL's side).
    let name = plain.rsplit('/').next().unwrap();
    let ssl = cluster
        .psql(
            name,
            "SELECT string_agg(DISTINCT s.ssl::text, ',') FROM pg_stat_ssl s \
             JOIN pg_stat_activity a USING (pid) WHERE a.application_name = 'weightwatch'",
        )
        .unwrap();
    assert_eq!(ssl.trim(), "true");
}
