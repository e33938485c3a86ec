//! Authenticated, framed messaging that speaks the wire protocol of Python's
//! `multiprocessing.connection`: a [`Listener`] and a [`Client`] that talk to
//! CPython's `Listener` and `Client` (and to each other), exchanging raw bytes
//! or serde values.
//!
//! ```
//! use iris_wire::{Client, Listener};
//!
//! let key = b"My voice is my password, verify me.";
//! // Port 0: the system picks a free port.
//! let listener = Listener::bind("localhost:0", key)?;
//! let address = listener.local_addr().to_string();
//!
//! let server = std::thread::spawn(move || -> Result<(), iris_wire::Error> {
//!     let mut connection = listener.accept()?;
//!     let request = connection.recv_bytes()?;
//!     connection.send_bytes(&request.to_ascii_uppercase())?;
//!     let numbers: Vec<u32> = connection.recv()?;
//!     connection.send(&numbers.iter().sum::<u32>())?;
//!     connection.close()
//! });
//!
//! let mut connection = Client::connect(&address, key)?;
//! connection.send_bytes(b"hello")?;
//! assert_eq!(connection.recv_bytes()?, b"HELLO");
//! connection.send(&vec![1u32, 2, 3])?;
//! assert_eq!(connection.recv::<u32>()?, 6);
//! server.join().expect("server thread")?;
//! # Ok::<(), iris_wire::Error>(())
//! ```
//!
//! # Layout: one core, thin adapters
//!
//! ```text
//!        protocol core, no I/O                    adapters: only move bytes
//!  frame::FrameDecoder  bytes -> frames   <--+--  Connection<S: Transport>  (blocking)
//!  frame::FrameEncoder  frames -> bytes   <--+      Listener, Client: TCP and Unix sockets
//!  handshake::Handshake challenge/answer  <--+      Connection::authenticate: any stream
//!                                            +--  AsyncConnection<S: AsyncRead + AsyncWrite>
//!                                                   AsyncListener, AsyncClient (feature "tokio")
//! ```
//!
//! - [`frame`] and [`handshake`] are the protocol core: a decoder that owns
//!   the whole receive policy (the limit before allocation, memory that grows
//!   only as bytes arrive, truncation), an encoder that batches frames, and
//!   the handshake as a state machine, all over byte slices, tested with
//!   fixed vectors from CPython, property tests and fuzzing.
//! - [`Connection`] is the blocking adapter over any [`Transport`] (a
//!   `Read + Write` stream with timeouts): [`Listener`] and [`Client`] make
//!   its TCP and Unix-socket connections, and [`Connection::authenticate`]
//!   runs the handshake over a stream you already have.
//! - With the `tokio` feature, `AsyncConnection`, `AsyncListener` and
//!   `AsyncClient` do the same on tokio, differing only in how they wait.
//! - With the `serde` feature (on by default), typed
//!   [`send`](Connection::send) / [`recv`](Connection::recv) of serde
//!   values, encoded with postcard; no postcard type appears in this crate's
//!   API ([`CodecError`] is opaque), so a postcard upgrade is not a breaking
//!   change.
//!
//! # Security
//!
//! - Both sides prove they hold the authkey (HMAC-SHA256 over 40 random bytes
//!   from the OS, verified in constant time); the key never crosses the wire.
//!   An empty key is refused rather than meaning "no authentication".
//! - Nothing the peer sends is decoded before both sides are authenticated;
//!   handshake frames are capped at 256 bytes.
//! - The handshake timeout ([`Options::with_handshake_timeout`]) is a deadline for
//!   the whole handshake, not a timeout per read: every read and write gets
//!   only the time left ([`Error::HandshakeTimeout`] when it runs out), so a
//!   peer that trickles bytes cannot hold a listener's thread, or a client,
//!   past it. On the listener it counts from the accept.
//! - A client never answers a challenge that one of its own handshakes in
//!   the same process issued ([`AuthError::ReflectedChallenge`]), so a fake
//!   listener cannot relay one client's challenge to another.
//! - After authentication, a frame longer than the configured maximum (64 MiB
//!   by default) is refused from its header, before anything is allocated, and
//!   a long frame's memory grows only as its bytes actually arrive.
//! - Legacy HMAC-MD5 (CPython 3.11 and older) is off unless enabled.
//! - After authentication nothing is bounded in time unless you ask: a server
//!   should set [`Options::with_write_timeout`] (and, for request/response use,
//!   [`Options::with_read_timeout`]) so that a peer that stops reading or sending
//!   cannot hold a thread forever, and [`Options::with_keepalive`] so that a
//!   peer whose host or link died without closing is noticed.
//! - Pickles are not this crate's business: it moves bytes. Never hand a
//!   received frame to a general unpickler.
//! - The authkey authenticates; it does not encrypt. Anyone who can watch the
//!   traffic can read it: use Unix sockets or loopback, or tunnel the TCP.

mod address;
#[cfg(feature = "tokio")]
mod asynchronous;
mod client;
mod codec;
mod connection;
mod driver;
mod error;
pub mod frame;
pub mod handshake;
mod listener;
mod nonce;
mod options;
pub mod seal;
mod stream;

pub use address::{Address, ToAddress};
#[cfg(feature = "tokio")]
pub use asynchronous::{AsyncClient, AsyncConnection, AsyncListener, AsyncStream};
pub use client::Client;
pub use codec::CodecError;
pub use connection::Connection;
pub use error::{AuthError, Error};
pub use listener::{Incoming, Listener};
pub use options::{
    DEFAULT_HANDSHAKE_TIMEOUT, DEFAULT_MAX_FRAME, KEEPALIVE_PROBES, Options, keepalive_interval,
};
pub use seal::Sealing;
pub use stream::{Stream, Transport};
