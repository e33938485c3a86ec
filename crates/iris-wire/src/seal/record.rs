//! Records (docs/PROTOCOL.md §4.3): each seals a piece of one direction's
//! stream of frames with AES-256-GCM, its length in the associated data and
//! its nonce from a per-direction counter. Sans I/O: the adapters move the
//! bytes.

use std::fmt;
use std::ops::Range;

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};

use super::schedule::{IV_LEN, Secret, key_and_iv, next_secret};
use crate::frame::next_frame;
use crate::handshake::FAILURE;

/// The most plaintext one record holds.
pub const MAX_RECORD_PLAINTEXT: usize = 1 << 16;
/// Length of a record's header, the big-endian length of what follows.
pub const RECORD_HEADER_LEN: usize = 4;
/// Length of the AES-GCM tag that ends every record.
pub const TAG_LEN: usize = 16;
/// The longest record, header included.
pub const MAX_RECORD_LEN: usize = RECORD_HEADER_LEN + MAX_RECORD_PLAINTEXT + TAG_LEN;
/// Records sealed under one key before both sides move to the next
/// (2^38 bytes at most, within AES-GCM's limits for one key).
pub const RECORDS_PER_KEY: u64 = 1 << 22;
/// Keys a direction may use before it must end the connection.
const MAX_KEYS: u64 = 1 << 32;
/// An opener's buffer starts this small, as the frame decoder's does: an
/// idle session's records (a `Ping`) are a few dozen bytes, and a larger
/// buffer would keep memory resident in every idle sealed session (zeroing
/// it touches it; 4 KiB here cost 3 KiB more per idle connection)…
const FIRST_BUFFER_LEN: usize = 1 << 10;
/// …and becomes this once a read fills it or a record does not fit: a
/// whole record and some read-ahead, under the allocator's threshold for a
/// mapping of its own (128 KiB in glibc), so that growing it costs no
/// system call.
const OPENER_BUFFER_LEN: usize = MAX_RECORD_LEN + (32 << 10);
/// An opener's buffer while a long frame arrives (see
/// [`RecordOpener::grow_for_bulk`]): reads of up to a MiB, as an unsealed
/// long frame is read.
const BULK_BUFFER_LEN: usize = (1 << 20) + MAX_RECORD_LEN;
/// Least free space worth a read: half the first buffer, which then takes
/// an idle session's small records one after the other without widening.
/// A widened buffer has less only near its end, where the unread bytes are
/// moved to the front.
const MIN_READ: usize = 512;

/// Why a record could not be sealed or opened. Any of these ends the
/// connection: a sealed stream cannot resynchronise.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecordError {
    /// The record failed authentication: it was altered, cut, dropped,
    /// duplicated, reordered, replayed, or sealed for another session.
    /// None of its bytes were used.
    Tampered {
        /// Which record of the direction (counting from 0, across keys).
        record: u64,
    },
    /// A record header states a length no peer seals.
    BadLength {
        /// The stated length of the sealed part.
        len: u64,
    },
    /// The stream ended inside a record.
    Truncated {
        /// How many bytes of the record had arrived, header included.
        received: usize,
    },
    /// The direction has used all the keys it may: the connection ends
    /// before a nonce could repeat.
    Exhausted,
    /// The listener answered with `#FAILURE#` where its first record should
    /// be: it rejected our answer to its challenge (fast open).
    Rejected,
    /// A sealed session cannot be handed back as a plain stream: every
    /// further byte on it is sealed with this connection's keys.
    NoPlainStream,
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordError::Tampered { record } => write!(
                f,
                "sealed record {record} failed authentication: it was altered, cut, dropped, duplicated, reordered or replayed on the way, or sealed for another session; none of its bytes were used, and the connection is closed"
            ),
            RecordError::BadLength { len } => write!(
                f,
                "a sealed record states a length of {len} bytes; records hold {TAG_LEN} to {} bytes, so the stream is corrupt or not sealed",
                MAX_RECORD_PLAINTEXT + TAG_LEN
            ),
            RecordError::Truncated { received } => write!(
                f,
                "the connection ended inside a sealed record ({received} bytes of it had arrived)"
            ),
            RecordError::Exhausted => f.write_str(
                "this connection has sealed as many records as its keys allow; open a new connection",
            ),
            RecordError::Rejected => f.write_str(
                "the listener rejected our answer to its challenge: it uses a different authkey (or something on the path sent its #FAILURE#)",
            ),
            RecordError::NoPlainStream => f.write_str(
                "a sealed session cannot be handed back as a plain stream: every further byte on it is sealed with this connection's keys",
            ),
        }
    }
}

