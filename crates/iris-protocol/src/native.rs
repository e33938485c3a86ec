//! The native iris protocol spoken between our own client and listener.
//!
//! Both types are encoded with postcard by the wire library. Postcard writes
//! an enum as its variant index (a varint) followed by the variant's fields,
//! in declaration order, so **the order of variants and fields here is the
//! wire format and must never change**; add new variants only at the end.
//!
//! The listener tells native messages from Python pickles by the first byte:
//! every pickle starts with the PROTO opcode `0x80`, while every encoded
//! [`Message`] starts with its variant index, a one-byte varint below `0x80`
//! as long as there are fewer than 128 variants. So the first byte of an
//! encoded `Message` is never `0x80`.

use std::fmt;

use serde::{Deserialize, Serialize};

use iris_model::{Iris, ModelError, Species};

/// The length of an encoded [`Message::Iris`]: its variant byte, four
/// `f64`s, and the species byte.
pub const IRIS_MESSAGE_LEN: usize = 1 + 4 * 8 + 1;

/// Sent by an iris client to an iris listener.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Message {
    /// One flower for the listener to report on (its `Area:` line).
    Iris(Iris),
    /// The client is done; the listener answers [`Reply::Closed`].
    Close,
    /// A liveness check; the listener answers [`Reply::Pong`].
    Ping,
}

/// Sent by an iris listener to an iris client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Reply {
    /// Acknowledges [`Message::Close`].
    Closed {
        /// How many flowers the listener received on this connection.
        flowers: u64,
    },
    /// Answers [`Message::Ping`].
    Pong,
}

impl Message {
    /// Decodes one message that fills all of `frame`.
    ///
    /// This is postcard's encoding of [`Message`], decoded by hand: it is
    /// the listener's hot path, and unlike serde's route it can say which
    /// field of an invalid flower is wrong. Tests check it against postcard
    /// on every variant and on arbitrary bytes. It is stricter than postcard
    /// in one way: a variant index must be written in one byte (postcard
    /// never writes more for these variants).
    pub fn decode(frame: &[u8]) -> Result<Message, MessageError> {
        match frame {
            [0, body @ ..] => {
                let Some((measurements, [species])) = body.split_first_chunk::<32>() else {
                    return Err(MessageError::Length {
                        variant: "Iris",
                        expected: IRIS_MESSAGE_LEN,
                        found: frame.len(),
                    });
                };
                let field = |i: usize| {
                    let mut bytes = [0u8; 8];
                    bytes.copy_from_slice(&measurements[i * 8..i * 8 + 8]);
                    f64::from_le_bytes(bytes)
                };
                let Some(species) = Species::from_index(*species) else {
                    return Err(MessageError::UnknownSpecies(*species));
                };
                Iris::new(field(0), field(1), field(2), field(3), species)
                    .map(Message::Iris)
                    .map_err(MessageError::InvalidFlower)
            }
            [1] => Ok(Message::Close),
            [2] => Ok(Message::Ping),
            [variant @ (1 | 2), ..] => Err(MessageError::Length {
                variant: if *variant == 1 { "Close" } else { "Ping" },
                expected: 1,
                found: frame.len(),
            }),
            [] => Err(MessageError::Empty),
            [other, ..] => Err(MessageError::UnknownVariant(*other)),
        }
    }
}

/// Why [`Message::decode`] refused a frame.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum MessageError {
    /// The frame was empty.
    Empty,
    /// The first byte names no message.
    UnknownVariant(u8),
    /// The frame is longer or shorter than its message.
    Length {
        /// The message named by the first byte.
        variant: &'static str,
        /// Its encoded length.
        expected: usize,
        /// The frame's length.
        found: usize,
    },
    /// The species byte names no species.
    UnknownSpecies(u8),
    /// The flower's measurements are invalid.
    InvalidFlower(ModelError),
}

