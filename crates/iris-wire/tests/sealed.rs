//! Sealed sessions through the blocking and the tokio adapter: policies,
//! fast open, small and large messages, and what a tampered stream does.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;

use iris_wire::handshake::Role;
use iris_wire::seal::RecordError;
use iris_wire::{AuthError, Client, Connection, Error, Listener, Options, Sealing};

const KEY: &[u8] = b"sealed test key";

fn options(sealing: Sealing) -> Options {
    Options::new().with_sealing(sealing)
}

/// A listener with `listener` sealing and a client with `client` sealing
/// exchange one message each way; returns whether each side sealed, or the
/// client's error.
fn converse(listener: Sealing, client: Sealing) -> (Result<bool, Error>, Result<bool, Error>) {
    let bound = Listener::bind_with("127.0.0.1:0", KEY, options(listener)).expect("bind");
    let address = bound.local_addr().to_string();
    let server = thread::spawn(move || -> Result<bool, Error> {
        let mut connection = bound.accept()?;
        let request = connection.recv_bytes()?;
        connection.send_bytes(&request)?;
        connection.flush()?;
        Ok(connection.is_sealed())
    });
    let client = (|| {
        let mut connection = Client::connect_with(&address, KEY, &options(client))?;
        connection.send_bytes(b"ping")?;
        assert_eq!(connection.recv_bytes()?, b"ping");
        Ok(connection.is_sealed())
    })();
    (server.join().expect("server thread"), client)
}

#[test]
fn iris_peers_seal_unless_either_turns_it_off() {
    for (listener, client, sealed) in [
        (Sealing::Prefer, Sealing::Prefer, true),
        (Sealing::Require, Sealing::Prefer, true),
        (Sealing::Prefer, Sealing::Require, true),
        (Sealing::Require, Sealing::Require, true),
        (Sealing::Off, Sealing::Prefer, false),
        (Sealing::Prefer, Sealing::Off, false),
    ] {
        let (server, client_side) = converse(listener, client);
        let case = format!("listener {listener:?}, client {client:?}");
        assert_eq!(server.expect(&case), sealed, "{case}");
        assert_eq!(client_side.expect(&case), sealed, "{case}");
    }
}

#[test]
fn a_side_that_requires_sealing_refuses_one_that_does_not_seal() {
    let (server, client) = converse(Sealing::Off, Sealing::Require);
    let client =
        client.expect_err("a client that requires sealing refuses a listener that does not seal");
    assert!(
        matches!(client, Error::Authentication(AuthError::PeerCannotSeal)),
        "{client}"
    );
    assert!(server.is_err());

    let (server, client) = converse(Sealing::Require, Sealing::Off);
    let server = server.expect_err("a listener that requires sealing refuses an unsealing client");
    assert!(
        matches!(server, Error::Authentication(AuthError::PeerCannotSeal)),
        "{server}"
    );
    assert!(client.is_err());
}

