//! The tokio adapter (feature `tokio`), with public API only: against itself,
//! against the blocking adapter, over streams the caller already has, and
//! against the real CPython 3.12 and 3.13 in both roles.

use std::io::Write;
use std::time::{Duration, Instant};

use iris_testkit::{Python, pythons};
use iris_wire::handshake::{AuthKey, Role};
use iris_wire::{
    Address, AsyncClient, AsyncConnection, AsyncListener, AuthError, Client, Error, Listener,
    Options,
};
use tokio::io::{AsyncRead, AsyncWrite};

mod common;

use common::{BIG_LEN, KEY, assert_peer_done, big_payload, python_listener, python_peer};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// Echoes frames until the peer closes.
async fn echo<S: AsyncRead + AsyncWrite + Unpin>(
    mut connection: AsyncConnection<S>,
) -> Result<u32, Error> {
    let mut echoed = 0;
    loop {
        match connection.recv_bytes().await {
            Ok(frame) => connection.send_bytes(&frame).await?,
            Err(Error::Closed) => return Ok(echoed),
            Err(e) => return Err(e),
        }
        echoed += 1;
        connection.flush().await?;
    }
}

#[test]
fn async_listener_and_async_client_talk_typed_and_raw() {
    runtime().block_on(async {
        let listener = AsyncListener::bind("127.0.0.1:0", KEY).expect("bind");
        let address = listener.local_addr().to_string();
        let server = tokio::spawn(async move {
            let mut connection = listener.accept().await?;
            let numbers: Vec<u32> = connection.recv().await?;
            connection.send(&numbers.iter().sum::<u32>()).await?;
            let raw = connection.recv_bytes().await?;
            connection.send_bytes(&raw.to_ascii_uppercase()).await?;
            connection.close().await
        });
        let mut client = AsyncClient::connect(&address, KEY).await.expect("connect");
        client.send(&vec![1u32, 2, 3]).await.expect("send");
        assert_eq!(client.recv::<u32>().await.expect("sum"), 6);
        client.send_bytes(b"hello").await.expect("send");
        assert_eq!(client.recv_bytes().await.expect("reply"), b"HELLO");
        assert!(matches!(client.recv_bytes().await, Err(Error::Closed)));
        server.await.expect("server task").expect("server");
    });
}

/// The blocking and the async adapter drive the same core: each serves the
/// other.
#[test]
fn async_and_blocking_sides_interoperate() {
    let rt = runtime();
    // Async listener, blocking client.
    let listener = rt
        .block_on(async { AsyncListener::bind("127.0.0.1:0", KEY) })
        .expect("bind");
    let address = listener.local_addr().to_string();
    let server = rt.spawn(async move { echo(listener.accept().await?).await });
    let mut client = Client::connect(&address, KEY).expect("blocking client");
    for i in 0..100u32 {
        client.send_bytes(&i.to_be_bytes()).expect("send");
        assert_eq!(client.recv_bytes().expect("echo"), i.to_be_bytes());
    }
    client.close().expect("close");
    assert_eq!(rt.block_on(server).expect("task").expect("echo"), 100);

    // Blocking listener, async client.
    let listener = Listener::bind("127.0.0.1:0", KEY).expect("bind");
    let address = listener.local_addr().to_string();
    let server = std::thread::spawn(move || -> Result<(), Error> {
        let mut connection = listener.accept()?;
        let frame = connection.recv_bytes()?;
        connection.send_bytes(&frame)?;
        connection.close()
    });
    rt.block_on(async {
        let mut client = AsyncClient::connect(&address, KEY)
            .await
            .expect("async client");
        client
            .send_bytes(&[7; 300_000])
            .await
            .expect("send a long frame");
        client.flush().await.expect("flush");
        assert_eq!(client.recv_bytes().await.expect("echo"), vec![7; 300_000]);
    });
    server.join().expect("server thread").expect("server");
}

/// An outside crate's view: authenticate over a tokio `UnixStream::pair()`
/// and over a tokio `TcpStream` it accepted itself, then get the stream back
/// (sealing off: a sealed session has no plain stream to give back).
#[test]
fn async_authentication_over_streams_the_caller_has() {
    runtime().block_on(async {
        let key = AuthKey::new(KEY).expect("key");
        let options = Options::new().with_sealing(iris_wire::Sealing::Off);
        let (a, b) = tokio::net::UnixStream::pair().expect("pair");
        let (server_key, server_options) = (key.clone(), options.clone());
        let server = tokio::spawn(async move {
            let connection =
                AsyncConnection::authenticate(a, Role::Listener, &server_key, &server_options)
                    .await?;
            echo(connection).await
        });
        let mut client = AsyncConnection::authenticate(b, Role::Client, &key, &options)
            .await
            .expect("authenticate over a pair");
        client.send_bytes(b"over a pair").await.expect("send");
        assert_eq!(client.recv_bytes().await.expect("echo"), b"over a pair");
        let (stream, unread): (tokio::net::UnixStream, Vec<u8>) =
            client.into_parts().await.expect("the stream back");
        assert!(unread.is_empty());
        drop(stream);
        assert_eq!(server.await.expect("task").expect("echo"), 1);

        let tcp = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = tcp.local_addr().expect("address").to_string();
        let (server_key, server_options) = (key.clone(), options.clone());
        let server = tokio::spawn(async move {
            let (stream, _) = tcp.accept().await.expect("accept");
            let connection =
                AsyncConnection::authenticate(stream, Role::Listener, &server_key, &server_options)
                    .await?;
            echo(connection).await
        });
        let mut client = AsyncClient::connect(&address, KEY).await.expect("connect");
        client.send_bytes(b"over tcp").await.expect("send");
        assert_eq!(client.recv_bytes().await.expect("echo"), b"over tcp");
        drop(client);
        assert_eq!(server.await.expect("task").expect("echo"), 1);
    });
}

