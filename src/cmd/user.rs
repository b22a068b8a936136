//! `weightwatch user`: analyst logins.

use crate::config::Config;

/// `weightwatch user …`
#[derive(clap::Subcommand, Debug)]
pub enum UserCommand {
    /// Add an analyst (or reset their password); the password is read from
    /// the terminal or WEIGHTWATCH_PASSWORD, and stored as an argon2 hash.
    Add {
        /// Login name.
        name: String,
        /// The dashboard's database: a SQLite file (created and migrated when
        /// missing) or a `postgres://user@host:port/db` URL [default: `db` in
        /// `[dashboard]`, else weightwatch.db].
        #[arg(long, value_name = "PATH|URL")]
        db: Option<String>,
    },
}

/// Run a user subcommand.
pub fn run(cmd: UserCommand, config: Config) -> anyhow::Result<()> {
    match cmd {
        UserCommand::Add { name, db } => {
            let password = match std::env::var("WEIGHTWATCH_PASSWORD") {
                Ok(p) => p,
                Err(_) => {
                    let p = dashboard::admin::prompt_password(&format!("password for {name}: "))?;
                    let again = dashboard::admin::prompt_password("again: ")?;
                    if p != again {
                        anyhow::bail!("the passwords differ");
                    }
                    p
                }
            };
            dashboard::admin::add_user(config.dashboard.database(db.as_deref()), &name, &password)?;
            eprintln!("user {name} can sign in");
        }
    }
    Ok(())
}
