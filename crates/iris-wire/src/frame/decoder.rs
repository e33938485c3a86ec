//! The frame decoder: bytes in, in any split; whole frames out.

use std::fmt;

use super::{FrameError, Header, LONG_HEADER_LEN, SHORT_HEADER_LEN, decode_header, next_frame};

/// The buffer for ordinary frames starts small so that idle connections
/// cost little (an idle client's frames, a `Ping`, are a few bytes; 4 KiB
/// here cost 3 KiB more per idle connection)…
const INITIAL_BUFFER: usize = 1 << 10;
/// …and grows while the peer streams, up to this size. Frames that do not
/// fit it are read into a buffer of their own.
const MAX_BUFFER: usize = 256 << 10;
/// A long frame's buffer is kept for the next long frame (so a bulk stream
/// does not fault in fresh pages for every message) but released, if larger
/// than this, as soon as an ordinary frame arrives.
const RETAINED_FRAME_BUFFER: usize = 1 << 20;
/// A long frame's buffer grows as its bytes arrive, by as much as has
/// arrived so far (so reads get larger), at least this much…
const MIN_GROWTH: usize = 64 << 10;
/// …and at most this much at a time.
const MAX_GROWTH: usize = 1 << 20;

/// The most memory a [`FrameDecoder`] holds beyond the bytes it has been
/// given: the buffer for ordinary frames plus one growth step of a long
/// frame's buffer. Whatever a peer announces, the decoder never holds more
/// than the bytes it received plus this (tested with random inputs).
pub const DECODER_MEMORY_OVERHEAD: usize = MAX_BUFFER + MAX_GROWTH;

/// A decoded frame: a ticket for its payload, which stays in the decoder
/// (no copy) until the decoder's next [`decode`](FrameDecoder::decode),
/// [`buffer`](FrameDecoder::buffer) or [`advance`](FrameDecoder::advance).
///
/// A ticket rather than a slice, so that an adapter can loop "decode, else
/// read more" without the payload's borrow spanning the loop.
#[derive(Debug)]
#[must_use = "a decoded frame's payload is only in the decoder until its next call"]
pub struct Frame {
    location: Location,
    generation: u64,
}

#[derive(Debug, Clone, Copy)]
enum Location {
    /// In the ordinary buffer, at this range.
    Buffered { start: usize, end: usize },
    /// In the long-frame buffer, this long.
    Long { len: usize },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Frames are read into the ordinary buffer.
    Ordinary,
    /// A frame too long for the ordinary buffer is being read into its own.
    Long { header_len: usize, len: usize },
}

/// Splits a byte stream into frames, with bounded memory.
///
/// The receive policy lives here, so every adapter (blocking, tokio, your
/// own) applies the same one:
///
/// - a header announcing more than [`max_frame`](FrameDecoder::max_frame)
///   bytes is refused ([`FrameError::TooLarge`]) before anything is set
///   aside for its payload;
/// - a long frame's buffer grows only as its bytes arrive, so a peer cannot
///   make the decoder hold memory it has not sent (see
///   [`DECODER_MEMORY_OVERHEAD`]);
/// - [`end_of_stream`](FrameDecoder::end_of_stream) tells a clean end
///   between frames from a truncated frame;
/// - buffers are reused across frames.
///
/// The loop that drives it:
///
/// ```no_run
/// # use std::io::Read;
/// # use iris_wire::frame::{FrameDecoder, FrameError};
/// # fn run(stream: &mut impl Read) -> Result<(), Box<dyn std::error::Error>> {
/// let mut decoder = FrameDecoder::new(64 << 20);
/// loop {
///     while let Some(frame) = decoder.decode()? {
///         println!("{} bytes", decoder.payload(&frame).len());
///     }
///     let n = stream.read(decoder.buffer())?;
///     if n == 0 {
///         return Ok(decoder.end_of_stream()?);
///     }
///     decoder.advance(n);
/// }
/// # }
/// ```
pub struct FrameDecoder {
    /// Ordinary frames; bytes `start..end` are received and not decoded.
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    /// How many bytes from `start` the next step needs: a header, or a
    /// whole frame whose header is known.
    want: usize,
    /// A long frame's payload: `long_filled` bytes received. Its length is
    /// how much memory is initialised, which may exceed the frame when an
    /// earlier, longer frame's buffer is reused.
    long: Vec<u8>,
    long_filled: usize,
    state: State,
    max_frame: u64,
    /// Counts the calls that may move bytes, to catch a stale [`Frame`].
    generation: u64,
}

