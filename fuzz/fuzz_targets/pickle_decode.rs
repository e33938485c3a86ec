//! Decodes arbitrary bytes with the default limits (plus the seed's class),
//! and decodes a returned `bytes` once more, as the listener does with the
//! seed's double-pickled frames. Any panic, hang or runaway allocation is a
//! bug; errors are expected.

#![no_main]

use iris_pickle::{Limits, Value, decode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default().allow_class("Iris");
    if let Ok(Value::Bytes(inner)) = decode(data, &limits) {
        let _ = decode(&inner, &limits);
    }
    let _ = decode(data, &Limits::default());
});
