//! Capture files read in place: pcap (either byte order, µs or ns, the
//! "modified" variant) and pcapng (any number of sections and interfaces,
//! each with its own link type and time resolution), parsed with rusticata's
//! `pcap-parser` straight out of a memory map. No packet is copied: a
//! [`Frame`] borrows the mapped bytes.
//!
//! Version checks follow libpcap (pcap 2.0–2.4, pcapng 1.x); a record cut
//! short at the end of the file is [`FileError::Truncated`], a record that
//! cannot be right (bad lengths, undefined interface) is
//! [`FileError::Corrupt`]; both stop that file after the packets before it.

use super::frame::Frame;
use pcap_parser::nom;
use pcap_parser::pcapng::{Block, parse_block_be, parse_block_le, parse_sectionheaderblock};
use pcap_parser::{PcapError, parse_pcap_header};
use std::fmt;
use std::path::Path;

/// A capture file mapped into memory.
pub struct MappedFile {
    map: memmap2::Mmap,
}

impl fmt::Debug for MappedFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MappedFile")
            .field("len", &self.map.len())
            .finish()
    }
}

impl MappedFile {
    /// Map `path` read-only.
    pub fn open(path: &Path) -> std::io::Result<MappedFile> {
        // Checked before opening: opening a FIFO would block for a writer.
        if !std::fs::metadata(path)?.is_file() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "not a regular file",
            ));
        }
        let file = std::fs::File::open(path)?;
        // SAFETY: the map is read-only and private to this process. If
        // another process truncates the file while it is mapped, reading the
        // lost pages raises SIGBUS — the documented limit of replaying
        // captures that are still being rewritten (appending is harmless:
        // the map keeps the length it had when opened).
        let map = unsafe { memmap2::Mmap::map(&file)? };
        // Sequential readers: ask the kernel to read ahead.
        #[cfg(unix)]
        let _ = map.advise(memmap2::Advice::Sequential);
        Ok(MappedFile { map })
    }

    /// The file's bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.map
    }

    /// A sequential reader reached `pos`: drop the pages more than a
    /// [`WINDOW`] behind it from this process's resident set (they stay in
    /// the page cache), so resident memory stays about one window whatever
    /// the file's size. (Mapping ahead with `MADV_POPULATE_READ` was
    /// measured and did not beat the kernel's fault-around here.)
    /// `state` is the reader's progress; start from the default.
    pub fn advance(&self, state: &mut Window, pos: usize) {
        if pos < state.next {
            return;
        }
        let here = pos / WINDOW * WINDOW;
        state.next = here + WINDOW / 2;
        #[cfg(unix)]
        {
            let behind = here.saturating_sub(WINDOW);
            if behind > state.released {
                // SAFETY: MADV_DONTNEED on a read-only private file mapping
                // drops this process's page-table entries for the range; a
                // later access reads the same file bytes back from the page
                // cache, so no reference into the map can observe a change.
                let _ = unsafe {
                    self.map.unchecked_advise_range(
                        memmap2::UncheckedAdvice::DontNeed,
                        state.released,
                        behind - state.released,
                    )
                };
                state.released = behind;
            }
        }
    }

    /// The reader is done with the file: every page still mapped leaves
    /// this process's resident set (see [`MappedFile::advance`]).
    pub fn release(&self, state: &mut Window) {
        #[cfg(unix)]
        if self.map.len() > state.released {
            // SAFETY: as in `advance`.
            let _ = unsafe {
                self.map.unchecked_advise_range(
                    memmap2::UncheckedAdvice::DontNeed,
                    state.released,
                    self.map.len() - state.released,
                )
            };
        }
        state.released = self.map.len();
        state.next = usize::MAX;
    }
}

/// Bytes a sequential reader keeps mapped behind it (a multiple of every
/// page size, so window edges are page-aligned).
pub const WINDOW: usize = 8 << 20;

