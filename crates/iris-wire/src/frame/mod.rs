//! The framing of `multiprocessing.connection`, without I/O: the header
//! codec, and a [`FrameDecoder`] and [`FrameEncoder`] that every adapter
//! drives in the same way.
//!
//! A frame is a header followed by that many payload bytes. The header is a
//! 4-byte big-endian *signed* length; payloads longer than `0x7fffffff` bytes
//! use the escape `-1` followed by an 8-byte big-endian unsigned length, as
//! CPython's `Connection._send_bytes` writes it. Any other negative length is a
//! protocol error: CPython never writes one, so it can only be garbage.
//!
//! The decoder owns the whole receive policy, the part of the library that
//! faces untrusted bytes: the size limit is checked on the header, before any
//! memory is set aside for the payload; a long payload's memory grows only as
//! its bytes arrive; a stream that ends inside a frame is reported as
//! truncated. An adapter only moves bytes: it reads into
//! [`FrameDecoder::buffer`], reports how many came with
//! [`FrameDecoder::advance`], and asks [`FrameDecoder::decode`] for frames.
//!
//! ```
//! use iris_wire::frame::{FrameDecoder, FrameEncoder};
//!
//! let mut encoder = FrameEncoder::new();
//! encoder.push(b"hello");
//! encoder.push(b"");
//! let wire = encoder.pending().to_vec();
//!
//! // The bytes arrive one at a time; the decoder does not care.
//! let mut decoder = FrameDecoder::new(1 << 20);
//! let mut frames = Vec::new();
//! for byte in wire {
//!     decoder.buffer()[0] = byte;
//!     decoder.advance(1);
//!     while let Some(frame) = decoder.decode()? {
//!         frames.push(decoder.payload(&frame).to_vec());
//!     }
//! }
//! assert_eq!(frames, [b"hello".to_vec(), Vec::new()]);
//! decoder.end_of_stream()?; // between frames: a clean end
//! # Ok::<(), iris_wire::frame::FrameError>(())
//! ```

mod decoder;
mod encoder;

use std::fmt;

pub use decoder::{DECODER_MEMORY_OVERHEAD, Frame, FrameDecoder};
pub use encoder::{FLUSH_THRESHOLD, FrameEncoder};

/// What is wrong with the bytes of a frame: the framing layer's errors,
/// which involve no I/O.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FrameError {
    /// The peer announced a frame longer than the maximum. Nothing was
    /// allocated for it, and the stream cannot be used further.
    TooLarge {
        /// The announced payload length.
        len: u64,
        /// The maximum in force.
        max: u64,
    },
    /// The peer sent a negative frame length other than the `-1` escape.
    BadLength {
        /// The 4-byte header, as a signed integer.
        header: i32,
    },
    /// The stream ended in the middle of a frame.
    Truncated {
        /// How many bytes the frame (header included) should have had, as
        /// far as its header was received.
        expected: u64,
        /// How many of them arrived.
        received: u64,
    },
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::TooLarge { len, max } => write!(
                f,
                "the peer announced a frame of {len} bytes, over the limit of {max} bytes; raise the maximum frame size if such frames are expected"
            ),
            FrameError::BadLength { header } => write!(
                f,
                "the peer sent an invalid frame length {header}: it does not speak the multiprocessing.connection protocol"
            ),
            FrameError::Truncated { expected, received } => write!(
                f,
                "the peer closed the connection in the middle of a frame ({received} of {expected} bytes received)"
            ),
        }
    }
}

impl std::error::Error for FrameError {}

/// Largest payload length that fits the short 4-byte header.
pub const SHORT_HEADER_MAX: u64 = 0x7fff_ffff;

/// Length in bytes of the short header.
pub const SHORT_HEADER_LEN: usize = 4;

/// Length in bytes of the long header: the `-1` escape and a `u64` length.
pub const LONG_HEADER_LEN: usize = 12;

/// An encoded frame header, ready to be written before its payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    bytes: [u8; LONG_HEADER_LEN],
    len: usize,
}

impl Header {
    /// Encodes the header for a payload of `payload_len` bytes.
    pub fn encode(payload_len: u64) -> Self {
        let mut bytes = [0u8; LONG_HEADER_LEN];
        if payload_len <= SHORT_HEADER_MAX {
            // The guard above makes the narrowing lossless.
            bytes[..4].copy_from_slice(&(payload_len as u32).to_be_bytes());
            Header {
                bytes,
                len: SHORT_HEADER_LEN,
            }
        } else {
            bytes[..4].copy_from_slice(&(-1i32).to_be_bytes());
            bytes[4..].copy_from_slice(&payload_len.to_be_bytes());
            Header {
                bytes,
                len: LONG_HEADER_LEN,
            }
        }
    }

    /// The header's bytes as they go on the wire.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// A frame header read from the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodedHeader {
    /// How many bytes the header itself took.
    pub header_len: usize,
    /// How many payload bytes follow the header.
    pub payload_len: u64,
}

