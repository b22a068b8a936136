//! Response actions run by an analyst from an alert or an incident: the
//! program gets the alert's (incident's) JSON, with its placeholders filled
//! in (the account id of an analyzer alert, an incident's destination); a
//! webhook receiver on loopback gets the incident's JSON signed; the request
//! and its outcome are audited; only triage-capable principals may run one,
//! and the incident page's buttons are CSRF-checked forms.

use super::STORE;
use super::ui::{csrf_of, page, post_form, sign_in};
use crate::common::{TestServer, account_alert, cluster_alert, sensor_alert};
use dashboard::Scope;
use eve::AlertCategory;
use eve::actions::ActionConfig;
use hmac::{Hmac, Mac};
use serde_json::Value;
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The environment variable holding the webhook's key. The test process
/// cannot safely set one (its threads read the environment), so the key is
/// `PATH`'s value, which the test reads back to compute the signature.
const KEY_VAR: &str = "PATH";

/// A command that writes its argument to `<out>.arg` and its standard input
/// to `out`, then says `acted`.
fn recorder(name: &str, out: &Path, placeholder: &str) -> ActionConfig {
    let mut c = ActionConfig::named(name);
    c.command = Some(vec![
        "sh".into(),
        "-c".into(),
        "printf '%s' \"$1\" > \"$0.arg\" && cat > \"$0\" && echo acted".into(),
        out.display().to_string(),
        placeholder.into(),
    ]);
    c
}

/// The audit lines of incident `id` once `done` holds (or 30 s passed).
fn incident_audit(
    s: &TestServer,
    token: &str,
    id: i64,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = s.get(&format!("/api/v1/incidents/{id}"), Some(token));
        assert_eq!(r.status, 200, "{}", r.body);
        let lines = r.json()["audit"].as_array().unwrap().clone();
        if done(&lines) || Instant::now() > deadline {
            return lines;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One transfer incident: two alerts of one upload from 10.0.0.5 to
/// 198.51.100.7 (the first's id, hence its signature and the incident's
/// title, holds markup). Returns its id.
fn egress_incident(s: &TestServer, ingest: &str, read: &str) -> i64 {
    s.ingest(
        ingest,
        &[
            sensor_alert(
                "inc-<i>a</i>",
                10,
                AlertCategory::EgressVolume,
                2,
                7,
                "10.0.0.5",
                "198.51.100.7",
                "<b>drop</b>.example",
            ),
            sensor_alert(
                "inc-b",
                11,
                AlertCategory::WeightsFormat,
                1,
                7,
                "10.0.0.5",
                "198.51.100.7",
                "<b>drop</b>.example",
            ),
        ],
    );
    let list = s.get("/api/v1/incidents", Some(read)).json();
    let all = list["incidents"].as_array().unwrap();
    assert_eq!(all.len(), 1, "{all:#?}");
    assert_eq!(all[0]["dest_ips"], serde_json::json!(["198.51.100.7"]));
    all[0]["id"].as_i64().unwrap()
}

#[test]
fn analyst_runs_a_webhook_and_commands_on_an_incident() {
    let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let port = server.server_addr().to_ip().unwrap().port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        if let Ok(mut req) = server.recv() {
            let sig = req
                .headers()
                .iter()
                .find(|h| h.field.equiv("X-Weightwatch-Signature"))
                .map(|h| h.value.to_string())
                .unwrap_or_default();
            let mut body = Vec::new();
            req.as_reader().read_to_end(&mut body).unwrap();
            let _ = req.respond(tiny_http::Response::empty(200));
            let _ = tx.send((sig, body));
        }
    });
    let mut hook = ActionConfig::named("soc");
    hook.webhook = Some(format!("http://127.0.0.1:{port}/hook"));
    hook.secret_env = Some(KEY_VAR.into());
    let out_dir = tempfile::tempdir().unwrap();
    let out = out_dir.path().join("incident.json");
    let block = recorder("block", &out, "{dest_ip}");
    let suspend = recorder("suspend", &out_dir.path().join("unused"), "{account_id}");
    let s = TestServer::with_actions_on(STORE, vec![hook, block, suspend]);
    let (ingest, triage, read) = (
        s.token(Scope::Ingest),
        s.token(Scope::Triage),
        s.token(Scope::Read),
    );
    let id = egress_incident(&s, &ingest, &read);
    let path = |name: &str| format!("/api/v1/incidents/{id}/actions/{name}");

    let denied = s.post_json(&path("soc"), Some(&read), "");
    assert_eq!(denied.status, 403, "{}", denied.body);
    let unknown = s.post_json(&path("nope"), Some(&triage), "");
    assert_eq!(unknown.status, 404, "{}", unknown.body);
    let missing = s.post_json(
        &format!("/api/v1/incidents/{}/actions/soc", id + 1000),
        Some(&triage),
        "",
    );
    assert_eq!(missing.status, 404, "{}", missing.body);

    let before = s
        .get(&format!("/api/v1/incidents/{id}"), Some(&read))
        .json();
    for (name, want) in [
        ("soc", "queued"),
        ("block", "queued"),
        ("suspend", "skipped"),
    ] {
        let r = s.post_json(&path(name), Some(&triage), "");
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.json()["result"], want, "{name}");
    }

    // The webhook: the incident's JSON, signed under the key.
    let (sig, body) = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the webhook receiver was called");
    let key = std::env::var(KEY_VAR).unwrap();
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(&body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(sig, format!("sha256={hex}"), "signature over the body");
    let posted: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(posted["incident"], before["incident"]);
    assert_eq!(posted["alerts"], before["alerts"]);
    assert_eq!(posted["alerts"].as_array().unwrap().len(), 2);

    // Outcomes are audited on the incident (and show on its timeline).
    let audit = incident_audit(&s, &read, id, |lines| {
        lines
            .iter()
            .filter(|l| l["action"] == "action_result")
            .count()
            >= 2
    });
    for l in &audit {
        assert_eq!(l["incident_id"], id, "{l}");
        assert!(l["alert_id"].is_null(), "{l}");
    }
    let line = |action: &str, who: &str| {
        audit
            .iter()
            .find(|l| {
                l["action"] == action
                    && (l["detail"].as_str().unwrap().starts_with(who) || l["actor"] == who)
            })
            .unwrap_or_else(|| panic!("no {action} line for {who}: {audit:#?}"))
            .clone()
    };
    let asked = line("action", "suspend");
    assert!(asked["actor"].as_str().unwrap().starts_with("token:"));
    assert!(
        asked["detail"]
            .as_str()
            .unwrap()
            .contains(&format!("suspend: skipped (incident {id}")),
        "{asked}"
    );
    let hooked = line("action_result", "action:soc");
    let detail = hooked["detail"].as_str().unwrap();
    assert!(
        detail.contains("done") && detail.contains("HTTP 200"),
        "{detail}"
    );
    let blocked = line("action_result", "action:block");
    let detail = blocked["detail"].as_str().unwrap();
    assert!(
        detail.contains("done") && detail.contains("acted"),
        "{detail}"
    );
    let timeline = s
        .get(&format!("/api/v1/incidents/{id}"), Some(&read))
        .json()["timeline"]
        .clone();
    assert!(
        timeline
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["kind"] == "action"),
        "{timeline:#}"
    );

    // The command: its destination as the argument, the JSON on stdin.
    assert_eq!(
        std::fs::read_to_string(out.with_extension("json.arg")).unwrap(),
        "198.51.100.7"
    );
    let got: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(got["incident"], before["incident"]);
    assert_eq!(got["incident"]["src_ip"], "10.0.0.5");
}

