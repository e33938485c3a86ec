//! Frames as Python's `multiprocessing.connection` programs send them.
//!
//! `Connection.send(obj)` pickles `obj`, and the seed's client sends
//! `pickle.dumps(flower)`, so its flower frames are a pickle of a `bytes`
//! object that holds a pickle of an `iris.Iris` instance; its last frame is a
//! pickle of the string `'close'`. Other clients send the `Iris` object
//! directly (one pickle level). Both are understood here; nothing is ever
//! executed (see [`iris_pickle`]).
//!
//! **Telling pickles from native messages.** `Connection.send` pickles with
//! the default protocol, at least 2 in every CPython 3, and a protocol 2+
//! pickle starts with the `PROTO` opcode `0x80`. A native postcard
//! [`Message`](iris_model::Message) starts with its variant index, a
//! one-byte varint below `0x80`, so the first byte decides.

use std::fmt;

use iris_model::{Iris, Species};
use iris_pickle::{Field, Limits, PickleError, Value};

/// The first byte of every pickle of protocol 2 or higher.
pub const PICKLE_PROTO: u8 = 0x80;

/// The class the seed's flower is pickled as: `iris.Iris`.
pub const SEED_MODULE: &str = "iris";
/// See [`SEED_MODULE`].
pub const SEED_CLASS: &str = "Iris";

/// The measurement attributes of the seed's `Iris` dataclass, in order.
const MEASUREMENTS: [&str; 4] = ["sepal_length", "sepal_width", "petal_length", "petal_width"];

/// Whether `frame` is a pickle rather than a native message.
pub fn is_pickle(frame: &[u8]) -> bool {
    frame.first() == Some(&PICKLE_PROTO)
}

/// What a Python client sent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PythonMessage {
    /// An `Iris` object (pickled once, or pickled bytes of a pickle).
    Flower(Iris),
    /// The string `'close'`: the client is done.
    Close,
}

/// Why a Python frame was refused.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum PythonError {
    /// The pickle itself was refused (a forbidden global, a bound, garbage).
    Pickle(PickleError),
    /// A well-formed pickle of something that is not a flower or `'close'`.
    Unexpected(String),
    /// An `Iris` object whose attributes are missing, extra or invalid.
    BadFlower(String),
}

impl fmt::Display for PythonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PythonError::Pickle(e) => write!(f, "refused pickle: {e}"),
            PythonError::Unexpected(what) => write!(
                f,
                "unexpected pickle: {what} (expected an Iris object, pickled bytes of one, or 'close')"
            ),
            PythonError::BadFlower(why) => write!(f, "invalid Iris object: {why}"),
        }
    }
}

impl std::error::Error for PythonError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PythonError::Pickle(e) => Some(e),
            _ => None,
        }
    }
}

/// The longest string or bytes value a flower's pickle needs: its inner
/// pickle, a species name, attribute and class names are all far shorter.
const MAX_PICKLED_STRING: usize = 64 << 10;

/// Bounds for decoding `len` bytes of pickle: no honest pickle of that size
/// holds more values, memo entries or string bytes than it has bytes, so
/// anything beyond that is an expansion attack; and no flower needs a long
/// string, so one is refused from its declared length, before allocation.
fn limits_for(len: usize) -> Limits {
    Limits::default()
        .allow_class(SEED_CLASS)
        .with_max_depth(8)
        .with_max_values(len + 16)
        .with_max_memo(len)
        .with_max_str_len(len.min(MAX_PICKLED_STRING))
        .with_max_total_bytes(len)
}

/// Decodes one pickled frame from a Python client.
pub fn decode_frame(frame: &[u8]) -> Result<PythonMessage, PythonError> {
    match iris_pickle::decode(frame, &limits_for(frame.len())).map_err(PythonError::Pickle)? {
        // The seed's double encoding: decode the inner pickle, one level only.
        Value::Bytes(inner) => {
            match iris_pickle::decode(&inner, &limits_for(inner.len()))
                .map_err(PythonError::Pickle)?
            {
                object @ Value::Object { .. } => flower_from(&object).map(PythonMessage::Flower),
                other => Err(PythonError::Unexpected(format!(
                    "pickled bytes holding a {}",
                    other.type_name()
                ))),
            }
        }
        Value::Str(text) if text == "close" => Ok(PythonMessage::Close),
        Value::Str(text) => Err(PythonError::Unexpected(format!(
            "the string {:?}",
            text.chars().take(40).collect::<String>()
        ))),
        object @ Value::Object { .. } => flower_from(&object).map(PythonMessage::Flower),
        other => Err(PythonError::Unexpected(format!("a {}", other.type_name()))),
    }
}

