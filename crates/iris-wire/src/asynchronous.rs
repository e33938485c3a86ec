//! The tokio adapter (feature `tokio`): the same frame codec and handshake
//! as the blocking adapter, driven over `AsyncRead + AsyncWrite`.
//!
//! Only how bytes are waited for differs: the decoder, the encoder and the
//! handshake state machine are the ones [`Connection`](crate::Connection)
//! uses, so both adapters accept and refuse exactly the same bytes. The
//! handshake timeout is a tokio timeout around the whole handshake (a
//! deadline, as in the blocking adapter); the read and write timeouts wrap
//! each receive and each flush.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
#[cfg(unix)]
use tokio::net::UnixStream;

use crate::address::ToAddress;
use crate::client::{OutstandingChallenge, refuse_reflected_challenges};
use crate::connection::{
    Received, SEALED_BULK_CHUNK, SEALED_WRITE_CHUNK, Sealed, end_of_stream_error, record_io_error,
};
use crate::driver::{HandshakeDriver, Screen, no_screen};
use crate::frame::{FLUSH_THRESHOLD, FrameDecoder, FrameEncoder};
use crate::handshake::{AuthKey, Handshake, MAX_HANDSHAKE_FRAME, Role, ToAuthKey};
use crate::listener::Socket;
use crate::nonce::fresh_nonce;
use crate::{Address, Error, Listener, Options};

/// A TCP or Unix-domain tokio socket: what [`AsyncListener`] and
/// [`AsyncClient`] connect, and the default stream of an
/// [`AsyncConnection`].
#[derive(Debug)]
#[non_exhaustive]
pub enum AsyncStream {
    /// A TCP connection.
    Tcp(TcpStream),
    /// A Unix-domain stream socket.
    #[cfg(unix)]
    Unix(UnixStream),
}

/// Forwards a poll to whichever socket the stream holds.
macro_rules! forward_poll {
    ($self:ident, $s:ident => $call:expr) => {
        match $self.get_mut() {
            AsyncStream::Tcp($s) => $call,
            #[cfg(unix)]
            AsyncStream::Unix($s) => $call,
        }
    };
}

impl AsyncRead for AsyncStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        forward_poll!(self, s => Pin::new(s).poll_read(cx, buf))
    }
}

impl AsyncWrite for AsyncStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        forward_poll!(self, s => Pin::new(s).poll_write(cx, buf))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        forward_poll!(self, s => Pin::new(s).poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        forward_poll!(self, s => Pin::new(s).poll_shutdown(cx))
    }
}

