//! A writer for the few pickles the project sends, byte-for-byte what
//! CPython 3.11 to 3.13 `pickle.dumps(obj)` (protocol 4) produces.
//!
//! It follows CPython's pickler step by step: `PROTO 4`, then framing as in
//! `pickle._Framer` (a frame is closed when it reaches 64 KiB at the start of
//! saving the next object, or at the end; a frame body under 4 bytes gets no
//! `FRAME` header; a string or bytes of 64 KiB or more is written outside any
//! frame), `MEMOIZE` after every string, bytes, class and object, and the C
//! pickler's dict batching (`MARK ... SETITEMS` per 1000 items, a lone
//! `SETITEM` for a one-item dict).

use crate::opcodes as op;

const PROTOCOL: u8 = 4;
const FRAME_SIZE_MIN: usize = 4;
const FRAME_SIZE_TARGET: usize = 64 * 1024;
const FRAME_HEADER_SIZE: usize = 9;
const BATCH_SIZE: usize = 1000;

/// One attribute value of an object written by [`dumps_object`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Field<'a> {
    /// A Python `float`, written as `BINFLOAT` (8 bytes, big-endian).
    Float(f64),
    /// A Python `str`.
    Str(&'a str),
}

/// `pickle.dumps(s)` for a `str`, protocol 4.
///
/// ```
/// // pickle.dumps('close')
/// assert_eq!(
///     iris_pickle::dumps_str("close"),
///     b"\x80\x04\x95\x09\x00\x00\x00\x00\x00\x00\x00\x8c\x05close\x94.",
/// );
/// ```
pub fn dumps_str(s: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len() + 24);
    write_str_into(&mut out, s);
    out
}

/// Appends `pickle.dumps(s)` for a `str` to `out`; see [`dumps_str`].
pub fn write_str_into(out: &mut Vec<u8>, s: &str) {
    let mut pickler = Pickler::new(out);
    pickler.save_str(s);
    pickler.finish();
}

/// `pickle.dumps(b)` for a `bytes`, protocol 4. This is what
/// `Connection.send(payload)` puts in a frame when `payload` is already a
/// pickle.
pub fn dumps_bytes(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.len() + 24);
    write_bytes_into(&mut out, b);
    out
}

/// Appends `pickle.dumps(b)` for a `bytes` to `out`; see [`dumps_bytes`].
pub fn write_bytes_into(out: &mut Vec<u8>, b: &[u8]) {
    let mut pickler = Pickler::new(out);
    pickler.save_bytes(b);
    pickler.finish();
}

