//! Property tests of the sans-I/O frame decoder: whatever frames are sent,
//! however the stream is split into reads, whatever the limit, the decoder
//! yields exactly the frames sent, or the right error, and never holds more
//! memory than it was given plus its stated overhead.

use iris_wire::frame::{DECODER_MEMORY_OVERHEAD, FrameDecoder, FrameEncoder, FrameError};
use proptest::prelude::*;

/// Frame lengths: mostly small, some past the decoder's ordinary buffer
/// (256 KiB), so that the long-frame path is taken too.
fn frame_len() -> impl Strategy<Value = usize> {
    prop_oneof![
        8 => 0usize..64,
        3 => 64usize..70_000,
        1 => 250_000usize..700_000,
    ]
}

fn frames() -> impl Strategy<Value = Vec<Vec<u8>>> {
    prop::collection::vec(
        (frame_len(), any::<u8>()).prop_map(|(len, byte)| vec![byte; len]),
        0..12,
    )
}

/// Read sizes, cycled: single bytes, odd sizes, large reads.
fn splits() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(
        prop_oneof![Just(1usize), 1usize..17, 17usize..5000, 5000usize..300_000],
        1..8,
    )
}

fn limits() -> impl Strategy<Value = u64> {
    prop_oneof![Just(u64::MAX), 0u64..100, 100u64..800_000]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn yields_the_frames_sent_or_the_right_error(
        frames in frames(),
        splits in splits(),
        max_frame in limits(),
        truncate_by in 0usize..3,
    ) {
        let mut encoder = FrameEncoder::new();
        for frame in &frames {
            encoder.push(frame);
        }
        let mut wire = encoder.pending().to_vec();
        // Sometimes the stream ends early, inside the last frame's payload
        // (its header intact, so that a length over the limit still shows).
        let truncated = truncate_by > 0 && frames.last().is_some_and(|f| f.len() >= truncate_by);
        if truncated {
            wire.truncate(wire.len() - truncate_by);
        }

        let mut decoder = FrameDecoder::new(max_frame);
        let mut received = Vec::new();
        let mut rest = &wire[..];
        let mut fed = 0usize;
        let mut read = 0usize;
        let outcome = loop {
            let error = loop {
                match decoder.decode() {
                    Ok(Some(frame)) => received.push(decoder.payload(&frame).to_vec()),
                    Ok(None) => break None,
                    Err(e) => break Some(e),
                }
            };
            prop_assert!(
                decoder.memory() <= fed + DECODER_MEMORY_OVERHEAD,
                "{} bytes held after {} fed", decoder.memory(), fed
            );
            if let Some(error) = error {
                break Err(error);
            }
            if rest.is_empty() {
                break decoder.end_of_stream();
            }
            let want = splits[read % splits.len()].min(rest.len());
            read += 1;
            let taken = decoder.feed(&rest[..want]);
            prop_assert!(taken > 0, "the decoder took no bytes");
            fed += taken;
            rest = &rest[taken..];
        };

        // What should have happened: frames up to the first one over the
        // limit; that one refused; else a truncated last frame, or a clean end.
        let first_too_large = frames.iter().position(|f| f.len() as u64 > max_frame);
        match first_too_large {
            Some(index) => {
                prop_assert_eq!(&received[..], &frames[..index]);
                prop_assert_eq!(
                    outcome,
                    Err(FrameError::TooLarge { len: frames[index].len() as u64, max: max_frame })
                );
            }
            None if truncated => {
                prop_assert_eq!(&received[..], &frames[..frames.len() - 1]);
                prop_assert!(
                    matches!(outcome, Err(FrameError::Truncated { .. })),
                    "{:?}", outcome
                );
            }
            None => {
                prop_assert_eq!(&received[..], &frames[..]);
                prop_assert_eq!(outcome, Ok(()));
            }
        }
    }

    /// A peer that announces a long frame and sends only part of it costs
    /// only what it sent.
    #[test]
    fn announced_but_unsent_bytes_cost_nothing(
        announced in 300_000u64..(64 << 20),
        sent in 0usize..600_000,
        split in 1usize..100_000,
    ) {
        let sent = sent.min(announced as usize);
        let mut wire = iris_wire::frame::Header::encode(announced).as_bytes().to_vec();
        wire.resize(wire.len() + sent, 0x55);
        let mut decoder = FrameDecoder::new(64 << 20);
        let mut fed = 0usize;
        for piece in wire.chunks(split) {
            let mut piece = piece;
            while !piece.is_empty() {
                prop_assert!(decoder.decode().expect("valid header").is_none());
                let taken = decoder.feed(piece);
                fed += taken;
                piece = &piece[taken..];
                prop_assert!(decoder.memory() <= fed + DECODER_MEMORY_OVERHEAD);
            }
        }
    }
}
