//! Tests against real CPython interpreters: 3.11 (`python3`), 3.12.1 and
//! 3.13.0, found by `iris_testkit` (`cargo xtask test` makes a missing one a
//! failure instead of a skip).

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;

use common::{PRELUDE, Python, hex, iris_rows, pythons, run, seed_dir, unhex};
use iris_pickle::{Field, Limits, Value, decode, dumps_bytes, dumps_object, dumps_str};

fn s(text: &str) -> Value {
    Value::Str(text.to_owned())
}

fn iris(f: [f64; 4], species: &str) -> Value {
    Value::Object {
        module: "iris".into(),
        name: "Iris".into(),
        state: Box::new(Value::Dict(vec![
            (s("sepal_length"), Value::Float(f[0])),
            (s("sepal_width"), Value::Float(f[1])),
            (s("petal_length"), Value::Float(f[2])),
            (s("petal_width"), Value::Float(f[3])),
            (s("species"), s(species)),
        ])),
    }
}

fn iris_fields<'a>(f: [f64; 4], species: &'a str) -> [(&'static str, Field<'a>); 5] {
    [
        ("sepal_length", Field::Float(f[0])),
        ("sepal_width", Field::Float(f[1])),
        ("petal_length", Field::Float(f[2])),
        ("petal_width", Field::Float(f[3])),
        ("species", Field::Str(species)),
    ]
}

const SEED: [f64; 4] = [5.1, 3.5, 1.4, 0.2];

const DECODE_SCRIPT: &str = r#"
cases = {
    'iris': Iris(5.1, 3.5, 1.4, 0.2, 'setosa'),
    'iris-odd': Iris(1.0, -0.0, float('inf'), 1e300, 'v\u00e9rsicolor \u2713 \U0001f600'),
    'close': 'close',
    'str-mixed': 'h\u00e9llo w\u00f6rld \u2713 \U0001f600 \\ \n \r \x00 \x1a \\u1234 \\U0001f600',
    'str-256': 'x' * 256,
    'str-long': '\u00e9' * 40000,
    'bytes': b'\x00\x01ab\xff',
    'bytes-empty': b'',
    'bytes-300': bytes(range(256)) + b'x' * 44,
    'bytes-big': b'\xab' * 70000,
    'ints': [0, 1, -1, 255, 256, 65535, 65536, -2**31, 2**31 - 1, 2**31, 2**63 - 1, -2**63, 10**15],
    'floats': [0.0, -0.0, 1.5, 1e-300, float('inf'), float('-inf'), 5e-324],
    'nested': {'a': [1, 2.5, None, True, False], 'b': (1, 'x', b'y'), 'c': {'d': ()},
               'e': [[], {}], (1, 2): 'tuple key', 3: (1,), 4: (1, 2, 3), 5: (1, 2, 3, 4)},
    'shared': (lambda x: [x, x, {'k': x}])([1, 2]),
    'flowers': (lambda f: [f, f, Iris(4.9, 3.0, 1.4, 0.2, 'setosa')])(Iris(5.1, 3.5, 1.4, 0.2, 'setosa')),
    'pickled-iris': pickle.dumps(Iris(5.1, 3.5, 1.4, 0.2, 'setosa'), protocol=4),
    'empty': [(), [], {}, ''],
    'none': None,
    'true': True,
}
for name, obj in cases.items():
    for p in range(0, pickle.HIGHEST_PROTOCOL + 1):
        print(name, p, pickle.dumps(obj, protocol=p).hex())
"#;

