//! Helpers shared by the detector tests: feed bytes through a detector's
//! per-object scan in random chunkings, and build synthetic flow views.

use capture::detect::{Detector, Finding, FlowScan, FlowView};
use capture::object::{AppProto, ObjectEnd, ObjectMeta};
use eve::{NetworkFields, Proto, Timestamp, WeightFormat};
use fixtures::weights::Rng;
use std::net::IpAddr;

/// Feed `bytes` (starting at object offset `start`) to a fresh scan of
/// `det`, in random slices of 1..=`max_slice` bytes, then end it. Returns the
/// first finding and the format the scan recognised.
pub fn run_object(
    det: &dyn Detector,
    meta: &ObjectMeta,
    bytes: &[u8],
    start: u64,
    seed: u64,
    max_slice: u64,
) -> (Option<Finding>, Option<WeightFormat>) {
    let Some(mut scan) = det.begin(meta) else {
        return (None, None);
    };
    let mut rng = Rng::new(seed);
    let mut pos = 0usize;
    while pos < bytes.len() && !scan.done() {
        let n = (1 + rng.below(max_slice) as usize).min(bytes.len() - pos);
        if let Some(f) = scan.data(start + pos as u64, &bytes[pos..pos + n]) {
            return (Some(f), scan.format());
        }
        pos += n;
    }
    let f = if scan.done() {
        None
    } else {
        scan.end(ObjectEnd::Complete)
    };
    (f, scan.format())
}

/// Metadata of a download of `name` with a Content-Length.
pub fn meta(name: &str, len: usize) -> ObjectMeta {
    ObjectMeta {
        app_proto: AppProto::Http,
        filename: Some(name.to_string()),
        declared_size: Some(len as u64),
        ..ObjectMeta::default()
    }
}

/// Metadata of a mid-stream raw TCP object (no name, no size).
pub fn raw_midstream() -> ObjectMeta {
    ObjectMeta {
        app_proto: AppProto::Raw,
        midstream: true,
        ..ObjectMeta::default()
    }
}

/// Network fields of a TCP flow.
pub fn net(src: &str, dst: &str, dport: u16, app: &str, flow_id: u64) -> NetworkFields {
    let src: IpAddr = src.parse().expect("test address");
    let dst: IpAddr = dst.parse().expect("test address");
    let mut n = NetworkFields::new(
        flow_id,
        src,
        40_000 + (flow_id % 20_000) as u16,
        dst,
        dport,
        Proto::Tcp,
    );
    n.app_proto = Some(app.to_string());
    n
}

/// A flow view at `secs` seconds after the epoch-ish start.
pub fn view<'a>(
    net: &'a NetworkFields,
    sni: Option<&'a str>,
    up: u64,
    plain: Option<u64>,
    secs: f64,
) -> FlowView<'a> {
    FlowView {
        net,
        server_name: sni,
        payload_toserver: up,
        payload_toclient: 4096,
        plaintext_toserver: plain,
        encrypted: matches!(net.app_proto.as_deref(), Some("tls" | "ssh")),
        start: Timestamp::from_unix_micros(1_700_000_000_000_000),
        now: Timestamp::from_unix_micros(1_700_000_000_000_000 + (secs * 1e6) as i64),
    }
}

/// Drive a flow scan through byte counts `steps` (payload to server), return
/// every finding with the step index it came at.
pub fn drive(
    scan: &mut dyn FlowScan,
    net: &NetworkFields,
    sni: Option<&str>,
    steps: &[u64],
) -> Vec<(usize, Finding)> {
    let mut out = Vec::new();
    for (i, up) in steps.iter().enumerate() {
        if let Some(f) = scan.progress(&view(net, sni, *up, None, i as f64)) {
            out.push((i, f));
        }
    }
    out
}