impl FrameDecoder {
    /// A decoder that refuses frames longer than `max_frame` bytes.
    pub fn new(max_frame: u64) -> Self {
        FrameDecoder {
            buf: vec![0; INITIAL_BUFFER].into_boxed_slice(),
            start: 0,
            end: 0,
            want: SHORT_HEADER_LEN,
            long: Vec::new(),
            long_filled: 0,
            state: State::Ordinary,
            max_frame,
            generation: 0,
        }
    }

    /// The largest payload accepted.
    pub fn max_frame(&self) -> u64 {
        self.max_frame
    }

    /// Changes the largest payload accepted, from the next header on.
    pub fn set_max_frame(&mut self, max_frame: u64) {
        self.max_frame = max_frame;
    }

    /// The next whole frame, if its bytes are all here; `Ok(None)` if more
    /// bytes are needed. Call it until it returns `None` before reading
    /// more.
    ///
    /// After an error the stream is out of step and must be abandoned.
    #[inline]
    pub fn decode(&mut self) -> Result<Option<Frame>, FrameError> {
        self.generation += 1;
        if let State::Long { len, .. } = self.state {
            if self.long_filled < len {
                return Ok(None);
            }
            self.state = State::Ordinary;
            self.want = SHORT_HEADER_LEN;
            return Ok(Some(self.ticket(Location::Long { len })));
        }
        let available = &self.buf[self.start..self.end];
        let Some(header) = decode_header(available, self.max_frame)? else {
            self.want = if available.len() < SHORT_HEADER_LEN {
                SHORT_HEADER_LEN
            } else {
                LONG_HEADER_LEN
            };
            return Ok(None);
        };
        let total = header.header_len as u64 + header.payload_len;
        if total <= available.len() as u64 {
            let start = self.start + header.header_len;
            // `total` fits in the buffer, hence in usize.
            self.start += total as usize;
            self.want = SHORT_HEADER_LEN;
            if self.long.capacity() > RETAINED_FRAME_BUFFER {
                self.long = Vec::new();
            }
            return Ok(Some(self.ticket(Location::Buffered {
                start,
                end: self.start,
            })));
        }
        if total <= MAX_BUFFER as u64 {
            // `total` is small, so the narrowing is lossless.
            self.want = total as usize;
            return Ok(None);
        }
        let Ok(len) = usize::try_from(header.payload_len) else {
            return Err(FrameError::TooLarge {
                len: header.payload_len,
                max: usize::MAX as u64,
            });
        };
        // Too long for the ordinary buffer: what has arrived of its payload
        // moves to the long-frame buffer, which grows as the rest arrives.
        let arrived = &self.buf[self.start + header.header_len..self.end];
        if self.long.len() < arrived.len() {
            self.long.resize(arrived.len(), 0);
        }
        self.long[..arrived.len()].copy_from_slice(arrived);
        self.long_filled = arrived.len();
        self.start = 0;
        self.end = 0;
        self.state = State::Long {
            header_len: header.header_len,
            len,
        };
        Ok(None)
    }

    /// The payload of `frame`.
    ///
    /// # Panics
    ///
    /// If the decoder was called since `frame` was decoded (the payload may
    /// have moved): a bug in the caller, not something a peer can cause.
    #[inline]
    pub fn payload(&self, frame: &Frame) -> &[u8] {
        if frame.generation != self.generation {
            stale_frame();
        }
        match frame.location {
            Location::Buffered { start, end } => &self.buf[start..end],
            Location::Long { len } => &self.long[..len],
        }
    }

    /// The payload of `frame`, owned. A long frame's buffer is handed over
    /// rather than copied.
    ///
    /// # Panics
    ///
    /// As [`payload`](FrameDecoder::payload).
    pub fn take_payload(&mut self, frame: Frame) -> Vec<u8> {
        match frame.location {
            Location::Buffered { .. } => self.payload(&frame).to_vec(),
            Location::Long { len } => {
                if frame.generation != self.generation {
                    stale_frame();
                }
                self.generation += 1;
                self.long_filled = 0;
                let mut payload = std::mem::take(&mut self.long);
                payload.truncate(len);
                payload
            }
        }
    }

    /// Whether a whole frame (or a header that is an error) is buffered, so
    /// that [`decode`](FrameDecoder::decode) needs no more bytes. A server
    /// can use this to do its idle-time work only when about to wait.
    #[inline]
    pub fn has_frame(&self) -> bool {
        match self.state {
            State::Long { len, .. } => self.long_filled >= len,
            State::Ordinary => !matches!(
                next_frame(&self.buf[self.start..self.end], self.max_frame),
                Ok(None)
            ),
        }
    }

