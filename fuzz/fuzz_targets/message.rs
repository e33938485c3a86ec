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
    match (ours, postcard) {
        // Whatever the hand decoder accepts, postcard reads the same.
        (Some(_), _) => assert_eq!(ours, postcard, "{data:02x?}"),
        // It is stricter only about varints that postcard would never write
        // (an index in more bytes than it needs: 0x80 0x00 for 0), in the
        // message's variant and in the species.
        (None, Some(message)) => assert_ne!(
            postcard::to_stdvec(&message).ok().as_deref(),
            Some(data),
            "postcard's own encoding of {message:?} is refused"
        ),
        (None, None) => {}
    }
});
