//! TLS on real captures from the public corpus (skipped with a message when
//! the corpus is absent): SNI, ALPN, versions and JA4 from ClientHellos that
//! span records and segments, plaintext estimates, and stream objects.

use crate::app_http::{Step, run_all};
use crate::app_pcap::{corpus, replay, tcp_conns};
use capture::object::{AppProto, ObjectEnd};
use eve::Direction;

#[test]
fn ja4_of_a_browser_client_hello_matches_suricata() {
    let Some(path) = corpus("suricata-verify/ja4-tls-quic.pcap") else {
        return;
    };
    let conns = tcp_conns(&path);
    let tls: Vec<_> = conns
        .iter()
        .map(replay)
        .filter(|(_, app)| app.meta().app_proto == Some(AppProto::Tls))
        .collect();
    assert!(!tls.is_empty());
    // suricata-verify tests/ja4-tls-quic/test.yaml expects exactly this JA4.
    let (objs, app) = &tls[0];
    let info = app.meta().tls.as_ref().expect("tls metadata");
    assert_eq!(
        info.ja4.as_deref(),
        Some("t13d1516h2_8daaf6152771_e5627efa2ab1")
    );
    assert_eq!(info.alpn, ["h2", "http/1.1"]);
    assert_eq!(info.version.as_deref(), Some("TLS 1.3"));
    assert!(info.sni.is_some());
    assert_eq!(app.meta().server_name, info.sni);
    assert!(app.meta().encrypted);
    assert_eq!(app.stats().tls_client_hellos, 1);
    // Each direction's stream is one object, beginning with the TLS metadata.
    for o in objs.objects.iter() {
        assert_eq!(o.meta.app_proto, AppProto::Tls);
        assert_eq!(
            o.meta.tls.as_ref().and_then(|t| t.ja4.as_deref()),
            info.ja4.as_deref()
        );
        assert_eq!(o.end, Some(ObjectEnd::Complete));
    }
}

#[test]
fn client_hello_split_over_small_segments() {
    let Some(path) = corpus("suricata-verify/tls-client-hello-frag-mtu300.pcap") else {
        return;
    };
    let conns = tcp_conns(&path);
    let (objs, app) = replay(&conns[0]);
    let first_len = conns[0].segments[0].1.len();
    assert!(first_len < 300, "the hello really is split");
    let info = app.meta().tls.as_ref().expect("tls metadata");
    assert!(info.sni.is_some());
    assert!(info.ja4.as_deref().is_some_and(|j| j.starts_with('t')));
    let total: usize = conns[0].segments.iter().map(|(_, b)| b.len()).sum();
    let seen: usize = objs.objects.iter().map(|o| o.data.len()).sum();
    assert_eq!(seen, total, "every byte is in the stream objects");
}

#[test]
fn plaintext_estimate_is_below_the_byte_count_by_record_overhead() {
    for name in [
        "zeek/tls1.2.pcap",
        "zeek/tls13-ech.pcap",
        "zeek/tls-chrome-x25519-kyber.pcap",
    ] {
        let Some(path) = corpus(name) else {
            return;
        };
        for conn in tcp_conns(&path) {
            let (_, app) = replay(&conn);
            if app.meta().app_proto != Some(AppProto::Tls) {
                continue;
            }
            let m = app.meta();
            for (dir, pt) in [
                (Direction::ToServer, m.plaintext_toserver),
                (Direction::ToClient, m.plaintext_toclient),
            ] {
                let bytes: u64 = conn
                    .segments
                    .iter()
                    .filter(|(d, _)| *d == dir)
                    .map(|(_, b)| b.len() as u64)
                    .sum();
                assert!(
                    pt < bytes || bytes == 0,
                    "{name}: plaintext {pt} of {bytes}"
                );
            }
            assert!(
                m.tls.as_ref().is_some_and(|t| t.version.is_some()),
                "{name}"
            );
        }
    }
}

fn record(content_type: u8, body: &[u8]) -> Vec<u8> {
    let len = u16::try_from(body.len()).unwrap().to_be_bytes();
    [&[content_type, 3, 3, len[0], len[1]][..], body].concat()
}

fn handshake(kind: u8, body: &[u8]) -> Vec<u8> {
    let len = u32::try_from(body.len()).unwrap().to_be_bytes();
    [&[kind, len[1], len[2], len[3]][..], body].concat()
}

