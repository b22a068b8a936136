//! The second factor: TOTP (RFC 6238: HMAC-SHA-1, 6 digits, 30 s steps,
//! one step of clock skew either way, via `totp-rs`) and one-time recovery
//! codes. The TOTP secret must be kept as is to check codes (it cannot be
//! hashed); recovery codes are stored as their SHA-256 only.

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

/// Whether `code` is the TOTP code of `secret` at Unix time `now_secs`
/// (or one step either side).
pub fn check(secret: &str, code: &str, now_secs: u64) -> bool {
    let code = code.trim();
    code.len() == 6
        && code.bytes().all(|b| b.is_ascii_digit())
        && totp(secret, "user").is_some_and(|t| t.check(code, now_secs))
}

/// Normalise a typed recovery code and hash it as stored.
pub fn recovery_hash(code: &str) -> String {
    auth::hash_secret(&code.trim().to_ascii_lowercase())
}

fn totp(secret: &str, user: &str) -> Option<TOTP> {
    let bytes = Secret::Encoded(secret.to_string()).to_bytes().ok()?;
    TOTP::new(
        Algorithm::SHA1,
        6,
        1,
        30,
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
