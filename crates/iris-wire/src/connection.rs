//! The blocking adapter: an authenticated connection over any
//! [`Transport`], driving the sans-I/O frame codec and handshake.

use std::fmt;
use std::io;
use std::ops::Range;
#[cfg(unix)]
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::time::{Duration, Instant};

use crate::client::{OutstandingChallenge, refuse_reflected_challenges};
use crate::driver::{HandshakeDriver, Screen, no_screen};
use crate::frame::{FLUSH_THRESHOLD, Frame, FrameDecoder, FrameEncoder, FrameError};
use crate::handshake::{Handshake, MAX_HANDSHAKE_FRAME, Role, ToAuthKey};
use crate::nonce::fresh_nonce;
use crate::seal::{MAX_RECORD_PLAINTEXT, RecordError, RecordOpener, RecordSealer, Session};
use crate::stream::{Stream, Transport};
use crate::{Address, AuthError, Error, Options};

/// An authenticated, bidirectional connection to a peer, the counterpart of
/// CPython's `multiprocessing.connection.Connection`.
///
/// Frames are CPython's: a length header and that many bytes. Raw bytes go
/// through [`send_bytes`](Connection::send_bytes) /
/// [`recv_bytes`](Connection::recv_bytes); typed values through
/// [`send`](Connection::send) / [`recv`](Connection::recv), encoded with
/// postcard (feature `serde`, on by default).
///
/// [`Listener`](crate::Listener) and [`Client`](crate::Client) make
/// connections over TCP and Unix sockets ([`Stream`]); over a stream you
/// already have, use [`Connection::authenticate`]:
///
/// ```
/// # #[cfg(unix)] {
/// use std::os::unix::net::UnixStream;
/// use iris_wire::handshake::{AuthKey, Role};
/// use iris_wire::{Connection, Options};
///
/// let key = AuthKey::new(b"shared secret")?;
/// let (a, b) = UnixStream::pair()?;
/// let server_key = key.clone();
/// let server = std::thread::spawn(move || -> Result<_, iris_wire::Error> {
///     let mut connection = Connection::authenticate(a, Role::Listener, &server_key, &Options::new())?;
///     let request = connection.recv_bytes()?;
///     connection.send_bytes(&request)?;
///     connection.close()
/// });
/// let mut client = Connection::authenticate(b, Role::Client, &key, &Options::new())?;
/// assert!(client.is_sealed()); // two iris peers seal by default
/// client.send_bytes(b"echo")?;
/// assert_eq!(client.recv_bytes()?, b"echo");
/// server.join().expect("server thread")?;
/// # }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// **Buffering.** Sends are buffered so that streaming many small messages
/// costs few system calls. The buffer is written when it fills, when
/// [`flush`](Connection::flush) is called, before any receive that has to
/// wait for the peer (so request/response never deadlocks), on
/// [`close`](Connection::close), and, as a last resort, when the connection is
/// dropped (errors there cannot be reported: call `close` to see them).
pub struct Connection<S: Transport = Stream> {
    /// Always `Some`, except inside `into_parts`, which takes it out of a
    /// value that implements `Drop`.
    stream: Option<S>,
    decoder: FrameDecoder,
    encoder: FrameEncoder,
    read_timeout: Option<Duration>,
    write_timeout: Option<Duration>,
    /// While authenticating: when the whole handshake must be over. Every
    /// read and write gets only the time left, so a peer that trickles
    /// bytes cannot stretch the handshake past it.
    deadline: Option<Instant>,
    /// The read and write timeouts last set on the stream while
    /// authenticating, so that they are set again only when the time left
    /// has shrunk below them (a fast handshake sets each once).
    armed: [Option<Duration>; 2],
    /// After the handshake: whether the stream's read and write timeouts
    /// still wait to be set to the configured ones. Each is set before the
    /// first read or write that could wait on it, not when the handshake
    /// ends: a client that connects, sends and closes makes two system
    /// calls fewer on its way to sending.
    stale_timeouts: [bool; 2],
    peer: Option<Address>,
    /// Whether the listener's challenge carried the iris mark (client side).
    peer_is_iris_listener: bool,
    /// The record layer of a sealed session.
    sealed: Option<Box<Sealed>>,
    /// Whether a sealed handshake's last flight may wait for the first
    /// message, to leave with it (set by [`Client`](crate::Client)).
    hold_last_flight: bool,
    /// Whether the stream holds back bytes written ahead
    /// ([`Transport::write_ahead`]) that nothing has sent yet.
    held: bool,
}

/// The record layer of a sealed session, as both adapters hold it.
pub(crate) struct Sealed {
    pub(crate) sealer: RecordSealer,
    pub(crate) opener: RecordOpener,
    /// Records on their way out: `out[written..]` is still to be written.
    /// Sealing happens only once it is all written, so that a write cut
    /// short (a timeout, a cancelled future) loses no record: the next
    /// write goes on where it stopped.
    out: Vec<u8>,
    written: usize,
    /// Bytes that arrived during the handshake behind its last frame: the
    /// first records, opened before anything more is read.
    pub(crate) carried: Vec<u8>,
}

/// How much queued plaintext is sealed per write.
pub(crate) const SEALED_WRITE_CHUNK: usize = 4 * MAX_RECORD_PLAINTEXT;
/// How much of a large payload is sealed per write: as much as an unsealed
/// write of it would usually move.
pub(crate) const SEALED_BULK_CHUNK: usize = 16 * MAX_RECORD_PLAINTEXT;

impl Sealed {
    /// The sealed session that follows a handshake. It takes the bytes that
    /// arrived behind the handshake's last frame (the first records) from
    /// `decoder`, and frees the decoder's buffer: from now on records hold
    /// what arrives and frames are mostly taken from them in place, so the
    /// decoder allocates again only for a frame that spans records. An idle
    /// sealed connection holds 4 KiB less.
    pub(crate) fn after_handshake(session: Session, decoder: &mut FrameDecoder) -> Box<Sealed> {
        let carried = decoder.take_buffered();
        decoder.release_memory();
        Sealed::new(session, carried)
    }

    pub(crate) fn new(session: Session, carried: Vec<u8>) -> Box<Sealed> {
        Box::new(Sealed {
            sealer: session.sealer,
            opener: session.opener,
            out: Vec::new(),
            written: 0,
            carried,
        })
    }

