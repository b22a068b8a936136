//! The second factor: TOTP (RFC 6238: HMAC-SHA-1, 6 digits, 30 s steps,
//! one step of clock skew either way, via `totp-rs`; each step's code is
//! accepted once per user) and one-time recovery codes. The TOTP secret
//! must be kept as is to check codes (it cannot be hashed); recovery codes
//! are stored as their SHA-256 only.

use crate::auth;
use rand::RngCore;
use totp_rs::{Algorithm, Secret, TOTP};

/// Recovery codes issued per enrolment.
pub const RECOVERY_CODES: usize = 10;
/// The issuer shown in authenticator apps.
pub const ISSUER: &str = "weightwatch";

/// What an enrolment hands the user, once.
#[derive(Clone, Debug)]
pub struct Enrollment {
    /// `otpauth://totp/…` for an authenticator app (or a QR code of it).
    pub uri: String,
    /// One-time recovery codes (`xxxxx-xxxxx`).
    pub recovery_codes: Vec<String>,
}

/// A new enrolment for `user`: its base32 secret (to store), what to show
/// the user, and the recovery codes' hashes (to store).
pub fn enroll(user: &str) -> (String, Enrollment, Vec<String>) {
    let mut raw = [0u8; 20]; // 160 bits, RFC 4226's recommendation
    rand::rng().fill_bytes(&mut raw);
    let secret = Secret::Raw(raw.to_vec()).to_encoded().to_string();
    let uri = totp(&secret, user).map(|t| t.get_url()).unwrap_or_default();
    let codes: Vec<String> = (0..RECOVERY_CODES).map(|_| recovery_code()).collect();
    let hashes = codes.iter().map(|c| recovery_hash(c)).collect();
    (
        secret,
        Enrollment {
            uri,
            recovery_codes: codes,
        },
        hashes,
    )
}

/// Length of a TOTP time step in seconds.
const STEP_SECS: u64 = 30;
/// Steps of clock skew accepted either side of the current one.
const SKEW_STEPS: u64 = 1;

/// The 30 s time step (Unix time / 30) whose TOTP code of `secret` is
/// `code`, looking at the step of `now_secs` and one either side; the
/// latest when several match. `None`: not a valid code now. The caller
/// accepts the step only once (`UserStore::user_use_totp_step`).
pub fn code_step(secret: &str, code: &str, now_secs: u64) -> Option<u64> {
    let code = code.trim();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let t = totp(secret, "user")?;
    let now = now_secs / STEP_SECS;
    // totp-rs's own skew check does not say which step matched, so each
    // step is checked alone (its comparison is constant-time).
    (now.saturating_sub(SKEW_STEPS)..=now + SKEW_STEPS)
        .rev()
        .find(|step| t.check(code, step * STEP_SECS))
}

/// Normalise a typed recovery code and hash it as stored.
pub fn recovery_hash(code: &str) -> String {
    auth::hash_secret(&code.trim().to_ascii_lowercase())
}

fn totp(secret: &str, user: &str) -> Option<TOTP> {
    let bytes = Secret::Encoded(secret.to_string()).to_bytes().ok()?;
    // Skew 0: `code_step` walks the steps itself.
    TOTP::new(
        Algorithm::SHA1,
        6,
        0,
        STEP_SECS,
        bytes,
        Some(ISSUER.to_string()),
        user.to_string(),
    )
    .ok()
}

/// Ten characters of a 32-letter alphabet (50 bits) as `xxxxx-xxxxx`.
fn recovery_code() -> String {
    const ALPHABET: &[u8; 32] = b"abcdefghijkmnpqrstuvwxyz23456789";
    let mut raw = [0u8; 10];
    rand::rng().fill_bytes(&mut raw);
    let mut s = String::with_capacity(11);
    for (i, b) in raw.iter().enumerate() {
        if i == 5 {
            s.push('-');
        }
        s.push(ALPHABET[(*b & 31) as usize] as char);
    }
    s
}
