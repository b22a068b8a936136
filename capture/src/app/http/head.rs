//! HTTP header blocks: finding their end, parsing them with `httparse`, and
//! extracting the fields that decide body framing and object metadata.

use super::encoding::Coding;

/// Most header lines accepted in one block (more: the block does not parse).
const MAX_HEADERS: usize = 256;

/// The end (exclusive) of a header block: the first empty line, with CRLF or
/// bare LF line ends. The scan starts at `from`.
pub(crate) fn find_head_end(buf: &[u8], from: usize) -> Option<usize> {
    let from = from.min(buf.len());
    memchr::memchr_iter(b'\n', &buf[from..]).find_map(|p| {
        let i = from + p;
        match (buf.get(i + 1), buf.get(i + 2)) {
            (Some(b'\n'), _) => Some(i + 2),
            (Some(b'\r'), Some(b'\n')) => Some(i + 3),
            _ => None,
        }
    })
}

/// The value of the first header named `name` (case-insensitive), trimmed.
pub(crate) fn header_value(headers: &[httparse::Header<'_>], name: &str) -> Option<String> {
    headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case(name))
        .map(|h| String::from_utf8_lossy(h.value).trim().to_string())
}

/// The `filename` parameter of a Content-Disposition value (`filename*`
/// with RFC 5987 encoding is preferred when present; its charset is dropped).
pub(crate) fn disposition_filename(value: &str) -> Option<String> {
    let mut plain = None;
    let mut extended = None;
    for param in value.split(';').skip(1) {
        let Some((k, v)) = param.split_once('=') else {
            continue;
        };
        let k = k.trim();
        let v = v.trim();
        if k.eq_ignore_ascii_case("filename*") {
            // charset'lang'percent-encoded
            let enc = v.splitn(3, '\'').nth(2).unwrap_or(v);
            extended = Some(percent_decode(enc));
        } else if k.eq_ignore_ascii_case("filename") {
            plain = Some(v.trim_matches('"').to_string());
        }
    }
    extended.or(plain).filter(|f| !f.is_empty())
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (
            b[i],
            b.get(i + 1).copied().and_then(hex),
            b.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The path of a request target (absolute-form or origin-form), without
/// query or fragment and percent-decoded: what Suricata logs as
/// `fileinfo.filename` for an HTTP body (libhtp's normalised
/// `parsed_uri->path`); `/` when an absolute-form target has no path,
/// `None` when there is no target at all.
pub(crate) fn url_path(url: &str) -> Option<String> {
    if url.is_empty() {
        return None;
    }
    let path = match url.find("://") {
        Some(p) => {
            let rest = &url[p + 3..];
            rest.find('/').map_or("/", |s| &rest[s..])
        }
        None => url,
    };
    let path = path.split(['?', '#']).next().unwrap_or("");
    Some(if path.is_empty() {
        "/".to_string()
    } else {
        percent_decode(path)
    })
}

/// A Host value without its port (`[v6]` brackets kept).
pub(crate) fn host_without_port(host: &str) -> String {
    if host.starts_with('[') {
        return host.split_inclusive(']').next().unwrap_or(host).to_string();
    }
    host.split(':').next().unwrap_or(host).to_string()
}

/// How a message says its body is framed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Framing {
    /// Transfer-Encoding with `chunked` last.
    Chunked,
    /// Transfer-Encoding present but not ending in `chunked`.
    OtherTransferEncoding,
    /// A valid Content-Length.
    Length(u64),
    /// Content-Length invalid or conflicting.
    BadLength,
    /// Neither header.
    Unframed,
}

/// What Content-Encoding asks of the body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Encoding {
    /// None or `identity`.
    Identity,
    /// One coding this crate decodes.
    Decode(Coding),
    /// Something else (br, zstd, stacked codings): delivered as sent.
    Unsupported,
}

/// The fields of a header block that matter here.
#[derive(Clone, Debug)]
pub(crate) struct Head {
    /// HTTP minor version (0 or 1).
    pub(crate) minor: u8,
    /// Request method (requests).
    pub(crate) method: Option<String>,
    /// Request target (requests).
    pub(crate) target: Option<String>,
    /// Status code (responses).
    pub(crate) status: Option<u16>,
    pub(crate) framing: Framing,
    pub(crate) content_length: Option<u64>,
    pub(crate) encoding: Encoding,
    pub(crate) content_type: Option<String>,
    pub(crate) filename: Option<String>,
    pub(crate) host: Option<String>,
    pub(crate) user_agent: Option<String>,
    /// `Expect: 100-continue` (requests).
    pub(crate) expect_continue: bool,
}

/// The header block did not parse.
#[derive(Debug, thiserror::Error)]
#[error("bad header block: {0}")]
pub(crate) struct HeadError(String);

fn config() -> httparse::ParserConfig {
    let mut c = httparse::ParserConfig::default();
    c.allow_spaces_after_header_name_in_responses(true)
        .allow_obsolete_multiline_headers_in_responses(true)
        .allow_multiple_spaces_in_request_line_delimiters(true)
        .allow_multiple_spaces_in_response_status_delimiters(true)
        .ignore_invalid_headers_in_requests(true)
        .ignore_invalid_headers_in_responses(true);
    c
}