/// Decodes a frame header from the start of `buf`.
///
/// Returns `Ok(None)` when `buf` does not yet hold a whole header, so a caller
/// can read more bytes and try again. A payload longer than `max_payload` is
/// rejected here, before anything is allocated for it.
pub fn decode_header(buf: &[u8], max_payload: u64) -> Result<Option<DecodedHeader>, FrameError> {
    let Some(short) = buf.first_chunk::<SHORT_HEADER_LEN>() else {
        return Ok(None);
    };
    let (header_len, payload_len) = match i32::from_be_bytes(*short) {
        -1 => {
            let Some(long) = buf.get(SHORT_HEADER_LEN..LONG_HEADER_LEN) else {
                return Ok(None);
            };
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(long);
            (LONG_HEADER_LEN, u64::from_be_bytes(bytes))
        }
        negative if negative < 0 => return Err(FrameError::BadLength { header: negative }),
        // Non-negative, so the widening is lossless.
        short => (SHORT_HEADER_LEN, short as u64),
    };
    if payload_len > max_payload {
        return Err(FrameError::TooLarge {
            len: payload_len,
            max: max_payload,
        });
    }
    Ok(Some(DecodedHeader {
        header_len,
        payload_len,
    }))
}

/// Splits the first whole frame off `buf`.
///
/// Returns the payload and how many bytes of `buf` the frame took, or
/// `Ok(None)` when `buf` does not hold a whole frame yet.
#[inline]
pub fn next_frame(buf: &[u8], max_payload: u64) -> Result<Option<(&[u8], usize)>, FrameError> {
    let Some(header) = decode_header(buf, max_payload)? else {
        return Ok(None);
    };
    let start = header.header_len;
    let end = usize::try_from(header.payload_len)
        .ok()
        .and_then(|len| start.checked_add(len));
    match end.and_then(|end| buf.get(start..end).map(|payload| (payload, end))) {
        Some(found) => Ok(Some(found)),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Headers as CPython writes them: `struct.pack("!i", n)` or
    /// `struct.pack("!i", -1) + struct.pack("!Q", n)`.
    #[test]
    fn encodes_cpython_headers_at_the_boundaries() {
        assert_eq!(Header::encode(0).as_bytes(), [0, 0, 0, 0]);
        assert_eq!(Header::encode(5).as_bytes(), [0, 0, 0, 5]);
        assert_eq!(
            Header::encode(0x7fff_ffff).as_bytes(),
            [0x7f, 0xff, 0xff, 0xff]
        );
        assert_eq!(
            Header::encode(0x8000_0000).as_bytes(),
            [0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0x80, 0, 0, 0]
        );
        assert_eq!(
            Header::encode(u64::MAX).as_bytes(),
            [
                0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff
            ]
        );
    }

    #[test]
    fn decodes_what_it_encodes() {
        for len in [0, 1, 255, 256, 0x7fff_ffff, 0x8000_0000, 1 << 40, u64::MAX] {
            let header = Header::encode(len);
            let decoded = decode_header(header.as_bytes(), u64::MAX)
                .expect("valid header")
                .expect("complete header");
            assert_eq!(decoded.payload_len, len);
            assert_eq!(decoded.header_len, header.as_bytes().len());
        }
    }

    #[test]
    fn incomplete_headers_ask_for_more_bytes() {
        let long = Header::encode(0x8000_0000);
        for cut in 0..long.as_bytes().len() {
            assert_eq!(
                decode_header(&long.as_bytes()[..cut], u64::MAX).ok(),
                Some(None)
            );
        }
        for cut in 0..4 {
            assert_eq!(
                decode_header(&[0, 0, 0, 9][..cut], u64::MAX).ok(),
                Some(None)
            );
        }
    }

    #[test]
    fn negative_lengths_other_than_the_escape_are_rejected() {
        for header in [-2i32, -100, i32::MIN] {
            let err = decode_header(&header.to_be_bytes(), u64::MAX).expect_err("negative length");
            assert!(
                matches!(err, FrameError::BadLength { header: h } if h == header),
                "{err}"
            );
        }
    }

    #[test]
    fn a_2_pow_63_length_is_rejected_before_anything_is_allocated() {
        let header = Header::encode(1 << 63);
        let err = decode_header(header.as_bytes(), 64 << 20).expect_err("too large");
        assert!(
            matches!(err, FrameError::TooLarge { len, max } if len == 1 << 63 && max == 64 << 20),
            "{err}"
        );
    }

    #[test]
    fn next_frame_needs_every_byte_of_the_frame() {
        let frame = [0, 0, 0, 3, b'a', b'b', b'c', 0xee];
        for cut in 0..7 {
            assert_eq!(
                next_frame(&frame[..cut], 16).ok(),
                Some(None),
                "cut at {cut}"
            );
        }
        assert_eq!(next_frame(&frame, 16).ok(), Some(Some((&b"abc"[..], 7))));
    }

    #[test]
    fn the_limit_itself_is_allowed() {
        let header = Header::encode(256);
        assert!(
            decode_header(header.as_bytes(), 256)
                .expect("at limit")
                .is_some()
        );
        assert!(decode_header(Header::encode(257).as_bytes(), 256).is_err());
    }
}
