//! Accepting connections: the counterpart of CPython's `Listener`.

use std::fs;
use std::io;
use std::net::TcpListener;
#[cfg(unix)]
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
#[cfg(unix)]
use std::os::unix::fs::FileTypeExt;
#[cfg(unix)]
use std::os::unix::net::{UnixListener, UnixStream};
#[cfg(unix)]
use std::path::Path;
use std::time::{Duration, Instant};

use crate::address::ToAddress;
use crate::connection::Connection;
use crate::driver::no_screen;
use crate::handshake::{AuthKey, Handshake, Role, ToAuthKey};
use crate::nonce::fresh_nonce;
#[cfg(any(target_os = "linux", target_os = "android"))]
use crate::options::keepalive_limit;
use crate::seal::Sealing;
use crate::stream::Stream;
use crate::{Address, AuthError, Error, Options};
#[cfg(any(target_os = "linux", target_os = "android"))]
use crate::{KEEPALIVE_PROBES, keepalive_interval};

#[derive(Debug)]
pub(crate) enum Socket {
    Tcp(TcpListener),
    #[cfg(unix)]
    Unix(UnixListener),
}

/// A listening socket that hands out authenticated [`Connection`]s.
///
/// Like CPython's `Listener(address, authkey=...)`, every accepted
/// connection goes through the mutual authentication before it is returned.
/// A Unix-domain socket file is removed again when the listener is dropped.
#[derive(Debug)]
pub struct Listener {
    socket: Socket,
    local: Address,
    key: AuthKey,
    options: Options,
}

/// An accepted connection that has not authenticated yet.
///
/// Returned by [`Listener::accept_unauthenticated`] so that a server can run
/// the handshake on a worker thread instead of the accepting one.
#[derive(Debug)]
pub struct Incoming {
    connection: Connection,
    peer: Address,
    handshake: Handshake,
    /// When the handshake must be over, counted from the accept.
    deadline: Option<Instant>,
    timeout: Option<Duration>,
    /// Why a fast-open challenge that came with the connection was refused.
    refused: Option<AuthError>,
}

impl Listener {
    /// Listens on `address` (see [`Address`]) with the default [`Options`].
    pub fn bind(address: impl ToAddress, authkey: impl ToAuthKey) -> Result<Listener, Error> {
        Listener::bind_with(address, authkey, Options::default())
    }

    /// Listens on `address` with `options`.
    ///
    /// A host name is resolved and its addresses tried in turn, IPv4 first,
    /// so that `localhost:6000` accepts CPython clients (which connect over
    /// IPv4). A Unix socket path left behind by a listener that is no longer
    /// running is replaced; one that a live listener answers on is not.
    pub fn bind_with(
        address: impl ToAddress,
        authkey: impl ToAuthKey,
        options: Options,
    ) -> Result<Listener, Error> {
        let key = authkey.to_auth_key()?;
        let parsed = address.to_address()?;
        let bind_error = |source| Error::Bind {
            address: parsed.to_string(),
            source,
        };
        let socket = match &parsed {
            Address::Tcp { .. } => Socket::Tcp(
                bind_tcp(&parsed)
                    .and_then(deepen_backlog)
                    .and_then(|listener| {
                        if ACCEPTED_SOCKETS_INHERIT_OPTIONS {
                            tune_tcp(&socket2::SockRef::from(&listener), &options)?;
                        }
                        Ok(listener)
                    })
                    .map_err(bind_error)?,
            ),
            #[cfg(unix)]
            Address::Unix(path) => Socket::Unix(
                bind_unix(path)
                    .and_then(deepen_backlog)
                    .map_err(bind_error)?,
            ),
            #[cfg(not(unix))]
            Address::Unix(_) => {
                return Err(Error::InvalidAddress {
                    address: parsed.to_string(),
                    reason: "Unix-domain sockets are not available on this platform",
                });
            }
        };
        let local = match &socket {
            Socket::Tcp(listener) => listener
                .local_addr()
                .map(Address::from)
                .map_err(Error::Io)?,
            #[cfg(unix)]
            Socket::Unix(_) => parsed,
        };
        Ok(Listener {
            socket,
            local,
            key,
            options,
        })
    }