/// The handshake timeout is a deadline in the async adapter too: a peer
/// that trickles bytes well within any per-read timeout is cut at it.
#[test]
fn async_listener_cuts_a_trickling_client_at_the_deadline() {
    let rt = runtime();
    let limit = Duration::from_millis(600);
    let options = Options::new().with_handshake_timeout(Some(limit));
    let listener = rt
        .block_on(async { AsyncListener::bind_with("127.0.0.1:0", KEY, options) })
        .expect("bind");
    let address = listener.local_addr().to_string();
    let server = rt.spawn(async move { listener.accept().await.map(drop) });
    let mut raw = std::net::TcpStream::connect(&address).expect("connect");
    let started = Instant::now();
    let trickler = std::thread::spawn(move || {
        for byte in b"\x00\x00\x00\x28{sha256}0123456789" {
            if raw.write_all(&[*byte]).is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(150));
        }
    });
    let err = rt
        .block_on(server)
        .expect("task")
        .expect_err("the trickler must be cut");
    let cut_after = started.elapsed();
    assert!(matches!(err, Error::HandshakeTimeout { .. }), "{err}");
    assert!(cut_after >= limit, "cut after {cut_after:?}");
    assert!(
        cut_after < Duration::from_secs(4),
        "cut after {cut_after:?}"
    );
    trickler.join().expect("trickler");
}

#[test]
fn async_wrong_keys_fail_on_both_sides() {
    runtime().block_on(async {
        let listener = AsyncListener::bind("127.0.0.1:0", KEY).expect("bind");
        let address = listener.local_addr().to_string();
        let server = tokio::spawn(async move { listener.accept().await.map(drop) });
        let err = AsyncClient::connect(&address, b"not the key")
            .await
            .expect_err("wrong key");
        assert!(
            matches!(err, Error::Authentication(AuthError::Rejected)),
            "{err}"
        );
        let err = server.await.expect("task").expect_err("wrong key");
        assert!(
            matches!(err, Error::Authentication(AuthError::WrongDigest)),
            "{err}"
        );
    });
}

/// Accepted TCP connections carry the keepalive asked for, with Nagle off,
/// as with the blocking listener.
#[cfg(target_os = "linux")]
#[test]
fn async_accepted_connections_get_the_keepalive_asked_for() {
    runtime().block_on(async {
        let options = Options::new().with_keepalive(Some(Duration::from_secs(12)));
        let listener = AsyncListener::bind_with("127.0.0.1:0", KEY, options).expect("bind");
        let address = listener.local_addr().to_string();
        let _client = tokio::net::TcpStream::connect(&address)
            .await
            .expect("connect");
        let (stream, _) = listener.accept_stream().await.expect("accept");
        let iris_wire::AsyncStream::Tcp(tcp) = &stream else {
            panic!("a TCP stream")
        };
        let socket = socket2::SockRef::from(tcp);
        assert!(socket.tcp_nodelay().expect("TCP_NODELAY"));
        assert!(socket.keepalive().expect("SO_KEEPALIVE"));
        assert_eq!(
            socket.tcp_keepalive_time().expect("TCP_KEEPIDLE"),
            Duration::from_secs(12)
        );
        assert_eq!(
            socket.tcp_user_timeout().expect("TCP_USER_TIMEOUT"),
            Some(Duration::from_secs(18))
        );
    });
}

/// The Rust half of `wire_peer.py`'s conversation, async.
async fn converse<S: AsyncRead + AsyncWrite + Unpin>(
    connection: &mut AsyncConnection<S>,
    python: &Python,
) -> Result<(), Error> {
    connection.send_bytes(b"hello from rust").await?;
    assert_eq!(connection.recv_bytes().await?, common::greeting(python));
    let big = connection.recv_bytes().await?;
    assert_eq!(big.len(), BIG_LEN, "the 100 MiB frame arrives whole");
    assert!(big == big_payload(), "the 100 MiB frame arrives intact");
    connection.send_bytes(&big).await?;
    assert_eq!(connection.recv_bytes().await?, b"ok");
    Ok(())
}

fn options_for(python: &Python) -> Options {
    Options::new()
        .with_legacy_md5(python.is_legacy())
        .with_max_frame(128 << 20)
}

#[test]
fn async_listener_serves_cpython_clients() {
    let rt = runtime();
    for python in pythons("async_listener_serves_cpython_clients") {
        let options = options_for(&python);
        let listener = rt
            .block_on(async { AsyncListener::bind_with("localhost:0", KEY, options) })
            .expect("bind");
        let Address::Tcp { port, .. } = listener.local_addr() else {
            panic!("a TCP address");
        };
        let port = port.to_string();
        let mut peer = python_peer(&python, KEY, &["client", "localhost", &port]);
        let version = python.clone();
        let server = rt.spawn(async move {
            let mut connection = listener.accept().await?;
            converse(&mut connection, &version).await?;
            connection.close().await
        });
        assert_eq!(peer.read_line(), "AUTHENTICATED");
        assert_peer_done(peer, "DONE");
        rt.block_on(server).expect("task").expect("conversation");
    }
}

#[test]
fn async_client_talks_to_cpython_listeners() {
    let rt = runtime();
    for python in pythons("async_client_talks_to_cpython_listeners") {
        let (peer, address) = python_listener(&python);
        rt.block_on(async {
            let mut connection = AsyncClient::connect_with(&address, KEY, &options_for(&python))
                .await
                .expect("connect");
            converse(&mut connection, &python)
                .await
                .expect("conversation");
            connection.close().await.expect("close");
        });
        assert_peer_done(peer, "AUTHENTICATED\nDONE");
    }
}
