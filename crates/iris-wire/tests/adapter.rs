//! The blocking adapter between iris peers: TCP and Unix sockets, buffering,
//! and everything a hostile or broken peer can do to a listener.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use iris_wire::frame::FrameError;
use iris_wire::handshake::{AuthKey, Handshake};
use iris_wire::{AuthError, Client, Connection, Error, Listener, Options};
use serde::{Deserialize, Serialize};

const KEY: &[u8] = b"test key";

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Reading {
    sensor: String,
    values: Vec<f64>,
}

/// Runs `serve` on one accepted connection in a thread; returns the address.
fn serve_one<T: Send + 'static>(
    address: &str,
    options: Options,
    serve: impl FnOnce(Result<Connection, Error>) -> T + Send + 'static,
) -> (String, thread::JoinHandle<T>) {
    let listener = Listener::bind_with(address, KEY, options).expect("bind");
    let local = listener.local_addr().to_string();
    let handle = thread::spawn(move || serve(listener.accept()));
    (local, handle)
}

fn echo_conversation(address: &str) {
    let (local, server) = serve_one(address, Options::default(), |connection| {
        let mut connection = connection.expect("authenticated");
        // Echo until the client closes.
        loop {
            match connection.recv_bytes() {
                Ok(frame) => connection.send_bytes(&frame).expect("echo"),
                Err(Error::Closed) => break,
                Err(e) => panic!("server: {e}"),
            }
        }
    });
    let mut connection = Client::connect(&local, KEY).expect("connect");
    assert!(connection.peer_is_iris_listener());
    // Many small frames, then one above the read buffer size.
    for i in 0..10_000u32 {
        connection.send_bytes(&i.to_be_bytes()).expect("send");
    }
    for i in 0..10_000u32 {
        assert_eq!(connection.recv_bytes().expect("recv"), i.to_be_bytes());
    }
    let reading = Reading {
        sensor: "petal".into(),
        values: vec![1.4, 0.2],
    };
    connection.send(&reading).expect("send typed");
    assert_eq!(connection.recv::<Reading>().expect("recv typed"), reading);
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    connection.send_bytes(&big).expect("send big");
    assert!(connection.recv_frame().expect("recv big") == big);
    connection.send_bytes(b"").expect("empty frame");
    assert_eq!(connection.recv_bytes().expect("empty frame back"), b"");
    connection.close().expect("close");
    server.join().expect("server");
}

#[test]
fn iris_peers_talk_over_tcp() {
    echo_conversation("127.0.0.1:0");
}

#[test]
fn iris_peers_talk_over_ipv6_when_available() {
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        eprintln!("skipping: no IPv6 loopback on this machine");
        return;
    }
    echo_conversation("[::1]:0");
}

#[test]
fn iris_peers_talk_over_unix_sockets() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("iris.sock");
    echo_conversation(path.to_str().expect("utf-8 path"));
    assert!(
        !path.exists(),
        "the listener removes its socket file when dropped"
    );
}

#[test]
fn a_stale_unix_socket_is_replaced_but_a_live_one_and_other_files_are_not() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("iris.sock");
    let address = path.to_str().expect("utf-8 path");
    // std leaves the socket file behind when the listener is dropped: stale.
    drop(std::os::unix::net::UnixListener::bind(&path).expect("bind"));
    assert!(path.exists());
    let live = Listener::bind(address, KEY).expect("stale socket replaced");
    let err = Listener::bind(address, KEY).expect_err("live socket kept");
    assert!(
        err.to_string().contains("another listener is running"),
        "{err}"
    );
    drop(live);

    let file = dir.path().join("notes.txt");
    std::fs::write(&file, "keep me").expect("write");
    let err = Listener::bind(file.to_str().expect("utf-8"), KEY).expect_err("not a socket");
    assert!(err.to_string().contains("not a socket"), "{err}");
    assert_eq!(std::fs::read_to_string(&file).expect("read"), "keep me");
}

