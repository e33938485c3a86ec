//! An authenticated connection: buffered framing over a socket.

use std::io::{self, Read, Write};
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::frame::{
    Header, LONG_HEADER_LEN, SHORT_HEADER_LEN, SHORT_HEADER_MAX, decode_header, next_frame,
};
use crate::handshake::{Handshake, MAX_HANDSHAKE_FRAME};
use crate::stream::Stream;
use crate::{Address, AuthError, Error, Options};

/// The read buffer starts small so that idle connections cost little…
const INITIAL_READ_BUFFER: usize = 4 << 10;
/// …and grows while the peer streams, up to this size.
const MAX_READ_BUFFER: usize = 256 << 10;
/// Buffered writes go out once this many bytes are pending; payloads this
/// large are written straight from the caller's memory instead of copied.
const FLUSH_THRESHOLD: usize = 64 << 10;
/// A large-frame buffer is kept for the next large frame (so a bulk stream
/// does not fault in fresh pages for every message) but released, if larger
/// than this, as soon as a small frame arrives.
const RETAINED_FRAME_BUFFER: usize = 1 << 20;
/// Large frames are read into memory that grows as bytes arrive, at least
/// this much at a time, so a peer cannot make us allocate what it never sends.
const MIN_FRAME_GROWTH: usize = 64 << 10;

/// Where the last received frame's payload lives.
#[derive(Clone, Copy, Debug)]
enum Received {
    /// In the read buffer, at this range.
    Buffered { start: usize, end: usize },
    /// In the separate large-frame buffer.
    Large,
}

/// An authenticated, bidirectional connection to a peer, the counterpart of
/// CPython's `multiprocessing.connection.Connection`.
///
/// Frames are CPython's: a length header and that many bytes. Raw bytes go
/// through [`send_bytes`](Connection::send_bytes) /
/// [`recv_bytes`](Connection::recv_bytes); typed values through
/// [`send`](Connection::send) / [`recv`](Connection::recv), encoded with
/// postcard.
///
/// **Buffering.** Sends are buffered so that streaming many small messages
/// costs few system calls. The buffer is written when it fills, when
/// [`flush`](Connection::flush) is called, before any receive that has to
/// wait for the peer (so request/response never deadlocks), on
/// [`close`](Connection::close), and, as a last resort, when the connection is
/// dropped (errors there cannot be reported: call `close` to see them).
#[derive(Debug)]
pub struct Connection {
    stream: Stream,
    read_buf: Box<[u8]>,
    read_start: usize,
    read_end: usize,
    large_frame: Vec<u8>,
    write_buf: Vec<u8>,
    max_frame: u64,
    read_timeout: Option<Duration>,
    write_timeout: Option<Duration>,
    peer: Address,
    peer_is_iris_listener: bool,
}

impl Connection {
    pub(crate) fn new(stream: Stream, peer: Address, options: &Options) -> Self {
        Connection {
            stream,
            read_buf: vec![0; INITIAL_READ_BUFFER].into_boxed_slice(),
            read_start: 0,
            read_end: 0,
            large_frame: Vec::new(),
            write_buf: Vec::new(),
            max_frame: options.get_max_frame(),
            read_timeout: options.get_read_timeout(),
            write_timeout: options.get_write_timeout(),
            peer,
            peer_is_iris_listener: false,
        }
    }

    /// Writes `bytes` at once, past the buffer.
    pub(crate) fn write_now(&mut self, bytes: &[u8]) -> Result<(), Error> {
        self.stream.write_all(bytes).map_err(Error::Io)
    }

