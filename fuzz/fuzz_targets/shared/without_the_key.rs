//! What both handshake targets check: a handshake fed frames by a peer that
//! does not hold the key never panics and never completes.

use std::sync::OnceLock;

use iris_wire::frame::next_frame;
use iris_wire::handshake::{Handshake, MAX_HANDSHAKE_FRAME};
use iris_wire::seal::{KeyShare, Sealing};

/// `handshake` with the sealing policy `choice` picks (off, prefer,
/// require), with a key share made once.
pub fn with_sealing(handshake: Handshake, choice: u8) -> Handshake {
    static SHARE: OnceLock<KeyShare> = OnceLock::new();
    let share = SHARE.get_or_init(|| KeyShare::from_private_bytes([5; 32]));
    match choice % 3 {
        0 => handshake,
        1 => handshake.with_sealing(share.clone(), Sealing::Prefer),
        _ => handshake.with_sealing(share.clone(), Sealing::Require),
    }
}

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
