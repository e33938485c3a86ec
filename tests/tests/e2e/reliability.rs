//! The listener as a service under faults and load: clients that go silent
//! or die, memory and descriptors that run short, a slow stdout, signals
//! mid-stream. Each test states what it measured (`eprintln!`, shown with
//! `--nocapture`); the README's Reliability table quotes them.

use std::time::{Duration, Instant};

use iris_e2e::{KEY_ENV, ListenerProcess, TEST_KEY, send};
use iris_wire::{AuthError, Client, Error};

use crate::FLOWERS;

/// An authenticated client that goes silent (as one whose link died
/// without FIN or RST looks to the listener on loopback) is closed at the
/// idle timeout, with a log line that says why, and its slot is freed: with
/// `--max-connections 1`, the next client is refused while it holds the
/// slot and served after.
#[test]
fn a_silent_client_is_closed_at_the_idle_timeout_and_its_slot_freed() {
    const IDLE: Duration = Duration::from_secs(2);
    // The stated bound: closed within the idle timeout plus 10 s of
    // scheduling slack on a loaded 2-core machine.
    const BOUND: Duration = Duration::from_secs(12);
    let listener = ListenerProcess::start(
        &["--idle-timeout", "2", "--max-connections", "1"],
        &[KEY_ENV],
    );
    let address = listener.address().to_owned();
    let mut silent =
        Client::connect(&address, TEST_KEY.as_bytes()).expect("the silent client connects");
    listener.wait_for_log("authenticated", 1);
    let authenticated = Instant::now();

    // The slot is taken: the next client is refused before any challenge.
    match Client::connect(&address, TEST_KEY.as_bytes()) {
        Err(Error::Authentication(AuthError::ClosedBeforeChallenge)) => {}
        other => panic!("expected a refusal at the connection limit, got {other:?}"),
    }

    let line = listener.wait_for_log("(--idle-timeout)", 1).remove(0);
    let closed_after = authenticated.elapsed();
    assert!(
        line.contains("connection 1 closed after 0 flowers: it sent nothing for 2.0 s"),
        "{line}"
    );
    assert!(
        closed_after >= IDLE - Duration::from_millis(100) && closed_after < BOUND,
        "closed {closed_after:?} after authenticating; expected {IDLE:?} to {BOUND:?}"
    );
    // The silent client sees the connection closed.
    assert!(
        matches!(silent.recv_bytes(), Err(Error::Closed)),
        "the listener closed the idle connection"
    );

    // The slot is free: a real client is served.
    send(&address, &["--flower", &FLOWERS[0].arg()]).assert_all_acknowledged(1);
    let finished = listener.stop();
    finished.assert_code(0);
    let summary = finished.summary();
    assert_eq!(summary.get("connections"), 2, "{}", summary.line);
    assert_eq!(summary.get("rejected"), 1, "{}", summary.line);
    assert_eq!(summary.get("flowers"), 1, "{}", summary.line);
    eprintln!("idle client closed {closed_after:?} after authenticating (--idle-timeout 2)");
}
