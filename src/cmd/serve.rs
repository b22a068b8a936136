//! `weightwatch serve`: the dashboard.

use crate::config::Config;
use anyhow::Context;
use std::path::PathBuf;

/// Arguments of `weightwatch serve`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The dashboard's database: a SQLite file (created and migrated when
    /// missing) or a `postgres://user@host:port/db` URL [default: `db` in
    /// `[dashboard]`, else weightwatch.db].
    #[arg(long, value_name = "PATH|URL")]
    pub db: Option<String>,
    /// Address to listen on.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// Serve HTTPS with this certificate chain (PEM, leaf first); reloaded
    /// with the key on SIGHUP. The session cookie is then `Secure`.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Every analyst must give a TOTP code at sign-in (`[dashboard]
    /// require_mfa`); enrol them with `weightwatch user add NAME --totp`.
    #[arg(long)]
    pub require_mfa: bool,
}

/// Run the dashboard server until Ctrl-C or SIGTERM.
pub fn run(args: Args, mut config: Config) -> anyhow::Result<()> {
    config.dashboard.require_mfa |= args.require_mfa;
    let db = config.dashboard.database(args.db.as_deref());
    let opts = dashboard::ServeOptions {
        db: db.clone(),
        listen: args.listen.clone(),
        actions: config.actions.clone(),
        action_spool_dir: config.sinks.spool_dir.clone(),
        tls: args.tls_cert.clone().zip(args.tls_key.clone()),
    };
    dashboard::serve(&config.dashboard, &opts)
        .with_context(|| format!("serving {db} on {}", args.listen))
}