#[test]
fn the_incident_page_offers_the_actions_as_csrf_checked_forms() {
    let out_dir = tempfile::tempdir().unwrap();
    let out = out_dir.path().join("incident.json");
    let s = TestServer::with_actions_on(STORE, vec![recorder("block", &out, "{src_ip}")]);
    let (ingest, read) = (s.token(Scope::Ingest), s.token(Scope::Read));
    let id = egress_incident(&s, &ingest, &read);
    let cookie = sign_in(&s, "ana");
    let html = page(&s, &format!("/incidents/{id}"), &cookie).body;
    assert!(
        html.contains(&format!("action=\"/incidents/{id}/action\"")),
        "{html}"
    );
    assert!(html.contains("Run block on the incident"), "{html}");
    let csrf = csrf_of(&html);
    let form = "name=block";
    let r = post_form(&s, &format!("/incidents/{id}/action"), &cookie, form);
    assert_eq!(r.status, 400, "a form without csrf is refused: {}", r.body);
    let r = post_form(
        &s,
        &format!("/incidents/{id}/action"),
        &cookie,
        &format!("csrf=wrong&{form}"),
    );
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(!out.exists(), "refused forms run nothing");
    let r = post_form(
        &s,
        &format!("/incidents/{id}/action"),
        &cookie,
        &format!("csrf={csrf}&{form}"),
    );
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(
        r.header("location"),
        Some(format!("/incidents/{id}").as_str())
    );
    let audit = incident_audit(&s, &read, id, |lines| {
        lines.iter().any(|l| l["action"] == "action_result")
    });
    let asked = audit
        .iter()
        .find(|l| l["action"] == "action")
        .expect("the request is audited");
    assert_eq!(asked["actor"], "user:ana");
    assert_eq!(
        std::fs::read_to_string(out.with_extension("json.arg")).unwrap(),
        "10.0.0.5"
    );
    // The request and outcome are on the incident's timeline, the title
    // they quote escaped.
    let html = page(&s, &format!("/incidents/{id}"), &cookie).body;
    assert!(
        html.contains("<b>action</b> user:ana: block: queued"),
        "{html}"
    );
    assert!(html.contains("inc-&#60;i&#62;a&#60;/i&#62;"), "{html}");
    assert!(!html.contains("<i>a</i>"), "{html}");
}

