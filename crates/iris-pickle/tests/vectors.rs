//! Fixed vectors captured once from CPython 3.11 (the Python expression that
//! produced each is in a comment), decoded without needing Python.

#![allow(clippy::unwrap_used)]

use iris_pickle::{Limits, Value, decode};

fn s(text: &str) -> Value {
    Value::Str(text.to_owned())
}

fn seed_flower() -> Value {
    Value::Object {
        module: "iris".into(),
        name: "Iris".into(),
        state: Box::new(Value::Dict(vec![
            (s("sepal_length"), Value::Float(5.1)),
            (s("sepal_width"), Value::Float(3.5)),
            (s("petal_length"), Value::Float(1.4)),
            (s("petal_width"), Value::Float(0.2)),
            (s("species"), s("setosa")),
        ])),
    }
}

fn limits() -> Limits {
    Limits::default().allow_class("Iris")
}

/// pickle.dumps(pickle.dumps(Iris(5.1, 3.5, 1.4, 0.2, 'setosa'))), the seed
/// client's first frame.
const SEED_FRAME: &[u8] = b"\x80\x04\x95\x99\x00\x00\x00\x00\x00\x00\x00C\x95\x80\x04\x95\x8a\x00\x00\x00\x00\x00\x00\x00\x8c\x04iris\x94\x8c\x04Iris\x94\x93\x94)\x81\x94}\x94(\x8c\x0csepal_length\x94G@\x14ffffff\x8c\x0bsepal_width\x94G@\x0c\x00\x00\x00\x00\x00\x00\x8c\x0cpetal_length\x94G?\xf6ffffff\x8c\x0bpetal_width\x94G?\xc9\x99\x99\x99\x99\x99\x9a\x8c\x07species\x94\x8c\x06setosa\x94ub.\x94.";

#[test]
fn seed_frame_and_close() {
    let Value::Bytes(inner) = decode(SEED_FRAME, &limits()).unwrap() else {
        panic!("outer pickle is not bytes");
    };
    assert_eq!(inner, &SEED_FRAME[13..SEED_FRAME.len() - 2]);
    assert_eq!(decode(&inner, &limits()).unwrap(), seed_flower());
    // pickle.dumps('close')
    let close = b"\x80\x04\x95\x09\x00\x00\x00\x00\x00\x00\x00\x8c\x05close\x94.";
    assert_eq!(decode(close, &limits()).unwrap(), s("close"));
}

#[test]
fn seed_flower_in_every_protocol() {
    let vectors: [&[u8]; 5] = [
        // pickle.dumps(Iris(5.1, 3.5, 1.4, 0.2, 'setosa'), protocol=0)
        b"ccopy_reg\n_reconstructor\np0\n(ciris\nIris\np1\nc__builtin__\nobject\np2\nNtp3\nRp4\n(dp5\nVsepal_length\np6\nF5.1\nsVsepal_width\np7\nF3.5\nsVpetal_length\np8\nF1.4\nsVpetal_width\np9\nF0.2\nsVspecies\np10\nVsetosa\np11\nsb.",
        // pickle.dumps(Iris(5.1, 3.5, 1.4, 0.2, 'setosa'), protocol=1)
        b"ccopy_reg\n_reconstructor\nq\x00(ciris\nIris\nq\x01c__builtin__\nobject\nq\x02Ntq\x03Rq\x04}q\x05(X\x0c\x00\x00\x00sepal_lengthq\x06G@\x14ffffffX\x0b\x00\x00\x00sepal_widthq\x07G@\x0c\x00\x00\x00\x00\x00\x00X\x0c\x00\x00\x00petal_lengthq\x08G?\xf6ffffffX\x0b\x00\x00\x00petal_widthq\x09G?\xc9\x99\x99\x99\x99\x99\x9aX\x07\x00\x00\x00speciesq\nX\x06\x00\x00\x00setosaq\x0bub.",
        // pickle.dumps(Iris(5.1, 3.5, 1.4, 0.2, 'setosa'), protocol=2)
        b"\x80\x02ciris\nIris\nq\x00)\x81q\x01}q\x02(X\x0c\x00\x00\x00sepal_lengthq\x03G@\x14ffffffX\x0b\x00\x00\x00sepal_widthq\x04G@\x0c\x00\x00\x00\x00\x00\x00X\x0c\x00\x00\x00petal_lengthq\x05G?\xf6ffffffX\x0b\x00\x00\x00petal_widthq\x06G?\xc9\x99\x99\x99\x99\x99\x9aX\x07\x00\x00\x00speciesq\x07X\x06\x00\x00\x00setosaq\x08ub.",
        // pickle.dumps(Iris(5.1, 3.5, 1.4, 0.2, 'setosa'), protocol=3)
        b"\x80\x03ciris\nIris\nq\x00)\x81q\x01}q\x02(X\x0c\x00\x00\x00sepal_lengthq\x03G@\x14ffffffX\x0b\x00\x00\x00sepal_widthq\x04G@\x0c\x00\x00\x00\x00\x00\x00X\x0c\x00\x00\x00petal_lengthq\x05G?\xf6ffffffX\x0b\x00\x00\x00petal_widthq\x06G?\xc9\x99\x99\x99\x99\x99\x9aX\x07\x00\x00\x00speciesq\x07X\x06\x00\x00\x00setosaq\x08ub.",
        // pickle.dumps(Iris(5.1, 3.5, 1.4, 0.2, 'setosa'), protocol=5)
        b"\x80\x05\x95\x8a\x00\x00\x00\x00\x00\x00\x00\x8c\x04iris\x94\x8c\x04Iris\x94\x93\x94)\x81\x94}\x94(\x8c\x0csepal_length\x94G@\x14ffffff\x8c\x0bsepal_width\x94G@\x0c\x00\x00\x00\x00\x00\x00\x8c\x0cpetal_length\x94G?\xf6ffffff\x8c\x0bpetal_width\x94G?\xc9\x99\x99\x99\x99\x99\x9a\x8c\x07species\x94\x8c\x06setosa\x94ub.",
    ];
    for (i, bytes) in vectors.iter().enumerate() {
        assert_eq!(
            decode(bytes, &limits()).unwrap(),
            seed_flower(),
            "vector {i}"
        );
    }
}

