//! Counters of the app layer: what was recognised, and every time hostile or
//! broken input made a parser fall back, truncate or give up.

macro_rules! app_stats {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {
        /// App-layer counters of one connection (or, merged, of many).
        ///
        /// The engine reads them with [`crate::app::AppConnection::stats`] when a
        /// flow ends, sums them with [`AppStats::merge`] and writes them into the
        /// `stats` event's `app` section with [`AppStats::add_to`].
        #[derive(Clone, Debug, Default, PartialEq, Eq)]
        pub struct AppStats {
            $($(#[$doc])* pub $name: u64,)*
        }

        impl AppStats {
            /// Add every counter of `other` into `self`.
            pub fn merge(&mut self, other: &AppStats) {
                $(self.$name += other.$name;)*
            }

            /// Every counter with its name, in declaration order.
            pub fn counters(&self) -> impl Iterator<Item = (&'static str, u64)> {
                [$((stringify!($name), self.$name)),*].into_iter()
            }
        }
    };
}

app_stats! {
    /// Connections recognised as HTTP.
    http,
    /// Connections recognised as TLS.
    tls,
    /// Connections recognised as SSH.
    ssh,
    /// Connections treated as a raw byte stream.
    raw,
    /// HTTP request header blocks parsed.
    http_requests,
    /// HTTP response header blocks parsed.
    http_responses,
    /// Header blocks that did not parse: the direction fell back to raw.
    http_parse_errors,
    /// Header blocks longer than `max_header_bytes`: the direction fell back to raw.
    http_header_too_large,
    /// Invalid or conflicting Content-Length / Transfer-Encoding: fell back to raw.
    http_bad_length,
    /// Malformed chunked framing (size line, chunk end, trailers): body truncated.
    http_bad_chunk,
    /// Responses with no outstanding request to pair with.
    http_unmatched_responses,
    /// Requests dropped from the pipelining queue because it was full.
    http_pipeline_overflow,
    /// A TCP gap hit HTTP framing (headers or chunk sizes): the direction became raw.
    http_gap_in_framing,
    /// Bodies cut short because their connection ended first.
    http_truncated_bodies,
    /// Directions switched to an opaque tunnel (CONNECT, 101 Switching Protocols).
    http_tunnels,
    /// Directions of connections picked up mid-stream that found an HTTP
    /// message start and were parsed as HTTP from there.
    http_resyncs,
    /// Content-Encodings other than gzip/deflate (body delivered encoded).
    http_unsupported_encoding,
    /// gzip/deflate bodies that failed to decode (object truncated).
    decode_errors,
    /// Decoded bodies cut at `max_decoded_bytes` (decompression bomb guard).
    decode_bombs,
    /// multipart bodies whose framing broke (rest delivered as one object).
    multipart_errors,
    /// multipart parts seen.
    multipart_parts,
    /// TLS ClientHellos parsed.
    tls_client_hellos,
    /// TLS ServerHellos parsed.
    tls_server_hellos,
    /// TLS hellos that did not parse.
    tls_parse_errors,
    /// TLS handshake messages larger than the handshake buffer (not parsed).
    tls_handshake_too_large,
    /// TLS record streams that lost sync (bad header or gap).
    tls_record_desync,
    /// SSH identification lines parsed.
    ssh_banners,
    /// SSH identification lines that were malformed or too long.
    ssh_bad_banners,
}

impl AppStats {
    /// Add these counters into `stats` under the section `app`.
    pub fn add_to(&self, stats: &mut eve::Stats) {
        for (name, n) in self.counters() {
            stats.add("app", name, n);
        }
    }
}
