//! The decoder must not panic on any frame of any link type.
#![no_main]

use capture::decode::Decoder;
use libfuzzer_sys::fuzz_target;

const LINKS: [i32; 10] = [0, 1, 12, 14, 101, 108, 113, 228, 229, 276];

fuzz_target!(|data: &[u8]| {
    if let Some((&sel, frame)) = data.split_first() {
        let mut d = Decoder::new(64, 1);
        let link = LINKS[usize::from(sel) % LINKS.len()];
        // Twice: the second call may complete a fragment held by the first.
        let _ = d.decode(link, 0, frame);
        let _ = d.decode(link, 1, frame);
    }
});
