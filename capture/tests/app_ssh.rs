//! SSH through the public API: banners on a real capture and on synthetic
//! streams in every split, pre-banner lines, and the plaintext estimate.

use crate::app_http::{Step, run_all};
use crate::app_pcap::{corpus, replay, tcp_conns};
use capture::object::{AppProto, ObjectEnd};
use eve::Direction::{ToClient, ToServer};

/// A cleartext SSH binary packet with message type `msg`.
fn packet(msg: u8, payload_len: usize) -> Vec<u8> {
    let padding = 4;
    let len = (1 + 1 + payload_len + padding) as u32;
    [
        &len.to_be_bytes()[..],
        &[padding as u8, msg],
        &vec![0x41; payload_len],
        &[0; 4],
    ]
    .concat()
}

#[test]
fn banners_and_encrypted_estimate_in_every_split() {
    let client = [
        b"SSH-2.0-OpenSSH_9.6\r\n".as_slice(),
        &packet(20, 1500),
        &packet(30, 40),
        &packet(21, 0),
        &[0xee; 70_000],
    ]
    .concat();
    let server = [
        b"Welcome to the lab\r\nSSH-2.0-dropbear_2022.83 extra words\r\n".as_slice(),
        &packet(20, 900),
        &packet(31, 400),
        &packet(21, 0),
        &[0xdd; 100],
    ]
    .concat();
    // The client speaks first, so the server's pre-identification line is
    // read by the SSH parser (a server speaking first with such a line is raw).
    let (objs, conn) = run_all(&[
        Step::Data(ToServer, &client[..10]),
        Step::Data(ToClient, &server[..20]),
        Step::Data(ToServer, &client[10..]),
        Step::Data(ToClient, &server[20..]),
        Step::Close(ToServer, true),
        Step::Close(ToClient, true),
    ]);
    let m = conn.meta();
    assert_eq!(m.app_proto, Some(AppProto::Ssh));
    assert!(m.encrypted);
    let ssh = m.ssh.as_ref().unwrap();
    let c = ssh.client.as_ref().unwrap();
    assert_eq!(
        (c.proto_version.as_str(), c.software_version.as_str()),
        ("2.0", "OpenSSH_9.6")
    );
    let s = ssh.server.as_ref().unwrap();
    assert_eq!(s.software_version, "dropbear_2022.83");
    // 70 000 encrypted bytes are three packets' worth: 70 000 - 3 * 38.
    assert_eq!(m.plaintext_toserver, 70_000 - 3 * 38);
    assert_eq!(m.plaintext_toclient, 100 - 38);
    assert_eq!(objs.len(), 2);
    assert_eq!(objs[0].meta.app_proto, AppProto::Ssh);
    assert_eq!(objs[0].data, client);
    assert_eq!(objs[1].data, server);
    assert!(objs.iter().all(|o| o.end == Some(ObjectEnd::Complete)));
}

#[test]
fn hostile_banners_never_panic() {
    let long = [b"SSH-2.0-".as_slice(), &[b'x'; 5000]].concat();
    let (objs, conn) = run_all(&[Step::Data(ToServer, &long)]);
    assert_eq!(conn.stats().ssh_bad_banners, 1);
    assert_eq!(objs[0].data, long);
    let (_, conn) = run_all(&[Step::Data(ToServer, b"SSH-2.0\r\n\xff\xff\xff\xff\xff\xff")]);
    assert_eq!(conn.stats().ssh_bad_banners, 1);
}

#[test]
fn banners_on_a_real_capture() {
    let Some(path) = corpus("zeek/ssh-bulk.pcap") else {
        return;
    };
    let conns = tcp_conns(&path);
    let mut seen = 0;
    let mut openssh = 0;
    for conn in &conns {
        let (objs, app) = replay(conn);
        if app.meta().app_proto != Some(AppProto::Ssh) {
            continue;
        }
        seen += 1;
        let ssh = app.meta().ssh.as_ref().unwrap();
        let (c, s) = (ssh.client.as_ref().unwrap(), ssh.server.as_ref().unwrap());
        // This capture's clients announce 1.5, 1.99 and 2.0.
        for side in [c, s] {
            assert!(
                ["1.5", "1.99", "2.0"].contains(&side.proto_version.as_str()),
                "{side:?}"
            );
            assert!(!side.software_version.contains(' '), "{side:?}");
        }
        assert!(!c.software_version.is_empty() && !s.software_version.is_empty());
        openssh += usize::from(s.software_version.starts_with("OpenSSH_"));
        // Every byte reaches the stream objects; plaintext is below the byte count.
        for (dir, pt) in [
            (ToServer, app.meta().plaintext_toserver),
            (ToClient, app.meta().plaintext_toclient),
        ] {
            let bytes: u64 = conn
                .segments
                .iter()
                .filter(|(d, _)| *d == dir)
                .map(|(_, b)| b.len() as u64)
                .sum();
            let obj: u64 = objs
                .objects
                .iter()
                .filter(|o| o.meta.direction == dir)
                .map(|o| o.data.len() as u64)
                .sum();
            assert_eq!(obj, bytes);
            assert!(pt < bytes);
        }
    }
    assert!(seen > 0, "the capture holds SSH sessions");
    assert!(openssh > 0, "OpenSSH servers are named");
}
