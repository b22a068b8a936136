//! Response actions run by an analyst from an alert: the program gets the
//! alert's JSON (with the account id for an analyzer alert), the request and
//! its outcome are audited, and only triage-capable principals may run one.

use super::STORE;
use crate::common::{TestServer, account_alert};
use dashboard::Scope;
use eve::actions::ActionConfig;
use std::time::{Duration, Instant};

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
