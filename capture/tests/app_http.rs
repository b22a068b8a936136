//! HTTP through the public `AppConnection` API: every message shape fed whole,
//! byte at a time and in random splits must give the same objects.

use capture::app::{AppConnection, AppLimits};
use capture::object::{AppProto, CollectedObject, CollectedObjects, ObjectEnd};
use eve::Direction::{self, ToClient, ToServer};
use std::io::Write;

/// One step of a connection script.
pub enum Step<'a> {
    /// Bytes of one direction.
    Data(Direction, &'a [u8]),
    /// Lost bytes of one direction.
    Gap(Direction, u64),
    /// A direction ends (clean or not).
    Close(Direction, bool),
}
use Step::{Close, Data, Gap};

/// A tiny deterministic PRNG (xorshift) for split points.
pub struct Rng(u64);
impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

/// How `Data` steps are cut into calls.
#[derive(Clone, Copy, Debug)]
pub enum Split {
    Whole,
    Bytes,
    Random(u64),
}

/// Run a script and collect the objects.
pub fn run_with(
    script: &[Step<'_>],
    split: Split,
    limits: &AppLimits,
) -> (CollectedObjects, AppConnection) {
    let mut conn = AppConnection::new(limits, false);
    let mut out = CollectedObjects::default();
    let mut rng = Rng::new(match split {
        Split::Random(s) => s,
        _ => 1,
    });
    for step in script {
        match step {
            Data(dir, bytes) => {
                let mut rest: &[u8] = bytes;
                while !rest.is_empty() {
                    let n = match split {
                        Split::Whole => rest.len(),
                        Split::Bytes => 1,
                        Split::Random(_) => 1 + rng.below(rest.len().min(64)),
                    };
                    conn.data(*dir, &rest[..n], &mut out);
                    rest = &rest[n..];
                }
            }
            Gap(dir, n) => conn.gap(*dir, *n, &mut out),
            Close(dir, clean) => conn.close(*dir, *clean, &mut out),
        }
    }
    (out, conn)
}

/// Run a script in every split; assert they agree; return the objects.
pub fn run_all(script: &[Step<'_>]) -> (Vec<CollectedObject>, AppConnection) {
    run_all_limits(script, &AppLimits::default())
}

/// `run_all` with limits.
pub fn run_all_limits(
    script: &[Step<'_>],
    limits: &AppLimits,
) -> (Vec<CollectedObject>, AppConnection) {
    let (whole, conn) = run_with(script, Split::Whole, limits);
    let mut splits = vec![Split::Bytes];
    splits.extend((0..16).map(Split::Random));
    for split in splits {
        let (other, other_conn) = run_with(script, split, limits);
        assert_eq!(
            whole.objects, other.objects,
            "objects differ with split {split:?}"
        );
        assert_eq!(
            conn.meta(),
            other_conn.meta(),
            "meta differs with split {split:?}"
        );
    }
    (whole.objects, conn)
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn zlib(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn raw_deflate(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// Some bytes that are not trivially compressible.
fn payload(len: usize, seed: u64) -> Vec<u8> {
    let mut r = Rng::new(seed);
    (0..len)
        .map(|i| (r.below(7) as u8).wrapping_add(i as u8))
        .collect()
}

fn response(head: &str, body: &[u8]) -> Vec<u8> {
    [head.as_bytes(), body].concat()
}

#[test]
fn content_length_keep_alive_request_and_responses() {
    let up = payload(3000, 1);
    let down1 = payload(5000, 2);
    let down2 = b"second".to_vec();
    let req = [
        format!(
            "PUT /models/w.safetensors?x=1 HTTP/1.1\r\nHost: store.example:8080\r\nUser-Agent: curl/8\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
            up.len()
        )
        .into_bytes(),
        up.clone(),
        b"GET /b/second.txt HTTP/1.1\r\nHost: store.example\r\n\r\n".to_vec(),
    ]
    .concat();
    let resp = [
        response(
            &format!(
                "HTTP/1.1 201 Created\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n\r\n",
                down1.len()
            ),
            &down1,
        ),
        response("HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\n", &down2),
    ]
    .concat();
    let (objs, conn) = run_all(&[
        Data(ToServer, &req),
        Data(ToClient, &resp),
        Close(ToServer, true),
        Close(ToClient, true),
    ]);
    assert_eq!(objs.len(), 3);
    let (u, d1, d2) = (&objs[0], &objs[1], &objs[2]);
    assert_eq!(u.data, up);
    assert_eq!(u.end, Some(ObjectEnd::Complete));
    assert_eq!(u.meta.direction, ToServer);
    assert_eq!(u.meta.app_proto, AppProto::Http);
    assert_eq!(u.meta.filename.as_deref(), Some("/models/w.safetensors"));
    assert_eq!(u.meta.declared_size, Some(3000));
    let h = u.meta.http.as_ref().unwrap();
    assert_eq!(h.hostname.as_deref(), Some("store.example"));
    assert_eq!(h.http_method.as_deref(), Some("PUT"));
    assert_eq!(h.url.as_deref(), Some("/models/w.safetensors?x=1"));
    assert_eq!(h.http_user_agent.as_deref(), Some("curl/8"));
    assert_eq!(h.protocol.as_deref(), Some("HTTP/1.1"));
    // The upload takes its transaction's response status and (as
    // Suricata's `http_content_type`) the response's type, no parameters.
    assert_eq!(h.status, Some(201));
    assert_eq!(h.http_content_type.as_deref(), Some("text/plain"));
    assert_eq!(
        d1.meta.http.as_ref().unwrap().http_content_type.as_deref(),
        Some("text/plain")
    );
    assert_eq!(d1.data, down1);
    assert_eq!(d1.meta.direction, ToClient);
    assert_eq!(d1.meta.http.as_ref().unwrap().status, Some(201));
    assert_eq!(
        d1.meta.http.as_ref().unwrap().http_method.as_deref(),
        Some("PUT")
    );
    assert_eq!(
        d1.meta.content_type.as_deref(),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(d2.data, down2);
    assert_eq!(d2.meta.filename.as_deref(), Some("/b/second.txt"));
    assert_eq!(
        d2.meta.http.as_ref().unwrap().url.as_deref(),
        Some("/b/second.txt")
    );
    assert_eq!(conn.meta().app_proto, Some(AppProto::Http));
    assert_eq!(conn.meta().server_name.as_deref(), Some("store.example"));
    assert_eq!(conn.stats().http_requests, 2);
    assert_eq!(conn.stats().http_responses, 2);
    // Counters reach the `stats` event's `app` section, summed over connections.
    let mut total = capture::app::AppStats::default();
    total.merge(&conn.stats());
    total.merge(&conn.stats());
    let mut stats = eve::Stats::default();
    total.add_to(&mut stats);
    assert_eq!(stats.get("app", "http"), 2);
    assert_eq!(stats.get("app", "http_requests"), 4);
    assert_eq!(stats.get("app", "raw"), 0);
}

#[test]
fn chunked_with_extensions_and_trailers() {
    let body = payload(10_000, 3);
    let mut chunked = Vec::new();
    for (i, c) in body.chunks(777).enumerate() {
        chunked.extend_from_slice(
            format!(
                "{:X}{}\r\n",
                c.len(),
                if i % 2 == 0 { ";ext=1" } else { "" }
            )
            .as_bytes(),
        );
        chunked.extend_from_slice(c);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\nX-Checksum: abc\r\n\r\n");
    let resp = [
        response(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            &chunked,
        ),
        response("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n", b"ok"),
    ]
    .concat();
    let (objs, _) = run_all(&[
        Data(
            ToServer,
            b"GET /f.bin HTTP/1.1\r\nHost: h\r\n\r\nGET /g HTTP/1.1\r\nHost: h\r\n\r\n",
        ),
        Data(ToClient, &resp),
    ]);
    assert_eq!(objs.len(), 2);
    assert_eq!(objs[0].data, body);
    assert_eq!(objs[0].end, Some(ObjectEnd::Complete));
    assert_eq!(objs[0].meta.declared_size, None);
    assert_eq!(objs[1].data, b"ok");
}

#[test]
fn gzip_deflate_and_raw_deflate_bodies_are_decoded() {
    let body = payload(60_000, 4);
    for (name, enc) in [
        ("gzip", gzip(&body)),
        ("deflate", zlib(&body)),
        ("deflate", raw_deflate(&body)),
    ] {
        let resp = response(
            &format!(
                "HTTP/1.1 200 OK\r\nContent-Encoding: {name}\r\nContent-Length: {}\r\n\r\n",
                enc.len()
            ),
            &enc,
        );
        let (objs, conn) = run_all(&[
            Data(ToServer, b"GET /x.gz HTTP/1.1\r\n\r\n"),
            Data(ToClient, &resp),
        ]);
        assert_eq!(objs.len(), 1, "{name}");
        assert_eq!(objs[0].data, body, "{name}");
        assert_eq!(objs[0].end, Some(ObjectEnd::Complete));
        assert_eq!(objs[0].meta.declared_size, Some(enc.len() as u64));
        assert_eq!(conn.stats().decode_errors, 0);
    }
    // Chunked and gzip together.
    let enc = gzip(&body);
    let mut chunked = Vec::new();
    for c in enc.chunks(1000) {
        chunked.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
        chunked.extend_from_slice(c);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let req = [
        b"POST /up HTTP/1.1\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n"
            .as_slice(),
        &chunked,
    ]
    .concat();
    let (objs, _) = run_all(&[Data(ToServer, &req)]);
    assert_eq!(objs[0].data, body);
    assert_eq!(objs[0].end, Some(ObjectEnd::Complete));
}

#[test]
fn decompression_bomb_is_cut_at_the_limit() {
    let zeros = vec![0u8; 8 << 20];
    let bomb = gzip(&zeros);
    assert!(bomb.len() < 100_000);
    let resp = response(
        &format!(
            "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\r\n",
            bomb.len()
        ),
        &bomb,
    );
    let limits = AppLimits {
        max_decoded_bytes: 1 << 20,
        ..AppLimits::default()
    };
    let script = [
        Data(
            ToServer,
            b"GET /bomb HTTP/1.1\r\n\r\nGET /next HTTP/1.1\r\n\r\n".as_slice(),
        ),
        Data(ToClient, &resp),
        Data(
            ToClient,
            b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nnext",
        ),
    ];
    let (out, conn) = run_with(&script, Split::Random(7), &limits);
    let objs = out.objects;
    assert_eq!(objs.len(), 2);
    assert_eq!(objs[0].data.len(), 1 << 20);
    assert!(objs[0].data.iter().all(|b| *b == 0));
    assert_eq!(objs[0].end, Some(ObjectEnd::Truncated));
    assert_eq!(conn.stats().decode_bombs, 1);
    // Framing continued past the bomb.
    assert_eq!(objs[1].data, b"next");
}

#[test]
fn multipart_parts_are_objects() {
    let f1 = payload(50_000, 5);
    let mut f2 = payload(3000, 6);
    // Content that looks almost like the delimiter must survive.
    f2.extend_from_slice(b"\r\n--XyZbound\r\n--XyZboun");
    let body = [
        b"preamble\r\n--XyZboundary\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhello\r\n".as_slice(),
        b"--XyZboundary\r\nContent-Disposition: form-data; name=\"file\"; filename=\"model.gguf\"\r\nContent-Type: application/octet-stream\r\n\r\n",
        &f1,
        b"\r\n--XyZboundary  \r\nContent-Disposition: form-data; name=\"f2\"; filename=\"b.bin\"\r\n\r\n",
        &f2,
        b"\r\n--XyZboundary--\r\nepilogue",
    ]
    .concat();
    let req = [
        format!(
            "POST /upload/form HTTP/1.1\r\nHost: u.example\r\nContent-Type: multipart/form-data; boundary=\"XyZboundary\"\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes(),
        body,
    ]
    .concat();
    let (objs, conn) = run_all(&[
        Data(ToServer, &req),
        Data(ToClient, b"HTTP/1.1 204 No Content\r\n\r\n"),
    ]);
    assert_eq!(objs.len(), 3);
    assert_eq!(objs[0].data, b"hello");
    assert_eq!(objs[0].meta.filename.as_deref(), Some("/upload/form"));
    assert_eq!(objs[1].data, f1);
    assert_eq!(objs[1].meta.filename.as_deref(), Some("model.gguf"));
    assert_eq!(
        objs[1].meta.content_type.as_deref(),
        Some("application/octet-stream")
    );
    assert_eq!(
        objs[1].meta.http.as_ref().unwrap().hostname.as_deref(),
        Some("u.example")
    );
    assert_eq!(objs[2].data, f2);
    assert_eq!(objs[2].meta.filename.as_deref(), Some("b.bin"));
    assert!(objs.iter().all(|o| o.end == Some(ObjectEnd::Complete)));
    assert_eq!(conn.stats().multipart_parts, 3);
}

#[test]
fn pipelined_head_204_304_and_1xx_carry_no_body() {
    let req = b"GET /a HTTP/1.1\r\n\r\nHEAD /b HTTP/1.1\r\n\r\nGET /c HTTP/1.1\r\n\r\nGET /d HTTP/1.1\r\n\r\nGET /e HTTP/1.1\r\n\r\n";
    let resp = [
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nA".as_slice(),
        b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n",
        b"HTTP/1.1 204 No Content\r\nContent-Length: 100\r\n\r\n",
        b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\nHTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nE",
    ]
    .concat();
    let (objs, conn) = run_all(&[Data(ToServer, req), Data(ToClient, &resp)]);
    assert_eq!(objs.len(), 2);
    assert_eq!(objs[0].data, b"A");
    assert_eq!(objs[0].meta.filename.as_deref(), Some("/a"));
    assert_eq!(objs[1].data, b"E");
    assert_eq!(objs[1].meta.filename.as_deref(), Some("/e"));
    assert_eq!(conn.stats().http_responses, 6);
    assert_eq!(conn.stats().http_unmatched_responses, 0);
}

#[test]
fn hundred_continue_upload() {
    let body = payload(4000, 8);
    let head = format!(
        "POST /v1/put HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let (objs, _) = run_all(&[
        Data(ToServer, head.as_bytes()),
        Data(ToClient, b"HTTP/1.1 100 Continue\r\n\r\n"),
        Data(ToServer, &body),
        Data(ToClient, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
    ]);
    assert_eq!(objs.len(), 2);
    assert_eq!(objs[0].data, body);
    assert_eq!(objs[1].data, b"ok");
    assert_eq!(
        objs[1].meta.http.as_ref().unwrap().url.as_deref(),
        Some("/v1/put")
    );
    assert_eq!(objs[1].meta.http.as_ref().unwrap().status, Some(200));
}

#[test]
fn close_delimited_response() {
    let body = payload(9000, 9);
    let resp = response(
        "HTTP/1.0 200 OK\r\nContent-Type: application/x-bin\r\n\r\n",
        &body,
    );
    for (clean, end) in [(true, ObjectEnd::Complete), (false, ObjectEnd::Truncated)] {
        let (objs, _) = run_all(&[
            Data(ToServer, b"GET /w HTTP/1.0\r\n\r\n"),
            Data(ToClient, &resp),
            Close(ToClient, clean),
        ]);
        assert_eq!(objs.len(), 1);
        assert_eq!(objs[0].data, body);
        assert_eq!(objs[0].end, Some(end));
        assert_eq!(
            objs[0].meta.http.as_ref().unwrap().protocol.as_deref(),
            Some("HTTP/1.0")
        );
    }
    // A Content-Length body cut by the connection end is truncated.
    let (objs, conn) = run_all(&[
        Data(ToServer, b"GET /w HTTP/1.1\r\n\r\n"),
        Data(
            ToClient,
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",
        ),
        Close(ToClient, true),
    ]);
    assert_eq!(objs[0].data, b"abc");
    assert_eq!(objs[0].end, Some(ObjectEnd::Truncated));
    assert_eq!(conn.stats().http_truncated_bodies, 1);
}

#[test]
fn gap_inside_a_body_keeps_framing() {
    let (objs, conn) = run_all(&[
        Data(ToServer, b"GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n"),
        Data(
            ToClient,
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",
        ),
        Gap(ToClient, 4),
        Data(ToClient, b"hij"),
        Data(ToClient, b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nZ"),
    ]);
    assert_eq!(objs.len(), 2);
    assert_eq!(objs[0].data, b"abchij");
    assert_eq!(objs[0].gap_bytes, 4);
    // The framing's end was reached; the gap is reported as gap bytes.
    assert_eq!(objs[0].end, Some(ObjectEnd::Complete));
    assert_eq!(objs[1].data, b"Z");
    assert_eq!(conn.stats().http_gap_in_framing, 0);
}

#[test]
fn raw_and_midstream_streams_are_one_object_per_direction() {
    let up = payload(5000, 10);
    let (objs, conn) = run_all(&[
        Data(ToServer, &up),
        Data(ToClient, b"220 hello\r\n"),
        Close(ToServer, true),
        Close(ToClient, false),
    ]);
    assert_eq!(conn.meta().app_proto, Some(AppProto::Raw));
    assert_eq!(objs.len(), 2);
    assert_eq!(objs[0].data, up);
    assert_eq!(objs[0].meta.app_proto, AppProto::Raw);
    assert_eq!(objs[0].end, Some(ObjectEnd::Complete));
    assert_eq!(objs[1].data, b"220 hello\r\n");
    assert_eq!(objs[1].end, Some(ObjectEnd::Truncated));
    // Tiny streams that close before detection can decide are raw too.
    let (objs, _) = run_all(&[Data(ToServer, b"GE"), Close(ToServer, true)]);
    assert_eq!(objs.len(), 1);
    assert_eq!(objs[0].data, b"GE");
}

#[test]
fn hostile_inputs_fall_back_to_raw_and_are_counted() {
    // A header block that never ends.
    let limits = AppLimits {
        max_header_bytes: 4096,
        ..AppLimits::default()
    };
    let mut endless = b"GET / HTTP/1.1\r\n".to_vec();
    for i in 0..1000 {
        endless.extend_from_slice(format!("X-H{i}: v\r\n").as_bytes());
    }
    let (objs, conn) = run_all_limits(&[Data(ToServer, &endless), Close(ToServer, true)], &limits);
    assert_eq!(conn.stats().http_header_too_large, 1);
    assert_eq!(objs.len(), 1);
    assert_eq!(objs[0].meta.app_proto, AppProto::Raw);
    assert_eq!(
        objs[0].data, endless,
        "every byte still reaches the detectors"
    );

    for (req, counter) in [
        (
            &b"POST / HTTP/1.1\r\nContent-Length: -5\r\n\r\nabc"[..],
            "http_bad_length",
        ),
        (
            b"POST / HTTP/1.1\r\nContent-Length: 184467440737095516160\r\n\r\nabc",
            "http_bad_length",
        ),
        (
            b"POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabc",
            "http_bad_length",
        ),
        (
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc",
            "http_bad_chunk",
        ),
        (
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX",
            "http_bad_chunk",
        ),
        (
            b"GET / HTTP/1.1\r\nBad Header\x00: x\r\n\r\n\x00\x01",
            "http_parse_errors",
        ),
    ] {
        let (_, conn) = run_all(&[Data(ToServer, req), Close(ToServer, true)]);
        let n = conn
            .stats()
            .counters()
            .find(|(k, _)| *k == counter)
            .unwrap()
            .1;
        assert_eq!(n, 1, "{counter} for {:?}", String::from_utf8_lossy(req));
    }

    // A chunk size as large as u64 allows never allocates: the body just never completes.
    let (objs, _) = run_all(&[
        Data(
            ToClient,
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\nabc",
        ),
        Close(ToClient, true),
    ]);
    assert_eq!(objs[0].data, b"abc");
    assert_eq!(objs[0].end, Some(ObjectEnd::Truncated));
}

#[test]
fn corrupt_gzip_is_truncated_and_counted() {
    let mut enc = gzip(&payload(10_000, 11));
    let n = enc.len();
    enc[n / 2..n / 2 + 40].fill(0xff);
    let resp = response(
        &format!(
            "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\r\n",
            enc.len()
        ),
        &enc,
    );
    let (objs, conn) = run_all(&[
        Data(ToServer, b"GET / HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\n"),
        Data(ToClient, &resp),
        Data(ToClient, b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n2"),
    ]);
    assert_eq!(objs[0].end, Some(ObjectEnd::Truncated));
    assert_eq!(conn.stats().decode_errors, 1);
    assert_eq!(objs[1].data, b"2");
}

#[test]
fn connect_and_upgrade_become_tunnels() {
    let (objs, conn) = run_all(&[
        Data(
            ToServer,
            b"CONNECT api.example:443 HTTP/1.1\r\nHost: api.example:443\r\n\r\n\x16\x03\x01secret",
        ),
        Data(
            ToClient,
            b"HTTP/1.1 200 Connection established\r\n\r\n\x16\x03\x03reply",
        ),
    ]);
    assert_eq!(conn.stats().http_tunnels, 2);
    assert_eq!(objs.len(), 2);
    assert_eq!(objs[0].data, b"\x16\x03\x01secret");
    assert_eq!(objs[1].data, b"\x16\x03\x03reply");
}

#[test]
fn midstream_marks_only_objects_that_may_start_inside_a_file() {
    let mut conn = AppConnection::new(&AppLimits::default(), true);
    let mut out = CollectedObjects::default();
    // Picked up inside an upload body: that direction is raw and marked
    // mid-stream; the response that follows is found (resync) and its body
    // is a whole HTTP object.
    conn.data(ToServer, b"...middle of a body...", &mut out);
    conn.data(
        ToClient,
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        &mut out,
    );
    conn.close(ToServer, false, &mut out);
    assert_eq!(conn.meta().app_proto, Some(AppProto::Http));
    assert_eq!(out.objects.len(), 2);
    let (body, resp): (Vec<_>, Vec<_>) = out
        .objects
        .iter()
        .partition(|o| o.meta.direction == ToServer);
    assert!(body[0].meta.midstream);
    assert_eq!(resp[0].data, b"ok");
    assert!(!resp[0].meta.midstream);
    // Picked up at a request: the body is whole.
    let mut conn = AppConnection::new(&AppLimits::default(), true);
    let mut out = CollectedObjects::default();
    conn.data(
        ToServer,
        b"POST /a HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi",
        &mut out,
    );
    assert_eq!(out.objects.len(), 1);
    assert!(!out.objects[0].meta.midstream);
    assert_eq!(out.objects[0].end, Some(ObjectEnd::Complete));
}

#[test]
fn filenames_from_content_disposition_and_proxy_urls() {
    let (objs, _) = run_all(&[
        Data(
            ToServer,
            b"GET http://cdn.example/dl?id=7 HTTP/1.1\r\nHost: cdn.example\r\n\r\nGET http://cdn.example/a/b/llama.gguf?sig=x HTTP/1.1\r\n\r\n",
        ),
        Data(
            ToClient,
            b"HTTP/1.1 200 OK\r\nContent-Disposition: attachment; filename=\"w.safetensors\"\r\nContent-Length: 1\r\n\r\nA\
              HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nB",
        ),
    ]);
    assert_eq!(objs[0].meta.filename.as_deref(), Some("w.safetensors"));
    assert_eq!(objs[1].meta.filename.as_deref(), Some("/a/b/llama.gguf"));
    assert_eq!(
        objs[1].meta.http.as_ref().unwrap().url.as_deref(),
        Some("http://cdn.example/a/b/llama.gguf?sig=x")
    );
}

#[test]
fn long_presigned_urls_are_still_http() {
    let url = format!(
        "/bucket/model.safetensors?X-Amz-Signature={}",
        "a".repeat(9_000)
    );
    let req = format!("PUT {url} HTTP/1.1\r\nHost: s3.example\r\nContent-Length: 3\r\n\r\nabc");
    let (objs, conn) = run_all(&[Data(ToServer, req.as_bytes())]);
    assert_eq!(conn.meta().app_proto, Some(AppProto::Http));
    assert_eq!(objs.len(), 1);
    assert_eq!(objs[0].data, b"abc");
    assert_eq!(
        objs[0].meta.filename.as_deref(),
        Some("/bucket/model.safetensors")
    );
}

#[test]
fn refused_hundred_continue_upload_skips_the_body() {
    let head = b"PUT /m.bin HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n";
    // Refused: the client skips the body and retries with credentials.
    let (objs, _) = run_all(&[
        Data(ToServer, head),
        Data(
            ToClient,
            b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 4\r\n\r\nnope",
        ),
        Data(
            ToServer,
            b"PUT /m.bin HTTP/1.1\r\nAuthorization: t\r\nContent-Length: 5\r\n\r\nhello",
        ),
        Data(
            ToClient,
            b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n",
        ),
    ]);
    assert_eq!(objs.len(), 2);
    assert_eq!(objs[0].data, b"nope");
    assert_eq!(objs[1].data, b"hello");
    assert_eq!(objs[1].end, Some(ObjectEnd::Complete));
    assert_eq!(
        objs[1].meta.http.as_ref().unwrap().http_method.as_deref(),
        Some("PUT")
    );
    // An early final response, but the client sends the body anyway.
    let (objs, _) = run_all(&[
        Data(ToServer, head),
        Data(ToClient, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
        Data(ToServer, b"hello"),
        Close(ToServer, true),
    ]);
    assert_eq!(objs.len(), 2);
    assert_eq!(objs[1].data, b"hello");
    assert_eq!(objs[1].end, Some(ObjectEnd::Complete));
}
