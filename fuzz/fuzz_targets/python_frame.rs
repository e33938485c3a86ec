//! A pickled frame from a Python client, decoded as the listener decodes it
//! (tight per-frame limits, one nested level). Errors are expected; any
//! panic, hang or runaway allocation is a bug.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = iris_protocol::python::decode_frame(data);
});
