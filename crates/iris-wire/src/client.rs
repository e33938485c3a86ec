//! Connecting: the counterpart of CPython's `Client`.

use std::io;
use std::net::{SocketAddr, TcpStream};
#[cfg(unix)]
use std::os::unix::net::UnixStream;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use crate::address::ToAddress;
use crate::connection::Connection;
use crate::handshake::{Handshake, NONCE_LEN, Role, ToAuthKey, challenge_nonce};
use crate::nonce::fresh_nonce;
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
        let timeout = options.handshake_timeout();
        let deadline = timeout.map(|t| Instant::now() + t);
        // The address is written out only for an error.
        let connect_error = |source| Error::Connect {
            address: parsed.to_string(),
            source,
        };
        // The handshake is ready before the connection, so that a fast-open
        // challenge leaves the moment it is up: the listener then finds it
        // already there when it accepts, and answers in its first packet.
        let nonce = fresh_nonce()?;
        let mut handshake = Handshake::with_options(Role::Client, &key, nonce, options)?;
        let _outstanding = OutstandingChallenge::register(nonce);
        let mut armed_write = None;
        let stream = match &parsed {
            Address::Tcp { .. } => {
                let connected =
                    connect_tcp(&parsed, deadline, handshake.outgoing()).map_err(connect_error)?;
                if connected.sent_first_flight {
                    handshake.take_outgoing();
                }
                armed_write = connected.armed_write;
                Stream::Tcp(connected.stream)
            }
            #[cfg(unix)]
            Address::Unix(path) => Stream::Unix(UnixStream::connect(path).map_err(connect_error)?),
            #[cfg(not(unix))]
            Address::Unix(_) => {
                return Err(Error::InvalidAddress {
                    address: parsed.to_string(),
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

/// A TCP connection just made.
struct Connected {
    stream: TcpStream,
    /// The write timeout left set on the stream, for the handshake to count
    /// as armed.
    armed_write: Option<Duration>,
    /// Whether the client's first flight went out with the connection.
    sent_first_flight: bool,
}

/// Connects to the first address `address` resolves to that answers, within
/// `deadline`, sending `first_flight` (a fast-open client's challenge; empty
/// for other clients) with the connection where it can (see
/// [`connect_one`]).
fn connect_tcp(
    address: &Address,
    deadline: Option<Instant>,
    first_flight: &[u8],
) -> io::Result<Connected> {
    let mut last_error = None;
    for addr in address.resolve()? {
        let left = match deadline {
            Some(deadline) => match deadline.checked_duration_since(Instant::now()) {
                Some(left) if !left.is_zero() => Some(left),
                _ => return Err(io::ErrorKind::TimedOut.into()),
            },
            None => None,
        };
        match connect_one(addr, left, first_flight) {
            Ok(connected) => return Ok(connected),
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
/// a timeout elsewhere polls and switches blocking modes first.
///
/// To a listener on this host (a loopback address), on Linux, a fast-open
/// client's challenge leaves in the same system call as the connection
/// ([`connect_sending`]). The listener's accepting thread, woken by the
/// connection, often runs at once on the client's own core, before a
/// separate write could send the challenge: it would then find no
/// challenge to answer and send its own alone, and the client would wait
/// for another exchange of wake-ups.
fn connect_one(
    addr: SocketAddr,
    left: Option<Duration>,
    first_flight: &[u8],
) -> io::Result<Connected> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_tcp_nodelay(true)?;
    let sock_addr = SockAddr::from(addr);
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        if let Some(left) = left {
            socket.set_write_timeout(Some(left))?;
        }
        let sent_first_flight = !first_flight.is_empty()
            && addr.ip().is_loopback()
            && connect_sending(&socket, &sock_addr, first_flight)?;
        if !sent_first_flight {
            match socket.connect(&sock_addr) {
                // The send timeout ran out with the connection not yet up.
                Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {
                    return Err(io::ErrorKind::TimedOut.into());
                }
                result => result?,
            }
        }
        Ok(Connected {
            stream: socket.into(),
            armed_write: left,
            sent_first_flight,
        })
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        match left {
            None => socket.connect(&sock_addr)?,
            Some(left) => socket.connect_timeout(&sock_addr, left)?,
        }
        Ok(Connected {
            stream: socket.into(),
            armed_write: None,
            sent_first_flight: false,
        })
    }
}

/// Connects and sends `bytes` in one system call: `sendto` with
/// `MSG_FASTOPEN`, bounded by the send timeout like a connect. With no TCP
/// Fast Open cookie for the listener (iris listeners never hand one out),
/// Linux makes an ordinary connection, its SYN asking for a cookie, and
/// sends the bytes with the handshake's last ACK before returning. Only
/// for loopback addresses: on a real path a middlebox may drop a SYN that
/// carries the Fast Open option, and there the saving is nil anyway.
///
/// `Ok(false)`, with the socket still unconnected, when the kernel has the
/// client side of TCP Fast Open turned off (`net.ipv4.tcp_fastopen`).
#[cfg(any(target_os = "linux", target_os = "android"))]
fn connect_sending(socket: &Socket, addr: &SockAddr, bytes: &[u8]) -> io::Result<bool> {
    use std::io::Write;

    match socket.send_to_with_flags(bytes, addr, libc::MSG_FASTOPEN | libc::MSG_NOSIGNAL) {
        Ok(sent) => {
            // A challenge fits any send buffer; a short send is only
            // possible in principle.
            let mut rest = socket;
            rest.write_all(&bytes[sent..])?;
            Ok(true)
        }
        Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => Ok(false),
        // The send timeout ran out with the connection not yet up.
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {
            Err(io::ErrorKind::TimedOut.into())
        }
        Err(e) => Err(e),
    }
}
