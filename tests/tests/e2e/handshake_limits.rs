//! Peers without the key: the handshake deadline, the separate handshake
//! slots, `--once` next to a slow peer, and logging at a bounded rate.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use iris_e2e::{KEY_ENV, ListenerProcess, TEST_KEY, send};

use crate::FLOWERS;

/// Connects and reads the listener's challenge: from then on the
/// connection holds one of the listener's handshake slots.
fn connect_and_read_challenge(address: &str) -> TcpStream {
    let mut stream = TcpStream::connect(address).expect("connect");
    let mut header = [0u8; 4];
    stream.read_exact(&mut header).expect("challenge header");
    let mut challenge = vec![0u8; u32::from_be_bytes(header) as usize];
    stream.read_exact(&mut challenge).expect("challenge");
    assert!(challenge.starts_with(b"#CHALLENGE#"), "{challenge:?}");
    stream
}

/// A peer that holds its handshake open by sending one byte of a plausible
/// answer every `gap` (each well within the handshake timeout taken as a
/// per-read timeout), until the listener hangs up. Returns when it noticed.
fn trickle_until_cut(mut stream: TcpStream, gap: Duration) -> Instant {
    let mut answer = 40u32.to_be_bytes().to_vec();
    answer.extend_from_slice(&[b'x'; 40]);
    stream
        .set_read_timeout(Some(gap))
        .expect("set a read timeout");
    for byte in answer {
        if stream.write_all(&[byte]).is_err() {
            break;
        }
        // Waiting for the hang-up doubles as the pause between bytes.
        let mut buf = [0u8; 64];
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => break,
        }
    }
    Instant::now()
}

/// Issue acceptance: with `--handshake-timeout 2 --max-connections 4`,
/// eight peers trickling a byte every 1.5 s do not keep a real client out.
/// The real client connects while all eight hold their handshakes, and
/// must be done before the first of them is cut at its deadline.
#[test]
fn trickling_peers_do_not_keep_a_real_client_out() {
    let listener = ListenerProcess::start(
        &["--handshake-timeout", "2", "--max-connections", "4"],
        &[KEY_ENV],
    );
    let address = listener.address().to_owned();
    let connected_at = Instant::now();
    let peers: Vec<TcpStream> = (0..8)
        .map(|_| connect_and_read_challenge(&address))
        .collect();
    let tricklers: Vec<_> = peers
        .into_iter()
        .map(|peer| thread::spawn(move || trickle_until_cut(peer, Duration::from_millis(1500))))
        .collect();

    let flower = FLOWERS[0].arg();
    let client = send(&address, &["--flower", &flower]);
    let client_done = Instant::now();
    client.assert_all_acknowledged(1);

    let cut: Vec<Instant> = tricklers
        .into_iter()
        .map(|t| t.join().expect("trickler"))
        .collect();
    let first_cut = cut.iter().min().expect("eight tricklers");
    let last_cut = cut.iter().max().expect("eight tricklers");
    assert!(
        client_done < *first_cut,
        "the real client finished {:?} after the first trickler was cut",
        client_done.duration_since(*first_cut)
    );
    // Every trickler was cut at its deadline (2 s after it was accepted),
    // long before its 44 bytes at 1.5 s each (66 s) were through; 20 s is
    // a generous bound for a loaded machine.
    assert!(
        last_cut.duration_since(connected_at) < Duration::from_secs(20),
        "the last trickler was cut only after {:?}",
        last_cut.duration_since(connected_at)
    );
    let finished = listener.stop();
    finished.assert_code(0);
    let summary = finished.summary();
    assert_eq!(summary.get("connections"), 1, "{}", summary.line);
    assert_eq!(summary.get("rejected"), 8, "{}", summary.line);
    assert!(
        finished
            .stderr_text()
            .contains("did not complete within 2.0 s"),
        "{}",
        finished.describe()
    );
}

/// When the handshake slots are all taken, the next connection waits in
/// the backlog and is served once a slot frees at the latest at the
/// deadline of a slow peer ahead of it.
#[test]
fn past_the_handshake_limit_connections_wait_for_a_slot() {
    let listener = ListenerProcess::start(
        &["--handshake-timeout", "1", "--max-handshakes", "2"],
        &[KEY_ENV],
    );
    let address = listener.address().to_owned();
    let slow: Vec<TcpStream> = (0..2)
        .map(|_| connect_and_read_challenge(&address))
        .collect();
    let started = Instant::now();
    let flower = FLOWERS[1].arg();
    let client = send(&address, &["--flower", &flower]);
    client.assert_all_acknowledged(1);
    // It had to wait for a slow peer's deadline: the listener kept it in
    // the backlog rather than refusing it.
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "served after {:?}, before any slot could free",
        started.elapsed()
    );
    drop(slow);
    let finished = listener.stop();
    let stderr = finished.stderr_text();
    assert!(
        stderr.contains("--max-handshakes"),
        "{}",
        finished.describe()
    );
    assert_eq!(finished.summary().get("connections"), 1);
}

/// Issue acceptance: with `--once`, a trickling peer that connected first
/// does not stop the real client's flowers from being printed.
#[test]
fn with_once_a_trickling_peer_does_not_block_the_real_client() {
    let listener = ListenerProcess::start(&["--once", "--handshake-timeout", "5"], &[KEY_ENV]);
    let address = listener.address().to_owned();
    let peer = connect_and_read_challenge(&address);
    let trickler = thread::spawn(move || trickle_until_cut(peer, Duration::from_millis(1000)));

    let flowers: Vec<String> = FLOWERS.iter().map(|f| f.arg()).collect();
    let mut args = Vec::new();
    for flower in &flowers {
        args.extend(["--flower", flower.as_str()]);
    }
    let client = send(&address, &args);
    client.assert_all_acknowledged(3);

    // The listener exits after the real client's session, without waiting
    // for the trickler's handshake to reach its deadline.
    let finished = listener.finish();
    finished.assert_code(0);
    assert_eq!(finished.area_lines().len(), 3, "{}", finished.describe());
    assert!(
        !finished.stderr_text().contains("did not complete within"),
        "the listener waited for the trickler's deadline\n{}",
        finished.describe()
    );
    trickler.join().expect("trickler");
}

