//! Fresh random keys for the listeners the xtask starts.

use std::fmt::Write as _;
use std::io::Read;

use anyhow::Context;

/// `bytes` random bytes from /dev/urandom.
pub(crate) fn random_bytes(bytes: usize) -> anyhow::Result<Vec<u8>> {
    let mut buffer = vec![0; bytes];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut urandom| urandom.read_exact(&mut buffer))
        .context("cannot read /dev/urandom")?;
    Ok(buffer)
}

/// `bytes` random bytes from /dev/urandom, hex-encoded.
pub(crate) fn random_hex(bytes: usize) -> anyhow::Result<String> {
    let buffer = random_bytes(bytes)?;
    let mut hex = String::with_capacity(2 * bytes);
    for byte in buffer {
        let _ = write!(hex, "{byte:02x}");
    }
    Ok(hex)
}
