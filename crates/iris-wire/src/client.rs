//! Connecting: the counterpart of CPython's `Client`.

use std::io;
use std::net::TcpStream;
#[cfg(unix)]
use std::os::unix::net::UnixStream;
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use ring::rand::SystemRandom;

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
        let stream = match &parsed {
            Address::Tcp { .. } => {
                let stream = connect_tcp(&parsed, deadline).map_err(connect_error)?;
                // Our writes are batched already; Nagle would only add delay.
                stream.set_nodelay(true).map_err(Error::Io)?;
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
        let nonce = fresh_nonce(&SystemRandom::new())?;
        let handshake = Handshake::with_options(Role::Client, &key, nonce, options)?;
        let _outstanding = OutstandingChallenge::register(nonce);
        Connection::new(stream, Some(parsed), options).run_authentication(
            handshake,
            deadline,
            timeout,
            refuse_reflected_challenges,
        )
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

fn connect_tcp(address: &Address, deadline: Option<Instant>) -> io::Result<TcpStream> {
    let mut last_error = None;
    for addr in address.resolve()? {
        let attempt = match deadline {
            Some(deadline) => match deadline.checked_duration_since(Instant::now()) {
                Some(left) if !left.is_zero() => TcpStream::connect_timeout(&addr, left),
                _ => Err(io::ErrorKind::TimedOut.into()),
            },
            None => TcpStream::connect(addr),
        };
        match attempt {
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