/// An authenticated connection over a tokio stream, the async counterpart
/// of [`Connection`](crate::Connection), with the same methods as `async
/// fn`s.
///
/// Receiving is cancel-safe: a [`recv_frame`](AsyncConnection::recv_frame)
/// dropped while it waits (say in `tokio::select!`) loses no bytes, because
/// the decoder keeps what has arrived. Flushing is cancel-safe too: what
/// was written is accounted for, the rest stays queued. A large
/// [`send_bytes`](AsyncConnection::send_bytes) (64 KiB or more), written
/// straight from the caller's memory, is not.
pub struct AsyncConnection<S = AsyncStream> {
    stream: S,
    decoder: FrameDecoder,
    encoder: FrameEncoder,
    read_timeout: Option<Duration>,
    write_timeout: Option<Duration>,
    peer: Option<Address>,
    peer_is_iris_listener: bool,
    sealed: Option<Box<Sealed>>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncConnection<S> {
    /// Authenticates over `stream`, a connection you already have, playing
    /// `role`; the async counterpart of
    /// [`Connection::authenticate`](crate::Connection::authenticate). The
    /// handshake timeout bounds the whole handshake.
    pub async fn authenticate(
        stream: S,
        role: Role,
        authkey: impl ToAuthKey,
        options: &Options,
    ) -> Result<AsyncConnection<S>, Error> {
        let authkey = authkey.to_auth_key()?;
        let connection = AsyncConnection::new(stream, None, options);
        connection.authenticate_as(role, &authkey, options).await
    }

    fn new(stream: S, peer: Option<Address>, options: &Options) -> Self {
        AsyncConnection {
            stream,
            decoder: FrameDecoder::new(options.max_frame()),
            encoder: FrameEncoder::new(),
            read_timeout: options.read_timeout(),
            write_timeout: options.write_timeout(),
            peer,
            peer_is_iris_listener: false,
            sealed: None,
        }
    }

    async fn authenticate_as(
        mut self,
        role: Role,
        authkey: &AuthKey,
        options: &Options,
    ) -> Result<AsyncConnection<S>, Error> {
        let nonce = fresh_nonce()?;
        let handshake = Handshake::with_options(role, authkey, nonce, options)?;
        let max_frame = self.decoder.max_frame();
        self.decoder.set_max_frame(MAX_HANDSHAKE_FRAME);
        let handshake = async {
            match role {
                Role::Listener => self.run_handshake(handshake, no_screen).await,
                Role::Client => {
                    let _outstanding = OutstandingChallenge::register(nonce);
                    self.run_handshake(handshake, refuse_reflected_challenges)
                        .await
                }
            }
        };
        match options.handshake_timeout() {
            Some(limit) => tokio::time::timeout(limit, handshake)
                .await
                .map_err(|_| Error::HandshakeTimeout { limit })??,
            None => handshake.await?,
        }
        self.decoder.set_max_frame(max_frame);
        Ok(self)
    }

    async fn run_handshake(&mut self, handshake: Handshake, screen: Screen) -> Result<(), Error> {
        let mut driver = HandshakeDriver::new(handshake, screen);
        while !driver.queue_outgoing(&mut self.encoder) {
            if !self.decoder.has_frame() {
                self.flush().await.map_err(|e| driver.read_error(e))?;
                driver.prepare()?;
            }
            let received = self
                .next_frame("the peer's handshake")
                .await
                .map_err(|e| driver.read_error(e))?;
            let payload = received.payload(&self.decoder, self.sealed.as_deref());
            if let Err(e) = driver.receive(payload, &mut self.encoder) {
                let _ = self.flush().await;
                return Err(e);
            }
        }
        self.peer_is_iris_listener = driver.peer_is_iris_listener();
        self.flush().await?;
        if let Some(session) = driver.take_session() {
            self.sealed = Some(Sealed::after_handshake(session, &mut self.decoder));
        }
        Ok(())
    }

    /// Whether the session is sealed: every byte after the handshake
    /// encrypted and authenticated (see [`crate::seal`]).
    pub fn is_sealed(&self) -> bool {
        self.sealed.is_some()
    }

    /// The peer's address, for connections made by [`AsyncListener`] or
    /// [`AsyncClient`]; `None` for a stream handed to
    /// [`authenticate`](AsyncConnection::authenticate).
    pub fn peer_addr(&self) -> Option<&Address> {
        self.peer.as_ref()
    }

    /// Whether the listener's challenge carried the iris mark: on the
    /// client side, an iris listener rather than CPython's (which expects
    /// pickles). Always false on the listener side.
    pub fn peer_is_iris_listener(&self) -> bool {
        self.peer_is_iris_listener
    }

    /// The stream underneath, for inspection and socket options.
    pub fn get_ref(&self) -> &S {
        &self.stream
    }

    /// Flushes what is queued and returns the stream, with the bytes already
    /// read from it that no receive has returned yet.
    pub async fn into_parts(mut self) -> Result<(S, Vec<u8>), Error> {
        if self.sealed.is_some() {
            return Err(crate::seal::RecordError::NoPlainStream.into());
        }
        self.flush().await?;
        let unread = self.decoder.take_buffered();
        Ok((self.stream, unread))
    }

    /// Sets how long a receive may wait; `None` waits forever.
    pub fn set_read_timeout(&mut self, timeout: Option<Duration>) {
        self.read_timeout = timeout.filter(|t| !t.is_zero());
    }

    /// Sets how long a flush may wait for the peer to make room; `None`
    /// waits forever.
    pub fn set_write_timeout(&mut self, timeout: Option<Duration>) {
        self.write_timeout = timeout.filter(|t| !t.is_zero());
    }

    /// Sets the largest frame accepted from now on.
    pub fn set_max_frame(&mut self, bytes: u64) {
        self.decoder.set_max_frame(bytes);
    }

    /// Queues `payload` as one frame, like CPython's `send_bytes`; writes
    /// only when enough is queued (or the payload is large).
    pub async fn send_bytes(&mut self, payload: &[u8]) -> Result<(), Error> {
        if payload.len() >= FLUSH_THRESHOLD {
            self.encoder.push_header(payload.len() as u64);
            self.flush().await?;
            let (stream, sealed) = (&mut self.stream, self.sealed.as_deref_mut());
            let write = async {
                match sealed {
                    None => stream.write_all(payload).await,
                    Some(sealed) => write_sealed(stream, sealed, payload, SEALED_BULK_CHUNK).await,
                }
            };
            return with_timeout(self.write_timeout, "the peer to read what we sent", write).await;
        }
        self.encoder.push(payload);
        self.flush_if_full().await
    }

    /// Queues `value`, encoded with postcard, as one frame.
    #[cfg(feature = "serde")]
    pub async fn send<T: serde::Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.encoder
            .push_with(|out| crate::codec::encode_into(value, out))
            .map_err(Error::Encode)?;
        self.flush_if_full().await
    }