    /// Runs `handshake` to completion over this connection, within `timeout`.
    pub(crate) fn authenticate(
        mut self,
        mut handshake: Handshake,
        timeout: Option<Duration>,
    ) -> Result<Connection, Error> {
        self.stream
            .set_read_timeout(timeout)
            .and_then(|()| self.stream.set_write_timeout(timeout))
            .map_err(Error::Io)?;
        loop {
            self.write_buf.extend(handshake.take_outgoing());
            if handshake.is_complete() {
                break;
            }
            // Pending output is flushed only when this read has to wait: a
            // pipelining client's challenge is often already here, and then
            // the welcome and our answer leave in one write.
            let location = match self.read_frame(MAX_HANDSHAKE_FRAME, "the peer's handshake") {
                Ok(location) => location,
                Err(Error::Closed | Error::Truncated { .. }) => {
                    return Err(AuthError::PeerClosed.into());
                }
                // A peer that drops the connection with our bytes unread
                // resets it: the same story as a clean close.
                Err(Error::Io(e))
                    if matches!(
                        e.kind(),
                        io::ErrorKind::ConnectionReset
                            | io::ErrorKind::ConnectionAborted
                            | io::ErrorKind::BrokenPipe
                    ) =>
                {
                    return Err(AuthError::PeerClosed.into());
                }
                Err(Error::FrameTooLarge { len, .. }) => {
                    return Err(AuthError::Protocol(format!(
                        "handshake frame of {len} bytes, over the limit of {MAX_HANDSHAKE_FRAME}"
                    ))
                    .into());
                }
                Err(other) => return Err(other),
            };
            if let Err(reason) = handshake.receive(self.payload(location)) {
                // Tell the peer why it is being dropped, if it still listens.
                self.write_buf.extend(handshake.take_outgoing());
                let _ = self.flush();
                return Err(reason.into());
            }
        }
        self.peer_is_iris_listener = handshake.peer_is_iris_listener();
        // The last verdict goes out now: a CPython listener's accept() waits
        // for it before the application can do anything.
        self.flush()?;
        self.stream
            .set_read_timeout(self.read_timeout)
            .and_then(|()| self.stream.set_write_timeout(self.write_timeout))
            .map_err(Error::Io)?;
        Ok(self)
    }

    /// The peer's address (for a Unix socket, usually an empty path).
    pub fn peer_addr(&self) -> &Address {
        &self.peer
    }

    /// Whether the peer is an iris listener, known from the mark on its
    /// challenge: false for a CPython listener, which understands only
    /// pickles and answers nothing, and always false on the listener side.
    /// See [`Handshake::peer_is_iris_listener`](crate::handshake::Handshake::peer_is_iris_listener).
    pub fn peer_is_iris_listener(&self) -> bool {
        self.peer_is_iris_listener
    }

    /// Sets how long a receive may wait; `None` waits forever.
    pub fn set_read_timeout(&mut self, timeout: Option<Duration>) -> Result<(), Error> {
        let timeout = timeout.filter(|t| !t.is_zero());
        self.stream.set_read_timeout(timeout).map_err(Error::Io)?;
        self.read_timeout = timeout;
        Ok(())
    }

    /// Sets the largest frame accepted from now on.
    pub fn set_max_frame(&mut self, bytes: u64) {
        self.max_frame = bytes;
    }

    /// Queues `payload` as one frame, like CPython's `send_bytes`.
    pub fn send_bytes(&mut self, payload: &[u8]) -> Result<(), Error> {
        self.write_buf
            .extend_from_slice(Header::encode(payload.len() as u64).as_bytes());
        if payload.len() >= FLUSH_THRESHOLD {
            // Large payloads go straight from the caller's memory.
            self.flush()?;
            return self
                .stream
                .write_all(payload)
                .map_err(|e| Error::from_io(e, "the peer to read what we sent"));
        }
        self.write_buf.extend_from_slice(payload);
        self.flush_if_full()
    }

