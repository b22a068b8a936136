//! JA4 TLS client fingerprint (FoxIO's published specification,
//! `technical_details/JA4.md`), for TLS over TCP.
//!
//! `t` + version + `d`/`i` (SNI) + cipher count + extension count + ALPN
//! first/last characters, `_`, the first 12 hex digits of the SHA-256 of the
//! sorted cipher list, `_`, the same of the sorted extension list (without
//! SNI and ALPN) and the signature algorithms in wire order. GREASE values
//! are ignored everywhere.

use super::hello::{ClientHello, is_grease};
use sha2::{Digest, Sha256};

fn version_code(v: u16) -> &'static str {
    match v {
        0x0304 => "13",
        0x0303 => "12",
        0x0302 => "11",
        0x0301 => "10",
        0x0300 => "s3",
        0x0002 => "s2",
        0xfeff => "d1",
        0xfefd => "d2",
        0xfefc => "d3",
        _ => "00",
    }
}

/// First and last characters of the first ALPN value; when either is not
/// ASCII alphanumeric, the first and last hex digits of the value instead.
fn alpn_code(alpn: &[Vec<u8>]) -> String {
    let Some(first) = alpn.first().filter(|v| !v.is_empty()) else {
        return "00".to_string();
    };
    let (a, z) = (first[0], first[first.len() - 1]);
    if a.is_ascii_alphanumeric() && z.is_ascii_alphanumeric() {
        format!("{}{}", a as char, z as char)
    } else {
        let hex = hex_of(first);
        let (h, t) = (
            hex.chars().next().unwrap_or('0'),
            hex.chars().last().unwrap_or('0'),
        );
        format!("{h}{t}")
    }
}

/// Lower-case hex digits. The lists are written digit by digit, not
/// through `format!` per value: on a busy link every TLS connection builds
/// one fingerprint, and formatting was most of its cost.
const HEX: &[u8; 16] = b"0123456789abcdef";

fn push_hex(s: &mut String, b: u8) {
    s.push(char::from(HEX[usize::from(b >> 4)]));
    s.push(char::from(HEX[usize::from(b & 15)]));
}

fn hex_of(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        push_hex(&mut s, b);
    }
    s
}

/// Appends the first 12 hex digits of the SHA-256 of `lists` written as
/// 4-digit hex values, comma-separated, the lists joined by `_` (twelve
/// zeros when the first list is empty). The text is written into a buffer
/// on the stack and hashed a buffer at a time, not built as strings:
/// every TLS connection on a busy link takes this.
fn push_hash12(out: &mut String, lists: &[&[u16]]) {
    if lists.first().is_none_or(|l| l.is_empty()) {
        out.push_str("000000000000");
        return;
    }
    let mut h = Sha256::new();
    let mut buf = [0u8; 320];
    let mut n = 0;
    let digit = |n: u8| HEX[usize::from(n)];
    for (j, values) in lists.iter().enumerate() {
        for (i, v) in values.iter().enumerate() {
            if n + 5 > buf.len() {
                h.update(&buf[..n]);
                n = 0;
            }
            if i > 0 || j > 0 {
                buf[n] = if i > 0 { b',' } else { b'_' };
                n += 1;
            }
            let [hi, lo] = v.to_be_bytes();
            buf[n..n + 4].copy_from_slice(&[
                digit(hi >> 4),
                digit(hi & 15),
                digit(lo >> 4),
                digit(lo & 15),
            ]);
            n += 4;
        }
    }
    h.update(&buf[..n]);
    for &b in &h.finalize()[..6] {
        push_hex(out, b);
    }
}

/// The JA4 fingerprint of a ClientHello seen over TCP.
pub(crate) fn ja4(ch: &ClientHello) -> String {
    use std::fmt::Write;
    let mut ciphers: Vec<u16> = ch
        .ciphers
        .iter()
        .copied()
        .filter(|c| !is_grease(*c))
        .collect();
    let mut exts: Vec<u16> = ch
        .extensions
        .iter()
        .copied()
        .filter(|e| !is_grease(*e))
        .collect();
    let sni = if exts.contains(&0x0000) { 'd' } else { 'i' };
    let mut out = String::with_capacity(36);
    // Writing into a String cannot fail.
    let _ = write!(
        out,
        "t{}{}{:02}{:02}{}_",
        version_code(ch.offered_version()),
        sni,
        ciphers.len().min(99),
        exts.len().min(99),
        alpn_code(&ch.alpn)
    );
    ciphers.sort_unstable();
    push_hash12(&mut out, &[&ciphers]);
    out.push('_');
    exts.retain(|e| *e != 0x0000 && *e != 0x0010);
    exts.sort_unstable();
    let sigs: Vec<u16> = ch
        .signature_algorithms
        .iter()
        .copied()
        .filter(|s| !is_grease(*s))
        .collect();
    if sigs.is_empty() {
        push_hash12(&mut out, &[&exts]);
    } else {
        push_hash12(&mut out, &[&exts, &sigs]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The worked example of the JA4 specification.
    #[test]
    fn specification_example() {
        let ch = ClientHello {
            legacy_version: 0x0303,
            ciphers: vec![
                0x0a0a, 0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8,
                0xc013, 0xc014, 0x009c, 0x009d, 0x002f, 0x0035,
            ],
            extensions: vec![
                0x2a2a, 0x001b, 0x0000, 0x0033, 0x0010, 0x4469, 0x0017, 0x002d, 0x000d, 0x0005,
                0x0023, 0x0012, 0x002b, 0xff01, 0x000b, 0x000a, 0x0015, 0x3a3a,
            ],
            sni: Some("example.com".into()),
            alpn: vec![b"h2".to_vec(), b"http/1.1".to_vec()],
            supported_versions: vec![0x7a7a, 0x0304, 0x0303],
            signature_algorithms: vec![
                0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601,
            ],
        };
        assert_eq!(ja4(&ch), "t13d1516h2_8daaf6152771_e5627efa2ab1");
        let no_sigs = ClientHello {
            signature_algorithms: vec![],
            ..ch.clone()
        };
        assert!(ja4(&no_sigs).ends_with("_6d807ffa2a79"));
        assert_eq!(alpn_code(&[vec![0xab, b'x', 0xcd]]), "ad");
        assert_eq!(alpn_code(&[]), "00");
        let bare = ClientHello {
            legacy_version: 0x0301,
            ..ClientHello::default()
        };
        assert_eq!(ja4(&bare), "t10i000000_000000000000_000000000000");
    }
}