    /// Writes everything queued.
    pub async fn flush(&mut self) -> Result<(), Error> {
        let unwritten = self
            .sealed
            .as_ref()
            .is_some_and(|sealed| !sealed.unwritten().is_empty());
        if self.encoder.is_empty() && !unwritten {
            return Ok(());
        }
        let (stream, encoder) = (&mut self.stream, &mut self.encoder);
        if let Some(sealed) = self.sealed.as_deref_mut() {
            let write = async {
                // Sealed a chunk at a time, each taken from the encoder as
                // it is sealed: a cancelled flush leaves the rest queued in
                // one place or the other, and nothing sealed twice.
                loop {
                    write_sealed(stream, sealed, &[], SEALED_WRITE_CHUNK).await?;
                    if encoder.is_empty() {
                        break;
                    }
                    let n = sealed
                        .seal_some(encoder.pending(), SEALED_WRITE_CHUNK)
                        .map_err(record_io_error)?;
                    encoder.consume(n);
                }
                stream.flush().await
            };
            return with_timeout(self.write_timeout, "the peer to read what we sent", write).await;
        }
        let write = async {
            while !encoder.is_empty() {
                let n = stream.write(encoder.pending()).await?;
                if n == 0 {
                    return Err(io::ErrorKind::WriteZero.into());
                }
                encoder.consume(n);
            }
            stream.flush().await
        };
        with_timeout(self.write_timeout, "the peer to read what we sent", write).await
    }

    async fn flush_if_full(&mut self) -> Result<(), Error> {
        if self.encoder.wants_flush() {
            self.flush().await
        } else {
            Ok(())
        }
    }

    /// Receives one frame and returns its payload, borrowed from the
    /// connection's buffer until the next call. [`Error::Closed`] when the
    /// peer closed the connection between frames.
    pub async fn recv_frame(&mut self) -> Result<&[u8], Error> {
        let received = self.next_frame("a message").await?;
        Ok(received.payload(&self.decoder, self.sealed.as_deref()))
    }

    /// Receives one frame as an owned vector, like CPython's `recv_bytes`.
    pub async fn recv_bytes(&mut self) -> Result<Vec<u8>, Error> {
        let received = self.next_frame("a message").await?;
        Ok(received.into_payload(&mut self.decoder, self.sealed.as_deref()))
    }

    /// Receives one frame and decodes it with postcard; trailing bytes are
    /// an error.
    #[cfg(feature = "serde")]
    pub async fn recv<T: serde::de::DeserializeOwned>(&mut self) -> Result<T, Error> {
        let frame = self.recv_frame().await?;
        crate::codec::decode_whole(frame).map_err(Error::Decode)
    }

    /// Whether a whole frame is already buffered, so that the next receive
    /// returns without waiting.
    pub fn has_buffered_frame(&self) -> bool {
        self.decoder.has_frame()
            || self
                .sealed
                .as_ref()
                .is_some_and(|sealed| sealed.may_hold_a_frame())
    }

    /// Flushes and shuts the connection down, reporting any error.
    pub async fn close(mut self) -> Result<(), Error> {
        self.flush().await?;
        match self.stream.shutdown().await {
            Err(e) if e.kind() != io::ErrorKind::NotConnected => Err(Error::Io(e)),
            _ => Ok(()),
        }
    }

