//! A real browser (headless Chromium through chromedriver and WebDriver):
//! sign in, see stored alerts, watch a newly ingested alert appear without a
//! reload, triage it, find the audit entry; open an incident, see its file
//! coverage and timeline, triage it with its alerts. Screenshots go to
//! `<target>/screenshots/`. Skips with a message when Chromium or
//! chromedriver is not installed (CI installs `chromium chromium-driver`).

use crate::common::*;
use dashboard::Scope;
use eve::AlertCategory;
use fantoccini::{ClientBuilder, Locator};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const PASSWORD: &str = "a long browser password";

fn find_exe(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    for dir in std::env::split_paths(&path).chain([PathBuf::from("/usr/lib/chromium")]) {
        for n in names {
            let p = dir.join(n);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn screenshots_dir() -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .map(|p| p.join("screenshots"))
        .unwrap_or_else(|| PathBuf::from("screenshots"));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn analyst_signs_in_sees_live_alert_and_triages_it() {
    let (Some(chromium), Some(chromedriver)) = (
        find_exe(&["chromium", "chromium-browser", "google-chrome"]),
        find_exe(&["chromedriver"]),
    ) else {
        eprintln!(
            "SKIPPED browser test: chromium and chromedriver are not installed \
             (apt-get install chromium chromium-driver)"
        );
        return;
    };
    let s = TestServer::start();
    dashboard::admin::add_user(&s.db, "analyst", PASSWORD).unwrap();
    let ingest = s.token(Scope::Ingest);
    s.ingest(
        &ingest,
        &[
            sensor_alert(
                "b-1",
                10,
                AlertCategory::WeightsFormat,
                1,
                1,
                "10.0.0.5",
                "203.0.113.9",
                "upload.example.net",
            ),
            sensor_alert(
                "b-2",
                20,
                AlertCategory::EgressVolume,
                2,
                2,
                "10.0.0.6",
                "198.51.100.4",
                "files.example.org",
            ),
            flow("b-f", 21, 2, "10.0.0.6", "198.51.100.4", 2_000_000_000),
            account_alert("b-3", 30, "acct-1337", 0.93, Some("c-5")),
            cluster_alert("b-4", 31, "c-5", &["acct-1337", "acct-1338", "acct-1339"]),
            stats("b-s", 32, "sensor-a", 1_000_000, 120),
        ],
    );

    // A free port for chromedriver.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let _driver = Driver(
        Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let profile = tempfile::tempdir().unwrap();
    let shots = screenshots_dir();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": chromium,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                    "--window-size=1440,1000",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            }),
        );
        // chromedriver takes a moment to listen; retry the session (bounded).
        let mut client = None;
        for _ in 0..100 {
            let mut b = ClientBuilder::rustls().expect("TLS roots for the WebDriver client");
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
        let shot = |name: &'static str| {
            let c = c.clone();
            let shots = shots.clone();
            async move {
                let png = c.screenshot().await.unwrap();
                std::fs::write(shots.join(name), png).unwrap();
            }
        };

        // Anonymous visitors land on the sign-in page.
        c.goto(&s.url("/alerts")).await.unwrap();
        c.wait()
            .at_most(wait)
            .for_element(Locator::Css("form[action='/login']"))
            .await
            .unwrap();
        shot("01-login.png").await;
        c.find(Locator::Css("input[name=username]"))
            .await
            .unwrap()
            .send_keys("analyst")
            .await
            .unwrap();
        c.find(Locator::Css("input[name=password]"))
            .await
            .unwrap()
            .send_keys(PASSWORD)
            .await
            .unwrap();
        c.find(Locator::Css("button[type=submit]"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        if c.wait()
            .at_most(wait)
            .for_element(Locator::Css("svg.chart"))
            .await
            .is_err()
        {
            shot("failed-sign-in.png").await;
            panic!(
                "no overview after sign-in: {}",
                c.source().await.unwrap_or_default()
            );
        }
        shot("02-overview.png").await;

        // The stored alerts are listed.
        c.goto(&s.url("/alerts")).await.unwrap();
        let rows = c.find_all(Locator::Css("#alert-rows tr")).await.unwrap();
        assert_eq!(rows.len(), 4);
        let text = c
            .find(Locator::Css("#alert-rows"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(text.contains("weights upload b-1"), "{text}");
        assert!(text.contains("account acct-1337"), "{text}");
        // Wait until the page's live stream is connected.
        c.wait()
            .at_most(wait)
            .for_element(Locator::XPath(
                "//p[@id='live-status'][starts-with(., 'Live:')]",
            ))
            .await
            .unwrap();

        // A new alert arrives while the page is open: it appears without reload.
        s.ingest(
            &ingest,
            &[sensor_alert(
                "b-live",
                40,
                AlertCategory::WeightsKnown,
                1,
                9,
                "10.0.0.66",
                "203.0.113.200",
                "exfil.example.com",
            )],
        );
        let link = c
            .wait()
            .at_most(wait)
            .for_element(Locator::XPath(
                "//tbody[@id='alert-rows']/tr[1]//a[text()='weights upload b-live']",
            ))
            .await
            .unwrap();
        let rows = c.find_all(Locator::Css("#alert-rows tr")).await.unwrap();
        assert_eq!(rows.len(), 5, "added in place, not reloaded");
        shot("03-alerts-live.png").await;

        // Triage it.
        link.click().await.unwrap();
        c.wait()
            .at_most(wait)
            .for_element(Locator::Css("form#triage"))
            .await
            .unwrap();
        let summary = c
            .find(Locator::Css("p.summary"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(summary.contains("10.0.0.66"), "{summary}");
        shot("04-alert-detail.png").await;
        c.find(Locator::Css("form#triage select[name=status]"))
            .await
            .unwrap()
            .select_by_value("investigating")
            .await
            .unwrap();
        c.find(Locator::Css("form#triage textarea[name=note]"))
            .await
            .unwrap()
            .send_keys("asked the owner of 10.0.0.66")
            .await
            .unwrap();
        c.find(Locator::Css("form#triage button"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        let entry = c
            .wait()
            .at_most(wait)
            .for_element(Locator::XPath(
                "//ol[@id='audit']/li[contains(., 'new → investigating')]",
            ))
            .await
            .unwrap();
        let entry = entry.text().await.unwrap();
        assert!(entry.contains("user:analyst"), "{entry}");
        assert!(entry.contains("asked the owner of 10.0.0.66"), "{entry}");
        let status = c
            .find(Locator::Css("#alert-status"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(status, "Investigating");
        shot("05-triaged.png").await;

        // The audit log page has it too.
        c.goto(&s.url("/audit")).await.unwrap();
        let log = c
            .find(Locator::Css("table.audit-log"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            log.contains("new → investigating: asked the owner of 10.0.0.66"),
            "{log}"
        );
        shot("06-audit.png").await;

        // The account page, for the guide.
        c.goto(&s.url("/accounts/acct-1337")).await.unwrap();
        c.wait()
            .at_most(wait)
            .for_element(Locator::Css("table.signals"))
            .await
            .unwrap();
        shot("07-account.png").await;

        // An incident: two requests of one registered file from one host,
        // grouped; its page shows the file's coverage and the timeline, and
        // one form triages it with its alerts.
        let piece = |id: &str, secs: i64, flow: u64, range: [u64; 2]| {
            let mut v = sensor_alert(
                id,
                secs,
                AlertCategory::WeightsKnown,
                2,
                flow,
                "10.0.0.77",
                "198.51.100.70",
                "drop.example.com",
            );
            v["evidence"]["known_file"] = "/models/frontier/shard-00001.safetensors".into();
            v["evidence"]["known_file_bytes"] = 1000.into();
            v["evidence"]["known_file_sha256"] = "ab".repeat(32).into();
            v["evidence"]["file_ranges"] = serde_json::json!([range]);
            v
        };
        s.ingest(
            &ingest,
            &[
                piece("b-p1", 3600, 71, [0, 600]),
                piece("b-p2", 7200, 72, [500, 950]),
            ],
        );
        c.goto(&s.url("/incidents")).await.unwrap();
        c.find(Locator::XPath(
            "//tbody[@id='incident-rows']//a[contains(., 'shard-00001.safetensors')]",
        ))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
        let figure = c
            .wait()
            .at_most(wait)
            .for_element(Locator::Css(".coverage-figure"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(figure, "95.0 %");
        let moments = c.find_all(Locator::Css("#timeline li")).await.unwrap();
        assert_eq!(moments.len(), 2);
        shot("08-incident.png").await;
        c.find(Locator::Css("form#triage select[name=status]"))
            .await
            .unwrap()
            .select_by_value("resolved")
            .await
            .unwrap();
        c.find(Locator::Css("form#triage button"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        c.wait()
            .at_most(wait)
            .for_element(Locator::XPath(
                "//span[@id='incident-status'][text()='Resolved']",
            ))
            .await
            .unwrap();
        let moments = c.find_all(Locator::Css("#timeline li")).await.unwrap();
        assert_eq!(moments.len(), 3, "the triage is on the timeline");
        c.find(Locator::Css("#timeline a"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        let status = c
            .wait()
            .at_most(wait)
            .for_element(Locator::Css("#alert-status"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(status, "Resolved", "the incident's alerts moved with it");
        c.find(Locator::Css("#alert-incident")).await.unwrap();

        // The incident list updates live: a third request of the file
        // joins the incident, whose row moves to the top, whole now.
        c.goto(&s.url("/incidents")).await.unwrap();
        c.wait()
            .at_most(wait)
            .for_element(Locator::XPath(
                "//p[@id='live-status'][starts-with(., 'Live:')]",
            ))
            .await
            .unwrap();
        let before = c.find_all(Locator::Css("#incident-rows tr")).await.unwrap();
        s.ingest(&ingest, &[piece("b-p3", 7300, 73, [950, 1000])]);
        c.wait()
            .at_most(wait)
            .for_element(Locator::XPath(
                "//tbody[@id='incident-rows']/tr[1][td[7]='100.0 %'][td[5]='3']",
            ))
            .await
            .unwrap();
        let after = c.find_all(Locator::Css("#incident-rows tr")).await.unwrap();
        assert_eq!(before.len(), after.len(), "updated in place, not added");
        shot("09-incidents-live.png").await;

        c.close().await.unwrap();
    });
    eprintln!("screenshots in {}", shots.display());
}