impl std::error::Error for RecordError {}

/// One direction's key, IV and record counter.
struct Direction {
    secret: Secret,
    key: LessSafeKey,
    iv: [u8; IV_LEN],
    /// Records sealed or opened under the current key.
    seq: u64,
    /// Keys used before the current one.
    updates: u64,
    records_per_key: u64,
}

impl Direction {
    fn new(secret: Secret, records_per_key: u64) -> Self {
        let (key, iv) = key_and_iv(&secret);
        Direction {
            secret,
            key: aes_key(&key),
            iv,
            seq: 0,
            updates: 0,
            records_per_key,
        }
    }

    /// Which record comes next, counting across keys.
    fn record_index(&self) -> u64 {
        self.updates * self.records_per_key + self.seq
    }

    /// The nonce of the next record, moving to the next key first when the
    /// current one has sealed its share.
    fn next_nonce(&mut self) -> Result<Nonce, RecordError> {
        if self.seq == self.records_per_key {
            // Counting the first key as key 1, key `updates + 2` is next.
            if self.updates + 2 >= MAX_KEYS {
                return Err(RecordError::Exhausted);
            }
            self.secret = next_secret(&self.secret);
            let (key, iv) = key_and_iv(&self.secret);
            self.key = aes_key(&key);
            self.iv = iv;
            self.seq = 0;
            self.updates += 1;
        }
        let mut nonce = self.iv;
        for (byte, seq) in nonce[IV_LEN - 8..].iter_mut().zip(self.seq.to_be_bytes()) {
            *byte ^= seq;
        }
        self.seq += 1;
        Ok(Nonce::assume_unique_for_key(nonce))
    }
}

fn aes_key(key: &Secret) -> LessSafeKey {
    // A 32-byte key is exactly what AES-256-GCM takes.
    LessSafeKey::new(
        UnboundKey::new(&AES_256_GCM, key).unwrap_or_else(|_| unreachable!("AES-256 key length")),
    )
}

/// Seals one direction's bytes into records.
pub struct RecordSealer {
    direction: Direction,
}

impl RecordSealer {
    pub(crate) fn new(secret: Secret, records_per_key: u64) -> Self {
        RecordSealer {
            direction: Direction::new(secret, records_per_key),
        }
    }

    /// Seals `plaintext` as records of at most [`MAX_RECORD_PLAINTEXT`]
    /// bytes each, appended to `out`. Nothing is appended for an empty
    /// `plaintext`.
    pub fn seal(&mut self, plaintext: &[u8], out: &mut Vec<u8>) -> Result<(), RecordError> {
        out.reserve(
            plaintext.len()
                + plaintext.len().div_ceil(MAX_RECORD_PLAINTEXT) * (RECORD_HEADER_LEN + TAG_LEN),
        );
        for chunk in plaintext.chunks(MAX_RECORD_PLAINTEXT) {
            self.seal_record(chunk, out)?;
        }
        Ok(())
    }

