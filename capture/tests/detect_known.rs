//! Known weights: a registered file is found sent whole, in part (30 %), at
//! an offset inside another stream, inside uncompressed tar and zip, in
//! random chunkings; unregistered weights are not; the index file round-trips
//! and rejects damage; a file sent as many small requests is matched across
//! the cuts between them (stitching) in any order; the chunker's cuts do
//! not depend on how the bytes are sliced.

use crate::detect_common::{meta, raw_midstream, run_object};
use capture::detect::DetectConfig;
use capture::detect::known::{ChunkParams, Index, KnownWeightsDetector};
use eve::AlertCategory;
use fixtures::weights::{DType, Format, ModelSpec, Rng, WeightFile, archive};
use std::path::Path;
use std::sync::Arc;

struct Setup {
    det: KnownWeightsDetector,
    files: Vec<WeightFile>,
    index: Arc<Index>,
}

fn setup(sample: u32) -> Setup {
    let spec = ModelSpec::tiny();
    let files = vec![
        Format::Safetensors.write(&spec, DType::F32, 100),
        Format::Gguf.write(&spec, DType::BF16, 101),
        Format::PytorchZip.write(&spec, DType::F16, 102),
    ];
    let mut index = Index::new(ChunkParams::default(), sample).expect("valid params");
    for f in &files {
        index
            .add(&format!("/models/tiny/{}", f.name), f.bytes.as_slice())
            .expect("in-memory read");
    }
    let index = Arc::new(index);
    let det = KnownWeightsDetector::new(index.clone(), Arc::new(DetectConfig::default()));
    Setup { det, files, index }
}

fn matched(s: &Setup, bytes: &[u8], seed: u64) -> Option<(String, u64, f64)> {
    let (f, _) = run_object(&s.det, &raw_midstream(), bytes, 0, seed, 20_000);
    let f = f?;
    assert_eq!(f.category, AlertCategory::WeightsKnown);
    Some((
        f.evidence["known_file"].as_str()?.to_string(),
        f.evidence["matched_bytes"].as_u64()?,
        f.evidence["coverage"].as_f64()?,
    ))
}

#[test]
fn whole_file_is_found_with_full_coverage() {
    let s = setup(1);
    for (i, f) in s.files.iter().enumerate() {
        let (name, bytes, coverage) = matched(&s, &f.bytes, i as u64).expect("whole file");
        assert!(name.ends_with(&f.name), "{name} vs {}", f.name);
        assert!(coverage > 0.9, "{name}: coverage {coverage}");
        assert!(bytes <= f.bytes.len() as u64);
    }
}

#[test]
fn thirty_percent_from_the_middle_is_found() {
    let s = setup(1);
    let f = &s.files[0];
    let len = f.bytes.len();
    let part = &f.bytes[len / 3..len / 3 + len * 3 / 10];
    let (name, bytes, coverage) = matched(&s, part, 5).expect("30% slice");
    assert!(name.ends_with(&f.name));
    assert!(bytes > 0 && bytes <= part.len() as u64);
    assert!((0.05..=0.31).contains(&coverage), "{coverage}");
}

/// The alert's `file_ranges` as pairs.
fn ranges(s: &Setup, bytes: &[u8], seed: u64) -> Vec<(u64, u64)> {
    let (f, _) = run_object(&s.det, &raw_midstream(), bytes, 0, seed, 20_000);
    let f = f.expect("an alert");
    assert_eq!(f.evidence["file_ranges_compacted"], false);
    f.evidence["file_ranges"]
        .as_array()
        .expect("file_ranges")
        .iter()
        .map(|r| (r[0].as_u64().unwrap(), r[1].as_u64().unwrap()))
        .collect()
}

#[test]
fn file_ranges_name_the_bytes_of_the_file_an_object_carried() {
    let s = setup(1);
    let f = &s.files[0];
    let len = f.bytes.len() as u64;
    // The whole file, in random segmentations: one range, all of it.
    for seed in 0..3 {
        assert_eq!(ranges(&s, &f.bytes, seed), vec![(0, len)], "seed {seed}");
    }
    // A slice from the middle: one range, inside the slice's bounds, and
    // its edges (partial chunks the chunker cannot match) widened back to
    // within one chunk of them.
    let (a, b) = (len / 3, len / 3 + len * 3 / 10);
    let r = ranges(&s, &f.bytes[a as usize..b as usize], 5);
    assert_eq!(r.len(), 1, "{r:?}");
    assert!(r[0].0 >= a && r[0].1 <= b, "{r:?} outside {a}..{b}");
    assert_eq!(r[0], (a, b), "edges within one chunk are counted");
    // Two slices in one stream with noise between: two ranges.
    let mut rng = Rng::new(3);
    let mut stream = f.bytes[..(len / 4) as usize].to_vec();
    stream.extend(rng.bytes(300_000));
    stream.extend_from_slice(&f.bytes[(len / 2) as usize..]);
    let r = ranges(&s, &stream, 6);
    assert_eq!(r.len(), 2, "{r:?}");
    assert_eq!(r[0].0, 0);
    assert!(r[0].1 <= len / 4, "{r:?}");
    assert!(r[1].0 >= len / 2 && r[1].1 == len, "{r:?}");
}