#[test]
fn a_burst_of_connects_waits_in_the_backlog_unaccepted() {
    // Past std's backlog of 128 the kernel drops connects, and each dropped
    // client waits for a retransmission (1, 3, 7 s...): the listener's
    // backlog must hold a burst.
    const BURST: usize = 300;
    let listener = Listener::bind("127.0.0.1:0", KEY).expect("bind");
    let address: std::net::SocketAddr = listener
        .local_addr()
        .to_string()
        .parse()
        .expect("a socket address");
    let held: Vec<TcpStream> = (1..=BURST)
        .map(|n| {
            TcpStream::connect_timeout(&address, Duration::from_secs(10))
                .unwrap_or_else(|e| panic!("connect {n} of {BURST}, none accepted yet: {e}"))
        })
        .collect();
    assert_eq!(held.len(), BURST);
}

#[test]
fn empty_keys_are_refused_on_both_sides() {
    assert!(matches!(
        Listener::bind("127.0.0.1:0", b""),
        Err(Error::EmptyAuthkey)
    ));
    assert!(matches!(
        Client::connect("127.0.0.1:1", b""),
        Err(Error::EmptyAuthkey)
    ));
}

#[test]
fn a_wrong_key_fails_both_iris_sides() {
    let (local, server) = serve_one("127.0.0.1:0", Options::default(), |c| c.map(|_| ()));
    let err = Client::connect(&local, b"other key").expect_err("wrong key");
    assert!(
        matches!(err, Error::Authentication(AuthError::Rejected)),
        "{err}"
    );
    let err = server.join().expect("server").expect_err("wrong key");
    assert!(
        matches!(err, Error::Authentication(AuthError::WrongDigest)),
        "{err}"
    );
}

#[test]
fn connecting_to_nothing_says_so() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let address = format!("127.0.0.1:{port}");
    let err = Client::connect(&address, KEY).expect_err("nothing listens");
    assert!(matches!(err, Error::Connect { .. }), "{err}");
    assert!(
        err.to_string()
            .starts_with(&format!("cannot connect to {address}")),
        "{err}"
    );
}

#[test]
fn garbage_instead_of_a_handshake_is_refused() {
    let (local, server) = serve_one("127.0.0.1:0", Options::default(), |c| c.map(|_| ()));
    let mut raw = TcpStream::connect(&local).expect("connect");
    raw.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("write");
    let err = server.join().expect("server").expect_err("garbage");
    assert!(
        matches!(err, Error::Authentication(AuthError::Protocol(_))),
        "{err}"
    );
}

#[test]
fn a_silent_peer_times_out_during_the_handshake() {
    let options = Options::new().with_handshake_timeout(Some(Duration::from_millis(200)));
    let (local, server) = serve_one("127.0.0.1:0", options, |c| c.map(|_| ()));
    let _raw = TcpStream::connect(&local).expect("connect");
    let err = server.join().expect("server").expect_err("silence");
    assert!(matches!(err, Error::HandshakeTimeout { .. }), "{err}");
}

/// Writes `bytes` one at a time, `gap` apart, until they run out or the
/// peer hangs up; returns when it stopped.
fn trickle(stream: &mut TcpStream, bytes: &[u8], gap: Duration) -> Instant {
    for byte in bytes {
        if stream.write_all(&[*byte]).is_err() {
            break;
        }
        thread::sleep(gap);
    }
    Instant::now()
}

