//! `weightwatch user`: analyst logins.

use crate::config::Config;
use std::path::PathBuf;

/// `weightwatch user …`
#[derive(clap::Subcommand, Debug)]
pub enum UserCommand {
    /// Add an analyst (or reset their password); the password is read from
    /// the terminal or WEIGHTWATCH_PASSWORD, and stored as an argon2 hash.
    Add {
        /// Login name.
        name: String,
        /// The dashboard's database.
        #[arg(long, value_name = "PATH", default_value = "weightwatch.db")]
        db: PathBuf,
    },
}

/// Run a user subcommand.
pub fn run(_cmd: UserCommand, _config: Config) -> anyhow::Result<()> {
    super::not_built("user", 6)
}
