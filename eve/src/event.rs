//! Typed events: `flow`, `fileinfo`, `alert` and `stats`, serialized to exactly
//! the JSON of `shared/spec/event-output.md` (extensions in `docs/eve.md`).
//!
//! An [`Event`] is the common envelope (time, id, sensor, network 5-tuple) plus
//! one [`EventKind`], whose variant decides `event_type` and the body keys.

use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::IpAddr;

/// Free-form, numeric-first explanation attached to an alert ("why, in numbers").
pub type Evidence = serde_json::Map<String, serde_json::Value>;

/// One EVE event: the envelope shared by every event type plus its body.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Packet time for the sensor; wall-clock or log time for the analyzer.
    pub timestamp: Timestamp,
    /// Unique id (a UUID), kept across retries so receivers can drop duplicates.
    pub event_id: String,
    /// Which sensor or analyzer instance produced the event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sensor_id: Option<String>,
    /// The flow's 5-tuple and ids, for network events.
    #[serde(flatten, default, skip_serializing_if = "Option::is_none")]
    pub net: Option<NetworkFields>,
    /// The event body; its variant is the `event_type`.
    #[serde(flatten)]
    pub kind: EventKind,
}

impl Event {
    /// A new event with a fresh random (v4) id.
    pub fn new(timestamp: Timestamp, kind: EventKind) -> Self {
        Event {
            timestamp,
            event_id: uuid::Uuid::new_v4().to_string(),
            sensor_id: None,
            net: None,
            kind,
        }
    }

    /// A new event whose id is derived from `name` (UUID v5): the same inputs
    /// always give the same id, so replaying a capture twice into a dashboard
    /// stores each event once.
    pub fn with_derived_id(timestamp: Timestamp, kind: EventKind, name: &str) -> Self {
        Event::with_id(timestamp, kind, derived_event_id(name))
    }

    /// A new event with the id `event_id` (one of [`EventIdPrefix::id`]'s).
    pub fn with_id(timestamp: Timestamp, kind: EventKind, event_id: String) -> Self {
        // Not through `new`: a random id drawn only to be replaced cost a
        // system call per event on the sensor's hot path.
        Event {
            timestamp,
            event_id,
            sensor_id: None,
            net: None,
            kind,
        }
    }

    /// Set the sensor id (builder style).
    pub fn sensor(mut self, sensor_id: impl Into<String>) -> Self {
        self.sensor_id = Some(sensor_id.into());
        self
    }

    /// Set the network fields (builder style).
    pub fn network(mut self, net: NetworkFields) -> Self {
        self.net = Some(net);
        self
    }

    /// The `event_type` string of this event.
    pub fn event_type(&self) -> &'static str {
        self.kind.event_type()
    }

    /// One line of EVE JSON (no trailing newline).
    pub fn to_json_line(&self) -> String {
        // Serializing these types cannot fail: every map key is a string.
        serde_json::to_string(self).expect("event serializes")
    }
}

/// A UUID v5 (in weightwatch's namespace) derived from `name`.
pub fn derived_event_id(name: &str) -> String {
    EventIdPrefix::new(name).id(format_args!(""))
}

/// weightwatch's UUID v5 namespace for derived event ids.
const ID_NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x5d2c_8a8e_6a0e_4f5e_9a8b_77c1_0e4e_a001);

/// The derived ids of events whose names share a prefix (the events of one
/// flow): [`derived_event_id`] of `prefix` followed by each id's own suffix,
/// without building the name. SHA-1 over the namespace and the prefix is
/// computed once and its state cloned per id; SHA-1 is the `sha1` crate's,
/// which uses the CPU's SHA instructions where there are some (`uuid`'s own
/// v5 goes through a portable SHA-1 and a string per name: together 3.5 %
/// of a capture worker's instructions). The ids are the same UUIDs v5
/// `uuid::Uuid::new_v5` gives for the whole name.
#[derive(Clone)]
pub struct EventIdPrefix {
    sha: sha1::Sha1,
}

