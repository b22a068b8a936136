//! Property tests: the decoder and the capture-file reader never panic on
//! arbitrary bytes; the
//! reassembler yields the original bytes under any segmentation, order and
//! duplication of a stream (and across sequence-number wrap-around).

use capture::decode::{Decoder, linktype};
use capture::reassembly::{Chunk, Limits, Stream};
use capture::source::pcapfile::Packets;
use proptest::prelude::*;

const LINKS: [i32; 9] = [
    linktype::NULL,
    linktype::ETHERNET,
    linktype::RAW,
    linktype::LOOP,
    linktype::LINUX_SLL,
    linktype::IPV4,
    linktype::IPV6,
    linktype::LINUX_SLL2,
    147,
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn decoder_never_panics(link in 0usize..LINKS.len(), bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let mut d = Decoder::new(8, 1);
        let _ = d.decode(LINKS[link], 0, &bytes);
    }

    /// A pcap or pcapng header followed by random bytes: every record read
    /// lies inside the input, and reading ends (with or without an error).
    #[test]
    fn file_reader_never_panics(ng in any::<bool>(), be in any::<bool>(), tail in proptest::collection::vec(any::<u8>(), 0..600)) {
        let mut file: Vec<u8> = if ng {
            // Section header block: type, length 28, byte-order magic,
            // version 1.0, section length -1, length again.
            let u32b = |v: u32| if be { v.to_be_bytes() } else { v.to_le_bytes() };
            let mut h = Vec::new();
            h.extend_from_slice(&0x0a0d_0d0au32.to_le_bytes());
            h.extend_from_slice(&u32b(28));
            h.extend_from_slice(&u32b(0x1a2b_3c4d));
            h.extend_from_slice(&(if be { 1u16.to_be_bytes() } else { 1u16.to_le_bytes() }));
            h.extend_from_slice(&[0, 0]);
            h.extend_from_slice(&[0xff; 8]);
            h.extend_from_slice(&u32b(28));
            h
        } else {
            let magic: u32 = if be { 0xd4c3_b2a1 } else { 0xa1b2_c3d4 };
            let mut h = magic.to_le_bytes().to_vec();
            h.extend_from_slice(&[2, 0, 4, 0]);
            if be {
                h[4..8].copy_from_slice(&[0, 2, 0, 4]);
            }
            h.extend_from_slice(&[0; 8]);
            h.extend_from_slice(&[0, 0, 1, 0]);
            h.extend_from_slice(&[1, 0, 0, 0]);
            h
        };
        file.extend_from_slice(&tail);
        let mut p = Packets::new(&file).expect("valid header");
        let mut n = 0;
        while let Some(r) = p.next() {
            if let Ok(f) = r {
                prop_assert!(f.data.len() <= file.len());
            }
            n += 1;
            prop_assert!(n <= file.len());
        }
    }

    /// Plausible headers with random tails reach deeper decoder paths.
    #[test]
    fn decoder_never_panics_past_ip(tail in proptest::collection::vec(any::<u8>(), 0..120), v6 in any::<bool>(), proto in prop_oneof![Just(6u8), Just(17u8), Just(44u8), Just(0u8), any::<u8>()]) {
        let mut frame = Vec::new();
        if v6 {
            frame.extend_from_slice(&[0x60, 0, 0, 0]);
            frame.extend_from_slice(&(tail.len() as u16).to_be_bytes());
            frame.extend_from_slice(&[proto, 64]);
            frame.extend_from_slice(&[0u8; 32]);
        } else {
            frame.extend_from_slice(&[0x45, 0]);
            frame.extend_from_slice(&((20 + tail.len()) as u16).to_be_bytes());
            frame.extend_from_slice(&[0, 1, 0x20, 0, 64, proto, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
        }
        frame.extend_from_slice(&tail);
        let mut d = Decoder::new(8, 1);
        let _ = d.decode(linktype::RAW, 0, &frame);
        let _ = d.decode(linktype::RAW, 1, &frame);
    }

    #[test]
    fn reassembly_restores_any_segmentation(
        data in proptest::collection::vec(any::<u8>(), 1..3000),
        cuts in proptest::collection::vec(1usize..400, 1..40),
        order in proptest::collection::vec(any::<u32>(), 0..60),
        dups in proptest::collection::vec(any::<u32>(), 0..10),
        isn in any::<u32>(),
    ) {
        // Segments covering the stream, possibly overlapping the previous one.
        let mut segs: Vec<(usize, usize)> = Vec::new();
        let mut pos = 0usize;
        let mut i = 0;
        while pos < data.len() {
            let len = cuts[i % cuts.len()];
            let back = if i % 3 == 2 { (len / 2).min(pos) } else { 0 };
            let start = pos - back;
            let end = (pos + len).min(data.len());
            segs.push((start, end));
            pos = end;
            i += 1;
        }
        for d in &dups {
            let s = segs[*d as usize % segs.len()];
            segs.push(s);
        }
        // Shuffle by swapping per the random order list.
        for (k, o) in order.iter().enumerate() {
            let a = k % segs.len();
            let b = *o as usize % segs.len();
            segs.swap(a, b);
        }
        let mut s = Stream::new();
        let mut lim = Limits::new(1 << 20, 1 << 20);
        let mut got = Vec::new();
        let mut gaps = 0u64;
        let mut out = |c: Chunk<'_>| match c {
            Chunk::Data(b) => got.extend_from_slice(b),
            Chunk::Gap(n) => gaps += n,
        };
        s.segment(isn, true, false, &[], &mut lim, &mut out);
        for (a, b) in &segs {
            let seq = isn.wrapping_add(1).wrapping_add(*a as u32);
            s.segment(seq, false, false, &data[*a..*b], &mut lim, &mut out);
        }
        s.close(&mut lim, &mut out);
        prop_assert_eq!(gaps, 0);
        prop_assert_eq!(got, data);
        prop_assert_eq!(lim.used, 0);
    }
}