#[test]
fn bytes_in_old_protocols() {
    let want = Value::Bytes(b"ab\xff\x00".to_vec());
    let vectors: [&[u8]; 3] = [
        // pickle.dumps(b'ab\xff\x00', protocol=0)
        b"c_codecs\nencode\np0\n(Vab\xff\x5cu0000\np1\nVlatin1\np2\ntp3\nRp4\n.",
        // pickle.dumps(b'ab\xff\x00', protocol=1)
        b"c_codecs\nencode\nq\x00(X\x05\x00\x00\x00ab\xc3\xbf\x00q\x01X\x06\x00\x00\x00latin1q\x02tq\x03Rq\x04.",
        // pickle.dumps(b'ab\xff\x00', protocol=2)
        b"\x80\x02c_codecs\nencode\nq\x00X\x05\x00\x00\x00ab\xc3\xbf\x00q\x01X\x06\x00\x00\x00latin1q\x02\x86q\x03Rq\x04.",
    ];
    for (i, bytes) in vectors.iter().enumerate() {
        assert_eq!(
            decode(bytes, &Limits::default()).unwrap(),
            want,
            "vector {i}"
        );
    }
    let empty: [&[u8]; 3] = [
        // pickle.dumps(b'', protocol=0)
        b"c__builtin__\nbytes\np0\n(tRp1\n.",
        // pickle.dumps(b'', protocol=1)
        b"c__builtin__\nbytes\nq\x00)Rq\x01.",
        // pickle.dumps(b'', protocol=2)
        b"\x80\x02c__builtin__\nbytes\nq\x00)Rq\x01.",
    ];
    for (i, bytes) in empty.iter().enumerate() {
        assert_eq!(
            decode(bytes, &Limits::default()).unwrap(),
            Value::Bytes(Vec::new()),
            "empty vector {i}"
        );
    }
    // pickle.dumps(bytearray(b'ab'), protocol=5)
    let bytearray =
        b"\x80\x05\x95\x0d\x00\x00\x00\x00\x00\x00\x00\x96\x02\x00\x00\x00\x00\x00\x00\x00ab\x94.";
    assert_eq!(
        decode(bytearray, &Limits::default()).unwrap(),
        Value::Bytes(b"ab".to_vec())
    );
}