    /// The sealed bytes not written yet.
    pub(crate) fn unwritten(&self) -> &[u8] {
        &self.out[self.written..]
    }

    /// Records that `n` of the [`unwritten`](Sealed::unwritten) bytes were
    /// written.
    pub(crate) fn wrote(&mut self, n: usize) {
        self.written = (self.written + n).min(self.out.len());
    }

    /// Seals the first at most `chunk` bytes of `plaintext` into the
    /// queue, which must be all written; returns how many it sealed.
    pub(crate) fn seal_some(
        &mut self,
        plaintext: &[u8],
        chunk: usize,
    ) -> Result<usize, RecordError> {
        debug_assert!(self.unwritten().is_empty());
        let piece = &plaintext[..plaintext.len().min(chunk)];
        self.out.clear();
        self.written = 0;
        self.sealer.seal(piece, &mut self.out)?;
        Ok(piece.len())
    }

    /// Writes what is queued, then `plaintext` sealed `chunk` bytes at a
    /// time, to a blocking stream.
    pub(crate) fn write_all(
        &mut self,
        stream: &mut impl io::Write,
        mut plaintext: &[u8],
        chunk: usize,
    ) -> io::Result<()> {
        loop {
            while !self.unwritten().is_empty() {
                match stream.write(self.unwritten()) {
                    Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                    Ok(n) => self.wrote(n),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            if plaintext.is_empty() {
                return Ok(());
            }
            let n = self.seal_some(plaintext, chunk).map_err(record_io_error)?;
            plaintext = &plaintext[n..];
        }
    }

    /// Whether a frame may be waiting in what was read but not yet given to
    /// the frame decoder: plaintext, a whole record, or bytes carried over
    /// from the handshake.
    #[inline]
    pub(crate) fn may_hold_a_frame(&self) -> bool {
        self.opener.has_plaintext() || !self.carried.is_empty() || self.opener.has_whole_record()
    }

    /// Makes opened plaintext available if it can: opens the next record
    /// once the last one's plaintext is used up (bytes carried over from
    /// the handshake first), skipping empty records. False when no whole
    /// record is here.
    fn open_more(&mut self) -> Result<bool, RecordError> {
        loop {
            if self.opener.has_plaintext() {
                return Ok(true);
            }
            if !self.carried.is_empty() {
                let n = self.opener.feed(&self.carried);
                self.carried.drain(..n);
            }
            if !self.opener.open_next()? {
                return Ok(false);
            }
        }
    }

    /// Takes the next frame where it lies, without copying it, when the
    /// decoder holds nothing and the frame is whole in the opened plaintext
    /// (most frames of a stream of small messages): returns where its
    /// payload is in the opener's buffer (see [`Received`]). `None` when
    /// the plaintext starts with only part of a frame, or with a header
    /// the decoder has to judge: [`open_into`](Sealed::open_into) then
    /// moves it into the decoder.
    #[inline]
    pub(crate) fn take_frame_in_place(
        &mut self,
        decoder: &FrameDecoder,
    ) -> Result<Option<Range<usize>>, RecordError> {
        if decoder.has_buffered_bytes() || (!self.opener.has_plaintext() && !self.open_more()?) {
            return Ok(None);
        }
        Ok(self.opener.take_frame(decoder.max_frame()))
    }

    /// Moves opened plaintext into `decoder` while it takes any; true if
    /// some moved. Opens records as their plaintext is used up, skipping
    /// empty ones.
    ///
    /// A record that fails to open is reported only once the plaintext
    /// moved before it has been handed out (the opener keeps the error for
    /// the next call): the authentic records before a tampered one are all
    /// delivered.
    pub(crate) fn open_into(&mut self, decoder: &mut FrameDecoder) -> Result<bool, RecordError> {
        let mut moved = false;
        loop {
            match self.open_more() {
                Ok(true) => {}
                Ok(false) => return Ok(moved),
                Err(_) if moved => return Ok(true),
                Err(error) => return Err(error),
            }
            let n = decoder.feed(self.opener.plaintext());
            self.opener.consume(n);
            if n == 0 {
                return Ok(moved);
            }
            moved = true;
        }
    }

    /// The error for a stream that ended: inside a record, or else as the
    /// frames inside tell.
    pub(crate) fn end_of_stream_error(&self, decoder: &FrameDecoder) -> Error {
        match self.opener.end_of_stream() {
            Ok(()) => end_of_stream_error(decoder),
            Err(truncated) => truncated.into(),
        }
    }
}

/// Where a received frame's payload lies: in the frame decoder, or, in a
/// sealed session, in place in the opener's buffer, in the record it
/// arrived in (no copy). Valid until the connection is used again.
pub(crate) enum Received {
    Decoded(Frame),
    InRecord(Range<usize>),
}

impl Received {
    /// The payload, borrowed from where it lies.
    #[inline]
    pub(crate) fn payload<'a>(
        &self,
        decoder: &'a FrameDecoder,
        sealed: Option<&'a Sealed>,
    ) -> &'a [u8] {
        match self {
            Received::Decoded(frame) => decoder.payload(frame),
            Received::InRecord(range) => in_record(sealed, range.clone()),
        }
    }

    /// The payload, owned: a long frame's buffer is handed over rather
    /// than copied.
    pub(crate) fn into_payload(
        self,
        decoder: &mut FrameDecoder,
        sealed: Option<&Sealed>,
    ) -> Vec<u8> {
        match self {
            Received::Decoded(frame) => decoder.take_payload(frame),
            Received::InRecord(range) => in_record(sealed, range).to_vec(),
        }
    }
}

#[inline]
fn in_record(sealed: Option<&Sealed>, range: Range<usize>) -> &[u8] {
    match sealed {
        Some(sealed) => sealed.opener.opened(range),
        None => unreachable!("only a sealed session receives frames in place"),
    }
}

/// A record error carried through `io::Result`s, unwrapped by
/// [`Error::from_io`].
pub(crate) fn record_io_error(error: RecordError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, error)
}

/// The stream of a connection (see `Connection::stream`).
fn stream<S>(slot: &mut Option<S>) -> &mut S {
    slot.as_mut().unwrap_or_else(|| {
        unreachable!("only into_parts takes the stream, and it consumes the connection")
    })
}