    async fn next_frame(&mut self, waiting_for: &'static str) -> Result<Received, Error> {
        loop {
            if let Some(frame) = self.decoder.decode()? {
                return Ok(Received::Decoded(frame));
            }
            if let Some(sealed) = self.sealed.as_deref_mut() {
                if let Some(payload) = sealed.take_frame_in_place(&self.decoder)? {
                    return Ok(Received::InRecord(payload));
                }
                if sealed.open_into(&mut self.decoder)? {
                    continue;
                }
            }
            // A peer may be waiting for what we queued before it answers.
            self.flush().await?;
            if let Some(sealed) = self.sealed.as_deref_mut() {
                if self.decoder.in_long_frame() {
                    sealed.opener.grow_for_bulk();
                }
                let read = self.stream.read(sealed.opener.buffer());
                let n = with_timeout(self.read_timeout, waiting_for, read).await?;
                if n == 0 {
                    return Err(sealed.end_of_stream_error(&self.decoder));
                }
                sealed.opener.advance(n);
                continue;
            }
            let read = self.stream.read(self.decoder.buffer());
            let n = with_timeout(self.read_timeout, waiting_for, read).await?;
            if n == 0 {
                return Err(end_of_stream_error(&self.decoder));
            }
            self.decoder.advance(n);
        }
    }
}

/// Writes what `sealed` has queued, then `plaintext` sealed a chunk at a
/// time. Cancel-safe as to records: a write cut short leaves the rest of
/// its records queued in `sealed`, written first by the next write.
async fn write_sealed<S: AsyncWrite + Unpin>(
    stream: &mut S,
    sealed: &mut Sealed,
    mut plaintext: &[u8],
    chunk: usize,
) -> io::Result<()> {
    loop {
        while !sealed.unwritten().is_empty() {
            let n = stream.write(sealed.unwritten()).await?;
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            sealed.wrote(n);
        }
        if plaintext.is_empty() {
            return Ok(());
        }
        let n = sealed
            .seal_some(plaintext, chunk)
            .map_err(record_io_error)?;
        plaintext = &plaintext[n..];
    }
}

/// Shows the stream and the buffer sizes, never payload bytes.
impl<S: std::fmt::Debug> std::fmt::Debug for AsyncConnection<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncConnection")
            .field("stream", &self.stream)
            .field("peer", &self.peer)
            .field("decoder", &self.decoder)
            .field("encoder", &self.encoder)
            .finish()
    }
}

/// Runs an I/O future within `timeout` (if any), as an [`Error`].
async fn with_timeout<T>(
    timeout: Option<Duration>,
    waiting_for: &'static str,
    io: impl Future<Output = io::Result<T>>,
) -> Result<T, Error> {
    let result = match timeout {
        Some(limit) => tokio::time::timeout(limit, io)
            .await
            .map_err(|_| Error::Timeout { waiting_for })?,
        None => io.await,
    };
    result.map_err(|e| Error::from_io(e, waiting_for))
}

#[derive(Debug)]
enum TokioSocket {
    Tcp(tokio::net::TcpListener),
    #[cfg(unix)]
    Unix(tokio::net::UnixListener),
}

/// A listening socket that hands out authenticated [`AsyncConnection`]s,
/// the async counterpart of [`Listener`]: the same addresses, options and
/// bind rules (it is bound by a [`Listener`], which it keeps, so that a
/// Unix socket file is removed when it is dropped).
#[derive(Debug)]
pub struct AsyncListener {
    socket: TokioSocket,
    key: AuthKey,
    bound: Listener,
}

impl AsyncListener {
    /// Listens on `address` (see [`Address`]) with the default [`Options`].
    /// Must be called within a tokio runtime.
    pub fn bind(address: impl ToAddress, authkey: impl ToAuthKey) -> Result<AsyncListener, Error> {
        AsyncListener::bind_with(address, authkey, Options::default())
    }

    /// Listens on `address` with `options`, as [`Listener::bind_with`] does.
    pub fn bind_with(
        address: impl ToAddress,
        authkey: impl ToAuthKey,
        options: Options,
    ) -> Result<AsyncListener, Error> {
        let bound = Listener::bind_with(address, authkey, options)?;
        let (socket, key) = bound.share().map_err(Error::Io)?;
        let socket = match socket {
            Socket::Tcp(listener) => {
                listener.set_nonblocking(true).map_err(Error::Io)?;
                TokioSocket::Tcp(tokio::net::TcpListener::from_std(listener).map_err(Error::Io)?)
            }
            #[cfg(unix)]
            Socket::Unix(listener) => {
                listener.set_nonblocking(true).map_err(Error::Io)?;
                TokioSocket::Unix(tokio::net::UnixListener::from_std(listener).map_err(Error::Io)?)
            }
        };
        Ok(AsyncListener { socket, key, bound })
    }

    /// The address actually bound: with port 0, the port the system chose.
    pub fn local_addr(&self) -> &Address {
        self.bound.local_addr()
    }

