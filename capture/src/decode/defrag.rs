//! IPv4/IPv6 fragment reassembly with the receiving host's overlap policy.
//!
//! etherparse's pool lets a later fragment overwrite an earlier one and
//! says nothing about it, so overlapping fragments with different data (an
//! evasion: the sensor and the host each keep a different copy) were
//! silent. Here each datagram keeps its fragments as received (bounded by
//! the decoder's pending-fragment limit) and, once the datagram is whole,
//! builds it byte range by byte range: where fragments overlap, the
//! receiver's [`OsPolicy`] decides whose bytes stay — the same per-OS rules
//! as for TCP segments (Suricata has its own `defrag` policies, which agree
//! for `first`, `last` and `bsd`, and differ in detail for the others).
//! Overlapping bytes that differ mark the datagram, and the flow raises
//! Suricata's `ipv4.frag_overlap` / `ipv6.frag_overlap` as an alert.

use crate::reassembly::OsPolicy;
use std::collections::HashMap;
use std::net::IpAddr;

/// What identifies a fragmented datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Key {
    pub(crate) src: IpAddr,
    pub(crate) dst: IpAddr,
    /// IPv4 identification or IPv6 fragment identification.
    pub(crate) id: u32,
    /// The transport protocol number.
    pub(crate) proto: u8,
    pub(crate) vlan: [u16; 2],
}

/// One fragment: its byte offset in the datagram and its bytes.
#[derive(Debug)]
struct Frag {
    offset: u32,
    data: Vec<u8>,
}

impl Frag {
    fn end(&self) -> u32 {
        self.offset + self.data.len() as u32
    }
}

#[derive(Debug)]
struct Datagram {
    first_seen: i64,
    frags: Vec<Frag>,
    /// Length, once the last fragment was seen.
    len: Option<u32>,
}

/// A whole datagram.
#[derive(Debug)]
pub(crate) struct Whole {
    /// Transport header and payload.
    pub(crate) bytes: Vec<u8>,
    /// Overlapping fragments carried different bytes.
    pub(crate) overlap_diff: bool,
}

/// Why a fragment was refused.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refused {
    /// Beyond 64 KiB, not a multiple of 8 before the end, or disagreeing
    /// with the datagram's end.
    Bad,
}

/// Fragmented datagrams waiting for their other fragments.
#[derive(Debug, Default)]
pub(crate) struct Defrag {
    pending: HashMap<Key, Datagram>,
    /// Fragments held.
    pub(crate) held: usize,
}

/// Largest IP datagram payload.
const MAX_LEN: u32 = 65_535;

impl Defrag {
    /// Drop datagrams first seen before `oldest`.
    pub(crate) fn expire(&mut self, oldest: i64) {
        let held = &mut self.held;
        self.pending.retain(|_, d| {
            let keep = d.first_seen >= oldest;
            if !keep {
                *held -= d.frags.len();
            }
            keep
        });
    }

    /// Drop everything held.
    pub(crate) fn clear(&mut self) {
        self.pending.clear();
        self.held = 0;
    }

    /// One fragment of `key` at byte `offset` (`more`: more fragments
    /// follow) seen at `ts`; the datagram when it is whole, its overlaps
    /// resolved by `policy`.
    pub(crate) fn add(
        &mut self,
        key: Key,
        ts: i64,
        offset: u32,
        more: bool,
        data: &[u8],
        policy: OsPolicy,
    ) -> Result<Option<Whole>, Refused> {
        let end = offset + data.len() as u32;
        if end > MAX_LEN || (more && !data.len().is_multiple_of(8)) {
            return Err(Refused::Bad);
        }
        let d = self.pending.entry(key).or_insert_with(|| Datagram {
            first_seen: ts,
            frags: Vec::new(),
            len: None,
        });
        match (d.len, more) {
            (Some(len), _) if end > len || (!more && end != len) => return Err(Refused::Bad),
            (None, false) if d.frags.iter().any(|f| f.end() > end) => return Err(Refused::Bad),
            (None, false) => d.len = Some(end),
            _ => {}
        }
        d.frags.push(Frag {
            offset,
            data: data.to_vec(),
        });
        self.held += 1;
        let Some(len) = d.len else { return Ok(None) };
        if !covers(&d.frags, len) {
            return Ok(None);
        }
        let Some(d) = self.pending.remove(&key) else {
            return Ok(None);
        };
        self.held -= d.frags.len();
        Ok(Some(build(&d.frags, len, policy)))
    }
}