fn expected(name: &str) -> Value {
    let seed_inner = dumps_object("iris", "Iris", &iris_fields(SEED, "setosa"));
    match name {
        "iris" => iris(SEED, "setosa"),
        "iris-odd" => iris(
            [1.0, -0.0, f64::INFINITY, 1e300],
            "v\u{e9}rsicolor \u{2713} \u{1f600}",
        ),
        "close" => s("close"),
        "str-mixed" => {
            s("h\u{e9}llo w\u{f6}rld \u{2713} \u{1f600} \\ \n \r \0 \x1a \\u1234 \\U0001f600")
        }
        "str-256" => s(&"x".repeat(256)),
        "str-long" => s(&"\u{e9}".repeat(40000)),
        "bytes" => Value::Bytes(b"\x00\x01ab\xff".to_vec()),
        "bytes-empty" => Value::Bytes(Vec::new()),
        "bytes-300" => {
            let mut b: Vec<u8> = (0..=255).collect();
            b.extend_from_slice(&[b'x'; 44]);
            Value::Bytes(b)
        }
        "bytes-big" => Value::Bytes(vec![0xab; 70000]),
        "ints" => Value::List(
            [
                0,
                1,
                -1,
                255,
                256,
                65535,
                65536,
                -(1 << 31),
                (1 << 31) - 1,
                1 << 31,
                i64::MAX,
                i64::MIN,
                10_i64.pow(15),
            ]
            .into_iter()
            .map(Value::Int)
            .collect(),
        ),
        "floats" => Value::List(
            [
                0.0,
                -0.0,
                1.5,
                1e-300,
                f64::INFINITY,
                f64::NEG_INFINITY,
                5e-324,
            ]
            .into_iter()
            .map(Value::Float)
            .collect(),
        ),
        "nested" => Value::Dict(vec![
            (
                s("a"),
                Value::List(vec![
                    Value::Int(1),
                    Value::Float(2.5),
                    Value::None,
                    Value::Bool(true),
                    Value::Bool(false),
                ]),
            ),
            (
                s("b"),
                Value::Tuple(vec![Value::Int(1), s("x"), Value::Bytes(b"y".to_vec())]),
            ),
            (s("c"), Value::Dict(vec![(s("d"), Value::Tuple(vec![]))])),
            (
                s("e"),
                Value::List(vec![Value::List(vec![]), Value::Dict(vec![])]),
            ),
            (
                Value::Tuple(vec![Value::Int(1), Value::Int(2)]),
                s("tuple key"),
            ),
            (Value::Int(3), Value::Tuple(vec![Value::Int(1)])),
            (
                Value::Int(4),
                Value::Tuple((1..=3).map(Value::Int).collect()),
            ),
            (
                Value::Int(5),
                Value::Tuple((1..=4).map(Value::Int).collect()),
            ),
        ]),
        "shared" => {
            let x = Value::List(vec![Value::Int(1), Value::Int(2)]);
            Value::List(vec![x.clone(), x.clone(), Value::Dict(vec![(s("k"), x)])])
        }
        "flowers" => Value::List(vec![
            iris(SEED, "setosa"),
            iris(SEED, "setosa"),
            iris([4.9, 3.0, 1.4, 0.2], "setosa"),
        ]),
        "pickled-iris" => Value::Bytes(seed_inner),
        "empty" => Value::List(vec![
            Value::Tuple(vec![]),
            Value::List(vec![]),
            Value::Dict(vec![]),
            s(""),
        ]),
        "none" => Value::None,
        "true" => Value::Bool(true),
        other => panic!("no expectation for case {other}"),
    }
}

/// Compares through `Debug`, which tells `-0.0` from `0.0`.
fn assert_same(got: &Value, want: &Value, context: &str) {
    assert_eq!(format!("{got:?}"), format!("{want:?}"), "{context}");
}

#[test]
fn decodes_what_cpython_pickles_with_every_protocol() {
    let limits = Limits::default().allow_class("Iris");
    for python in pythons("decodes_what_cpython_pickles_with_every_protocol") {
        let script = format!("{PRELUDE}\n{DECODE_SCRIPT}");
        let output = run(&python, &script, &[&seed_dir()]);
        let mut count = 0;
        for line in output.lines() {
            let mut parts = line.split(' ');
            let (Some(name), Some(protocol), Some(data)) =
                (parts.next(), parts.next(), parts.next())
            else {
                panic!("bad line {line:?}");
            };
            let context = format!("{}: case {name}, protocol {protocol}", python.label);
            let bytes = unhex(data);
            let value = decode(&bytes, &limits).unwrap_or_else(|e| panic!("{context}: {e}"));
            assert_same(&value, &expected(name), &context);
            if let (Value::Bytes(inner), "pickled-iris") = (&value, name) {
                let flower = decode(inner, &limits).unwrap();
                assert_same(&flower, &iris(SEED, "setosa"), &context);
            }
            count += 1;
        }
        assert!(count >= 19 * 6, "{}: only {count} pickles", python.label);
        eprintln!("{}: decoded {count} pickles", python.label);
    }
}

const WRITE_SCRIPT: &str = r#"
from dataclasses import make_dataclass

def emit(label, obj):
    print(label + '|' + pickle.dumps(obj).hex())

def fresh(text):
    # A new str object, as when read from a file (not a shared literal).
    return ''.join(list(text))

def define(name, fields):
    cls = make_dataclass(name, fields)
    cls.__module__ = '__main__'
    globals()[name] = cls
    return cls

