//! Sign-in under attack (issue 14, item 11): floods of wrong passwords
//! against the hashing budget, and guessing that must not lock the real
//! user out from another address.

use super::STORE;
use crate::common::*;
use dashboard::DashboardConfig;

fn login_from(s: &TestServer, from: &str, user: &str, password: &str) -> (u16, String) {
    request_from(
        from,
        s.addr,
        "POST",
        "/login",
        &format!("username={user}&password={password}"),
    )
}

/// The password, and as a form sends it.
const PASSWORD: &str = "correct horse battery staple";
const PASSWORD_FORM: &str = "correct+horse+battery+staple";

// 11: bounded password hashing; no lock-out from another address

#[test]
fn password_hashing_is_bounded_and_excess_sign_ins_are_told_to_wait() {
    let cfg = DashboardConfig {
        password_hash_concurrency: 1,
        password_hash_queue: 1,
        login_attempts_per_minute: 100,
        ..DashboardConfig::default()
    };
    let s = TestServer::with_config_on(STORE, cfg);
    dashboard::admin::add_user(&s.db, "ana", PASSWORD).unwrap();
    let start = std::sync::Barrier::new(8);
    let answers: Vec<(u16, String)> = std::thread::scope(|t| {
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let (s, start) = (&s, &start);
                t.spawn(move || {
                    start.wait();
                    login_from(s, "127.0.0.1", &format!("user{i}"), "wrong-password")
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let statuses: Vec<u16> = answers.iter().map(|a| a.0).collect();
    let busy = answers.iter().filter(|a| a.0 == 503).count();
    assert!(busy >= 1, "{statuses:?}");
    assert!(
        statuses.iter().filter(|&&c| c == 401).count() >= 2,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|c| [401, 503].contains(c)),
        "{statuses:?}"
    );
    for (_, raw) in answers.iter().filter(|a| a.0 == 503) {
        assert!(raw.to_ascii_lowercase().contains("retry-after:"), "{raw}");
    }
    // Once the flood is over, the right password works.
    assert_eq!(login_from(&s, "127.0.0.1", "ana", PASSWORD_FORM).0, 303);
}

#[test]
fn failed_sign_ins_from_one_address_do_not_lock_the_user_out_elsewhere() {
    let cfg = DashboardConfig {
        login_attempts_per_minute: 5,
        ..DashboardConfig::default()
    };
    let s = TestServer::with_config_on(STORE, cfg);
    dashboard::admin::add_user(&s.db, "ana", PASSWORD).unwrap();
    // An attacker at 127.0.0.1 guesses ana's password until refused.
    let statuses: Vec<u16> = (0..8)
        .map(|_| login_from(&s, "127.0.0.1", "ana", "wrong-password").0)
        .collect();
    assert_eq!(statuses[0], 401, "{statuses:?}");
    assert!(statuses.contains(&429), "{statuses:?}");
    // The attacker is held back even with the right password...
    let (code, raw) = login_from(&s, "127.0.0.1", "ana", PASSWORD_FORM);
    assert_eq!(code, 429, "{raw}");
    assert!(raw.to_ascii_lowercase().contains("retry-after:"), "{raw}");
    // ...while ana signs in from her own address.
    let (code, raw) = login_from(&s, "127.0.0.2", "ana", PASSWORD_FORM);
    assert_eq!(code, 303, "{raw}");
    assert!(raw.contains("ww_session="), "{raw}");
    // One address failing with many names is limited too.
    let statuses: Vec<u16> = (0..7)
        .map(|i| login_from(&s, "127.0.0.3", &format!("name{i}"), "wrong-password").0)
        .collect();
    assert_eq!(&statuses[..5], &[401; 5], "{statuses:?}");
    assert_eq!(&statuses[5..], &[429; 2], "{statuses:?}");
}