/// The handshake timeout is a deadline for the whole handshake, not a
/// timeout per read: a peer that sends a byte every 150 ms (each read
/// well within the 600 ms) is cut off once 600 ms have passed in all.
#[test]
fn a_listener_cuts_a_trickling_client_at_the_deadline() {
    let limit = Duration::from_millis(600);
    let options = Options::new().with_handshake_timeout(Some(limit));
    let (local, server) = serve_one("127.0.0.1:0", options, |c| c.map(|_| ()));
    let mut raw = TcpStream::connect(&local).expect("connect");
    let started = Instant::now();
    // A well-formed answer's first bytes: a frame header announcing 40
    // bytes, then "{sha256}" and more, slowly.
    let mut answer = 40u32.to_be_bytes().to_vec();
    answer.extend_from_slice(b"{sha256}0123456789012345678901234567890");
    let trickler = thread::spawn(move || trickle(&mut raw, &answer, Duration::from_millis(150)));
    let err = server.join().expect("server").expect_err("trickle");
    let cut_after = started.elapsed();
    assert!(matches!(err, Error::HandshakeTimeout { .. }), "{err}");
    assert!(err.to_string().contains("0.6 s"), "{err}");
    // Cut at the deadline: not before it, and long before the 44 bytes
    // (6.6 s at this pace) were through. The upper bound is generous for
    // a loaded machine.
    assert!(cut_after >= limit, "cut after {cut_after:?}");
    assert!(
        cut_after < Duration::from_secs(4),
        "cut after {cut_after:?}"
    );
    // The trickler noticed the hang-up before it ran out of bytes.
    let stopped = trickler.join().expect("trickler");
    assert!(stopped.duration_since(started) < Duration::from_secs(6));
}

/// A fake listener that trickles its challenge keeps an iris client no
/// longer than the client's deadline.
#[test]
fn a_client_gives_up_on_a_trickling_listener_at_its_deadline() {
    let fake = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = fake.local_addr().expect("address").to_string();
    let trickler = thread::spawn(move || {
        let (mut stream, _) = fake.accept().expect("accept");
        let mut challenge = 59u32.to_be_bytes().to_vec();
        challenge.extend_from_slice(b"#CHALLENGE#{sha256}");
        challenge.extend_from_slice(&[7; 40]);
        trickle(&mut stream, &challenge, Duration::from_millis(150))
    });
    let limit = Duration::from_millis(600);
    let options = Options::new().with_handshake_timeout(Some(limit));
    let started = Instant::now();
    let err = Client::connect_with(&address, KEY, &options).expect_err("trickle");
    let gave_up_after = started.elapsed();
    assert!(matches!(err, Error::HandshakeTimeout { .. }), "{err}");
    assert!(gave_up_after >= limit, "gave up after {gave_up_after:?}");
    assert!(
        gave_up_after < Duration::from_secs(4),
        "gave up after {gave_up_after:?}"
    );
    trickler.join().expect("trickler");
}

/// A fake listener without the key poses the challenge one of our clients
/// sent it to a second client of the same process, hoping to relay the
/// answer: the second client refuses to answer.
#[test]
fn a_client_does_not_answer_a_challenge_reflected_from_another_client() {
    let fake = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = fake.local_addr().expect("address").to_string();
    let options = Options::new().with_handshake_timeout(Some(Duration::from_secs(20)));
    let first = {
        let (address, options) = (address.clone(), options.clone());
        thread::spawn(move || Client::connect_with(&address, KEY, &options))
    };
    // Connection 1: pose a CPython-style challenge (no mark), take the
    // answer, welcome it, and read the client's own challenge.
    let (mut one, _) = fake.accept().expect("accept 1");
    let mut fake_listener =
        Handshake::listener(&AuthKey::new(b"not the key").expect("key"), [1; 40], false);
    let marked = fake_listener.take_outgoing();
    // Drop the iris mark so the client waits for #WELCOME# before challenging.
    let mark = iris_wire::handshake::IRIS_MARK.len();
    let mut challenge = marked[..marked.len() - mark].to_vec();
    let len = (challenge.len() - 4) as u32;
    challenge[..4].copy_from_slice(&len.to_be_bytes());
    one.write_all(&challenge).expect("challenge 1");
    let _answer = read_frame(&mut one);
    one.write_all(&frame(b"#WELCOME#")).expect("welcome 1");
    let own = read_frame(&mut one);
    assert!(own.starts_with(b"#CHALLENGE#{sha256}"), "{own:?}");
    // Connection 2: reflect it.
    let second = {
        let (address, options) = (address.clone(), options.clone());
        thread::spawn(move || Client::connect_with(&address, KEY, &options))
    };
    let (mut two, _) = fake.accept().expect("accept 2");
    two.write_all(&frame(&own)).expect("reflected challenge");
    let err = second
        .join()
        .expect("second client")
        .expect_err("reflected");
    assert!(
        matches!(err, Error::Authentication(AuthError::ReflectedChallenge)),
        "{err}"
    );
    // Nothing came back on connection 2 that could answer connection 1.
    let mut rest = Vec::new();
    two.read_to_end(&mut rest).expect("read");
    assert!(rest.is_empty(), "the second client sent {rest:?}");
    drop(one);
    first
        .join()
        .expect("first client")
        .expect_err("fake listener");
}