/// Parse a complete header block (request or response, by its first bytes).
pub(crate) fn parse(block: &[u8]) -> Result<Head, HeadError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let cfg = config();
    if block.starts_with(b"HTTP/") {
        let mut resp = httparse::Response::new(&mut headers);
        match cfg.parse_response(&mut resp, block) {
            Ok(httparse::Status::Complete(_)) => {}
            Ok(httparse::Status::Partial) => return Err(HeadError("incomplete".into())),
            Err(e) => return Err(HeadError(e.to_string())),
        }
        let mut head = fields(resp.headers, resp.version.unwrap_or(1));
        head.status = resp.code;
        Ok(head)
    } else {
        let mut req = httparse::Request::new(&mut headers);
        match cfg.parse_request(&mut req, block) {
            Ok(httparse::Status::Complete(_)) => {}
            Ok(httparse::Status::Partial) => return Err(HeadError("incomplete".into())),
            Err(e) => return Err(HeadError(e.to_string())),
        }
        let mut head = fields(req.headers, req.version.unwrap_or(1));
        head.method = req.method.map(str::to_string);
        head.target = req.path.map(str::to_string);
        Ok(head)
    }
}

fn fields(headers: &[httparse::Header<'_>], minor: u8) -> Head {
    let mut length: Option<Result<u64, ()>> = None;
    let mut te: Option<bool> = None;
    let mut codings: Vec<String> = Vec::new();
    for h in headers {
        if h.name.eq_ignore_ascii_case("content-length") {
            // Every comma-separated value of every Content-Length must agree.
            for v in h.value.split(|b| *b == b',') {
                let v = v.trim_ascii();
                let parsed = (!v.is_empty() && v.len() <= 19 && v.iter().all(u8::is_ascii_digit))
                    .then(|| std::str::from_utf8(v).ok()?.parse::<u64>().ok())
                    .flatten()
                    .ok_or(());
                length = match (length, parsed) {
                    (None, p) => Some(p),
                    (Some(Ok(a)), Ok(b)) if a == b => Some(Ok(a)),
                    _ => Some(Err(())),
                };
            }
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            let v = String::from_utf8_lossy(h.value);
            let last = v.rsplit(',').next().unwrap_or("").trim();
            te = Some(last.eq_ignore_ascii_case("chunked"));
        } else if h.name.eq_ignore_ascii_case("content-encoding") {
            let v = String::from_utf8_lossy(h.value);
            codings.extend(
                v.split(',')
                    .map(|c| c.trim().to_ascii_lowercase())
                    .filter(|c| !c.is_empty() && c != "identity"),
            );
        }
    }
    let framing = match (te, length) {
        (Some(true), _) => Framing::Chunked,
        (Some(false), _) => Framing::OtherTransferEncoding,
        (None, Some(Ok(n))) => Framing::Length(n),
        (None, Some(Err(()))) => Framing::BadLength,
        (None, None) => Framing::Unframed,
    };
    let encoding = match codings.as_slice() {
        [] => Encoding::Identity,
        [c] if c == "gzip" || c == "x-gzip" => Encoding::Decode(Coding::Gzip),
        [c] if c == "deflate" => Encoding::Decode(Coding::Deflate),
        _ => Encoding::Unsupported,
    };
    Head {
        minor,
        method: None,
        target: None,
        status: None,
        framing,
        content_length: match length {
            Some(Ok(n)) => Some(n),
            _ => None,
        },
        encoding,
        content_type: header_value(headers, "content-type"),
        filename: header_value(headers, "content-disposition")
            .and_then(|v| disposition_filename(&v)),
        host: header_value(headers, "host")
            .map(|h| host_without_port(&h))
            .filter(|h| !h.is_empty()),
        user_agent: header_value(headers, "user-agent"),
        expect_continue: header_value(headers, "expect")
            .is_some_and(|v| v.eq_ignore_ascii_case("100-continue")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers() {
        assert_eq!(
            find_head_end(b"GET / HTTP/1.1\r\nA: b\r\n\r\nxyz", 0),
            Some(24)
        );
        assert_eq!(find_head_end(b"GET / HTTP/1.1\nA: b\n\nxyz", 0), Some(21));
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\nA: b\r\n", 0), None);
        assert_eq!(
            url_path("/a/b/model.bin?x=1"),
            Some("/a/b/model.bin".into())
        );
        assert_eq!(
            url_path("http://h:80/x/y%20z.gguf#f"),
            Some("/x/y z.gguf".into())
        );
        assert_eq!(url_path("http://h"), Some("/".into()));
        assert_eq!(url_path("/dir/"), Some("/dir/".into()));
        assert_eq!(url_path(""), None);
        assert_eq!(
            disposition_filename(r#"attachment; filename="w.safetensors""#),
            Some("w.safetensors".into())
        );
        assert_eq!(
            disposition_filename("attachment; filename=a.bin; filename*=UTF-8''b%20c.bin"),
            Some("b c.bin".into())
        );
        assert_eq!(host_without_port("example.com:8080"), "example.com");
        assert_eq!(host_without_port("[::1]:80"), "[::1]");
    }

    #[test]
    fn framing_rules() {
        let h = parse(b"POST / HTTP/1.1\r\nContent-Length: 5, 5\r\n\r\n").unwrap();
        assert_eq!(h.framing, Framing::Length(5));
        let h =
            parse(b"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n").unwrap();
        assert_eq!(h.framing, Framing::BadLength);
        let h = parse(b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n").unwrap();
        assert_eq!(h.framing, Framing::BadLength);
        let h = parse(b"POST / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n").unwrap();
        assert_eq!(h.framing, Framing::BadLength);
        let h = parse(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\nContent-Length: 3\r\n\r\n",
        )
        .unwrap();
        assert_eq!(h.framing, Framing::Chunked);
        assert_eq!(h.status, Some(200));
    }
}
