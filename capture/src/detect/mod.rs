//! Detectors: what turns objects and flows into alerts.
//!
//! Two seams:
//! - [`Detector`]: per object. `begin` returns a per-object [`ObjectScan`] fed
//!   the object's decoded bytes incrementally; it may return one [`Finding`]
//!   as soon as its evidence is in. One alert per detector per object: the
//!   engine stops feeding a scan once it has returned a finding or says `done`.
//! - [`FlowDetector`]: per flow, fed byte-count progress (egress volume,
//!   encrypted size match), for every protocol including encrypted ones.
//!
//! Adding a detector is one new module plus one line in the registry that
//! builds the [`Detectors`] set.

pub mod bench;
pub mod budget;
pub mod config;
pub mod egress;
pub mod encoded;
pub mod format;
pub mod inspect;
pub mod intel;
pub mod known;
pub mod sizematch;
pub mod stats;

pub use config::{DetectConfig, PolicyConfig};

use crate::object::{ObjectEnd, ObjectMeta};
use eve::{AlertCategory, Evidence, NetworkFields, Timestamp, WeightFormat};
use std::sync::Arc;

/// A map the workers share (per host or host pair, updated on a flow's
/// progress or an object's end): dashmap with foldhash, seeded at random
/// per map as the flow table is. Its default SipHash was most of the
/// egress window's lookup on the realistic capture.
pub(crate) type SharedMap<K, V> = dashmap::DashMap<K, V, foldhash::fast::RandomState>;

/// What a detector found; the engine turns it into an `alert` event carrying
/// the flow's ids and the object's metadata.
#[derive(Clone, Debug, PartialEq)]
pub struct Finding {
    /// Alert category.
    pub category: AlertCategory,
    /// The signature: its id, revision and fixed message (table in
    /// `docs/eve.md`).
    pub sig: &'static sig::Signature,
    /// The variable part of the message (what, how much, where), written
    /// to the alert's `evidence.detail`: `alert.signature` is fixed per id,
    /// as Suricata's rule message is.
    pub detail: String,
    /// 1 high … 3 low: reflects certainty and size.
    pub severity: u8,
    /// Why, in numbers.
    pub evidence: Evidence,
}

/// A per-object detector factory.
pub trait Detector: Send + Sync {
    /// Short name for stats and logs.
    fn name(&self) -> &'static str;
    /// Start scanning an object; `None` if this detector has no interest in it.
    fn begin(&self, meta: &ObjectMeta) -> Option<Box<dyn ObjectScan>>;
}

/// Per-object detector state.
pub trait ObjectScan: Send {
    /// The next decoded bytes, starting at `offset` within the object
    /// (offsets count gap bytes too).
    fn data(&mut self, offset: u64, bytes: &[u8]) -> Option<Finding>;
    /// `len` bytes were lost.
    fn gap(&mut self, _len: u64) {}
    /// The object ended.
    fn end(&mut self, state: ObjectEnd) -> Option<Finding>;
    /// The format this scan recognised, for `fileinfo.format`.
    fn format(&self) -> Option<WeightFormat> {
        None
    }
    /// True once the scan wants no more bytes (decided, or gave up).
    fn done(&self) -> bool {
        false
    }
    /// What the scan decoded on the way (read once, when the object ends).
    fn tally(&self) -> DecodeTally {
        DecodeTally::default()
    }
}

/// What detectors decoded inside objects, counted per object into the
/// `stats` event's `detect` section.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DecodeTally {
    /// Objects in which deflated zip members were inflated to read a header.
    pub inflated_objects: u64,
    /// Members inflated (the most in one attempt of each object).
    pub inflated_members: u64,
    /// Objects in which an inflation stopped at a cap (output size or ratio).
    pub inflate_capped: u64,
    /// Text bodies whose base64 runs were decoded.
    pub base64_bodies: u64,
    /// Text bodies whose hex runs were decoded.
    pub hex_bodies: u64,
    /// Text bodies whose decoding stopped at the window (`format_scan_bytes`
    /// decoded).
    pub decode_capped: u64,
}

