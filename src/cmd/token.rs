//! `weightwatch token`: API tokens for sensors, analyzers and scripts.

use crate::config::Config;
use std::path::PathBuf;

/// `weightwatch token …`
#[derive(clap::Subcommand, Debug)]
pub enum TokenCommand {
    /// Create a token; it is printed once and only its hash is stored.
    Create {
        /// What the token may do: ingest, read, triage or admin.
        #[arg(long, value_name = "SCOPE")]
        scope: String,
        /// A label to recognise the token by.
        #[arg(long, value_name = "TEXT")]
        name: Option<String>,
        /// The dashboard's database.
        #[arg(long, value_name = "PATH", default_value = "weightwatch.db")]
        db: PathBuf,
    },
    /// List tokens (label, scope, created; never the secret).
    List {
        /// The dashboard's database.
        #[arg(long, value_name = "PATH", default_value = "weightwatch.db")]
        db: PathBuf,
    },
    /// Revoke a token by its id.
    Revoke {
        /// Token id as shown by `token list`.
        id: i64,
        /// The dashboard's database.
        #[arg(long, value_name = "PATH", default_value = "weightwatch.db")]
        db: PathBuf,
    },
}

/// Run a token subcommand.
pub fn run(_cmd: TokenCommand, _config: Config) -> anyhow::Result<()> {
    super::not_built("token", 6)
}