#[test]
fn analyst_runs_a_command_on_an_account_alert() {
    let out_dir = tempfile::tempdir().unwrap();
    let out = out_dir.path().join("alert.json");
    let mut record = ActionConfig::named("suspend-key");
    // Writes its argument (the account id) and its standard input to files.
    record.command = Some(vec![
        "sh".into(),
        "-c".into(),
        "printf '%s' \"$1\" > \"$0.arg\" && cat > \"$0\" && echo suspended".into(),
        out.display().to_string(),
        "{account_id}".into(),
    ]);
    let srv = TestServer::with_actions_on(STORE, vec![record]);
    let ingest = srv.token(Scope::Ingest);
    let triage = srv.token(Scope::Triage);
    let read = srv.token(Scope::Read);
    srv.ingest(
        &ingest,
        &[account_alert("acct-alert-1", 30, "acct-42", 0.97, None)],
    );
    let id = srv.all_alerts(&read, "")[0]["id"].as_i64().unwrap();
    let path = format!("/api/v1/alerts/{id}/actions/suspend-key");

    let denied = srv.post_json(&path, Some(&read), "");
    assert_eq!(
        denied.status, 403,
        "a read token may not run actions: {}",
        denied.body
    );
    let unknown = srv.post_json(
        &format!("/api/v1/alerts/{id}/actions/nope"),
        Some(&triage),
        "",
    );
    assert_eq!(unknown.status, 404, "{}", unknown.body);

    let r = srv.post_json(&path, Some(&triage), "");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["result"], "queued");

    // The outcome is audited by the action once the program has run.
    let deadline = Instant::now() + Duration::from_secs(30);
    let audit = loop {
        let a = srv.get("/api/v1/audit", Some(&read)).json();
        let lines = a["audit"].as_array().unwrap().clone();
        if lines.iter().any(|l| l["action"] == "action_result") || Instant::now() > deadline {
            break lines;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let requested = audit
        .iter()
        .find(|l| l["action"] == "action")
        .expect("the request is audited");
    assert_eq!(requested["alert_id"], id);
    assert!(requested["actor"].as_str().unwrap().starts_with("token:"));
    assert!(
        requested["detail"]
            .as_str()
            .unwrap()
            .contains("suspend-key: queued")
    );
    let result = audit
        .iter()
        .find(|l| l["action"] == "action_result")
        .expect("the outcome is audited");
    assert_eq!(result["actor"], "action:suspend-key");
    assert_eq!(result["alert_id"], id, "the outcome is on the alert");
    let detail = result["detail"].as_str().unwrap();
    assert!(
        detail.contains("done") && detail.contains("suspended"),
        "{detail}"
    );

    assert_eq!(
        std::fs::read_to_string(out.with_extension("json.arg")).unwrap(),
        "acct-42"
    );
    let sent: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(sent["event_id"], "acct-alert-1");
    assert_eq!(sent["account_id"], "acct-42");
}

#[test]
fn account_incidents_give_their_account_and_clusters_only_a_single_one() {
    let out_dir = tempfile::tempdir().unwrap();
    let out = out_dir.path().join("incident.json");
    let s = TestServer::with_actions_on(STORE, vec![recorder("suspend", &out, "{account_id}")]);
    let (ingest, triage, read) = (
        s.token(Scope::Ingest),
        s.token(Scope::Triage),
        s.token(Scope::Read),
    );
    s.ingest(
        &ingest,
        &[
            account_alert("acct-1", 30, "acct-42", 0.97, None),
            cluster_alert("clu-1", 40, "c-9", &["acct-7", "acct-8"]),
        ],
    );
    let list = s.get("/api/v1/incidents", Some(&read)).json();
    let id_of = |kind: &str| {
        list["incidents"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["kind"] == kind)
            .unwrap_or_else(|| panic!("no {kind} incident: {list:#}"))["id"]
            .as_i64()
            .unwrap()
    };
    let run = |id: i64| {
        let r = s.post_json(
            &format!("/api/v1/incidents/{id}/actions/suspend"),
            Some(&triage),
            "",
        );
        assert_eq!(r.status, 200, "{}", r.body);
        r.json()["result"].as_str().unwrap().to_string()
    };
    assert_eq!(run(id_of("cluster")), "skipped", "two accounts: which one?");
    let account = id_of("account");
    assert_eq!(run(account), "queued");
    incident_audit(&s, &read, account, |lines| {
        lines.iter().any(|l| l["action"] == "action_result")
    });
    assert_eq!(
        std::fs::read_to_string(out.with_extension("json.arg")).unwrap(),
        "acct-42"
    );
}
