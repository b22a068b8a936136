//! Known weights: the lab registers its own weight files; the sensor
//! recognises their bytes in any object, at any offset.
//!
//! `weightwatch index build` cuts each file into content-defined chunks
//! ([`chunker`]), fingerprints each chunk with xxh3-64 and keeps the chunks
//! whose fingerprint falls in the sample (`fingerprint % sample == 0`, so
//! the sensor samples identically without coordination). The index file is
//! versioned, its header checked, its body protected by an xxh3 checksum.
//! Each kept chunk costs 24 bytes (fingerprint, file, length and its offset
//! in the file, so a match says which bytes of the file were seen): with
//! 32 KiB average chunks that is 768 MiB per TiB of weights unsampled,
//! 96 MiB at `--sample 8`.

pub mod chunker;
pub mod hosts;
pub mod matcher;
pub mod ranges;
pub mod stitch;

pub use chunker::{ChunkParams, Chunker};
pub use matcher::KnownWeightsDetector;

use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use xxhash_rust::xxh3::xxh3_64;

const MAGIC: &[u8; 8] = b"WWKNOWN\0";
/// The index file format this build writes and reads (the `u32` after the
/// magic). Bump it with any change of the layout below: an index of another
/// version is refused with [`IndexError::Version`]. Version 2 added each
/// chunk's offset in its file and a flags byte per file (bit 0: canary).
pub const VERSION: u32 = 2;
/// Bytes of one serialised chunk entry.
const ENTRY_BYTES: u64 = 24;
/// Files per index at most (names are u16-length, ids u32).
const MAX_FILES: u32 = 1 << 20;
/// Longest stored file name.
const MAX_NAME: usize = 4096;

/// Why an index could not be built, read or written.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The index file is not one, or is damaged.
    #[error("{path}: not a valid weightwatch index: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The index was written in a format version this build does not read
    /// (by another weightwatch release): it is refused, never guessed at.
    #[error(
        "{path}: weightwatch index format version {found}, this weightwatch reads version \
         {supported}: build the index again with this release's `weightwatch index build`"
    )]
    Version {
        /// The file.
        path: PathBuf,
        /// The version in the file's header.
        found: u32,
        /// The version this build reads and writes.
        supported: u32,
    },
    /// Bad build parameters.
    #[error("invalid index parameters: {0}")]
    Params(String),
}

/// One registered file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KnownFile {
    /// Path as given at build time.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// Chunks the file was cut into (before sampling).
    pub chunks: u32,
    /// SHA-256 of the whole file.
    pub sha256: [u8; 32],
    /// A canary (`weightwatch canary --write`): its alerts say so, so an
    /// exfiltration test is told from a leak.
    pub canary: bool,
}

/// One kept chunk fingerprint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ChunkEntry {
    /// xxh3-64 of the chunk.
    pub hash: u64,
    /// Index into [`Index::files`].
    pub file: u32,
    /// Chunk length.
    pub len: u32,
    /// Offset of the chunk in its file.
    pub offset: u64,
}

/// A loaded (or freshly built) known-weights index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Index {
    /// Chunking parameters (the sensor must use the same).
    pub params: ChunkParams,
    /// Keep 1 in `sample` chunks (by fingerprint).
    pub sample: u32,
    /// Registered files.
    pub files: Vec<KnownFile>,
    /// Kept chunks, sorted by hash.
    pub chunks: Vec<ChunkEntry>,
}

/// Whether a chunk is too uniform to identify anything (padding, zeros).
pub(crate) fn low_information(chunk: &[u8]) -> bool {
    let sample = &chunk[..chunk.len().min(4096)];
    let mut hist = [0u32; 256];
    sample.iter().for_each(|b| hist[*b as usize] += 1);
    let top = hist.iter().max().copied().unwrap_or(0) as usize;
    top * 2 > sample.len() || hist.iter().filter(|c| **c > 0).count() < 16
}

