//! The iris application's messages on the wire, and the one rule that
//! tells the two kinds apart. No I/O and no command-line code: the
//! listener, the client and the fuzz targets share it.
//!
//! - [`native`]: what iris peers exchange, [`Message`] and [`Reply`],
//!   postcard-encoded (golden bytes pin the format), with a hand-written
//!   decoder for the listener's hot path.
//! - [`python`]: the frames Python's `multiprocessing.connection` programs
//!   send: the seed's pickled flowers and `'close'`, decoded by the
//!   restricted [`iris_pickle`] decoder within budgets sized to a flower.
//! - [`decode`]: the dispatch rule. Every pickle `Connection.send` writes
//!   starts with `0x80`; a native message never does.
//!
//! ```
//! use iris_model::{Iris, Species};
//! use iris_protocol::{Message, Request, decode, python};
//!
//! let flower = Iris::new(5.1, 3.5, 1.4, 0.2, Species::Setosa)?;
//! // From an iris client: a native message.
//! let native = postcard::to_stdvec(&Message::Iris(flower))?;
//! assert_eq!(decode(&native)?, Request::Flower(flower));
//! // From the seed's Python client: a pickle, and then 'close'.
//! let mut pickled = Vec::new();
//! python::write_flower_frame(&mut pickled, &flower, "iris", "Iris");
//! assert!(matches!(decode(&pickled)?, Request::PythonFlower(_)));
//! assert_eq!(decode(&python::close_frame())?, Request::Close { acknowledge: false });
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod native;
pub mod python;

use iris_model::{Iris, PyIris};

pub use native::{Message, MessageError, Reply};
use python::PythonMessage;

/// What a client asked for.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// Report on this flower.
    Flower(Iris),
    /// Report on this flower from a Python client, whose measurements may
    /// be `int`s (its area is then Python's). Boxed so that the native
    /// path's requests stay as small as they were.
    PythonFlower(Box<PyIris>),
    /// Answer with a pong.
    Ping,
    /// The client is done; native clients wait for an acknowledgement,
    /// Python clients expect none.
    Close {
        /// Whether to answer with [`Reply::Closed`].
        acknowledge: bool,
    },
}

/// Decodes a frame from either kind of client: a pickle from a Python
/// program (first byte `0x80`, see [`python`]) or a native message.
pub fn decode(frame: &[u8]) -> Result<Request, DecodeError> {
    if python::is_pickle(frame) {
        return match python::decode_frame(frame) {
            Ok(PythonMessage::Flower(iris)) => Ok(Request::PythonFlower(Box::new(iris))),
            Ok(PythonMessage::Close) => Ok(Request::Close { acknowledge: false }),
            Err(e) => Err(DecodeError(e.to_string())),
        };
    }
    decode_native(frame)
}

/// Decodes a native iris message, validating the flower.
fn decode_native(frame: &[u8]) -> Result<Request, DecodeError> {
    match Message::decode(frame) {
        Ok(Message::Iris(iris)) => Ok(Request::Flower(iris)),
        Ok(Message::Ping) => Ok(Request::Ping),
        Ok(Message::Close) => Ok(Request::Close { acknowledge: true }),
        Err(e @ MessageError::UnknownVariant(_)) => Err(DecodeError(format!(
            "{e}; pickles from Python start with 0x80 (protocol 2 or higher)"
        ))),
        Err(e) => Err(DecodeError(e.to_string())),
    }
}

/// Why a frame could not be understood: what is wrong with it, naming the
/// field of an invalid flower.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(String);

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DecodeError {}

#[cfg(test)]
mod tests {
    use super::*;
    use iris_model::Species;

    impl DecodeError {
        fn contains(&self, text: &str) -> bool {
            self.0.contains(text)
        }
    }

    #[test]
    fn native_messages_decode() {
        let iris = Iris::new(5.1, 3.5, 1.4, 0.2, Species::Setosa).expect("valid");
        let frame = postcard::to_stdvec(&Message::Iris(iris)).expect("encode");
        assert_eq!(decode(&frame), Ok(Request::Flower(iris)));
        let frame = postcard::to_stdvec(&Message::Close).expect("encode");
        assert_eq!(decode(&frame), Ok(Request::Close { acknowledge: true }));
    }

    #[test]
    fn every_message_variant_decodes_to_its_request() {
        for species in Species::ALL {
            let iris = Iris::new(6.3, 2.9, 5.6, 1.8, species).expect("valid");
            let frame = postcard::to_stdvec(&Message::Iris(iris)).expect("encode");
            assert_eq!(decode(&frame), Ok(Request::Flower(iris)));
        }
        let frame = postcard::to_stdvec(&Message::Ping).expect("encode");
        assert_eq!(decode(&frame), Ok(Request::Ping));
    }

    #[test]
    fn python_frames_decode_and_close_without_acknowledgement() {
        let iris = Iris::new(5.1, 3.5, 1.4, 0.2, Species::Setosa).expect("valid");
        let mut frame = Vec::new();
        python::write_flower_frame(&mut frame, &iris, "iris", "Iris");
        assert_eq!(
            decode(&frame),
            Ok(Request::PythonFlower(Box::new(PyIris::from(iris))))
        );
        assert_eq!(
            decode(&python::close_frame()),
            Ok(Request::Close { acknowledge: false })
        );
    }

    #[test]
    fn garbage_and_trailing_bytes_are_refused() {
        assert!(decode(b"").is_err());
        assert!(decode(&[9, 9, 9]).is_err());
        let mut frame = postcard::to_stdvec(&Message::Ping).expect("encode");
        frame.push(0);
        assert!(
            decode(&frame)
                .expect_err("trailing")
                .contains("must be 1 bytes long")
        );
    }

    #[test]
    fn invalid_flowers_are_refused_with_the_field_named() {
        // Message::Iris with a negative sepal_length.
        let mut frame = vec![0u8];
        for value in [-5.1f64, 3.5, 1.4, 0.2] {
            frame.extend_from_slice(&value.to_le_bytes());
        }
        frame.push(0);
        let err = decode(&frame).expect_err("negative length");
        assert!(err.contains("sepal_length"), "{err}");
    }
}
