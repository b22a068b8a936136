//! Any segmentation, order and duplication of a stream must reassemble to
//! the original bytes.
#![no_main]

use capture::reassembly::{Chunk, Limits, Stream};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (u32, Vec<u8>, Vec<(u16, u16)>)| {
    let (isn, data, cuts) = input;
    if data.is_empty() {
        return;
    }
    let mut s = Stream::new();
    let mut lim = Limits::new(1 << 24, 1 << 24);
    let mut got = Vec::new();
    let mut gaps = 0u64;
    let mut out = |c: Chunk<'_>| match c {
        Chunk::Data(b) => got.extend_from_slice(b),
        Chunk::Gap(n) => gaps += n,
    };
    s.segment(isn, true, false, &[], &mut lim, &mut out);
    for (a, len) in &cuts {
        let a = usize::from(*a) % data.len();
        let b = (a + usize::from(*len)).min(data.len());
        let seq = isn.wrapping_add(1).wrapping_add(a as u32);
        s.segment(seq, false, false, &data[a..b], &mut lim, &mut out);
    }
    // Finally the whole stream once, so every byte has been seen.
    s.segment(isn.wrapping_add(1), false, false, &data, &mut lim, &mut out);
    s.close(&mut lim, &mut out);
    assert_eq!(gaps, 0);
    assert_eq!(got, data);
});
