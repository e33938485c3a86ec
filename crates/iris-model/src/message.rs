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

use serde::{Deserialize, Serialize};

use crate::Iris;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Species;

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
