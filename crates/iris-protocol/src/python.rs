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
//! [`Message`](crate::Message) starts with its variant index, a
//! one-byte varint below `0x80`, so the first byte decides.

use std::fmt;
use std::sync::LazyLock;

use iris_model::{Iris, MEASUREMENTS, PyIris, PyNumber, Species};
use iris_pickle::{Field, Limits, PickleError, Value};

/// The first byte of every pickle of protocol 2 or higher.
pub const PICKLE_PROTO: u8 = 0x80;

/// The class the seed's flower is pickled as: `iris.Iris`.
pub const SEED_MODULE: &str = "iris";
/// See [`SEED_MODULE`].
pub const SEED_CLASS: &str = "Iris";

/// Whether `frame` is a pickle rather than a native message.
pub fn is_pickle(frame: &[u8]) -> bool {
    frame.first() == Some(&PICKLE_PROTO)
}

/// What a Python client sent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PythonMessage {
    /// An `Iris` object (pickled once, or pickled bytes of a pickle), its
    /// measurements kept as the `int`s or `float`s they were.
    Flower(PyIris),
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

/// The longest pickle accepted, whichever way it arrives: a whole frame, or
/// the inner pickle of the seed's double encoding. A flower's pickle takes
/// 150 to 270 bytes in protocols 0 to 5, so this leaves ten times that for
/// longer module names and other writers; a longer pickle is refused before
/// a byte of it is decoded.
pub const MAX_PICKLE_LEN: usize = 4 << 10;

/// Values (and, separately, stack entries and values in the result) a
/// pickle may create: a flower's pickle has about 25.
pub const MAX_PICKLE_VALUES: usize = 4096;

/// Memo entries: a flower's pickle has about 11.
pub const MAX_PICKLE_MEMO: usize = 1024;

/// String and bytes content of the result, shared values counted per use:
/// the inner pickle (at most [`MAX_PICKLE_LEN`]) or a flower's names.
pub const MAX_PICKLE_BYTES: usize = 2 * MAX_PICKLE_LEN;

/// Container nesting: a flower is an object holding a dict (depth 2).
pub const MAX_PICKLE_DEPTH: usize = 8;

/// The decoder's bounds, the same for every frame. Constants sized to a
/// flower rather than to the frame, so that the worst a peer can make one
/// decode cost is fixed: at most [`MAX_PICKLE_LEN`] bytes read once (the
/// decoder runs in time linear in its input) and well under a megabyte of
/// memory (see the README's security section).
fn limits() -> &'static Limits {
    static LIMITS: LazyLock<Limits> = LazyLock::new(|| {
        Limits::default()
            .allow_class(SEED_CLASS)
            .with_max_input_len(MAX_PICKLE_LEN)
            .with_max_depth(MAX_PICKLE_DEPTH)
            .with_max_values(MAX_PICKLE_VALUES)
            .with_max_memo(MAX_PICKLE_MEMO)
            .with_max_str_len(MAX_PICKLE_LEN)
            .with_max_total_bytes(MAX_PICKLE_BYTES)
    });
    &LIMITS
}

