//! `weightwatch demo` end to end: the real binary replays the bundled
//! captures (re-timed into the API logs' window) and logs into a fresh
//! database on a free port and prints a guided tour; the API then shows
//! every alert kind the demo promises, each with its evidence, the
//! analyzer's alerts stamped at distinct moments inside the log window,
//! and a headless Chromium walks the default overview (both stories on
//! it), an alert, an analyzer alert with its series drawn, and an account
//! page (screenshots in `<target>/screenshots/demo-*.png`, copied to
//! `docs/img/` for the user guide).

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The running demo; killed on drop.
struct Demo {
    child: Child,
    url: String,
    password: String,
    /// What the demo printed before its login line (the tour among it).
    printed: String,
    db: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_demo() -> Demo {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("demo.db");
    let mut child = Command::new(env!("CARGO_BIN_EXE_weightwatch"))
        .args(["demo", "--listen", "127.0.0.1:0", "--db"])
        .arg(&db)
        .arg("--work-dir")
        .arg(dir.path().join("work"))
        .env("WEIGHTWATCH_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start weightwatch demo");
    let stdout = child.stdout.take().unwrap();
    let (mut url, mut password) = (None, None);
    let mut printed = String::new();
    let mut lines = BufReader::new(stdout).lines();
    for line in lines.by_ref() {
        let line = line.unwrap();
        println!("demo: {line}");
        printed.push_str(&line);
        printed.push('\n');
        if let Some(u) = line.trim().strip_prefix("dashboard:") {
            url = Some(u.trim().trim_end_matches('/').to_string());
        }
        if let Some(rest) = line.trim().strip_prefix("sign in as:") {
            password = rest.split_whitespace().nth(2).map(String::from);
            break;
        }
    }
    // Keep reading: a closed pipe would make the demo's next write fail.
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            println!("demo: {line}");
        }
    });
    Demo {
        child,
        url: url.expect("the demo prints its URL"),
        password: password.expect("the demo prints a login"),
        printed,
        db,
        _dir: dir,
    }
}

fn get(url: &str, token: &str) -> Value {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    agent
        .get(url)
        .header("Authorization", &format!("Bearer {token}"))
        .call()
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
        .body_mut()
        .read_json()
        .unwrap()
}

fn alerts(demo: &Demo, token: &str, category: &str) -> Vec<Value> {
    let v = get(
        &format!("{}/api/v1/alerts?category={category}&limit=1000", demo.url),
        token,
    );
    v["alerts"].as_array().cloned().unwrap_or_default()
}

fn has_evidence(a: &Value) -> bool {
    a["evidence"].as_object().is_some_and(|e| !e.is_empty())
}

#[test]
fn demo_serves_every_promised_alert_with_evidence() {
    let demo = start_demo();
    let token =
        dashboard::admin::create_token(&demo.db, dashboard::Scope::Read, "demo test").unwrap();

    let formats = alerts(&demo, &token, "weights_format");
    for proto in ["http", "raw"] {
        assert!(
            formats
                .iter()
                .any(|a| a["app_proto"] == proto && has_evidence(a)),
            "weights leaving over {proto}: {formats:#?}"
        );
    }
    let size_match = alerts(&demo, &token, "encrypted_size_match");
    assert!(
        size_match
            .iter()
            .any(|a| a["app_proto"] == "tls" && has_evidence(a)),
        "weights leaving over TLS: {size_match:#?}"
    );
    for category in ["weights_known", "weights_tensor", "egress_volume"] {
        let got = alerts(&demo, &token, category);
        assert!(
            got.iter().any(has_evidence),
            "{category} alert with evidence: {got:#?}"
        );
    }
    let accounts = alerts(&demo, &token, "distillation");
    assert!(
        accounts
            .iter()
            .any(|a| a["account_id"].is_string() && has_evidence(a)),
        "distillation accounts: {accounts:#?}"
    );
    let clusters = alerts(&demo, &token, "distillation_cluster");
    assert!(
        clusters
            .iter()
            .any(|a| has_evidence(a) && a["members"].as_array().is_some_and(|m| m.len() >= 3)),
        "a hydra cluster: {clusters:#?}"
    );

    // Each analyzer alert is stamped when its verdict first held: inside
    // the log window, and not all at one moment.
    let (start_ms, end_ms) = log_window();
    let mut times: Vec<i64> = accounts
        .iter()
        .chain(&clusters)
        .map(|a| {
            let t = eve::Timestamp::parse(a["timestamp"].as_str().unwrap()).unwrap();
            let ms = t.unix_micros() / 1000;
            assert!(
                (start_ms..end_ms).contains(&ms),
                "{} outside the log window: {a:#}",
                a["timestamp"]
            );
            assert!(
                a["evidence"]["time_to_detect"]["hours"].is_number()
                    && a["evidence"]["window_end"].is_string(),
                "{a:#}"
            );
            ms
        })
        .collect();
    let n = times.len();
    times.sort_unstable();
    times.dedup();
    assert_eq!(times.len(), n, "analyzer alerts share a time");

    // The sensor's alerts were re-timed into the same window.
    for a in &formats {
        let t = eve::Timestamp::parse(a["timestamp"].as_str().unwrap()).unwrap();
        assert!(
            (start_ms..end_ms).contains(&(t.unix_micros() / 1000)),
            "{a:#}"
        );
    }

    // The tour names the pages to open first.
    let tour = demo.printed.split("Guided tour").nth(1).unwrap_or_default();
    for page in [
        "/alerts?category=weights_known",
        "/alerts?category=distillation_cluster",
        "/accounts/",
        "/audit",
    ] {
        assert!(tour.contains(page), "tour without {page}: {}", demo.printed);
    }

    let account = accounts[0]["account_id"].as_str().unwrap().to_string();
    let alert_id = formats[0]["id"].to_string().trim_matches('"').to_string();
    // The highest-scored account's alert, as the tour suggests.
    let best = accounts
        .iter()
        .max_by(|a, b| {
            let score = |x: &Value| x["evidence"]["score"].as_f64().unwrap_or(0.0);
            score(a).total_cmp(&score(b))
        })
        .unwrap();
    let analyzer_alert = best["id"].to_string().trim_matches('"').to_string();
    browse(&demo, &alert_id, &analyzer_alert, &account);
}