    /// Whether a long frame (one too large for the ordinary buffer) is
    /// arriving.
    pub fn in_long_frame(&self) -> bool {
        matches!(self.state, State::Long { .. })
    }

    /// Whether any received byte is not yet part of a decoded frame.
    #[inline]
    pub fn has_buffered_bytes(&self) -> bool {
        match self.state {
            State::Long { .. } => true,
            State::Ordinary => self.start < self.end,
        }
    }

    /// Where the next bytes from the stream go: read into this slice, then
    /// call [`advance`](FrameDecoder::advance) with how many came. Never
    /// empty after [`decode`](FrameDecoder::decode) returned `None`, and
    /// sized to what the frame being read still needs (a long frame's
    /// buffer is grown here, as its bytes arrive).
    pub fn buffer(&mut self) -> &mut [u8] {
        self.generation += 1;
        match self.state {
            State::Long { len, .. } => {
                if self.long.len() <= self.long_filled {
                    let step = self.long_filled.clamp(MIN_GROWTH, MAX_GROWTH);
                    let grown = (self.long_filled + step).min(len);
                    // Exact, so that capacity follows the bytes received.
                    self.long.reserve_exact(grown - self.long.len());
                    self.long.resize(grown, 0);
                }
                let end = self.long.len().min(len);
                &mut self.long[self.long_filled..end]
            }
            State::Ordinary => {
                if self.start == self.end {
                    self.start = 0;
                    self.end = 0;
                }
                if self.start + self.want > self.buf.len() || self.end == self.buf.len() {
                    self.make_room();
                }
                &mut self.buf[self.end..]
            }
        }
    }

    /// Records that `n` bytes were written into [`buffer`](FrameDecoder::buffer).
    pub fn advance(&mut self, n: usize) {
        self.generation += 1;
        match self.state {
            State::Long { .. } => {
                debug_assert!(self.long_filled + n <= self.long.len());
                self.long_filled = (self.long_filled + n).min(self.long.len());
            }
            State::Ordinary => {
                debug_assert!(self.end + n <= self.buf.len());
                self.end = (self.end + n).min(self.buf.len());
            }
        }
    }

    /// Copies `bytes` in, as if read from the stream; for callers that
    /// already hold the bytes. Decode after each call: this takes what fits
    /// and returns how many bytes it took.
    pub fn feed(&mut self, bytes: &[u8]) -> usize {
        let buffer = self.buffer();
        let n = buffer.len().min(bytes.len());
        buffer[..n].copy_from_slice(&bytes[..n]);
        self.advance(n);
        n
    }

    /// Checks the end of the stream: `Ok` if it ended between frames, or
    /// [`FrameError::Truncated`] if it ended inside one.
    pub fn end_of_stream(&self) -> Result<(), FrameError> {
        let (expected, received) = match self.state {
            State::Long { header_len, len } => (header_len + len, header_len + self.long_filled),
            State::Ordinary if self.start == self.end => return Ok(()),
            State::Ordinary => (self.want, self.end - self.start),
        };
        Err(FrameError::Truncated {
            expected: expected as u64,
            received: received as u64,
        })
    }

    /// Takes the bytes received but not yet returned as frames (a partial
    /// frame, with its header), leaving the decoder empty.
    pub fn take_buffered(&mut self) -> Vec<u8> {
        self.generation += 1;
        let buffered = match self.state {
            State::Long { len, .. } => {
                let mut bytes = Header::encode(len as u64).as_bytes().to_vec();
                bytes.extend_from_slice(&self.long[..self.long_filled]);
                bytes
            }
            State::Ordinary => self.buf[self.start..self.end].to_vec(),
        };
        self.state = State::Ordinary;
        self.start = 0;
        self.end = 0;
        self.long_filled = 0;
        self.want = SHORT_HEADER_LEN;
        buffered
    }

    /// Frees the memory held for bytes to come, if no received byte is
    /// waiting in it; the next [`buffer`](FrameDecoder::buffer) allocates
    /// it again. For a decoder that may go unused for a long time, such as
    /// a sealed session's, whose frames are mostly taken in place from the
    /// opened records.
    pub fn release_memory(&mut self) {
        if !self.has_buffered_bytes() {
            self.generation += 1;
            self.buf = Box::default();
            self.start = 0;
            self.end = 0;
            self.long = Vec::new();
        }
    }