impl std::fmt::Debug for EventIdPrefix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EventIdPrefix")
    }
}

/// Feeds formatted text to SHA-1 (so a name is hashed as it is written).
struct HashWriter(sha1::Sha1);

impl std::fmt::Write for HashWriter {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        sha1::Digest::update(&mut self.0, s.as_bytes());
        Ok(())
    }
}

impl EventIdPrefix {
    /// The ids of names that start with `prefix`.
    pub fn new(prefix: &str) -> Self {
        use sha1::Digest;
        let mut sha = sha1::Sha1::new();
        sha.update(ID_NAMESPACE.as_bytes());
        sha.update(prefix.as_bytes());
        EventIdPrefix { sha }
    }

    /// The id of the name `prefix` + `suffix`, e.g. `format_args!("|fileinfo|{index}")`.
    pub fn id(&self, suffix: std::fmt::Arguments<'_>) -> String {
        use sha1::Digest;
        use std::fmt::Write;
        let mut w = HashWriter(self.sha.clone());
        // Writing into a hasher cannot fail.
        let _ = w.write_fmt(suffix);
        let digest = w.0.finalize();
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        let uuid = uuid::Builder::from_sha1_bytes(bytes).into_uuid();
        let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
        uuid.hyphenated().encode_lower(&mut buf).to_owned()
    }
}

/// Transport protocol of a flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Proto {
    /// TCP (IP protocol 6).
    #[serde(rename = "TCP")]
    Tcp,
    /// UDP (IP protocol 17).
    #[serde(rename = "UDP")]
    Udp,
}

impl Proto {
    /// IANA protocol number.
    #[inline]
    pub fn number(self) -> u8 {
        match self {
            Proto::Tcp => 6,
            Proto::Udp => 17,
        }
    }
}

/// The envelope fields of a network event. `src` is the client when known.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkFields {
    /// Sensor-local flow id, shared by every event of one flow.
    pub flow_id: u64,
    /// Community ID v1, seed 0.
    pub community_id: String,
    /// Client address.
    pub src_ip: IpAddr,
    /// Client port.
    pub src_port: u16,
    /// Server address.
    pub dest_ip: IpAddr,
    /// Server port.
    pub dest_port: u16,
    /// Transport protocol.
    pub proto: Proto,
    /// Application protocol: `http`, `tls`, `ssh`, `raw`, …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_proto: Option<String>,
    /// 802.1Q VLAN ids of the flow, outer first (as Suricata's `vlan`);
    /// absent when untagged or when the sensor does not track VLANs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vlan: Option<Vec<u16>>,
}

impl NetworkFields {
    /// Build the fields, computing the Community ID (seed 0) from the tuple.
    pub fn new(
        flow_id: u64,
        src_ip: IpAddr,
        src_port: u16,
        dest_ip: IpAddr,
        dest_port: u16,
        proto: Proto,
    ) -> Self {
        let community_id =
            crate::community_id_v1(0, src_ip, src_port, dest_ip, dest_port, proto.number());
        NetworkFields {
            flow_id,
            community_id,
            src_ip,
            src_port,
            dest_ip,
            dest_port,
            proto,
            app_proto: None,
            vlan: None,
        }
    }
}

/// The body of an event; the variant name is the `event_type`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event_type", rename_all = "lowercase")]
pub enum EventKind {
    /// A finished, expired or (interim) long-lived flow.
    Flow(FlowEvent),
    /// One transferred object.
    Fileinfo(FileinfoEvent),
    /// A detection.
    Alert(Box<AlertEvent>),
    /// Counters of a sensor or analyzer.
    Stats(StatsEvent),
}

impl EventKind {
    /// The `event_type` string.
    pub fn event_type(&self) -> &'static str {
        match self {
            EventKind::Flow(_) => "flow",
            EventKind::Fileinfo(_) => "fileinfo",
            EventKind::Alert(_) => "alert",
            EventKind::Stats(_) => "stats",
        }
    }
}

