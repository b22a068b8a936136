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
        /// Also enrol a TOTP second factor (RFC 6238: SHA-1, 6 digits,
        /// 30 s): prints an otpauth:// URI for an authenticator app and
        /// one-time recovery codes, shown only this once. Sign-in then
        /// needs a code. Re-running replaces both.
        #[arg(long)]
        totp: bool,
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
        UserCommand::Add { name, db, totp } => {
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
            let db = config.dashboard.database(db.as_deref());
            if totp {
                let e = dashboard::admin::add_user_totp(&db, &name, &password)?;
                eprintln!(
                    "user {name} can sign in with a code; add this to an authenticator app \
                     (shown only this once):"
                );
                println!("{}", e.uri);
                eprintln!("one-time recovery codes (keep them offline):");
                for c in &e.recovery_codes {
                    println!("{c}");
                }
            } else {
                dashboard::admin::add_user(&db, &name, &password)?;
                eprintln!("user {name} can sign in");
            }
        }
    }
    Ok(())
}