fn frame(payload: &[u8]) -> Vec<u8> {
    let mut bytes = (payload.len() as u32).to_be_bytes().to_vec();
    bytes.extend_from_slice(payload);
    bytes
}

fn read_frame(stream: &mut TcpStream) -> Vec<u8> {
    let mut header = [0u8; 4];
    stream.read_exact(&mut header).expect("frame header");
    let mut payload = vec![0u8; u32::from_be_bytes(header) as usize];
    stream.read_exact(&mut payload).expect("frame payload");
    payload
}

/// Authenticates a raw socket with the sans-IO handshake, so the test can
/// then send bytes no well-behaved peer would.
fn raw_authenticated(address: &str) -> TcpStream {
    let mut stream = TcpStream::connect(address).expect("connect");
    let mut handshake = Handshake::client(&AuthKey::new(KEY).expect("key"), [3; 40], false);
    while !handshake.is_complete() {
        let mut header = [0u8; 4];
        stream.read_exact(&mut header).expect("frame header");
        let mut payload = vec![0u8; u32::from_be_bytes(header) as usize];
        stream.read_exact(&mut payload).expect("frame payload");
        handshake.receive(&payload).expect("handshake step");
        stream.write_all(&handshake.take_outgoing()).expect("write");
    }
    stream
}

fn listener_error_after_sending(bytes: &[u8]) -> Error {
    let (local, server) = serve_one("127.0.0.1:0", Options::default(), |connection| {
        let mut connection = connection.expect("authenticated");
        connection.recv_bytes().expect_err("bad frame")
    });
    let mut raw = raw_authenticated(&local);
    raw.write_all(bytes).expect("write");
    drop(raw);
    server.join().expect("server")
}

/// Over a socket: the error. That nothing is allocated for it is checked
/// where it can be, on the sans-I/O decoder (`frame::decoder` tests).
#[test]
fn a_huge_length_is_refused() {
    let mut header = (-1i32).to_be_bytes().to_vec();
    header.extend_from_slice(&(1u64 << 63).to_be_bytes());
    let err = listener_error_after_sending(&header);
    assert!(
        matches!(err, Error::Frame(FrameError::TooLarge { len, .. }) if len == 1 << 63),
        "{err}"
    );
}

#[test]
fn a_negative_length_is_refused() {
    let err = listener_error_after_sending(&(-2i32).to_be_bytes());
    assert!(
        matches!(err, Error::Frame(FrameError::BadLength { header: -2 })),
        "{err}"
    );
}