seed = Iris(5.1, 3.5, 1.4, 0.2, 'setosa')
emit('obj seed', seed)
emit('frame seed', pickle.dumps(seed))
with open(sys.argv[2]) as f:
    lines = [line for line in f.read().splitlines()[1:] if line.strip()]
for i, line in enumerate(lines):
    p = line.strip().split(',')
    flower = Iris(float(p[0]), float(p[1]), float(p[2]), float(p[3]), p[4])
    emit(f'obj {i}', flower)
    emit(f'frame {i}', pickle.dumps(flower))
emit('close', 'close')
for n in [0, 1, 2, 255, 256, 65535, 65536, 70000]:
    emit(f'str-a {n}', 'a' * n)
for n in [1, 127, 128, 32767, 32768, 40000]:
    emit(f'str-e {n}', '\u00e9' * n)
emit('str-mixed', 'h\u00e9llo w\u00f6rld \u2713 \U0001f600 \\ \n \r \x00')
for n in [0, 1, 255, 256, 65535, 65536, 70000]:
    emit(f'bytes {n}', bytes(i % 251 for i in range(n)))
for n in [40000, 65527, 65536, 70000]:
    emit(f'iris-big {n}', Iris(1.0, 2.0, 3.0, 4.0, fresh('s' * n)))
emit('iris-floats', Iris(float('nan'), -0.0, float('inf'), 5e-324, 'x'))
emit('iris-neg', Iris(float('-inf'), -1.5, 1e300, -2.2250738585072014e-308, ''))
D = define('D', [('x', str), ('y', str), ('z', float), ('w', str)])
for a, b in [(40000, 40000), (65530, 10), (30000, 70000), (1, 65536), (65527, 0)]:
    emit(f'd {a} {b}', D(fresh('a' * a), fresh('b' * b), 1.0, fresh('\u00e9' * a)))
emit('d x', D('x', 'x', 0.5, 'y'))
emit('d ab', D(fresh('ab'), fresh('ab'), 0.5, ''))
for n in [1, 2, 999, 1000, 1001, 2000, 2001]:
    E = define('E', [(f'f{i}', float) for i in range(n)])
    emit(f'e {n}', E(*[float(i) for i in range(n)]))
X = define('X', [('X', str), ('\u00e9', str)])
emit('x', X('X', '\u00e9'))
U = define('\u00dcn\u00ef', [('\u00f1ame', str)])
emit('u', U('\u00f1'))
Z = define('Z', [])
emit('z', Z())
"#;

fn our_pickles() -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut emit = |label: String, bytes: Vec<u8>| {
        assert!(out.insert(label, bytes).is_none());
    };
    let seed = dumps_object("iris", "Iris", &iris_fields(SEED, "setosa"));
    emit("frame seed".into(), dumps_bytes(&seed));
    emit("obj seed".into(), seed);
    let rows = iris_rows();
    assert_eq!(rows.len(), 150);
    for (i, (a, b, c, d, species)) in rows.iter().enumerate() {
        let obj = dumps_object("iris", "Iris", &iris_fields([*a, *b, *c, *d], species));
        emit(format!("frame {i}"), dumps_bytes(&obj));
        emit(format!("obj {i}"), obj);
    }
    emit("close".into(), dumps_str("close"));
    for n in [0, 1, 2, 255, 256, 65535, 65536, 70000] {
        emit(format!("str-a {n}"), dumps_str(&"a".repeat(n)));
    }
    for n in [1, 127, 128, 32767, 32768, 40000] {
        emit(format!("str-e {n}"), dumps_str(&"\u{e9}".repeat(n)));
    }
    emit(
        "str-mixed".into(),
        dumps_str("h\u{e9}llo w\u{f6}rld \u{2713} \u{1f600} \\ \n \r \0"),
    );
    for n in [0, 1, 255, 256, 65535, 65536, 70000] {
        let bytes: Vec<u8> = (0..n).map(|i| (i % 251) as u8).collect();
        emit(format!("bytes {n}"), dumps_bytes(&bytes));
    }
    for n in [40000, 65527, 65536, 70000] {
        let species = "s".repeat(n);
        let obj = dumps_object("iris", "Iris", &iris_fields([1.0, 2.0, 3.0, 4.0], &species));
        emit(format!("iris-big {n}"), obj);
    }
    emit(
        "iris-floats".into(),
        dumps_object(
            "iris",
            "Iris",
            &iris_fields([f64::NAN, -0.0, f64::INFINITY, 5e-324], "x"),
        ),
    );
    emit(
        "iris-neg".into(),
        dumps_object(
            "iris",
            "Iris",
            &iris_fields(
                [f64::NEG_INFINITY, -1.5, 1e300, -2.2250738585072014e-308],
                "",
            ),
        ),
    );
    let d = |x: &str, y: &str, z: f64, w: &str| {
        dumps_object(
            "__main__",
            "D",
            &[
                ("x", Field::Str(x)),
                ("y", Field::Str(y)),
                ("z", Field::Float(z)),
                ("w", Field::Str(w)),
            ],
        )
    };
    for (a, b) in [
        (40000, 40000),
        (65530, 10),
        (30000, 70000),
        (1, 65536),
        (65527, 0),
    ] {
        emit(
            format!("d {a} {b}"),
            d(&"a".repeat(a), &"b".repeat(b), 1.0, &"\u{e9}".repeat(a)),
        );
    }
    emit("d x".into(), d("x", "x", 0.5, "y"));
    emit("d ab".into(), d("ab", "ab", 0.5, ""));
    for n in [1, 2, 999, 1000, 1001, 2000, 2001] {
        let names: Vec<String> = (0..n).map(|i| format!("f{i}")).collect();
        let fields: Vec<(&str, Field<'_>)> = names
            .iter()
            .enumerate()
            .map(|(i, name)| (name.as_str(), Field::Float(i as f64)))
            .collect();
        emit(format!("e {n}"), dumps_object("__main__", "E", &fields));
    }
    emit(
        "x".into(),
        dumps_object(
            "__main__",
            "X",
            &[("X", Field::Str("X")), ("\u{e9}", Field::Str("\u{e9}"))],
        ),
    );
    emit(
        "u".into(),
        dumps_object(
            "__main__",
            "\u{dc}n\u{ef}",
            &[("\u{f1}ame", Field::Str("\u{f1}"))],
        ),
    );
    emit("z".into(), dumps_object("__main__", "Z", &[]));
    out
}