/// Builds an [`Iris`] from an `Iris` object's state: exactly the seed
/// dataclass's five attributes, numbers for the measurements (ints allowed,
/// as Python allows them) and a species name.
fn flower_from(object: &Value) -> Result<Iris, PythonError> {
    let Value::Object { state, name, .. } = object else {
        return Err(PythonError::Unexpected(format!("a {}", object.type_name())));
    };
    let Value::Dict(attributes) = state.as_ref() else {
        return Err(PythonError::BadFlower(format!(
            "{name}'s state is a {}, expected a dict of attributes",
            state.type_name()
        )));
    };
    for (key, _) in attributes {
        let known = key
            .as_str()
            .is_some_and(|key| MEASUREMENTS.contains(&key) || key == "species");
        if !known {
            return Err(PythonError::BadFlower(format!(
                "unexpected attribute {key:?}"
            )));
        }
    }
    let attribute = |field: &str| {
        object
            .get(field)
            .ok_or_else(|| PythonError::BadFlower(format!("missing attribute {field}")))
    };
    let mut measurements = [0.0; 4];
    for (slot, field) in measurements.iter_mut().zip(MEASUREMENTS) {
        *slot = match attribute(field)? {
            Value::Float(value) => *value,
            Value::Int(value) => *value as f64,
            other => {
                return Err(PythonError::BadFlower(format!(
                    "{field} is a {}, expected a float",
                    other.type_name()
                )));
            }
        };
    }
    let species = match attribute("species")? {
        Value::Str(text) => text
            .parse::<Species>()
            .map_err(|e| PythonError::BadFlower(e.to_string()))?,
        other => {
            return Err(PythonError::BadFlower(format!(
                "species is a {}, expected a str",
                other.type_name()
            )));
        }
    };
    let [sepal_length, sepal_width, petal_length, petal_width] = measurements;
    Iris::new(
        sepal_length,
        sepal_width,
        petal_length,
        petal_width,
        species,
    )
    .map_err(|e| PythonError::BadFlower(e.to_string()))
}

/// Appends the frame payload the seed's client sends for `iris`:
/// `pickle.dumps(pickle.dumps(module.Class(...)))`, protocol 4.
pub fn write_flower_frame(out: &mut Vec<u8>, iris: &Iris, module: &str, class: &str) {
    let fields = [
        ("sepal_length", Field::Float(iris.sepal_length())),
        ("sepal_width", Field::Float(iris.sepal_width())),
        ("petal_length", Field::Float(iris.petal_length())),
        ("petal_width", Field::Float(iris.petal_width())),
        ("species", Field::Str(iris.species().as_str())),
    ];
    let inner = iris_pickle::dumps_object(module, class, &fields);
    iris_pickle::write_bytes_into(out, &inner);
}

/// The frame payload of the seed's last message: `pickle.dumps('close')`.
pub fn close_frame() -> Vec<u8> {
    iris_pickle::dumps_str("close")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seed() -> Iris {
        Iris::new(5.1, 3.5, 1.4, 0.2, Species::Setosa).expect("valid")
    }

    /// The seed's flower frame as our writer makes it (iris-pickle's tests
    /// compare the writer's bytes with CPython's).
    fn seed_frame() -> Vec<u8> {
        let mut frame = Vec::new();
        write_flower_frame(&mut frame, &seed(), SEED_MODULE, SEED_CLASS);
        frame
    }

    #[test]
    fn the_seed_frames_round_trip() {
        let frame = seed_frame();
        assert!(is_pickle(&frame));
        assert_eq!(decode_frame(&frame), Ok(PythonMessage::Flower(seed())));
        assert_eq!(decode_frame(&close_frame()), Ok(PythonMessage::Close));
    }

    #[test]
    fn native_messages_are_never_taken_for_pickles() {
        for message in [
            iris_model::Message::Iris(seed()),
            iris_model::Message::Close,
            iris_model::Message::Ping,
        ] {
            let frame = postcard::to_stdvec(&message).expect("encode");
            assert!(!is_pickle(&frame), "{message:?}");
        }
    }

    #[test]
    fn other_strings_and_types_are_refused_with_what_they_were() {
        let err = decode_frame(&iris_pickle::dumps_str("open")).expect_err("not close");
        assert!(err.to_string().contains("\"open\""), "{err}");
        let err = decode_frame(&iris_pickle::dumps_bytes(&iris_pickle::dumps_str("close")))
            .expect_err("bytes of a str");
        assert!(err.to_string().contains("holding a str"), "{err}");
    }

    #[test]
    fn long_strings_are_refused_before_they_are_read() {
        let long = "x".repeat(MAX_PICKLED_STRING + 1);
        let err = decode_frame(&iris_pickle::dumps_str(&long)).expect_err("too long");
        assert!(matches!(err, PythonError::Pickle(_)), "{err}");
    }

    #[test]
    fn missing_extra_and_invalid_attributes_are_named() {
        let frame =
            |fields: &[(&str, Field<'_>)]| iris_pickle::dumps_object("iris", "Iris", fields);
        let full = [
            ("sepal_length", Field::Float(5.1)),
            ("sepal_width", Field::Float(3.5)),
            ("petal_length", Field::Float(1.4)),
            ("petal_width", Field::Float(0.2)),
            ("species", Field::Str("setosa")),
        ];
        let err = decode_frame(&frame(&full[..4])).expect_err("missing");
        assert!(
            err.to_string().contains("missing attribute species"),
            "{err}"
        );
        let mut extra = full.to_vec();
        extra.push(("colour", Field::Str("blue")));
        let err = decode_frame(&frame(&extra)).expect_err("extra");
        assert!(err.to_string().contains("colour"), "{err}");
        let mut negative = full;
        negative[1] = ("sepal_width", Field::Float(-3.5));
        let err = decode_frame(&frame(&negative)).expect_err("negative");
        assert!(err.to_string().contains("sepal_width"), "{err}");
        let mut wrong_type = full;
        wrong_type[0] = ("sepal_length", Field::Str("long"));
        let err = decode_frame(&frame(&wrong_type)).expect_err("str");
        assert!(err.to_string().contains("expected a float"), "{err}");
        let err =
            decode_frame(&iris_pickle::dumps_object("iris", "Rose", &full)).expect_err("class");
        assert!(matches!(err, PythonError::Pickle(_)), "{err}");
    }
}