#[test]
fn file_inside_another_stream_at_an_odd_offset_is_found() {
    let s = setup(1);
    let mut r = Rng::new(9);
    let mut stream = r.bytes(123_457);
    stream.extend_from_slice(&s.files[1].bytes);
    stream.extend(r.bytes(50_001));
    let (name, _, coverage) = matched(&s, &stream, 6).expect("embedded");
    assert!(name.ends_with(&s.files[1].name));
    assert!(coverage > 0.8, "{coverage}");
}

#[test]
fn files_inside_tar_and_zip_are_found() {
    let s = setup(1);
    let members: Vec<WeightFile> = s
        .files
        .iter()
        .map(|f| WeightFile {
            name: format!("export/{}", f.name),
            bytes: f.bytes.clone(),
        })
        .collect();
    for (what, container) in [
        ("tar", archive::tar(&members)),
        ("zip", archive::zip(&members)),
    ] {
        let (f, _) = run_object(
            &s.det,
            &meta("backup", container.len()),
            &container,
            0,
            7,
            30_000,
        );
        let f = f.unwrap_or_else(|| panic!("{what}"));
        let also = f
            .evidence
            .get("also_matched")
            .and_then(|a| a.as_array())
            .map(Vec::len)
            .unwrap_or(0);
        assert_eq!(also, 2, "{what}: every member named: {:?}", f.evidence);
    }
}

#[test]
fn unregistered_weights_and_random_bytes_do_not_match() {
    let s = setup(1);
    let other = Format::Safetensors.write(&ModelSpec::tiny(), DType::F32, 999);
    assert_eq!(matched(&s, &other.bytes, 1), None);
    assert_eq!(matched(&s, &Rng::new(4).bytes(2_000_000), 2), None);
    assert_eq!(matched(&s, &vec![0u8; 2_000_000], 3), None);
}

#[test]
fn gaps_resynchronise() {
    let s = setup(1);
    let f = &s.files[0].bytes;
    let mut scan = capture::detect::Detector::begin(&s.det, &raw_midstream()).expect("interested");
    let half = f.len() / 2;
    assert!(scan.data(0, &f[..half / 2]).is_none());
    scan.gap((half / 2) as u64);
    let _ = scan.data(half as u64, &f[half..]);
    let done = scan
        .end(capture::object::ObjectEnd::Truncated)
        .expect("match after a gap");
    assert!(done.evidence["coverage"].as_f64().unwrap_or(0.0) > 0.5);
}

#[test]
fn sampled_index_is_smaller_and_still_finds_whole_files() {
    let full = setup(1);
    let sampled = setup(4);
    assert!(sampled.index.chunks.len() * 2 < full.index.chunks.len());
    let (name, _, coverage) = matched(&sampled, &sampled.files[0].bytes, 1).expect("sampled match");
    assert!(name.ends_with(&sampled.files[0].name));
    assert!(coverage > 0.3, "{coverage}");
}

#[test]
fn index_file_round_trips_and_rejects_damage() {
    let s = setup(2);
    let bytes = s.index.to_bytes();
    let p = Path::new("mem.idx");
    let back = Index::from_bytes(&bytes, p).expect("round trip");
    assert_eq!(&back, s.index.as_ref());
    for i in [0usize, 9, 30, bytes.len() / 2, bytes.len() - 1] {
        let mut bad = bytes.clone();
        bad[i] ^= 0x40;
        assert!(Index::from_bytes(&bad, p).is_err(), "flip at {i} accepted");
    }
    assert!(Index::from_bytes(&bytes[..bytes.len() - 9], p).is_err());
    assert!(Index::from_bytes(b"", p).is_err());
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("w.idx");
    s.index.write(&path).expect("write");
    assert_eq!(Index::read(&path).expect("read"), back);
}

