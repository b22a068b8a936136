//! The second factor and credential lifetimes over a real socket: TOTP codes
//! computed here from the enrolment's otpauth URI (RFC 6238 by hand), each
//! accepted once, also after an upgrade; one-time recovery codes,
//! `require_mfa`, and token expiry.

use super::STORE;
use crate::common::*;
use dashboard::{DashboardConfig, Scope};
use hmac::{Hmac, Mac};

const PASSWORD: &str = "correct horse battery staple";

/// RFC 4648 base32 (no padding) to bytes.
fn base32(s: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'2'..=b'7' => c - b'2' + 26,
            _ => panic!("not base32: {s}"),
        };
        acc = (acc << 5) | u32::from(v);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

/// The current 30 s time step.
fn step_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        / 30
}

/// The RFC 6238 code (HMAC-SHA-1, 6 digits) of the URI's secret at 30 s
/// time step `step`.
fn totp_at(uri: &str, step: u64) -> String {
    let secret = uri
        .split(['?', '&'])
        .find_map(|kv| kv.strip_prefix("secret="))
        .expect("a secret in the URI");
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(&base32(secret)).unwrap();
    mac.update(&step.to_be_bytes());
    let h = mac.finalize().into_bytes();
    let at = (h[19] & 0x0f) as usize;
    let n = u32::from_be_bytes([h[at] & 0x7f, h[at + 1], h[at + 2], h[at + 3]]) % 1_000_000;
    format!("{n:06}")
}

/// The URI's code now.
pub(super) fn totp_now(uri: &str) -> String {
    totp_at(uri, step_now())
}

/// POST /login from loopback address `from` (each address has its own
/// per-name backoff after a failure): the status and the body.
pub(super) fn sign_in_from(s: &TestServer, from: &str, user: &str, code: &str) -> (u16, String) {
    let (status, text) = request_from(
        from,
        s.addr,
        "POST",
        "/login",
        &format!("username={user}&password=correct+horse+battery+staple&totp={code}"),
    );
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string());
    (status, body.unwrap_or_default())
}

/// POST /login; the status and the session cookie, if one was set.
fn sign_in(s: &TestServer, user: &str, code: &str) -> (u16, Option<String>) {
    let body = format!("username={user}&password=correct+horse+battery+staple&totp={code}");
    let r = request(
        "POST",
        &s.url("/login"),
        None,
        Some(&body),
        &[("content-type", "application/x-www-form-urlencoded")],
    );
    let cookie = r
        .header("set-cookie")
        .map(|c| c.split(';').next().unwrap().to_string());
    (r.status, cookie)
}

#[test]
fn totp_and_recovery_codes() {
    let s = TestServer::start_on(STORE);
    let e = dashboard::admin::add_user_totp(&s.db, "bob", PASSWORD).unwrap();
    assert!(
        e.uri.starts_with("otpauth://totp/weightwatch:bob?"),
        "{}",
        e.uri
    );
    assert!(e.uri.contains("issuer=weightwatch"), "{}", e.uri);
    // SHA-1, 6 digits, 30 s: the key URI format's defaults, written or not.
    for (key, want) in [("algorithm", "SHA1"), ("digits", "6"), ("period", "30")] {
        let given = e
            .uri
            .split(['?', '&'])
            .find_map(|kv| kv.strip_prefix(&format!("{key}=")));
        assert!(given.is_none_or(|v| v == want), "{key} in {}", e.uri);
    }
    assert_eq!(e.recovery_codes.len(), 10);

    // The code computed here from the URI lets bob in; the session works.
    let (status, cookie) = sign_in(&s, "bob", &totp_now(&e.uri));
    assert_eq!(status, 303);
    let page = request(
        "GET",
        &s.url("/"),
        None,
        None,
        &[("cookie", &cookie.unwrap())],
    );
    assert_eq!(page.status, 200);

    // A recovery code works once.
    let (status, _) = sign_in(&s, "bob", &e.recovery_codes[0].to_uppercase());
    assert_eq!(status, 303, "a recovery code (case-insensitive) signs in");
    let (status, cookie) = sign_in(&s, "bob", &e.recovery_codes[0]);
    assert_eq!(status, 401, "a used recovery code is refused");
    assert!(cookie.is_none());

    // Enrolled users need the code (other names: the per-name backoff).
    let f = dashboard::admin::add_user_totp(&s.db, "dave", PASSWORD).unwrap();
    assert_eq!(
        sign_in(&s, "dave", "").0,
        401,
        "password alone is not enough"
    );
    let _ = f;
    let g = dashboard::admin::add_user_totp(&s.db, "erin", PASSWORD).unwrap();
    let good = totp_now(&g.uri);
    let wrong = format!(
        "{:06}",
        (good.parse::<u32>().unwrap() + 500_000) % 1_000_000
    );
    assert_eq!(
        sign_in(&s, "erin", &wrong).0,
        401,
        "a wrong code is refused"
    );

    let audit = s.get("/api/v1/audit", Some(&s.token(Scope::Read))).json();
    assert!(
        audit["audit"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["action"] == "recovery_code" && l["actor"] == "user:bob"),
        "{audit}"
    );
}