fn check_writer(python: &Python, ours: &BTreeMap<String, Vec<u8>>) {
    let csv = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/iris.csv");
    let script = format!("{PRELUDE}\n{WRITE_SCRIPT}");
    let output = run(python, &script, &[&seed_dir(), &csv.to_string_lossy()]);
    let mut seen = 0;
    for line in output.lines() {
        let (label, data) = line.split_once('|').unwrap();
        let want = unhex(data);
        let got = ours
            .get(label)
            .unwrap_or_else(|| panic!("{}: no Rust pickle for {label}", python.label));
        if *got != want {
            let at = got.iter().zip(&want).take_while(|(a, b)| a == b).count();
            panic!(
                "{}: {label}: bytes differ from offset {at} (ours {} bytes, CPython {} bytes)\n\
                 ours:    {}\ncpython: {}",
                python.label,
                got.len(),
                want.len(),
                hex(&got[at.saturating_sub(16)..(at + 32).min(got.len())]),
                hex(&want[at.saturating_sub(16)..(at + 32).min(want.len())]),
            );
        }
        seen += 1;
    }
    assert_eq!(
        seen,
        ours.len(),
        "{}: not every case was compared",
        python.label
    );
    eprintln!("{}: {seen} pickles identical", python.label);
}

#[test]
fn writer_matches_cpython_byte_for_byte() {
    let ours = our_pickles();
    for python in pythons("writer_matches_cpython_byte_for_byte") {
        check_writer(&python, &ours);
    }
}

#[test]
fn writer_output_decodes_back() {
    let limits = Limits::default().allow_class("Iris").allow_class("E");
    for (a, b, c, d, species) in iris_rows() {
        let inner = dumps_object("iris", "Iris", &iris_fields([a, b, c, d], &species));
        let frame = dumps_bytes(&inner);
        let Value::Bytes(bytes) = decode(&frame, &limits).unwrap() else {
            panic!("not bytes");
        };
        assert_eq!(bytes, inner);
        assert_same(
            &decode(&inner, &limits).unwrap(),
            &iris([a, b, c, d], &species),
            "row",
        );
    }
    assert_eq!(
        decode(&dumps_str("close"), &limits).unwrap(),
        Value::Str("close".into())
    );
    let names: Vec<String> = (0..2001).map(|i| format!("f{i}")).collect();
    let fields: Vec<(&str, Field<'_>)> = names
        .iter()
        .map(|name| (name.as_str(), Field::Float(1.0)))
        .collect();
    let Value::Object { state, .. } = decode(&dumps_object("m", "E", &fields), &limits).unwrap()
    else {
        panic!("not an object");
    };
    let Value::Dict(entries) = *state else {
        panic!("state is not a dict");
    };
    assert_eq!(entries.len(), 2001);
}