    /// Queues `value`, encoded with postcard, as one frame.
    pub fn send<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        let start = self.write_buf.len();
        // A placeholder header, patched once the length is known.
        self.write_buf.extend_from_slice(&[0; 4]);
        let flavor = AppendToVec(&mut self.write_buf);
        if let Err(source) = postcard::serialize_with_flavor(value, flavor) {
            self.write_buf.truncate(start);
            return Err(Error::Encode(source));
        }
        let len = (self.write_buf.len() - start - 4) as u64;
        let header = Header::encode(len);
        if len <= SHORT_HEADER_MAX {
            self.write_buf[start..start + 4].copy_from_slice(header.as_bytes());
        } else {
            self.write_buf
                .splice(start..start + 4, header.as_bytes().iter().copied());
        }
        self.flush_if_full()
    }

    /// Writes everything queued.
    pub fn flush(&mut self) -> Result<(), Error> {
        if self.write_buf.is_empty() {
            return Ok(());
        }
        let result = self.stream.write_all(&self.write_buf);
        self.write_buf.clear();
        result.map_err(|e| Error::from_io(e, "the peer to read what we sent"))
    }

    fn flush_if_full(&mut self) -> Result<(), Error> {
        if self.write_buf.len() >= FLUSH_THRESHOLD {
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
        let location = self.read_frame(self.max_frame, "a message")?;
        Ok(self.payload(location))
    }

    /// Receives one frame as an owned vector, like CPython's `recv_bytes`.
    pub fn recv_bytes(&mut self) -> Result<Vec<u8>, Error> {
        match self.read_frame(self.max_frame, "a message")? {
            Received::Buffered { start, end } => Ok(self.read_buf[start..end].to_vec()),
            Received::Large => Ok(std::mem::take(&mut self.large_frame)),
        }
    }

    /// Receives one frame and decodes it with postcard. The whole frame must
    /// be one value: trailing bytes are an error.
    pub fn recv<T: DeserializeOwned>(&mut self) -> Result<T, Error> {
        let frame = self.recv_frame()?;
        let (value, rest) = postcard::take_from_bytes(frame).map_err(Error::Decode)?;
        if !rest.is_empty() {
            return Err(Error::Decode(postcard::Error::DeserializeBadEncoding));
        }
        Ok(value)
    }

    /// Whether a whole frame is already buffered, so that the next receive
    /// returns without touching the socket. A server can use this to do its
    /// idle-time work (flushing output, say) only when it is about to wait.
    pub fn has_buffered_frame(&self) -> bool {
        let available = &self.read_buf[self.read_start..self.read_end];
        // A malformed header counts too: the next receive reports it at once.
        !matches!(next_frame(available, self.max_frame), Ok(None))
    }

    /// Whether a frame can be received without waiting longer than
    /// `timeout` (`None` waits forever), like CPython's `poll`. Also true
    /// when the peer closed, so that the next receive reports it.
    pub fn poll(&mut self, timeout: Option<Duration>) -> Result<bool, Error> {
        if self.read_start < self.read_end {
            return Ok(true);
        }
        self.flush()?;
        let result = match timeout {
            Some(t) if t.is_zero() => {
                self.stream.set_nonblocking(true).map_err(Error::Io)?;
                let result = self.fill();
                self.stream.set_nonblocking(false).map_err(Error::Io)?;
                result
            }
            _ => {
                self.stream.set_read_timeout(timeout).map_err(Error::Io)?;
                let result = self.fill();
                self.stream
                    .set_read_timeout(self.read_timeout)
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
            Err(e) => Err(Error::Io(e)),
        }
    }

    /// Flushes and closes the connection, reporting any error.
    pub fn close(mut self) -> Result<(), Error> {
        self.flush()?;
        match self.stream.shutdown() {
            Err(e) if e.kind() != io::ErrorKind::NotConnected => Err(Error::Io(e)),
            _ => Ok(()),
        }
    }

    fn payload(&self, location: Received) -> &[u8] {
        match location {
            Received::Buffered { start, end } => &self.read_buf[start..end],
            Received::Large => &self.large_frame,
        }
    }

    /// Reads the next frame, at most `max` payload bytes.
    fn read_frame(&mut self, max: u64, waiting_for: &'static str) -> Result<Received, Error> {
        loop {
            let available = &self.read_buf[self.read_start..self.read_end];
            let expected = match decode_header(available, max)? {
                Some(header) => {
                    let total = header.header_len as u64 + header.payload_len;
                    if total <= available.len() as u64 {
                        let start = self.read_start + header.header_len;
                        // `total` fits in the buffer, hence in usize.
                        self.read_start += total as usize;
                        if self.large_frame.capacity() > RETAINED_FRAME_BUFFER {
                            self.large_frame = Vec::new();
                        }
                        return Ok(Received::Buffered {
                            start,
                            end: self.read_start,
                        });
                    }
                    if total > MAX_READ_BUFFER as u64 {
                        return self.read_large_frame(
                            header.header_len,
                            header.payload_len,
                            waiting_for,
                        );
                    }
                    total
                }
                // Enough for a short header, or for the long one once the
                // short one turned out to be its escape.
                None if available.len() < SHORT_HEADER_LEN => SHORT_HEADER_LEN as u64,
                None => LONG_HEADER_LEN as u64,
            };
            let received = (self.read_end - self.read_start) as u64;
            // The frame fits the largest buffer: make room and read more.
            if self
                .fill_for(expected as usize)
                .map_err(|e| Error::from_io(e, waiting_for))?
                == 0
            {
                return Err(if received == 0 {
                    Error::Closed
                } else {
                    Error::Truncated { expected, received }
                });
            }
        }
    }

    /// Reads a frame too large for the read buffer into its own vector,
    /// growing it only as bytes arrive.
    fn read_large_frame(
        &mut self,
        header_len: usize,
        payload_len: u64,
        waiting_for: &'static str,
    ) -> Result<Received, Error> {
        let Ok(len) = usize::try_from(payload_len) else {
            return Err(Error::FrameTooLarge {
                len: payload_len,
                max: usize::MAX as u64,
            });
        };
        let buffered = &self.read_buf[self.read_start + header_len..self.read_end];
        let frame = &mut self.large_frame;
        frame.clear();
        frame.extend_from_slice(buffered);
        self.read_start = 0;
        self.read_end = 0;
        let mut filled = frame.len();
        while filled < len {
            // Room for at most what has arrived so far (at least 64 KiB), so
            // memory grows only as fast as the peer really sends.
            let want = (len - filled).min(filled.max(MIN_FRAME_GROWTH));
            frame.reserve_exact(want);
            match self.stream.read_appending(frame, want) {
                Ok(0) => {
                    return Err(Error::Truncated {
                        expected: (header_len + len) as u64,
                        received: (header_len + filled) as u64,
                    });
                }
                Ok(n) => filled += n,
                Err(e) => return Err(Error::from_io(e, waiting_for)),
            }
        }
        Ok(Received::Large)
    }

    /// Makes room for a frame of `frame_len` bytes and reads what the socket
    /// has. Returns 0 at end of stream.
    fn fill_for(&mut self, frame_len: usize) -> io::Result<usize> {
        if self.read_start == self.read_end {
            self.read_start = 0;
            self.read_end = 0;
        }
        if self.read_start + frame_len > self.read_buf.len() {
            let wanted = if frame_len > self.read_buf.len() || self.read_end == self.read_buf.len()
            {
                // Grow while the peer streams full buffers: bigger reads, fewer calls.
                frame_len
                    .max(self.read_buf.len() * 2)
                    .clamp(INITIAL_READ_BUFFER, MAX_READ_BUFFER)
            } else {
                self.read_buf.len()
            };
            if wanted > self.read_buf.len() {
                let mut grown = vec![0; wanted].into_boxed_slice();
                grown[..self.read_end - self.read_start]
                    .copy_from_slice(&self.read_buf[self.read_start..self.read_end]);
                self.read_buf = grown;
            } else {
                // Full size already: move the partial frame to the front.
                self.read_buf.copy_within(self.read_start..self.read_end, 0);
            }
            self.read_end -= self.read_start;
            self.read_start = 0;
        }
        self.fill()
    }

    /// Reads once into the free end of the buffer, flushing first: a peer
    /// may be waiting for what we queued before it answers.
    fn fill(&mut self) -> io::Result<usize> {
        if !self.write_buf.is_empty() {
            let result = self.stream.write_all(&self.write_buf);
            self.write_buf.clear();
            result?;
        }
        if self.read_start == self.read_end {
            self.read_start = 0;
            self.read_end = 0;
        }
        loop {
            match self.stream.read(&mut self.read_buf[self.read_end..]) {
                Ok(n) => {
                    self.read_end += n;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        // Last resort, so that queued messages are not silently lost; `close`
        // reports errors that cannot be reported here.
        let _ = self.flush();
    }
}

/// A postcard output flavor that appends to an existing vector, so a message
/// is encoded in place behind the ones already queued.
struct AppendToVec<'a>(&'a mut Vec<u8>);

impl postcard::ser_flavors::Flavor for AppendToVec<'_> {
    type Output = ();

    fn try_push(&mut self, data: u8) -> postcard::Result<()> {
        self.0.push(data);
        Ok(())
    }

    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        self.0.extend_from_slice(data);
        Ok(())
    }

    fn finalize(self) -> postcard::Result<()> {
        Ok(())
    }
}