#[test]
fn an_index_of_another_format_version_is_refused_by_name() {
    use capture::detect::known::{IndexError, VERSION};
    let s = setup(2);
    let good = s.index.to_bytes();
    let dir = tempfile::tempdir().expect("tempdir");
    // The same index with only its header's version changed and a valid
    // checksum, as an older or a newer release would have written it.
    for found in [0, VERSION + 1, u32::MAX] {
        let mut b = good.clone();
        b[8..12].copy_from_slice(&found.to_le_bytes());
        let body = b.len() - 8;
        let sum = xxhash_rust::xxh3::xxh3_64(&b[..body]);
        b[body..].copy_from_slice(&sum.to_le_bytes());
        let path = dir.path().join(format!("v{found}.idx"));
        std::fs::write(&path, &b).expect("write");
        match Index::read(&path) {
            Err(e @ IndexError::Version { .. }) => {
                let msg = e.to_string();
                assert!(
                    msg.contains(&format!("format version {found}"))
                        && msg.contains(&format!("reads version {VERSION}"))
                        && msg.contains(&path.display().to_string()),
                    "{msg}"
                );
            }
            other => panic!("version {found}: {other:?}"),
        }
    }
}

/// A registered file of ~7.4 MB (bf16, four layers) and a detector that
/// chunks the first 1 MiB in full, then 256 KiB windows every 1 MiB.
fn sampled_setup() -> (KnownWeightsDetector, WeightFile) {
    let spec = ModelSpec {
        name: "ww-sampled".into(),
        arch: "llama".into(),
        hidden: 256,
        intermediate: 688,
        vocab: 1024,
        layers: 4,
    };
    let file = Format::Safetensors.write(&spec, DType::BF16, 31);
    let mut index = Index::new(ChunkParams::default(), 1).expect("valid params");
    index
        .add("/models/sampled.safetensors", file.bytes.as_slice())
        .expect("in-memory read");
    let cfg = DetectConfig {
        known_full_scan_bytes: 1 << 20,
        known_window_bytes: 256 << 10,
        known_window_stride_bytes: 1 << 20,
        ..DetectConfig::default()
    };
    (
        KnownWeightsDetector::new(Arc::new(index), Arc::new(cfg)),
        file,
    )
}

fn sampled_match(det: &KnownWeightsDetector, bytes: &[u8], seed: u64) -> capture::detect::Finding {
    let (f, _) = run_object(det, &raw_midstream(), bytes, 0, seed, 20_000);
    let f = f.expect("sampled scan finds the file");
    assert!(
        f.evidence["known_file"]
            .as_str()
            .is_some_and(|n| n.ends_with("sampled.safetensors"))
    );
    f
}

fn num(f: &capture::detect::Finding, key: &str) -> f64 {
    f.evidence[key].as_f64().unwrap_or(-1.0)
}

#[test]
fn sampled_scan_reads_a_fraction_and_estimates_coverage_of_a_whole_file() {
    let (det, file) = sampled_setup();
    assert!(file.bytes.len() > 7_000_000, "{}", file.bytes.len());
    let f = sampled_match(&det, &file.bytes, 1);
    let (seen, scanned) = (
        num(&f, "object_bytes_seen"),
        num(&f, "object_bytes_scanned"),
    );
    assert_eq!(seen, file.bytes.len() as f64);
    // 1 MiB in full, then a quarter of the rest.
    assert!(scanned < seen * 0.45, "scanned {scanned} of {seen}");
    assert_eq!(f.evidence["coverage_estimated"], true);
    let cov = num(&f, "coverage");
    assert!((0.75..=1.0).contains(&cov), "estimated coverage {cov}");
    assert!(num(&f, "matched_bytes") < num(&f, "estimated_bytes"));
}

#[test]
fn sampled_scan_finds_a_thirty_percent_part_and_a_file_deep_inside_a_stream() {
    let (det, file) = sampled_setup();
    let len = file.bytes.len();
    let part = &file.bytes[len / 2..len / 2 + len * 3 / 10];
    let f = sampled_match(&det, part, 2);
    let cov = num(&f, "coverage");
    assert!((0.2..=0.32).contains(&cov), "30% part: coverage {cov}");

    // Behind 3.3 MB of other bytes: only sampled windows see the file.
    let mut r = Rng::new(12);
    let mut stream = r.bytes(3_300_001);
    stream.extend_from_slice(&file.bytes);
    stream.extend(r.bytes(777_777));
    let f = sampled_match(&det, &stream, 3);
    let cov = num(&f, "coverage");
    assert!((0.6..=1.0).contains(&cov), "embedded: coverage {cov}");
}

