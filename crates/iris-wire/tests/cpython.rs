//! Interop with the real CPython `multiprocessing.connection`, in both roles,
//! for every CPython this machine has (3.11, 3.12, 3.13).

use std::thread;

use iris_testkit::{Python, pythons};
use iris_wire::{Address, AuthError, Client, Connection, Error, Listener, Options};

mod common;

use common::{BIG_LEN, KEY, assert_peer_done, big_payload, python_listener, python_peer};

/// The Rust half of the conversation described in `wire_peer.py`.
fn converse<S: iris_wire::Transport>(
    connection: &mut Connection<S>,
    python: &Python,
) -> Result<(), Error> {
    connection.send_bytes(b"hello from rust")?;
    let greeting = connection.recv_bytes()?;
    assert_eq!(greeting, common::greeting(python));
    let big = connection.recv_bytes()?;
    assert_eq!(big.len(), BIG_LEN, "the 100 MiB frame arrives whole");
    assert!(big == big_payload(), "the 100 MiB frame arrives intact");
    connection.send_bytes(&big)?;
    assert_eq!(connection.recv_bytes()?, b"ok");
    Ok(())
}

/// The port a TCP listener bound, for the Python peer's command line.
fn port_of(listener: &Listener) -> String {
    match listener.local_addr() {
        Address::Tcp { port, .. } => port.to_string(),
        other => panic!("expected a TCP listener, got {other}"),
    }
}

fn options_for(python: &Python) -> Options {
    // Above the 64 MiB default, so the 100 MiB frame needs a raised limit.
    Options::new()
        .with_legacy_md5(python.is_legacy())
        .with_max_frame(128 << 20)
}

#[test]
fn rust_listener_serves_cpython_clients() {
    for python in pythons("rust_listener_serves_cpython_clients") {
        let listener = Listener::bind_with("localhost:0", KEY, options_for(&python)).expect("bind");
        let port = port_of(&listener);
        let mut peer = python_peer(&python, KEY, &["client", "localhost", &port]);
        let server = thread::spawn(move || {
            let mut connection = listener.accept()?;
            let result = converse(&mut connection, &python);
            connection.close()?;
            result
        });
        assert_eq!(peer.read_line(), "AUTHENTICATED");
        assert_peer_done(peer, "DONE");
        server.join().expect("server thread").expect("conversation");
    }
}

#[test]
fn rust_client_talks_to_cpython_listeners() {
    for python in pythons("rust_client_talks_to_cpython_listeners") {
        let (peer, address) = python_listener(&python);
        let mut connection =
            Client::connect_with(&address, KEY, &options_for(&python)).expect("connect");
        assert!(
            !connection.peer_is_iris_listener(),
            "CPython {}",
            python.version
        );
        converse(&mut connection, &python).expect("conversation");
        connection.close().expect("close");
        assert_peer_done(peer, "AUTHENTICATED\nDONE");
    }
}

#[test]
fn a_wrong_key_fails_on_both_sides_with_a_rust_listener() {
    for python in pythons("a_wrong_key_fails_on_both_sides_with_a_rust_listener") {
        let listener = Listener::bind_with("127.0.0.1:0", KEY, options_for(&python)).expect("bind");
        let port = port_of(&listener);
        let peer = python_peer(&python, b"not the key", &["client", "127.0.0.1", &port]);
        let err = listener.accept().expect_err("wrong key must fail");
        assert!(
            matches!(err, Error::Authentication(AuthError::WrongDigest)),
            "CPython {}: {err}",
            python.version
        );
        assert!(err.to_string().contains("different authkey"), "{err}");
        let output = peer.finish();
        assert_eq!(
            output.status.code(),
            Some(3),
            "{}{}",
            output.stdout_text(),
            output.stderr_text()
        );
        assert!(
            output
                .stdout_text()
                .contains("AuthenticationError: digest sent was rejected"),
            "{}",
            output.stdout_text()
        );
    }
}

