//! `weightwatch inspect`: a model-aware `file(1)`. Runs the sensor's format
//! parsers and tensor classifier (`capture::detect::inspect`) on files and
//! prints one JSON object per file (JSON Lines), or a table on a terminal.

use crate::config::Config;
use capture::detect::inspect::{Report, inspect_file};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;

/// `weightwatch inspect FILE…`
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Files to inspect.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// One JSON object per file, even on a terminal (the default when
    /// standard output is not a terminal).
    #[arg(long)]
    json: bool,
    /// Bytes of each file the format parsers see (default: `[detect]
    /// format_scan_bytes`, what the sensor sees of an object).
    #[arg(long, value_name = "BYTES")]
    window: Option<u64>,
}

/// Inspect each file; a file that cannot be read is reported on stderr and
/// makes the exit status non-zero after the others are printed.
pub fn run(args: Args, config: Config) -> anyhow::Result<()> {
    let window = args.window.unwrap_or(config.detect.format_scan_bytes);
    let json = args.json || !std::io::stdout().is_terminal();
    let mut out = std::io::stdout().lock();
    let mut failed = 0usize;
    let mut rows = Vec::new();
    for f in &args.files {
        match inspect_file(f, window, &config.detect) {
            Ok(r) if json => writeln!(out, "{}", serde_json::to_string(&r)?)?,
            Ok(r) => rows.push(r),
            Err(e) => {
                eprintln!("weightwatch inspect: {e}");
                failed += 1;
            }
        }
    }
    if !json {
        write_table(&mut out, &rows)?;
    }
    out.flush()?;
    if failed > 0 {
        anyhow::bail!("{failed} of {} files could not be read", args.files.len());
    }
    Ok(())
}

fn write_table(out: &mut impl Write, rows: &[Report]) -> std::io::Result<()> {
    // A zip's inspected members follow it, indented.
    let cells: Vec<[String; 7]> = rows
        .iter()
        .flat_map(|r| {
            std::iter::once((r, String::new())).chain(r.entries.iter().map(|e| (e, "  ".into())))
        })
        .map(|(r, indent)| {
            let mut format = r.format.clone().unwrap_or_else(|| "-".into());
            if let Some(v) = &r.variant {
                format = format!("{format} ({v})");
            }
            if let Some(m) = &r.member {
                format = format!("{format} > {}", m.format.as_deref().unwrap_or("-"));
            }
            let dtypes: Vec<&str> = r.dtypes.iter().map(String::as_str).collect();
            [
                format!("{indent}{}", r.file),
                format,
                if dtypes.is_empty() {
                    "-".into()
                } else {
                    dtypes.join("/")
                },
                r.tensors.to_string(),
                r.params.to_string(),
                r.size.to_string(),
                r.model_name.clone().unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    let head = [
        "FILE", "FORMAT", "DTYPES", "TENSORS", "PARAMS", "SIZE", "MODEL",
    ];
    let mut width = head.map(str::len);
    for c in &cells {
        for (w, s) in width.iter_mut().zip(c) {
            *w = (*w).max(s.chars().count());
        }
    }
    for row in std::iter::once(head.map(String::from)).chain(cells) {
        let line: Vec<String> = row
            .iter()
            .zip(width)
            .map(|(s, w)| format!("{s:w$}"))
            .collect();
        writeln!(out, "{}", line.join("  ").trim_end())?;
    }
    Ok(())
}