    /// Seals `plaintext` (at most [`MAX_RECORD_PLAINTEXT`] bytes) as one
    /// record, even an empty one.
    pub(crate) fn seal_record(
        &mut self,
        plaintext: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), RecordError> {
        debug_assert!(plaintext.len() <= MAX_RECORD_PLAINTEXT);
        let nonce = self.direction.next_nonce()?;
        let header = ((plaintext.len() + TAG_LEN) as u32).to_be_bytes();
        out.extend_from_slice(&header);
        let start = out.len();
        out.extend_from_slice(plaintext);
        let tag = self
            .direction
            .key
            .seal_in_place_separate_tag(nonce, Aad::from(header), &mut out[start..])
            .unwrap_or_else(|_| unreachable!("a record is far under AES-GCM's length limit"));
        out.extend_from_slice(tag.as_ref());
        Ok(())
    }

    /// How many records this sealer has sealed.
    pub fn records(&self) -> u64 {
        self.direction.record_index()
    }
}

impl fmt::Debug for RecordSealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecordSealer")
            .field("records", &self.records())
            .finish_non_exhaustive()
    }
}

/// Opens one direction's records: bytes from the peer go in
/// ([`buffer`](RecordOpener::buffer) and [`advance`](RecordOpener::advance),
/// or [`feed`](RecordOpener::feed)), [`open_next`](RecordOpener::open_next)
/// opens a whole record in place, and its plaintext is taken with
/// [`plaintext`](RecordOpener::plaintext) and
/// [`consume`](RecordOpener::consume). It holds at most two records' worth
/// of bytes, and never the plaintext of more than one.
///
/// ```text
/// loop {
///     while opener.plaintext() is empty and !opener.open_next()? { read into opener.buffer() }
///     hand out opener.plaintext(), consume what was taken
/// }
/// ```
pub struct RecordOpener {
    direction: Direction,
    buf: Vec<u8>,
    /// The opened record's plaintext not yet consumed: `buf[plain..plain_end]`.
    plain: usize,
    plain_end: usize,
    /// Received bytes not yet opened: `buf[start..end]`.
    start: usize,
    end: usize,
    failed: Option<RecordError>,
}

impl RecordOpener {
    pub(crate) fn new(secret: Secret, records_per_key: u64) -> Self {
        RecordOpener {
            direction: Direction::new(secret, records_per_key),
            buf: Vec::new(),
            plain: 0,
            plain_end: 0,
            start: 0,
            end: 0,
            failed: None,
        }
    }

    /// Free space to read the peer's bytes into, room for at least a whole
    /// record; call [`advance`](RecordOpener::advance) with how many were
    /// read.
    pub fn buffer(&mut self) -> &mut [u8] {
        if self.buf.is_empty() {
            self.buf = vec![0; FIRST_BUFFER_LEN];
        }
        // The last read filled the buffer: the peer streams.
        let filled = self.end == self.buf.len();
        let kept = if self.plain < self.plain_end {
            self.plain
        } else {
            self.start
        };
        if kept == self.end {
            (self.plain, self.plain_end, self.start, self.end) = (0, 0, 0, 0);
        } else if kept > 0 && self.room_short() {
            self.buf.copy_within(kept..self.end, 0);
            self.plain = self.plain.saturating_sub(kept);
            self.plain_end = self.plain_end.saturating_sub(kept);
            self.start -= kept;
            self.end -= kept;
        }
        if filled || self.room_short() {
            self.widen();
        }
        if self.room_short() && !self.has_whole_record() {
            // Only a caller that reads on without opening gets here; it
            // gets no more room than the record being received needs.
            self.buf.resize(self.end + MAX_RECORD_LEN, 0);
        }
        let limit = self.read_limit();
        &mut self.buf[self.end..limit]
    }

