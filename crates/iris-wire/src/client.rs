//! Connecting: the counterpart of CPython's `Client`.

use std::io;
use std::net::{SocketAddr, TcpStream};
#[cfg(unix)]
use std::os::unix::net::UnixStream;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use ring::rand::SystemRandom;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use crate::address::ToAddress;
use crate::connection::{Connection, fresh_nonce};
use crate::handshake::{Handshake, NONCE_LEN, Role, ToAuthKey, challenge_nonce};
use crate::stream::Stream;
use crate::{Address, AuthError, Error, Options};

/// Connects to listeners, like CPython's `Client(address, authkey=...)`.
#[derive(Debug, Clone, Copy)]
pub struct Client;

impl Client {
    /// Connects to `address` (see [`Address`]) and authenticates with the
    /// default [`Options`].
    pub fn connect(address: impl ToAddress, authkey: impl ToAuthKey) -> Result<Connection, Error> {
        Client::connect_with(address, authkey, &Options::default())
    }

    /// Connects to `address` and authenticates, with `options`.
    ///
    /// Every address a host name resolves to is tried in turn, IPv4 first.
    /// The handshake timeout is a deadline for connecting and authenticating
    /// together: every connect, read and write gets only the time left, so a
    /// listener that trickles its bytes cannot hold the client past it.
    pub fn connect_with(
        address: impl ToAddress,
        authkey: impl ToAuthKey,
        options: &Options,
    ) -> Result<Connection, Error> {
        let key = authkey.to_auth_key()?;
        let parsed = address.to_address()?;
        let address = parsed.to_string();
        let timeout = options.handshake_timeout();
        let deadline = timeout.map(|t| Instant::now() + t);
        let connect_error = |source| Error::Connect {
            address: address.clone(),
            source,
        };
        // The handshake is ready before the connection, so that a fast-open
        // challenge leaves the moment it is up: the listener then finds it
        // already there when it accepts, and answers in its first packet.
        let nonce = fresh_nonce(&SystemRandom::new())?;
        let handshake = Handshake::with_options(Role::Client, &key, nonce, options)?;
        let _outstanding = OutstandingChallenge::register(nonce);
        let mut armed_write = None;
        let stream = match &parsed {
            Address::Tcp { .. } => {
                let (stream, armed) = connect_tcp(&parsed, deadline).map_err(connect_error)?;
                armed_write = armed;
                Stream::Tcp(stream)
            }
            #[cfg(unix)]
            Address::Unix(path) => Stream::Unix(UnixStream::connect(path).map_err(connect_error)?),
            #[cfg(not(unix))]
            Address::Unix(_) => {
                return Err(Error::InvalidAddress {
                    address,
                    reason: "Unix-domain sockets are not available on this platform",
                });
            }
        };
        Connection::new(stream, Some(parsed), options)
            .with_write_timeout_armed(armed_write)
            .holding_last_flight()
            .run_authentication(handshake, deadline, timeout, refuse_reflected_challenges)
    }
}

/// The nonces of the challenges this process's clients are using in
/// handshakes still under way.
///
/// A fake listener that holds no key could take the challenge one of our
/// clients sends it and pose it, as its own challenge, to another of our
/// clients connecting to it at the same time: that client's answer is the
/// answer the first one needs (a reflection attack). No client answers a
/// challenge listed here. The list holds one entry per handshake in
/// progress, so a linear search is fast.
static OUTSTANDING: Mutex<Vec<[u8; NONCE_LEN]>> = Mutex::new(Vec::new());

fn outstanding() -> MutexGuard<'static, Vec<[u8; NONCE_LEN]>> {
    OUTSTANDING.lock().unwrap_or_else(|e| e.into_inner())
}

/// Lists a client's challenge nonce in [`OUTSTANDING`] while it lives.
pub(crate) struct OutstandingChallenge([u8; NONCE_LEN]);

impl OutstandingChallenge {
    pub(crate) fn register(nonce: [u8; NONCE_LEN]) -> Self {
        outstanding().push(nonce);
        OutstandingChallenge(nonce)
    }
}

impl Drop for OutstandingChallenge {
    fn drop(&mut self) {
        let mut list = outstanding();
        if let Some(index) = list.iter().position(|nonce| *nonce == self.0) {
            list.swap_remove(index);
        }
    }
}

/// Refuses a challenge frame that carries one of our own outstanding nonces.
pub(crate) fn refuse_reflected_challenges(frame: &[u8]) -> Result<(), AuthError> {
    match challenge_nonce(frame) {
        Some(nonce) if outstanding().iter().any(|ours| ours[..] == *nonce) => {
            Err(AuthError::ReflectedChallenge)
        }
        _ => Ok(()),
    }
}

/// Connects to the first address `address` resolves to that answers, within
/// `deadline`. Returns the stream and the write timeout left set on it, if
/// any, for the handshake to count as armed.
fn connect_tcp(
    address: &Address,
    deadline: Option<Instant>,
) -> io::Result<(TcpStream, Option<Duration>)> {
    let mut last_error = None;
    for addr in address.resolve()? {
        let left = match deadline {
            Some(deadline) => match deadline.checked_duration_since(Instant::now()) {
                Some(left) if !left.is_zero() => Some(left),
                _ => return Err(io::ErrorKind::TimedOut.into()),
            },
            None => None,
        };
        match connect_one(addr, left) {
            Ok(stream) => return Ok(stream),
            Err(e) => last_error = Some(e),
        }
    }
    Err(last_error.unwrap_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            "the host name resolved to no address",
        )
    }))
}

/// One connection attempt, with Nagle off from the start (our writes are
/// batched already; Nagle would only add delay).
///
/// On Linux a blocking connect is bounded by the send timeout, which the
/// handshake's first writes then keep: one system call between the
/// connection being up and the first flight leaving, where a connect with
/// a timeout elsewhere polls and switches blocking modes first. A client
/// sending its challenge at once (fast open) then usually gets it to the
/// listener before the listener looks for it.
fn connect_one(
    addr: SocketAddr,
    left: Option<Duration>,
) -> io::Result<(TcpStream, Option<Duration>)> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_tcp_nodelay(true)?;
    let addr = SockAddr::from(addr);
    let armed = match left {
        None => {
            socket.connect(&addr)?;
            None
        }
        #[cfg(any(target_os = "linux", target_os = "android"))]
        Some(left) => {
            socket.set_write_timeout(Some(left))?;
            match socket.connect(&addr) {
                // The send timeout ran out with the connection not yet up.
                Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {
                    return Err(io::ErrorKind::TimedOut.into());
                }
                result => result?,
            }
            Some(left)
        }
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        Some(left) => {
            socket.connect_timeout(&addr, left)?;
            None
        }
    };
    Ok((socket.into(), armed))
}
