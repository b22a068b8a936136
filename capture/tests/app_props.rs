//! Property tests of the app layer: no input makes it panic, and any
//! segmentation of a valid HTTP message stream yields the same objects.

use capture::app::{AppConnection, AppLimits};
use capture::object::CollectedObjects;
use eve::Direction::{self, ToClient, ToServer};
use proptest::prelude::*;
use std::io::Write;

/// Feed `(direction, bytes)` pieces, cut at `cuts` (taken modulo each piece's length).
fn feed(pieces: &[(Direction, Vec<u8>)], cuts: &[usize], limits: &AppLimits) -> CollectedObjects {
    let mut conn = AppConnection::new(limits, false);
    let mut out = CollectedObjects::default();
    let mut cut = cuts.iter().cycle();
    for (dir, bytes) in pieces {
        let mut rest = bytes.as_slice();
        while !rest.is_empty() {
            let n = if cuts.is_empty() {
                rest.len()
            } else {
                1 + cut.next().copied().unwrap_or(0) % rest.len()
            };
            conn.data(*dir, &rest[..n], &mut out);
            rest = &rest[n..];
        }
    }
    conn.close(ToServer, true, &mut out);
    conn.close(ToClient, true, &mut out);
    out
}

/// One generated HTTP exchange: a request (maybe with a body) and its response.
#[derive(Clone, Debug)]
struct Exchange {
    method: &'static str,
    up: Vec<u8>,
    up_chunked: bool,
    down: Vec<u8>,
    down_framing: u8,
    gzip: bool,
    status: u16,
}

fn exchange() -> impl Strategy<Value = Exchange> {
    (
        prop_oneof![Just("GET"), Just("POST"), Just("HEAD"), Just("PUT")],
        proptest::collection::vec(any::<u8>(), 0..300),
        any::<bool>(),
        proptest::collection::vec(any::<u8>(), 0..600),
        0u8..2,
        any::<bool>(),
        prop_oneof![Just(200u16), Just(204), Just(304), Just(404)],
    )
        .prop_map(
            |(method, up, up_chunked, down, down_framing, gzip, status)| Exchange {
                method,
                up,
                up_chunked,
                down,
                down_framing,
                gzip,
                status,
            },
        )
}

fn chunk(body: &[u8], size: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for c in body.chunks(size.max(1)) {
        out.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
        out.extend_from_slice(c);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

/// The wire bytes of a keep-alive connection carrying `exchanges`.
fn wire(exchanges: &[Exchange]) -> (Vec<u8>, Vec<u8>) {
    let (mut up, mut down) = (Vec::new(), Vec::new());
    for (i, x) in exchanges.iter().enumerate() {
        let with_body = matches!(x.method, "POST" | "PUT");
        up.extend_from_slice(format!("{} /o/{i} HTTP/1.1\r\nHost: h\r\n", x.method).as_bytes());
        if with_body && x.up_chunked {
            up.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
            up.extend_from_slice(&chunk(&x.up, 37));
        } else if with_body {
            up.extend_from_slice(format!("Content-Length: {}\r\n\r\n", x.up.len()).as_bytes());
            up.extend_from_slice(&x.up);
        } else {
            up.extend_from_slice(b"\r\n");
        }
        let body = if x.gzip {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(&x.down).unwrap();
            e.finish().unwrap()
        } else {
            x.down.clone()
        };
        down.extend_from_slice(format!("HTTP/1.1 {} X\r\n", x.status).as_bytes());
        if x.gzip {
            down.extend_from_slice(b"Content-Encoding: gzip\r\n");
        }
        let no_body = x.method == "HEAD" || x.status == 204 || x.status == 304;
        if x.down_framing == 0 || no_body {
            down.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
        } else {
            down.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
        }
        if !no_body {
            if x.down_framing == 0 {
                down.extend_from_slice(&body);
            } else {
                down.extend_from_slice(&chunk(&body, 101));
            }
        }
    }
    (up, down)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn arbitrary_bytes_never_panic(
        prefix in prop_oneof![
            Just(b"".to_vec()),
            Just(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n".to_vec()),
            Just(b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 99\r\n".to_vec()),
            Just(b"POST / HTTP/1.1\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: 200\r\n\r\n--b\r\n".to_vec()),
            Just(vec![0x16, 3, 1, 0, 80, 1, 0, 0, 76, 3, 3]),
            Just(b"SSH-2.0-x\r\n".to_vec()),
        ],
        a in proptest::collection::vec(any::<u8>(), 0..2000),
        b in proptest::collection::vec(any::<u8>(), 0..2000),
        cuts in proptest::collection::vec(0usize..512, 0..16),
    ) {
        let limits = AppLimits { max_header_bytes: 512, max_decoded_bytes: 4096, max_inflate_ratio: 100 };
        let up = [prefix.clone(), a].concat();
        let down = [prefix, b].concat();
        let pieces = vec![(ToServer, up.clone()), (ToClient, down), (ToServer, up)];
        let out = feed(&pieces, &cuts, &limits);
        // Objects are well formed: each one ended, none larger than its input.
        for o in &out.objects {
            prop_assert!(o.end.is_some());
        }
    }

    #[test]
    fn any_segmentation_gives_the_same_objects(
        exchanges in proptest::collection::vec(exchange(), 1..5),
        cuts in proptest::collection::vec(0usize..200, 1..24),
    ) {
        let (up, down) = wire(&exchanges);
        let pieces = vec![(ToServer, up), (ToClient, down)];
        let limits = AppLimits::default();
        let whole = feed(&pieces, &[], &limits);
        let split = feed(&pieces, &cuts, &limits);
        prop_assert_eq!(&whole.objects, &split.objects);
        // And the objects are the bodies that were sent.
        let mut expect: Vec<&[u8]> = Vec::new();
        for x in &exchanges {
            if matches!(x.method, "POST" | "PUT") && !x.up.is_empty() {
                expect.push(&x.up);
            }
        }
        for x in &exchanges {
            let no_body = x.method == "HEAD" || x.status == 204 || x.status == 304;
            if !no_body && (!x.down.is_empty() || x.gzip) {
                expect.push(&x.down);
            }
        }
        let got: Vec<&[u8]> = whole.objects.iter().map(|o| o.data.as_slice()).collect();
        let (mut got_sorted, mut expect_sorted) = (got.clone(), expect.clone());
        got_sorted.sort();
        expect_sorted.sort();
        prop_assert_eq!(got_sorted, expect_sorted);
    }
}
