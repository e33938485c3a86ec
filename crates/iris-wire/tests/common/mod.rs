//! What the interop tests share: the CPython peer (`python/wire_peer.py`)
//! and its conversation's payloads.

#![allow(dead_code, unreachable_pub)]

use std::path::Path;

use iris_testkit::{Process, Python};

pub const KEY: &[u8] = b"My voice is my password, verify me.";
pub const BIG_LEN: usize = 100 << 20;

fn peer_script() -> &'static Path {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/python/wire_peer.py"
    ))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Starts `wire_peer.py ARGS` under `python`, with `key`.
pub fn python_peer(python: &Python, key: &[u8], args: &[&str]) -> Process {
    let mut command = python.command();
    command
        .arg(peer_script())
        .args(args)
        .env("IRIS_TEST_AUTHKEY", hex(key));
    Process::spawn(&format!("CPython {} wire_peer.py", python.version), command)
}

/// Starts the Python peer as a listener with the right key; returns it and
/// the address it listens on.
pub fn python_listener(python: &Python) -> (Process, String) {
    let mut peer = python_peer(python, KEY, &["listener"]);
    let line = peer.read_line();
    let port = line.strip_prefix("LISTENING ").expect("LISTENING <port>");
    let address = format!("127.0.0.1:{port}");
    (peer, address)
}

/// The 100 MiB frame of the conversation.
pub fn big_payload() -> Vec<u8> {
    (0..BIG_LEN).map(|i| i as u8).collect()
}

/// The greeting the Python peer sends.
pub fn greeting(python: &Python) -> Vec<u8> {
    format!("hello from python {}", python.version).into_bytes()
}

/// Checks that the Python peer ended the conversation well: it exited 0 and
/// the last lines it printed are `expected_stdout`.
pub fn assert_peer_done(peer: Process, expected_stdout: &str) {
    let output = peer.finish();
    assert!(
        output.status.success(),
        "python failed: {}",
        output.describe()
    );
    assert!(
        output.stdout_text().ends_with(expected_stdout),
        "expected the output to end with {expected_stdout:?}: {}",
        output.describe()
    );
}
