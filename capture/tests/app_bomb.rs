//! Decompression bombs: a gzip body that would inflate to 4 GiB of zeros
//! stops at the inflate ratio (`max_inflate_ratio`) or the size cap
//! (`max_decoded_bytes`), is counted in `app.decode_bombs` and ends
//! truncated; an ordinary compressed body still decodes whole.

use crate::engine_support::{Frames, replay_with, write_pcap};
use capture::Settings;
use capture::detect::Detectors;
use eve::{EventKind, FileInfo, FileState};
use fixtures::scenario;
use fixtures::tcp::{Close, Direction, Session, SessionOptions};
use fixtures::weights::{Rng, negative};
use flate2::Compression;
use flate2::write::GzEncoder;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// What the bomb inflates to.
const INFLATED: u64 = 4 << 30;

/// gzip of [`INFLATED`] zero bytes, streamed through the encoder 1 MiB at
/// a time (about 4 MB).
fn bomb() -> Vec<u8> {
    let zeros = vec![0u8; 1 << 20];
    let mut gz = GzEncoder::new(Vec::new(), Compression::best());
    for _ in 0..INFLATED >> 20 {
        gz.write_all(&zeros).expect("compress");
    }
    gz.finish().expect("gzip")
}

/// A capture of `GET /zeros.bin` answered with `body` as a gzip
/// Content-Encoded body.
fn download(dir: &Path, body: &[u8]) -> Vec<PathBuf> {
    let mut frames = Frames::default();
    let mut s = Session::new(SessionOptions::ipv4(41_200, 80), &mut frames).expect("session");
    s.connect().expect("connect");
    s.write(
        Direction::ToServer,
        b"GET /zeros.bin HTTP/1.1\r\nHost: files.example\r\nAccept-Encoding: gzip\r\n\r\n",
    )
    .expect("request");
    s.push(Direction::ToServer).expect("push");
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write(Direction::ToClient, head.as_bytes()).expect("head");
    s.write(Direction::ToClient, body).expect("body");
    s.close(Close::Fin {
        first: Direction::ToServer,
    })
    .expect("close");
    let p = dir.join("bomb.pcap");
    write_pcap(&p, frames.0);
    vec![p]
}

fn settings(f: impl FnOnce(&mut Settings)) -> Settings {
    let mut s = Settings {
        workers: 1,
        ..Default::default()
    };
    f(&mut s);
    s
}

/// The response body's `fileinfo`.
fn response(events: &[eve::Event]) -> FileInfo {
    events
        .iter()
        .find_map(|e| match &e.kind {
            EventKind::Fileinfo(f) if f.fileinfo.direction == eve::Direction::ToClient => {
                Some(f.fileinfo.clone())
            }
            _ => None,
        })
        .expect("a response object")
}

#[test]
fn gzip_bomb_stops_at_the_inflate_ratio_and_the_size_cap() {
    let dir = tempfile::tempdir().expect("tmp");
    let body = bomb();
    assert!(body.len() < 8 << 20, "{} compressed bytes", body.len());
    let files = download(dir.path(), &body);
    drop(body);

    // The default ratio (100:1 past the first MiB): at most a hundred
    // times the compressed bytes are decoded, not 4 GiB.
    let started = Instant::now();
    let (s, events) = replay_with(&files, settings(|_| {}), &Detectors::none());
    let took = started.elapsed();
    let f = response(&events);
    let compressed = std::fs::metadata(&files[0]).expect("pcap").len();
    eprintln!("bomb: {} bytes decoded in {took:?}", f.size);
    assert!(f.size >= 1 << 20, "{}", f.size);
    assert!(f.size <= 100 * compressed, "{} decoded", f.size);
    assert_eq!(f.state, FileState::Truncated);
    assert_eq!(s.stats.get("app", "decode_bombs"), 1, "{:?}", s.stats);

    // Without a ratio the size cap stops it, at exactly the cap.
    let capped = settings(|s| {
        s.config.max_inflate_ratio = 0;
        s.config.max_decoded_bytes = 8 << 20;
    });
    let (s, events) = replay_with(&files, capped, &Detectors::none());
    let f = response(&events);
    assert_eq!(f.size, 8 << 20);
    assert_eq!(f.state, FileState::Truncated);
    assert_eq!(s.stats.get("app", "decode_bombs"), 1);
}

/// English text compresses about 3:1: well inside the ratio, decoded whole.
#[test]
fn ordinary_gzip_body_decodes_whole() {
    let dir = tempfile::tempdir().expect("tmp");
    let text = negative::english(&mut Rng::new(3), 3 << 20);
    let mut frames = Frames::default();
    scenario::http_gzip(
        &mut frames,
        &SessionOptions::ipv4(41_201, 80),
        "/book.txt",
        &text,
        false,
    )
    .expect("session");
    let p = dir.path().join("text.pcap");
    write_pcap(&p, frames.0);
    let (s, events) = replay_with(&[p], settings(|_| {}), &Detectors::none());
    let f = response(&events);
    assert_eq!(f.size, text.len() as u64);
    assert_eq!(f.state, FileState::Closed);
    assert_eq!(s.stats.get("app", "decode_bombs"), 0);
}
