//! The spool's layout carries a version: crafted spool directories of the
//! layout before the version file, of a newer version and with a damaged
//! version file are read, or refused with a message that says why.

use eve::sink::spool::{FORMAT_VERSION, Spool};
use std::path::Path;

fn segment(dir: &Path, n: u64) -> std::path::PathBuf {
    dir.join(format!("{n:020}.jsonl"))
}

#[test]
fn a_spool_from_before_the_version_file_is_read_and_marked() {
    let dir = tempfile::tempdir().unwrap();
    // What a spool written before versioning holds: a segment whose first
    // line was acknowledged (the cursor points past it), one still queued.
    let first = "{\"event_id\":\"a\"}\n";
    std::fs::write(
        segment(dir.path(), 0),
        format!("{first}{{\"event_id\":\"b\"}}\n"),
    )
    .unwrap();
    std::fs::write(dir.path().join("cursor"), format!("0 {}\n", first.len())).unwrap();
    let spool = Spool::open(dir.path(), 1 << 20, 1 << 20).expect("an old spool is read");
    let batch = spool.read_batch(10).unwrap();
    assert_eq!(batch.lines, vec!["{\"event_id\":\"b\"}"]);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("format")).unwrap(),
        format!("weightwatch-spool {FORMAT_VERSION}\n")
    );
}

#[test]
fn a_spool_of_a_newer_version_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let next = FORMAT_VERSION + 1;
    std::fs::write(
        dir.path().join("format"),
        format!("weightwatch-spool {next}\n"),
    )
    .unwrap();
    let body = "\u{1}binary record of a future layout\n";
    std::fs::write(segment(dir.path(), 0), body).unwrap();
    let err = Spool::open(dir.path(), 1 << 20, 1 << 20)
        .expect_err("a newer spool must not be read")
        .to_string();
    assert!(
        err.contains(&format!("format version {next}"))
            && err.contains(&format!("reads version {FORMAT_VERSION}"))
            && err.contains(&dir.path().display().to_string()),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(segment(dir.path(), 0)).unwrap(),
        body,
        "the refused spool is not touched"
    );
}

#[test]
fn a_damaged_version_file_is_refused_with_its_content() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("format"), "garbage\n").unwrap();
    let err = Spool::open(dir.path(), 1 << 20, 1 << 20)
        .expect_err("an unknown format file is refused")
        .to_string();
    assert!(
        err.contains("does not name a weightwatch spool format") && err.contains("garbage"),
        "{err}"
    );
}