impl fmt::Display for MessageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MessageError::Empty => f.write_str("empty message"),
            MessageError::UnknownVariant(byte) => write!(
                f,
                "unknown message type {byte:#04x} (expected 0x00 Iris, 0x01 Close or 0x02 Ping)"
            ),
            MessageError::Length {
                variant,
                expected,
                found,
            } => write!(
                f,
                "{variant} message must be {expected} bytes long, got {found}"
            ),
            MessageError::UnknownSpecies(byte) => write!(
                f,
                "unknown species index {byte} (expected 0 setosa, 1 versicolor or 2 virginica)"
            ),
            MessageError::InvalidFlower(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for MessageError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            MessageError::InvalidFlower(e) => Some(e),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use iris_model::Species;

    fn seed() -> Iris {
        Iris::new(5.1, 3.5, 1.4, 0.2, Species::Setosa).expect("seed flower is valid")
    }

    /// Message::Iris(seed): variant 0, four little-endian f64s, species 0.
    const SEED_BYTES: [u8; 34] = [
        0x00, // Message::Iris
        0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x14, 0x40, // 5.1
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0c, 0x40, // 3.5
        0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0xf6, 0x3f, // 1.4
        0x9a, 0x99, 0x99, 0x99, 0x99, 0x99, 0xc9, 0x3f, // 0.2
        0x00, // Species::Setosa
    ];

    #[test]
    fn golden_bytes_of_every_message() {
        let encode = |message: &Message| postcard::to_stdvec(message).expect("encode");
        assert_eq!(encode(&Message::Iris(seed())), SEED_BYTES);
        assert_eq!(encode(&Message::Close), [0x01]);
        assert_eq!(encode(&Message::Ping), [0x02]);

        let virginica = Iris::new(7.7, 3.8, 6.7, 2.2, Species::Virginica).expect("valid");
        let bytes = encode(&Message::Iris(virginica));
        assert_eq!(bytes.first(), Some(&0x00));
        assert_eq!(bytes.last(), Some(&0x02), "species index is the last byte");
    }

    #[test]
    fn golden_bytes_of_every_reply() {
        let encode = |reply: &Reply| postcard::to_stdvec(reply).expect("encode");
        assert_eq!(encode(&Reply::Closed { flowers: 0 }), [0x00, 0x00]);
        assert_eq!(encode(&Reply::Closed { flowers: 150 }), [0x00, 0x96, 0x01]);
        assert_eq!(
            encode(&Reply::Closed { flowers: u64::MAX }),
            [
                0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01
            ]
        );
        assert_eq!(encode(&Reply::Pong), [0x01]);
    }

    #[test]
    fn messages_and_replies_round_trip() {
        for message in [Message::Iris(seed()), Message::Close, Message::Ping] {
            let bytes = postcard::to_stdvec(&message).expect("encode");
            assert_eq!(postcard::from_bytes::<Message>(&bytes), Ok(message));
        }
        for reply in [Reply::Closed { flowers: 42 }, Reply::Pong] {
            let bytes = postcard::to_stdvec(&reply).expect("encode");
            assert_eq!(postcard::from_bytes::<Reply>(&bytes), Ok(reply));
        }
    }

    #[test]
    fn no_encoded_message_starts_like_a_pickle() {
        const PICKLE_PROTO: u8 = 0x80;
        for message in [Message::Iris(seed()), Message::Close, Message::Ping] {
            let bytes = postcard::to_stdvec(&message).expect("encode");
            assert_ne!(bytes.first(), Some(&PICKLE_PROTO), "{message:?}");
        }
        // And a pickle-looking first byte does not decode as a message.
        assert!(postcard::from_bytes::<Message>(&[PICKLE_PROTO, 0x04]).is_err());
    }

    #[test]
    fn decoding_validates_the_flower() {
        let mut bytes = SEED_BYTES;
        bytes[1..9].copy_from_slice(&(-5.1_f64).to_le_bytes());
        assert!(
            postcard::from_bytes::<Message>(&bytes).is_err(),
            "negative length"
        );

        bytes[1..9].copy_from_slice(&f64::NAN.to_le_bytes());
        assert!(
            postcard::from_bytes::<Message>(&bytes).is_err(),
            "NaN length"
        );

        let mut bytes = SEED_BYTES;
        bytes[33] = 3;
        assert!(
            postcard::from_bytes::<Message>(&bytes).is_err(),
            "unknown species"
        );
    }

    #[test]
    fn the_hand_decoder_agrees_with_postcard_on_every_message() {
        for species in Species::ALL {
            let iris = Iris::new(6.3, 2.9, 5.6, 1.8, species).expect("valid");
            for message in [Message::Iris(iris), Message::Close, Message::Ping] {
                let bytes = postcard::to_stdvec(&message).expect("encode");
                assert_eq!(Message::decode(&bytes), Ok(message));
            }
        }
    }

    #[test]
    fn the_hand_decoder_agrees_with_postcard_on_arbitrary_bytes() {
        // Mutations of every valid message, plus random frames: whenever
        // postcard accepts a whole frame, the hand decoder gives the same
        // message, and whenever it refuses, so does the hand decoder.
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut frames: Vec<Vec<u8>> = Vec::new();
        for _ in 0..20_000 {
            let mut frame = SEED_BYTES.to_vec();
            let position = (next() % frame.len() as u64) as usize;
            frame[position] = next() as u8;
            frame.truncate(frame.len() - (next() % 3) as usize);
            frames.push(frame);
        }
        for len in 0..40 {
            frames.push((0..len).map(|_| (next() % 4) as u8).collect());
        }
        for frame in frames {
            let ours = Message::decode(&frame);
            let theirs = postcard::take_from_bytes::<Message>(&frame)
                .ok()
                .filter(|(_, rest)| rest.is_empty())
                .map(|(message, _)| message);
            assert_eq!(ours.clone().ok(), theirs, "{frame:02x?}: {ours:?}");
        }
    }

    #[test]
    fn the_hand_decoder_names_what_is_wrong() {
        let mut bytes = SEED_BYTES;
        bytes[9..17].copy_from_slice(&(-3.5_f64).to_le_bytes());
        let err = Message::decode(&bytes).expect_err("negative width");
        assert!(err.to_string().contains("sepal_width: -3.5"), "{err}");
        let mut bytes = SEED_BYTES;
        bytes[33] = 7;
        assert_eq!(
            Message::decode(&bytes),
            Err(MessageError::UnknownSpecies(7))
        );
        assert_eq!(Message::decode(&[]), Err(MessageError::Empty));
        assert_eq!(
            Message::decode(&[0x80]),
            Err(MessageError::UnknownVariant(0x80))
        );
        let err = Message::decode(&[1, 0]).expect_err("trailing byte");
        assert_eq!(err.to_string(), "Close message must be 1 bytes long, got 2");
        let err = Message::decode(&SEED_BYTES[..20]).expect_err("short");
        assert_eq!(
            err.to_string(),
            "Iris message must be 34 bytes long, got 20"
        );
    }

    #[test]
    fn truncated_and_unknown_input_fails_without_panicking() {
        for len in 0..SEED_BYTES.len() {
            assert!(
                postcard::from_bytes::<Message>(&SEED_BYTES[..len]).is_err(),
                "{len}"
            );
        }
        assert!(postcard::from_bytes::<Message>(&[0x03]).is_err());
        assert!(postcard::from_bytes::<Reply>(&[0x02]).is_err());
    }
}