#[test]
fn a_truncated_frame_is_reported_with_its_sizes() {
    let mut bytes = 1000u32.to_be_bytes().to_vec();
    bytes.extend_from_slice(b"only ten b");
    let err = listener_error_after_sending(&bytes);
    assert!(
        matches!(
            err,
            Error::Frame(FrameError::Truncated {
                expected: 1004,
                received: 14
            })
        ),
        "{err}"
    );
    // A large frame, read past the buffer, truncated too.
    let mut bytes = (10u32 << 20).to_be_bytes().to_vec();
    bytes.extend(std::iter::repeat_n(7u8, 1 << 20));
    let err = listener_error_after_sending(&bytes);
    assert!(
        matches!(err, Error::Frame(FrameError::Truncated { expected, received }) if expected == (10 << 20) + 4 && received == (1 << 20) + 4),
        "{err}"
    );
}

#[test]
fn a_frame_over_the_limit_is_refused_and_a_raised_limit_accepts_it() {
    let options = Options::new().with_max_frame(1024);
    let (local, server) = serve_one("127.0.0.1:0", options, |connection| {
        let mut connection = connection.expect("authenticated");
        let first = connection.recv_bytes().expect("within the limit");
        connection.set_max_frame(1);
        let err = connection.recv_bytes().expect_err("over the limit");
        (first, err)
    });
    let mut client = Client::connect(&local, KEY).expect("connect");
    client.send_bytes(&[1; 1024]).expect("send");
    client.send_bytes(&[2; 2]).expect("send");
    client.flush().expect("flush");
    let (first, err) = server.join().expect("server");
    assert_eq!(first.len(), 1024);
    assert!(
        matches!(err, Error::Frame(FrameError::TooLarge { len: 2, max: 1 })),
        "{err}"
    );
    assert!(
        err.to_string().contains("raise the maximum frame size"),
        "{err}"
    );
}

#[test]
fn poll_reports_readiness_without_consuming() {
    let (local, server) = serve_one("127.0.0.1:0", Options::default(), |connection| {
        let mut connection = connection.expect("authenticated");
        let request = connection.recv_bytes().expect("request");
        connection.send_bytes(&request).expect("reply");
        connection.close().expect("close");
    });
    let mut client = Client::connect(&local, KEY).expect("connect");
    assert!(
        !client.poll(Some(Duration::ZERO)).expect("poll"),
        "nothing sent yet"
    );
    client.send_bytes(b"x").expect("send");
    // poll flushes what is queued, then waits for the reply.
    assert!(client.poll(None).expect("poll"));
    assert_eq!(client.recv_bytes().expect("reply"), b"x");
    server.join().expect("server");
    assert!(matches!(client.recv_bytes(), Err(Error::Closed)));
}

#[test]
fn a_peer_that_stops_reading_times_out_the_sender() {
    let options = Options::new().with_write_timeout(Some(Duration::from_millis(200)));
    let (local, server) = serve_one("127.0.0.1:0", options, |connection| {
        let mut connection = connection.expect("authenticated");
        let chunk = vec![0u8; 1 << 20];
        // The socket buffers hold a few MiB at most; 1 GiB is a bound, not a goal.
        for _ in 0..1024 {
            if let Err(e) = connection.send_bytes(&chunk) {
                return e;
            }
        }
        panic!("a GiB went into a peer that never reads");
    });
    let _silent_reader = Client::connect(&local, KEY).expect("connect");
    let err = server.join().expect("server");
    assert!(matches!(err, Error::Timeout { .. }), "{err}");
    assert!(err.to_string().contains("the peer to read"), "{err}");
}

#[test]
fn a_read_timeout_ends_a_receive_from_a_silent_peer() {
    let options = Options::new().with_read_timeout(Some(Duration::from_millis(200)));
    let (local, server) = serve_one("127.0.0.1:0", options, |connection| {
        let mut connection = connection.expect("authenticated");
        let started = Instant::now();
        (connection.recv_bytes().map(drop), started.elapsed())
    });
    let _silent = Client::connect(&local, KEY).expect("connect");
    let (result, waited) = server.join().expect("server");
    assert!(
        matches!(
            result,
            Err(Error::Timeout {
                waiting_for: "a message"
            })
        ),
        "{result:?}"
    );
    assert!(waited >= Duration::from_millis(190), "{waited:?}");
}

