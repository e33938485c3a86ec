//! What both handshake targets check: a handshake fed frames by a peer that
//! does not hold the key never panics and never completes.

use iris_wire::frame::next_frame;
use iris_wire::handshake::{Handshake, MAX_HANDSHAKE_FRAME};

/// Feeds `handshake` every frame in `bytes` until one is refused or the
/// bytes run out, checking after each that it has not completed:
/// completing needs the key's HMAC of our fixed nonce, which no fuzzer finds.
pub fn feed(mut handshake: Handshake, bytes: &[u8]) {
    let _ = handshake.take_outgoing();
    let mut rest = bytes;
    while let Ok(Some((payload, used))) = next_frame(rest, MAX_HANDSHAKE_FRAME) {
        if handshake.receive(payload).is_err() {
            return;
        }
        let _ = handshake.take_outgoing();
        assert!(!handshake.is_complete());
        rest = &rest[used..];
    }
}