/// A sequential reader's progress through a [`MappedFile`] (see
/// [`MappedFile::advance`]).
#[derive(Debug, Default)]
pub struct Window {
    next: usize,
    released: usize,
}

/// Why a capture file could not be read (further).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FileError {
    /// Neither a pcap nor a pcapng magic number.
    #[error("not a pcap or pcapng file")]
    NotCapture,
    /// A pcap or pcapng version libpcap does not read either.
    #[error("unsupported {format} version {major}.{minor}")]
    Version {
        /// `pcap` or `pcapng`.
        format: &'static str,
        /// Major version.
        major: u16,
        /// Minor version.
        minor: u16,
    },
    /// The file ends inside a header or record.
    #[error("truncated {what} at byte {offset}")]
    Truncated {
        /// What was being read.
        what: &'static str,
        /// File offset of its start.
        offset: usize,
    },
    /// A header or record that cannot be right.
    #[error("corrupt {what} at byte {offset}")]
    Corrupt {
        /// What is wrong.
        what: &'static str,
        /// File offset of the record.
        offset: usize,
    },
}

/// libpcap's largest accepted record (`MAXIMUM_SNAPLEN`); larger records
/// in a file are corrupt lengths, not packets.
const MAX_RECORD: u32 = 262_144;

struct Interface {
    link: i32,
    /// Timestamp units per second.
    units: u64,
    /// Seconds added to every timestamp (`if_tsoffset`).
    offset_secs: i64,
    snaplen: u32,
}

enum Format {
    Pcap {
        big_endian: bool,
        nanos: bool,
        /// The "modified" (Kuznetzov) format: 8 more bytes per record header.
        modified: bool,
        link: i32,
        max_caplen: u32,
    },
    PcapNg {
        big_endian: bool,
        interfaces: Vec<Interface>,
    },
}

/// Where a [`Packets`] reader stands in its file, without borrowing the
/// file: put away between stretches of reading by [`Packets::pause`], taken
/// up again by [`Packets::resume`].
pub struct Paused {
    pos: usize,
    format: Format,
    last_ts: i64,
    done: bool,
}

impl fmt::Debug for Paused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Paused").field("pos", &self.pos).finish()
    }
}

/// The packets of one capture file, in file order.
pub struct Packets<'a> {
    data: &'a [u8],
    pos: usize,
    format: Format,
    last_ts: i64,
    done: bool,
}

impl fmt::Debug for Packets<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Packets").field("pos", &self.pos).finish()
    }
}

fn parse_err<I>(e: nom::Err<PcapError<I>>, what: &'static str, offset: usize) -> FileError {
    match e {
        nom::Err::Incomplete(_) => FileError::Truncated { what, offset },
        _ => FileError::Corrupt { what, offset },
    }
}

/// Units per second of a pcapng `if_tsresol` value (10^n, or 2^n with the
/// high bit set); `None` when it does not fit 64 bits.
fn ts_units(resol: u8) -> Option<u64> {
    if resol & 0x80 == 0 {
        10u64.checked_pow(u32::from(resol))
    } else {
        1u64.checked_shl(u32::from(resol & 0x7f))
    }
}

