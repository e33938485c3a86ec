//! Feeds arbitrary bytes to the sans-I/O frame decoder in arbitrary pieces,
//! with an arbitrary limit: it never panics, never returns a payload over the
//! limit, never returns more bytes than it was given, and never holds more
//! memory than it was given plus its stated overhead.

#![no_main]

use iris_wire::frame::{DECODER_MEMORY_OVERHEAD, FrameDecoder};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first bytes choose the limit and the sizes of the pieces.
    let Some((&[limit_log, piece_seed], stream)) = data.split_first_chunk::<2>() else {
        return;
    };
    let max_frame = 1u64 << (limit_log % 24);
    let mut decoder = FrameDecoder::new(max_frame);
    let mut rest = stream;
    let mut fed = 0usize;
    let mut returned = 0usize;
    let mut piece = usize::from(piece_seed % 64) + 1;
    loop {
        loop {
            match decoder.decode() {
                Ok(Some(frame)) => {
                    let payload = decoder.payload(&frame);
                    assert!(payload.len() as u64 <= max_frame);
                    returned += payload.len();
                    assert!(returned <= fed);
                }
                Ok(None) => break,
                Err(_) => return,
            }
        }
        assert!(decoder.memory() <= fed + DECODER_MEMORY_OVERHEAD);
        if rest.is_empty() {
            let _ = decoder.end_of_stream();
            return;
        }
        let taken = decoder.feed(&rest[..piece.min(rest.len())]);
        assert!(taken > 0);
        fed += taken;
        rest = &rest[taken..];
        piece = piece * 7 % 61 + 1;
    }
});