    /// Waits for a client and authenticates it, within the handshake
    /// timeout. A client that fails the handshake makes this return its
    /// error; the listener stays usable. To authenticate many clients at
    /// once, spawn the authentication: [`AsyncListener::accept_stream`] and
    /// [`AsyncConnection::authenticate`].
    pub async fn accept(&self) -> Result<AsyncConnection, Error> {
        let (stream, peer) = self.accept_stream().await?;
        AsyncConnection::new(stream, Some(peer), self.bound.options())
            .authenticate_as(Role::Listener, &self.key, self.bound.options())
            .await
    }

    /// Waits for a client without authenticating it: hand the stream to
    /// [`AsyncConnection::authenticate`] with [`Role::Listener`], typically
    /// on a task of its own.
    pub async fn accept_stream(&self) -> Result<(AsyncStream, Address), Error> {
        match &self.socket {
            TokioSocket::Tcp(listener) => {
                let (stream, peer) = listener.accept().await.map_err(Error::Io)?;
                if !crate::listener::ACCEPTED_SOCKETS_INHERIT_OPTIONS {
                    crate::listener::tune_tcp(
                        &socket2::SockRef::from(&stream),
                        self.bound.options(),
                    )
                    .map_err(Error::Io)?;
                }
                Ok((AsyncStream::Tcp(stream), Address::from(peer)))
            }
            #[cfg(unix)]
            TokioSocket::Unix(listener) => {
                let (stream, _) = listener.accept().await.map_err(Error::Io)?;
                Ok((AsyncStream::Unix(stream), self.local_addr().clone()))
            }
        }
    }

    /// The key clients must hold, for [`AsyncConnection::authenticate`].
    pub fn authkey(&self) -> &AuthKey {
        &self.key
    }

    /// The options connections are accepted with.
    pub fn options(&self) -> &Options {
        self.bound.options()
    }
}

/// Connects to listeners from async code, the counterpart of
/// [`Client`](crate::Client).
#[derive(Debug, Clone, Copy)]
pub struct AsyncClient;

impl AsyncClient {
    /// Connects to `address` and authenticates with the default [`Options`].
    pub async fn connect(
        address: impl ToAddress,
        authkey: impl ToAuthKey,
    ) -> Result<AsyncConnection, Error> {
        AsyncClient::connect_with(address, authkey, &Options::default()).await
    }

    /// Connects to `address` and authenticates, with `options`. The
    /// handshake timeout bounds connecting and authenticating together.
    pub async fn connect_with(
        address: impl ToAddress,
        authkey: impl ToAuthKey,
        options: &Options,
    ) -> Result<AsyncConnection, Error> {
        let key = authkey.to_auth_key()?;
        let parsed = address.to_address()?;
        let connect_and_authenticate = async {
            let stream = connect(&parsed).await?;
            AsyncConnection::new(stream, Some(parsed.clone()), options)
                .authenticate_as(
                    Role::Client,
                    &key,
                    &options.clone().with_handshake_timeout(None),
                )
                .await
        };
        match options.handshake_timeout() {
            Some(limit) => tokio::time::timeout(limit, connect_and_authenticate)
                .await
                .map_err(|_| Error::HandshakeTimeout { limit })?,
            None => connect_and_authenticate.await,
        }
    }
}

async fn connect(parsed: &Address) -> Result<AsyncStream, Error> {
    let connect_error = |source| Error::Connect {
        address: parsed.to_string(),
        source,
    };
    match parsed {
        Address::Tcp { host, port } => {
            let mut addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), *port))
                .await
                .map_err(connect_error)?
                .collect();
            // IPv4 first, as the blocking client does.
            addrs.sort_by_key(SocketAddr::is_ipv6);
            let mut last_error = None;
            for addr in addrs {
                match TcpStream::connect(addr).await {
                    Ok(stream) => {
                        stream.set_nodelay(true).map_err(Error::Io)?;
                        return Ok(AsyncStream::Tcp(stream));
                    }
                    Err(e) => last_error = Some(e),
                }
            }
            Err(connect_error(last_error.unwrap_or_else(|| {
                io::Error::new(
                    io::ErrorKind::NotFound,
                    "the host name resolved to no address",
                )
            })))
        }
        #[cfg(unix)]
        Address::Unix(path) => UnixStream::connect(path)
            .await
            .map(AsyncStream::Unix)
            .map_err(connect_error),
        #[cfg(not(unix))]
        Address::Unix(_) => Err(Error::InvalidAddress {
            address: parsed.to_string(),
            reason: "Unix-domain sockets are not available on this platform",
        }),
    }
}