/// How far past the handshake deadline a read or write may end: the price
/// of setting the stream's timeouts once per handshake rather than before
/// every read (see `Connection::prepare_timeout`).
const DEADLINE_SLACK: Duration = Duration::from_millis(10);

/// How a failed read looks during the handshake: a peer that hangs up,
/// cleanly or not, has simply gone (a listener that does so before its
/// challenge is refusing the connection); an oversized frame breaks the
/// protocol.
pub(crate) fn handshake_read_error(error: Error, before_challenge: bool) -> Error {
    match error {
        Error::Closed if before_challenge => AuthError::ClosedBeforeChallenge.into(),
        Error::Closed | Error::Frame(FrameError::Truncated { .. }) => AuthError::PeerClosed.into(),
        // A peer that drops the connection with our bytes unread resets it:
        // the same story as a clean close.
        Error::Io(e)
            if matches!(
                e.kind(),
                io::ErrorKind::ConnectionReset
                    | io::ErrorKind::ConnectionAborted
                    | io::ErrorKind::BrokenPipe
            ) =>
        {
            AuthError::PeerClosed.into()
        }
        Error::Frame(FrameError::TooLarge { len, .. }) => AuthError::Protocol(format!(
            "handshake frame of {len} bytes, over the limit of {MAX_HANDSHAKE_FRAME}"
        ))
        .into(),
        other => other,
    }
}

/// The error for a stream that ended: cleanly between frames, or inside one.
pub(crate) fn end_of_stream_error(decoder: &FrameDecoder) -> Error {
    match decoder.end_of_stream() {
        Ok(()) => Error::Closed,
        Err(truncated) => truncated.into(),
    }
}

impl<S: Transport> Connection<S> {
    /// Authenticates over `stream`, a connection you already have (an
    /// accepted `TcpStream`, one end of a `UnixStream::pair()`, a TLS
    /// stream), playing `role`, and returns the authenticated connection.
    ///
    /// The peer runs the same handshake in the other role: CPython's
    /// `Listener.accept()` / `Client()` or another iris peer. The options'
    /// handshake timeout is a deadline for the whole handshake, enforced
    /// through the stream's timeouts (see [`Transport`]). On failure the
    /// stream is dropped, which closes it.
    pub fn authenticate(
        stream: S,
        role: Role,
        authkey: impl ToAuthKey,
        options: &Options,
    ) -> Result<Connection<S>, Error> {
        let authkey = authkey.to_auth_key()?;
        let timeout = options.handshake_timeout();
        let deadline = timeout.map(|t| Instant::now() + t);
        let nonce = fresh_nonce()?;
        let handshake = Handshake::with_options(role, &authkey, nonce, options)?;
        let connection = Connection::new(stream, None, options);
        match role {
            Role::Listener => {
                connection.run_authentication(handshake, deadline, timeout, no_screen)
            }
            Role::Client => {
                let _outstanding = OutstandingChallenge::register(nonce);
                connection.run_authentication(
                    handshake,
                    deadline,
                    timeout,
                    refuse_reflected_challenges,
                )
            }
        }
    }

    pub(crate) fn new(stream: S, peer: Option<Address>, options: &Options) -> Self {
        Connection {
            stream: Some(stream),
            decoder: FrameDecoder::new(options.max_frame()),
            encoder: FrameEncoder::new(),
            read_timeout: options.read_timeout(),
            write_timeout: options.write_timeout(),
            deadline: None,
            armed: [None; 2],
            stale_timeouts: [false; 2],
            peer,
            peer_is_iris_listener: false,
            sealed: None,
            hold_last_flight: false,
            held: false,
        }
    }

    /// Lets a sealed handshake's last flight wait, written ahead, for the
    /// first message or the first wait for the peer, and leave with it: a
    /// client's first message then costs one write and one packet fewer.
    /// The listener cannot reply before that flight, so every wait for it
    /// sends it first, as do `flush`, `close` and dropping; otherwise the
    /// transport sends it by itself within about 200 ms.
    pub(crate) fn holding_last_flight(mut self) -> Self {
        self.hold_last_flight = true;
        self
    }

    /// Records that the stream's write timeout is already `armed` for the
    /// handshake's deadline (set before connecting), so that the first
    /// write needs no system call to set it.
    pub(crate) fn with_write_timeout_armed(mut self, armed: Option<Duration>) -> Self {
        self.armed[1] = armed;
        self
    }

    /// Writes `bytes` at once, past the buffer.
    pub(crate) fn write_now(&mut self, bytes: &[u8]) -> Result<(), Error> {
        stream(&mut self.stream).write_all(bytes).map_err(Error::Io)
    }

    /// Runs `handshake` to completion before `deadline` (`None`: no
    /// limit). `timeout` is the limit as configured, for the error message.
    /// Every frame from the peer passes `screen` before the handshake sees
    /// it.
    pub(crate) fn run_authentication(
        mut self,
        handshake: Handshake,
        deadline: Option<Instant>,
        timeout: Option<Duration>,
        screen: Screen,
    ) -> Result<Connection<S>, Error> {
        self.deadline = deadline;
        let max_frame = self.decoder.max_frame();
        self.decoder.set_max_frame(MAX_HANDSHAKE_FRAME);
        let result = self.run_handshake(handshake, screen);
        self.decoder.set_max_frame(max_frame);
        self.deadline = None;
        match result {
            Ok(()) => {}
            Err(Error::Timeout { .. }) => {
                return Err(Error::HandshakeTimeout {
                    limit: timeout.unwrap_or_default(),
                });
            }
            Err(e) => return Err(e),
        }
        // The handshake's timeouts stay on the stream until a read or write
        // needs the configured ones (see `prepare_timeout`). A stream handed
        // to `authenticate` may carry timeouts of its own: both are set.
        let configured = [self.read_timeout, self.write_timeout];
        let handed_in = self.peer.is_none();
        for (direction, stale) in self.stale_timeouts.iter_mut().enumerate() {
            *stale =
                handed_in || self.armed[direction].is_some() || configured[direction].is_some();
        }
        self.armed = [None; 2];
        Ok(self)
    }