#[test]
fn a_totp_code_signs_in_once() {
    let s = TestServer::start_on(STORE);
    let e = dashboard::admin::add_user_totp(&s.db, "ivy", PASSWORD).unwrap();
    let j = dashboard::admin::add_user_totp(&s.db, "jon", PASSWORD).unwrap();
    let step = step_now();
    let code = totp_at(&e.uri, step);
    assert_eq!(sign_in_from(&s, "127.0.0.1", "ivy", &code).0, 303);

    // The same code again, inside its window: refused exactly as a wrong
    // code is (jon's, from the same address).
    let (status, replayed) = sign_in_from(&s, "127.0.0.1", "ivy", &code);
    assert_eq!(status, 401, "a used code is refused");
    let good = totp_now(&j.uri);
    let wrong = format!(
        "{:06}",
        (good.parse::<u32>().unwrap() + 500_000) % 1_000_000
    );
    let (status, wrong_body) = sign_in_from(&s, "127.0.0.1", "jon", &wrong);
    assert_eq!(status, 401);
    assert!(
        replayed.contains("Wrong name, password or code."),
        "{replayed}"
    );
    assert_eq!(replayed, wrong_body, "a replay looks like any wrong code");
    // … but it is audited, the wrong code is not.
    let audit = s.get("/api/v1/audit", Some(&s.token(Scope::Read))).json();
    let replays: Vec<&serde_json::Value> = audit["audit"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["action"] == "totp_replay")
        .collect();
    assert_eq!(replays.len(), 1, "{audit}");
    assert_eq!(replays[0]["actor"], "user:ivy");
    let detail = replays[0]["detail"].as_str().unwrap();
    assert!(detail.contains(&format!("time step {step}")), "{detail}");
    assert!(detail.contains("127.0.0.1"), "{detail}");

    // The next step's code (in the skew window) then works (from another
    // address: ivy's failure above started a backoff at the first) ...
    assert_eq!(
        sign_in_from(&s, "127.0.0.2", "ivy", &totp_at(&e.uri, step + 1)).0,
        303
    );
    // ... and a code of an earlier step than the last used is refused,
    // though still inside the skew window.
    assert_eq!(sign_in_from(&s, "127.0.0.3", "ivy", &code).0, 401);
}

#[test]
fn totp_users_from_before_single_use_codes_sign_in_once_per_code() {
    let s = TestServer::start_on(STORE);
    let e = dashboard::admin::add_user_totp(&s.db, "kim", PASSWORD).unwrap();
    let s = s.stop();
    // What the schema before single-use codes had (SQLite 7, PostgreSQL 4).
    let before = match STORE {
        Backend::Sqlite => "ALTER TABLE users DROP COLUMN totp_last_step; PRAGMA user_version = 7;",
        Backend::Postgres => {
            "ALTER TABLE users DROP COLUMN totp_last_step; UPDATE schema_version SET version = 4;"
        }
    };
    run_sql(s.db(), before).unwrap();
    let s = s.start_again(DashboardConfig::default());
    let code = totp_now(&e.uri);
    assert_eq!(sign_in_from(&s, "127.0.0.1", "kim", &code).0, 303);
    assert_eq!(sign_in_from(&s, "127.0.0.2", "kim", &code).0, 401);
}

#[test]
fn require_mfa_refuses_password_only_users() {
    let cfg = DashboardConfig {
        require_mfa: true,
        ..DashboardConfig::default()
    };
    let s = TestServer::with_config_on(STORE, cfg);
    dashboard::admin::add_user(&s.db, "carol", PASSWORD).unwrap();
    let (status, cookie) = sign_in(&s, "carol", "");
    assert_eq!(status, 403);
    assert!(cookie.is_none());
    let e = dashboard::admin::add_user_totp(&s.db, "carl", PASSWORD).unwrap();
    assert_eq!(sign_in(&s, "carl", &totp_now(&e.uri)).0, 303);
}

#[test]
fn expired_tokens_are_refused() {
    let s = TestServer::start_on(STORE);
    let now = chrono::Utc::now().timestamp_micros();
    let past =
        dashboard::admin::create_token_expiring(&s.db, Scope::Read, "old", &[], Some(now)).unwrap();
    let future = dashboard::admin::create_token_expiring(
        &s.db,
        Scope::Read,
        "new",
        &[],
        Some(now + 3_600_000_000),
    )
    .unwrap();
    assert_eq!(s.get("/api/v1/alerts", Some(&past)).status, 401);
    assert_eq!(s.get("/api/v1/alerts", Some(&future)).status, 200);
}

#[test]
fn idle_sessions_end() {
    let s = TestServer::start_on(STORE);
    dashboard::admin::add_user(&s.db, "fay", PASSWORD).unwrap();
    let store = s.db.open(1).unwrap();
    let now = chrono::Utc::now().timestamp_micros();
    let minute = 60_000_000;
    // Both sessions are within their 12 h lifetime; one was last used 31
    // minutes ago (the default idle limit is 30), the other 5 minutes ago.
    for (secret, last_used) in [
        ("idle-secret", now - 31 * minute),
        ("fresh-secret", now - 5 * minute),
    ] {
        let hash = dashboard::auth::hash_secret(secret);
        store
            .session_insert(&hash, "fay", "csrf", now + 60 * minute, last_used)
            .unwrap();
    }
    let get = |secret: &str| {
        request(
            "GET",
            &s.url("/"),
            None,
            None,
            &[("cookie", &format!("ww_session={secret}"))],
        )
    };
    let idle = get("idle-secret");
    assert_eq!(idle.status, 303, "an idle session is over");
    assert_eq!(idle.header("location"), Some("/login"));
    assert_eq!(get("fresh-secret").status, 200);
    assert_eq!(get("idle-secret").status, 303, "and stays over");
}