/// Body of a `flow` event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FlowEvent {
    /// Counters and state.
    pub flow: FlowRecord,
    /// TLS handshake metadata when the flow is TLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsInfo>,
    /// SSH banners when the flow is SSH.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh: Option<SshInfo>,
    /// TCP stream properties when the flow is TCP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp: Option<TcpInfo>,
}

/// `flow.*`: packet and byte counters per direction, times, state and reason.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FlowRecord {
    /// Packets client → server.
    pub pkts_toserver: u64,
    /// Packets server → client.
    pub pkts_toclient: u64,
    /// Bytes (IP layer) client → server.
    pub bytes_toserver: u64,
    /// Bytes (IP layer) server → client.
    pub bytes_toclient: u64,
    /// First packet.
    pub start: Timestamp,
    /// Last packet.
    pub end: Timestamp,
    /// Connection state when the event was written.
    pub state: FlowState,
    /// Why the event was written.
    pub reason: FlowReason,
    /// Estimated application plaintext bytes client → server (TLS/SSH:
    /// payload less record overhead). An extension; see `docs/eve.md`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plaintext_toserver: Option<u64>,
    /// Estimated application plaintext bytes server → client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plaintext_toclient: Option<u64>,
}

/// State of a flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FlowState {
    /// Only one side seen, or handshake incomplete.
    New,
    /// Data flowing.
    Established,
    /// FIN or RST seen.
    Closed,
}

/// Why a `flow` event was written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FlowReason {
    /// Idle or absolute timeout.
    Timeout,
    /// Evicted to stay within the flow-table limit.
    Forced,
    /// The sensor stopped (end of file or signal).
    Shutdown,
    /// Not written any more (sensors before December 2026 wrote it for a
    /// connection ended by FIN/RST; Suricata, and now the sensor, write
    /// `timeout` or `shutdown` with `state: closed`): read so that stored
    /// and spooled events of older sensors still parse.
    Closed,
    /// Interim update of a long-lived flow that is still running (our
    /// extension: Suricata writes one `flow` event per flow).
    Update,
}

/// TLS handshake metadata.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsInfo {
    /// Server Name Indication from the ClientHello.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sni: Option<String>,
    /// Negotiated (or offered) version, e.g. `TLS 1.3`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// JA4 client fingerprint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ja4: Option<String>,
    /// ALPN protocols offered by the client.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alpn: Vec<String>,
}

/// SSH banners.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SshInfo {
    /// The client's identification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<SshSoftware>,
    /// The server's identification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<SshSoftware>,
}

/// One side's SSH identification string, split as Suricata does.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SshSoftware {
    /// e.g. `2.0`.
    pub proto_version: String,
    /// e.g. `OpenSSH_9.2p1`.
    pub software_version: String,
}

/// TCP stream properties.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TcpInfo {
    /// Bytes were lost in at least one direction.
    pub gaps: bool,
    /// The sensor joined the connection after its handshake.
    pub midstream: bool,
    /// Bytes skipped in gaps, both directions (extension).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub gap_bytes: u64,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// Body of a `fileinfo` event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FileinfoEvent {
    /// The object.
    pub fileinfo: FileInfo,
    /// HTTP transaction metadata when the object is an HTTP body or part.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpInfo>,
    /// TLS metadata when the object is a TLS direction's stream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsInfo>,
}

/// `fileinfo.*`: one transferred object.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FileInfo {
    /// As Suricata: for HTTP the Content-Disposition filename, else the
    /// request's URI path (percent-decoded, no query); a multipart part's
    /// own filename.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
    /// Decoded bytes seen (after chunked and Content-Encoding decoding),
    /// plus the bytes lost in gaps (Suricata's tracked size).
    pub size: u64,
    /// SHA-256 of the decoded bytes (hex), unless hashing is off; never
    /// for a file with gaps. A `TRUNCATED` file without gaps has the hash
    /// of the bytes seen (a prefix of the file), as Suricata's
    /// `force-hash` writes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Whether the whole object was seen.
    pub state: FileState,
    /// Bytes were missing inside the object.
    pub gaps: bool,
    /// Which way the object travelled.
    pub direction: Direction,
    /// Recognised weight or container format.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<WeightFormat>,
    /// Declared content type (HTTP header or multipart part header).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
}