    fn run_handshake(&mut self, handshake: Handshake, screen: Screen) -> Result<(), Error> {
        let mut driver = HandshakeDriver::new(handshake, screen);
        while !driver.queue_outgoing(&mut self.encoder) {
            // Pending output is flushed only when this read has to wait: a
            // pipelining client's challenge is often already here, and then
            // the welcome and our answer leave in one write. The sealing
            // work that can wait for nothing runs while the peer works.
            if !self.decoder.has_frame() {
                self.flush().map_err(|e| driver.read_error(e))?;
                driver.prepare()?;
            }
            let received = self
                .next_frame("the peer's handshake")
                .map_err(|e| driver.read_error(e))?;
            let payload = received.payload(&self.decoder, self.sealed.as_deref());
            if let Err(e) = driver.receive(payload, &mut self.encoder) {
                // Tell the peer why it is being dropped, if it still listens.
                let _ = self.flush();
                return Err(e);
            }
        }
        self.peer_is_iris_listener = driver.peer_is_iris_listener();
        let session = driver.take_session();
        if session.is_some() && self.hold_last_flight {
            self.write_ahead()?;
        } else {
            // The last verdict goes out now: a CPython listener's accept()
            // waits for it before the application can do anything.
            self.flush()?;
        }
        if let Some(session) = session {
            self.sealed = Some(Sealed::after_handshake(session, &mut self.decoder));
        }
        Ok(())
    }

    /// Writes what is queued ahead of what follows (see
    /// [`holding_last_flight`](Connection::holding_last_flight)).
    fn write_ahead(&mut self) -> Result<(), Error> {
        let result = self
            .prepare_timeout(true)
            .and_then(|()| stream(&mut self.stream).write_ahead(self.encoder.pending()));
        self.encoder.consume(usize::MAX);
        self.held = result.map_err(|e| Error::from_io(e, "the peer to read what we sent"))?;
        Ok(())
    }

    /// Sends what the stream holds back, if anything.
    fn release_held(&mut self) -> io::Result<()> {
        if std::mem::take(&mut self.held) {
            stream(&mut self.stream).release()?;
        }
        Ok(())
    }

    /// Before a read or write: sets the stream's timeout for it as it must
    /// be, or fails if the handshake has no time left.
    ///
    /// While authenticating, the stream gets only the time left before the
    /// deadline. A timeout already set is kept while it ends no later than
    /// [`DEADLINE_SLACK`] past the deadline: each setting is a system call,
    /// and a handshake that goes at network speed then sets each timeout
    /// once instead of before every read and write. After the handshake,
    /// the configured timeout replaces the handshake's, once.
    fn prepare_timeout(&mut self, write: bool) -> io::Result<()> {
        match self.timeout_to_set(write)? {
            Some(timeout) => self.set_timeout(write, timeout),
            None => Ok(()),
        }
    }

    /// The timeout [`prepare_timeout`](Connection::prepare_timeout) would
    /// set before a read or write: `None` when the stream's is right as it
    /// is.
    fn timeout_to_set(&self, write: bool) -> io::Result<Option<Option<Duration>>> {
        let direction = usize::from(write);
        let Some(deadline) = self.deadline else {
            let configured = if write {
                self.write_timeout
            } else {
                self.read_timeout
            };
            return Ok(self.stale_timeouts[direction].then_some(configured));
        };
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        if self.armed[direction].is_some_and(|timeout| timeout <= left + DEADLINE_SLACK) {
            return Ok(None);
        }
        Ok(Some(Some(left)))
    }

    /// Sets the stream's timeout for reads or writes, and records it as
    /// armed for the handshake or as no longer stale after it.
    fn set_timeout(&mut self, write: bool, timeout: Option<Duration>) -> io::Result<()> {
        let direction = usize::from(write);
        if self.deadline.is_some() {
            self.armed[direction] = timeout;
        } else {
            self.stale_timeouts[direction] = false;
        }
        let stream = stream(&mut self.stream);
        if write {
            stream.set_write_timeout(timeout)
        } else {
            stream.set_read_timeout(timeout)
        }
    }

    /// The peer's address, for connections made by
    /// [`Listener`](crate::Listener) or [`Client`](crate::Client) (for a
    /// Unix socket, usually an empty path); `None` for a stream handed to
    /// [`Connection::authenticate`].
    pub fn peer_addr(&self) -> Option<&Address> {
        self.peer.as_ref()
    }

    /// The stream underneath. Reading or writing it directly would put the
    /// framing out of step: use it for inspection and socket options. Set
    /// timeouts with [`set_read_timeout`](Connection::set_read_timeout) and
    /// [`set_write_timeout`](Connection::set_write_timeout): until the first
    /// read or write after the handshake that could wait, the stream may
    /// still carry the handshake's, which that read or write replaces with
    /// the configured ones (a read whose bytes are already there does not).
    pub fn get_ref(&self) -> &S {
        self.stream
            .as_ref()
            .unwrap_or_else(|| unreachable!("only into_parts takes the stream"))
    }

    /// Flushes what is queued and returns the stream, with the bytes already
    /// read from it that no receive has returned yet (usually none): the
    /// way back to the plain stream, say to hand it to another protocol. A
    /// sealed session has no way back ([`RecordError::NoPlainStream`]).
    pub fn into_parts(mut self) -> Result<(S, Vec<u8>), Error> {
        if self.sealed.is_some() {
            return Err(RecordError::NoPlainStream.into());
        }
        self.flush()?;
        self.prepare_timeout(false)
            .and_then(|()| self.prepare_timeout(true))
            .map_err(Error::Io)?;
        let unread = self.decoder.take_buffered();
        let stream = self
            .stream
            .take()
            .unwrap_or_else(|| unreachable!("only into_parts takes the stream"));
        Ok((stream, unread))
    }

    /// Whether the peer is an iris listener, known from the mark on its
    /// challenge: false for a CPython listener, which understands only
    /// pickles and answers nothing, and always false on the listener side.
    /// See [`Handshake::peer_is_iris_listener`](crate::handshake::Handshake::peer_is_iris_listener).
    pub fn peer_is_iris_listener(&self) -> bool {
        self.peer_is_iris_listener
    }

    /// Whether the session is sealed: every byte after the handshake
    /// encrypted and authenticated (see [`crate::seal`]).
    pub fn is_sealed(&self) -> bool {
        self.sealed.is_some()
    }

