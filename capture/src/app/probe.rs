//! Protocol detection by content, on any port, from the first bytes of a
//! direction.

use crate::object::AppProto;

/// Most bytes of one direction buffered before deciding. Request lines with
/// long (presigned) URLs still fit; a longer one is HTTP only when its method
/// is a well-known one.
pub(crate) const DETECT_MAX: usize = 8192;

/// Methods trusted without seeing the end of the request line.
pub(crate) const KNOWN_METHODS: [&[u8]; 9] = [
    b"GET ",
    b"POST ",
    b"PUT ",
    b"HEAD ",
    b"PATCH ",
    b"DELETE ",
    b"OPTIONS ",
    b"PROPFIND ",
    b"MKCOL ",
];

/// Largest TLS record length (2^14 plus the largest permitted expansion).
pub(crate) const TLS_MAX_RECORD: usize = 16384 + 2048;

/// Whether a prefix matches a protocol, cannot, or needs more bytes to say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verdict {
    Yes,
    No,
    Maybe,
}

/// Decide the protocol of a direction from its first bytes (an HTTP/1.x
/// request or response, a TLS handshake record, an SSH identification
/// string, else raw); `None` means "need more". At `DETECT_MAX` bytes the answer is always decided.
pub(crate) fn detect(buf: &[u8]) -> Option<AppProto> {
    let checks: [(Verdict, AppProto); 4] = [
        (tls(buf), AppProto::Tls),
        (ssh(buf), AppProto::Ssh),
        (http_response(buf), AppProto::Http),
        (http_request(buf), AppProto::Http),
    ];
    if let Some((_, d)) = checks.iter().find(|(v, _)| *v == Verdict::Yes) {
        return Some(*d);
    }
    if buf.len() >= DETECT_MAX
        && checks[3].0 == Verdict::Maybe
        && KNOWN_METHODS.iter().any(|m| buf.starts_with(m))
    {
        return Some(AppProto::Http);
    }
    if checks.iter().all(|(v, _)| *v == Verdict::No) || buf.len() >= DETECT_MAX {
        return Some(AppProto::Raw);
    }
    None
}

/// `lit` is a prefix of `buf`, or `buf` a prefix of `lit`.
fn literal(buf: &[u8], lit: &[u8]) -> Verdict {
    let n = buf.len().min(lit.len());
    if buf[..n] != lit[..n] {
        Verdict::No
    } else if buf.len() >= lit.len() {
        Verdict::Yes
    } else {
        Verdict::Maybe
    }
}

fn ssh(buf: &[u8]) -> Verdict {
    literal(buf, b"SSH-")
}

/// A handshake record (22), version 3.x, plausible length, and a
/// ClientHello (1) or ServerHello (2) inside.
fn tls(buf: &[u8]) -> Verdict {
    let want: [fn(&[u8]) -> bool; 4] = [
        |b| b[0] == 0x16,
        |b| b[1] == 0x03,
        |b| b[2] <= 0x04,
        |b| {
            let len = usize::from(u16::from_be_bytes([b[3], b[4]]));
            (4..=TLS_MAX_RECORD).contains(&len)
        },
    ];
    if buf.len() < 5 {
        return match buf.len() {
            0 => Verdict::Maybe,
            1 if want[0](buf) => Verdict::Maybe,
            2 if want[0](buf) && want[1](buf) => Verdict::Maybe,
            3 | 4 if want[0](buf) && want[1](buf) && want[2](buf) => Verdict::Maybe,
            _ => Verdict::No,
        };
    }
    if !want.iter().all(|f| f(buf)) {
        return Verdict::No;
    }
    match buf.get(5) {
        None => Verdict::Maybe,
        Some(1 | 2) => Verdict::Yes,
        Some(_) => Verdict::No,
    }
}

/// `HTTP/1.` and a digit.
fn http_response(buf: &[u8]) -> Verdict {
    match literal(buf, b"HTTP/1.") {
        Verdict::Yes => match buf.get(7) {
            None => Verdict::Maybe,
            Some(d) if d.is_ascii_digit() => Verdict::Yes,
            Some(_) => Verdict::No,
        },
        v => v,
    }
}

/// Whether `buf` starts with an HTTP request line: `None` while undecided.
pub(crate) fn starts_request(buf: &[u8]) -> Option<bool> {
    match http_request(buf) {
        Verdict::Yes => Some(true),
        Verdict::No => Some(false),
        Verdict::Maybe => None,
    }
}

/// Method token, SP, request target, SP, `HTTP/1.` and a digit.
fn http_request(buf: &[u8]) -> Verdict {
    const MAX_METHOD: usize = 24;
    let method_len = buf
        .iter()
        .take(MAX_METHOD + 1)
        .take_while(|b| b.is_ascii_uppercase() || **b == b'-' || **b == b'_')
        .count();
    if method_len > MAX_METHOD {
        return Verdict::No;
    }
    let Some(&sp) = buf.get(method_len) else {
        return Verdict::Maybe;
    };
    if method_len == 0 || sp != b' ' {
        return Verdict::No;
    }
    let rest = &buf[method_len + 1..];
    // SIMD search for the target's end: this runs again on every segment of
    // an undecided prefix, so it must stay cheap.
    let Some(target_len) = memchr::memchr3(b' ', b'\r', b'\n', rest) else {
        return Verdict::Maybe;
    };
    if target_len == 0 || rest[target_len] != b' ' {
        return Verdict::No;
    }
    http_response(&rest[target_len + 1..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decides_each_protocol_and_waits_for_more() {
        assert_eq!(detect(b"GET / HTTP/1.1\r\n"), Some(AppProto::Http));
        assert_eq!(detect(b"M-SEARCH * HTTP/1.1\r\n"), Some(AppProto::Http));
        assert_eq!(detect(b"GET /a"), None);
        assert_eq!(detect(b"GET /a HTTP/2"), Some(AppProto::Raw));
        assert_eq!(detect(b"HTTP/1.0 200 OK"), Some(AppProto::Http));
        assert_eq!(detect(b"HTT"), None);
        assert_eq!(detect(b"SSH-2.0-x"), Some(AppProto::Ssh));
        assert_eq!(detect(&[0x16, 3, 1, 0, 200, 1]), Some(AppProto::Tls));
        assert_eq!(detect(&[0x16, 3, 1, 0xff, 0xff, 1]), Some(AppProto::Raw));
        assert_eq!(detect(&[0x16, 3]), None);
        assert_eq!(detect(b"\x00\x01binary"), Some(AppProto::Raw));
        assert_eq!(detect(b"get / HTTP/1.1"), Some(AppProto::Raw));
        let long = [b"GET /".as_slice(), &[b'a'; DETECT_MAX]].concat();
        assert_eq!(detect(&long), Some(AppProto::Http));
        let long = [b"FOO /".as_slice(), &[b'a'; DETECT_MAX]].concat();
        assert_eq!(detect(&long), Some(AppProto::Raw));
    }
}
