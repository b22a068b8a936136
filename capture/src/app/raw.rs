//! A direction's byte stream as one object (raw, and the TLS/SSH streams).

use super::Ctx;
use crate::object::{AppProto, ObjectEnd, ObjectEvent, ObjectMeta};
use eve::Direction;

/// One direction delivered whole as a single object.
#[derive(Debug)]
pub(crate) struct RawStream {
    dir: Direction,
    app_proto: AppProto,
    /// The stream is known to start at the connection's first byte (a
    /// detected handshake), so its object is not mid-stream.
    from_start: bool,
    open: bool,
    done: bool,
}

impl RawStream {
    /// A stream object for `dir`, labelled `app_proto`; mid-stream when the
    /// connection was picked up mid-stream.
    pub(crate) fn new(dir: Direction, app_proto: AppProto) -> Self {
        RawStream {
            dir,
            app_proto,
            from_start: false,
            open: false,
            done: false,
        }
    }

    /// A stream object that starts with the protocol's first byte (TLS, SSH).
    pub(crate) fn from_start(dir: Direction, app_proto: AppProto) -> Self {
        RawStream {
            from_start: true,
            ..RawStream::new(dir, app_proto)
        }
    }

    /// Open the object now with `meta` (if not open yet); `meta.direction`
    /// and `meta.app_proto` are filled in here.
    pub(crate) fn begin_with(&mut self, mut meta: ObjectMeta, ctx: &mut Ctx<'_>) {
        if self.open || self.done {
            return;
        }
        self.open = true;
        meta.direction = self.dir;
        meta.app_proto = self.app_proto;
        meta.midstream = ctx.midstream && !self.from_start;
        ctx.out.object(self.dir, ObjectEvent::Begin(meta));
    }

    /// Whether the object was opened (or the direction already ended).
    pub(crate) fn started(&self) -> bool {
        self.open || self.done
    }

    /// Bytes of the stream.
    pub(crate) fn data(&mut self, bytes: &[u8], ctx: &mut Ctx<'_>) {
        if bytes.is_empty() || self.done {
            return;
        }
        self.begin_with(ObjectMeta::default(), ctx);
        ctx.out.object(self.dir, ObjectEvent::Data(bytes));
    }

    /// `len` bytes lost.
    pub(crate) fn gap(&mut self, len: u64, ctx: &mut Ctx<'_>) {
        if self.done {
            return;
        }
        self.begin_with(ObjectMeta::default(), ctx);
        ctx.out.object(self.dir, ObjectEvent::Gap(len));
    }

    /// The direction ended.
    pub(crate) fn close(&mut self, clean: bool, ctx: &mut Ctx<'_>) {
        if std::mem::take(&mut self.open) {
            let end = if clean {
                ObjectEnd::Complete
            } else {
                ObjectEnd::Truncated
            };
            ctx.out.object(self.dir, ObjectEvent::End(end));
        }
        self.done = true;
    }
}