    /// Sets how long a receive may wait; `None` waits forever.
    pub fn set_read_timeout(&mut self, timeout: Option<Duration>) -> Result<(), Error> {
        let timeout = timeout.filter(|t| !t.is_zero());
        stream(&mut self.stream)
            .set_read_timeout(timeout)
            .map_err(Error::Io)?;
        self.read_timeout = timeout;
        self.stale_timeouts[0] = false;
        Ok(())
    }

    /// Sets how long a send may wait for the peer to make room; `None`
    /// waits forever.
    pub fn set_write_timeout(&mut self, timeout: Option<Duration>) -> Result<(), Error> {
        let timeout = timeout.filter(|t| !t.is_zero());
        stream(&mut self.stream)
            .set_write_timeout(timeout)
            .map_err(Error::Io)?;
        self.write_timeout = timeout;
        self.stale_timeouts[1] = false;
        Ok(())
    }

    /// Sets the largest frame accepted from now on.
    pub fn set_max_frame(&mut self, bytes: u64) {
        self.decoder.set_max_frame(bytes);
    }

    /// Queues `payload` as one frame, like CPython's `send_bytes`.
    pub fn send_bytes(&mut self, payload: &[u8]) -> Result<(), Error> {
        if payload.len() >= FLUSH_THRESHOLD {
            // Large payloads go straight from the caller's memory, or are
            // sealed from it a few records at a time.
            self.encoder.push_header(payload.len() as u64);
            self.flush()?;
            self.prepare_timeout(true).map_err(Error::Io)?;
            let stream = stream(&mut self.stream);
            let written = match self.sealed.as_deref_mut() {
                None => stream.write_all(payload),
                Some(sealed) => sealed.write_all(stream, payload, SEALED_BULK_CHUNK),
            };
            return written.map_err(|e| Error::from_io(e, "the peer to read what we sent"));
        }
        self.encoder.push(payload);
        self.flush_if_full()
    }

