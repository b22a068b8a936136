//! The one place where a detector's finding becomes an `alert` event: the
//! alert body, what it is attached to, and its derived id.

use super::env::EventEnv;
use crate::detect::Finding;
use eve::{
    AlertEvent, Event, EventIdPrefix, EventKind, FileInfo, HttpInfo, NetworkFields, Timestamp,
    TlsInfo,
};

/// What an alert is about, besides its flow.
// Built once per alert and moved straight into it: boxing the large
// variant would only add an allocation.
#[allow(clippy::large_enum_variant)]
pub(super) enum Subject {
    /// A flow detector's finding on the whole flow.
    Flow {
        /// The flow's TLS metadata, if any.
        tls: Option<TlsInfo>,
    },
    /// An object detector's finding on the object with this index in its
    /// connection.
    Object {
        /// The object's index in its connection.
        index: u32,
        /// A snapshot of the object (it may still be running).
        fileinfo: FileInfo,
        /// The HTTP transaction that carried it.
        http: Option<HttpInfo>,
        /// The TLS metadata of its direction.
        tls: Option<TlsInfo>,
    },
}

/// The `alert` event of `finding` by `detector` about `subject`, at `at`,
/// on the flow `net` whose event ids derive from `ids`.
pub(super) fn alert_event(
    env: &EventEnv<'_>,
    at: Timestamp,
    net: NetworkFields,
    ids: &EventIdPrefix,
    detector: &str,
    finding: Finding,
    subject: Subject,
) -> Event {
    let mut evidence = finding.evidence;
    evidence.insert("detail".into(), finding.detail.into());
    let mut body = AlertEvent::new(
        eve::Alert::new(
            finding.sig.msg,
            finding.sig.sid,
            finding.category,
            finding.severity,
        )
        .rev(finding.sig.rev),
        evidence,
    );
    let id = match subject {
        Subject::Flow { tls } => {
            body.tls = tls;
            ids.id(format_args!("|flowalert|{detector}"))
        }
        Subject::Object {
            index,
            fileinfo,
            http,
            tls,
        } => {
            body.fileinfo = Some(fileinfo);
            body.http = http;
            body.tls = tls;
            ids.id(format_args!("|alert|{index}|{detector}"))
        }
    };
    Event::with_id(at, EventKind::Alert(Box::new(body)), id)
        .sensor(env.sensor_id)
        .network(net)
}
