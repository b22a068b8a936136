//! `weightwatch token`: API tokens for sensors, analyzers and scripts.

use crate::config::Config;

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
        /// Bind the token to this sensor id (repeat for several): events it
        /// submits must carry one of them as `sensor_id`. Unbound tokens
        /// may submit for any sensor.
        #[arg(long = "sensor", value_name = "ID")]
        sensors: Vec<String>,
        /// The token stops working after this many days (default: never).
        #[arg(long, value_name = "DAYS")]
        expires_days: Option<u32>,
        /// The dashboard's database: a SQLite file (created and migrated when
        /// missing) or a `postgres://user@host:port/db` URL [default: `db` in
        /// `[dashboard]`, else weightwatch.db].
        #[arg(long, value_name = "PATH|URL")]
        db: Option<String>,
    },
    /// List tokens (label, scope, created; never the secret).
    List {
        /// The dashboard's database: a SQLite file (created and migrated when
        /// missing) or a `postgres://user@host:port/db` URL [default: `db` in
        /// `[dashboard]`, else weightwatch.db].
        #[arg(long, value_name = "PATH|URL")]
        db: Option<String>,
    },
    /// Revoke a token by its id.
    Revoke {
        /// Token id as shown by `token list`.
        id: i64,
        /// The dashboard's database: a SQLite file (created and migrated when
        /// missing) or a `postgres://user@host:port/db` URL [default: `db` in
        /// `[dashboard]`, else weightwatch.db].
        #[arg(long, value_name = "PATH|URL")]
        db: Option<String>,
    },
}

/// Run a token subcommand.
pub fn run(cmd: TokenCommand, config: Config) -> anyhow::Result<()> {
    match cmd {
        TokenCommand::Create {
            scope,
            name,
            sensors,
            expires_days,
            db,
        } => {
            let scope: dashboard::Scope = scope.parse().map_err(anyhow::Error::msg)?;
            let name = name.unwrap_or_else(|| format!("{scope} token"));
            let expires = expires_days.map(|d| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |t| t.as_micros() as i64)
                    + i64::from(d) * 86_400_000_000
            });
            let secret = dashboard::admin::create_token_expiring(
                config.dashboard.database(db.as_deref()),
                scope,
                &name,
                &sensors,
                expires,
            )?;
            if sensors.is_empty() {
                eprintln!("created {scope} token {name:?}; it is shown only this once:");
            } else {
                eprintln!(
                    "created {scope} token {name:?} for sensors {}; it is shown only this once:",
                    sensors.join(", ")
                );
            }
            println!("{secret}");
        }
        TokenCommand::List { db } => {
            println!(
                "{:>4}  {:<7}  {:<27}  {:<8}  name",
                "id", "scope", "created", "state"
            );
            for t in dashboard::admin::list_tokens(config.dashboard.database(db.as_deref()))? {
                let created = eve::Timestamp::from_unix_micros(t.created).to_string();
                let bound = match &t.sensors {
                    Some(s) => format!("  (sensors: {})", s.join(", ")),
                    None => String::new(),
                };
                println!(
                    "{:>4}  {:<7}  {:<27}  {:<8}  {}{bound}",
                    t.id,
                    t.scope.as_str(),
                    created,
                    if t.revoked.is_some() {
                        "revoked"
                    } else {
                        "live"
                    },
                    t.name
                );
            }
        }
        TokenCommand::Revoke { id, db } => {
            if !dashboard::admin::revoke_token(config.dashboard.database(db.as_deref()), id)? {
                anyhow::bail!("no live token with id {id}");
            }
            eprintln!("token {id} revoked");
        }
    }
    Ok(())
}