    /// The memory the decoder holds for received bytes, in bytes.
    pub fn memory(&self) -> usize {
        self.buf.len() + self.long.capacity()
    }

    fn ticket(&self, location: Location) -> Frame {
        Frame {
            location,
            generation: self.generation,
        }
    }

    /// Makes room for `want` bytes from `start`: grows the buffer while the
    /// peer streams full buffers (bigger reads, fewer calls), else moves the
    /// partial frame to the front.
    fn make_room(&mut self) {
        let wanted = if self.want > self.buf.len() || self.end == self.buf.len() {
            self.want
                .max(self.buf.len() * 2)
                .clamp(INITIAL_BUFFER, MAX_BUFFER)
        } else {
            self.buf.len()
        };
        let pending = self.start..self.end;
        if wanted > self.buf.len() {
            let mut grown = vec![0; wanted].into_boxed_slice();
            grown[..pending.len()].copy_from_slice(&self.buf[pending.clone()]);
            self.buf = grown;
        } else {
            self.buf.copy_within(pending.clone(), 0);
        }
        self.end = pending.len();
        self.start = 0;
    }
}

/// Out of line and cold: the check stays a compare and a branch, so that
/// the receive path still inlines into its callers (a formatted panic in
/// `payload` cost the listener's stream a quarter of its rate).
#[cold]
#[inline(never)]
fn stale_frame() -> ! {
    panic!("a Frame is valid only until the decoder's next call")
}