#[test]
fn sampled_scan_finds_a_member_deep_inside_tar_and_zip() {
    let (det, file) = sampled_setup();
    let members = vec![
        WeightFile {
            name: "export/optimizer.bin".into(),
            bytes: Rng::new(5).bytes(2_500_000),
        },
        WeightFile {
            name: "export/model.safetensors".into(),
            bytes: file.bytes.clone(),
        },
    ];
    for (what, container) in [
        ("tar", archive::tar(&members)),
        ("zip", archive::zip(&members)),
    ] {
        let (f, _) = run_object(
            &det,
            &meta("backup", container.len()),
            &container,
            0,
            8,
            30_000,
        );
        let f = f.unwrap_or_else(|| panic!("{what}: member found"));
        assert!(num(&f, "coverage") > 0.6, "{what}: {:?}", f.evidence);
    }
}

#[test]
fn a_long_transfer_is_reported_while_it_runs() {
    let (_, file) = sampled_setup();
    let mut index = Index::new(ChunkParams::default(), 1).expect("valid params");
    index
        .add("/models/sampled.safetensors", file.bytes.as_slice())
        .expect("in-memory read");
    let cfg = DetectConfig {
        known_early_alert_bytes: 2 << 20,
        ..DetectConfig::default()
    };
    let det = KnownWeightsDetector::new(Arc::new(index), Arc::new(cfg));
    let f = sampled_match(&det, &file.bytes, 4);
    assert_eq!(f.evidence["object_complete"], false);
    let seen = num(&f, "object_bytes_seen");
    assert!(
        seen >= 2.0 * 1024.0 * 1024.0 && seen < file.bytes.len() as f64 / 2.0,
        "alert after {seen} of {} bytes",
        file.bytes.len()
    );
}

/// The union of the file ranges (own and held) the findings report, as a
/// fraction of `size`.
fn covered(findings: &[capture::detect::Finding], size: u64) -> f64 {
    let mut all: Vec<(u64, u64)> = findings
        .iter()
        .flat_map(|f| {
            ["file_ranges", "held_file_ranges"]
                .into_iter()
                .filter_map(|k| f.evidence.get(k)?.as_array().cloned())
                .flatten()
        })
        .map(|r| (r[0].as_u64().unwrap(), r[1].as_u64().unwrap()))
        .collect();
    all.sort_unstable();
    let (mut sum, mut end) = (0, 0);
    for (a, b) in all {
        let a = a.max(end);
        if b > a {
            sum += b - a;
            end = b;
        }
    }
    sum as f64 / size as f64
}

/// A 3.6 MB file sent as ~105 KiB requests from one client to one server,
/// each request run through the detector whole, in `order`; the findings.
fn pieces_in_order(
    cfg: DetectConfig,
    sample: u32,
    order: &[usize],
) -> (Vec<capture::detect::Finding>, u64) {
    let spec = ModelSpec {
        name: "stitch".into(),
        arch: "llama".into(),
        hidden: 256,
        intermediate: 688,
        vocab: 2048,
        layers: 1,
    };
    let file = Format::Safetensors.write(&spec, DType::BF16, 31);
    let mut index = Index::new(ChunkParams::default(), sample).expect("valid params");
    index
        .add("/models/stitch.safetensors", file.bytes.as_slice())
        .expect("read");
    let det = KnownWeightsDetector::new(Arc::new(index), Arc::new(cfg));
    let pieces: Vec<&[u8]> = file.bytes.chunks(105 * 1024 + 37).collect();
    assert!(pieces.len() > 30 && order.len() == pieces.len());
    let mut findings = Vec::new();
    for &i in order {
        let mut m = meta(&format!("part{i}.bin"), pieces[i].len());
        m.origin = Some(capture::object::Origin {
            sender: "10.1.0.10".parse().unwrap(),
            receiver: "198.51.100.10".parse().unwrap(),
            begun_us: i as i64 * 37_000_000,
        });
        let (f, _) = run_object(&det, &m, pieces[i], 0, i as u64, 20_000);
        findings.extend(f);
    }
    (findings, file.bytes.len() as u64)
}