#[test]
fn shared_and_protocol_zero_scalars() {
    // x = [1, 2]; pickle.dumps([x, x, {'k': x}])
    let shared = b"\x80\x04\x95\x18\x00\x00\x00\x00\x00\x00\x00]\x94(]\x94(K\x01K\x02eh\x01}\x94\x8c\x01k\x94h\x01se.";
    let x = Value::List(vec![Value::Int(1), Value::Int(2)]);
    assert_eq!(
        decode(shared, &Limits::default()).unwrap(),
        Value::List(vec![x.clone(), x.clone(), Value::Dict(vec![(s("k"), x)])])
    );
    // pickle.dumps([None, True, False, -5, 2**40, 1.5, 'é\\\n', (), {}], protocol=0)
    let scalars = b"(lp0\nNaI01\naI00\naI-5\naL1099511627776L\naF1.5\naV\xe9\x5cu005c\x5cu000a\np1\na(ta(dp2\na.";
    assert_eq!(
        decode(scalars, &Limits::default()).unwrap(),
        Value::List(vec![
            Value::None,
            Value::Bool(true),
            Value::Bool(false),
            Value::Int(-5),
            Value::Int(1 << 40),
            Value::Float(1.5),
            s("\u{e9}\\\n"),
            Value::Tuple(vec![]),
            Value::Dict(vec![]),
        ])
    );
}

#[test]
fn python2_strings() {
    // Python 2.7: pickle.dumps('it\'s\n', 0)
    assert_eq!(
        decode(b"S\"it's\\n\"\np0\n.", &Limits::default()).unwrap(),
        s("it's\n")
    );
    // Python 2.7: pickle.dumps('abc', 2)
    assert_eq!(
        decode(b"\x80\x02U\x03abcq\x00.", &Limits::default()).unwrap(),
        s("abc")
    );
    // BINSTRING, as protocol 1 writes strings of 256 bytes and more.
    let mut binstring = b"T\x00\x01\x00\x00".to_vec();
    binstring.extend_from_slice(&[b'z'; 256]);
    binstring.push(b'.');
    assert_eq!(
        decode(&binstring, &Limits::default()).unwrap(),
        s(&"z".repeat(256))
    );
}

#[test]
fn new_object_ex_and_value_helpers() {
    // Hand-made: NEWOBJ_EX with empty args and kwargs (CPython itself
    // writes NEWOBJ when the kwargs are empty, but the opcode is legal).
    let pickle = b"\x80\x04\x8c\x04iris\x8c\x04Iris\x93)}\x92}\x8c\x07species\x8c\x06setosasb.";
    let flower = decode(pickle, &limits()).unwrap();
    assert_eq!(
        flower.get("species").and_then(Value::as_str),
        Some("setosa")
    );
    assert_eq!(flower.get("missing"), None);
    assert_eq!(flower.type_name(), "object");
    // An object with no BUILD has an empty state dict.
    let bare = b"\x80\x04\x8c\x08__main__\x8c\x04Iris\x93)\x81.";
    assert_eq!(
        decode(bare, &limits()).unwrap(),
        Value::Object {
            module: "__main__".into(),
            name: "Iris".into(),
            state: Box::new(Value::Dict(vec![])),
        }
    );
    // allow_class_in ties the class to one module.
    let strict = Limits::default().allow_class_in("iris", "Iris");
    assert!(decode(bare, &strict).is_err());
    assert_eq!(
        decode(pickle, &strict)
            .unwrap()
            .get("species")
            .and_then(Value::as_str),
        Some("setosa")
    );
}

#[test]
fn big_integers() {
    // pickle.dumps(2**63 - 1) uses LONG1 with 8 bytes.
    let max = b"\x80\x04\x8a\x08\xff\xff\xff\xff\xff\xff\xff\x7f.";
    assert_eq!(
        decode(max, &Limits::default()).unwrap(),
        Value::Int(i64::MAX)
    );
    // pickle.dumps(-2**63)
    let min = b"\x80\x04\x8a\x08\x00\x00\x00\x00\x00\x00\x00\x80.";
    assert_eq!(
        decode(min, &Limits::default()).unwrap(),
        Value::Int(i64::MIN)
    );
    // A non-minimal encoding of -1 in LONG4 is still -1.
    let padded = b"\x80\x04\x8b\x0a\x00\x00\x00\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff.";
    assert_eq!(decode(padded, &Limits::default()).unwrap(), Value::Int(-1));
    // pickle.dumps(0) in LONG1 form (length 0).
    assert_eq!(
        decode(b"\x80\x02\x8a\x00.", &Limits::default()).unwrap(),
        Value::Int(0)
    );
}
