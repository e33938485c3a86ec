//! Pickle bombs against the real listener: every class of expansion attack
//! (opcode floods, memo floods, nesting, long declared lengths), sent as a
//! direct pickle frame and wrapped the seed's way (a pickle of the bytes of
//! a pickle), at the largest pickle the listener decodes and at the largest
//! frame it receives. Each must be refused at once, the listener's peak
//! memory must stay within the bound the README states, and a well-behaved
//! client must be served throughout.

use std::time::{Duration, Instant};

use iris_e2e::{KEY_ENV, ListenerProcess, TEST_KEY, peak_rss_kib};
use iris_model::{Iris, Species};
use iris_protocol::{Message, Reply};
use iris_wire::{Client, Connection};

/// The largest pickle the listener decodes (`iris_protocol::python::MAX_PICKLE_LEN`).
const MAX_PICKLE_LEN: usize = 4 << 10;

/// The largest frame the listener is made to receive here: 64 MiB, far
/// above its default `--max-frame` (64 KiB), so that the pickle budgets are
/// shown to hold whatever frame limit an operator sets.
const MAX_FRAME: usize = 64 << 20;

/// The README's bound on what decoding costs a connection beyond the
/// frame's own buffer, with the listener's baseline (threads, buffers, the
/// allocator) included: the peak resident memory may exceed the largest
/// frame received by at most this much.
const PEAK_RSS_OVER_FRAME_KIB: u64 = 24 << 10;

/// A generous bound on one refusal, measured from the last byte written
/// to the connection being closed; the decoder needs microseconds here.
const REFUSAL_TIME: Duration = Duration::from_secs(5);

/// `\x80\x04`, `prefix`, `unit` repeated, `suffix`, `STOP`: at most `len`
/// bytes.
fn flood(prefix: &[u8], unit: &[u8], suffix: &[u8], len: usize) -> Vec<u8> {
    let mut pickle = b"\x80\x04".to_vec();
    pickle.extend_from_slice(prefix);
    let room = len - pickle.len() - suffix.len() - 1;
    pickle.extend_from_slice(&unit.repeat(room / unit.len()));
    pickle.extend_from_slice(suffix);
    pickle.push(b'.');
    pickle
}

/// "Billion laughs": level after level of lists of memo references to the
/// previous level, as wide as `len` allows.
fn memo_fan_out(len: usize) -> Vec<u8> {
    const LEVELS: usize = 6;
    let width = (len - 16) / (LEVELS - 1) / 2 - 2;
    let mut pickle = b"\x80\x04]\x940".to_vec();
    for level in 1..LEVELS {
        pickle.push(b'(');
        pickle.extend_from_slice(&[b'h', (level - 1) as u8].repeat(width));
        pickle.extend_from_slice(b"l\x94");
        if level < LEVELS - 1 {
            pickle.push(b'0');
        }
    }
    pickle.push(b'.');
    pickle
}

/// Lists nested as deep as `len` allows: `]` * n, `a` * (n - 1).
fn nesting(len: usize) -> Vec<u8> {
    let depth = (len - 3) / 2;
    let mut pickle = b"\x80\x04".to_vec();
    pickle.extend_from_slice(&b"]".repeat(depth + 1));
    pickle.extend_from_slice(&b"a".repeat(depth));
    pickle.push(b'.');
    pickle
}

/// `BINBYTES8` declaring 2**62 bytes, followed by `len` bytes of filler.
fn declared_length(len: usize) -> Vec<u8> {
    let mut pickle = b"\x80\x04\x8e".to_vec();
    pickle.extend_from_slice(&(1u64 << 62).to_le_bytes());
    pickle.resize(len - 1, b'x');
    pickle.push(b'.');
    pickle
}

/// `BINUNICODE8` of a string that fills `len`.
fn long_string(len: usize) -> Vec<u8> {
    let mut pickle = b"\x80\x04\x8d".to_vec();
    pickle.extend_from_slice(&((len - 12) as u64).to_le_bytes());
    pickle.resize(len - 1, b'x');
    pickle.push(b'.');
    pickle
}