/// Both sides, after a handshake under a short deadline: a receive and a
/// blocked send wait past where that deadline fell, as the options (no
/// read or write timeout) say. The handshake bounds its own reads and
/// writes through the stream's timeouts; none of them may outlive it.
///
/// Over loopback TCP a blocked send usually creeps on as the receiving
/// kernel makes room, so a stale write timeout shows for sure only over a
/// Unix socket, whose buffer does not grow.
fn no_handshake_timeout_outlives_the_handshake(address: &str, sealing: iris_wire::Sealing) {
    const LIMIT: Duration = Duration::from_millis(400);
    const PAST_IT: Duration = Duration::from_millis(600);
    // More than the socket buffers of both ends hold.
    const BULK: usize = 32 << 20;
    let options = Options::new().with_handshake_timeout(Some(LIMIT));
    let (local, server) = serve_one(address, options.clone(), |connection| {
        let mut connection = connection.expect("authenticated");
        let started = Instant::now();
        assert_eq!(connection.recv_bytes().expect("waits for hello"), b"hello");
        let waited = started.elapsed();
        thread::sleep(PAST_IT);
        connection.send_bytes(b"world").expect("send");
        connection.flush().expect("flush");
        // The client's bulk send blocks until this reads it. A blocked send
        // that makes some progress returns what it sent and the next one
        // waits afresh: two waits of the handshake's time must go by.
        thread::sleep(2 * PAST_IT);
        assert_eq!(connection.recv_bytes().expect("bulk").len(), BULK);
        connection.send_bytes(b"done").expect("send");
        connection.close().expect("close");
        waited
    });
    let mut connection =
        Client::connect_with(&local, KEY, &options.with_sealing(sealing)).expect("connect");
    assert_eq!(connection.is_sealed(), sealing != iris_wire::Sealing::Off);
    // A fast-open client's last flight leaves now, not with the hello: the
    // listener's handshake ends here and its first receive waits.
    connection.flush().expect("flush");
    thread::sleep(PAST_IT);
    connection.send_bytes(b"hello").expect("send");
    let started = Instant::now();
    assert_eq!(connection.recv_bytes().expect("waits for world"), b"world");
    assert!(started.elapsed() >= PAST_IT - Duration::from_millis(10));
    connection
        .send_bytes(&vec![0x5a; BULK])
        .expect("a send blocked past the handshake's deadline");
    assert_eq!(connection.recv_bytes().expect("done"), b"done");
    let server_waited = server.join().expect("server");
    assert!(
        server_waited >= PAST_IT - Duration::from_millis(10),
        "{server_waited:?}"
    );
}

#[test]
fn no_handshake_timeout_outlives_a_sealed_fast_open_handshake_over_tcp() {
    no_handshake_timeout_outlives_the_handshake("127.0.0.1:0", iris_wire::Sealing::Require);
}

#[cfg(unix)]
#[test]
fn no_handshake_timeout_outlives_a_handshake_over_a_unix_socket() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, sealing) in [
        ("fast-open.sock", iris_wire::Sealing::Require),
        ("unsealed.sock", iris_wire::Sealing::Off),
    ] {
        let path = dir.path().join(name);
        no_handshake_timeout_outlives_the_handshake(path.to_str().expect("utf-8"), sealing);
    }
}

