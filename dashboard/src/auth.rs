//! Who may do what: token scopes, secrets and their hashes, password hashes,
//! sessions and CSRF tokens.
//!
//! API tokens are 256-bit random secrets; only their SHA-256 is stored (a
//! fast hash is enough for a secret with 256 bits of entropy: there is
//! nothing to brute-force). Analyst passwords are low-entropy, so they are
//! stored as argon2id PHC strings.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::fmt;
use std::str::FromStr;

/// What a token may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Only `POST /api/v1/events` (sensors and analyzers).
    Ingest,
    /// Read alerts, accounts, sensors, the stream and metrics.
    Read,
    /// Read, and set alert status.
    Triage,
    /// Everything.
    Admin,
}

/// The permission a route needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    /// Submit events.
    Ingest,
    /// Read anything.
    Read,
    /// Change an alert's status.
    Triage,
}

impl Scope {
    /// Every scope.
    pub const ALL: [Scope; 4] = [Scope::Ingest, Scope::Read, Scope::Triage, Scope::Admin];

    /// The stored and command-line name.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Ingest => "ingest",
            Scope::Read => "read",
            Scope::Triage => "triage",
            Scope::Admin => "admin",
        }
    }

    /// Whether this scope grants `need`. Ingest grants nothing else, so a
    /// stolen sensor token reads nothing.
    pub fn allows(self, need: Need) -> bool {
        matches!(
            (self, need),
            (Scope::Admin, _)
                | (Scope::Ingest, Need::Ingest)
                | (Scope::Read, Need::Read)
                | (Scope::Triage, Need::Read | Need::Triage)
        )
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scope {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Scope::ALL
            .into_iter()
            .find(|x| x.as_str() == s)
            .ok_or_else(|| format!("unknown scope {s:?} (ingest, read, triage or admin)"))
    }
}

/// Who is making a request.
#[derive(Clone, Debug)]
pub enum Principal {
    /// An API client with a bearer token.
    Token {
        /// Token row id.
        id: i64,
        /// Its scope.
        scope: Scope,
        /// The sensor ids it may submit events for (`None`: any).
        sensors: Option<std::sync::Arc<[String]>>,
    },
    /// A signed-in analyst (may read and triage).
    User {
        /// Login name.
        name: String,
        /// The session's CSRF token.
        csrf: String,
        /// Hash of the session cookie (to end the session).
        session_hash: String,
    },
}

impl Principal {
    /// Whether this principal may do `need`.
    pub fn allows(&self, need: Need) -> bool {
        match self {
            Principal::Token { scope, .. } => scope.allows(need),
            Principal::User { .. } => Scope::Triage.allows(need),
        }
    }

    /// How the audit log names this principal.
    pub fn actor(&self) -> String {
        match self {
            Principal::Token { id, scope, .. } => format!("token:{id} ({scope})"),
            Principal::User { name, .. } => format!("user:{name}"),
        }
    }

    /// The sensor ids this principal may submit events for (`None`: any).
    pub fn sensors(&self) -> Option<&[String]> {
        match self {
            Principal::Token { sensors, .. } => sensors.as_deref(),
            Principal::User { .. } => None,
        }
    }

    /// Key for per-client rate limits.
    pub fn rate_key(&self) -> String {
        match self {
            Principal::Token { id, .. } => format!("token:{id}"),
            Principal::User { name, .. } => format!("user:{name}"),
        }
    }
}

/// A fresh 256-bit secret, URL-safe base64 with a recognisable prefix.
pub fn new_secret(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// The stored form of a token or session secret: SHA-256, hex.
pub fn hash_secret(secret: &str) -> String {
    let digest = Sha256::digest(secret.as_bytes());
    let mut s = String::with_capacity(64);
    for b in digest {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// Compare two strings in time independent of where they differ.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// Errors hashing a password.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// Too short to be worth hashing.
    #[error("password must be at least {0} characters")]
    TooShort(usize),
    /// The hasher failed.
    #[error("hashing password: {0}")]
    Hash(String),
}

/// Shortest password accepted.
pub const MIN_PASSWORD_CHARS: usize = 10;

/// Hash a password as an argon2id PHC string (the crate's default parameters).
pub fn hash_password(password: &str) -> Result<String, PasswordError> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(PasswordError::TooShort(MIN_PASSWORD_CHARS));
    }
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| PasswordError::Hash(e.to_string()))?;
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| PasswordError::Hash(e.to_string()))
}

/// Check a password against a stored PHC string (false on any malformed hash).
pub fn verify_password(phc: &str, password: &str) -> bool {
    PasswordHash::new(phc)
        .map(|h| {
            argon2::Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// A PHC string for a password nobody has, verified against when the user
/// does not exist so that timing does not reveal which names exist.
pub fn dummy_phc() -> &'static str {
    static PHC: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    PHC.get_or_init(|| hash_password(&new_secret("")).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_are_separate() {
        assert!(Scope::Ingest.allows(Need::Ingest));
        assert!(!Scope::Ingest.allows(Need::Read));
        assert!(!Scope::Ingest.allows(Need::Triage));
        assert!(!Scope::Read.allows(Need::Ingest));
        assert!(!Scope::Read.allows(Need::Triage));
        assert!(Scope::Triage.allows(Need::Read));
        assert!(!Scope::Triage.allows(Need::Ingest));
        assert!(Scope::Admin.allows(Need::Ingest));
    }

    #[test]
    fn passwords_round_trip() {
        let phc = hash_password("correct horse battery").unwrap();
        assert!(phc.starts_with("$argon2id$"));
        assert!(verify_password(&phc, "correct horse battery"));
        assert!(!verify_password(&phc, "correct horse battery!"));
        assert!(!verify_password("garbage", "x"));
        assert!(hash_password("short").is_err());
    }
}
