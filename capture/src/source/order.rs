//! The order input files are read in: directories expanded, every file
//! ordered by the time of its first packet.

use super::pcapfile::{MappedFile, Packets};
use std::path::{Path, PathBuf};

/// Whether a file starts like a pcap (either byte order, µs or ns) or a
/// pcapng section.
fn has_capture_magic(path: &Path) -> bool {
    use std::io::Read;
    let mut magic = [0u8; 4];
    let read = std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut magic));
    read.is_ok()
        && matches!(
            u32::from_be_bytes(magic),
            0xa1b2_c3d4 | 0xd4c3_b2a1 | 0xa1b2_3c4d | 0x4d3c_b2a1 | 0x0a0d_0d0a
        )
}

/// Expand directories (their regular pcap/pcapng files, by name; other
/// files are skipped with a warning; files named explicitly are always
/// read) and order every input by the time of its first packet, so rotated
/// captures replay in order. Files whose first packet cannot be read keep their place at the end and
/// report their error when they are read.
pub fn ordered_inputs(paths: &[PathBuf]) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(p)?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file())
                .filter(|p| {
                    let ok = has_capture_magic(p);
                    if !ok {
                        tracing::warn!("skipping {}: not a pcap/pcapng file", p.display());
                    }
                    ok
                })
                .collect();
            entries.sort();
            files.extend(entries);
        } else {
            files.push(p.clone());
        }
    }
    let mut keyed: Vec<(i64, usize, PathBuf)> = files
        .into_iter()
        .enumerate()
        .map(|(i, f)| (first_packet_time(&f).unwrap_or(i64::MAX), i, f))
        .collect();
    keyed.sort();
    Ok(keyed.into_iter().map(|(_, _, f)| f).collect())
}

/// The time of the first packet of a capture file (µs since the epoch),
/// as captured; `None` when it cannot be read.
pub fn first_packet_time(path: &Path) -> Option<i64> {
    let map = MappedFile::open(path).ok()?;
    let mut packets = Packets::new(map.bytes()).ok()?;
    Some(packets.next()?.ok()?.ts)
}