/// Whether `frags` cover `[0, len)`.
fn covers(frags: &[Frag], len: u32) -> bool {
    let mut spans: Vec<(u32, u32)> = frags.iter().map(|f| (f.offset, f.end())).collect();
    spans.sort_unstable();
    let mut reached = 0;
    for (a, b) in spans {
        if a > reached {
            return false;
        }
        reached = reached.max(b);
    }
    reached >= len
}

/// The datagram of `frags` (in arrival order): each byte from the fragment
/// the policy keeps among those covering it.
fn build(frags: &[Frag], len: u32, policy: OsPolicy) -> Whole {
    let mut bytes = vec![0u8; len as usize];
    // Which fragment owns each byte (index into `frags`).
    let mut owner: Vec<Option<u32>> = vec![None; len as usize];
    let mut overlap_diff = false;
    for (i, f) in frags.iter().enumerate() {
        let new = (u64::from(f.offset), u64::from(f.end()));
        for (j, b) in f.data.iter().enumerate() {
            let at = f.offset as usize + j;
            let wins = match owner[at] {
                None => true,
                Some(o) => {
                    let old = &frags[o as usize];
                    overlap_diff |= bytes[at] != *b;
                    policy.new_wins(new, (u64::from(old.offset), u64::from(old.end())))
                }
            };
            if wins {
                bytes[at] = *b;
                owner[at] = Some(i as u32);
            }
        }
    }
    Whole {
        bytes,
        overlap_diff,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> Key {
        Key {
            src: IpAddr::from([10, 0, 0, 1]),
            dst: IpAddr::from([10, 0, 0, 2]),
            id: 7,
            proto: 17,
            vlan: [0, 0],
        }
    }

    #[test]
    fn overlaps_follow_the_policy_and_are_flagged() {
        for (policy, want) in [
            (OsPolicy::First, b"AAAAAAAABBBBBBBBCCCC"),
            (OsPolicy::Last, b"AAAAAAAAXXXXXXXXCCCC"),
            (OsPolicy::Bsd, b"AAAAAAAABBBBBBBBCCCC"),
        ] {
            let mut d = Defrag::default();
            assert!(
                d.add(key(), 0, 0, true, b"AAAAAAAA", policy)
                    .unwrap()
                    .is_none()
            );
            assert!(
                d.add(key(), 0, 8, true, b"BBBBBBBB", policy)
                    .unwrap()
                    .is_none()
            );
            assert!(
                d.add(key(), 0, 8, true, b"XXXXXXXX", policy)
                    .unwrap()
                    .is_none()
            );
            let w = d.add(key(), 0, 16, false, b"CCCC", policy).unwrap();
            let w = w.expect("whole");
            assert_eq!(w.bytes, want.as_slice(), "{policy:?}");
            assert!(w.overlap_diff);
            assert_eq!(d.held, 0);
        }
        // Starting before the old fragment: BSD keeps the new bytes.
        let mut d = Defrag::default();
        d.add(key(), 0, 8, false, b"BBBB", OsPolicy::Bsd).unwrap();
        let w = d
            .add(key(), 0, 0, false, b"AAAAAAAAXXXX", OsPolicy::Bsd)
            .unwrap();
        let w = w.expect("whole");
        assert_eq!(w.bytes, b"AAAAAAAAXXXX");
        assert!(w.overlap_diff);
        // Same bytes again are no difference; a bad end is refused.
        let mut d = Defrag::default();
        d.add(key(), 0, 0, true, b"AAAAAAAA", OsPolicy::Bsd)
            .unwrap();
        d.add(key(), 0, 0, true, b"AAAAAAAA", OsPolicy::Bsd)
            .unwrap();
        assert!(matches!(
            d.add(key(), 0, 0, true, b"odd", OsPolicy::Bsd),
            Err(Refused::Bad)
        ));
        let w = d.add(key(), 0, 8, false, b"CC", OsPolicy::Bsd).unwrap();
        assert!(!w.expect("whole").overlap_diff);
        d.add(key(), 5, 0, true, b"AAAAAAAA", OsPolicy::Bsd)
            .unwrap();
        d.expire(6);
        assert_eq!(d.held, 0);
    }
}