fn ext(kind: u16, data: &[u8]) -> Vec<u8> {
    [
        &kind.to_be_bytes()[..],
        &u16::try_from(data.len()).unwrap().to_be_bytes(),
        data,
    ]
    .concat()
}

fn client_hello() -> Vec<u8> {
    let host = b"weights.example";
    let sni = [
        &[0, (host.len() + 3) as u8, 0, 0, host.len() as u8][..],
        host,
    ]
    .concat();
    let exts = [
        ext(0x0000, &sni),
        ext(0x0010, b"\x00\x03\x02h2"),
        ext(0x002b, &[4, 3, 4, 3, 3]),
        ext(0x000d, &[0, 2, 4, 3]),
    ]
    .concat();
    let body = [
        &[3, 3][..],
        &[7; 32],
        &[0],
        &[0, 4, 0x13, 0x01, 0x13, 0x02],
        &[1, 0],
        &u16::try_from(exts.len()).unwrap().to_be_bytes(),
        &exts,
    ]
    .concat();
    handshake(1, &body)
}

fn server_hello(version: u16, cipher: u16) -> Vec<u8> {
    let exts = if version == 0x0304 {
        ext(0x002b, &[3, 4])
    } else {
        Vec::new()
    };
    let body = [
        &[3, 3][..],
        &[9; 32],
        &[0],
        &cipher.to_be_bytes(),
        &[0],
        &u16::try_from(exts.len()).unwrap().to_be_bytes(),
        &exts,
    ]
    .concat();
    record(22, &handshake(2, &body))
}

#[test]
fn hello_across_records_and_exact_plaintext_estimate() {
    let hello = client_hello();
    // The ClientHello message is split over two handshake records.
    let (h1, h2) = hello.split_at(20);
    let app_big = record(23, &vec![0xaa; 16384 + 22]);
    let app_small = record(23, &[0xbb; 122]);
    for (version, cipher, overhead, name) in [
        (0x0304u16, 0x1301u16, 22u64, "TLS 1.3"),
        (0x0303, 0xc02f, 29, "TLS 1.2"),
        (0x0303, 0xcca8, 21, "TLS 1.2"),
    ] {
        let up = [
            record(22, h1),
            record(22, h2),
            app_big.clone(),
            app_small.clone(),
        ]
        .concat();
        let down = [
            server_hello(version, cipher),
            record(20, &[1]),
            app_small.clone(),
        ]
        .concat();
        let (objs, conn) = run_all(&[
            Step::Data(
                Direction::ToServer,
                &up[..up.len() - app_big.len() - app_small.len()],
            ),
            Step::Data(Direction::ToClient, &down),
            Step::Data(
                Direction::ToServer,
                &up[up.len() - app_big.len() - app_small.len()..],
            ),
            Step::Close(Direction::ToServer, true),
            Step::Close(Direction::ToClient, true),
        ]);
        let m = conn.meta();
        let info = m.tls.as_ref().unwrap();
        assert_eq!(info.sni.as_deref(), Some("weights.example"));
        assert_eq!(info.alpn, ["h2"]);
        assert_eq!(info.version.as_deref(), Some(name));
        assert!(info.ja4.as_deref().unwrap().starts_with("t13d0204h2_"));
        assert_eq!(m.server_name.as_deref(), Some("weights.example"));
        // Record bytes (5-byte header + body) less the per-record overhead.
        assert_eq!(
            m.plaintext_toserver,
            (5 + 16384 + 22 - overhead) + (5 + 122 - overhead)
        );
        assert_eq!(m.plaintext_toclient, 5 + 122 - overhead);
        assert_eq!(objs.len(), 2);
        assert_eq!(objs[0].data, up);
        assert_eq!(objs[1].data, down);
        assert_eq!(
            objs[0].meta.tls.as_ref().unwrap().sni.as_deref(),
            Some("weights.example")
        );
    }
}

#[test]
fn garbage_after_a_tls_start_never_panics() {
    let mut junk = record(22, &client_hello()[..10]);
    junk.extend_from_slice(&[0xff; 100]);
    let (objs, conn) = run_all(&[
        Step::Data(Direction::ToServer, &junk),
        Step::Close(Direction::ToServer, false),
    ]);
    assert_eq!(conn.meta().app_proto, Some(AppProto::Tls));
    assert_eq!(objs[0].data, junk);
    assert_eq!(objs[0].end, Some(ObjectEnd::Truncated));
}
