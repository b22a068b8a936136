//! `weightwatch labels`: analysts' verdicts as labels for the analyzer.

use crate::config::Config;
use anyhow::Context;
use std::path::PathBuf;

/// `weightwatch labels …`
#[derive(clap::Subcommand, Debug)]
pub enum LabelsCommand {
    /// Export the dashboard's triage verdicts on distillation alerts as a
    /// labels CSV (`account_id,label,scenario`, the format of `analyze
    /// --labels`): resolved alerts label their accounts `distill`
    /// (analyst_tp), false positives `benign` (analyst_fp); the latest
    /// triage of an account wins, untriaged alerts are left out.
    Export {
        /// The dashboard's database: a SQLite file or a `postgres://` URL.
        #[arg(long, value_name = "PATH|URL")]
        db: String,
        /// Write the CSV here instead of standard output.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
}

/// Run a labels subcommand.
pub fn run(cmd: LabelsCommand, _config: Config) -> anyhow::Result<()> {
    match cmd {
        LabelsCommand::Export { db, out } => {
            let csv = dashboard::admin::export_labels(dashboard::store::Database::parse(&db))?;
            let rows = csv.lines().count().saturating_sub(1);
            match out {
                Some(path) => {
                    std::fs::write(&path, &csv)
                        .with_context(|| format!("writing {}", path.display()))?;
                    eprintln!("wrote {rows} labels to {}", path.display());
                }
                None => print!("{csv}"),
            }
        }
    }
    Ok(())
}