/// Decodes one pickled frame from a Python client.
pub fn decode_frame(frame: &[u8]) -> Result<PythonMessage, PythonError> {
    match iris_pickle::decode(frame, limits()).map_err(PythonError::Pickle)? {
        // The seed's double encoding: decode the inner pickle, one level only.
        Value::Bytes(inner) => {
            match iris_pickle::decode(&inner, limits()).map_err(PythonError::Pickle)? {
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

/// Builds a [`PyIris`] from an `Iris` object's state: exactly the seed
/// dataclass's five attributes, numbers for the measurements (`int`s
/// allowed, as Python allows them, and kept as `int`s so that the area is
/// Python's) and a species name.
///
/// A `bool` measurement is refused although Python's `True` is an `int` (the
/// seed's listener prints `Area: 2` for four `True`s): a truth value where a
/// length belongs is a bug in the sender, and `False` would be refused as
/// zero anyway.
fn flower_from(object: &Value) -> Result<PyIris, PythonError> {
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
    let mut measurements = [PyNumber::Float(0.0); 4];
    for (slot, field) in measurements.iter_mut().zip(MEASUREMENTS) {
        *slot = match attribute(field)? {
            Value::Float(value) => PyNumber::Float(*value),
            Value::Int(value) => PyNumber::Int(*value),
            other => {
                return Err(PythonError::BadFlower(format!(
                    "{field} is a {}, expected a float or an int",
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
    PyIris::new(measurements, species).map_err(|e| PythonError::BadFlower(e.to_string()))
}

/// Appends the frame payload the seed's client sends for `iris`:
/// `pickle.dumps(pickle.dumps(module.Class(...)))`, protocol 4.
pub fn write_flower_frame(out: &mut Vec<u8>, iris: &Iris, module: &str, class: &str) {
    let [sl, sw, pl, pw] = MEASUREMENTS;
    let fields = [
        (sl, Field::Float(iris.sepal_length())),
        (sw, Field::Float(iris.sepal_width())),
        (pl, Field::Float(iris.petal_length())),
        (pw, Field::Float(iris.petal_width())),
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
        assert_eq!(
            decode_frame(&frame),
            Ok(PythonMessage::Flower(PyIris::from(seed())))
        );
        assert_eq!(decode_frame(&close_frame()), Ok(PythonMessage::Close));
    }

    #[test]
    fn native_messages_are_never_taken_for_pickles() {
        for message in [
            crate::Message::Iris(seed()),
            crate::Message::Close,
            crate::Message::Ping,
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
    fn long_pickles_are_refused_before_they_are_decoded() {
        let long = "x".repeat(MAX_PICKLE_LEN);
        let err = decode_frame(&iris_pickle::dumps_str(&long)).expect_err("too long");
        assert!(
            matches!(err, PythonError::Pickle(PickleError::InputTooLong { .. })),
            "{err}"
        );
        // Wrapped the seed's way: the outer pickle is too long already.
        let inner = iris_pickle::dumps_str(&"x".repeat(MAX_PICKLE_LEN - 20));
        let err = decode_frame(&iris_pickle::dumps_bytes(&inner)).expect_err("too long");
        assert!(
            matches!(err, PythonError::Pickle(PickleError::InputTooLong { .. })),
            "{err}"
        );
    }

    /// A declared length is checked against the bytes present before
    /// anything is allocated for it.
    #[test]
    fn long_strings_declared_but_absent_are_refused_from_their_length() {
        // BINUNICODE declaring 4 GiB, with 4 bytes present.
        let frame = b"\x80\x04X\xff\xff\xff\xffabcd.";
        let err = decode_frame(frame).expect_err("truncated");
        assert!(
            matches!(err, PythonError::Pickle(PickleError::Truncated { .. })),
            "{err}"
        );
    }

    /// `MARK`, then the attributes with the given opcodes as measurement
    /// values and `'setosa'`, then `SETITEMS`.
    fn attributes(values: [&[u8]; 4]) -> Vec<u8> {
        let mut items = b"(".to_vec();
        for (name, value) in MEASUREMENTS.iter().zip(values) {
            items.push(b'X');
            items.extend_from_slice(&(name.len() as u32).to_le_bytes());
            items.extend_from_slice(name.as_bytes());
            items.extend_from_slice(value);
        }
        items.extend_from_slice(b"X\x07\x00\x00\x00speciesX\x06\x00\x00\x00setosau");
        items
    }

    /// An `iris.Iris` pickle with the given opcodes as attribute values
    /// (protocol 2 opcodes, no memo), as Python writes `Iris(5, 3, ...)`.
    fn iris_pickle(values: [&[u8]; 4]) -> Vec<u8> {
        let mut pickle = b"\x80\x02ciris\nIris\n)\x81}".to_vec();
        pickle.extend_from_slice(&attributes(values));
        pickle.extend_from_slice(b"b.");
        pickle
    }

    const SEED_VALUES: [&[u8]; 4] = [
        b"G@\x14ffffff",
        b"G@\x0c\x00\x00\x00\x00\x00\x00",
        b"G?\xf6ffffff",
        b"G?\xc9\x99\x99\x99\x99\x99\x9a",
    ];

    /// CPython's `load_build` copies the state dict into the object: the
    /// seed's listener prints `Area: 18.13` for a pickle that sets
    /// `sepal_length = 100.0` in the memoized dict after `BUILD`, and raises
    /// `AttributeError` for one whose dict is empty at `BUILD` and filled
    /// afterwards.
    #[test]
    fn the_state_dict_changed_after_build_changes_nothing() {
        let mut mutated = b"\x80\x02ciris\nIris\n)\x81}q\x00".to_vec();
        mutated.extend_from_slice(&attributes(SEED_VALUES));
        mutated.extend_from_slice(
            b"bh\x00X\x0c\x00\x00\x00sepal_lengthG@Y\x00\x00\x00\x00\x00\x00s0.",
        );
        match decode_frame(&mutated) {
            Ok(PythonMessage::Flower(flower)) => {
                assert_eq!(flower.total_area().to_string(), "18.13");
            }
            other => panic!("not a flower: {other:?}"),
        }
        let mut filled_late = b"\x80\x02ciris\nIris\n)\x81}q\x00bh\x00".to_vec();
        filled_late.extend_from_slice(&attributes(SEED_VALUES));
        filled_late.extend_from_slice(b"0.");
        assert_eq!(
            decode_frame(&filled_late)
                .expect_err("no attributes")
                .to_string(),
            "invalid Iris object: missing attribute sepal_length"
        );
    }

    #[test]
    fn int_measurements_stay_ints_and_bools_are_refused() {
        let area = |values| match decode_frame(&iris_pickle(values)) {
            Ok(PythonMessage::Flower(flower)) => flower.total_area().to_string(),
            other => panic!("not a flower: {other:?}"),
        };
        let one_float = b"G\x3f\xf0\x00\x00\x00\x00\x00\x00";
        // Python: 5 * 3 + 1 * 1 == 16, 5 * 3 + 1 * 1.0 == 16.0
        assert_eq!(area([b"K\x05", b"K\x03", b"K\x01", b"K\x01"]), "16");
        assert_eq!(area([b"K\x05", b"K\x03", b"K\x01", one_float]), "16.0");
        // Python: 2**62 * 2**62 + 1 * 1 (LONG1 of 8 bytes for 2**62)
        let big = b"\x8a\x08\x00\x00\x00\x00\x00\x00\x00\x40";
        assert_eq!(
            area([big, big, b"K\x01", b"K\x01"]),
            "21267647932558653966460912964485513217"
        );
        let err =
            decode_frame(&iris_pickle([b"\x88", b"K\x03", b"K\x01", b"K\x01"])).expect_err("bool");
        assert_eq!(
            err.to_string(),
            "invalid Iris object: sepal_length is a bool, expected a float or an int"
        );
        let err =
            decode_frame(&iris_pickle([b"K\x05", b"K\x03", b"K\x00", b"K\x01"])).expect_err("zero");
        assert!(err.to_string().contains("invalid petal_length: 0"), "{err}");
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
        assert!(
            err.to_string().contains("expected a float or an int"),
            "{err}"
        );
        let err =
            decode_frame(&iris_pickle::dumps_object("iris", "Rose", &full)).expect_err("class");
        assert!(matches!(err, PythonError::Pickle(_)), "{err}");
    }
}
