//! `weightwatch canary`: an exfiltration test. Sends a synthetic
//! weights-shaped file (safetensors whose name and metadata carry a fresh
//! canary id) through the monitored path — an HTTP PUT to a URL, or the
//! bare bytes over a raw TCP connection — then polls the dashboard until
//! the sensor's alert for it is there or the deadline passes. The result
//! is a `stats` event (section `canary`) on standard output or `--eve`, and
//! the exit status.

use anyhow::Context;
use eve::sink::EventSink;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Arguments of `weightwatch canary`.
#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("path").required(true).args(["put", "tcp", "write"])))]
pub struct Args {
    /// Upload the canary with an HTTP PUT to this base URL (the file name
    /// `weightwatch-canary-<id>.safetensors` is appended).
    #[arg(long, value_name = "URL")]
    pub put: Option<String>,
    /// Send the canary's bytes over a raw TCP connection to this address
    /// (`host:port`); the alert is then found by destination and the
    /// canary id the file's metadata carries.
    #[arg(long, value_name = "HOST:PORT")]
    pub tcp: Option<String>,
    /// Write the canary file of `--size` bytes here and exit, to register
    /// it with `weightwatch index build … --canary FILE`: every canary of
    /// that size carries the same tensor bytes (only its id in the header
    /// differs), so the sensor names it as a registered canary.
    #[arg(long, value_name = "FILE")]
    pub write: Option<PathBuf>,
    /// The dashboard to look for the alert on (needed with --put and --tcp).
    #[arg(long, value_name = "URL")]
    pub dashboard: Option<String>,
    /// A token with the read scope for the dashboard.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "WEIGHTWATCH_TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
    /// Trust only this CA certificate (PEM) for an https:// dashboard.
    #[arg(long, value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
    /// Seconds the alert may take to reach the dashboard.
    #[arg(long, value_name = "SECS", default_value_t = 120)]
    pub deadline_secs: u64,
    /// Size of the synthetic file.
    #[arg(long, value_name = "BYTES", default_value_t = 1 << 20)]
    pub size: u64,
    /// Where the result event goes: a file (appended) or `-`.
    #[arg(long, value_name = "PATH|-", default_value = "-")]
    pub eve: String,
}