/// Whether an object was seen whole.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum FileState {
    /// Ended where its framing said it would, with no gap.
    Closed,
    /// Cut short (connection ended, limit hit, gap in framing), or with a
    /// gap anywhere inside.
    Truncated,
}

/// Direction relative to the client that opened the connection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Client → server (an upload).
    #[default]
    ToServer,
    /// Server → client (a download).
    ToClient,
}

impl Direction {
    /// Both directions, client → server first (in [`Direction::index`] order).
    pub const BOTH: [Direction; 2] = [Direction::ToServer, Direction::ToClient];

    /// The index of this direction in per-direction arrays: 0 client →
    /// server, 1 server → client.
    #[inline]
    pub fn index(self) -> usize {
        match self {
            Direction::ToServer => 0,
            Direction::ToClient => 1,
        }
    }

    /// The other direction.
    #[inline]
    pub fn reverse(self) -> Self {
        match self {
            Direction::ToServer => Direction::ToClient,
            Direction::ToClient => Direction::ToServer,
        }
    }
}

/// Recognised file formats of `fileinfo.format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WeightFormat {
    /// Hugging Face safetensors.
    Safetensors,
    /// llama.cpp GGUF.
    Gguf,
    /// `torch.save` zip archive.
    PytorchZip,
    /// Legacy `torch.save` pickle.
    PytorchPickle,
    /// ONNX ModelProto.
    Onnx,
    /// NumPy `.npy`.
    Npy,
    /// NumPy `.npz`.
    Npz,
    /// HDF5 (including Keras `.h5`).
    Hdf5,
    /// TensorFlow Lite flatbuffer.
    Tflite,
    /// TensorFlow checkpoint shard or index (extension).
    TfCheckpoint,
    /// Tar archive (possibly gzip/zstd compressed) of a model directory.
    Tar,
    /// Zip archive of a model directory (including `.keras`).
    Zip,
    /// Headerless tensor bytes recognised by their statistics.
    RawTensor,
    /// Not recognised.
    Unknown,
    /// A `joblib.dump` pickle (scikit-learn estimators and the like) with
    /// its arrays' raw bytes inline.
    Joblib,
    /// `flax.serialization.to_bytes`: msgpack maps of ndarray extensions.
    FlaxMsgpack,
    /// OpenVINO IR: the `.xml` graph that names its `.bin` weights.
    Openvino,
    /// Core ML `.mlmodel` (protobuf `Model`).
    Coreml,
    /// An executable carrying a GGUF model in its zip (llamafile).
    Llamafile,
    /// A plain pickle (`pickle.dump`) of an object holding NumPy arrays (a
    /// scikit-learn estimator), arrays pickled inline.
    Pickle,
}

impl WeightFormat {
    /// The snake_case name used in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            WeightFormat::Safetensors => "safetensors",
            WeightFormat::Gguf => "gguf",
            WeightFormat::PytorchZip => "pytorch_zip",
            WeightFormat::PytorchPickle => "pytorch_pickle",
            WeightFormat::Onnx => "onnx",
            WeightFormat::Npy => "npy",
            WeightFormat::Npz => "npz",
            WeightFormat::Hdf5 => "hdf5",
            WeightFormat::Tflite => "tflite",
            WeightFormat::TfCheckpoint => "tf_checkpoint",
            WeightFormat::Tar => "tar",
            WeightFormat::Zip => "zip",
            WeightFormat::RawTensor => "raw_tensor",
            WeightFormat::Unknown => "unknown",
            WeightFormat::Joblib => "joblib",
            WeightFormat::FlaxMsgpack => "flax_msgpack",
            WeightFormat::Openvino => "openvino",
            WeightFormat::Coreml => "coreml",
            WeightFormat::Llamafile => "llamafile",
            WeightFormat::Pickle => "pickle",
        }
    }
}

