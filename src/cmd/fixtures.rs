//! `weightwatch fixtures`: generate test and demo inputs.

use crate::config::Config;
use std::path::PathBuf;

/// `weightwatch fixtures …`
#[derive(clap::Subcommand, Debug)]
pub enum FixturesCommand {
    /// Regenerate the committed pcap fixtures byte for byte (or the large
    /// ones on demand).
    Pcaps {
        /// Output directory.
        #[arg(long, value_name = "DIR", default_value = "fixtures/pcaps")]
        out: PathBuf,
        /// Also write the large captures (not committed).
        #[arg(long)]
        large: bool,
    },
    /// Write the realistic benchmark capture (thousands of concurrent
    /// interleaved connections, mostly TLS; `realistic_<MB>m_s<SEED>.pcap`
    /// and its `.expect.json`) at any size and seed.
    Realistic {
        /// Output directory.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Approximate size of the capture, MB.
        #[arg(long, default_value_t = 300, value_name = "MB")]
        size_mb: u64,
        /// Seed of every choice in it.
        #[arg(long, default_value_t = 19)]
        seed: u64,
    },
    /// Write labelled synthetic API request logs plus labels.csv.
    Logs {
        /// Random seed.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Number of accounts.
        #[arg(long, default_value_t = 400)]
        accounts: usize,
        /// Days of traffic.
        #[arg(long, default_value_t = 3)]
        days: u32,
        /// Output directory.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Write requests.jsonl.gz instead of requests.jsonl.
        #[arg(long)]
        gzip: bool,
        /// Multiply every account's request rate (large benchmark sets).
        #[arg(long, default_value_t = 1.0, value_name = "X")]
        volume_scale: f64,
    },
    /// Rewrite the rows of the accounts labelled `distill` with evasion
    /// transforms (benign rows copied byte for byte; docs/log-generator.md).
    Evade {
        /// The request log (JSON Lines, plain, .gz or .zst).
        #[arg(long = "in", value_name = "LOGS")]
        input: PathBuf,
        /// Its labels.csv.
        #[arg(long, value_name = "CSV")]
        labels: PathBuf,
        /// Transforms, comma-separated: multi_turn, paraphrase, filler,
        /// params, endpoint, clients, pacing, mix; or host alone; and what
        /// the logs keep of attack rows: redact (prompt as SHA-256 only),
        /// unlogged (no prompt, no hash).
        #[arg(long, value_name = "NAME[,NAME]")]
        transform: String,
        /// Share of attack requests each row transform touches; for `mix`
        /// and `host`, the harvest's share of the account's traffic.
        #[arg(long, default_value_t = 0.5, value_name = "F")]
        share: f64,
        /// Seed of every choice.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// `pacing`: most requests per account and UTC day.
        #[arg(long, default_value_t = 30, value_name = "N")]
        per_day: u32,
        /// `host`: harvest rows take the host's own user agents and
        /// addresses.
        #[arg(long)]
        adopt_clients: bool,
        /// Output directory (the log under its input name, labels.csv).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
}

/// Run a fixtures subcommand.
pub fn run(cmd: FixturesCommand, _config: Config) -> anyhow::Result<()> {
    match cmd {
        FixturesCommand::Pcaps { out, large } => pcaps(&out, large),
        FixturesCommand::Realistic { out, size_mb, seed } => {
            std::fs::create_dir_all(&out)?;
            let spec = fixtures::realistic::Spec {
                seed,
                bytes: size_mb * 1_000_000,
            };
            let path = fixtures::realistic::write_files(&spec, &out)
                .map_err(|e| anyhow::anyhow!("writing into {}: {e}", out.display()))?;
            println!("{}", path.display());
            Ok(())
        }
        FixturesCommand::Logs {
            seed,
            accounts,
            days,
            out,
            gzip,
            volume_scale,
        } => logs(
            fixtures::logs::LogSpec {
                seed,
                accounts,
                days,
                gzip,
                volume_scale,
                ..fixtures::logs::LogSpec::default()
            },
            &out,
        ),
        FixturesCommand::Evade {
            input,
            labels,
            transform,
            share,
            seed,
            per_day,
            adopt_clients,
            out,
        } => {
            let spec = fixtures::logs::evade::EvadeSpec {
                transforms: fixtures::logs::evade::Transform::parse_list(&transform)?,
                input,
                labels,
                share,
                seed,
                per_day,
                adopt_clients,
                out_dir: out,
            };
            let s = fixtures::logs::evade::evade(&spec)?;
            println!("{}", s.requests.display());
            println!("{}", s.labels.display());
            eprintln!(
                "{} rows in, {} out, {} attack rows rewritten, {} accounts added",
                s.rows_in, s.rows_out, s.rows_changed, s.accounts_added
            );
            if let (Some(lo), Some(hi)) = (s.hosted_shares.first(), s.hosted_shares.last()) {
                eprintln!(
                    "{} attack accounts hosted, harvest share of the host {lo:.3}..{hi:.3} (median {:.3})",
                    s.hosted_shares.len(),
                    s.hosted_shares[s.hosted_shares.len() / 2]
                );
            }
            Ok(())
        }
    }
}

/// `weightwatch fixtures pcaps`: write every catalog capture and its
/// `.expect.json` sidecar into `out` (the large ones only with `--large`).
fn pcaps(out: &std::path::Path, large: bool) -> anyhow::Result<()> {
    let written = fixtures::catalog::write_all(out, large)
        .map_err(|e| anyhow::anyhow!("writing fixtures into {}: {e}", out.display()))?;
    for p in &written {
        println!("{}", p.display());
    }
    eprintln!("{} captures written to {}", written.len(), out.display());
    Ok(())
}

/// `weightwatch fixtures logs`: labelled synthetic API request logs
/// (`requests.jsonl` + `labels.csv`) covering every benign and attack style.
fn logs(spec: fixtures::logs::LogSpec, out: &std::path::Path) -> anyhow::Result<()> {
    let summary = fixtures::logs::generate(&spec, out)
        .map_err(|e| anyhow::anyhow!("writing logs into {}: {e}", out.display()))?;
    println!("{}", summary.requests.display());
    println!("{}", summary.labels.display());
    eprintln!("{} rows, {} accounts:", summary.rows, spec.accounts);
    for (scenario, n) in &summary.accounts {
        eprintln!("  {:<24} {n}", scenario.name());
    }
    Ok(())
}
