//! The listener's side of the handshake fed arbitrary frames, as from a peer
//! without the key: it never panics and never completes.

#![no_main]

#[path = "shared/without_the_key.rs"]
mod without_the_key;

use iris_wire::handshake::{AuthKey, Handshake};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Legacy MD5 and the sealing policy from the first byte, so that every
    // path is explored.
    let Some((&flag, rest)) = data.split_first() else {
        return;
    };
    let key = AuthKey::new(b"fuzzing key").expect("non-empty");
    let handshake = Handshake::listener(&key, [7; 40], flag & 1 == 1);
    without_the_key::feed(without_the_key::with_sealing(handshake, flag >> 1), rest);
});
