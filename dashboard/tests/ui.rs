//! The web UI over a real socket: sign-in, sessions, CSRF, pages, and
//! attacker-controlled strings rendered inert.

use super::STORE;
use crate::common::*;
use dashboard::{DashboardConfig, Scope};
use eve::AlertCategory;
use serde_json::json;

const PASSWORD: &str = "correct horse battery staple";

/// Sign in; returns the `Cookie` header value.
pub(super) fn sign_in(s: &TestServer, user: &str) -> String {
    dashboard::admin::add_user(&s.db, user, PASSWORD).unwrap();
    let body = format!("username={user}&password=correct+horse+battery+staple");
    let r = request(
        "POST",
        &s.url("/login"),
        None,
        Some(&body),
        &[("content-type", "application/x-www-form-urlencoded")],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let set = r
        .header("set-cookie")
        .expect("a session cookie")
        .to_string();
    assert!(set.contains("HttpOnly"), "{set}");
    assert!(set.contains("SameSite=Strict"), "{set}");
    set.split(';').next().unwrap().to_string()
}

pub(super) fn page(s: &TestServer, path: &str, cookie: &str) -> Resp {
    request("GET", &s.url(path), None, None, &[("cookie", cookie)])
}

pub(super) fn csrf_of(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").expect("a csrf field") + 19;
    html[at..].split('"').next().unwrap().to_string()
}

pub(super) fn post_form(s: &TestServer, path: &str, cookie: &str, body: &str) -> Resp {
    request(
        "POST",
        &s.url(path),
        None,
        Some(body),
        &[
            ("cookie", cookie),
            ("content-type", "application/x-www-form-urlencoded"),
        ],
    )
}

#[test]
fn sign_in_then_browse_triage_and_sign_out() {
    let s = TestServer::start_on(STORE);
    let ingest = s.token(Scope::Ingest);
    s.ingest(
        &ingest,
        &[
            sensor_alert(
                "u-1",
                10,
                AlertCategory::WeightsFormat,
                1,
                5,
                "10.0.0.5",
                "203.0.113.9",
                "up.example",
            ),
            flow("u-f", 11, 5, "10.0.0.5", "203.0.113.9", 1_000_000),
            account_alert("u-2", 12, "acct-7", 0.88, Some("c-2")),
            cluster_alert("u-3", 13, "c-2", &["acct-7", "acct-8"]),
            stats("u-s", 14, "sensor-a", 5000, 2),
        ],
    );
    let cookie = sign_in(&s, "ana");
    for (path, needle) in [
        ("/", "Alerts over time"),
        ("/alerts", "weights upload u-1"),
        ("/alerts?category=distillation", "distillation suspected"),
        (
            "/alerts/1",
            "10.0.0.5 sent a safetensors file of 1.15 GiB to 203.0.113.9 (up.example).",
        ),
        ("/accounts", "acct-7"),
        ("/accounts/acct-7", "Prompt diversity"),
        ("/audit", "sign_in"),
    ] {
        let r = page(&s, path, &cookie);
        assert_eq!(r.status, 200, "{path}");
        assert!(r.body.contains(needle), "{path} lacks {needle:?}");
    }
    let filtered = page(&s, "/alerts?category=distillation", &cookie).body;
    assert!(!filtered.contains("weights upload u-1"));
    let acct = page(&s, "/accounts/acct-7", &cookie).body;
    assert!(
        acct.contains("Explain step by step"),
        "sample prompts shown"
    );
    assert!(acct.contains("acct-8"), "cluster members shown");
    assert!(acct.contains("Requests per hour"));
    // The analyzer's hourly series: one bar per hour, labelled by its start.
    assert_eq!(acct.matches("<rect class=\"cat-distillation\"").count(), 5);
    assert!(acct.contains("2026-09-21 13:00:00 UTC: 900"), "{acct}");
    assert!(acct.contains(">2026-09-21 14:00:00 UTC</text>"), "{acct}");

    // Triage needs the CSRF token of this session.
    let detail = page(&s, "/alerts/1", &cookie).body;
    let csrf = csrf_of(&detail);
    let r = post_form(&s, "/alerts/1/triage", &cookie, "status=resolved&note=x");
    assert_eq!(r.status, 400, "a form without csrf is refused");
    let r = post_form(
        &s,
        "/alerts/1/triage",
        &cookie,
        "csrf=wrong&status=resolved&note=x",
    );
    assert_eq!(r.status, 403);
    let cross = request(
        "POST",
        &s.url("/alerts/1/triage"),
        None,
        Some(&format!("csrf={csrf}&status=resolved")),
        &[
            ("cookie", &cookie),
            ("content-type", "application/x-www-form-urlencoded"),
            ("origin", "http://evil.example"),
        ],
    );
    assert_eq!(cross.status, 403, "cross-origin form refused");
    let r = post_form(
        &s,
        "/alerts/1/triage",
        &cookie,
        &format!("csrf={csrf}&status=investigating&note=checking+with+owner"),
    );
    assert_eq!(r.status, 303);
    let detail = page(&s, "/alerts/1", &cookie).body;
    assert!(detail.contains("user:ana"));
    assert!(detail.contains("new → investigating: checking with owner"));
    // The JSON API with a session also needs the token, in a header.
    let r = request(
        "POST",
        &s.url("/api/v1/alerts/1/triage"),
        None,
        Some(r#"{"status":"resolved"}"#),
        &[("cookie", &cookie)],
    );
    assert_eq!(r.status, 403);
    let r = request(
        "POST",
        &s.url("/api/v1/alerts/1/triage"),
        None,
        Some(r#"{"status":"resolved"}"#),
        &[("cookie", &cookie), ("x-csrf-token", &csrf)],
    );
    assert_eq!(r.status, 200, "{}", r.body);

    // Sign out ends the session server-side.
    let r = post_form(&s, "/logout", &cookie, &format!("csrf={csrf}"));
    assert_eq!(r.status, 303);
    let r = page(&s, "/alerts", &cookie);
    assert_eq!(r.status, 303);
    assert_eq!(r.header("location"), Some("/login"));
}

#[test]
fn wrong_passwords_are_refused_and_rate_limited() {
    let cfg = DashboardConfig {
        login_attempts_per_minute: 3,
        ..DashboardConfig::default()
    };
    let s = TestServer::with_config_on(STORE, cfg);
    dashboard::admin::add_user(&s.db, "bob", PASSWORD).unwrap();
    let try_login = |pw: &str| {
        request(
            "POST",
            &s.url("/login"),
            None,
            Some(&format!("username=bob&password={pw}")),
            &[("content-type", "application/x-www-form-urlencoded")],
        )
    };
    let r = try_login("wrong-password");
    assert_eq!(r.status, 401);
    assert!(r.header("set-cookie").is_none());
    assert!(r.body.contains("Wrong name, password or code"));
    let statuses: Vec<u16> = (0..5).map(|_| try_login("wrong-password").status).collect();
    assert!(statuses.contains(&429), "{statuses:?}");
    // Even the right password is refused while throttled.
    assert_eq!(try_login("correct+horse+battery+staple").status, 429);
    assert!(dashboard::admin::add_user(&s.db, "bad name!", PASSWORD).is_err());
    assert!(dashboard::admin::add_user(&s.db, "carol", "short").is_err());
}

/// Payloads that would run script if any page printed them raw.
const XSS: &[&str] = &[
    "<script>alert(1)</script>",
    "\"><img src=x onerror=alert(2)>",
    "'><svg onload=alert(3)>",
    "javascript:alert(4)//</title><script>alert(5)</script>",
];

/// HTML-escaped as askama writes it.
fn escaped(s: &str) -> String {
    s.replace('&', "&#38;")
        .replace('<', "&#60;")
        .replace('>', "&#62;")
        .replace('"', "&#34;")
        .replace('\'', "&#39;")
}

#[test]
fn attacker_strings_render_inert() {
    let s = TestServer::start_on(STORE);
    let ingest = s.token(Scope::Ingest);
    let mut alert = sensor_alert(
        "x-1",
        10,
        AlertCategory::WeightsFormat,
        1,
        9,
        "10.0.0.9",
        "203.0.113.66",
        XSS[0],
    );
    alert["http"] = json!({"hostname": XSS[1], "url": format!("/upload?{}", XSS[2]), "http_user_agent": XSS[3]});
    alert["fileinfo"] = json!({"filename": XSS[1], "size": 10, "state": "CLOSED", "gaps": false, "direction": "toserver"});
    alert["alert"]["signature"] = json!(XSS[3]);
    alert["evidence"][XSS[0]] = json!(XSS[2]);
    // Series are drawn, their labels and keys escaped like any text.
    alert["evidence"]["hourly_uploads"] = json!([[XSS[0], 3], [XSS[1], 5]]);
    alert["evidence"][XSS[3]] = json!([1, 2, 3, 4, 5, 6, 7, 8]);
    let file = fileinfo("x-2", 10, 9, "10.0.0.9", "203.0.113.66", XSS[2], XSS[0]);
    let mut acct = account_alert("x-3", 11, "acct-x", 0.9, Some(XSS[0]));
    acct["evidence"]["sample_prompts"] = json!(
        XSS.iter()
            .map(|x| json!({"kind": "x", "prompt": x}))
            .collect::<Vec<_>>()
    );
    let cluster = cluster_alert("x-4", 12, "c-x", &["acct-x", XSS[1]]);
    s.ingest(&ingest, &[alert, file, acct, cluster]);
    let cookie = sign_in(&s, "eve");
    let mut pages = vec![
        "/".to_string(),
        "/alerts".to_string(),
        "/accounts".to_string(),
        "/accounts/acct-x".to_string(),
        format!("/alerts?q={}", "%3Cscript%3E"),
        "/audit".to_string(),
    ];
    // Row ids: 1, 3 and 4 are the alerts (2 is the fileinfo event).
    pages.extend([1, 3, 4].map(|i| format!("/alerts/{i}")));
    for path in pages {
        let r = page(&s, &path, &cookie);
        assert_eq!(r.status, 200, "{path}");
        for x in XSS {
            assert!(!r.body.contains(x), "{path} prints {x:?} raw");
        }
        assert!(!r.body.contains("<script>"), "{path}");
        assert!(!r.body.contains("<img"), "{path}");
        assert!(!r.body.contains("<svg onload"), "{path}");
        // No inline script: the only script element is ours.
        assert_eq!(r.body.matches("<script").count(), 1, "{path}");
        assert!(
            r.body
                .contains("<script src=\"/static/app.js\" defer></script>")
        );
        assert!(
            !r.body.contains("style="),
            "{path}: no inline style attributes"
        );
    }
    // The text is still there, escaped, for the analyst to read.
    let d = page(&s, "/alerts/1", &cookie).body;
    assert_eq!(d.matches("<svg class=\"spark\"").count(), 2, "{d}");
    assert!(d.contains(&format!("<title>{}: 3</title>", escaped(XSS[0]))));
    assert!(d.contains(&escaped(XSS[0])), "escaped SNI");
    assert!(d.contains(&escaped(XSS[1])), "escaped filename");
    assert!(
        d.contains(&escaped(&format!("/upload?{}", XSS[2]))),
        "escaped URL"
    );
    let a = page(&s, "/accounts/acct-x", &cookie).body;
    assert!(a.contains(&escaped(XSS[2])), "escaped prompt");
}

#[test]
fn tokens_without_triage_see_no_form_and_ui_needs_read() {
    let s = TestServer::start_on(STORE);
    let ingest = s.token(Scope::Ingest);
    s.ingest(
        &ingest,
        &[sensor_alert(
            "t-1",
            1,
            AlertCategory::WeightsFormat,
            1,
            1,
            "10.0.0.1",
            "192.0.2.1",
            "a",
        )],
    );
    let read = s.token(Scope::Read);
    let r = s.get("/alerts/1", Some(&read));
    assert_eq!(r.status, 200);
    assert!(r.body.contains("This token may only read."));
    for path in ["/", "/alerts", "/alerts/1", "/accounts", "/audit"] {
        assert_eq!(s.get(path, Some(&ingest)).status, 403, "{path}");
    }
    let r = request(
        "POST",
        &s.url("/alerts/1/triage"),
        Some(&read),
        Some("csrf=&status=resolved"),
        &[("content-type", "application/x-www-form-urlencoded")],
    );
    assert_eq!(r.status, 403);
}

#[test]
fn static_assets_are_embedded() {
    let s = TestServer::start_on(STORE);
    let r = s.get("/static/app.js", None);
    assert_eq!(r.status, 200);
    assert!(
        r.header("content-type")
            .unwrap()
            .starts_with("text/javascript")
    );
    assert!(r.body.contains("EventSource"));
    assert!(
        !r.body.contains("innerHTML"),
        "rows are built with textContent"
    );
    let r = s.get("/static/app.css", None);
    assert_eq!(r.status, 200);
    assert_eq!(s.get("/static/nope.js", None).status, 404);
    assert_eq!(s.get("/static/../Cargo.toml", None).status, 404);
}

#[test]
fn overview_chart_span_fits_old_data_is_chosen_and_older_alerts_are_counted() {
    let s = TestServer::start_on(STORE);
    let ingest = s.token(Scope::Ingest);
    let read = s.token(Scope::Read);
    let day = 86_400;
    // A sensor alert two years before the analyzer's alerts (a pcap replay
    // next to fresh API logs, as in the demo).
    // (`ts` counts seconds from 2026-09-21; event times must not be in the
    // future.)
    let t1 = 0;
    let t0 = t1 - 2 * 365 * day;
    s.ingest(
        &ingest,
        &[
            sensor_alert(
                "old-1",
                t0,
                AlertCategory::WeightsFormat,
                1,
                1,
                "10.0.0.5",
                "198.51.100.7",
                "upload.example",
            ),
            account_alert("new-1", t1, "acct-1", 0.9, None),
            account_alert("new-2", t1 - day, "acct-2", 0.8, None),
        ],
    );
    // Default: the newest alert is older than a week (before now), so the
    // chart fits the data: all of it, both categories, and says why.
    let r = s.get("/", Some(&read));
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.body.contains("<rect class=\"cat-distillation\""),
        "{}",
        r.body
    );
    assert!(r.body.contains("<rect class=\"cat-weights_format\""));
    assert!(!r.body.contains("older alerts are before this chart"));
    assert!(r.body.contains("href=\"/?span=all\" class=\"current\""));
    assert!(
        r.body.contains("older than a week: the chart spans all"),
        "{}",
        r.body
    );
    // Asked for: the 7 days before the newest alert; the old one is counted.
    let r = s.get("/?span=7d", Some(&read));
    assert!(r.body.contains("cat-distillation"), "{}", r.body);
    assert!(!r.body.contains("<rect class=\"cat-weights_format\""));
    assert!(
        r.body.contains("1 older alerts are before this chart"),
        "{}",
        r.body
    );
    assert!(r.body.contains("href=\"/?span=7d\" class=\"current\""));
    assert!(!r.body.contains("span-note"));
    // All of the data: both categories, nothing before the chart.
    let r = s.get("/?span=all", Some(&read));
    assert_eq!(r.status, 200);
    assert!(
        r.body.contains("<rect class=\"cat-weights_format\""),
        "{}",
        r.body
    );
    assert!(r.body.contains("<rect class=\"cat-distillation\""));
    assert!(!r.body.contains("older alerts are before this chart"));
    assert!(r.body.contains("href=\"/?span=all\" class=\"current\""));
    // 24 hours: only the newest alert; two are older.
    let r = s.get("/?span=24h", Some(&read));
    assert!(
        r.body.contains("2 older alerts are before this chart"),
        "{}",
        r.body
    );
    // The data replayed into one recent-looking window (three days, ending
    // long before now): the shortest span that holds it, a week.
    let s2 = TestServer::start();
    let ingest2 = s2.token(Scope::Ingest);
    s2.ingest(
        &ingest2,
        &[
            account_alert("w-1", t1, "acct-1", 0.9, None),
            account_alert("w-2", t1 - 3 * day, "acct-2", 0.8, None),
        ],
    );
    let r = s2.get("/", Some(&s2.token(Scope::Read)));
    assert!(
        r.body.contains("href=\"/?span=7d\" class=\"current\""),
        "{}",
        r.body
    );
    assert!(r.body.contains("the chart spans 7d"), "{}", r.body);
    // Live data (the newest alert an hour old, beside a two-year-old one;
    // a server of its own, as the overview is cached a moment): the
    // default week, no note.
    let s3 = TestServer::start();
    let ingest3 = s3.token(Scope::Ingest);
    let now_secs = (eve::Timestamp::now().unix_micros() - ts(0).unix_micros()) / 1_000_000;
    s3.ingest(
        &ingest3,
        &[
            account_alert("w-3", now_secs - 3600, "acct-3", 0.9, None),
            account_alert("w-4", t0, "acct-4", 0.9, None),
        ],
    );
    let r = s3.get("/", Some(&s3.token(Scope::Read)));
    assert!(
        r.body.contains("href=\"/?span=7d\" class=\"current\""),
        "{}",
        r.body
    );
    assert!(!r.body.contains("span-note"), "{}", r.body);
    assert!(r.body.contains("1 older alerts are before this chart"));
    // A span the page does not offer is a clear error, not a default.
    let r = s.get("/?span=forever", Some(&read));
    assert_eq!(r.status, 400);
    assert!(r.body.contains("span must be one of"), "{}", r.body);
}
