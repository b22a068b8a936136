//! Packet sources: the frame type they hand over, the ordering of input
//! files, and libpcap's packet clock for live interfaces (files are read
//! by [`crate::pcapfile`]).

use std::path::{Path, PathBuf};

/// A captured frame as a source hands it over.
#[derive(Debug)]
pub struct Frame<'a> {
    /// Capture time, µs since the Unix epoch.
    pub ts: i64,
    /// Link type (`LINKTYPE_*`) of the frame.
    pub link: i32,
    /// Captured bytes (up to the snap length).
    pub data: &'a [u8],
}

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

fn first_packet_time(path: &Path) -> Option<i64> {
    let map = crate::pcapfile::MappedFile::open(path).ok()?;
    let mut packets = crate::pcapfile::Packets::new(map.bytes()).ok()?;
    Some(packets.next()?.ok()?.ts)
}

/// µs since the epoch of a packet header.
// `timeval` fields are i64 here but narrower on 32-bit targets.
#[allow(clippy::useless_conversion)]
pub(crate) fn header_micros(h: &pcap::PacketHeader) -> i64 {
    i64::from(h.ts.tv_sec)
        .saturating_mul(1_000_000)
        .saturating_add(i64::from(h.ts.tv_usec))
}