/// Accepted TCP connections carry the keepalive settings asked for, and
/// `TCP_USER_TIMEOUT` bounds unacknowledged data as long; Nagle is off
/// (set on the listening socket, which accepted ones inherit on Linux).
#[cfg(target_os = "linux")]
#[test]
fn accepted_connections_get_the_keepalive_asked_for() {
    let idle = Duration::from_secs(12);
    let options = Options::new().with_keepalive(Some(idle));
    assert_eq!(options.keepalive_limit(), Some(Duration::from_secs(18)));
    let listener = Listener::bind_with("127.0.0.1:0", KEY, options).expect("bind");
    let _client = TcpStream::connect(listener.local_addr().to_string()).expect("connect");
    let (stream, _) = listener.accept_stream().expect("accept");
    let iris_wire::Stream::Tcp(tcp) = &stream else {
        panic!("a TCP stream")
    };
    let socket = socket2::SockRef::from(tcp);
    assert!(socket.tcp_nodelay().expect("TCP_NODELAY"));
    assert!(socket.keepalive().expect("SO_KEEPALIVE"));
    assert_eq!(socket.tcp_keepalive_time().expect("TCP_KEEPIDLE"), idle);
    assert_eq!(
        socket.tcp_keepalive_interval().expect("TCP_KEEPINTVL"),
        iris_wire::keepalive_interval(idle)
    );
    assert_eq!(
        socket.tcp_keepalive_retries().expect("TCP_KEEPCNT"),
        iris_wire::KEEPALIVE_PROBES
    );
    assert_eq!(
        socket.tcp_user_timeout().expect("TCP_USER_TIMEOUT"),
        Some(Duration::from_secs(18))
    );

    // Off by default: the system's setting stays.
    let listener = Listener::bind("127.0.0.1:0", KEY).expect("bind");
    let _client = TcpStream::connect(listener.local_addr().to_string()).expect("connect");
    let (stream, _) = listener.accept_stream().expect("accept");
    let iris_wire::Stream::Tcp(tcp) = &stream else {
        panic!("a TCP stream")
    };
    let socket = socket2::SockRef::from(tcp);
    assert!(!socket.keepalive().expect("SO_KEEPALIVE"));
    assert!(socket.tcp_nodelay().expect("TCP_NODELAY"));
}

/// Both sides over a `UnixStream::pair()` the caller made, with the stream
/// handed back afterwards, bytes already read included. Only an unsealed
/// session has a plain stream to hand back.
#[cfg(unix)]
#[test]
fn streams_the_caller_has_authenticate_and_come_back() {
    use iris_wire::handshake::Role;
    use iris_wire::seal::RecordError;
    use std::os::unix::net::UnixStream;

    let (a, b) = UnixStream::pair().expect("pair");
    let sealed =
        thread::spawn(move || Connection::authenticate(a, Role::Listener, KEY, &Options::new()));
    let client =
        Connection::authenticate(b, Role::Client, KEY, &Options::new()).expect("authenticate");
    let sealed = sealed.join().expect("listener").expect("listener side");
    assert!(sealed.is_sealed() && client.is_sealed());
    let refused = sealed
        .into_parts()
        .expect_err("a sealed session has no plain stream");
    assert!(
        matches!(refused, Error::Sealed(RecordError::NoPlainStream)),
        "{refused}"
    );

    let unsealed = Options::new().with_sealing(iris_wire::Sealing::Off);
    let (a, b) = UnixStream::pair().expect("pair");
    let server_options = unsealed.clone();
    let server = thread::spawn(move || -> Result<(UnixStream, Vec<u8>), Error> {
        let mut connection = Connection::authenticate(a, Role::Listener, KEY, &server_options)?;
        assert_eq!(connection.recv_bytes()?, b"first");
        connection.into_parts()
    });
    let mut client =
        Connection::authenticate(b, Role::Client, KEY, &unsealed).expect("authenticate");
    client.send_bytes(b"first").expect("send");
    client.send_bytes(b"second").expect("send");
    client.flush().expect("flush");
    drop(client);
    let (mut stream, unread) = server.join().expect("server").expect("server side");
    // Whatever of "second" the server had read is handed back, and the rest
    // is still in the stream.
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest).expect("read the rest");
    let mut all = unread;
    all.extend_from_slice(&rest);
    assert_eq!(all, [&6u32.to_be_bytes()[..], b"second"].concat());
}