    /// Queues `value`, encoded with postcard, as one frame.
    #[cfg(feature = "serde")]
    pub fn send<T: serde::Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.encoder
            .push_with(|out| crate::codec::encode_into(value, out))
            .map_err(Error::Encode)?;
        self.flush_if_full()
    }

    /// Writes everything queued.
    pub fn flush(&mut self) -> Result<(), Error> {
        let unwritten = self
            .sealed
            .as_ref()
            .is_some_and(|sealed| !sealed.unwritten().is_empty());
        let result = if self.encoder.is_empty() && !unwritten {
            self.release_held()
        } else {
            self.write_pending()
        };
        result.map_err(|e| Error::from_io(e, "the peer to read what we sent"))
    }

    /// Writes the queued bytes; they are dropped either way, as a failed
    /// write leaves the stream unusable.
    fn write_pending(&mut self) -> io::Result<()> {
        let result = self.prepare_timeout(true).and_then(|()| {
            let stream = stream(&mut self.stream);
            match self.sealed.as_deref_mut() {
                None => stream.write_all(self.encoder.pending()),
                Some(sealed) => {
                    sealed.write_all(stream, self.encoder.pending(), SEALED_WRITE_CHUNK)
                }
            }
        });
        self.encoder.consume(usize::MAX);
        // A write sends along whatever the stream held back.
        self.held &= result.is_err();
        result
    }

    fn flush_if_full(&mut self) -> Result<(), Error> {
        if self.encoder.wants_flush() {
            self.flush()
        } else {
            Ok(())
        }
    }

    /// Receives one frame and returns its payload, borrowed from the
    /// connection's buffer until the next call: the fastest way to receive.
    ///
    /// Returns [`Error::Closed`] when the peer closed the connection between
    /// frames, CPython's `EOFError`.
    pub fn recv_frame(&mut self) -> Result<&[u8], Error> {
        let received = self.next_frame("a message")?;
        Ok(received.payload(&self.decoder, self.sealed.as_deref()))
    }

    /// Receives one frame as an owned vector, like CPython's `recv_bytes`.
    pub fn recv_bytes(&mut self) -> Result<Vec<u8>, Error> {
        let received = self.next_frame("a message")?;
        Ok(received.into_payload(&mut self.decoder, self.sealed.as_deref()))
    }

    /// Receives one frame and decodes it with postcard. The whole frame must
    /// be one value: trailing bytes are an error.
    #[cfg(feature = "serde")]
    pub fn recv<T: serde::de::DeserializeOwned>(&mut self) -> Result<T, Error> {
        let frame = self.recv_frame()?;
        crate::codec::decode_whole(frame).map_err(Error::Decode)
    }

    /// Whether a whole frame is already buffered, so that the next receive
    /// returns without touching the socket. A server can use this to do its
    /// idle-time work (flushing output, say) only when it is about to wait.
    /// In a sealed session it is also true while opened or unopened records
    /// are buffered, which usually hold a frame.
    pub fn has_buffered_frame(&self) -> bool {
        match &self.sealed {
            // Sealed, frames are mostly taken in place, the decoder empty.
            Some(sealed) => sealed.may_hold_a_frame() || self.decoder.has_frame(),
            None => self.decoder.has_frame(),
        }
    }

    /// Whether a frame can be received without waiting longer than
    /// `timeout` (`None` waits forever), like CPython's `poll`. Also true
    /// when the peer closed, so that the next receive reports it. A zero
    /// timeout needs a transport that can be made non-blocking. In a sealed
    /// session, true once any bytes arrived: a receive may then still wait
    /// for the rest of a record.
    pub fn poll(&mut self, timeout: Option<Duration>) -> Result<bool, Error> {
        if self.decoder.has_buffered_bytes()
            || self.sealed.as_ref().is_some_and(|sealed| {
                sealed.opener.has_buffered_bytes() || !sealed.carried.is_empty()
            })
        {
            return Ok(true);
        }
        self.flush()?;
        let result = match timeout {
            Some(t) if t.is_zero() => {
                stream(&mut self.stream)
                    .set_nonblocking(true)
                    .map_err(Error::Io)?;
                let result = self.read_once();
                stream(&mut self.stream)
                    .set_nonblocking(false)
                    .map_err(Error::Io)?;
                result
            }
            _ => {
                stream(&mut self.stream)
                    .set_read_timeout(timeout)
                    .map_err(Error::Io)?;
                // This wait's own timeout, restored to the configured one
                // below: nothing is stale any more.
                self.stale_timeouts[0] = false;
                let result = self.read_once();
                let read_timeout = self.read_timeout;
                stream(&mut self.stream)
                    .set_read_timeout(read_timeout)
                    .map_err(Error::Io)?;
                result
            }
        };
        match result {
            Ok(_) => Ok(true),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                Ok(false)
            }
            Err(e) => Err(Error::from_io(e, "a message")),
        }
    }

    /// Flushes and closes the connection, reporting any error.
    pub fn close(mut self) -> Result<(), Error> {
        // The shutdown sends what the stream holds back.
        self.held = false;
        self.flush()?;
        match stream(&mut self.stream).shutdown() {
            Err(e) if e.kind() != io::ErrorKind::NotConnected => Err(Error::Io(e)),
            _ => Ok(()),
        }
    }

    /// The next whole frame, reading as needed. In a sealed session, a
    /// frame whole in the opened plaintext is taken where it lies (the
    /// decoder, empty then, has the others).
    fn next_frame(&mut self, waiting_for: &'static str) -> Result<Received, Error> {
        loop {
            if let Some(sealed) = self.sealed.as_deref_mut()
                && let Some(payload) = sealed.take_frame_in_place(&self.decoder)?
            {
                return Ok(Received::InRecord(payload));
            }
            if let Some(frame) = self.decoder.decode()? {
                return Ok(Received::Decoded(frame));
            }
            if let Some(sealed) = self.sealed.as_deref_mut()
                && sealed.open_into(&mut self.decoder)?
            {
                continue;
            }
            self.read_more(waiting_for)?;
        }
    }

    /// Reads once for `next_frame`; the end of the stream is an error that
    /// says where it fell.
    fn read_more(&mut self, waiting_for: &'static str) -> Result<(), Error> {
        match self.read_once() {
            Ok(0) => Err(match &self.sealed {
                Some(sealed) => sealed.end_of_stream_error(&self.decoder),
                None => end_of_stream_error(&self.decoder),
            }),
            Ok(_) => Ok(()),
            Err(e) => Err(Error::from_io(e, waiting_for)),
        }
    }

    /// Reads once, flushing first: a peer may be waiting for what we queued
    /// before it answers. Returns 0 at end of stream. The bytes go to the
    /// decoder, or in a sealed session to the record opener.
    fn read_once(&mut self) -> io::Result<usize> {
        if !self.encoder.is_empty() {
            self.write_pending()?;
        } else {
            self.release_held()?;
        }
        // Bytes that have already arrived need no timeout to wait for them:
        // the system call that sets it is left for a read that may wait
        // (a fast-open client's answer is usually there when the client
        // gets the core back; a session's end usually is too).
        let mut timeout_to_set = self.timeout_to_set(false)?;
        let mut without_waiting = timeout_to_set.is_some();
        loop {
            if !without_waiting && let Some(timeout) = timeout_to_set.take() {
                self.set_timeout(false, timeout)?;
            }
            let buffer = match self.sealed.as_deref_mut() {
                Some(sealed) => {
                    if self.decoder.in_long_frame() {
                        sealed.opener.grow_for_bulk();
                    }
                    sealed.opener.buffer()
                }
                None => self.decoder.buffer(),
            };
            let stream = stream(&mut self.stream);
            let result = if without_waiting {
                stream.read_if_ready(buffer)
            } else {
                stream.read(buffer)
            };
            match result {
                Ok(n) => {
                    match self.sealed.as_deref_mut() {
                        Some(sealed) => sealed.opener.advance(n),
                        None => self.decoder.advance(n),
                    }
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e)
                    if without_waiting
                        && matches!(
                            e.kind(),
                            io::ErrorKind::WouldBlock | io::ErrorKind::Unsupported
                        ) =>
                {
                    without_waiting = false;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

impl Connection<Stream> {
    /// Reads what the peer has sent so far into the decoder, without
    /// waiting: for the listener's handshake steps on the accepting thread.
    /// `Ok(0)` at the end of the stream.
    pub(crate) fn read_without_waiting(&mut self) -> io::Result<usize> {
        let n = stream(&mut self.stream).read_arrived(self.decoder.buffer())?;
        self.decoder.advance(n);
        Ok(n)
    }

    /// The next whole handshake frame already buffered, if any. Anything
    /// else (part of a frame, a header too long for a handshake frame)
    /// stays buffered for the handshake proper, which reports it.
    pub(crate) fn buffered_handshake_frame(&mut self) -> Option<Vec<u8>> {
        let max_frame = self.decoder.max_frame();
        self.decoder.set_max_frame(MAX_HANDSHAKE_FRAME);
        let frame = self.decoder.decode();
        self.decoder.set_max_frame(max_frame);
        let frame = frame.ok()??;
        Some(self.decoder.payload(&frame).to_vec())
    }
}

impl<S: Transport> Drop for Connection<S> {
    fn drop(&mut self) {
        // Last resort, so that queued messages are not silently lost; `close`
        // reports errors that cannot be reported here.
        if self.stream.is_some() {
            // Closing the stream sends what it holds back.
            self.held = false;
            let _ = self.flush();
        }
    }
}

/// Shows the stream and the buffer sizes, never payload bytes.
impl<S: Transport + fmt::Debug> fmt::Debug for Connection<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("stream", &self.stream)
            .field("peer", &self.peer)
            .field("decoder", &self.decoder)
            .field("encoder", &self.encoder)
            .field("sealed", &self.sealed.is_some())
            .field("read_timeout", &self.read_timeout)
            .field("write_timeout", &self.write_timeout)
            .finish()
    }
}

/// The socket's descriptor, so that a caller can wait for it with
/// `poll(2)`, epoll or mio. Buffered frames do not show there: check
/// [`Connection::has_buffered_frame`] first.
#[cfg(unix)]
impl<S: Transport + AsFd> AsFd for Connection<S> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.get_ref().as_fd()
    }
}

