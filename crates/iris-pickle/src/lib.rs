//! Safe reading and exact writing of the Python pickles that
//! `multiprocessing.connection` clients exchange with `iris`.
//!
//! * [`decode`] runs a pickle (protocols 0 to 5) in a restricted stack
//!   machine that only builds plain data ([`Value`]) and objects of classes
//!   the caller allowlists in [`Limits`]. It never imports or calls
//!   anything, and every kind of growth is bounded.
//! * [`dumps_str`], [`dumps_bytes`] and [`dumps_object`] (and their
//!   `write_*_into` forms) produce exactly the bytes CPython 3.11 to 3.13
//!   `pickle.dumps(obj)` produces for a `str`, a `bytes` and a plain object
//!   such as the `iris.Iris` dataclass.
//!
//! This is a pure library: no I/O, and no knowledge of the `Iris` type
//! beyond what the caller passes in.
//!
//! # Example: the seed client's frame
//!
//! The seed client pickles its flower and sends the pickle with
//! `Connection.send`, which pickles it *again*: the frame on the wire is a
//! pickle of a `bytes` whose content is the pickle of the object. Undoing
//! that is the caller's business, by calling [`decode`] twice:
//!
//! ```
//! use iris_pickle::{Limits, Value, decode};
//!
//! // pickle.dumps(pickle.dumps(Iris(5.1, 3.5, 1.4, 0.2, 'setosa'))), as sent by
//! // the seed's multiprocessing-client.py (tests/seed/, CPython 3.11).
//! let frame: &[u8] = b"\x80\x04\x95\x99\x00\x00\x00\x00\x00\x00\x00C\x95\
//!     \x80\x04\x95\x8a\x00\x00\x00\x00\x00\x00\x00\x8c\x04iris\x94\x8c\x04Iris\x94\x93\x94)\
//!     \x81\x94}\x94(\x8c\x0csepal_length\x94G@\x14ffffff\x8c\x0bsepal_width\x94\
//!     G@\x0c\x00\x00\x00\x00\x00\x00\x8c\x0cpetal_length\x94G?\xf6ffffff\x8c\x0bpetal_width\
//!     \x94G?\xc9\x99\x99\x99\x99\x99\x9a\x8c\x07species\x94\x8c\x06setosa\x94ub.\x94.";
//!
//! let limits = Limits::default().allow_class("Iris");
//! let Value::Bytes(inner) = decode(frame, &limits)? else {
//!     panic!("the outer pickle holds bytes");
//! };
//! let flower = decode(&inner, &limits)?;
//! assert_eq!(
//!     flower,
//!     Value::Object {
//!         module: "iris".into(),
//!         name: "Iris".into(),
//!         state: Box::new(Value::Dict(vec![
//!             (Value::Str("sepal_length".into()), Value::Float(5.1)),
//!             (Value::Str("sepal_width".into()), Value::Float(3.5)),
//!             (Value::Str("petal_length".into()), Value::Float(1.4)),
//!             (Value::Str("petal_width".into()), Value::Float(0.2)),
//!             (Value::Str("species".into()), Value::Str("setosa".into())),
//!         ])),
//!     }
//! );
//! assert_eq!(flower.get("species").and_then(Value::as_str), Some("setosa"));
//!
//! // The writer reproduces the frame byte for byte.
//! use iris_pickle::{Field, dumps_bytes, dumps_object};
//! let again = dumps_bytes(&dumps_object("iris", "Iris", &[
//!     ("sepal_length", Field::Float(5.1)),
//!     ("sepal_width", Field::Float(3.5)),
//!     ("petal_length", Field::Float(1.4)),
//!     ("petal_width", Field::Float(0.2)),
//!     ("species", Field::Str("setosa")),
//! ]));
//! assert_eq!(again, frame);
//!
//! // Without the allowlist entry the object is refused.
//! let err = decode(&inner, &Limits::default()).unwrap_err();
//! assert_eq!(
//!     err.to_string(),
//!     "pickle refers to global iris.Iris at offset 25, which is not allowed \
//!      (only plain data are accepted)"
//! );
//! # Ok::<(), iris_pickle::PickleError>(())
//! ```
//!
//! Checking that the state dict has exactly the expected fields and types is
//! also the caller's business.
//!
//! # What is decoded
//!
//! `None`, `bool`, `int` (within `i64`), `float`, `str`, `bytes` (and
//! protocol 5 `bytearray`, as bytes), `tuple`, `list`, `dict`, and objects of
//! allowlisted classes, in every encoding CPython uses for them in
//! protocols 0 to 5, including the Python 2 `str` opcodes (`STRING`,
//! `BINSTRING`, `SHORT_BINSTRING`, decoded as ASCII like `pickle.loads`).
//! Objects are accepted only in the shapes CPython emits for a plain
//! instance: `NEWOBJ` (or `NEWOBJ_EX` with empty keyword arguments) with an
//! empty argument tuple, or, in protocols 0 and 1,
//! `copyreg._reconstructor(cls, object, None)` via `REDUCE`; then
//! optional `BUILD`s with dict states. `BUILD` follows CPython's
//! `load_build` for an object without `__setstate__`: the state dict's
//! items are copied into the object when `BUILD` runs, so a pickle that
//! changes the dict afterwards (through the memo) leaves the object as it
//! was, exactly as `pickle.loads` does, and a second `BUILD` updates the
//! attributes. Shared values (memo `GET`s, `DUP`) come out as copies.
//!
//! # Security
//!
//! Refused outright, with an error naming the opcode, offset or global:
//!
//! * every global except `copyreg._reconstructor` / `copy_reg._reconstructor`,
//!   `builtins.object` / `__builtin__.object` (only as the arguments of the
//!   object shape above), `_codecs.encode` (only as
//!   `_codecs.encode(str, 'latin1')`, protocols 0 to 2's encoding of
//!   `bytes`), `builtins.bytes` / `__builtin__.bytes` (only called with no
//!   arguments: `b''` in protocols 0 to 2), and the allowlisted classes.
//!   So `os.system`, `posix.system`, `nt.system`, `subprocess.Popen`,
//!   `builtins.eval`, `builtins.getattr` and all the rest are refused at the
//!   `GLOBAL` / `STACK_GLOBAL` that names them;
//! * `REDUCE` of anything but the three shapes above (including calling an
//!   allowlisted class), `NEWOBJ` with arguments, `BUILD` on anything but an
//!   object or with a non-dict state;
//! * the opcodes `INST` and `OBJ` (they call a class), `PERSID` and
//!   `BINPERSID` (references outside the pickle), `EXT1`, `EXT2` and `EXT4`
//!   (registry codes for globals), `NEXT_BUFFER` and `READONLY_BUFFER`
//!   (out-of-band buffers), the set opcodes `EMPTY_SET`, `ADDITEMS` and
//!   `FROZENSET` (sets are not part of [`Value`]), unknown opcodes, and
//!   protocols above 5;
//! * malformed input: truncation anywhere (never a panic: a declared length
//!   past the end of the input is refused before anything is allocated),
//!   frames that are shorter than they claim or that an opcode straddles,
//!   stack underflow, missing marks, memo lookups of unknown entries, values
//!   of the wrong type for an opcode, integers beyond `i64`, invalid UTF-8,
//!   lone surrogates, list or dict keys, containers that contain
//!   themselves, a class left as a bare value, anything but exactly one
//!   value at `STOP`, and bytes after `STOP`.
//!
//! Bounds, all in [`Limits`] (defaults in brackets):
//!
//! * [`max_input_len`](Limits::max_input_len) (64 MiB): the whole pickle,
//!   checked before its first opcode is read;
//! * [`max_depth`](Limits::max_depth) (32, at most 512): container nesting
//!   in the result;
//! * [`max_values`](Limits::max_values) (1,000,000): values created while
//!   running the pickle (and the items `BUILD` copies), values and marks on
//!   the stack at once, and, separately, values in the result;
//! * [`max_memo`](Limits::max_memo) (1,000,000): memo entries;
//! * [`max_str_len`](Limits::max_str_len) (16 MiB): one string or bytes,
//!   checked from its declared length before it is read (protocol 0's
//!   escaped strings: as soon as the decoded text outgrows it);
//! * [`max_total_bytes`](Limits::max_total_bytes) (64 MiB): all string and
//!   bytes content of the result.
//!
//! The decoder is an explicit stack machine: no recursion, whatever the
//! input. While it runs, values live in an arena and the stack, the memo and
//! the containers refer to them by index, so a memo `GET` or a `DUP` costs
//! one index, never a copy, and the arena grows by at most one value per
//! opcode. Only at `STOP` is the result turned into an owned [`Value`] tree
//! (iteratively too); that is where a shared value becomes one copy per
//! place it appears, and every copy, and every byte of copied strings, is
//! charged against `max_values` and `max_total_bytes`. An index-sharing
//! arena was chosen over `Rc`-shared values because Python memoizes a
//! container *before* filling it, so sharing must be by reference while the
//! pickle runs, while a plain owned tree is the simplest result for callers;
//! charging the copies makes a "billion laughs" memo bomb fail after at most
//! `max_values` steps, with memory bounded accordingly.
//!
//! # Threat model
//!
//! The input is hostile: anyone who can get bytes to the caller may have
//! written it, knowing this decoder. What [`decode`] guarantees, whatever
//! the input and for any [`Limits`]:
//!
//! * **No code runs.** Nothing is imported, called or looked up by name;
//!   globals resolve only to the fixed helpers above and to class names the
//!   caller allowlists, which only label data.
//! * **No panic, no recursion.** Malformed input is an error naming the
//!   opcode and offset; nesting costs heap, not stack.
//! * **Time linear in the input**, with a small constant per byte, plus at
//!   most `max_values` steps and `max_total_bytes` bytes copied to build the
//!   result; an input over `max_input_len` costs one comparison.
//! * **Memory bounded by the limits**, never by what the pickle claims: at
//!   most `max_values` arena values (about 64 bytes each) and stack entries,
//!   `max_memo` memo entries, strings read from the input (no more than
//!   twice its length, each at most `max_str_len`) plus at most
//!   `max_total_bytes` made by `_codecs.encode` calls, and a result of at
//!   most `max_values` values and `max_total_bytes` bytes of strings.
//!
//! What it does not decide: how large an input to accept. The defaults suit
//! general data up to 64 MiB, which is too much for a server that expects
//! small messages: **size the limits to the data**. The iris listener, which
//! expects one flower per pickle (about 150 bytes), decodes at most 4 KiB
//! with 4,096 values, 1,024 memo entries and 8 KiB of strings, so one frame
//! costs it well under a megabyte and a few milliseconds at worst
//! (`iris_protocol::python`). Checking the result's shape (which attributes,
//! which types) is the caller's job too.
//!
//! # Why not serde-pickle
//!
//! `serde-pickle` 1.2 was evaluated first. Its `Value` has no object
//! variant: `NEWOBJ`, `REDUCE` and `BUILD` of an unknown class yield the
//! state dict (or an opaque placeholder) and the class name is dropped, so
//! a caller cannot tell an `iris.Iris` from any other object. Globals are
//! not refused by name: any unknown one, `os.system` included, becomes an
//! opaque placeholder that only fails ("unresolved global") if it survives
//! into the result; used as the class of `NEWOBJ` + `BUILD`, it silently
//! vanishes and the state dict comes back as if it were the object
//! (nothing is executed, but the class is never checked). Memo
//! references are resolved by cloning the memoized value on every use with
//! no budget, so a memo bomb expands exponentially, and nesting depth is not
//! bounded. Hence this restricted decoder.
//!
//! # Writer
//!
//! The `dumps_*` functions follow CPython's C pickler, including its
//! framing (`FRAME` only for a frame body of 4 bytes or more, a new frame
//! after 64 KiB, strings and bytes of 64 KiB or more outside frames), the
//! choice of `SHORT_BINUNICODE` / `BINUNICODE` / `BINUNICODE8` and
//! `SHORT_BINBYTES` / `BINBYTES` / `BINBYTES8` by length, `MEMOIZE` after
//! each string, bytes, class and object, and dict batching. The tests check
//! them against every CPython 3.11 to 3.13 they find. Python 3.14 defaults
//! to protocol 5, whose output for these values differs only in the
//! `PROTO` byte; these functions always write protocol 4, which 3.14 reads.
//!
//! # Fuzzing
//!
//! The workspace's `fuzz/` project has two targets for this crate:
//! `pickle_decode` decodes arbitrary bytes with the default limits and
//! decodes a returned `bytes` once more; `python_frame` decodes a frame as
//! the iris listener does, with its tight limits. `cargo xtask fuzz
//! pickle_decode python_frame --seconds 300` runs them (it needs the
//! nightly toolchain and installs cargo-fuzz). Their seeds,
//! `fuzz/seeds/<target>/`, hold the seed client's frames, `Iris` pickles in
//! protocols 0 to 5 (with float and with int measurements), every class of
//! expansion bomb at 4 KiB, direct and wrapped the seed's way, and pickles
//! that change a state dict after `BUILD`.

mod decode;
mod encode;
mod error;
mod limits;
mod opcodes;
mod value;

pub use decode::decode;
pub use encode::{
    Field, dumps_bytes, dumps_object, dumps_str, write_bytes_into, write_object_into,
    write_str_into,
};
pub use error::PickleError;
pub use limits::Limits;
pub use value::Value;