/// A bomb class: its name, and how to build it `len` bytes long.
type Bomb = (&'static str, fn(usize) -> Vec<u8>);

/// Every bomb class.
const BOMBS: [Bomb; 10] = [
    ("EMPTY_TUPLE flood", |len| flood(b"", b")", b"", len)),
    ("MEMOIZE flood", |len| flood(b"N", b"\x94", b"", len)),
    ("memo GET flood", |len| flood(b"N\x94", b"h\x00", b"", len)),
    ("DUP flood", |len| flood(b"N", b"2", b"", len)),
    ("MARK flood", |len| flood(b"", b"(", b"", len)),
    ("dict items", |len| flood(b"}(", b"NN", b"u", len)),
    ("memo fan-out", memo_fan_out),
    ("nesting", nesting),
    ("declared length", declared_length),
    ("long string", long_string),
];

/// The seed's wrapping: a pickle (`BINBYTES8`) of the bytes of `inner`.
fn wrapped(inner: &[u8]) -> Vec<u8> {
    let mut pickle = b"\x80\x04\x8e".to_vec();
    pickle.extend_from_slice(&(inner.len() as u64).to_le_bytes());
    pickle.extend_from_slice(inner);
    pickle.push(b'.');
    pickle
}

/// Bytes the seed's wrapping adds.
const WRAPPING: usize = 12;

/// Every bomb as a frame of (nearly) `len` bytes, direct and wrapped (the outer
/// pickle `len` bytes long too), built one at a time when iterated.
fn frames(len: usize) -> impl Iterator<Item = (String, Vec<u8>)> {
    let direct = BOMBS
        .iter()
        .map(move |(name, build)| (format!("{name}, direct"), build(len)));
    let wrapped = BOMBS
        .iter()
        .map(move |(name, build)| (format!("{name}, wrapped"), wrapped(&build(len - WRAPPING))));
    direct.chain(wrapped).inspect(move |(name, frame)| {
        // Repeated units may leave a few bytes unfilled.
        assert!(
            (len - 32..=len).contains(&frame.len()),
            "{name}: {} bytes",
            frame.len()
        );
    })
}

fn connect(listener: &ListenerProcess) -> Connection {
    Client::connect(listener.address(), TEST_KEY.as_bytes()).expect("connect and authenticate")
}

/// Sends `frame` on a fresh connection and returns how long after its last
/// byte the listener closed the connection.
fn refusal_time(listener: &ListenerProcess, frame: &[u8]) -> Duration {
    let mut bomber = connect(listener);
    bomber.send_bytes(frame).expect("send the bomb");
    bomber.flush().expect("send the bomb");
    let sent = Instant::now();
    match bomber.recv_frame() {
        Ok(reply) => panic!("the listener answered a bomb with {reply:?}"),
        Err(_) => sent.elapsed(),
    }
}

/// Sends every frame, checking the refusal time, the log line and that
/// `bystander` is still served after each.
fn send_all(
    listener: &ListenerProcess,
    bystander: &mut Connection,
    frames: impl Iterator<Item = (String, Vec<u8>)>,
    refusals_so_far: usize,
    reason: impl Fn(&str) -> bool,
) -> usize {
    let mut sent = 0;
    for (i, (name, frame)) in frames.enumerate() {
        sent += 1;
        let took = refusal_time(listener, &frame);
        let lines = listener.wait_for_log("dropped after 0 flowers", refusals_so_far + i + 1);
        let line = lines.last().expect("a log line");
        eprintln!(
            "{name} ({} bytes): refused in {took:?}: {line}",
            frame.len()
        );
        assert!(
            took < REFUSAL_TIME,
            "{name}: refused after {took:?}, more than {REFUSAL_TIME:?}"
        );
        assert!(reason(line), "{name}: unexpected reason: {line}");
        bystander.send(&Message::Ping).expect("ping");
        assert_eq!(
            bystander.recv::<Reply>().expect("pong"),
            Reply::Pong,
            "{name}"
        );
    }
    sent
}

#[test]
fn pickle_bombs_are_refused_at_once_in_bounded_memory_while_others_are_served() {
    let max_frame = MAX_FRAME.to_string();
    let listener = ListenerProcess::start(&["--max-frame", &max_frame], &[KEY_ENV]);
    let pid = listener.process().pid();
    let mut bystander = connect(&listener);
    let baseline = peak_rss_kib(pid);

    // At the largest pickle decoded: every bomb is decoded, and refused
    // by a budget or as not being a flower.
    let small = send_all(
        &listener,
        &mut bystander,
        frames(MAX_PICKLE_LEN),
        0,
        |line| line.contains("refused pickle") || line.contains("unexpected pickle"),
    );
    let after_small = peak_rss_kib(pid);
    eprintln!("peak RSS: {baseline} KiB at start, {after_small} KiB after the 4 KiB bombs");
    assert!(
        after_small < PEAK_RSS_OVER_FRAME_KIB,
        "peak RSS {after_small} KiB after the {MAX_PICKLE_LEN}-byte bombs"
    );

    // At the largest frame received: refused from the length alone.
    send_all(
        &listener,
        &mut bystander,
        frames(MAX_FRAME),
        small,
        |line| line.contains(&format!("longer than the limit of {MAX_PICKLE_LEN} bytes")),
    );
    let after_large = peak_rss_kib(pid);
    eprintln!("peak RSS: {after_large} KiB after the 64 MiB bombs");
    assert!(
        after_large < (MAX_FRAME as u64 >> 10) + PEAK_RSS_OVER_FRAME_KIB,
        "peak RSS {after_large} KiB after the {MAX_FRAME}-byte bombs"
    );

    // The bystander's flower still counts.
    let flower = Iris::new(5.1, 3.5, 1.4, 0.2, Species::Setosa).expect("valid");
    bystander.send(&Message::Iris(flower)).expect("send");
    bystander.send(&Message::Close).expect("close");
    assert_eq!(
        bystander.recv::<Reply>().expect("acknowledgement"),
        Reply::Closed { flowers: 1 }
    );
    let finished = listener.stop();
    finished.assert_code(0);
    assert_eq!(finished.area_lines(), ["Area: 18.13"]);
}
