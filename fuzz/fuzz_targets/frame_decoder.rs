//! Feeds arbitrary bytes to the sans-I/O frame decoder in arbitrary pieces,
//! with an arbitrary limit: it never panics, never returns a payload over the
//! limit, never returns more bytes than it was given, and never holds more
//! memory than it was given plus its stated overhead. The same bytes through
//! a decoder that releases its memory whenever it can (as a sealed session's
//! does) come out the same.

#![no_main]

use iris_wire::frame::{DECODER_MEMORY_OVERHEAD, FrameDecoder};
use libfuzzer_sys::fuzz_target;

/// What came out of one decoder: the payloads, then whether it ended in an
/// error, or else whether the stream ended between frames.
#[derive(Debug, PartialEq)]
struct Outcome {
    payloads: Vec<Vec<u8>>,
    failed: bool,
    clean_end: bool,
}

fn decode_all(stream: &[u8], max_frame: u64, piece_seed: u8, release: bool) -> Outcome {
    let mut decoder = FrameDecoder::new(max_frame);
    let mut outcome = Outcome {
        payloads: Vec::new(),
        failed: false,
        clean_end: false,
    };
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
                    outcome.payloads.push(payload.to_vec());
                }
                Ok(None) => break,
                Err(_) => {
                    outcome.failed = true;
                    return outcome;
                }
            }
        }
        assert!(decoder.memory() <= fed + DECODER_MEMORY_OVERHEAD);
        if release {
            decoder.release_memory();
            if !decoder.has_buffered_bytes() {
                assert_eq!(decoder.memory(), 0);
            }
        }
        if rest.is_empty() {
            outcome.clean_end = decoder.end_of_stream().is_ok();
            return outcome;
        }
        let taken = decoder.feed(&rest[..piece.min(rest.len())]);
        assert!(taken > 0);
        fed += taken;
        rest = &rest[taken..];
        piece = piece * 7 % 61 + 1;
    }
}

fuzz_target!(|data: &[u8]| {
    // The first bytes choose the limit and the sizes of the pieces.
    let Some((&[limit_log, piece_seed], stream)) = data.split_first_chunk::<2>() else {
        return;
    };
    let max_frame = 1u64 << (limit_log % 24);
    let kept = decode_all(stream, max_frame, piece_seed, false);
    let released = decode_all(stream, max_frame, piece_seed, true);
    assert_eq!(kept, released, "releasing memory changed what came out");
});
