//! ClientHello and ServerHello: the fields weightwatch reports (SNI, ALPN,
//! versions, cipher) and those JA4 is made from.
//!
//! `tls-parser` parses the fixed parts of each hello; the extension block is
//! walked here because JA4 needs every extension's type code in wire order,
//! including unknown and GREASE ones.

/// A parsed ClientHello.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct ClientHello {
    /// `legacy_version`.
    pub(crate) legacy_version: u16,
    /// Cipher suites in wire order (GREASE included).
    pub(crate) ciphers: Vec<u16>,
    /// Extension types in wire order (GREASE included).
    pub(crate) extensions: Vec<u16>,
    /// Server Name Indication (host_name entry).
    pub(crate) sni: Option<String>,
    /// ALPN protocol names in order.
    pub(crate) alpn: Vec<Vec<u8>>,
    /// supported_versions entries (GREASE included).
    pub(crate) supported_versions: Vec<u16>,
    /// signature_algorithms entries in order (GREASE included).
    pub(crate) signature_algorithms: Vec<u16>,
}

/// A parsed ServerHello.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ServerHello {
    /// The negotiated version (supported_versions if present, else legacy).
    pub(crate) version: u16,
    /// The chosen cipher suite.
    pub(crate) cipher: u16,
}

/// A GREASE value (RFC 8701): 0x?a?a with equal bytes.
pub(crate) fn is_grease(v: u16) -> bool {
    v & 0x0f0f == 0x0a0a && v >> 8 == v & 0xff
}

/// Human-readable name of a protocol version.
pub(crate) fn version_name(v: u16) -> Option<&'static str> {
    Some(match v {
        0x0300 => "SSL 3.0",
        0x0301 => "TLS 1.0",
        0x0302 => "TLS 1.1",
        0x0303 => "TLS 1.2",
        0x0304 => "TLS 1.3",
        _ => return None,
    })
}

/// A bounds-checked big-endian reader.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn u8(&mut self) -> Option<u8> {
        let (b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(*b)
    }
    fn u16(&mut self) -> Option<u16> {
        let b = self.bytes(2)?;
        Some(u16::from_be_bytes([b[0], b[1]]))
    }
    fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (b, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(b)
    }
    fn u16_list(mut self) -> Vec<u16> {
        std::iter::from_fn(|| self.u16()).collect()
    }
}

/// Walk an extension block: (type, data) in wire order; stops at the first
/// malformed entry.
fn extensions(block: &[u8]) -> Vec<(u16, &[u8])> {
    let mut r = Reader(block);
    std::iter::from_fn(|| {
        let t = r.u16()?;
        let len = r.u16()?;
        Some((t, r.bytes(usize::from(len))?))
    })
    .collect()
}

/// Parse a ClientHello message body (after the 4-byte handshake header).
pub(crate) fn client_hello(body: &[u8]) -> Option<ClientHello> {
    let (_, ch) = tls_parser::parse_tls_handshake_client_hello(body).ok()?;
    let mut hello = ClientHello {
        legacy_version: ch.version.0,
        ciphers: ch.ciphers.iter().map(|c| c.0).collect(),
        ..ClientHello::default()
    };
    for (t, data) in extensions(ch.ext.unwrap_or_default()) {
        hello.extensions.push(t);
        let mut r = Reader(data);
        match t {
            0x0000 => {
                // server_name_list: (type, name)*; the host_name entry.
                let Some(list) = r.u16().and_then(|n| r.bytes(usize::from(n))) else {
                    continue;
                };
                let mut l = Reader(list);
                while let (Some(kind), Some(name)) =
                    (l.u8(), l.u16().and_then(|n| l.bytes(usize::from(n))))
                {
                    if kind == 0 {
                        hello.sni = Some(String::from_utf8_lossy(name).into_owned());
                        break;
                    }
                }
            }
            0x0010 => {
                let Some(list) = r.u16().and_then(|n| r.bytes(usize::from(n))) else {
                    continue;
                };
                let mut l = Reader(list);
                while let Some(p) = l.u8().and_then(|n| l.bytes(usize::from(n))) {
                    hello.alpn.push(p.to_vec());
                }
            }
            0x002b => {
                if let Some(list) = r.u8().and_then(|n| r.bytes(usize::from(n))) {
                    hello.supported_versions = Reader(list).u16_list();
                }
            }
            0x000d => {
                if let Some(list) = r.u16().and_then(|n| r.bytes(usize::from(n))) {
                    hello.signature_algorithms = Reader(list).u16_list();
                }
            }
            _ => {}
        }
    }
    Some(hello)
}

impl ClientHello {
    /// The highest version offered (supported_versions, else legacy).
    pub(crate) fn offered_version(&self) -> u16 {
        self.supported_versions
            .iter()
            .copied()
            .filter(|v| !is_grease(*v))
            .max()
            .unwrap_or(self.legacy_version)
    }
}

/// Parse a ServerHello message body (after the 4-byte handshake header).
pub(crate) fn server_hello(body: &[u8]) -> Option<ServerHello> {
    let (_, sh) = tls_parser::parse_tls_handshake_server_hello(body).ok()?;
    let selected = extensions(sh.ext.unwrap_or_default())
        .into_iter()
        .find(|(t, d)| *t == 0x002b && d.len() == 2)
        .map(|(_, d)| u16::from_be_bytes([d[0], d[1]]));
    Some(ServerHello {
        version: selected.unwrap_or(sh.version.0),
        cipher: sh.cipher.0,
    })
}