impl DecodeTally {
    /// Add `other` into `self`.
    pub fn merge(&mut self, other: &DecodeTally) {
        self.inflated_objects += other.inflated_objects;
        self.inflated_members += other.inflated_members;
        self.inflate_capped += other.inflate_capped;
        self.base64_bodies += other.base64_bodies;
        self.hex_bodies += other.hex_bodies;
        self.decode_capped += other.decode_capped;
    }

    /// Every counter with its `stats.detect` key.
    pub fn counters(&self) -> [(&'static str, u64); 6] {
        [
            ("inflated_objects", self.inflated_objects),
            ("inflated_members", self.inflated_members),
            ("inflate_capped", self.inflate_capped),
            ("base64_bodies", self.base64_bodies),
            ("hex_bodies", self.hex_bodies),
            ("decode_capped", self.decode_capped),
        ]
    }
}

/// A flow as flow detectors see it.
#[derive(Clone, Debug)]
pub struct FlowView<'a> {
    /// The flow's 5-tuple, ids and app_proto (src is the client).
    pub net: &'a NetworkFields,
    /// TLS SNI or HTTP Host: the destination's name when known.
    pub server_name: Option<&'a str>,
    /// Payload bytes client → server so far (TCP/UDP payload, not headers).
    pub payload_toserver: u64,
    /// Payload bytes server → client so far.
    pub payload_toclient: u64,
    /// Estimated plaintext bytes client → server for encrypted flows
    /// (TLS/SSH: payload less record overhead), when known.
    pub plaintext_toserver: Option<u64>,
    /// Whether the payload is encrypted (TLS, SSH).
    pub encrypted: bool,
    /// First packet time.
    pub start: Timestamp,
    /// Current packet time.
    pub now: Timestamp,
}

