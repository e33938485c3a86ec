//! Hostile and malformed pickles: each must be refused with a specific
//! error, quickly, without panicking.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use iris_pickle::{Limits, PickleError, Value, decode};

fn limits() -> Limits {
    Limits::default().allow_class("Iris")
}

fn refuse(pickle: &[u8]) -> PickleError {
    match decode(pickle, &limits()) {
        Ok(value) => panic!("accepted {pickle:?} as {value:?}"),
        Err(e) => e,
    }
}

fn assert_global(err: &PickleError, module: &str, name: &str) {
    match err {
        PickleError::GlobalNotAllowed {
            module: m, name: n, ..
        } => assert_eq!((m.as_str(), n.as_str()), (module, name)),
        other => panic!("expected GlobalNotAllowed for {module}.{name}, got {other:?}"),
    }
    let text = err.to_string();
    assert!(text.contains(&format!("global {module}.{name}")), "{text}");
    assert!(
        text.ends_with("(only plain data and objects of class Iris are accepted)"),
        "{text}"
    );
}

/// The seed client's frame (see tests/vectors.rs).
const SEED_FRAME: &[u8] = b"\x80\x04\x95\x99\x00\x00\x00\x00\x00\x00\x00C\x95\x80\x04\x95\x8a\x00\x00\x00\x00\x00\x00\x00\x8c\x04iris\x94\x8c\x04Iris\x94\x93\x94)\x81\x94}\x94(\x8c\x0csepal_length\x94G@\x14ffffff\x8c\x0bsepal_width\x94G@\x0c\x00\x00\x00\x00\x00\x00\x8c\x0cpetal_length\x94G?\xf6ffffff\x8c\x0bpetal_width\x94G?\xc9\x99\x99\x99\x99\x99\x9a\x8c\x07species\x94\x8c\x06setosa\x94ub.\x94.";

fn seed_inner() -> &'static [u8] {
    &SEED_FRAME[13..SEED_FRAME.len() - 2]
}

#[test]
fn os_system_via_global_and_reduce() {
    // The classic: class E: def __reduce__(self): return (os.system, ('id',))
    // pickle.dumps(E(), protocol=0) on Linux
    let err = refuse(b"cposix\nsystem\np0\n(Vid\np1\ntp2\nRp3\n.");
    assert_global(&err, "posix", "system");
    let err = refuse(b"cos\nsystem\n(S'echo pwned'\ntR.");
    assert_global(&err, "os", "system");
    assert_eq!(
        err.to_string(),
        "pickle refers to global os.system at offset 0, which is not allowed \
         (only plain data and objects of class Iris are accepted)"
    );
    assert_global(&refuse(b"cnt\nsystem\n(Vdir\ntR."), "nt", "system");
}

#[test]
fn builtins_eval_via_stack_global() {
    // pickle.dumps(E(), protocol=4) with __reduce__ returning (eval, ("1+1",))
    let pickle = b"\x80\x04\x95\x1f\x00\x00\x00\x00\x00\x00\x00\x8c\x08builtins\x94\x8c\x04eval\x94\x93\x94\x8c\x031+1\x94\x85\x94R\x94.";
    let err = refuse(pickle);
    assert_global(&err, "builtins", "eval");
    assert!(err.to_string().contains("at offset 29"), "{err}");
    assert_global(
        &refuse(b"\x80\x04\x8c\x08builtins\x8c\x07getattr\x93."),
        "builtins",
        "getattr",
    );
    assert_global(
        &refuse(b"\x80\x04\x8c\x08builtins\x8c\n__import__\x93."),
        "builtins",
        "__import__",
    );
}

#[test]
fn subprocess_popen() {
    // class P: def __reduce__(self): return (subprocess.Popen, (['id'],))
    // pickle.dumps(P(), protocol=2) (fix_imports names it commands.Popen)
    let err =
        refuse(b"\x80\x02ccommands\nPopen\nq\x00]q\x01X\x02\x00\x00\x00idq\x02a\x85q\x03Rq\x04.");
    assert_global(&err, "commands", "Popen");
    let err =
        refuse(b"\x80\x02csubprocess\nPopen\nq\x00]q\x01X\x02\x00\x00\x00idq\x02a\x85q\x03Rq\x04.");
    assert_global(&err, "subprocess", "Popen");
}