/// `http.*`: HTTP transaction metadata.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpInfo {
    /// Host header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// Request target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Request method.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_method: Option<String>,
    /// Response status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Content-Type of the message that carried the object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_content_type: Option<String>,
    /// User-Agent header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_user_agent: Option<String>,
    /// `HTTP/1.0` or `HTTP/1.1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
}

/// Body of an `alert` event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlertEvent {
    /// Signature, category and severity.
    pub alert: Alert,
    /// Why, in numbers.
    #[serde(default)]
    pub evidence: Evidence,
    /// The object that triggered a sensor alert, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fileinfo: Option<FileInfo>,
    /// HTTP metadata of that object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpInfo>,
    /// TLS metadata of the flow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsInfo>,
    /// Analyzer: the account flagged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    /// Analyzer: the cluster of accounts, for `distillation_cluster` (and the
    /// cluster an account belongs to, on `distillation`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_id: Option<String>,
    /// Analyzer: the cluster's member accounts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub members: Option<Vec<String>>,
}

impl AlertEvent {
    /// An alert with only its `alert` object and evidence filled in.
    pub fn new(alert: Alert, evidence: Evidence) -> Self {
        AlertEvent {
            alert,
            evidence,
            fileinfo: None,
            http: None,
            tls: None,
            account_id: None,
            cluster_id: None,
            members: None,
        }
    }
}

/// `alert.*`, with Suricata's fields and meanings: `gid`, `signature_id`
/// and `rev` name the rule, `signature` is the rule's fixed message (one
/// text per id; what varies is in the alert's `evidence`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Generator id: [`Alert::GID`] for every weightwatch rule (Suricata's
    /// rules are generator 1 too).
    #[serde(default = "gid")]
    pub gid: u32,
    /// The rule's fixed message (Suricata's `msg`).
    pub signature: String,
    /// Stable numeric rule id (see `docs/eve.md` for the table).
    pub signature_id: u32,
    /// Revision of the rule.
    #[serde(default = "first_rev")]
    pub rev: u32,
    /// What kind of detection.
    pub category: AlertCategory,
    /// 1 high … 3 low.
    pub severity: u8,
    /// Always `allowed`: weightwatch observes, it does not block.
    #[serde(default = "allowed")]
    pub action: String,
}

fn allowed() -> String {
    "allowed".to_string()
}

fn gid() -> u32 {
    Alert::GID
}

fn first_rev() -> u32 {
    1
}

impl Alert {
    /// The generator id of weightwatch's rules.
    pub const GID: u32 = 1;

    /// Set the rule's revision (builder style; 1 unless set).
    pub fn rev(mut self, rev: u32) -> Self {
        self.rev = rev;
        self
    }

    /// An alert of revision 1; severity is clamped into 1..=3.
    pub fn new(
        signature: impl Into<String>,
        signature_id: u32,
        category: AlertCategory,
        severity: u8,
    ) -> Self {
        Alert {
            gid: Alert::GID,
            signature: signature.into(),
            signature_id,
            rev: first_rev(),
            category,
            severity: severity.clamp(1, 3),
            action: allowed(),
        }
    }
}

/// Alert categories of the spec.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertCategory {
    /// A known weight file format was seen.
    WeightsFormat,
    /// Headerless tensor data recognised by its statistics.
    WeightsTensor,
    /// Chunks of a registered weight file were seen.
    WeightsKnown,
    /// Upload volume to a destination that policy does not allow.
    EgressVolume,
    /// Encrypted upload whose plaintext size matches a registered weight file.
    EncryptedSizeMatch,
    /// A tensor container without weights (e.g. a uint8 image `.npy`);
    /// low severity, an extension (`docs/eve.md`).
    TensorData,
    /// Traffic the sensor and the receiving host may read differently: an
    /// evasion attempt or a broken stack (Suricata's stream and decoder
    /// events, e.g. overlapping TCP segments with different data); severity
    /// 3, an extension (`docs/eve.md`).
    ProtocolAnomaly,
    /// A flow to an address or domain on a threat-intelligence list; an
    /// extension (`docs/eve.md`).
    IntelMatch,
    /// An account whose queries look like distillation.
    Distillation,
    /// A cluster of accounts that distils together.
    DistillationCluster,
}