/// Issue 8: `--once` exits 1 when its connection fails, also when the
/// machine is busy (the exit status used to race the session's record),
/// and logs how the connection ended.
#[test]
fn once_exits_1_after_a_failed_connection_even_under_load() {
    let busy = AtomicBool::new(true);
    thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| {
                let mut spins = 0u64;
                while busy.load(Ordering::Relaxed) {
                    spins = std::hint::black_box(spins.wrapping_add(1));
                }
            });
        }
        for round in 0..10 {
            let listener = ListenerProcess::start(&["--once"], &[KEY_ENV]);
            let mut connection =
                iris_wire::Client::connect(listener.address(), TEST_KEY.as_bytes())
                    .expect("authenticate");
            // A frame that starts like a pickle and is not one.
            connection
                .send_bytes(b"\x80\x04garbage-not-a-pickle")
                .and_then(|()| connection.flush())
                .expect("send the bad frame");
            let finished = listener.finish();
            drop(connection);
            assert_eq!(
                finished.code(),
                Some(1),
                "round {round}: exit status\n{}",
                finished.describe()
            );
            assert!(
                finished.stderr_text().contains("connection 1 dropped"),
                "round {round}: no line about how the connection ended\n{}",
                finished.describe()
            );
        }
        busy.store(false, Ordering::Relaxed);
    });
}

/// Issue acceptance: 1,000 connections that send a wrong key as fast as
/// they can produce a bounded number of log lines, and the listener keeps
/// serving. The bound: 5 lines per 10 s window one by one, plus one
/// summary line per window; and the lines account for every failure.
#[test]
fn a_flood_of_wrong_keys_is_logged_at_a_bounded_rate() {
    const ATTEMPTS: usize = 1000;
    let listener = ListenerProcess::start(&[], &[KEY_ENV]);
    let address = listener.address().to_owned();
    let started = Instant::now();
    thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                for _ in 0..ATTEMPTS / 4 {
                    wrong_key_attempt(&address);
                }
            });
        }
    });
    let flower = FLOWERS[2].arg();
    let client = send(&address, &["--flower", &flower]);
    client.assert_code(0);
    let finished = listener.stop();
    let elapsed = started.elapsed();
    finished.assert_code(0);
    assert_eq!(finished.area_lines().len(), 1, "{}", finished.describe());
    assert_eq!(
        finished.summary().get("rejected"),
        ATTEMPTS as u64,
        "{}",
        finished.describe()
    );

    let stderr = finished.stderr_text();
    let one_by_one = stderr
        .lines()
        .filter(|l| l.contains(" rejected: ") && !l.contains("more handshakes failed"))
        .count();
    let summaries: Vec<u64> = stderr
        .lines()
        .filter_map(|line| {
            let (_, rest) = line.split_once("WARN ")?;
            let (count, rest) = rest.split_once(' ')?;
            rest.starts_with("more handshakes failed")
                .then(|| count.parse().expect("a count"))
        })
        .collect();
    let windows = elapsed.as_secs() as usize / 10 + 2;
    assert!(
        one_by_one + summaries.len() <= windows * 6,
        "{} lines for {ATTEMPTS} failures in {elapsed:?}:\n{stderr}",
        one_by_one + summaries.len()
    );
    assert_eq!(
        one_by_one as u64 + summaries.iter().sum::<u64>(),
        ATTEMPTS as u64,
        "the lines must account for every failure:\n{stderr}"
    );
    // Nothing else grows with the flood either.
    let lines = stderr.lines().count();
    assert!(lines <= windows * 6 + 10, "{lines} stderr lines:\n{stderr}");
}

/// One handshake with a wrong answer, as fast as the listener allows.
fn wrong_key_attempt(address: &str) {
    let mut stream = connect_and_read_challenge(address);
    let mut answer = b"{sha256}".to_vec();
    answer.extend_from_slice(&[0u8; 32]);
    let mut frame = (answer.len() as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(&answer);
    stream.write_all(&frame).expect("send the wrong answer");
    let mut verdict = Vec::new();
    // #FAILURE#, then the listener hangs up.
    let _ = stream.read_to_end(&mut verdict);
    assert!(verdict.ends_with(b"#FAILURE#"), "{verdict:?}");
}

/// A listener at its connection limit closes new connections before its
/// challenge, and the client says so with its own exit code (8), apart
/// from a wrong key (4).
#[test]
fn a_client_over_the_limit_is_told_the_listener_is_busy() {
    let listener = ListenerProcess::start(&["--max-connections", "1"], &[KEY_ENV]);
    let mut holder =
        iris_wire::Client::connect(listener.address(), TEST_KEY.as_bytes()).expect("first");
    listener.wait_for_log("authenticated", 1);
    let flower = FLOWERS[0].arg();
    let refused = send(listener.address(), &["--flower", &flower]);
    refused.assert_code(8);
    assert!(
        refused.stderr_text().contains("try again later"),
        "{}",
        refused.describe()
    );
    holder.flush().expect("the first connection is still up");
    drop(holder);
}
