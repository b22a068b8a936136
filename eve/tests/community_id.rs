//! Community ID v1 against the spec's published baseline vectors
//! (corelight/community-id-spec `baseline/baseline_deflt.json`, seed 0, and
//! Zeek's `community_id_v1` btest), IPv4 and IPv6, both directions.

use eve::community_id_v1;
use std::net::IpAddr;

fn cid(proto: u8, s: &str, sp: u16, d: &str, dp: u16) -> String {
    community_id_v1(
        0,
        s.parse::<IpAddr>().unwrap(),
        sp,
        d.parse::<IpAddr>().unwrap(),
        dp,
        proto,
    )
}

#[test]
fn tcp_ipv4_baseline() {
    let want = "1:LQU9qZlK+B5F3KDmev6m5PMibrg=";
    assert_eq!(cid(6, "128.232.110.120", 34855, "66.35.250.204", 80), want);
    assert_eq!(cid(6, "66.35.250.204", 80, "128.232.110.120", 34855), want);
}

#[test]
fn udp_ipv4_baseline() {
    let want = "1:d/FP5EW3wiY1vCndhwleRRKHowQ=";
    assert_eq!(cid(17, "192.168.1.52", 54585, "8.8.8.8", 53), want);
    assert_eq!(cid(17, "8.8.8.8", 53, "192.168.1.52", 54585), want);
}

#[test]
fn tcp_ipv6_baseline() {
    let want = "1:/qFaeAR+gFe1KYjMzVDsMv+wgU4=";
    let a = "2001:470:e5bf:dead:4957:2174:e82c:4887";
    let b = "2607:f8b0:400c:c03::1a";
    assert_eq!(cid(6, a, 63943, b, 25), want);
    assert_eq!(cid(6, b, 25, a, 63943), want);
}

#[test]
fn sctp_and_portless_baseline() {
    assert_eq!(
        cid(132, "192.168.170.8", 7, "192.168.170.56", 7),
        "1:MP2EtRCAUIZvTw6MxJHLV7N7JDs="
    );
    // RSVP (46) has no ports.
    assert_eq!(
        cid(46, "10.1.12.1", 0, "10.1.12.2", 0),
        "1:KHlLkgoJW7ifUTyTSgyVfkFHzKw="
    );
    assert_eq!(
        cid(46, "10.1.12.2", 0, "10.1.12.1", 0),
        "1:KHlLkgoJW7ifUTyTSgyVfkFHzKw="
    );
}

#[test]
fn zeek_btest_vectors() {
    assert_eq!(
        cid(6, "1.2.3.4", 1122, "5.6.7.8", 3344),
        "1:wCb3OG7yAFWelaUydu0D+125CLM="
    );
    assert_eq!(
        cid(17, "1.2.3.4", 1122, "5.6.7.8", 3344),
        "1:0Mu9InQx6z4ZiCZM/7HXi2WMhOg="
    );
}

#[test]
fn seed_changes_the_hash() {
    let a: IpAddr = "1.2.3.4".parse().unwrap();
    let b: IpAddr = "5.6.7.8".parse().unwrap();
    assert_ne!(
        community_id_v1(1, a, 1122, b, 3344, 6),
        community_id_v1(0, a, 1122, b, 3344, 6)
    );
}