    /// The address actually bound: with port 0, the port the system chose.
    pub fn local_addr(&self) -> &Address {
        &self.local
    }

    /// A second handle to the listening socket (for the tokio adapter),
    /// and the key.
    #[cfg(feature = "tokio")]
    pub(crate) fn share(&self) -> io::Result<(Socket, AuthKey)> {
        let socket = match &self.socket {
            Socket::Tcp(listener) => Socket::Tcp(listener.try_clone()?),
            #[cfg(unix)]
            Socket::Unix(listener) => Socket::Unix(listener.try_clone()?),
        };
        Ok((socket, self.key.clone()))
    }

    /// The options connections are accepted with.
    pub fn options(&self) -> &Options {
        &self.options
    }

    /// Waits for a client and authenticates it.
    ///
    /// A client that fails the handshake makes this return its error; the
    /// listener itself stays usable.
    pub fn accept(&self) -> Result<Connection, Error> {
        self.accept_unauthenticated()?.authenticate()
    }

    /// Waits for a client without authenticating it yet: call
    /// [`Incoming::authenticate`] before using it.
    pub fn accept_unauthenticated(&self) -> Result<Incoming, Error> {
        let (stream, peer) = self.accept_stream()?;
        self.start_handshake(stream, peer)
    }

    /// Waits for a client and returns its stream before anything is sent:
    /// a server that decides to refuse it (at its connection limit, say)
    /// drops the stream, and the client sees the connection closed before
    /// any challenge, a signal apart from a failed handshake
    /// ([`AuthError::ClosedBeforeChallenge`](crate::AuthError::ClosedBeforeChallenge)).
    /// Otherwise pass it to [`Listener::start_handshake`].
    pub fn accept_stream(&self) -> Result<(Stream, Address), Error> {
        Ok(match &self.socket {
            Socket::Tcp(listener) => {
                let (stream, peer) = listener.accept().map_err(Error::Io)?;
                if !ACCEPTED_SOCKETS_INHERIT_OPTIONS {
                    tune_tcp(&socket2::SockRef::from(&stream), &self.options).map_err(Error::Io)?;
                }
                (Stream::Tcp(stream), Address::from(peer))
            }
            #[cfg(unix)]
            Socket::Unix(listener) => {
                let (stream, _) = listener.accept().map_err(Error::Io)?;
                (Stream::Unix(stream), self.local.clone())
            }
        })
    }

    /// Sends the challenge to a client from [`Listener::accept_stream`]
    /// and returns it, to be authenticated with [`Incoming::authenticate`].
    /// The handshake deadline counts from now.
    pub fn start_handshake(&self, stream: Stream, peer: Address) -> Result<Incoming, Error> {
        let nonce = fresh_nonce()?;
        let timeout = self.options.handshake_timeout();
        let deadline = timeout.map(|t| Instant::now() + t);
        let connection = Connection::new(stream, Some(peer.clone()), &self.options);
        let handshake = Handshake::with_options(Role::Listener, &self.key, nonce, &self.options)?;
        let mut incoming = Incoming {
            connection,
            peer,
            handshake,
            deadline,
            timeout,
            refused: None,
        };
        let mut outgoing = incoming.handshake.take_outgoing();
        // A fast-open client's challenge usually came with the connection:
        // our answer then leaves with our challenge, in one packet.
        if self.options.sealing() != Sealing::Off
            && matches!(incoming.connection.read_without_waiting(), Ok(1..))
        {
            incoming.answer_buffered_frames(&mut outgoing);
        }
        // The challenge leaves now, from the accepting thread, so that the
        // client's first round trip overlaps whatever the caller does before
        // `authenticate` (such as starting a thread). A few dozen bytes into
        // a fresh socket's empty send buffer cannot block. A failed write
        // surfaces in `authenticate`, as the peer having gone.
        let _ = incoming.connection.write_now(&outgoing);
        Ok(incoming)
    }