/// Sizes only: the buffers hold a peer's payloads.
impl fmt::Debug for FrameDecoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FrameDecoder")
            .field("buffered", &(self.end - self.start))
            .field("buffer_len", &self.buf.len())
            .field("long_frame", &self.state)
            .field("long_filled", &self.long_filled)
            .field("max_frame", &self.max_frame)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(payloads: &[&[u8]]) -> Vec<u8> {
        let mut wire = Vec::new();
        for payload in payloads {
            wire.extend_from_slice(Header::encode(payload.len() as u64).as_bytes());
            wire.extend_from_slice(payload);
        }
        wire
    }

    /// Feeds `wire` in pieces of `split` bytes; returns the frames and how
    /// the stream ended.
    fn decode_all(
        decoder: &mut FrameDecoder,
        wire: &[u8],
        split: usize,
    ) -> (Vec<Vec<u8>>, Result<(), FrameError>) {
        let mut frames = Vec::new();
        let mut rest = wire;
        loop {
            loop {
                match decoder.decode() {
                    Ok(Some(frame)) => frames.push(decoder.payload(&frame).to_vec()),
                    Ok(None) => break,
                    Err(e) => return (frames, Err(e)),
                }
            }
            if rest.is_empty() {
                return (frames, decoder.end_of_stream());
            }
            let piece = &rest[..split.min(rest.len())];
            let taken = decoder.feed(piece);
            assert!(taken > 0, "the decoder took nothing");
            rest = &rest[taken..];
        }
    }

    #[test]
    fn frames_come_out_whole_whatever_the_split() {
        let long = vec![7u8; 600 << 10];
        let payloads: [&[u8]; 5] = [b"a", b"", &long, b"after the long one", &[1; 300]];
        let wire = framed(&payloads);
        for split in [1, 3, 4, 5, 4096, 1 << 20] {
            let mut decoder = FrameDecoder::new(1 << 20);
            let (frames, end) = decode_all(&mut decoder, &wire, split);
            assert_eq!(end, Ok(()), "split {split}");
            assert_eq!(frames.len(), payloads.len(), "split {split}");
            for (frame, payload) in frames.iter().zip(payloads) {
                assert_eq!(frame, payload, "split {split}");
            }
        }
    }

    #[test]
    fn a_header_over_the_limit_is_refused_before_any_allocation() {
        let mut decoder = FrameDecoder::new(64 << 20);
        let before = decoder.memory();
        let (frames, end) = decode_all(&mut decoder, Header::encode(1 << 63).as_bytes(), 1);
        assert!(frames.is_empty());
        assert_eq!(
            end,
            Err(FrameError::TooLarge {
                len: 1 << 63,
                max: 64 << 20
            })
        );
        assert_eq!(decoder.memory(), before, "memory was set aside");
    }

    #[test]
    fn a_long_frame_announced_but_not_sent_costs_only_what_arrived() {
        let mut decoder = FrameDecoder::new(u64::MAX);
        let mut wire = Header::encode(60 << 20).as_bytes().to_vec();
        wire.extend_from_slice(&[0; 300 << 10]);
        let (frames, end) = decode_all(&mut decoder, &wire, 64 << 10);
        assert!(frames.is_empty());
        assert_eq!(
            end,
            Err(FrameError::Truncated {
                expected: (60 << 20) + 4,
                received: (300 << 10) + 4,
            })
        );
        assert!(
            decoder.memory() <= wire.len() + DECODER_MEMORY_OVERHEAD,
            "{} bytes held for {} received",
            decoder.memory(),
            wire.len()
        );
    }

    #[test]
    fn truncation_is_told_apart_from_a_clean_end() {
        let wire = framed(&[b"abc"]);
        for cut in 1..wire.len() {
            let mut decoder = FrameDecoder::new(16);
            let (frames, end) = decode_all(&mut decoder, &wire[..cut], 1);
            assert!(frames.is_empty());
            let expected = if cut < 4 { 4 } else { 7 };
            assert_eq!(
                end,
                Err(FrameError::Truncated {
                    expected,
                    received: cut as u64
                }),
                "cut at {cut}"
            );
        }
        let mut decoder = FrameDecoder::new(16);
        assert_eq!(decode_all(&mut decoder, &[], 1).1, Ok(()));
    }

    #[test]
    fn a_long_frame_buffer_is_reused_then_released_after_an_ordinary_frame() {
        let long = vec![1u8; 2 << 20];
        let mut decoder = FrameDecoder::new(u64::MAX);
        let (frames, _) = decode_all(&mut decoder, &framed(&[&long, &long]), 1 << 20);
        assert_eq!(frames.len(), 2);
        assert!(decoder.memory() >= 2 << 20, "the buffer was not kept");
        let (frames, _) = decode_all(&mut decoder, &framed(&[b"small"]), 1 << 20);
        assert_eq!(frames, [b"small".to_vec()]);
        assert!(decoder.memory() <= MAX_BUFFER, "{}", decoder.memory());
    }

    #[test]
    fn released_memory_comes_back_when_bytes_do() {
        let mut decoder = FrameDecoder::new(1 << 20);
        let half = framed(&[b"first"]);
        decoder.feed(&half[..3]);
        decoder.release_memory();
        assert_eq!(decoder.memory(), INITIAL_BUFFER, "a partial header is kept");
        decoder.feed(&half[3..]);
        let frame = decoder.decode().expect("valid").expect("whole");
        assert_eq!(decoder.payload(&frame), b"first");
        assert!(decoder.decode().expect("valid").is_none());

        decoder.release_memory();
        assert_eq!(decoder.memory(), 0);
        assert_eq!(decoder.end_of_stream(), Ok(()));
        let bytes = framed(&[b"second", &[7; 10_000]]);
        let (payloads, end) = decode_all(&mut decoder, &bytes, 1000);
        assert_eq!(end, Ok(()));
        assert_eq!(payloads, [b"second".to_vec(), vec![7; 10_000]]);
        assert!(decoder.memory() >= INITIAL_BUFFER);
    }

    #[test]
    fn take_payload_hands_over_a_long_frame() {
        let long = vec![9u8; 1 << 20];
        let mut decoder = FrameDecoder::new(u64::MAX);
        let mut wire = framed(&[&long]);
        let mut taken = None;
        while taken.is_none() {
            match decoder.decode().expect("valid") {
                Some(frame) => taken = Some(decoder.take_payload(frame)),
                None => {
                    let n = decoder.feed(&wire);
                    wire.drain(..n);
                }
            }
        }
        assert_eq!(taken, Some(long));
    }

    #[test]
    #[should_panic(expected = "valid only until")]
    fn a_stale_frame_is_caught() {
        let mut decoder = FrameDecoder::new(16);
        decoder.feed(&framed(&[b"x", b"y"]));
        let first = decoder.decode().expect("valid").expect("a frame");
        let _second = decoder.decode();
        let _ = decoder.payload(&first);
    }

    #[test]
    fn has_frame_looks_without_consuming() {
        let mut decoder = FrameDecoder::new(16);
        assert!(!decoder.has_frame());
        decoder.feed(&framed(&[b"xy"])[..3]);
        assert!(!decoder.has_frame());
        decoder.feed(b"\x02xy");
        assert!(decoder.has_frame());
        let frame = decoder.decode().expect("valid").expect("a frame");
        assert_eq!(decoder.payload(&frame), b"xy");
        // A bad header counts: the next decode reports it at once.
        decoder.feed(&(-5i32).to_be_bytes());
        assert!(decoder.has_frame());
    }
}