impl AlertCategory {
    /// The snake_case name used in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertCategory::WeightsFormat => "weights_format",
            AlertCategory::WeightsTensor => "weights_tensor",
            AlertCategory::WeightsKnown => "weights_known",
            AlertCategory::EgressVolume => "egress_volume",
            AlertCategory::EncryptedSizeMatch => "encrypted_size_match",
            AlertCategory::TensorData => "tensor_data",
            AlertCategory::ProtocolAnomaly => "protocol_anomaly",
            AlertCategory::IntelMatch => "intel_match",
            AlertCategory::Distillation => "distillation",
            AlertCategory::DistillationCluster => "distillation_cluster",
        }
    }

    /// Every category, in display order.
    pub const ALL: [AlertCategory; 10] = [
        AlertCategory::WeightsFormat,
        AlertCategory::WeightsTensor,
        AlertCategory::WeightsKnown,
        AlertCategory::EgressVolume,
        AlertCategory::EncryptedSizeMatch,
        AlertCategory::TensorData,
        AlertCategory::ProtocolAnomaly,
        AlertCategory::IntelMatch,
        AlertCategory::Distillation,
        AlertCategory::DistillationCluster,
    ];

    /// Whether this category means "model weights may be moving" (the sensor's
    /// weight alerts, which the public corpus must never raise).
    pub fn is_weights(self) -> bool {
        matches!(
            self,
            AlertCategory::WeightsFormat
                | AlertCategory::WeightsTensor
                | AlertCategory::WeightsKnown
                | AlertCategory::EncryptedSizeMatch
        )
    }
}

/// Body of a `stats` event: named sections of counters.
///
/// Well-known sections and keys (see `docs/eve.md`): `capture.{packets, bytes,
/// kernel_packets, kernel_drops, queue_drops}`, `decoder.{<skip reason>}`,
/// `flow.{active, created, timed_out, evicted}`, `tcp.{gaps, gap_bytes,
/// midstream, reassembly_memcap_drops}`, `app.{http, tls, ssh, raw}`,
/// `analyzer.{rows, bad_rows, accounts, flagged}`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StatsEvent {
    /// The counters.
    pub stats: Stats,
}

/// Counters grouped in sections.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// Seconds since the producer started (packet time for offline replay).
    #[serde(default)]
    pub uptime: u64,
    /// The producer's software version (`weightwatch` 0.4.0 sends
    /// `"0.4.0"`), so the fleet view can show what each sensor runs; absent
    /// in reports of producers from before it was sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Sections of named counters.
    #[serde(flatten)]
    pub sections: BTreeMap<String, BTreeMap<String, u64>>,
}

impl Stats {
    /// Add `n` to counter `section.key`.
    pub fn add(&mut self, section: &str, key: &str, n: u64) {
        *self
            .sections
            .entry(section.to_string())
            .or_default()
            .entry(key.to_string())
            .or_default() += n;
    }

    /// Read counter `section.key` (0 when absent).
    pub fn get(&self, section: &str, key: &str) -> u64 {
        self.sections
            .get(section)
            .and_then(|s| s.get(key))
            .copied()
            .unwrap_or(0)
    }

    /// Add every counter of `other` into `self`.
    pub fn merge(&mut self, other: &Stats) {
        self.uptime = self.uptime.max(other.uptime);
        if self.version.is_none() {
            self.version.clone_from(&other.version);
        }
        for (section, counters) in &other.sections {
            for (key, n) in counters {
                self.add(section, key, *n);
            }
        }
    }
}