    /// Carries `incoming`'s handshake forward on this thread for as long as
    /// no other client waits to be accepted: waits for the client's next
    /// bytes and answers them at once ([`Incoming::advance`]), until the
    /// client waits for nothing more from us (only its own verdict is
    /// still to come) or another connection arrives, never past the
    /// handshake deadline. Then hand `incoming` to whatever authenticates
    /// it and go on accepting.
    ///
    /// A server that authenticates on worker threads calls it between
    /// [`start_handshake`](Listener::start_handshake) and the handoff: a
    /// client it is not busy for then waits for no thread to wake, such as
    /// a fast-open client whose challenge arrived just after the accept.
    #[cfg(unix)]
    pub fn advance_while_idle(&self, incoming: &mut Incoming) {
        use rustix::event::{PollFd, PollFlags, Timespec, poll};

        while incoming.waits_for_client() && incoming.handshake.peer_waits_for_our_answers() {
            let timeout = match incoming.time_left() {
                Some(left) if left.is_zero() => return,
                // Too long for a timespec: as good as no limit.
                Some(left) => Timespec::try_from(left).ok(),
                None => None,
            };
            let mut fds = [
                PollFd::new(self, PollFlags::IN),
                PollFd::new(&*incoming, PollFlags::IN),
            ];
            match poll(&mut fds, timeout.as_ref()) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            // Another connection waits, or this one stays quiet.
            if !fds[0].revents().is_empty() || fds[1].revents().is_empty() {
                return;
            }
            if !incoming.advance() {
                return;
            }
        }
    }
}

/// The listening socket's descriptor, so that a caller can wait for
/// connections with `poll(2)`, epoll or mio alongside other events before
/// calling [`Listener::accept`].
#[cfg(unix)]
impl AsFd for Listener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match &self.socket {
            Socket::Tcp(listener) => listener.as_fd(),
            Socket::Unix(listener) => listener.as_fd(),
        }
    }
}

#[cfg(unix)]
impl AsRawFd for Listener {
    fn as_raw_fd(&self) -> RawFd {
        self.as_fd().as_raw_fd()
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        #[cfg(unix)]
        if let (Socket::Unix(_), Address::Unix(path)) = (&self.socket, &self.local) {
            let _ = fs::remove_file(path);
        }
    }
}

impl Incoming {
    /// The peer's address.
    pub fn peer_addr(&self) -> &Address {
        &self.peer
    }

    /// Completes the mutual authentication (the challenge went out when the
    /// connection was accepted). The handshake timeout is a deadline counted
    /// from the accept: time spent before this call counts too, and a peer
    /// that trickles its bytes is cut off at it all the same
    /// ([`Error::HandshakeTimeout`]).
    pub fn authenticate(self) -> Result<Connection, Error> {
        if let Some(reason) = self.refused {
            return Err(reason.into());
        }
        self.connection
            .run_authentication(self.handshake, self.deadline, self.timeout, no_screen)
    }

    /// Does the handshake's work that needs no waiting: reads what the
    /// client has sent so far, without blocking, and answers every whole
    /// frame of it. Returns whether the handshake still waits for the
    /// client; false once it is complete or has failed (then
    /// [`authenticate`](Incoming::authenticate) returns at once) or the
    /// client has gone.
    ///
    /// A server can call it whenever [`as_fd`](AsFd::as_fd) polls readable,
    /// while it has nothing else to do, before handing the connection to
    /// another thread: a client then waits for no thread to wake.
    pub fn advance(&mut self) -> bool {
        if !self.waits_for_client() {
            return false;
        }
        match self.connection.read_without_waiting() {
            Ok(0) => return false,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
            Err(_) => return false,
        }
        let mut answer = Vec::new();
        self.answer_buffered_frames(&mut answer);
        if !answer.is_empty() && self.connection.write_now(&answer).is_err() {
            return false;
        }
        self.waits_for_client()
    }

    /// How long the handshake may still take (`None`: no limit).
    pub fn time_left(&self) -> Option<Duration> {
        self.deadline
            .map(|deadline| deadline.saturating_duration_since(Instant::now()))
    }

    fn waits_for_client(&self) -> bool {
        self.refused.is_none() && !self.handshake.is_complete()
    }

    /// Feeds the handshake every whole frame buffered, queueing its answers
    /// (or the verdict of a refusal) in `outgoing`, until one is refused.
    fn answer_buffered_frames(&mut self, outgoing: &mut Vec<u8>) {
        while self.waits_for_client()
            && let Some(frame) = self.connection.buffered_handshake_frame()
        {
            let result = self.handshake.receive(&frame);
            outgoing.extend_from_slice(&self.handshake.take_outgoing());
            self.refused = result.err();
        }
    }
}