#[cfg(unix)]
impl<S: Transport + AsRawFd> AsRawFd for Connection<S> {
    fn as_raw_fd(&self) -> RawFd {
        self.get_ref().as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handshake::NONCE_LEN;
    use crate::seal::RECORDS_PER_KEY;

    /// A stream that counts what is written ahead and released, and how
    /// often its read timeout is set.
    #[cfg(unix)]
    struct Counting {
        inner: std::os::unix::net::UnixStream,
        ahead: std::sync::Arc<std::sync::atomic::AtomicUsize>,
        released: std::sync::Arc<std::sync::atomic::AtomicUsize>,
        read_timeouts_set: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    }

    #[cfg(unix)]
    impl io::Read for Counting {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.inner.read(buf)
        }
    }

    #[cfg(unix)]
    impl io::Write for Counting {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.inner.write(buf)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[cfg(unix)]
    impl Transport for Counting {
        fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
            self.read_timeouts_set
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            self.inner.set_read_timeout(timeout)
        }
        fn read_if_ready(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            Transport::read_if_ready(&mut self.inner, buf)
        }
        fn set_write_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
            self.inner.set_write_timeout(timeout)
        }
        fn write_ahead(&mut self, bytes: &[u8]) -> io::Result<bool> {
            use std::io::Write;
            self.ahead.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            self.inner.write_all(bytes).map(|()| true)
        }
        fn release(&mut self) -> io::Result<()> {
            self.released
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok(())
        }
    }

    /// After the handshake, a receive whose bytes are already there leaves
    /// the handshake's timeout in place (one system call fewer); the first
    /// receive that has to wait sets the configured timeout before it
    /// waits, and times out by it.
    #[cfg(unix)]
    #[test]
    fn only_a_read_that_waits_sets_the_timeout_first() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

        let key = crate::handshake::AuthKey::new(b"timeouts").expect("key");
        let options = Options::new()
            .with_handshake_timeout(Some(Duration::from_secs(10)))
            .with_read_timeout(Some(Duration::from_millis(100)));
        let (a, b) = std::os::unix::net::UnixStream::pair().expect("pair");
        let (sent, was_sent) = std::sync::mpsc::channel();
        let (done, finished) = std::sync::mpsc::channel::<()>();
        let server_key = key.clone();
        let server_options = options.clone();
        let server = std::thread::spawn(move || -> Result<(), Error> {
            let mut connection =
                Connection::authenticate(a, Role::Listener, &server_key, &server_options)?;
            connection.send_bytes(b"already here")?;
            connection.flush()?;
            sent.send(()).expect("the test waits");
            // Nothing more until the client has timed out.
            let _ = finished.recv();
            Ok(())
        });
        let read_timeouts_set = Arc::new(AtomicUsize::new(0));
        let stream = Counting {
            inner: b,
            ahead: Arc::default(),
            released: Arc::default(),
            read_timeouts_set: Arc::clone(&read_timeouts_set),
        };
        let mut connection =
            Connection::authenticate(stream, Role::Client, &key, &options).expect("authenticated");
        was_sent.recv().expect("the listener sent");
        let before = read_timeouts_set.load(SeqCst);
        assert_eq!(connection.recv_bytes().expect("received"), b"already here");
        assert_eq!(
            read_timeouts_set.load(SeqCst),
            before,
            "bytes that were there needed no timeout"
        );
        let waited = connection.recv_bytes();
        assert!(
            matches!(waited, Err(Error::Timeout { .. })),
            "the configured 100 ms bound the wait: {waited:?}"
        );
        assert_eq!(read_timeouts_set.load(SeqCst), before + 1);
        done.send(()).expect("the listener waits");
        server.join().expect("listener thread").expect("listener");
    }

    /// A sealed client's last flight is written ahead; the first wait for
    /// the peer releases it, a send carries it instead, and so do a close
    /// and a drop (both end the stream). An unsealed handshake's last
    /// flight is written at once.
    #[cfg(unix)]
    #[test]
    fn the_last_flight_is_released_by_a_wait_and_carried_by_a_write() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

        #[derive(Clone, Copy, Debug)]
        enum First {
            Receive,
            Send,
            Close,
        }
        let key = crate::handshake::AuthKey::new(b"held flight").expect("key");
        for (sealing, first, ahead, released) in [
            (crate::Sealing::Prefer, First::Receive, 1, 1),
            (crate::Sealing::Require, First::Receive, 1, 1),
            (crate::Sealing::Prefer, First::Send, 1, 0),
            (crate::Sealing::Prefer, First::Close, 1, 0),
            (crate::Sealing::Off, First::Receive, 0, 0),
        ] {
            let case = format!("{sealing:?}, {first:?}");
            let options = Options::new().with_sealing(sealing);
            let (a, b) = std::os::unix::net::UnixStream::pair().expect("pair");
            let server_key = key.clone();
            let server_options = options.clone();
            let server = std::thread::spawn(move || -> Result<(), Error> {
                let mut connection =
                    Connection::authenticate(a, Role::Listener, &server_key, &server_options)?;
                // A client that closes at once may be gone before this.
                let _ = connection.send_bytes(b"hello");
                let _ = connection.flush();
                // Until the client is done, whatever it did first.
                while connection.recv_bytes().is_ok() {}
                Ok(())
            });
            let (counted_ahead, counted_released) =
                (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
            let stream = Counting {
                inner: b,
                ahead: Arc::clone(&counted_ahead),
                released: Arc::clone(&counted_released),
                read_timeouts_set: Arc::default(),
            };
            let handshake = Handshake::with_options(Role::Client, &key, [5; NONCE_LEN], &options)
                .expect("start");
            let mut client = Connection::new(stream, None, &options)
                .holding_last_flight()
                .run_authentication(handshake, None, None, no_screen)
                .expect(&case);
            match first {
                First::Receive => {
                    assert_eq!(client.recv_bytes().expect(&case), b"hello", "{case}");
                    client.send_bytes(b"bye").expect(&case);
                    client.close().expect(&case);
                }
                First::Send => {
                    client.send_bytes(b"bye").expect(&case);
                    client.flush().expect(&case);
                    assert_eq!(client.recv_bytes().expect(&case), b"hello", "{case}");
                    client.close().expect(&case);
                }
                First::Close => client.close().expect(&case),
            }
            server.join().expect("server thread").expect(&case);
            assert_eq!(counted_ahead.load(SeqCst), ahead, "written ahead: {case}");
            assert_eq!(counted_released.load(SeqCst), released, "released: {case}");
        }
    }

    /// Once sealed, a connection's frame decoder holds no buffer (records
    /// hold what arrives), and takes one again for a frame that spans
    /// records.
    #[cfg(unix)]
    #[test]
    fn a_sealed_connection_frees_its_frame_buffer_until_a_frame_spans_records() {
        let key = crate::handshake::AuthKey::new(b"freed buffer").expect("key");
        let options = Options::new();
        let (a, b) = std::os::unix::net::UnixStream::pair().expect("pair");
        let server_key = key.clone();
        let server_options = options.clone();
        let server = std::thread::spawn(move || -> Result<(usize, Vec<u8>, usize), Error> {
            let mut connection =
                Connection::authenticate(a, Role::Listener, &server_key, &server_options)?;
            let after_handshake = connection.decoder.memory();
            let long = connection.recv_bytes()?;
            Ok((after_handshake, long, connection.decoder.memory()))
        });
        let mut client = Connection::authenticate(b, Role::Client, &key, &options).expect("client");
        assert!(client.is_sealed());
        assert_eq!(
            client.decoder.memory(),
            0,
            "the client's decoder after the handshake"
        );
        let long: Vec<u8> = (0..200_000u32).map(|i| (i % 253) as u8).collect();
        client.send_bytes(&long).expect("send");
        client.flush().expect("flush");
        let (after_handshake, received, after_long) =
            server.join().expect("server thread").expect("server");
        assert_eq!(
            after_handshake, 0,
            "the listener's decoder after the handshake"
        );
        assert_eq!(received, long);
        assert!(
            after_long > 0,
            "a frame over several records goes through the decoder"
        );
    }

    /// What a receive loop gets from `sealed`: each payload, and whether it
    /// was taken in place; then the error that ended it, if any.
    fn drain(
        sealed: &mut Sealed,
        decoder: &mut FrameDecoder,
    ) -> (Vec<(Vec<u8>, bool)>, Option<RecordError>) {
        let mut received = Vec::new();
        loop {
            if let Some(frame) = decoder.decode().expect("frames") {
                received.push((decoder.payload(&frame).to_vec(), false));
                continue;
            }
            match sealed.take_frame_in_place(decoder) {
                Ok(Some(payload)) => {
                    received.push((sealed.opener.opened(payload).to_vec(), true));
                    continue;
                }
                Ok(None) => {}
                Err(error) => return (received, Some(error)),
            }
            match sealed.open_into(decoder) {
                Ok(true) => {}
                Ok(false) => return (received, None),
                Err(error) => return (received, Some(error)),
            }
        }
    }

    /// Frames whole in a record are taken where they lie; a frame cut by a
    /// record boundary, or too long for one record, goes through the
    /// decoder; the order holds across both, empty records are skipped,
    /// and a tampered record ends it after every frame before it.
    #[test]
    fn frames_are_taken_in_place_when_whole_and_decoded_when_cut() {
        let (ours, theirs) = ([1; 32], [2; 32]);
        let mut sender = Session::new(ours, theirs, RECORDS_PER_KEY);
        let receiver = Session::new(theirs, ours, RECORDS_PER_KEY);
        let payloads: Vec<Vec<u8>> = [10, 100, 5000, 7, 300 << 10, 3]
            .iter()
            .enumerate()
            .map(|(i, &len)| vec![i as u8 + 1; len])
            .collect();
        let mut plaintext = FrameEncoder::new();
        for payload in &payloads {
            plaintext.push(payload);
        }
        let plaintext = plaintext.pending();
        // Records end in the middle of the third frame, after the fourth,
        // then (an empty record), inside the long fifth frame, after it,
        // and after the sixth, which is alone in the last record.
        let third_cut = 8 + 10 + 100 + 4 + 2500;
        let fourth_end = 8 + 10 + 100 + 4 + 5000 + 4 + 7;
        let mut cuts = vec![0, third_cut, fourth_end, fourth_end];
        cuts.extend(
            (1..=5)
                .map(|i| fourth_end + i * 64_000)
                .filter(|&c| c < plaintext.len() - 7),
        );
        cuts.push(plaintext.len() - 7);
        cuts.push(plaintext.len());
        let mut wire = Vec::new();
        for pair in cuts.windows(2) {
            sender
                .sealer
                .seal(&plaintext[pair[0]..pair[1]], &mut wire)
                .expect("seal");
        }
        let mut tampered = Vec::new();
        sender
            .sealer
            .seal(b"\0\0\0\x01x", &mut tampered)
            .expect("seal");
        tampered[6] ^= 1;
        wire.extend_from_slice(&tampered);

        let mut sealed = Sealed::new(receiver, Vec::new());
        let mut decoder = FrameDecoder::new(1 << 20);
        let mut received = Vec::new();
        let mut rest = &wire[..];
        let error = loop {
            let n = sealed.opener.feed(rest);
            rest = &rest[n..];
            let (more, error) = drain(&mut sealed, &mut decoder);
            received.extend(more);
            if error.is_some() || rest.is_empty() {
                break error;
            }
        };
        let (got, in_place): (Vec<Vec<u8>>, Vec<bool>) = received.into_iter().unzip();
        assert_eq!(got, payloads);
        assert_eq!(in_place, [true, true, false, false, false, true]);
        assert!(
            matches!(error, Some(RecordError::Tampered { .. })),
            "{error:?}"
        );
    }

    #[test]
    fn debug_shows_no_payload_bytes() {
        #[cfg(unix)]
        {
            let (a, b) = std::os::unix::net::UnixStream::pair().expect("pair");
            let options = Options::new();
            let mut sender = Connection::new(a, None, &options);
            let mut receiver = Connection::new(b, None, &options);
            sender.send_bytes(b"SECRET-PAYLOAD").expect("queue");
            let queued = format!("{sender:?}");
            sender.flush().expect("flush");
            assert_eq!(receiver.recv_frame().expect("frame"), b"SECRET-PAYLOAD");
            let received = format!("{receiver:?}");
            for shown in [queued, received] {
                assert!(!shown.contains("SECRET"), "{shown}");
                assert!(!shown.contains("83, 69, 67"), "bytes as numbers: {shown}");
            }
        }
    }
}