/// `units` ticks at `per_sec` per second, plus `offset_secs`, in µs.
fn micros(units: u64, per_sec: u64, offset_secs: i64) -> i64 {
    let us = if per_sec == 1_000_000 {
        units as i128
    } else {
        i128::from(units) * 1_000_000 / i128::from(per_sec.max(1))
    };
    let us = us + i128::from(offset_secs) * 1_000_000;
    us.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

impl<'a> Packets<'a> {
    /// Read the file header (pcap) or first section header (pcapng).
    pub fn new(data: &'a [u8]) -> Result<Packets<'a>, FileError> {
        let magic = data
            .get(0..4)
            .map(|m| u32::from_le_bytes([m[0], m[1], m[2], m[3]]))
            .ok_or(FileError::Truncated {
                what: "file header",
                offset: 0,
            })?;
        let format = if magic == 0x0a0d_0d0a {
            // Sections are read as they come; the first one checks here.
            let (_, shb) =
                parse_sectionheaderblock(data).map_err(|e| parse_err(e, "section header", 0))?;
            check_ng_version(shb.major_version, shb.minor_version)?;
            Format::PcapNg {
                big_endian: shb.big_endian(),
                interfaces: Vec::new(),
            }
        } else {
            let (_, h) = parse_pcap_header(data).map_err(|e| match e {
                nom::Err::Error(PcapError::HeaderNotRecognized) => FileError::NotCapture,
                e => parse_err(e, "file header", 0),
            })?;
            let (major, minor) = (h.version_major, h.version_minor);
            if !(major == 2 && minor <= 4 || major == 543 && minor == 0) {
                return Err(FileError::Version {
                    format: "pcap",
                    major,
                    minor,
                });
            }
            Format::Pcap {
                big_endian: h.is_bigendian(),
                nanos: h.is_nanosecond_precision(),
                modified: h.is_modified_format(),
                link: h.network.0,
                max_caplen: h.snaplen.max(MAX_RECORD),
            }
        };
        let pos = match format {
            Format::Pcap { .. } => 24,
            Format::PcapNg { .. } => 0,
        };
        Ok(Packets {
            data,
            pos,
            format,
            last_ts: 0,
            done: false,
        })
    }

    /// Put the reader away (see [`Paused`]).
    pub fn pause(self) -> Paused {
        Paused {
            pos: self.pos,
            format: self.format,
            last_ts: self.last_ts,
            done: self.done,
        }
    }

    /// Take up reading `data` where `paused` stood; `data` must be the
    /// bytes it was reading.
    pub fn resume(data: &'a [u8], paused: Paused) -> Packets<'a> {
        Packets {
            data,
            pos: paused.pos,
            format: paused.format,
            last_ts: paused.last_ts,
            done: paused.done,
        }
    }

    /// File offset of the next record.
    pub fn offset(&self) -> usize {
        self.pos
    }

    /// The link type of a pcap file (pcapng: of its first interface, once
    /// read).
    pub fn linktype(&self) -> Option<i32> {
        match &self.format {
            Format::Pcap { link, .. } => Some(*link),
            Format::PcapNg { interfaces, .. } => interfaces.first().map(|i| i.link),
        }
    }

    /// The next packet, an error that ends the file, or `None` at its end.
    // Not `Iterator`: an item borrows the map, not the reader, but the
    // explicit method keeps the error-then-stop contract visible.
    #[allow(clippy::should_implement_trait)]
    #[inline]
    pub fn next(&mut self) -> Option<Result<Frame<'a>, FileError>> {
        if self.done {
            return None;
        }
        let r = match self.format {
            Format::Pcap { .. } => self.next_pcap(),
            Format::PcapNg { .. } => self.next_ng(),
        };
        if !matches!(r, Some(Ok(_))) {
            self.done = true;
        }
        r
    }

    #[inline]
    fn next_pcap(&mut self) -> Option<Result<Frame<'a>, FileError>> {
        let Format::Pcap {
            big_endian,
            nanos,
            modified,
            link,
            max_caplen,
        } = self.format
        else {
            return None;
        };
        let rest = self.data.get(self.pos..).unwrap_or_default();
        if rest.is_empty() {
            return None;
        }
        let offset = self.pos;
        let what = "packet record";
        // Read by hand: a record is four words (seconds, fraction, captured
        // and original length) and its bytes, and pcap-parser's record
        // parser (through nom) cost about 70 instructions a record, a fifth
        // of the shared walk's (callgrind). Its errors are kept: a length
        // over the limit is corrupt, a record cut short is truncated.
        let word = |at: usize| {
            let b: [u8; 4] = rest.get(at..at + 4)?.try_into().ok()?;
            Some(if big_endian {
                u32::from_be_bytes(b)
            } else {
                u32::from_le_bytes(b)
            })
        };
        // A corrupt length is caught before it is used.
        if word(8).is_some_and(|caplen| caplen > max_caplen) {
            return Some(Err(FileError::Corrupt {
                what: "packet record length",
                offset,
            }));
        }
        // The modified format's record header is 8 bytes longer: the
        // packet starts after them.
        let header = if modified { 24 } else { 16 };
        let (Some(sec), Some(frac), Some(caplen)) = (word(0), word(4), word(8)) else {
            return Some(Err(FileError::Truncated { what, offset }));
        };
        let consumed = header + caplen as usize;
        let Some(data) = rest.get(header..consumed) else {
            return Some(Err(FileError::Truncated { what, offset }));
        };
        self.pos += consumed;
        let frac = i64::from(frac);
        let ts = i64::from(sec)
            .saturating_mul(1_000_000)
            .saturating_add(if nanos { frac / 1000 } else { frac });
        self.last_ts = ts;
        Some(Ok(Frame { ts, link, data }))
    }

    fn next_ng(&mut self) -> Option<Result<Frame<'a>, FileError>> {
        loop {
            let rest = self.data.get(self.pos..).unwrap_or_default();
            if rest.is_empty() {
                return None;
            }
            let offset = self.pos;
            let Format::PcapNg {
                big_endian,
                interfaces,
            } = &mut self.format
            else {
                return None;
            };
            let parsed = if *big_endian {
                parse_block_be(rest)
            } else {
                parse_block_le(rest)
            };
            let (tail, block) = match parsed {
                Ok(x) => x,
                Err(nom::Err::Incomplete(_)) => {
                    // Incomplete inside a block the file holds whole is a
                    // corrupt inner length, not a truncated file.
                    let len = rest.get(4..8).map(|b| {
                        let b = [b[0], b[1], b[2], b[3]];
                        if *big_endian {
                            u32::from_be_bytes(b)
                        } else {
                            u32::from_le_bytes(b)
                        }
                    });
                    let whole = len.is_some_and(|l| l as usize <= rest.len());
                    let what = "pcapng block";
                    return Some(Err(if whole {
                        FileError::Corrupt { what, offset }
                    } else {
                        FileError::Truncated { what, offset }
                    }));
                }
                Err(e) => return Some(Err(parse_err(e, "pcapng block", offset))),
            };
            self.pos += rest.len() - tail.len();
            match block {
                Block::SectionHeader(shb) => {
                    if let Err(e) = check_ng_version(shb.major_version, shb.minor_version) {
                        return Some(Err(e));
                    }
                    *big_endian = shb.big_endian();
                    interfaces.clear();
                }
                Block::InterfaceDescription(idb) => {
                    let Some(units) = ts_units(idb.if_tsresol) else {
                        return Some(Err(FileError::Corrupt {
                            what: "interface time resolution",
                            offset,
                        }));
                    };
                    interfaces.push(Interface {
                        link: idb.linktype.0,
                        units,
                        offset_secs: idb.if_tsoffset,
                        snaplen: idb.snaplen,
                    });
                }
                Block::EnhancedPacket(epb) => {
                    let Some(i) = interfaces.get(epb.if_id as usize) else {
                        return Some(Err(FileError::Corrupt {
                            what: "packet of an undefined interface",
                            offset,
                        }));
                    };
                    let units = (u64::from(epb.ts_high) << 32) | u64::from(epb.ts_low);
                    let ts = micros(units, i.units, i.offset_secs);
                    self.last_ts = ts;
                    return Some(Ok(Frame {
                        ts,
                        link: i.link,
                        // `data` is padded to 32 bits: cut to the capture length.
                        data: epb.data.get(..epb.caplen as usize).unwrap_or(epb.data),
                    }));
                }
                Block::SimplePacket(spb) => {
                    let Some(i) = interfaces.first() else {
                        return Some(Err(FileError::Corrupt {
                            what: "packet of an undefined interface",
                            offset,
                        }));
                    };
                    // No timestamp: the previous packet's time keeps the
                    // clock monotonic.
                    // Padded to 32 bits; the original length, at most the
                    // interface's snap length, is what was captured.
                    let mut len = spb.origlen as usize;
                    if i.snaplen > 0 {
                        len = len.min(i.snaplen as usize);
                    }
                    let data = spb.data.get(..len).unwrap_or(spb.data);
                    return Some(Ok(Frame {
                        ts: self.last_ts,
                        link: i.link,
                        data,
                    }));
                }
                _ => {}
            }
        }
    }
}