/// To a listener on this host, a fast-open client's challenge leaves in the
/// system call that makes the connection: it is there, whole, the moment
/// the connection can be accepted (on Linux, where the client side of TCP
/// Fast Open is on, as by default; the connection is an ordinary one).
#[cfg(any(target_os = "linux", target_os = "android"))]
#[test]
fn a_fast_open_challenge_is_there_when_the_connection_is_accepted() {
    let client_fast_open = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_fastopen")
        .ok()
        .and_then(|value| value.trim().parse::<u32>().ok())
        .is_some_and(|value| value & 1 == 1);
    for host in ["127.0.0.1:0", "[::1]:0"] {
        let raw = TcpListener::bind(host).expect("bind");
        let address = raw.local_addr().expect("address").to_string();
        let client = thread::spawn(move || {
            // No listener answers: the client only has to send.
            Client::connect_with(&address, KEY, &options(Sealing::Require)).map(drop)
        });
        let (mut accepted, _) = raw.accept().expect("accept");
        accepted.set_nonblocking(true).expect("non-blocking");
        let mut first = [0_u8; 256];
        match accepted.read(&mut first) {
            // With the client side of Fast Open off, the challenge may
            // still win the race to this read: only its bytes are checked.
            Ok(n) => {
                assert!(
                    n > 15 && first[4..15] == *b"#CHALLENGE#",
                    "{host}: {n} bytes"
                );
                assert_eq!(
                    u32::from_be_bytes(first[..4].try_into().expect("4 bytes")) as usize,
                    n - 4,
                    "{host}: the whole challenge frame"
                );
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => assert!(
                !client_fast_open,
                "{host}: the challenge did not come with the connection"
            ),
            Err(e) => panic!("{host}: {e}"),
        }
        drop(accepted);
        assert!(client.join().expect("client thread").is_err());
    }
}

#[test]
fn fast_open_works_over_ipv6_loopback() {
    let bound = Listener::bind_with("[::1]:0", KEY, Options::new()).expect("bind");
    let address = bound.local_addr().to_string();
    let server = thread::spawn(move || -> Result<Vec<u8>, Error> {
        let mut connection = bound.accept()?;
        assert!(connection.is_sealed());
        connection.recv_bytes()
    });
    let mut connection =
        Client::connect_with(&address, KEY, &options(Sealing::Require)).expect("fast open");
    connection.send_bytes(b"over ::1").expect("send");
    connection.close().expect("close");
    assert_eq!(
        server.join().expect("server").expect("received"),
        b"over ::1"
    );
}

#[test]
fn a_fast_open_client_with_the_wrong_key_is_told_so() {
    let bound = Listener::bind_with("127.0.0.1:0", KEY, Options::new()).expect("bind");
    let address = bound.local_addr().to_string();
    let server = thread::spawn(move || bound.accept().map(|_| ()));
    let result = Client::connect_with(&address, b"another key", &options(Sealing::Require))
        .and_then(|mut connection| connection.recv_bytes());
    let error = result.expect_err("wrong key");
    assert!(
        matches!(
            error,
            Error::Authentication(
                AuthError::Rejected | AuthError::WrongDigest | AuthError::PeerClosed
            )
        ),
        "{error}"
    );
    let server = server
        .join()
        .expect("server")
        .expect_err("the listener refuses the key");
    assert!(matches!(server, Error::Authentication(_)), "{server}");
}

/// Many small messages and large ones (over a record, over the write
/// chunk) come through a sealed session intact and in order.
#[test]
fn small_and_large_messages_cross_a_sealed_session() {
    let bound = Listener::bind("127.0.0.1:0", KEY).expect("bind");
    let address = bound.local_addr().to_string();
    let sizes = [0usize, 1, 100, 65_535, 65_536, 65_537, 300_000, 3 << 20];
    let server = thread::spawn(move || -> Result<u64, Error> {
        let mut connection = bound.accept()?;
        assert!(connection.is_sealed());
        let mut count = 0;
        loop {
            match connection.recv_bytes() {
                Ok(frame) => {
                    connection.send_bytes(&frame)?;
                    count += 1;
                }
                Err(Error::Closed) => return Ok(count),
                Err(e) => return Err(e),
            }
        }
    });
    let mut client = Client::connect(&address, KEY).expect("connect");
    for i in 0..20_000u32 {
        client.send_bytes(&i.to_le_bytes()).expect("send");
    }
    for i in 0..20_000u32 {
        assert_eq!(client.recv_bytes().expect("echo"), i.to_le_bytes());
    }
    for size in sizes {
        let payload: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
        client.send_bytes(&payload).expect("send");
        assert_eq!(client.recv_bytes().expect("echo"), payload, "{size} bytes");
    }
    client.close().expect("close");
    assert_eq!(
        server.join().expect("server").expect("echo"),
        20_000 + sizes.len() as u64
    );
}

/// A relay that flips one byte of the client's data after the handshake:
/// the listener reports a tampered record and receives nothing of it.
#[test]
fn a_flipped_byte_after_the_handshake_ends_the_session_with_nothing_delivered() {
    let bound = Listener::bind("127.0.0.1:0", KEY).expect("bind");
    let address = bound.local_addr().to_string();
    let server = thread::spawn(move || -> (Vec<Vec<u8>>, Error) {
        let mut connection = bound.accept().expect("the handshake is untouched");
        let mut received = Vec::new();
        loop {
            match connection.recv_bytes() {
                Ok(frame) => received.push(frame),
                Err(e) => return (received, e),
            }
        }
    });
    // The relay: everything passes, except one byte of what the client
    // sends once the handshake (whose frames are short) is over.
    let relay = TcpListener::bind("127.0.0.1:0").expect("relay");
    let relay_address = relay.local_addr().expect("address").to_string();
    let forward = thread::spawn(move || {
        let (mut client_side, _) = relay.accept().expect("accept");
        let mut listener_side = TcpStream::connect(&address).expect("connect");
        let mut back = (
            client_side.try_clone().expect("clone"),
            listener_side.try_clone().expect("clone"),
        );
        let backwards = thread::spawn(move || std::io::copy(&mut back.1, &mut back.0));
        let mut seen = Vec::new();
        let mut chunk = [0u8; 65_536];
        loop {
            let n = client_side.read(&mut chunk).unwrap_or(0);
            if n == 0 {
                break;
            }
            let before = seen.len();
            seen.extend_from_slice(&chunk[..n]);
            // Flip the 1,000th byte of the stream: past the handshake
            // (a few hundred bytes), inside the first data record.
            if (before..seen.len()).contains(&1_000) {
                chunk[1_000 - before] ^= 0x40;
            }
            if listener_side.write_all(&chunk[..n]).is_err() {
                break;
            }
        }
        let _ = listener_side.shutdown(std::net::Shutdown::Write);
        let _ = backwards.join();
    });
    let mut client = Client::connect(&relay_address, KEY).expect("connect through the relay");
    assert!(client.is_sealed());
    for _ in 0..200 {
        client.send_bytes(b"SECRET-FLOWER-setosa").expect("send");
    }
    let _ = client.close();
    let (received, error) = server.join().expect("server");
    assert!(
        matches!(error, Error::Sealed(RecordError::Tampered { .. })),
        "{error}"
    );
    assert!(
        received.is_empty(),
        "{} frames of a tampered record delivered",
        received.len()
    );
    forward.join().expect("relay");
}

/// The handshake of a sealed session over a stream the caller has, in the
/// tokio adapter talking to the blocking one.
#[test]
fn the_tokio_adapter_seals_with_the_blocking_one() {
    use iris_wire::AsyncConnection;

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (a, b) = std::os::unix::net::UnixStream::pair().expect("pair");
    let blocking = thread::spawn(move || -> Result<Vec<u8>, Error> {
        let mut connection = Connection::authenticate(a, Role::Listener, KEY, &Options::new())?;
        assert!(connection.is_sealed());
        let frame = connection.recv_bytes()?;
        connection.send_bytes(&frame)?;
        connection.close()?;
        Ok(frame)
    });
    runtime.block_on(async {
        b.set_nonblocking(true).expect("nonblocking");
        let stream = tokio::net::UnixStream::from_std(b).expect("tokio stream");
        let mut connection =
            AsyncConnection::authenticate(stream, Role::Client, KEY, &options(Sealing::Require))
                .await
                .expect("authenticate");
        assert!(connection.is_sealed());
        let payload = vec![9u8; 200_000];
        connection.send_bytes(&payload).await.expect("send");
        assert_eq!(connection.recv_bytes().await.expect("echo"), payload);
    });
    assert_eq!(
        blocking.join().expect("thread").expect("listener").len(),
        200_000
    );
}

/// A flush cut short (a timeout around it, a `select!` that drops it) loses
/// no record: what was sealed and not written goes first on the next
/// flush, and the peer receives every frame in order.
#[test]
fn a_cancelled_async_flush_loses_no_record() {
    use iris_wire::AsyncConnection;
    use std::time::Duration;

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let (a, b) = tokio::io::duplex(1024);
        let listener = tokio::spawn(async move {
            let mut connection =
                AsyncConnection::authenticate(a, Role::Listener, KEY, &Options::new()).await?;
            // Nothing is read until the client has cut its first flush short.
            tokio::time::sleep(Duration::from_millis(100)).await;
            let mut frames = Vec::new();
            for _ in 0..9 {
                frames.push(connection.recv_bytes().await?);
            }
            Ok::<_, Error>(frames)
        });
        let mut client = AsyncConnection::authenticate(b, Role::Client, KEY, &Options::new())
            .await
            .expect("authenticate");
        for i in 0..8u8 {
            client.send_bytes(&[i; 1000]).await.expect("queue");
        }
        let cut = tokio::time::timeout(Duration::from_millis(20), client.flush()).await;
        assert!(
            cut.is_err(),
            "the pipe holds 1 KiB: the flush cannot finish before it is read"
        );
        client.send_bytes(b"after").await.expect("queue");
        client.flush().await.expect("the rest goes out");
        let frames = listener.await.expect("task").expect("listener");
        for (i, frame) in frames[..8].iter().enumerate() {
            assert_eq!(frame, &vec![i as u8; 1000]);
        }
        assert_eq!(frames[8], b"after");
    });
}

