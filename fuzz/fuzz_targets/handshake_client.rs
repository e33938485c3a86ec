//! The client's side of the handshake fed arbitrary frames, as from a fake
//! listener without the key: it never panics and never completes.

#![no_main]

use iris_wire::frame::next_frame;
use iris_wire::handshake::{AuthKey, Handshake, MAX_HANDSHAKE_FRAME};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let key = AuthKey::new(b"fuzzing key").expect("non-empty");
    let Some((&flag, mut rest)) = data.split_first() else {
        return;
    };
    let mut handshake = Handshake::client(&key, [9; 40], flag & 1 == 1);
    while let Ok(Some((payload, used))) = next_frame(rest, MAX_HANDSHAKE_FRAME) {
        if handshake.receive(payload).is_err() {
            return;
        }
        let _ = handshake.take_outgoing();
        // Completing needs the listener to answer our challenge with the
        // key's HMAC: no fuzzer finds it.
        assert!(!handshake.is_complete());
        rest = &rest[used..];
    }
});