/// Run one exfiltration test.
pub fn run(args: Args, config: crate::config::Config) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.size >= 1024 && args.size <= 1 << 30,
        "--size must be between 1 KiB and 1 GiB"
    );
    if let Some(path) = &args.write {
        // The id's place holds zeros: the same length as a real one.
        let name = format!("weightwatch-canary-{}", "0".repeat(32));
        std::fs::write(path, safetensors(&name, args.size))
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!(
            "canary of {} bytes written to {}: register it with `weightwatch index build … --canary {}`",
            args.size,
            path.display(),
            path.display()
        );
        return Ok(());
    }
    let dashboard = args
        .dashboard
        .as_deref()
        .context("--dashboard URL is needed to look for the alert")?
        .trim_end_matches('/');
    let token = args
        .token
        .as_deref()
        .context("a read token is needed (--token or WEIGHTWATCH_TOKEN)")?;
    let name = format!("weightwatch-canary-{}", uuid::Uuid::new_v4().simple());
    let payload = safetensors(&name, args.size);
    let mut agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(60)))
        .http_status_as_error(false);
    if let Some(ca) = &args.ca_cert {
        agent = agent.tls_config(eve::sink::http::private_ca(ca)?);
    }
    let agent: ureq::Agent = agent.build().into();
    let started = Instant::now();
    let began = eve::Timestamp::now().unix_micros() / 1_000_000 - 1;
    let (search, put_status, target) = match (&args.put, &args.tcp) {
        (Some(put), _) => {
            let url = format!("{}/{name}.safetensors", put.trim_end_matches('/'));
            let sent = agent
                .put(&url)
                .header("Content-Type", "application/octet-stream")
                .send(&payload[..]);
            // The upload only has to cross the wire; the receiver may refuse it.
            let status = match sent {
                Ok(r) => r.status().as_u16(),
                Err(e) => return Err(e).with_context(|| format!("uploading the canary to {url}")),
            };
            let search = format!("{dashboard}/api/v1/alerts?q={name}&limit=10");
            (search, status, url)
        }
        (None, Some(tcp)) => {
            let to = send_tcp(tcp, &payload)?;
            // By destination since the upload began; `alert_for` then
            // checks the alert names the canary.
            let search = format!(
                "{dashboard}/api/v1/alerts?dest={}&from={began}&limit=100",
                to.ip()
            );
            (search, 0, format!("tcp://{to}"))
        }
        (None, None) => anyhow::bail!("give --put URL or --tcp HOST:PORT"),
    };
    let url = target;
    let deadline = started + Duration::from_secs(args.deadline_secs);
    let found = loop {
        match alert_for(&agent, &search, token, &name) {
            Ok(Some(a)) => break Some(a),
            Ok(None) => {}
            Err(e) => tracing::warn!("dashboard: {e:#}"),
        }
        if Instant::now() >= deadline {
            break None;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    let secs = started.elapsed().as_secs_f64();
    let mut section = std::collections::BTreeMap::new();
    section.insert("ok".to_string(), u64::from(found.is_some()));
    section.insert("bytes".to_string(), args.size);
    section.insert("put_status".to_string(), u64::from(put_status));
    section.insert("millis_to_alert".to_string(), (secs * 1000.0) as u64);
    section.insert("deadline_secs".to_string(), args.deadline_secs);
    let mut stats = eve::Stats {
        version: Some(env!("CARGO_PKG_VERSION").to_string()),
        ..eve::Stats::default()
    };
    stats.sections.insert("canary".to_string(), section);
    let event = eve::Event::new(
        eve::Timestamp::now(),
        eve::EventKind::Stats(eve::StatsEvent { stats }),
    )
    .sensor(config.sensor_id());
    let mut sink = eve::sink::eve_file::EveFileSink::open(&args.eve, None, 0)?;
    sink.emit(&event)?;
    sink.close()?;
    match found {
        Some(category) => {
            eprintln!("canary {name}: {category} alert on the dashboard after {secs:.1} s");
            Ok(())
        }
        None => anyhow::bail!(
            "canary {name}: no alert on the dashboard within {} s (uploaded to {url}, HTTP {put_status})",
            args.deadline_secs
        ),
    }
}

/// Send `payload` over a new TCP connection to `addr` (`host:port`), then
/// close it; returns the address connected to.
fn send_tcp(addr: &str, payload: &[u8]) -> anyhow::Result<SocketAddr> {
    let to = addr
        .to_socket_addrs()
        .with_context(|| format!("resolving {addr}"))?
        .next()
        .with_context(|| format!("{addr} resolves to no address"))?;
    let mut s = TcpStream::connect_timeout(&to, Duration::from_secs(30))
        .with_context(|| format!("connecting to {to}"))?;
    s.set_write_timeout(Some(Duration::from_secs(60)))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(payload)
        .with_context(|| format!("sending the canary to {to}"))?;
    s.shutdown(std::net::Shutdown::Write)?;
    // Wait (briefly) for the receiver to close its side, so the connection
    // ends as an upload does; what it answers does not matter.
    let _ = s.read(&mut [0u8; 512]);
    Ok(to)
}

/// The category of the first weights alert the dashboard finds for the
/// search, if any, that names the canary (`name` anywhere in it: the URL,
/// or the model name of the safetensors metadata).
fn alert_for(
    agent: &ureq::Agent,
    url: &str,
    token: &str,
    name: &str,
) -> anyhow::Result<Option<String>> {
    let mut r = agent
        .get(url)
        .header("Authorization", &format!("Bearer {token}"))
        .call()?;
    anyhow::ensure!(r.status() == 200, "HTTP {}", r.status());
    let v: serde_json::Value = serde_json::from_str(&r.body_mut().read_to_string()?)?;
    Ok(v["alerts"].as_array().and_then(|a| {
        a.iter()
            .filter(|x| x.to_string().contains(name))
            .filter_map(|x| x["alert"]["category"].as_str())
            .find(|c| matches!(*c, "weights_format" | "weights_known" | "weights_tensor"))
            .map(String::from)
    }))
}

/// A safetensors file of `size` bytes: one F32 tensor of pseudo-random
/// values, the canary's name in `__metadata__`.
fn safetensors(name: &str, size: u64) -> Vec<u8> {
    let header_room = 256u64;
    let n = (size.saturating_sub(header_room) / 4).max(16);
    let mut header = format!(
        "{{\"__metadata__\":{{\"model\":\"{name}\"}},\"canary.weight\":{{\"dtype\":\"F32\",\"shape\":[{n}],\"data_offsets\":[0,{}]}}}}",
        n * 4
    );
    while header.len() % 8 != 0 {
        header.push(' ');
    }
    let mut out = Vec::with_capacity(8 + header.len() + (n * 4) as usize);
    out.extend_from_slice(&(header.len() as u64).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    // Small weights-like values from a xorshift generator (no need for a
    // random crate: the values only have to look like a layer's).
    let mut x: u32 = 0x9e37_79b9;
    for _ in 0..n {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        let v = (x as f32 / u32::MAX as f32 - 0.5) * 0.1;
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}