impl Index {
    /// An empty index.
    pub fn new(params: ChunkParams, sample: u32) -> Result<Self, IndexError> {
        if !params.valid() {
            return Err(IndexError::Params(format!("chunk sizes {params:?}")));
        }
        if sample == 0 {
            return Err(IndexError::Params("sample must be at least 1".into()));
        }
        Ok(Index {
            params,
            sample,
            files: Vec::new(),
            chunks: Vec::new(),
        })
    }

    /// Whether a fingerprint is in the sample.
    pub fn sampled(&self, hash: u64) -> bool {
        (hash >> 32).is_multiple_of(u64::from(self.sample))
    }

    /// Register one file read from `reader` under `name`.
    pub fn add(&mut self, name: &str, mut reader: impl Read) -> std::io::Result<()> {
        if self.files.len() as u32 >= MAX_FILES {
            return Err(std::io::Error::other("too many files"));
        }
        let id = self.files.len() as u32;
        let mut chunker = Chunker::new(self.params);
        let mut sha = Sha256::new();
        let mut size = 0u64;
        let mut count = 0u32;
        let mut kept = Vec::new();
        let sample = self.sample;
        let mut at = 0u64;
        let mut on_chunk = |c: &[u8]| {
            count += 1;
            let h = xxh3_64(c);
            if (h >> 32).is_multiple_of(u64::from(sample)) && !low_information(c) {
                kept.push(ChunkEntry {
                    hash: h,
                    file: id,
                    len: c.len() as u32,
                    offset: at,
                });
            }
            at += c.len() as u64;
        };
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            sha.update(&buf[..n]);
            size += n as u64;
            chunker.push(&buf[..n], &mut on_chunk);
        }
        chunker.finish(&mut on_chunk);
        let name: String = name.chars().take(MAX_NAME).collect();
        self.files.push(KnownFile {
            name,
            size,
            chunks: count,
            sha256: sha.finalize().into(),
            canary: false,
        });
        self.chunks.extend(kept);
        self.chunks.sort_unstable();
        Ok(())
    }

    /// Register a file from disk.
    pub fn add_path(&mut self, path: &Path) -> Result<(), IndexError> {
        let io = |source| IndexError::Io {
            path: path.to_path_buf(),
            source,
        };
        let f = std::fs::File::open(path).map_err(io)?;
        self.add(&path.display().to_string(), std::io::BufReader::new(f))
            .map_err(io)
    }

    /// Entries with this fingerprint.
    pub fn lookup(&self, hash: u64) -> &[ChunkEntry] {
        let lo = self.chunks.partition_point(|c| c.hash < hash);
        let hi = lo + self.chunks[lo..].partition_point(|c| c.hash == hash);
        &self.chunks[lo..hi]
    }

    /// The serialised index.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + self.chunks.len() * ENTRY_BYTES as usize);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        for v in [
            self.params.min,
            self.params.avg,
            self.params.max,
            self.sample,
        ] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&(self.files.len() as u32).to_le_bytes());
        out.extend_from_slice(&(self.chunks.len() as u64).to_le_bytes());
        for f in &self.files {
            out.extend_from_slice(&(f.name.len() as u16).to_le_bytes());
            out.extend_from_slice(f.name.as_bytes());
            out.extend_from_slice(&f.size.to_le_bytes());
            out.extend_from_slice(&f.chunks.to_le_bytes());
            out.extend_from_slice(&f.sha256);
            out.push(u8::from(f.canary));
        }
        for c in &self.chunks {
            out.extend_from_slice(&c.hash.to_le_bytes());
            out.extend_from_slice(&c.file.to_le_bytes());
            out.extend_from_slice(&c.len.to_le_bytes());
            out.extend_from_slice(&c.offset.to_le_bytes());
        }
        let sum = xxh3_64(&out);
        out.extend_from_slice(&sum.to_le_bytes());
        out
    }

    /// Parse and check a serialised index (`path` only names errors).
    pub fn from_bytes(b: &[u8], path: &Path) -> Result<Self, IndexError> {
        let bad = |reason: &str| IndexError::Invalid {
            path: path.to_path_buf(),
            reason: reason.to_string(),
        };
        if b.len() < 44 || &b[..8] != MAGIC {
            return Err(bad("bad magic (not an index file)"));
        }
        let (body, sum) = b.split_at(b.len() - 8);
        let mut r = Reader { b: body, pos: 8 };
        let version = r.u32().ok_or_else(|| bad("truncated header"))?;
        if version != VERSION {
            return Err(IndexError::Version {
                path: path.to_path_buf(),
                found: version,
                supported: VERSION,
            });
        }
        let stored = u64::from_le_bytes(sum.try_into().map_err(|_| bad("truncated"))?);
        if xxh3_64(body) != stored {
            return Err(bad("checksum mismatch (damaged or truncated)"));
        }
        let h = (|| Some((r.u32()?, r.u32()?, r.u32()?, r.u32()?, r.u32()?, r.u64()?)))()
            .ok_or_else(|| bad("truncated header"))?;
        let (min, avg, max, sample, nfiles, nchunks) = h;
        let mut idx =
            Index::new(ChunkParams { min, avg, max }, sample).map_err(|e| bad(&e.to_string()))?;
        if nfiles > MAX_FILES {
            return Err(bad("too many files"));
        }
        for _ in 0..nfiles {
            let f = (|| {
                let n = r.u16()? as usize;
                let name = String::from_utf8_lossy(r.take(n)?).into_owned();
                let size = r.u64()?;
                let chunks = r.u32()?;
                let sha256: [u8; 32] = r.take(32)?.try_into().ok()?;
                let flags = r.take(1)?[0];
                Some((
                    KnownFile {
                        name,
                        size,
                        chunks,
                        sha256,
                        canary: flags & 1 == 1,
                    },
                    flags,
                ))
            })()
            .ok_or_else(|| bad("truncated file table"))?;
            let (f, flags) = f;
            if flags > 1 {
                return Err(bad("unknown file flags"));
            }
            idx.files.push(f);
        }
        let expect = nchunks
            .checked_mul(ENTRY_BYTES)
            .ok_or_else(|| bad("chunk count overflows"))?;
        if (body.len() - r.pos) as u64 != expect {
            return Err(bad("chunk table length does not match its count"));
        }
        idx.chunks.reserve(nchunks as usize);
        while let Some(e) = (|| {
            Some(ChunkEntry {
                hash: r.u64()?,
                file: r.u32()?,
                len: r.u32()?,
                offset: r.u64()?,
            })
        })() {
            let size = idx.files.get(e.file as usize).map(|f| f.size);
            let end = e.offset.checked_add(u64::from(e.len));
            if e.len > max || size.is_none() || end.is_none() || end > size {
                return Err(bad("chunk entry out of range"));
            }
            if idx.chunks.last().is_some_and(|l| l.hash > e.hash) {
                return Err(bad("chunk table not sorted"));
            }
            idx.chunks.push(e);
        }
        Ok(idx)
    }

    /// Write to `path`.
    pub fn write(&self, path: &Path) -> Result<(), IndexError> {
        let io = |source| IndexError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut f = std::fs::File::create(path).map_err(io)?;
        f.write_all(&self.to_bytes()).map_err(io)?;
        f.sync_all().map_err(io)
    }

    /// Read from `path`.
    pub fn read(path: &Path) -> Result<Self, IndexError> {
        let b = std::fs::read(path).map_err(|source| IndexError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Index::from_bytes(&b, path)
    }
}

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.b.get(self.pos..self.pos.checked_add(n)?)?;
        self.pos += n;
        Some(s)
    }
    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_le_bytes(self.take(2)?.try_into().ok()?))
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
}