/// A stream whose reads wait for the peer to go quiet first, so that what
/// the peer sends in a burst is read in one go.
struct SlowReads(std::os::unix::net::UnixStream);

impl Read for SlowReads {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        thread::sleep(std::time::Duration::from_millis(50));
        self.0.read(buf)
    }
}

impl Write for SlowReads {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

impl iris_wire::Transport for SlowReads {
    fn set_read_timeout(&mut self, timeout: Option<std::time::Duration>) -> std::io::Result<()> {
        self.0.set_read_timeout(timeout)
    }
    fn set_write_timeout(&mut self, timeout: Option<std::time::Duration>) -> std::io::Result<()> {
        self.0.set_write_timeout(timeout)
    }
}

/// Frames that arrived with the handshake's last record wait in the record
/// layer: `has_buffered_frame` says so at once, so that a server polling
/// the socket does not wait for bytes it already has.
#[test]
fn frames_that_came_with_the_handshake_count_as_buffered() {
    let (a, b) = std::os::unix::net::UnixStream::pair().expect("pair");
    let client = thread::spawn(move || -> Result<(), Error> {
        let mut connection = Connection::authenticate(b, Role::Client, KEY, &Options::new())?;
        connection.send_bytes(b"ping")?;
        connection.flush()?;
        assert_eq!(connection.recv_bytes()?, b"pong");
        Ok(())
    });
    let mut listener = Connection::authenticate(SlowReads(a), Role::Listener, KEY, &Options::new())
        .expect("authenticate");
    assert!(
        listener.has_buffered_frame(),
        "the ping came with the client's last handshake record"
    );
    assert_eq!(listener.recv_bytes().expect("ping"), b"ping");
    listener.send_bytes(b"pong").expect("pong");
    listener.flush().expect("flush");
    client.join().expect("client").expect("client side");
}

/// A client's last handshake flight waits for its first message, to leave
/// with it, but never for long: a client that sends nothing is still
/// authenticated well within the listener's handshake deadline, and one
/// that waits to receive first sends it before waiting, so the listener's
/// message arrives. Fast open and pipelined alike.
#[test]
fn the_last_flight_leaves_without_a_message_to_carry_it() {
    for sealing in [Sealing::Require, Sealing::Prefer] {
        let listener_options = options(Sealing::Prefer)
            .with_handshake_timeout(Some(std::time::Duration::from_secs(3)));
        let bound = Listener::bind_with("127.0.0.1:0", KEY, listener_options).expect("bind");
        let address = bound.local_addr().to_string();
        let (authenticated, told) = std::sync::mpsc::channel();
        let server = thread::spawn(move || -> Result<(), Error> {
            let mut connection = bound.accept()?;
            authenticated
                .send(connection.is_sealed())
                .expect("test thread");
            connection.send_bytes(b"welcome first")?;
            connection.flush()
        });
        let mut client = Client::connect_with(&address, KEY, &options(sealing)).expect("connect");
        // Nothing sent: the listener authenticates the client all the same.
        assert_eq!(told.recv(), Ok(true), "{sealing:?}");
        assert_eq!(client.recv_bytes().expect("receive"), b"welcome first");
        server.join().expect("server thread").expect("server");

        // Receiving first: the wait sends the held flight.
        let bound =
            Listener::bind_with("127.0.0.1:0", KEY, options(Sealing::Prefer)).expect("bind");
        let address = bound.local_addr().to_string();
        let server = thread::spawn(move || -> Result<(), Error> {
            let mut connection = bound.accept()?;
            connection.send_bytes(b"after you")?;
            let reply = connection.recv_bytes()?;
            assert_eq!(reply, b"thanks");
            Ok(())
        });
        let mut client = Client::connect_with(&address, KEY, &options(sealing)).expect("connect");
        assert!(
            client
                .poll(Some(std::time::Duration::from_secs(3)))
                .expect("poll"),
            "{sealing:?}"
        );
        assert_eq!(client.recv_bytes().expect("receive"), b"after you");
        client.send_bytes(b"thanks").expect("send");
        client.close().expect("close");
        server.join().expect("server thread").expect("server");
    }
}
