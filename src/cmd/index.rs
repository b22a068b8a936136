//! `weightwatch index`: the known-weights index.

use crate::config::Config;
use anyhow::Context;
use capture::detect::known::{ChunkParams, Index};
use std::path::{Path, PathBuf};

/// `weightwatch index …`
#[derive(clap::Subcommand, Debug)]
pub enum IndexCommand {
    /// Cut weight files into content-defined chunks and store compact chunk
    /// fingerprints for `capture --index`.
    Build {
        /// Weight files (or directories of them) to register.
        #[arg(required_unless_present = "canary", value_name = "FILE")]
        files: Vec<PathBuf>,
        /// Where to write the index.
        #[arg(long, short = 'o', value_name = "FILE")]
        out: PathBuf,
        /// Keep one chunk fingerprint in N (smaller index, coarser coverage;
        /// see docs/detectors.md for index size per TB).
        #[arg(long, value_name = "N", default_value_t = 1)]
        sample: u32,
        /// Average chunk length in bytes (a power of two, 256 to 4 MiB;
        /// chunks are a quarter to four times it). Smaller chunks cost a
        /// proportionally larger index and find a file sent in small pieces
        /// (requests of a few chunks each); see docs/detectors.md.
        #[arg(long, value_name = "BYTES", default_value_t = ChunkParams::default().avg)]
        avg_chunk: u32,
        /// Register this file as a canary (from `weightwatch canary
        /// --write`): its alerts carry `canary: true`, so a scheduled
        /// exfiltration test is told from a leak. Repeat for several.
        #[arg(long, value_name = "FILE")]
        canary: Vec<PathBuf>,
    },
    /// Print what an index holds: files, sizes, chunk counts.
    Show {
        /// The index file.
        #[arg(value_name = "FILE")]
        index: PathBuf,
    },
}

/// Files under `p` (recursively, sorted), or `p` itself.
fn expand(p: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    let meta = std::fs::metadata(p).with_context(|| format!("reading {}", p.display()))?;
    if meta.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(p)
            .with_context(|| format!("listing {}", p.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        entries.sort();
        for e in entries {
            expand(&e, out)?;
        }
    } else if meta.is_file() {
        out.push(p.to_path_buf());
    }
    Ok(())
}

/// Run an index subcommand.
pub fn run(cmd: IndexCommand, _config: Config) -> anyhow::Result<()> {
    match cmd {
        IndexCommand::Build {
            files,
            out,
            sample,
            avg_chunk,
            canary,
        } => {
            let mut paths = Vec::new();
            for f in &files {
                expand(f, &mut paths)?;
            }
            anyhow::ensure!(!paths.is_empty() || !canary.is_empty(), "no files to index");
            let params = ChunkParams {
                min: avg_chunk / 4,
                avg: avg_chunk,
                max: avg_chunk.saturating_mul(4),
            };
            let mut index = Index::new(params, sample)?;
            for p in &paths {
                index.add_path(p)?;
                let f = index.files.last().context("file just added")?;
                eprintln!(
                    "indexed {} ({} bytes, {} chunks)",
                    p.display(),
                    f.size,
                    f.chunks
                );
            }
            for p in &canary {
                index.add_path(p)?;
                let f = index.files.last_mut().context("file just added")?;
                f.canary = true;
                eprintln!("indexed {} as a canary ({} bytes)", p.display(), f.size);
            }
            index.write(&out)?;
            let total: u64 = index.files.iter().map(|f| f.size).sum();
            println!(
                "{}: {} files, {} bytes of weights, {} chunk fingerprints (sample 1/{}), {} bytes",
                out.display(),
                index.files.len(),
                total,
                index.chunks.len(),
                index.sample,
                index.to_bytes().len()
            );
            Ok(())
        }
        IndexCommand::Show { index } => {
            let idx = Index::read(&index)?;
            println!(
                "{}: chunks min/avg/max {}/{}/{} bytes, sample 1/{}, {} fingerprints",
                index.display(),
                idx.params.min,
                idx.params.avg,
                idx.params.max,
                idx.sample,
                idx.chunks.len()
            );
            for (i, f) in idx.files.iter().enumerate() {
                let kept = idx.chunks.iter().filter(|c| c.file == i as u32).count();
                let sha: String = f.sha256.iter().map(|b| format!("{b:02x}")).collect();
                println!(
                    "{:>14} bytes  {:>7} chunks  {:>7} kept  {}  {}{}",
                    f.size,
                    f.chunks,
                    kept,
                    sha,
                    f.name,
                    if f.canary { "  (canary)" } else { "" }
                );
            }
            Ok(())
        }
    }
}