fn check_ng_version(major: u16, minor: u16) -> Result<(), FileError> {
    if major == 1 {
        Ok(())
    } else {
        Err(FileError::Version {
            format: "pcapng",
            major,
            minor,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pcap(magic: u32, records: &[(u32, u32, &[u8])]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&magic.to_le_bytes());
        v.extend_from_slice(&2u16.to_le_bytes());
        v.extend_from_slice(&4u16.to_le_bytes());
        v.extend_from_slice(&[0; 8]);
        v.extend_from_slice(&65535u32.to_le_bytes());
        v.extend_from_slice(&1u32.to_le_bytes());
        for (s, frac, data) in records {
            v.extend_from_slice(&s.to_le_bytes());
            v.extend_from_slice(&frac.to_le_bytes());
            v.extend_from_slice(&(data.len() as u32).to_le_bytes());
            v.extend_from_slice(&(data.len() as u32).to_le_bytes());
            v.extend_from_slice(data);
        }
        v
    }

    #[test]
    fn reads_micro_and_nano_pcaps() {
        for (magic, frac, want) in [
            (0xa1b2_c3d4u32, 5u32, 10_000_005i64),
            (0xa1b2_3c4d, 5_000, 10_000_005),
        ] {
            let f = pcap(magic, &[(10, frac, b"abc"), (11, 0, b"de")]);
            let mut p = Packets::new(&f).unwrap();
            let a = p.next().unwrap().unwrap();
            assert_eq!((a.ts, a.link, a.data), (want, 1, &b"abc"[..]));
            let b = p.next().unwrap().unwrap();
            assert_eq!((b.ts, b.data), (11_000_000, &b"de"[..]));
            assert!(p.next().is_none());
        }
    }

    #[test]
    fn truncation_and_corruption_stop_the_file() {
        let f = pcap(0xa1b2_c3d4, &[(1, 0, b"abcdef"), (2, 0, b"ghijkl")]);
        for cut in 25..f.len() {
            let mut p = Packets::new(&f[..cut]).unwrap();
            let mut n = 0;
            let mut err = None;
            while let Some(r) = p.next() {
                match r {
                    Ok(_) => n += 1,
                    Err(e) => err = Some(e),
                }
            }
            if cut == 24 + 22 {
                assert_eq!((n, err), (1, None));
            } else {
                assert!(matches!(err, Some(FileError::Truncated { .. })), "{cut}");
            }
        }
        let mut bad = f.clone();
        bad[24 + 8..24 + 12].copy_from_slice(&u32::MAX.to_le_bytes());
        let mut p = Packets::new(&bad).unwrap();
        assert!(matches!(p.next(), Some(Err(FileError::Corrupt { .. }))));
        assert!(p.next().is_none());
        let mut old = f.clone();
        old[4] = 1;
        assert!(matches!(Packets::new(&old), Err(FileError::Version { .. })));
        assert_eq!(
            Packets::new(b"GIF89a..........................").err(),
            Some(FileError::NotCapture)
        );
    }

    #[test]
    fn time_resolutions() {
        assert_eq!(ts_units(6), Some(1_000_000));
        assert_eq!(ts_units(9), Some(1_000_000_000));
        assert_eq!(ts_units(0x80 | 10), Some(1024));
        assert_eq!(ts_units(20), None);
        assert_eq!(micros(1_500_000_000, 1_000_000_000, 0), 1_500_000);
        assert_eq!(micros(2048, 1024, 1), 3_000_000);
    }
}
