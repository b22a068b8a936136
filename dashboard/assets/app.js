// weightwatch dashboard: live alert and incident lists over server-sent events.
// Builds rows with textContent only (no HTML parsing), so event data stays text.
"use strict";

const CATEGORY = {
  weights_format: "Weight file format", weights_tensor: "Raw tensor data",
  weights_known: "Known weight file", egress_volume: "Upload volume",
  encrypted_size_match: "Encrypted size match", tensor_data: "Tensor data (not weights)",
  distillation: "Distillation", distillation_cluster: "Distillation cluster",
};
const SEVERITY = { 1: "High", 2: "Medium", 3: "Low" };
const STATUS = { new: "New", investigating: "Investigating", resolved: "Resolved", false_positive: "False positive" };

function fmtTime(ts) {
  const d = new Date(ts);
  if (isNaN(d)) return String(ts);
  return d.toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
}

function cell(tr, text, cls) {
  const td = document.createElement("td");
  if (cls) td.className = cls;
  if (text instanceof Node) td.appendChild(text); else td.textContent = text;
  tr.appendChild(td);
  return td;
}

function span(text, cls) {
  const s = document.createElement("span");
  s.className = cls;
  s.textContent = text;
  return s;
}

function subject(a) {
  if (a.account_id) return "account " + a.account_id;
  if (a.cluster_id) return "cluster " + a.cluster_id;
  const name = (a.tls && a.tls.sni) || (a.http && a.http.hostname);
  return (a.src_ip || "") + " → " + (a.dest_ip || "") + (name ? " (" + name + ")" : "");
}

function row(a) {
  const tr = document.createElement("tr");
  const sev = Number(a.alert && a.alert.severity) || 3;
  const cat = String((a.alert && a.alert.category) || "");
  tr.dataset.id = String(a.id);
  tr.className = "sev" + sev + " fresh";
  cell(tr, fmtTime(a.timestamp), "time");
  cell(tr, span(SEVERITY[sev] || "Low", "sev sev" + sev));
  cell(tr, span(CATEGORY[cat] || "Other", "cat cat-" + cat.replace(/[^a-z_]/g, "")));
  const link = document.createElement("a");
  link.href = "/alerts/" + encodeURIComponent(a.id);
  link.textContent = (a.alert && a.alert.signature) || "";
  cell(tr, link);
  cell(tr, subject(a), "subject");
  cell(tr, a.sensor_id || "");
  const st = String(a.status || "new");
  cell(tr, span(STATUS[st] || st, "status st-" + st.replace(/[^a-z_]/g, "")));
  return tr;
}

function matches(tbody, a) {
  const f = tbody.dataset;
  if (f.category && f.category !== (a.alert && a.alert.category)) return false;
  if (f.severity && f.severity !== String(a.alert && a.alert.severity)) return false;
  if (f.status && f.status !== a.status) return false;
  if (f.sensor && f.sensor !== a.sensor_id) return false;
  return true;
}

function liveAlerts(tbody) {
  const status = document.getElementById("live-status");
  const es = new EventSource("/api/v1/stream");
  es.addEventListener("alert", (ev) => {
    let a;
    try { a = JSON.parse(ev.data); } catch (_) { return; }
    if (!matches(tbody, a)) return;
    const empty = document.getElementById("no-alerts");
    if (empty) empty.remove();
    tbody.insertBefore(row(a), tbody.firstChild);
  });
  es.addEventListener("status", (ev) => {
    let u;
    try { u = JSON.parse(ev.data); } catch (_) { return; }
    const tr = tbody.querySelector('tr[data-id="' + Number(u.id) + '"]');
    if (!tr) return;
    const st = String(u.status);
    const s = tr.querySelector(".status");
    if (s) { s.textContent = STATUS[st] || st; s.className = "status st-" + st.replace(/[^a-z_]/g, ""); }
  });
  es.addEventListener("lagged", () => { if (status) status.textContent = "Missed some updates: reload to catch up."; });
  es.onerror = () => { if (status) status.textContent = "Live updates interrupted; retrying…"; };
  es.onopen = () => { if (status) status.textContent = "Live: new alerts appear at the top."; };
}

const KIND = { file: "Registered file", cluster: "Analyzer cluster", account: "Analyzer account", transfer: "Transfer", egress: "Egress" };

function fmtBytes(n) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
  let v = Number(n) || 0, u = 0;
  while (v >= 1024 && u < units.length - 1) { v /= 1024; u += 1; }
  return u === 0 ? v + " B" : v.toFixed(2) + " " + units[u];
}

function incidentMatches(tbody, i) {
  const f = tbody.dataset;
  if (f.kind && f.kind !== i.kind) return false;
  if (f.category && !(i.categories || []).includes(f.category)) return false;
  if (f.severity && f.severity !== String(i.severity)) return false;
  if (f.status && f.status !== i.status) return false;
  return true;
}

function incidentRow(i) {
  const tr = document.createElement("tr");
  const sev = Number(i.severity) || 3;
  tr.dataset.id = String(i.id);
  tr.className = "fresh";
  cell(tr, fmtTime(i.last_seen), "time").title = "first " + fmtTime(i.first_seen);
  cell(tr, span(SEVERITY[sev] || "Low", "sev sev" + sev));
  const link = document.createElement("a");
  link.href = "/incidents/" + encodeURIComponent(i.id);
  link.textContent = String(i.title || "");
  cell(tr, link);
  cell(tr, KIND[i.kind] || String(i.kind || ""));
  cell(tr, String(i.alert_count), "num");
  cell(tr, fmtBytes(i.bytes), "num");
  cell(tr, i.coverage == null ? "—" : (Number(i.coverage) * 100).toFixed(1) + " %", "num");
  const st = String(i.status || "new");
  cell(tr, span(STATUS[st] || st, "status st-" + st.replace(/[^a-z_]/g, "")));
  return tr;
}

function liveIncidents(tbody) {
  const status = document.getElementById("live-status");
  const es = new EventSource("/api/v1/stream");
  es.addEventListener("incident", (ev) => {
    let i;
    try { i = JSON.parse(ev.data); } catch (_) { return; }
    const old = tbody.querySelector('tr[data-id="' + Number(i.id) + '"]');
    if (old) old.remove();
    if (!incidentMatches(tbody, i)) return;
    const empty = document.getElementById("no-incidents");
    if (empty) empty.remove();
    tbody.insertBefore(incidentRow(i), tbody.firstChild);
  });
  es.addEventListener("lagged", () => { if (status) status.textContent = "Missed some updates: reload to catch up."; });
  es.onerror = () => { if (status) status.textContent = "Live updates interrupted; retrying…"; };
  es.onopen = () => { if (status) status.textContent = "Live: new and updated incidents move to the top."; };
}

document.addEventListener("DOMContentLoaded", () => {
  const tbody = document.getElementById("alert-rows");
  if (tbody && tbody.dataset.live === "1") liveAlerts(tbody);
  const incidents = document.getElementById("incident-rows");
  if (incidents && incidents.dataset.live === "1") liveIncidents(incidents);
});