    /// How far a read may fill the buffer: to the end of the record being
    /// received, or, with none begun, one longest record on. Records then
    /// rarely straddle the buffer's end, which would cost moving the
    /// straddling part to the front; a stream of full records is read a
    /// record at a time and never moved. In a buffer grown for bulk, the
    /// whole buffer: there, reads of a MiB matter more.
    fn read_limit(&self) -> usize {
        if self.buf.len() > OPENER_BUFFER_LEN {
            return self.buf.len();
        }
        let limit = match self.buf[self.start..self.end].first_chunk::<RECORD_HEADER_LEN>() {
            Some(header) => {
                let len = (u32::from_be_bytes(*header) as usize).min(MAX_RECORD_LEN);
                let record_end = self.start + RECORD_HEADER_LEN + len;
                // A whole record is here only for a caller that reads on
                // without opening.
                if record_end > self.end {
                    record_end
                } else {
                    self.buf.len()
                }
            }
            None => self.start + MAX_RECORD_LEN,
        };
        limit.min(self.buf.len())
    }

    /// Grows a first, small buffer to the full one, once.
    fn widen(&mut self) {
        if self.buf.len() < OPENER_BUFFER_LEN {
            self.buf.resize(OPENER_BUFFER_LEN, 0);
        }
    }

    /// Lets reads bring up to a MiB at a time: for a long frame, which
    /// holds that much memory of its own anyway, so that sealing does not
    /// multiply its read calls.
    pub fn grow_for_bulk(&mut self) {
        if self.buf.len() < BULK_BUFFER_LEN {
            self.buf.resize(BULK_BUFFER_LEN, 0);
        }
    }

    /// Whether the free space is too small for a read: under [`MIN_READ`],
    /// or short of the end of the record being received.
    fn room_short(&self) -> bool {
        let record_end = match self.buf[self.start..self.end].first_chunk::<RECORD_HEADER_LEN>() {
            Some(header) => {
                let len = (u32::from_be_bytes(*header) as usize).min(MAX_RECORD_LEN);
                self.start + RECORD_HEADER_LEN + len
            }
            None => self.start + RECORD_HEADER_LEN,
        };
        self.buf.len() - self.end < MIN_READ || self.buf.len() < record_end
    }

    /// Whether a whole record waits to be opened.
    pub fn has_whole_record(&self) -> bool {
        self.buf[self.start..self.end]
            .first_chunk::<RECORD_HEADER_LEN>()
            .is_some_and(|header| {
                let len = u32::from_be_bytes(*header) as usize;
                self.end - self.start >= RECORD_HEADER_LEN + len.min(MAX_RECORD_LEN)
            })
    }

    /// Records that `n` bytes were read into [`buffer`](RecordOpener::buffer).
    pub fn advance(&mut self, n: usize) {
        self.end = (self.end + n).min(self.buf.len());
    }

    /// Copies in what fits of `bytes`, as if read from the stream, and
    /// returns how many it took (at least a record's worth when the opener
    /// holds no plaintext).
    pub fn feed(&mut self, bytes: &[u8]) -> usize {
        if bytes.len() > self.buffer().len() {
            // Room for a whole record, as promised, even in a first buffer.
            self.widen();
        }
        let buffer = self.buffer();
        let n = buffer.len().min(bytes.len());
        buffer[..n].copy_from_slice(&bytes[..n]);
        self.advance(n);
        n
    }

    /// The plaintext of the last record opened that is not consumed yet.
    #[inline]
    pub fn plaintext(&self) -> &[u8] {
        &self.buf[self.plain..self.plain_end]
    }

    /// Whether opened plaintext waits to be consumed.
    #[inline]
    pub(crate) fn has_plaintext(&self) -> bool {
        self.plain < self.plain_end
    }

    /// Consumes the frame the plaintext starts with, if it is whole there
    /// and within `max_frame`, and returns where its payload is in the
    /// buffer (see [`opened`](RecordOpener::opened)). `None` otherwise,
    /// consuming nothing: a frame that goes on in the next record, or a
    /// header for the frame decoder to judge.
    #[inline]
    pub(crate) fn take_frame(&mut self, max_frame: u64) -> Option<Range<usize>> {
        let plaintext = &self.buf[self.plain..self.plain_end];
        let Ok(Some((payload, used))) = next_frame(plaintext, max_frame) else {
            return None;
        };
        let start = self.plain + used - payload.len();
        let payload = start..start + payload.len();
        self.plain += used;
        Some(payload)
    }