/// `pickle.dumps(obj)`, protocol 4, for an instance of class `module.name`
/// whose `__dict__` holds `fields` in order (a dataclass such as
/// `iris.Iris`).
///
/// Field names must be distinct. As in CPython, an object with no fields
/// gets no state (no `BUILD`). Each string is written as a separate object,
/// except the empty string and one-character strings up to U+00FF, which
/// CPython shares (they are singletons there) and so memoizes once and
/// repeats with `BINGET`. A Python caller that passes the very same
/// longer `str` object twice (e.g. one literal for two fields) gets a
/// `BINGET` this writer does not produce; values read from a file or a socket
/// are distinct objects, as here.
pub fn dumps_object(module: &str, name: &str, fields: &[(&str, Field<'_>)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + fields.len() * 24);
    write_object_into(&mut out, module, name, fields);
    out
}

/// Appends `pickle.dumps(obj)` to `out`; see [`dumps_object`].
pub fn write_object_into(
    out: &mut Vec<u8>,
    module: &str,
    name: &str,
    fields: &[(&str, Field<'_>)],
) {
    let mut pickler = Pickler::new(out);
    pickler.save_object(module, name, fields);
    pickler.finish();
}

/// CPython's protocol 4 pickler, reduced to the types above.
struct Pickler<'o> {
    out: &'o mut Vec<u8>,
    /// Where the current frame's 9-byte header was reserved, if one is open.
    frame_start: Option<usize>,
    /// Number of memo entries so far (the index `MEMOIZE` assigns next).
    memo_len: u32,
    /// Memo index of the string singletons: `[0]` for `''`, `[c + 1]` for
    /// the one-character string `chr(c)`, `c <= 0xff`.
    singletons: [Option<u32>; 257],
}

impl<'o> Pickler<'o> {
    fn new(out: &'o mut Vec<u8>) -> Self {
        out.extend_from_slice(&[op::PROTO, PROTOCOL]);
        Self {
            out,
            frame_start: None,
            memo_len: 0,
            singletons: [None; 257],
        }
    }

    fn finish(mut self) {
        self.write(&[op::STOP]);
        self.commit_frame(true);
    }

    /// `_Framer.write`: opens a frame if none is open.
    fn write(&mut self, data: &[u8]) {
        if self.frame_start.is_none() {
            self.frame_start = Some(self.out.len());
            self.out.extend_from_slice(&[0; FRAME_HEADER_SIZE]);
        }
        self.out.extend_from_slice(data);
    }

    /// `_Framer.commit_frame`: closes the open frame if it is big enough or
    /// if `force`d. A frame body under `FRAME_SIZE_MIN` bytes loses its
    /// header.
    fn commit_frame(&mut self, force: bool) {
        let Some(start) = self.frame_start else {
            return;
        };
        let len = self.out.len() - start - FRAME_HEADER_SIZE;
        if len < FRAME_SIZE_TARGET && !force {
            return;
        }
        if len >= FRAME_SIZE_MIN {
            let mut header = [0; FRAME_HEADER_SIZE];
            header[0] = op::FRAME;
            header[1..].copy_from_slice(&(len as u64).to_le_bytes());
            self.out[start..start + FRAME_HEADER_SIZE].copy_from_slice(&header);
        } else {
            self.out.drain(start..start + FRAME_HEADER_SIZE);
        }
        self.frame_start = None;
    }

    /// `_Framer.write_large_bytes`: payloads of 64 KiB or more go outside
    /// any frame.
    fn write_large(&mut self, header: &[u8], payload: &[u8]) {
        self.commit_frame(true);
        self.out.extend_from_slice(header);
        self.out.extend_from_slice(payload);
    }

    /// The start of `Pickler.save`.
    fn begin_save(&mut self) {
        self.commit_frame(false);
    }

    fn memoize(&mut self) -> u32 {
        self.write(&[op::MEMOIZE]);
        self.memo_len += 1;
        self.memo_len - 1
    }

    fn write_get(&mut self, index: u32) {
        match u8::try_from(index) {
            Ok(small) => self.write(&[op::BINGET, small]),
            Err(_) => {
                let mut get = [op::LONG_BINGET, 0, 0, 0, 0];
                get[1..].copy_from_slice(&index.to_le_bytes());
                self.write(&get);
            }
        }
    }

    /// Header + payload of a length-prefixed string or bytes.
    fn write_counted(&mut self, short: u8, long4: u8, long8: u8, payload: &[u8]) {
        let n = payload.len();
        if let Ok(n8) = u8::try_from(n) {
            self.write(&[short, n8]);
            self.out.extend_from_slice(payload);
        } else {
            let mut header = Vec::with_capacity(9);
            let large = match u32::try_from(n) {
                Ok(n4) => {
                    header.push(long4);
                    header.extend_from_slice(&n4.to_le_bytes());
                    n >= FRAME_SIZE_TARGET
                }
                Err(_) => {
                    header.push(long8);
                    header.extend_from_slice(&(n as u64).to_le_bytes());
                    true
                }
            };
            if large {
                self.write_large(&header, payload);
            } else {
                self.write(&header);
                self.out.extend_from_slice(payload);
            }
        }
    }

    fn save_str(&mut self, s: &str) {
        self.begin_save();
        let singleton = singleton_slot(s);
        if let Some(index) = singleton.and_then(|slot| self.singletons[slot]) {
            self.write_get(index);
            return;
        }
        self.write_counted(
            op::SHORT_BINUNICODE,
            op::BINUNICODE,
            op::BINUNICODE8,
            s.as_bytes(),
        );
        let index = self.memoize();
        if let Some(slot) = singleton {
            self.singletons[slot] = Some(index);
        }
    }

    fn save_bytes(&mut self, b: &[u8]) {
        self.begin_save();
        self.write_counted(op::SHORT_BINBYTES, op::BINBYTES, op::BINBYTES8, b);
        self.memoize();
    }

    fn save_float(&mut self, x: f64) {
        self.begin_save();
        let mut float = [op::BINFLOAT, 0, 0, 0, 0, 0, 0, 0, 0];
        float[1..].copy_from_slice(&x.to_be_bytes());
        self.write(&float);
    }

    fn save_field(&mut self, field: Field<'_>) {
        match field {
            Field::Float(x) => self.save_float(x),
            Field::Str(s) => self.save_str(s),
        }
    }

    /// `save_reduce` with `copyreg.__newobj__`, as `object.__reduce_ex__(4)`
    /// returns for a plain class instance.
    fn save_object(&mut self, module: &str, name: &str, fields: &[(&str, Field<'_>)]) {
        self.begin_save(); // save(obj)
        self.begin_save(); // save(cls) -> save_global
        self.save_str(module);
        self.save_str(name);
        self.write(&[op::STACK_GLOBAL]);
        self.memoize();
        self.begin_save(); // save(args) with args == ()
        self.write(&[op::EMPTY_TUPLE]);
        self.write(&[op::NEWOBJ]);
        self.memoize();
        if fields.is_empty() {
            return; // __getstate__() is None: no BUILD
        }
        self.begin_save(); // save(state) -> save_dict
        self.write(&[op::EMPTY_DICT]);
        self.memoize();
        if let [(key, value)] = fields {
            self.save_str(key);
            self.save_field(*value);
            self.write(&[op::SETITEM]);
        } else {
            // _pickle.c batch_dict_exact: a batch is closed after every
            // BATCH_SIZE items, so a multiple of BATCH_SIZE ends with an
            // empty MARK SETITEMS.
            let mut rest = fields;
            loop {
                let (batch, tail) = rest.split_at(rest.len().min(BATCH_SIZE));
                self.write(&[op::MARK]);
                for (key, value) in batch {
                    self.save_str(key);
                    self.save_field(*value);
                }
                self.write(&[op::SETITEMS]);
                rest = tail;
                if batch.len() < BATCH_SIZE {
                    break;
                }
            }
        }
        self.write(&[op::BUILD]);
    }
}

/// Which singleton slot a string uses, if CPython shares it.
fn singleton_slot(s: &str) -> Option<usize> {
    let mut chars = s.chars();
    match (chars.next(), chars.next()) {
        (None, _) => Some(0),
        (Some(c), None) if u32::from(c) <= 0xff => Some(u32::from(c) as usize + 1),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn str_golden() {
        // pickle.dumps('close')
        assert_eq!(
            dumps_str("close"),
            b"\x80\x04\x95\x09\x00\x00\x00\x00\x00\x00\x00\x8c\x05close\x94."
        );
        // pickle.dumps('')
        assert_eq!(
            dumps_str(""),
            b"\x80\x04\x95\x04\x00\x00\x00\x00\x00\x00\x00\x8c\x00\x94."
        );
    }

    #[test]
    fn bytes_golden() {
        // pickle.dumps(b'')
        assert_eq!(
            dumps_bytes(b""),
            b"\x80\x04\x95\x04\x00\x00\x00\x00\x00\x00\x00C\x00\x94."
        );
        // pickle.dumps(b'a' * 65536)[:8] == b'\x80\x04B\x00\x00\x01\x00a'
        // and it ends with b'a\x94.' (no frame at all).
        let big = dumps_bytes(&[b'a'; 65536]);
        assert_eq!(&big[..8], b"\x80\x04B\x00\x00\x01\x00a");
        assert_eq!(&big[big.len() - 3..], b"a\x94.");
        assert_eq!(big.len(), 65545);
    }

    #[test]
    fn seed_golden() {
        // import pickle, sys; sys.path.insert(0, 'tests/seed')
        // from iris import Iris
        // pickle.dumps(Iris(5.1, 3.5, 1.4, 0.2, 'setosa')).hex()
        let inner = dumps_object(
            "iris",
            "Iris",
            &[
                ("sepal_length", Field::Float(5.1)),
                ("sepal_width", Field::Float(3.5)),
                ("petal_length", Field::Float(1.4)),
                ("petal_width", Field::Float(0.2)),
                ("species", Field::Str("setosa")),
            ],
        );
        let expected = "8004958a000000000000008c0469726973948c04497269739493942981947d94\
                        288c0c736570616c5f6c656e677468944740146666666666668c0b736570616c\
                        5f77696474689447400c0000000000008c0c706574616c5f6c656e6774689447\
                        3ff66666666666668c0b706574616c5f776964746894473fc999999999999a8c\
                        0773706563696573948c067365746f73619475622e";
        assert_eq!(hex(&inner), expected);
        // pickle.dumps(pickle.dumps(Iris(5.1, 3.5, 1.4, 0.2, 'setosa'))).hex()
        let frame = dumps_bytes(&inner);
        assert_eq!(
            hex(&frame),
            format!("80049599000000000000004395{expected}942e")
        );
    }

    #[test]
    fn singletons_are_memoized_once() {
        // @dataclass class D: x: str; y: str   (in __main__)
        // pickle.dumps(D('x', 'x')): the value 'x' is the key 'x' (BINGET 5),
        // and so is the second value.
        let out = dumps_object(
            "__main__",
            "D",
            &[("x", Field::Str("x")), ("y", Field::Str("x"))],
        );
        let tail = b"}\x94(\x8c\x01x\x94h\x05\x8c\x01y\x94h\x05ub.";
        assert!(out.ends_with(tail), "{}", hex(&out));
    }

    #[test]
    fn write_into_appends() {
        let mut out = b"prefix".to_vec();
        write_str_into(&mut out, "close");
        write_bytes_into(&mut out, &[b'x'; 70000]);
        write_object_into(
            &mut out,
            "iris",
            "Iris",
            &[("species", Field::Str("setosa"))],
        );
        let expected = [
            &b"prefix"[..],
            &dumps_str("close"),
            &dumps_bytes(&[b'x'; 70000]),
            &dumps_object("iris", "Iris", &[("species", Field::Str("setosa"))]),
        ]
        .concat();
        assert_eq!(out, expected);
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }
}
