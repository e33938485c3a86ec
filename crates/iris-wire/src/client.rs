//! Connecting: the counterpart of CPython's `Client`.

use std::io;
use std::net::TcpStream;
#[cfg(unix)]
use std::os::unix::net::UnixStream;

use ring::rand::{SecureRandom, SystemRandom};

use crate::connection::Connection;
use crate::handshake::{AuthKey, Handshake, NONCE_LEN};
use crate::stream::Stream;
use crate::{Address, Error, Options};

/// Connects to listeners, like CPython's `Client(address, authkey=...)`.
#[derive(Debug, Clone, Copy)]
pub struct Client;

impl Client {
    /// Connects to `address` (see [`Address`]) and authenticates with the
    /// default [`Options`].
    pub fn connect(address: &str, authkey: &[u8]) -> Result<Connection, Error> {
        Client::connect_with(address, authkey, &Options::default())
    }

    /// Connects to `address` and authenticates, with `options`.
    ///
    /// Every address a host name resolves to is tried in turn, IPv4 first.
    /// Connecting and the handshake each get the handshake timeout.
    pub fn connect_with(
        address: &str,
        authkey: &[u8],
        options: &Options,
    ) -> Result<Connection, Error> {
        let key = AuthKey::new(authkey)?;
        let parsed: Address = address.parse()?;
        let connect_error = |source| Error::Connect {
            address: address.to_owned(),
            source,
        };
        let stream = match &parsed {
            Address::Tcp { .. } => {
                let stream = connect_tcp(&parsed, options).map_err(connect_error)?;
                // Our writes are batched already; Nagle would only add delay.
                stream.set_nodelay(true).map_err(Error::Io)?;
                Stream::Tcp(stream)
            }
            #[cfg(unix)]
            Address::Unix(path) => Stream::Unix(UnixStream::connect(path).map_err(connect_error)?),
            #[cfg(not(unix))]
            Address::Unix(_) => {
                return Err(Error::InvalidAddress {
                    address: address.to_owned(),
                    reason: "Unix-domain sockets are not available on this platform",
                });
            }
        };
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| Error::Io(io::Error::other("the system random generator failed")))?;
        let handshake = Handshake::client(&key, nonce, options.get_legacy_md5());
        Connection::new(stream, parsed, options)
            .authenticate(handshake, options.get_handshake_timeout())
    }
}

fn connect_tcp(address: &Address, options: &Options) -> io::Result<TcpStream> {
    let mut last_error = None;
    for addr in address.resolve()? {
        let attempt = match options.get_handshake_timeout() {
            Some(timeout) => TcpStream::connect_timeout(&addr, timeout),
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