/// The demo's API log window (ms): what `fixtures::logs` generates for it.
fn log_window() -> (i64, i64) {
    let spec = fixtures::logs::LogSpec::default();
    (
        spec.start_ms,
        spec.start_ms + i64::from(spec.days) * 86_400_000,
    )
}

fn find_exe(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/lib/chromium")])
        .flat_map(|d| names.iter().map(move |n| d.join(n)))
        .find(|p| p.is_file())
}

fn screenshots_dir() -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .map(|p| p.join("screenshots"))
        .unwrap_or_else(|| PathBuf::from("screenshots"));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Sign in and visit the overview, one sensor alert, one analyzer alert and
/// one account in headless Chromium.
fn browse(demo: &Demo, alert_id: &str, analyzer_alert: &str, account: &str) {
    use fantoccini::{ClientBuilder, Locator};
    let (Some(chromium), Some(chromedriver)) = (
        find_exe(&["chromium", "chromium-browser", "google-chrome"]),
        find_exe(&["chromedriver"]),
    ) else {
        eprintln!(
            "SKIPPED the browser part: chromium and chromedriver are not installed \
             (apt-get install chromium chromium-driver; .ci/run installs them)"
        );
        return;
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut driver = Command::new(chromedriver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let profile = tempfile::tempdir().unwrap();
    let shots = screenshots_dir();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let result = rt.block_on(async {
        let caps: serde_json::Map<String, Value> = serde_json::from_value(serde_json::json!({
            "goog:chromeOptions": {
                "binary": chromium,
                "args": ["--headless", "--no-sandbox", "--disable-gpu",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                    "--window-size=1440,1000",
                    format!("--user-data-dir={}", profile.path().display())],
            }
        }))
        .unwrap();
        let mut client = None;
        for _ in 0..100 {
            let mut b = ClientBuilder::rustls().expect("TLS roots");
            b.capabilities(caps.clone());
            match b.connect(&format!("http://127.0.0.1:{port}")).await {
                Ok(c) => {
                    client = Some(c);
                    break;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
        let c = client.expect("a WebDriver session");
        let wait = Duration::from_secs(30);
        c.goto(&format!("{}/login", demo.url)).await?;
        c.wait()
            .at_most(wait)
            .for_element(Locator::Css("input[name=username]"))
            .await?
            .send_keys("admin")
            .await?;
        c.find(Locator::Css("input[name=password]"))
            .await?
            .send_keys(&demo.password)
            .await?;
        c.find(Locator::Css("button[type=submit]"))
            .await?
            .click()
            .await?;
        c.wait()
            .at_most(wait)
            .for_element(Locator::Css("svg.chart"))
            .await?;
        // The default overview (no span asked for) tells both stories: the
        // weights leaving and the distillation, in one week.
        c.wait()
            .at_most(wait)
            .for_element(Locator::Css("svg.chart rect.cat-distillation"))
            .await?;
        std::fs::write(shots.join("demo-overview.png"), c.screenshot().await?).unwrap();
        let overview = c.source().await?;
        assert!(
            overview.contains("<rect class=\"cat-weights_known\"")
                || overview.contains("<rect class=\"cat-weights_format\""),
            "the default chart without weights alerts"
        );
        assert!(
            !overview.contains("older alerts are before this chart"),
            "alerts left off the default chart"
        );
        // The analyzer's accounts and the sensor's upload destination are both there.
        assert!(
            overview.contains("Distillation"),
            "overview without distillation"
        );
        assert!(
            overview.contains("198.51.100.10"),
            "overview without the upload destination"
        );

        c.goto(&format!("{}/alerts/{alert_id}", demo.url)).await?;
        let body = c
            .wait()
            .at_most(wait)
            .for_element(Locator::Css("main"))
            .await?
            .text()
            .await?;
        assert!(
            body.contains("safetensors") || body.contains("format"),
            "{body}"
        );
        std::fs::write(shots.join("demo-alert.png"), c.screenshot().await?).unwrap();

        // An analyzer alert: its hourly requests drawn, not listed.
        c.goto(&format!("{}/alerts/{analyzer_alert}", demo.url))
            .await?;
        c.wait()
            .at_most(wait)
            .for_element(Locator::Css("table.kv svg.spark rect"))
            .await?;
        let body = c.find(Locator::Css("main")).await?.text().await?;
        assert!(body.contains("Time to detect"), "{body}");
        c.execute(
            "document.querySelector('table.kv svg.spark').scrollIntoView({block: 'center'})",
            Vec::new(),
        )
        .await?;
        std::fs::write(
            shots.join("demo-distillation-alert.png"),
            c.screenshot().await?,
        )
        .unwrap();

        c.goto(&format!("{}/accounts/{account}", demo.url)).await?;
        let body = c
            .wait()
            .at_most(wait)
            .for_element(Locator::Css("main"))
            .await?
            .text()
            .await?;
        assert!(body.contains(account), "{body}");
        std::fs::write(shots.join("demo-account.png"), c.screenshot().await?).unwrap();
        c.close().await?;
        Ok::<(), fantoccini::error::CmdError>(())
    });
    let _ = driver.kill();
    let _ = driver.wait();
    result.expect("browser walk through the demo");
}