    /// Bytes of the buffer by position: opened plaintext a caller consumed
    /// but still reads, until the opener is next changed.
    #[inline]
    pub(crate) fn opened(&self, range: Range<usize>) -> &[u8] {
        &self.buf[range]
    }

    /// Marks the first `n` bytes of [`plaintext`](RecordOpener::plaintext)
    /// as taken.
    #[inline]
    pub fn consume(&mut self, n: usize) {
        self.plain = (self.plain + n).min(self.plain_end);
    }

    /// Opens the next record once the previous one's plaintext is all
    /// consumed. Returns whether it opened one (false: no whole record is
    /// buffered yet, or plaintext is still waiting).
    pub fn open_next(&mut self) -> Result<bool, RecordError> {
        if let Some(error) = &self.failed {
            return Err(error.clone());
        }
        if self.plain < self.plain_end {
            return Ok(false);
        }
        let available = &self.buf[self.start..self.end];
        let Some(&header) = available.first_chunk::<RECORD_HEADER_LEN>() else {
            return Ok(false);
        };
        let len = u32::from_be_bytes(header) as usize;
        if !(TAG_LEN..=MAX_RECORD_PLAINTEXT + TAG_LEN).contains(&len) {
            if len == FAILURE.len() && self.direction.record_index() == 0 {
                // Where a fast-open client expects the listener's first
                // record, a listener that rejected its answer sends a plain
                // #FAILURE# frame.
                match available.get(RECORD_HEADER_LEN..RECORD_HEADER_LEN + len) {
                    None => return Ok(false),
                    Some(verdict) if verdict == FAILURE => {
                        return Err(self.fail(RecordError::Rejected));
                    }
                    Some(_) => {}
                }
            }
            return Err(self.fail(RecordError::BadLength { len: len as u64 }));
        }
        if available.len() < RECORD_HEADER_LEN + len {
            return Ok(false);
        }
        let record = self.direction.record_index();
        let body = self.start + RECORD_HEADER_LEN;
        self.start = body + len;
        let opened = self.direction.next_nonce().and_then(|nonce| {
            self.direction
                .key
                .open_in_place(nonce, Aad::from(header), &mut self.buf[body..body + len])
                .map(|plaintext| plaintext.len())
                .map_err(|_| RecordError::Tampered { record })
        });
        match opened {
            Ok(plain_len) => {
                self.plain = body;
                self.plain_end = body + plain_len;
                Ok(true)
            }
            Err(error) => Err(self.fail(error)),
        }
    }

    fn fail(&mut self, error: RecordError) -> RecordError {
        self.failed = Some(error.clone());
        error
    }

    /// Opens one whole record given as its sealed part (what follows the
    /// header), in place; the handshake's way to open the client's first
    /// record, which arrives as a frame.
    pub(crate) fn open_whole<'a>(&mut self, sealed: &'a mut [u8]) -> Result<&'a [u8], RecordError> {
        let record = self.direction.record_index();
        if !(TAG_LEN..=MAX_RECORD_PLAINTEXT + TAG_LEN).contains(&sealed.len()) {
            return Err(RecordError::BadLength {
                len: sealed.len() as u64,
            });
        }
        let header = (sealed.len() as u32).to_be_bytes();
        let nonce = self.direction.next_nonce()?;
        self.direction
            .key
            .open_in_place(nonce, Aad::from(header), sealed)
            .map(|plaintext| &*plaintext)
            .map_err(|_| RecordError::Tampered { record })
    }

    /// Checks the end of the stream: `Ok` if it ended between records.
    pub fn end_of_stream(&self) -> Result<(), RecordError> {
        match self.end - self.start {
            0 => Ok(()),
            received => Err(RecordError::Truncated { received }),
        }
    }

    /// Whether received bytes wait: plaintext not consumed, or part of a
    /// record not yet opened.
    pub fn has_buffered_bytes(&self) -> bool {
        self.plain < self.plain_end || self.start < self.end
    }

    /// How many records this opener has opened.
    pub fn records(&self) -> u64 {
        self.direction.record_index()
    }

    /// The memory the opener holds for received bytes, in bytes.
    pub fn memory(&self) -> usize {
        self.buf.len()
    }
}

