//! Bounds-checked reads over a buffered prefix. Running off the end is
//! [`Fail::Short`] ("need more bytes"), a value that breaks the format's rules
//! is [`Fail::Bad`]; nothing here panics or allocates from a length field.

/// Why a structural parse stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fail {
    /// The prefix ended before the structure did.
    Short,
    /// The bytes break the format's rules.
    Bad,
}

/// Result of a structural step.
pub(crate) type PResult<T> = Result<T, Fail>;

/// A read position in a byte slice.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(buf: &'a [u8], pos: usize) -> Self {
        Cursor { buf, pos }
    }

    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    /// The bytes from the read position on.
    pub(crate) fn rest(&self) -> &'a [u8] {
        self.buf.get(self.pos..).unwrap_or(&[])
    }

    pub(crate) fn take(&mut self, n: usize) -> PResult<&'a [u8]> {
        let end = self.pos.checked_add(n).ok_or(Fail::Bad)?;
        let s = self.buf.get(self.pos..end).ok_or(Fail::Short)?;
        self.pos = end;
        Ok(s)
    }

    pub(crate) fn skip(&mut self, n: u64) -> PResult<()> {
        let n = usize::try_from(n).map_err(|_| Fail::Short)?;
        self.take(n).map(|_| ())
    }

    /// `buf[start..end]` (empty when out of range).
    pub(crate) fn slice(&self, start: usize, end: usize) -> &'a [u8] {
        self.buf.get(start..end).unwrap_or(&[])
    }

    pub(crate) fn u8(&mut self) -> PResult<u8> {
        Ok(self.take(1)?[0])
    }

    pub(crate) fn u16(&mut self) -> PResult<u16> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    pub(crate) fn u32(&mut self) -> PResult<u32> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub(crate) fn u64(&mut self) -> PResult<u64> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    /// A protobuf / LevelDB base-128 varint.
    pub(crate) fn varint(&mut self) -> PResult<u64> {
        let mut v = 0u64;
        for i in 0..10 {
            let b = self.u8()?;
            v |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(Fail::Bad)
    }
}

/// Little-endian u32 at `pos`, if in range.
pub(crate) fn le32(buf: &[u8], pos: usize) -> Option<u32> {
    let b = buf.get(pos..pos.checked_add(4)?)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// Little-endian u16 at `pos`, if in range.
pub(crate) fn le16(buf: &[u8], pos: usize) -> Option<u16> {
    let b = buf.get(pos..pos.checked_add(2)?)?;
    Some(u16::from_le_bytes([b[0], b[1]]))
}

/// Printable identifier-ish text (tensor and member names).
pub(crate) fn is_name(b: &[u8]) -> bool {
    !b.is_empty() && b.iter().all(|c| (0x20..0x7f).contains(c))
}
