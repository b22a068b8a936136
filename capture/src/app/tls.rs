//! Tls connections (metadata parsing lands next; for now the byte streams).

use super::raw::RawStream;
use super::{Ctx, Handler, slot};
use eve::Direction;

/// A Tls connection: each direction's byte stream is one object.
#[derive(Debug)]
pub(crate) struct TlsConn {
    streams: [RawStream; 2],
}

impl Default for TlsConn {
    fn default() -> Self {
        TlsConn {
            streams: [
                RawStream::new(Direction::ToServer, "tls"),
                RawStream::new(Direction::ToClient, "tls"),
            ],
        }
    }
}

impl Handler for TlsConn {
    fn data(&mut self, dir: Direction, bytes: &[u8], ctx: &mut Ctx<'_>) {
        self.streams[slot(dir)].data(bytes, ctx);
    }
    fn gap(&mut self, dir: Direction, len: u64, ctx: &mut Ctx<'_>) {
        self.streams[slot(dir)].gap(len, ctx);
    }
    fn close(&mut self, dir: Direction, clean: bool, ctx: &mut Ctx<'_>) {
        self.streams[slot(dir)].close(clean, ctx);
    }
}