impl fmt::Debug for RecordOpener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecordOpener")
            .field("records", &self.records())
            .field("buffered", &(self.end - self.start))
            .field("plaintext", &(self.plain_end - self.plain))
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (RecordSealer, RecordOpener) {
        let secret = [7; 32];
        (
            RecordSealer::new(secret, RECORDS_PER_KEY),
            RecordOpener::new(secret, RECORDS_PER_KEY),
        )
    }

    /// Gives the opener `sealed` as a socket would, in reads of at most
    /// `piece` bytes, and returns the plaintext it opened.
    fn read(opener: &mut RecordOpener, mut sealed: &[u8], piece: usize) -> Vec<u8> {
        let mut opened = Vec::new();
        loop {
            let plaintext = opener.plaintext();
            if !plaintext.is_empty() {
                opened.extend_from_slice(plaintext);
                opener.consume(plaintext.len());
            } else if !opener.open_next().expect("authentic records") {
                if sealed.is_empty() {
                    return opened;
                }
                let buffer = opener.buffer();
                let n = buffer.len().min(sealed.len()).min(piece);
                buffer[..n].copy_from_slice(&sealed[..n]);
                opener.advance(n);
                sealed = &sealed[n..];
            }
        }
    }

    #[test]
    fn an_idle_sessions_short_records_keep_the_first_small_buffer() {
        let (mut sealer, mut opener) = pair();
        for ping in 0..100u8 {
            let mut sealed = Vec::new();
            sealer.seal(&[ping; 6], &mut sealed).expect("seal");
            assert_eq!(read(&mut opener, &sealed, usize::MAX), [ping; 6]);
        }
        assert_eq!(opener.memory(), FIRST_BUFFER_LEN);
    }

    #[test]
    fn a_stream_widens_the_buffer_and_arrives_whole() {
        let stream: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        for piece in [1, 1000, FIRST_BUFFER_LEN, 100_000] {
            let (mut sealer, mut opener) = pair();
            let mut sealed = Vec::new();
            // Long records and short ones, as a client's writes make them.
            for chunk in stream.chunks(70_000) {
                let (long, short) = chunk.split_at(chunk.len() - 300);
                sealer.seal(long, &mut sealed).expect("seal");
                for flower in short.chunks(38) {
                    sealer.seal(flower, &mut sealed).expect("seal");
                }
            }
            assert_eq!(
                read(&mut opener, &sealed, piece),
                stream,
                "reads of {piece}"
            );
            assert_eq!(opener.memory(), OPENER_BUFFER_LEN, "reads of {piece}");
        }
    }

    #[test]
    fn fed_bytes_find_room_for_a_whole_record_in_a_fresh_opener() {
        let (mut sealer, mut opener) = pair();
        let mut sealed = Vec::new();
        sealer
            .seal(&[5; 3 * FIRST_BUFFER_LEN], &mut sealed)
            .expect("seal");
        sealer.seal(b"next", &mut sealed).expect("seal");
        let taken = opener.feed(&sealed);
        assert!(taken > RECORD_HEADER_LEN + 3 * FIRST_BUFFER_LEN + TAG_LEN);
        assert!(opener.open_next().expect("authentic"));
        assert_eq!(opener.plaintext(), [5; 3 * FIRST_BUFFER_LEN]);
    }
}