/// A per-flow detector factory.
pub trait FlowDetector: Send + Sync {
    /// Short name for stats and logs.
    fn name(&self) -> &'static str;
    /// Start watching a flow; `None` if not interested.
    fn begin(&self, flow: &FlowView<'_>) -> Option<Box<dyn FlowScan>>;
}

/// Per-flow detector state.
pub trait FlowScan: Send {
    /// Called as the flow's payload grows (at least at every `progress_bytes`
    /// of new payload, on each app-layer metadata change, and when payload
    /// changes direction: a reply).
    fn progress(&mut self, flow: &FlowView<'_>) -> Option<Finding>;
    /// Called once when the flow ends or expires.
    fn end(&mut self, flow: &FlowView<'_>) -> Option<Finding>;
}

/// The detectors a sensor runs, shared by all workers.
#[derive(Clone, Default)]
pub struct Detectors {
    /// Per-object detectors.
    pub object: Vec<Arc<dyn Detector>>,
    /// Per-flow detectors.
    pub flow: Vec<Arc<dyn FlowDetector>>,
}

impl Detectors {
    /// No detectors (engine-only benchmarks).
    pub fn none() -> Self {
        Detectors::default()
    }

    /// Add the threat-intelligence detector over `intel` (`[intel] lists`).
    pub fn with_intel(mut self, intel: Arc<intel::Intel>) -> Self {
        self.flow.push(Arc::new(intel::IntelDetector::new(intel)));
        self
    }
}

/// Why the detector set could not be built (bad policy, unreadable index).
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The policy or thresholds are invalid.
    #[error("invalid detector configuration: {0}")]
    Config(String),
    /// The known-weights index could not be read.
    #[error(transparent)]
    Index(#[from] known::IndexError),
}

/// Build the detectors from configuration (and a known-weights index):
/// format fingerprints, tensor statistics, known weights (with an index),
/// egress volume per flow and per window, and the encrypted size match
/// (with an index). `[detect] disabled` switches any of them off.
pub fn build(
    policy: &PolicyConfig,
    detect: &DetectConfig,
    index: Option<&std::path::Path>,
) -> Result<Detectors, BuildError> {
    detect.validate().map_err(BuildError::Config)?;
    let pol = Arc::new(egress::Policy::from_config(policy).map_err(BuildError::Config)?);
    let cfg = Arc::new(detect.clone());
    let index = match index {
        Some(p) => Some(Arc::new(known::Index::read(p)?)),
        None => None,
    };
    let mut d = Detectors::none();
    if cfg.enabled("format") {
        d.object
            .push(Arc::new(format::FormatDetector::new(cfg.clone())));
    }
    if cfg.enabled("encoded") {
        d.object
            .push(Arc::new(encoded::EncodedDetector::new(cfg.clone())));
    }
    if cfg.enabled("tensor_stats") {
        d.object
            .push(Arc::new(stats::TensorStatsDetector::new(cfg.clone())));
    }
    if let Some(idx) = &index
        && cfg.enabled("known_weights")
    {
        d.object.push(Arc::new(known::KnownWeightsDetector::new(
            idx.clone(),
            cfg.clone(),
        )));
    }
    if cfg.enabled("egress_flow") {
        d.flow
            .push(Arc::new(egress::EgressFlowDetector::new(pol.clone())));
    }
    if cfg.enabled("egress_window") {
        let skip_single = cfg.enabled("egress_flow");
        d.flow.push(Arc::new(egress::EgressWindowDetector::new(
            pol.clone(),
            skip_single,
        )));
    }
    if !policy.budgets.is_empty() && cfg.enabled("egress_budget") {
        d.flow.push(Arc::new(
            budget::BudgetDetector::new(pol.clone(), &policy.budgets, policy.max_tracked_pairs)
                .map_err(BuildError::Config)?,
        ));
    }
    if let Some(idx) = &index
        && cfg.enabled("size_match")
    {
        d.flow.push(Arc::new(sizematch::SizeMatchDetector::new(
            idx,
            pol.clone(),
            cfg.clone(),
        )));
    }
    Ok(d)
}

/// The sensor's signatures: ids, revisions and fixed messages (the table in
/// `docs/eve.md`). Every alert's `alert.signature` is its id's message, as a
/// Suricata rule's `msg` is; what varies goes to `evidence.detail`.
pub mod sig {
    use eve::WeightFormat;

    /// One signature, as Suricata logs a rule: generator id 1 (the
    /// `alert.gid` of every weightwatch alert, [`eve::Alert::GID`]), this
    /// id, its revision and its message.
    #[derive(Debug, PartialEq, Eq)]
    pub struct Signature {
        /// `alert.signature_id`.
        pub sid: u32,
        /// `alert.rev`: raised when the signature's meaning changes.
        pub rev: u32,
        /// `alert.signature`: fixed for the id.
        pub msg: &'static str,
    }

    const fn s(sid: u32, msg: &'static str) -> Signature {
        Signature { sid, rev: 1, msg }
    }

    /// Weights formats, `4100001 + n` in [`WeightFormat`] order (see [`format`]).
    static FORMATS: [Signature; 20] = [
        s(4_100_001, "WEIGHTWATCH model weights: safetensors"),
        s(4_100_002, "WEIGHTWATCH model weights: gguf"),
        s(4_100_003, "WEIGHTWATCH model weights: pytorch_zip"),
        s(4_100_004, "WEIGHTWATCH model weights: pytorch_pickle"),
        s(4_100_005, "WEIGHTWATCH model weights: onnx"),
        s(4_100_006, "WEIGHTWATCH model weights: npy"),
        s(4_100_007, "WEIGHTWATCH model weights: npz"),
        s(4_100_008, "WEIGHTWATCH model weights: hdf5"),
        s(4_100_009, "WEIGHTWATCH model weights: tflite"),
        s(4_100_010, "WEIGHTWATCH model weights: tf_checkpoint"),
        s(4_100_011, "WEIGHTWATCH model weights: tar"),
        s(4_100_012, "WEIGHTWATCH model weights: zip"),
        s(4_100_013, "WEIGHTWATCH model weights: raw_tensor"),
        s(4_100_014, "WEIGHTWATCH model weights: unknown container"),
        s(4_100_015, "WEIGHTWATCH model weights: joblib"),
        s(4_100_016, "WEIGHTWATCH model weights: flax_msgpack"),
        s(4_100_017, "WEIGHTWATCH model weights: openvino"),
        s(4_100_018, "WEIGHTWATCH model weights: coreml"),
        s(4_100_019, "WEIGHTWATCH model weights: llamafile"),
        s(4_100_020, "WEIGHTWATCH model weights: pickle"),
    ];
    /// A tensor container that is not weights (`tensor_data`).
    pub static TENSOR_DATA: Signature = s(4_100_100, "WEIGHTWATCH tensor data, not model weights");
    /// Headerless tensor data recognised by its statistics.
    pub static TENSOR_STATS: Signature = s(4_100_200, "WEIGHTWATCH headerless tensor data");
    /// Chunks of a registered weight file.
    pub static KNOWN_WEIGHTS: Signature = s(
        4_100_300,
        "WEIGHTWATCH known weights: chunks of a registered weight file",
    );
    /// One flow's upload over the threshold.
    pub static EGRESS_FLOW: Signature = s(
        4_100_400,
        "WEIGHTWATCH egress volume: one flow uploaded over the threshold to a destination not allowed",
    );
    /// A (host, destination) pair's upload within the window over the threshold.
    pub static EGRESS_WINDOW: Signature = s(
        4_100_401,
        "WEIGHTWATCH egress volume: one host uploaded over the threshold to a destination not allowed within the window",
    );
    /// A host's or (host, destination) pair's bytes over an egress budget.
    pub static EGRESS_BUDGET: Signature = s(
        4_100_402,
        "WEIGHTWATCH egress budget: a host or host-destination pair sent more than its budget within the window",
    );
    /// Encrypted upload the size of a registered weight file.
    pub static SIZE_MATCH: Signature = s(
        4_100_500,
        "WEIGHTWATCH encrypted upload the size of a registered weight file",
    );
    /// TCP segments overlapping earlier bytes of the flow with different
    /// data (Suricata's `stream-event:reassembly_overlap_different_data`,
    /// sid 2210050).
    pub static STREAM_OVERLAP_DIFFERENT_DATA: Signature =
        s(4_100_600, "STREAM reassembly overlap with different data");
    /// IP fragments overlapping with different data (Suricata's
    /// `ipv4.frag_overlap` / `ipv6.frag_overlap`, sids 2200070/2200072).
    pub static FRAGMENT_OVERLAP_DIFFERENT_DATA: Signature =
        s(4_100_601, "FRAG overlap with different data");

    /// A flow to a listed address or domain (`intel_match`).
    pub static INTEL_MATCH: Signature = s(
        4_100_700,
        "WEIGHTWATCH threat intelligence: flow to a listed address or domain",
    );

    /// The signature of a weights-format alert for `f`.
    pub fn format(f: WeightFormat) -> &'static Signature {
        &FORMATS[match f {
            WeightFormat::Safetensors => 0,
            WeightFormat::Gguf => 1,
            WeightFormat::PytorchZip => 2,
            WeightFormat::PytorchPickle => 3,
            WeightFormat::Onnx => 4,
            WeightFormat::Npy => 5,
            WeightFormat::Npz => 6,
            WeightFormat::Hdf5 => 7,
            WeightFormat::Tflite => 8,
            WeightFormat::TfCheckpoint => 9,
            WeightFormat::Tar => 10,
            WeightFormat::Zip => 11,
            WeightFormat::RawTensor => 12,
            WeightFormat::Unknown => 13,
            WeightFormat::Joblib => 14,
            WeightFormat::FlaxMsgpack => 15,
            WeightFormat::Openvino => 16,
            WeightFormat::Coreml => 17,
            WeightFormat::Llamafile => 18,
            WeightFormat::Pickle => 19,
        }]
    }

    /// Every signature of the sensor, by id.
    pub fn all() -> impl Iterator<Item = &'static Signature> {
        FORMATS.iter().chain([
            &TENSOR_DATA,
            &TENSOR_STATS,
            &KNOWN_WEIGHTS,
            &EGRESS_FLOW,
            &EGRESS_WINDOW,
            &EGRESS_BUDGET,
            &SIZE_MATCH,
            &STREAM_OVERLAP_DIFFERENT_DATA,
            &FRAGMENT_OVERLAP_DIFFERENT_DATA,
            &INTEL_MATCH,
        ])
    }
}
