//! Splits arbitrary bytes into frames with a small limit: never panics, never
//! returns a payload over the limit or past the input.

#![no_main]

use iris_wire::frame::next_frame;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    while let Ok(Some((payload, used))) = next_frame(rest, 1 << 16) {
        assert!(payload.len() <= 1 << 16 && used <= rest.len() && used > 0);
        rest = &rest[used..];
    }
});
