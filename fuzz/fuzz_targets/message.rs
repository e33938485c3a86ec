//! A native frame, decoded by the hand decoder; it must agree with postcard.

#![no_main]

use iris_protocol::Message;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let ours = Message::decode(data).ok();
    let postcard = postcard::take_from_bytes::<Message>(data)
        .ok()
        .filter(|(_, rest)| rest.is_empty())
        .map(|(message, _)| message);
    // The hand decoder is stricter only about multi-byte variant indexes.
    if data.first().is_some_and(|&b| b < 0x80) {
        assert_eq!(ours, postcard, "{data:02x?}");
    } else {
        assert_eq!(ours, None);
    }
});