#[test]
fn allowlisted_names_only() {
    // The seed's object without Iris in the allowlist.
    let err = decode(seed_inner(), &Limits::default()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "pickle refers to global iris.Iris at offset 25, which is not allowed \
         (only plain data are accepted)"
    );
    // Iris tied to another module.
    let other = Limits::default().allow_class_in("flowers", "Iris");
    assert!(matches!(
        decode(seed_inner(), &other),
        Err(PickleError::GlobalNotAllowed { .. })
    ));
    // Another class name in the seed's shape.
    let rose = b"\x80\x04\x8c\x04iris\x8c\x04Rose\x93)\x81}b.";
    assert_global(&refuse(rose), "iris", "Rose");
    // A class, even an allowed one, may not be returned as a value.
    assert!(matches!(
        refuse(b"\x80\x04\x8c\x04iris\x8c\x04Iris\x93."),
        PickleError::GlobalAsValue { .. }
    ));
}

#[test]
fn reduce_is_only_for_the_known_shapes() {
    // Calling an allowed class with arguments: Iris(5.1)
    let err = refuse(b"ciris\nIris\n(F5.1\ntR.");
    assert!(
        matches!(
            err,
            PickleError::InvalidCall {
                opcode: "REDUCE",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("calling class iris.Iris"), "{err}");
    // Nested REDUCE: the object made by copy_reg._reconstructor called again.
    let nested = b"ccopy_reg\n_reconstructor\n(ciris\nIris\nc__builtin__\nobject\nNtR(tR.";
    let err = refuse(nested);
    assert!(
        matches!(
            err,
            PickleError::InvalidCall {
                opcode: "REDUCE",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("calls a object"), "{err}");
    // _codecs.encode applied to its own result.
    let twice = b"c_codecs\nencode\n(c_codecs\nencode\n(Vabc\nVlatin1\ntRVlatin1\ntR.";
    assert!(matches!(refuse(twice), PickleError::InvalidCall { .. }));
    // _codecs.encode with another codec.
    assert!(matches!(
        refuse(b"c_codecs\nencode\n(Vabc\nVrot13\ntR."),
        PickleError::InvalidCall { .. }
    ));
    // _codecs.encode of a string latin-1 cannot hold.
    assert!(matches!(
        refuse(b"c_codecs\nencode\n(V\\u20ac\nVlatin1\ntR."),
        PickleError::InvalidCall { .. }
    ));
    // _reconstructor with a base other than object, or a state.
    assert!(matches!(
        refuse(b"ccopy_reg\n_reconstructor\n(ciris\nIris\nciris\nIris\nNtR."),
        PickleError::InvalidCall { .. }
    ));
    assert!(matches!(
        refuse(b"ccopy_reg\n_reconstructor\n(ciris\nIris\nc__builtin__\nobject\nI1\ntR."),
        PickleError::InvalidCall { .. }
    ));
    // NEWOBJ with arguments, NEWOBJ_EX with keyword arguments.
    assert!(matches!(
        refuse(b"\x80\x04\x8c\x04iris\x8c\x04Iris\x93K\x01\x85\x81."),
        PickleError::InvalidCall {
            opcode: "NEWOBJ",
            ..
        }
    ));
    assert!(matches!(
        refuse(b"\x80\x04\x8c\x04iris\x8c\x04Iris\x93)}\x8c\x01aK\x01s\x92."),
        PickleError::InvalidCall {
            opcode: "NEWOBJ_EX",
            ..
        }
    ));
    // BUILD on a list, BUILD with a tuple state, BUILD twice.
    assert!(matches!(
        refuse(b"\x80\x04]}b."),
        PickleError::InvalidCall {
            opcode: "BUILD",
            ..
        }
    ));
    assert!(matches!(
        refuse(b"\x80\x04\x8c\x04iris\x8c\x04Iris\x93)\x81})\x86b."),
        PickleError::InvalidCall {
            opcode: "BUILD",
            ..
        }
    ));
}

fn object(state: Vec<(Value, Value)>) -> Value {
    Value::Object {
        module: "iris".into(),
        name: "Iris".into(),
        state: Box::new(Value::Dict(state)),
    }
}

fn s(text: &str) -> Value {
    Value::Str(text.to_owned())
}

/// CPython's `load_build` copies the state dict's items into the instance
/// at `BUILD` time: what the pickle does to the dict afterwards (through the
/// memo) does not reach the object.
#[test]
fn build_copies_the_state_like_cpython() {
    // Iris(), state {'a': 1} memoized as 0, BUILD, then d['a'] = 2 and
    // d['b'] = 3 through the memo: CPython's object has a == 1 and no b.
    let mutated = b"\x80\x04\x8c\x04iris\x8c\x04Iris\x93)\x81}\x94\x8c\x01aK\x01sb\
                    h\x00\x8c\x01aK\x02s\x8c\x01bK\x03s0.";
    assert_eq!(
        decode(mutated, &limits()).unwrap(),
        object(vec![(s("a"), Value::Int(1))])
    );
    // An empty dict at BUILD, filled afterwards: CPython's object has no
    // attributes at all (the seed listener then raises AttributeError).
    let filled_late = b"\x80\x04\x8c\x04iris\x8c\x04Iris\x93)\x81}\x94b\
                        h\x00\x8c\x01aK\x01s0.";
    assert_eq!(decode(filled_late, &limits()).unwrap(), object(vec![]));
    // A second BUILD updates the attributes, as in CPython.
    let twice = b"\x80\x04\x8c\x04iris\x8c\x04Iris\x93)\x81}\x8c\x01aK\x01sb\
                  }\x8c\x01aK\x02s\x8c\x01bK\x03sb.";
    assert_eq!(
        decode(twice, &limits()).unwrap(),
        object(vec![(s("a"), Value::Int(2)), (s("b"), Value::Int(3))])
    );
    // Repeating BUILD with a big dict is charged like the values it copies.
    let mut flood = b"\x80\x04\x8c\x04iris\x8c\x04Iris\x93)\x81}\x94(".to_vec();
    for i in 0..200u8 {
        flood.extend_from_slice(&[b'K', i, b'N']);
    }
    flood.push(b'u');
    flood.push(b'0');
    for _ in 0..100 {
        flood.extend_from_slice(b"h\x00b");
    }
    flood.push(b'.');
    let err = decode(&flood, &limits().with_max_values(10_000)).unwrap_err();
    assert_eq!(err, PickleError::ValueLimit { limit: 10_000 });
}

#[test]
fn forbidden_and_unknown_opcodes() {
    let cases: [(&[u8], &str); 10] = [
        (b"(iiris\nIris\n.", "INST"),
        (b"(ciris\nIris\no.", "OBJ"),
        (b"P1\n.", "PERSID"),
        (b"K\x01Q.", "BINPERSID"),
        (b"\x80\x02\x82\x01.", "EXT1"),
        (b"\x80\x02\x83\x01\x00.", "EXT2"),
        (b"\x80\x02\x84\x01\x00\x00\x00.", "EXT4"),
        (b"\x80\x04\x8f.", "EMPTY_SET"),
        (b"\x80\x04(\x91.", "FROZENSET"),
        (b"\x80\x05\x97.", "NEXT_BUFFER"),
    ];
    for (pickle, opcode) in cases {
        match refuse(pickle) {
            PickleError::ForbiddenOpcode { opcode: got, .. } => assert_eq!(got, opcode),
            other => panic!("{opcode}: got {other:?}"),
        }
    }
    let err = refuse(b"\x80\x04N\xff.");
    assert_eq!(
        err,
        PickleError::UnknownOpcode {
            byte: 0xff,
            offset: 3
        }
    );
    assert_eq!(err.to_string(), "unknown pickle opcode 0xff at offset 3");
    assert_eq!(
        refuse(b"\x80\x06N."),
        PickleError::UnsupportedProtocol {
            version: 6,
            offset: 0
        }
    );
}

/// a = []; b = [a] * 10; c = [b] * 10; ... 30 levels through the memo:
/// 10**30 values if expanded.
fn billion_laughs() -> Vec<u8> {
    let mut pickle = b"\x80\x04]\x940".to_vec();
    for level in 1..=30u8 {
        pickle.push(b'(');
        for _ in 0..10 {
            pickle.extend_from_slice(&[b'h', level - 1]);
        }
        pickle.extend_from_slice(b"l\x94");
        if level < 30 {
            pickle.push(b'0'); // POP: the level lives on in the memo
        }
    }
    pickle.push(b'.');
    pickle
}

#[test]
fn billion_laughs_fails_on_budget_quickly() {
    let start = Instant::now();
    let err = refuse(&billion_laughs());
    assert_eq!(
        err,
        PickleError::ValueLimit {
            limit: Limits::DEFAULT_MAX_VALUES
        }
    );
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
    // With a small budget it is immediate.
    let small = limits().with_max_values(1000);
    assert_eq!(
        decode(&billion_laughs(), &small),
        Err(PickleError::ValueLimit { limit: 1000 })
    );
}

#[test]
fn shared_big_string_fails_on_byte_budget() {
    // s = 'x' * 1_000_000; [s] * 1000 (via BINGET): 1 GB if copied.
    let mut pickle = b"\x80\x04X\x40\x42\x0f\x00".to_vec();
    pickle.extend(std::iter::repeat_n(b'x', 1_000_000));
    pickle.extend_from_slice(b"\x94(");
    for _ in 0..1000 {
        pickle.extend_from_slice(b"h\x00");
    }
    pickle.extend_from_slice(b"l.");
    // The string itself is memoized and on the stack: pop it first.
    let pickle = [&pickle[..1_000_008], b"0", &pickle[1_000_008..]].concat();
    let start = Instant::now();
    assert_eq!(
        refuse(&pickle),
        PickleError::ByteLimit {
            limit: Limits::DEFAULT_MAX_TOTAL_BYTES
        }
    );
    assert!(start.elapsed() < Duration::from_secs(10));
}

#[test]
fn ten_thousand_nested_lists_hit_the_depth_limit() {
    // 10,000 EMPTY_LIST then 9,999 APPEND: [[[[...]]]]
    let mut pickle = b"\x80\x04".to_vec();
    pickle.extend(std::iter::repeat_n(b']', 10_000));
    pickle.extend(std::iter::repeat_n(b'a', 9_999));
    pickle.push(b'.');
    assert_eq!(
        refuse(&pickle),
        PickleError::DepthLimit {
            limit: Limits::DEFAULT_MAX_DEPTH
        }
    );
    // Same through MARK ... LIST.
    let mut marks = b"\x80\x04".to_vec();
    marks.extend(std::iter::repeat_n(b'(', 10_000));
    marks.extend(std::iter::repeat_n(b'l', 10_000));
    marks.push(b'.');
    assert!(matches!(refuse(&marks), PickleError::DepthLimit { .. }));
    // Raising the limit is clamped, so a million levels still fail cleanly.
    let deep = limits().with_max_depth(usize::MAX);
    assert_eq!(deep.max_depth(), Limits::MAX_DEPTH_CEILING);
    let mut million = b"\x80\x04".to_vec();
    million.extend(std::iter::repeat_n(b']', 1_000_000));
    million.extend(std::iter::repeat_n(b'a', 999_999));
    million.push(b'.');
    assert!(matches!(
        decode(&million, &deep),
        Err(PickleError::DepthLimit { limit: 512 })
    ));
    // Exactly at the limit is fine.
    let mut ok = b"\x80\x04".to_vec();
    ok.extend(std::iter::repeat_n(b']', 32));
    ok.extend(std::iter::repeat_n(b'a', 31));
    ok.push(b'.');
    assert!(decode(&ok, &limits()).is_ok());
}

#[test]
fn self_containing_list() {
    // l = []; l.append(l); pickle.dumps(l)
    let pickle = b"\x80\x04\x95\x06\x00\x00\x00\x00\x00\x00\x00]\x94h\x00a.";
    assert_eq!(refuse(pickle), PickleError::RecursiveStructure);
    // via DUP
    assert_eq!(refuse(b"]2a."), PickleError::RecursiveStructure);
}

#[test]
fn declared_length_beyond_input() {
    // BINUNICODE claiming 60,000,000 bytes with 3 present.
    let pickle = b"\x80\x04X\x00\x87\x93\x03abc";
    assert_eq!(
        refuse(pickle),
        PickleError::Truncated {
            opcode: "BINUNICODE",
            offset: 2,
            needed: 60_000_000,
            available: 3,
        }
    );
    assert_eq!(
        refuse(pickle).to_string(),
        "pickle truncated: BINUNICODE at offset 2 needs 60000000 more bytes but only 3 remain"
    );
    // BINBYTES8 / BINUNICODE8 / BYTEARRAY8 claiming 2**64 - 1.
    for op in [0x8e_u8, 0x8d, 0x96] {
        let mut pickle = vec![0x80, 0x05, op];
        pickle.extend_from_slice(&u64::MAX.to_le_bytes());
        pickle.extend_from_slice(b"ab.");
        assert!(matches!(
            refuse(&pickle),
            PickleError::Truncated {
                needed: u64::MAX,
                ..
            }
        ));
    }
    // LONG4 with a huge or negative length.
    assert!(matches!(
        refuse(b"\x8b\xff\xff\xff\x7f\x00."),
        PickleError::Truncated { .. }
    ));
    assert!(matches!(
        refuse(b"\x8b\xff\xff\xff\xff\x00."),
        PickleError::InvalidArgument { .. }
    ));
    // A frame longer than the input.
    assert!(matches!(
        refuse(b"\x80\x04\x95\xff\x00\x00\x00\x00\x00\x00\x00N."),
        PickleError::Truncated {
            opcode: "FRAME",
            ..
        }
    ));
}

#[test]
fn real_sixty_megabyte_string_over_the_limit() {
    let len: u32 = 60_000_000;
    let mut pickle = b"\x80\x04X".to_vec();
    pickle.extend_from_slice(&len.to_le_bytes());
    pickle.extend(std::iter::repeat_n(b'a', len as usize));
    pickle.push(b'.');
    let small = limits().with_max_str_len(1 << 20);
    assert_eq!(
        decode(&pickle, &small),
        Err(PickleError::StringTooLong {
            opcode: "BINUNICODE",
            offset: 2,
            len: 60_000_000,
            limit: 1 << 20,
        })
    );
    // The default (16 MiB) refuses it too; a generous limit accepts it.
    assert!(matches!(refuse(&pickle), PickleError::StringTooLong { .. }));
    let big = limits()
        .with_max_str_len(64 << 20)
        .with_max_total_bytes(64 << 20);
    let Ok(Value::Str(text)) = decode(&pickle, &big) else {
        panic!("not accepted with a 64 MiB limit");
    };
    assert_eq!(text.len(), 60_000_000);
}

#[test]
fn truncated_at_every_offset() {
    for data in [SEED_FRAME, seed_inner()] {
        for end in 0..data.len() {
            let err = decode(&data[..end], &limits()).unwrap_err();
            assert!(!err.to_string().is_empty());
        }
        assert!(decode(data, &limits()).is_ok());
    }
}

#[test]
fn every_single_byte_mutation_is_handled() {
    // No panic for any one-byte change of the seed frame or its inner
    // pickle; the result may be Ok (e.g. a changed float) or Err.
    for data in [SEED_FRAME, seed_inner()] {
        let mut copy = data.to_vec();
        for i in 0..copy.len() {
            let original = copy[i];
            for byte in 0..=255u8 {
                copy[i] = byte;
                if let Ok(Value::Bytes(inner)) = decode(&copy, &limits()) {
                    let _ = decode(&inner, &limits());
                }
            }
            copy[i] = original;
        }
    }
}

#[test]
fn stack_and_memo_misuse() {
    assert!(matches!(
        refuse(b"a."),
        PickleError::StackUnderflow {
            opcode: "APPEND",
            ..
        }
    ));
    assert!(matches!(
        refuse(b"N(a."),
        PickleError::StackUnderflow { .. }
    ));
    assert!(matches!(
        refuse(b"Ne."),
        PickleError::MissingMark {
            opcode: "APPENDS",
            ..
        }
    ));
    assert!(matches!(
        refuse(b"NNa."),
        PickleError::WrongType {
            opcode: "APPEND",
            expected: "a list",
            found: "None",
            ..
        }
    ));
    assert!(matches!(
        refuse(b"}]Ns."),
        PickleError::WrongType {
            expected: "a hashable dict key",
            found: "list",
            ..
        }
    ));
    assert!(matches!(
        refuse(b"(NNNd."),
        PickleError::InvalidArgument { opcode: "DICT", .. }
    ));
    assert_eq!(
        refuse(b"h\x05."),
        PickleError::MemoMissing {
            opcode: "BINGET",
            offset: 0,
            index: 5
        }
    );
    assert!(matches!(
        refuse(b"\x94."),
        PickleError::StackUnderflow {
            opcode: "MEMOIZE",
            ..
        }
    ));
    let few = limits().with_max_memo(2);
    assert_eq!(
        decode(b"N\x94\x94q\x05N\x94.", &few),
        Err(PickleError::MemoLimit {
            offset: 3,
            limit: 2
        })
    );
    assert!(matches!(
        refuse(b"\x80\x02\x8a\x09\x00\x00\x00\x00\x00\x00\x00\x00\x01."),
        PickleError::IntTooLarge {
            opcode: "LONG1",
            ..
        }
    ));
    assert!(matches!(
        refuse(b"L99999999999999999999L\n."),
        PickleError::IntTooLarge { opcode: "LONG", .. }
    ));
    assert!(matches!(
        refuse(b"Ix\n."),
        PickleError::InvalidArgument { opcode: "INT", .. }
    ));
    assert!(matches!(
        refuse(b"Fx\n."),
        PickleError::InvalidArgument {
            opcode: "FLOAT",
            ..
        }
    ));
    assert!(matches!(
        refuse(b"X\x02\x00\x00\x00\xc3\x28."),
        PickleError::InvalidArgument {
            opcode: "BINUNICODE",
            ..
        }
    ));
    assert!(matches!(
        refuse(b"V\\ud800\n."),
        PickleError::InvalidArgument {
            opcode: "UNICODE",
            ..
        }
    ));
    assert!(matches!(
        refuse(b"\x80\x04\x8c\x01a\x8c\x01bK\x01\x93."),
        PickleError::InvalidArgument {
            opcode: "STACK_GLOBAL",
            ..
        }
    ));
}

#[test]
fn stop_and_frames() {
    assert_eq!(refuse(b""), PickleError::MissingStop { offset: 0 });
    assert_eq!(refuse(b"\x80\x04N"), PickleError::MissingStop { offset: 3 });
    assert_eq!(
        refuse(b"."),
        PickleError::BadStop {
            offset: 0,
            values: 0,
            marks: 0
        }
    );
    assert_eq!(
        refuse(b"NN."),
        PickleError::BadStop {
            offset: 2,
            values: 2,
            marks: 0
        }
    );
    assert_eq!(
        refuse(b"N(."),
        PickleError::BadStop {
            offset: 2,
            values: 1,
            marks: 1
        }
    );
    assert_eq!(
        refuse(b"N.N."),
        PickleError::TrailingBytes {
            offset: 2,
            count: 2
        }
    );
    // An opcode straddling the end of its frame.
    assert!(matches!(
        refuse(b"\x80\x04\x95\x03\x00\x00\x00\x00\x00\x00\x00NM\x01\x00."),
        PickleError::Frame { .. }
    ));
    // As in CPython, an argument that starts right after the frame is fine.
    assert_eq!(
        decode(
            b"\x80\x04\x95\x02\x00\x00\x00\x00\x00\x00\x00]K\x01a.",
            &limits()
        ),
        Ok(Value::List(vec![Value::Int(1)]))
    );
    // A frame opened inside another.
    assert!(matches!(
        refuse(
            b"\x80\x04\x95\x0a\x00\x00\x00\x00\x00\x00\x00\x95\x01\x00\x00\x00\x00\x00\x00\x00N."
        ),
        PickleError::Frame { .. }
    ));
    // A line argument crossing the frame end.
    assert!(matches!(
        refuse(b"\x80\x04\x95\x02\x00\x00\x00\x00\x00\x00\x00I1\n."),
        PickleError::Frame { .. }
    ));
}

#[test]
fn error_messages_are_lowercase_without_period() {
    let errors = [
        refuse(b""),
        refuse(b"cos\nsystem\n."),
        refuse(b"\x80\x04X\x00\x87\x93\x03abc"),
        refuse(b"a."),
        refuse(&billion_laughs()),
        refuse(b"(iiris\nIris\n."),
        refuse(b"N.N."),
        refuse(b"]2a."),
    ];
    for err in errors {
        let text = err.to_string();
        let first = text.chars().next().unwrap();
        assert!(!first.is_uppercase(), "{text}");
        assert!(!text.ends_with('.'), "{text}");
    }
}

/// Opcodes that grow the stack without creating a value (`DUP`, memo
/// `GET`, `MARK`) are bounded like values.
#[test]
fn stack_floods_hit_the_value_limit() {
    let limits = limits().with_max_values(1000);
    for (name, unit) in [("DUP", &b"2"[..]), ("GET", b"h\x00"), ("MARK", b"(")] {
        let mut pickle = b"\x80\x04N\x94".to_vec();
        pickle.extend_from_slice(&unit.repeat(2000));
        pickle.push(b'.');
        let err = decode(&pickle, &limits).unwrap_err();
        assert!(
            matches!(err, PickleError::StackLimit { limit: 1000, .. }),
            "{name}: {err:?}"
        );
    }
}

/// The input's length is checked before its first opcode.
#[test]
fn long_inputs_are_refused_unread() {
    let limits = limits().with_max_input_len(16);
    // Garbage that would be an error anywhere else: the length comes first.
    let err = decode(&[0xff; 17], &limits).unwrap_err();
    assert_eq!(err, PickleError::InputTooLong { len: 17, limit: 16 });
    assert_eq!(
        err.to_string(),
        "pickle of 17 bytes is longer than the limit of 16 bytes; refused without decoding"
    );
    assert!(decode(b"\x80\x04N.", &limits).is_ok());
}

/// `_codecs.encode` of a memoized string, called again and again, makes a
/// new bytes value each time: the copies count against `max_total_bytes`
/// even when they are dropped. (`REDUCE` of a wrong shape, such as a large
/// memoized tuple, is refused at the first call.)
#[test]
fn repeated_calls_on_memoized_arguments_stay_bounded() {
    // _codecs.encode('x' * 1000, 'latin1') over and over, popping each.
    let mut pickle = b"\x80\x02c_codecs\nencode\nq\x00X\xe8\x03\x00\x00".to_vec();
    pickle.extend_from_slice(&[b'x'; 1000]);
    pickle.extend_from_slice(b"X\x06\x00\x00\x00latin1\x86q\x01");
    pickle.extend_from_slice(&b"h\x00h\x01R0".repeat(100));
    pickle.extend_from_slice(b"N.");
    let err = decode(&pickle, &limits().with_max_total_bytes(50_000)).unwrap_err();
    assert_eq!(err, PickleError::ByteLimit { limit: 50_000 });
}
