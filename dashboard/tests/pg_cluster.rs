//! A real PostgreSQL for the tests: `initdb` into a temporary directory and
//! `pg_ctl start` on a free loopback port. One cluster is shared by every
//! test of a test-binary run (each test gets a fresh database: `CREATE
//! DATABASE` is fast); a test that restarts PostgreSQL starts its own.
//!
//! A cluster is stopped when dropped, and a watchdog process stops it when
//! the test binary exits without dropping it (the shared one lives in a
//! static, which is never dropped; a failed test may also abort).

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A running PostgreSQL cluster.
pub struct Cluster {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    /// Commands run as this user (PostgreSQL refuses to run as root).
    user: Option<&'static str>,
}

static SHARED: OnceLock<Result<Cluster, String>> = OnceLock::new();
static NEXT_DB: AtomicUsize = AtomicUsize::new(0);

/// The shared cluster, started on first use.
pub fn shared() -> &'static Cluster {
    match SHARED.get_or_init(Cluster::start) {
        Ok(c) => c,
        Err(e) => panic!(
            "PostgreSQL cannot start for the tests: {e}\n\
             (install it with `scripts/setup.sh --tests`; the postgres::… tests need it)"
        ),
    }
}

/// The URL of a new, empty database on the shared cluster.
pub fn fresh_database() -> String {
    shared().create_database()
}

impl Cluster {
    /// `initdb` and start a cluster of its own.
    pub fn start() -> Result<Cluster, String> {
        Cluster::start_with(|_| Ok(()))
    }

    /// A cluster of its own that accepts TCP connections over TLS only
    /// (`hostssl`; plain ones are rejected), with this certificate chain
    /// and key (PEM).
    pub fn start_tls(cert: &str, key: &str) -> Result<Cluster, String> {
        Cluster::start_with(|c| {
            let data = c.data();
            let write = |name: &str, text: &str| {
                std::fs::write(data.join(name), text).map_err(|e| format!("{name}: {e}"))
            };
            write("server.crt", cert)?;
            write("server.key", key)?;
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(
                data.join("server.key"),
                std::fs::Permissions::from_mode(0o600),
            )
            .map_err(|e| e.to_string())?;
            if let Some(u) = c.user {
                run(Command::new("chown")
                    .arg(u)
                    .arg(data.join("server.crt"))
                    .arg(data.join("server.key")))?;
            }
            let conf =
                std::fs::read_to_string(data.join("postgresql.conf")).map_err(|e| e.to_string())?;
            write("postgresql.conf", &format!("{conf}\nssl = on\n"))?;
            write(
                "pg_hba.conf",
                "local all all trust\n\
                 hostssl all all 127.0.0.1/32 trust\n\
                 hostnossl all all 127.0.0.1/32 reject\n",
            )
        })
    }

    /// `initdb`, then `setup` on the stopped cluster, then start it.
    fn start_with(setup: impl FnOnce(&Cluster) -> Result<(), String>) -> Result<Cluster, String> {
        let bin = bin_dir()?;
        let dir = tempfile::Builder::new()
            .prefix("ww-pg-")
            .tempdir()
            .map_err(|e| format!("temporary directory: {e}"))?
            .keep();
        let user = running_as_root().then_some("postgres");
        if let Some(u) = user {
            run(Command::new("chown").args(["-R", u]).arg(&dir))?;
        }
        let c = Cluster {
            bin,
            dir,
            port: free_port()?,
            user,
        };
        c.watchdog()?;
        run(c
            .pg("initdb")
            .args([
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
            ])
            .arg("--no-sync")
            .arg("-D")
            .arg(c.data()))?;
        setup(&c)?;
        c.ctl_start()?;
        Ok(c)
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// A PostgreSQL program, run as the cluster's user.
    fn pg(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        match self.user {
            Some(u) => {
                let mut c = Command::new("runuser");
                c.args(["-u", u, "--"]).arg(path);
                c
            }
            None => Command::new(path),
        }
    }

    fn ctl_start(&self) -> Result<(), String> {
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=400",
            self.port,
            self.dir.display()
        );
        run(self
            .pg("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .arg("-l")
            .arg(self.dir.join("log"))
            .args(["-w", "-t", "120", "-o", &opts, "start"]))
    }

    /// Stop PostgreSQL as a crash would (`immediate`: no checkpoint, the
    /// WAL is replayed at the next start) and start it again.
    pub fn crash_and_restart(&self) {
        run(self
            .pg("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(["-w", "-m", "immediate", "stop"]))
        .unwrap();
        self.ctl_start().unwrap();
    }

    /// A PostgreSQL program of this cluster's version.
    pub fn bin_path(&self, program: &str) -> PathBuf {
        self.bin.join(program)
    }

    /// The port it listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL of database `db`.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// A new, empty database.
    pub fn create_database(&self) -> String {
        let name = format!(
            "t{}_{}",
            std::process::id(),
            NEXT_DB.fetch_add(1, Ordering::Relaxed)
        );
        self.psql("postgres", &format!("CREATE DATABASE {name}"))
            .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
        self.url(&name)
    }

    /// Run `sql` in database `db` with psql; its output, or its error text.
    pub fn psql(&self, db: &str, sql: &str) -> Result<String, String> {
        let out = Command::new(self.bin.join("psql"))
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
            .args(["-h", "127.0.0.1", "-U", "postgres", "-p"])
            .arg(self.port.to_string())
            .args(["-d", db, "-c", sql])
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// Stops the cluster and removes its directory once this process has
    /// exited, however it exits.
    fn watchdog(&self) -> Result<(), String> {
        let ctl = self.bin.join("pg_ctl");
        let as_user = match self.user {
            Some(u) => format!("runuser -u {u} -- "),
            None => String::new(),
        };
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 1; done; \
             {as_user}{ctl} -D {data} -m immediate stop >/dev/null 2>&1; rm -rf {dir}",
            pid = std::process::id(),
            ctl = ctl.display(),
            data = self.data().display(),
            dir = self.dir.display(),
        );
        Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map(|_| ())
            .map_err(|e| format!("watchdog: {e}"))
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self
            .pg("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(["-w", "-m", "immediate", "stop"])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Debian's `/usr/lib/postgresql/<version>/bin`, the newest version.
fn bin_dir() -> Result<PathBuf, String> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .map_err(|e| format!("/usr/lib/postgresql: {e}"))?
        .flatten()
        .filter_map(|e| {
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    found.sort();
    found
        .pop()
        .map(|(_, b)| b)
        .ok_or_else(|| "no /usr/lib/postgresql/*/bin/initdb".into())
}

fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

fn free_port() -> Result<u16, String> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(l.local_addr().map_err(|e| e.to_string())?.port())
}

fn run(cmd: &mut Command) -> Result<(), String> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{cmd:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}