/// The connection's descriptor, to wait for the client's next bytes with
/// `poll(2)` before [`Incoming::advance`].
#[cfg(unix)]
impl AsFd for Incoming {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.connection.as_fd()
    }
}

/// Whether accepted TCP sockets take Nagle's setting and the keepalive
/// settings from the listening socket, as Linux's do: they are then set once
/// on the listening socket rather than on every connection, which saves the
/// accepting thread six system calls before a client's first answer.
pub(crate) const ACCEPTED_SOCKETS_INHERIT_OPTIONS: bool =
    cfg!(any(target_os = "linux", target_os = "android"));

/// Turns Nagle off (our writes are batched already; Nagle would only add
/// delay) and TCP keepalive on as `options` say: on the listening socket
/// where accepted sockets inherit both
/// ([`ACCEPTED_SOCKETS_INHERIT_OPTIONS`]), otherwise on each accepted one
/// (of either adapter).
pub(crate) fn tune_tcp(socket: &socket2::SockRef<'_>, options: &Options) -> io::Result<()> {
    socket.set_tcp_nodelay(true)?;
    match options.keepalive() {
        Some(idle) => set_keepalive(socket, idle),
        None => Ok(()),
    }
}

/// Turns on TCP keepalive as [`Options::with_keepalive`] describes.
fn set_keepalive(socket: &socket2::SockRef<'_>, idle: Duration) -> io::Result<()> {
    // The kernel counts keepalive times in whole seconds, at least one.
    let idle = idle.max(Duration::from_secs(1));
    let keepalive = socket2::TcpKeepalive::new().with_time(idle);
    #[cfg(any(target_os = "linux", target_os = "android"))]
    let keepalive = keepalive
        .with_interval(keepalive_interval(idle))
        .with_retries(KEEPALIVE_PROBES);
    socket.set_tcp_keepalive(&keepalive)?;
    #[cfg(any(target_os = "linux", target_os = "android"))]
    socket.set_tcp_user_timeout(Some(keepalive_limit(idle)))?;
    Ok(())
}

fn bind_tcp(address: &Address) -> io::Result<TcpListener> {
    let mut last_error = None;
    for addr in address.resolve()? {
        match TcpListener::bind(addr) {
            Ok(listener) => return Ok(listener),
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

#[cfg(unix)]
fn bind_unix(path: &Path) -> io::Result<UnixListener> {
    match UnixListener::bind(path) {
        Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
            remove_stale_socket(path)?;
            UnixListener::bind(path)
        }
        other => other,
    }
}

/// Connections the kernel may complete and queue until they are accepted;
/// Linux caps it at `net.core.somaxconn` (4096 by default).
const BACKLOG: i32 = 4096;

/// Deepens the queue of connections not accepted yet from std's 128 to
/// [`BACKLOG`] (listen(2) again on a listening socket only changes it). A
/// burst of connects beyond the queue is dropped by the kernel, and each
/// dropped client waits for a retransmission (1, 3, 7, 15, 31 s), past a
/// handshake timeout: a thousand clients connecting at once lost a few
/// hundred that way.
#[cfg(unix)]
fn deepen_backlog<L: AsFd>(listener: L) -> io::Result<L> {
    socket2::SockRef::from(&listener).listen(BACKLOG)?;
    Ok(listener)
}

#[cfg(not(unix))]
fn deepen_backlog<L>(listener: L) -> io::Result<L> {
    Ok(listener)
}

/// Removes `path` if it is a socket nobody listens on any more; refuses to
/// touch a live listener's socket or anything that is not a socket.
#[cfg(unix)]
fn remove_stale_socket(path: &Path) -> io::Result<()> {
    let metadata = fs::symlink_metadata(path)?;
    if !metadata.file_type().is_socket() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!(
                "{} exists and is not a socket; not removing it",
                path.display()
            ),
        ));
    }
    match UnixStream::connect(path) {
        Ok(_) => Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            "another listener is running on this socket",
        )),
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
            tracing::info!(path = %path.display(), "removing stale socket file");
            fs::remove_file(path)
        }
        Err(e) => Err(e),
    }
}