#[test]
fn requests_of_one_file_are_stitched_across_their_cuts_in_any_order() {
    // Each ~105 KiB request holds 0-2 whole 32 KiB-average chunks; the chunk
    // spanning each cut is matched by stitching the request to its
    // neighbours, whichever of two is chunked first.
    let n = 35;
    let forward: Vec<usize> = (0..n).collect();
    let backward: Vec<usize> = (0..n).rev().collect();
    let swapped: Vec<usize> = (0..n).map(|i| i ^ 1).map(|i| i.min(n - 1)).collect();
    let mut seen = std::collections::BTreeSet::new();
    assert!(swapped.iter().all(|i| seen.insert(*i)), "a permutation");
    let (alone, size) = pieces_in_order(
        DetectConfig {
            known_stitch_secs: 0,
            ..DetectConfig::default()
        },
        1,
        &forward,
    );
    let without = covered(&alone, size);
    for (what, order) in [
        ("forward", &forward),
        ("backward", &backward),
        ("swapped", &swapped),
    ] {
        let (findings, size) = pieces_in_order(DetectConfig::default(), 1, order);
        let cov = covered(&findings, size);
        let stitched = findings
            .iter()
            .filter(|f| f.evidence.get("stitched_chunks").is_some())
            .count();
        eprintln!(
            "{what}: coverage {cov:.4} (without stitching {without:.4}), {stitched} of {} findings stitched",
            findings.len()
        );
        assert!(
            cov >= 0.95 && cov > without + 0.1,
            "{what}: {cov} (without stitching {without})"
        );
        assert!(
            stitched > n / 3,
            "{what}: {stitched} findings with a stitched chunk"
        );
        for f in &findings {
            // Verified bytes lie inside what the finding says it carried.
            let get = |k: &str| f.evidence[k].as_array().cloned().unwrap_or_default();
            for v in get("file_ranges_verified") {
                assert!(
                    get("file_ranges")
                        .iter()
                        .any(|r| r[0].as_u64() <= v[0].as_u64() && v[1].as_u64() <= r[1].as_u64()),
                    "{what}: {:?}",
                    f.evidence
                );
            }
        }
    }
}

#[test]
fn stitching_with_a_sampled_index_adds_only_sampled_chunks() {
    // With 1 chunk in 4 indexed, a stitched chunk is found only when it is
    // in the sample too; what is found is still the file's, and it only
    // adds to what the requests show without stitching (measured: 40 %
    // against 29 % for the file sent backwards).
    let order: Vec<usize> = (0..35).rev().collect();
    let off = DetectConfig {
        known_stitch_secs: 0,
        ..DetectConfig::default()
    };
    let (alone, size) = pieces_in_order(off, 4, &order);
    let (stitched, _) = pieces_in_order(DetectConfig::default(), 4, &order);
    let (without, with) = (covered(&alone, size), covered(&stitched, size));
    eprintln!("sample 4: coverage {with:.4}, without stitching {without:.4}");
    assert!(with > without, "{with} vs {without}");
    for f in &stitched {
        assert_eq!(f.evidence["index_sample"], 4);
        assert_eq!(f.evidence["known_file"], "/models/stitch.safetensors");
    }
}

/// The chunks of `data` fed in slices of up to `most` bytes (sizes drawn
/// from `seed`).
fn chunks_in_slices(data: &[u8], most: u64, seed: u64) -> Vec<Vec<u8>> {
    let mut chunker = capture::detect::known::Chunker::new(ChunkParams::default());
    let mut rng = Rng::new(seed);
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let n = (1 + rng.below(most) as usize).min(rest.len());
        chunker.push(&rest[..n], |c| out.push(c.to_vec()));
        rest = &rest[n..];
    }
    chunker.finish(|c| out.push(c.to_vec()));
    out
}

#[test]
fn chunks_do_not_depend_on_how_the_bytes_are_sliced() {
    // Tensor bytes (cut by content) and a run of zeros (cut at `max`),
    // 3.6 MB: the pending buffer passes one and two maximum chunks, where
    // it grows to its bound in one step, with slices smaller and larger
    // than the room it keeps for one.
    let mut data = fixtures::weights::raw_tensor_bytes(&ModelSpec::tiny(), DType::F32, 7);
    data.extend(std::iter::repeat_n(0u8, 300_000));
    data.extend_from_slice(&fixtures::weights::raw_tensor_bytes(
        &ModelSpec::tiny(),
        DType::BF16,
        8,
    ));
    let whole = chunks_in_slices(&data, data.len() as u64, 0);
    assert!(whole.len() > 10, "{} chunks", whole.len());
    assert_eq!(whole.concat(), data);
    let max = ChunkParams::default().max as usize;
    assert!(whole.iter().all(|c| c.len() <= max));
    for (most, seed) in [(64, 1), (1_500, 2), (70_000, 3), (300_000, 4)] {
        assert_eq!(
            chunks_in_slices(&data, most, seed),
            whole,
            "slices of up to {most} bytes"
        );
    }
}
