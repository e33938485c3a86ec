//! The blocking adapter between iris peers: TCP and Unix sockets, buffering,
//! and everything a hostile or broken peer can do to a listener.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::Duration;

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
    let options = Options::new().handshake_timeout(Some(Duration::from_millis(200)));
    let (local, server) = serve_one("127.0.0.1:0", options, |c| c.map(|_| ()));
    let _raw = TcpStream::connect(&local).expect("connect");
    let err = server.join().expect("server").expect_err("silence");
    assert!(matches!(err, Error::Timeout { .. }), "{err}");
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

#[test]
fn a_huge_length_is_refused_before_allocating() {
    let mut header = (-1i32).to_be_bytes().to_vec();
    header.extend_from_slice(&(1u64 << 63).to_be_bytes());
    let err = listener_error_after_sending(&header);
    assert!(
        matches!(err, Error::FrameTooLarge { len, .. } if len == 1 << 63),
        "{err}"
    );
}

#[test]
fn a_negative_length_is_refused() {
    let err = listener_error_after_sending(&(-2i32).to_be_bytes());
    assert!(matches!(err, Error::BadLength { header: -2 }), "{err}");
}

#[test]
fn a_truncated_frame_is_reported_with_its_sizes() {
    let mut bytes = 1000u32.to_be_bytes().to_vec();
    bytes.extend_from_slice(b"only ten b");
    let err = listener_error_after_sending(&bytes);
    assert!(
        matches!(
            err,
            Error::Truncated {
                expected: 1004,
                received: 14
            }
        ),
        "{err}"
    );
    // A large frame, read past the buffer, truncated too.
    let mut bytes = (10u32 << 20).to_be_bytes().to_vec();
    bytes.extend(std::iter::repeat_n(7u8, 1 << 20));
    let err = listener_error_after_sending(&bytes);
    assert!(
        matches!(err, Error::Truncated { expected, received } if expected == (10 << 20) + 4 && received == (1 << 20) + 4),
        "{err}"
    );
}

#[test]
fn a_frame_over_the_limit_is_refused_and_a_raised_limit_accepts_it() {
    let options = Options::new().max_frame(1024);
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
        matches!(err, Error::FrameTooLarge { len: 2, max: 1 }),
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
    let options = Options::new().write_timeout(Some(Duration::from_millis(200)));
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
