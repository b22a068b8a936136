//! Weights in disguise: a weight file base64-encoded in JSON bodies (about
//! 5 MB in 7 POSTs), hex in a form field, and base64 of non-weights (random
//! bytes, a PNG-like image) in JSON, through the whole sensor; what was
//! decoded and inflated (and stopped by caps) counted in the `stats` event.

use crate::engine_support::{Frames, replay, write_pcap};
use base64::Engine;
use capture::detect::{DetectConfig, PolicyConfig, build};
use eve::{AlertCategory, EventKind, Evidence};
use fixtures::payload::Payload;
use fixtures::scenario;
use fixtures::tcp::SessionOptions;
use fixtures::weights::{DType, Format, ModelSpec, negative};

/// The weights alerts (category, evidence) of `bodies`, each PUT over HTTP
/// on its own connection.
fn alerts(bodies: &[Vec<u8>]) -> Vec<(AlertCategory, Evidence)> {
    sent(bodies).1
}

/// The run's `stats.detect` counters and the weights alerts of `bodies`.
fn sent(bodies: &[Vec<u8>]) -> (eve::Stats, Vec<(AlertCategory, Evidence)>) {
    let mut frames = Frames::default();
    for (i, body) in bodies.iter().enumerate() {
        scenario::http_upload_put(
            &mut frames,
            &SessionOptions::ipv4(43_000 + i as u16, 80),
            "/api/v1/notes",
            &Payload::Bytes(body),
        )
        .expect("session");
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let pcap = dir.path().join("encoded.pcap");
    write_pcap(&pcap, frames.0);
    let detectors =
        build(&PolicyConfig::default(), &DetectConfig::default(), None).expect("detectors");
    let (summary, events) = replay(&[pcap], 1, &detectors);
    let alerts = events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Alert(a) if a.alert.category.is_weights() => {
                Some((a.alert.category, a.evidence.clone()))
            }
            _ => None,
        })
        .collect();
    (summary.stats, alerts)
}

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

#[test]
fn base64_in_json_posts_raise_weights_alerts_naming_the_encoding() {
    let mut spec = ModelSpec::tiny();
    spec.vocab = 5000;
    let file = Format::Safetensors.write(&spec, DType::BF16, 51);
    let text = b64(&file.bytes);
    assert!(text.len() > 4_000_000, "{} base64 bytes", text.len());
    // Seven POSTs, each a JSON object with a piece of the text (cut on
    // 4-character groups, as a client splitting the encoding would).
    let piece = text.len().div_ceil(7).div_ceil(4) * 4;
    let bodies: Vec<Vec<u8>> = text
        .as_bytes()
        .chunks(piece)
        .enumerate()
        .map(|(i, c)| {
            format!(
                "{{\"note\": \"part {i}\", \"attachment\": \"{}\"}}",
                String::from_utf8_lossy(c)
            )
            .into_bytes()
        })
        .collect();
    assert_eq!(bodies.len(), 7);
    let got = alerts(&bodies);
    let format: Vec<&Evidence> = got
        .iter()
        .filter(|(c, _)| *c == AlertCategory::WeightsFormat)
        .map(|(_, e)| e)
        .collect();
    assert_eq!(format.len(), 1, "{got:?}");
    assert_eq!(format[0]["format"], "safetensors");
    assert_eq!(format[0]["encoding"], "base64");
    assert_eq!(format[0]["tensor_count"], spec.tensor_shapes().len());
    // The later posts carry headerless bf16 tensor bytes.
    let tensors = got
        .iter()
        .filter(|(c, e)| *c == AlertCategory::WeightsTensor && e["encoding"] == "base64")
        .count();
    assert!(tensors >= 3, "{got:?}");
    assert!(
        got.iter().all(|(_, e)| e["encoding"] == "base64"),
        "{got:?}"
    );
}

#[test]
fn hex_in_a_form_field_is_decoded() {
    let file = Format::Gguf.write(&ModelSpec::tiny(), DType::F16, 52);
    let body = format!("title=x&blob={}", hex::encode(&file.bytes[..400_000])).into_bytes();
    let got = alerts(&[body]);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].1["format"], "gguf");
    assert_eq!(got[0].1["encoding"], "hex");
}

#[test]
fn base64_of_other_bytes_raises_no_weights_alert() {
    // Every negative kind of the tensor-statistics false-positive set.
    let bodies: Vec<Vec<u8>> = negative::KINDS
        .iter()
        .enumerate()
        .map(|(i, k)| {
            let bytes = negative::make(k, 60 + i as u64, 400_000).expect("kind");
            format!("{{\"file\": \"{k}\", \"data\": \"{}\"}}", b64(&bytes)).into_bytes()
        })
        .collect();
    let got = alerts(&bodies);
    assert!(got.is_empty(), "{got:?}");
}

#[test]
fn decodes_and_inflations_are_counted_in_stats() {
    use fixtures::weights::archive::{ZipMember, zip_with};
    let spec = ModelSpec::tiny();
    let small = Format::Safetensors.write(&spec, DType::BF16, 53).bytes;
    // Nothing to find: decoded until the window is full.
    let big = negative::make("random", 54, 1_500_000).expect("random");
    let member = |name: &str, data: Vec<u8>| ZipMember {
        name: name.into(),
        data,
        deflate: true,
    };
    let bodies = vec![
        // base64 in JSON, whole; then base64 longer than the window.
        format!("{{\"a\": \"{}\"}}", b64(&small)).into_bytes(),
        format!("{{\"a\": \"{}\"}}", b64(&big)).into_bytes(),
        // hex in a form field.
        format!("blob={}", hex::encode(&small[..200_000])).into_bytes(),
        // A zip whose deflated member is inflated to read its header, and
        // one whose member is a bomb (64 MiB of zeros) stopped at a cap.
        zip_with(&[member("model.safetensors", small.clone())], 1, false),
        zip_with(
            &[member("model.safetensors", vec![0u8; 64 << 20])],
            1,
            false,
        ),
        // Binary bytes: nothing decoded or inflated.
        small.clone(),
    ];
    let (stats, _) = sent(&bodies);
    let got = |k: &str| stats.get("detect", k);
    assert_eq!(got("base64_bodies"), 2, "{stats:?}");
    assert_eq!(got("hex_bodies"), 1, "{stats:?}");
    assert_eq!(got("decode_capped"), 1, "{stats:?}");
    assert_eq!(got("inflated_objects"), 2, "{stats:?}");
    assert!(got("inflated_members") >= 2, "{stats:?}");
    assert_eq!(got("inflate_capped"), 1, "{stats:?}");
}
