//! The frame encoder: frames queued back to back, written in batches.

use std::fmt;

use super::{Header, SHORT_HEADER_LEN, SHORT_HEADER_MAX};

/// Queued frames should be written once this many bytes are pending, and a
/// payload this large is better written straight from the caller's memory
/// after its header than copied.
pub const FLUSH_THRESHOLD: usize = 64 << 10;

/// Queues frames back to back, so that many small messages leave in one
/// write.
///
/// An adapter writes [`pending`](FrameEncoder::pending) when
/// [`wants_flush`](FrameEncoder::wants_flush) says so (or before waiting
/// for the peer), then calls [`consume`](FrameEncoder::consume) with how
/// much was written.
///
/// ```
/// use iris_wire::frame::FrameEncoder;
///
/// let mut encoder = FrameEncoder::new();
/// encoder.push(b"abc");
/// encoder.push_with(|out| {
///     out.extend_from_slice(b"built in place");
///     Ok::<(), std::convert::Infallible>(())
/// })?;
/// assert_eq!(&encoder.pending()[..7], b"\0\0\0\x03abc");
/// encoder.consume(encoder.pending().len());
/// assert!(encoder.is_empty());
/// # Ok::<(), std::convert::Infallible>(())
/// ```
#[derive(Default)]
pub struct FrameEncoder {
    buf: Vec<u8>,
}

/// The pending size only: the buffer holds payloads.
impl fmt::Debug for FrameEncoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FrameEncoder")
            .field("pending", &self.buf.len())
            .finish()
    }
}

impl FrameEncoder {
    /// An empty encoder.
    pub fn new() -> Self {
        FrameEncoder::default()
    }

    /// Queues `payload` as one frame.
    pub fn push(&mut self, payload: &[u8]) {
        self.push_header(payload.len() as u64);
        self.buf.extend_from_slice(payload);
    }

    /// Queues only the header of a frame of `payload_len` bytes, for a
    /// caller that writes the payload itself right after the queued bytes.
    pub fn push_header(&mut self, payload_len: u64) {
        self.buf
            .extend_from_slice(Header::encode(payload_len).as_bytes());
    }

    /// Queues one frame whose payload `encode` appends to the vector it is
    /// given (encoding in place, with no intermediate buffer). If `encode`
    /// fails, nothing is queued.
    pub fn push_with<E>(
        &mut self,
        encode: impl FnOnce(&mut Vec<u8>) -> Result<(), E>,
    ) -> Result<(), E> {
        let start = self.buf.len();
        // A placeholder short header, patched once the length is known.
        self.buf.extend_from_slice(&[0; SHORT_HEADER_LEN]);
        if let Err(e) = encode(&mut self.buf) {
            self.buf.truncate(start);
            return Err(e);
        }
        let len = (self.buf.len() - start - SHORT_HEADER_LEN) as u64;
        let header = Header::encode(len);
        if len <= SHORT_HEADER_MAX {
            self.buf[start..start + SHORT_HEADER_LEN].copy_from_slice(header.as_bytes());
        } else {
            self.buf.splice(
                start..start + SHORT_HEADER_LEN,
                header.as_bytes().iter().copied(),
            );
        }
        Ok(())
    }

    /// Queues bytes that are already framed (such as a handshake's output).
    pub fn push_framed(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The bytes waiting to be written.
    pub fn pending(&self) -> &[u8] {
        &self.buf
    }

    /// Whether nothing waits to be written.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Whether enough is queued that it should be written now.
    pub fn wants_flush(&self) -> bool {
        self.buf.len() >= FLUSH_THRESHOLD
    }

    /// Drops the first `n` pending bytes, once they are written.
    pub fn consume(&mut self, n: usize) {
        if n >= self.buf.len() {
            self.buf.clear();
        } else {
            self.buf.drain(..n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::FrameDecoder;

    #[test]
    fn queued_frames_decode_back() {
        let mut encoder = FrameEncoder::new();
        encoder.push(b"one");
        encoder.push(b"");
        encoder
            .push_with(|out| {
                out.extend_from_slice(b"three");
                Ok::<(), ()>(())
            })
            .expect("encodes");
        assert_eq!(
            encoder.push_with(|out| {
                out.extend_from_slice(b"half-written");
                Err("failed")
            }),
            Err("failed")
        );
        let mut decoder = FrameDecoder::new(1 << 10);
        decoder.feed(encoder.pending());
        let mut frames = Vec::new();
        while let Some(frame) = decoder.decode().expect("valid") {
            frames.push(decoder.payload(&frame).to_vec());
        }
        assert_eq!(frames, [b"one".to_vec(), Vec::new(), b"three".to_vec()]);
    }

    #[test]
    fn consume_keeps_what_was_not_written() {
        let mut encoder = FrameEncoder::new();
        encoder.push(b"abcdef");
        encoder.consume(8);
        assert_eq!(encoder.pending(), b"ef");
        assert!(!encoder.wants_flush());
        encoder.consume(100);
        assert!(encoder.is_empty());
    }
}