#[test]
fn a_wrong_key_fails_on_both_sides_with_a_cpython_listener() {
    for python in pythons("a_wrong_key_fails_on_both_sides_with_a_cpython_listener") {
        let (peer, address) = python_listener(&python);
        let err = Client::connect_with(&address, b"not the key", &options_for(&python))
            .expect_err("wrong key must fail");
        assert!(
            matches!(err, Error::Authentication(AuthError::Rejected)),
            "CPython {}: {err}",
            python.version
        );
        let output = peer.finish();
        assert_eq!(
            output.status.code(),
            Some(3),
            "{}{}",
            output.stdout_text(),
            output.stderr_text()
        );
        assert!(
            output
                .stdout_text()
                .contains("AuthenticationError: digest received was wrong"),
            "{}",
            output.stdout_text()
        );
    }
}

#[test]
fn legacy_cpython_needs_legacy_md5_enabled() {
    for python in pythons("legacy_cpython_needs_legacy_md5_enabled")
        .into_iter()
        .filter(Python::is_legacy)
    {
        // As a client of our listener.
        let listener = Listener::bind("127.0.0.1:0", KEY).expect("bind");
        let port = port_of(&listener);
        let peer = python_peer(&python, KEY, &["client", "127.0.0.1", &port]);
        let err = listener.accept().expect_err("legacy refused");
        assert!(
            matches!(err, Error::Authentication(AuthError::LegacyMd5Disabled)),
            "{err}"
        );
        // The library says what to do in its own terms, not a program's flag.
        let message = err.to_string();
        assert!(message.contains("enable legacy MD5"), "{message}");
        assert!(!message.contains("--"), "{message}");
        assert_eq!(peer.finish().status.code(), Some(3));

        // As a listener our client connects to.
        let (_peer, address) = python_listener(&python);
        let err = Client::connect(&address, KEY).expect_err("legacy refused");
        assert!(
            matches!(err, Error::Authentication(AuthError::LegacyMd5Disabled)),
            "{err}"
        );
    }
}

/// An outside crate's view: it accepts the TCP connection itself and
/// authenticates the stream it has, as the listener side, for CPython.
#[test]
fn a_stream_the_caller_accepted_serves_cpython_clients() {
    for python in pythons("a_stream_the_caller_accepted_serves_cpython_clients") {
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = tcp.local_addr().expect("address").port().to_string();
        let mut peer = python_peer(&python, KEY, &["client", "127.0.0.1", &port]);
        let (stream, _) = tcp.accept().expect("accept");
        let mut connection = Connection::authenticate(
            stream,
            iris_wire::handshake::Role::Listener,
            KEY,
            &options_for(&python),
        )
        .expect("authenticate the accepted stream");
        assert_eq!(peer.read_line(), "AUTHENTICATED");
        converse(&mut connection, &python).expect("conversation");
        let (stream, unread) = connection.into_parts().expect("the stream back");
        assert!(unread.is_empty());
        drop(stream);
        assert_peer_done(peer, "DONE");
    }
}

/// A listener that refuses a connection (at its limit) closes it before the
/// challenge: CPython's client ends with an error at once rather than
/// waiting, and an iris client reports it apart from a wrong key.
#[test]
fn a_connection_refused_before_the_challenge_is_told_apart() {
    let listener = Listener::bind("127.0.0.1:0", KEY).expect("bind");
    let address = listener.local_addr().to_string();
    let refuse = thread::spawn(move || {
        let (stream, _) = listener.accept_stream().expect("accept");
        drop(stream);
        listener
    });
    let err = Client::connect(&address, KEY).expect_err("refused");
    assert!(
        matches!(err, Error::Authentication(AuthError::ClosedBeforeChallenge)),
        "{err}"
    );
    let listener = refuse.join().expect("listener");
    let port = port_of(&listener);
    for python in pythons("a_connection_refused_before_the_challenge_is_told_apart") {
        let peer = python_peer(&python, KEY, &["client", "127.0.0.1", &port]);
        let (stream, _) = listener.accept_stream().expect("accept");
        drop(stream);
        let output = peer.finish();
        assert!(!output.status.success(), "{}", output.stdout_text());
        assert!(
            output.stderr_text().contains("EOFError"),
            "{}",
            output.stderr_text()
        );
    }
}
