//! The restricted decoder: an explicit stack machine over an arena of nodes,
//! followed by a bounded, iterative conversion of the arena into a [`Value`].
//!
//! Why an arena: pickles memoize containers *before* filling them (e.g.
//! `EMPTY_DICT MEMOIZE MARK ... SETITEMS`), and a later memo `GET` must see
//! the filled container. So while the pickle runs, every value is a node in
//! one `Vec`, containers hold node indices, and the stack and memo hold
//! indices too; a `GET` pushes an index, never copies. Only once `STOP` is
//! reached is the root turned into an owned [`Value`] tree, and that is where
//! sharing turns into copies: each copy is counted against
//! [`Limits::max_values`] and [`Limits::max_total_bytes`], and nesting
//! against [`Limits::max_depth`], so a memo bomb fails after at most
//! `max_values` steps, with memory bounded accordingly.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use crate::opcodes as op;
use crate::{Limits, PickleError, Value};

type Id = usize;

/// What a global resolved to. Only these can ever be on the stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GlobalKind {
    /// An allowlisted class.
    Class,
    /// `copyreg._reconstructor` (`copy_reg` in protocols 0 and 1).
    Reconstructor,
    /// `builtins.object` (`__builtin__` in protocols 0 to 2).
    BaseObject,
    /// `_codecs.encode`, used by protocols 0 to 2 for non-empty `bytes`.
    CodecsEncode,
    /// `builtins.bytes`, used by protocols 0 to 2 for `b''`.
    BytesType,
}

#[derive(Debug)]
enum Node {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    Tuple(Vec<Id>),
    List(Vec<Id>),
    Dict(Vec<(Id, Id)>),
    Object {
        module: String,
        name: String,
        state: Option<Id>,
    },
    Global {
        module: String,
        name: String,
        kind: GlobalKind,
    },
}

impl Node {
    fn type_name(&self) -> &'static str {
        match self {
            Self::None => "None",
            Self::Bool(_) => "bool",
            Self::Int(_) => "int",
            Self::Float(_) => "float",
            Self::Str(_) => "str",
            Self::Bytes(_) => "bytes",
            Self::Tuple(_) => "tuple",
            Self::List(_) => "list",
            Self::Dict(_) => "dict",
            Self::Object { .. } => "object",
            Self::Global { .. } => "global",
        }
    }

    /// The `index`-th child visited when converting to a [`Value`].
    fn child(&self, index: usize) -> Option<Id> {
        match self {
            Self::Tuple(items) | Self::List(items) => items.get(index).copied(),
            Self::Dict(entries) => entries
                .get(index / 2)
                .map(|&(k, v)| if index % 2 == 0 { k } else { v }),
            Self::Object { state, .. } => {
                if index == 0 {
                    *state
                } else {
                    None
                }
            }
            _ => None,
        }
    }

    fn child_count(&self) -> usize {
        match self {
            Self::Tuple(items) | Self::List(items) => items.len(),
            Self::Dict(entries) => entries.len().saturating_mul(2),
            Self::Object { state, .. } => usize::from(state.is_some()),
            _ => 0,
        }
    }
}

/// Decodes one pickle (protocols 0 to 5) into a [`Value`], refusing
/// anything but plain data and objects of the classes `limits` allows.
///
/// `bytes` must hold exactly one pickle: bytes after its `STOP` opcode are an
/// error. Nothing is imported or executed, whatever the input; see the
/// crate's *Security* section for what is refused and how size is bounded.
///
/// A `multiprocessing` frame sent by `Connection.send(pickle.dumps(obj))`
/// is a pickle of a `bytes` that is itself a pickle: decode the frame, take
/// the [`Value::Bytes`], and decode that (see the crate example).
///
/// # Errors
///
/// A [`PickleError`] naming the offending opcode and its offset, the refused
/// global, or the exceeded limit.
pub fn decode(bytes: &[u8], limits: &Limits) -> std::result::Result<Value, PickleError> {
    if bytes.len() > limits.max_input_len() {
        return Err(PickleError::InputTooLong {
            len: bytes.len(),
            limit: limits.max_input_len(),
        });
    }
    let mut machine = Machine {
        input: bytes,
        pos: 0,
        limits,
        nodes: Vec::new(),
        stack: Vec::new(),
        marks: Vec::new(),
        memo: HashMap::new(),
        frame_end: None,
        charged: 0,
        made_bytes: 0,
        op: "?",
        op_offset: 0,
    };
    let root = machine.run()?;
    machine.into_value(root)
}

struct Machine<'a> {
    input: &'a [u8],
    pos: usize,
    limits: &'a Limits,
    nodes: Vec<Node>,
    stack: Vec<Id>,
    /// Stack lengths at each open `MARK`.
    marks: Vec<usize>,
    memo: HashMap<u64, Id>,
    /// End of the current protocol 4 frame, if one is open.
    frame_end: Option<usize>,
    /// Values' worth of copying done besides allocations (`BUILD`).
    charged: usize,
    /// String bytes made while running rather than read from the input.
    made_bytes: usize,
    /// Name of the opcode being executed, for errors.
    op: &'static str,
    /// Offset of the opcode being executed, for errors.
    op_offset: usize,
}

type Result<T> = std::result::Result<T, PickleError>;

impl<'a> Machine<'a> {
    // ----- errors ---------------------------------------------------------

    fn invalid_argument(&self, reason: impl Into<String>) -> PickleError {
        PickleError::InvalidArgument {
            opcode: self.op,
            offset: self.op_offset,
            reason: reason.into(),
        }
    }

    fn invalid_call(&self, reason: impl Into<String>) -> PickleError {
        PickleError::InvalidCall {
            opcode: self.op,
            offset: self.op_offset,
            reason: reason.into(),
        }
    }

    fn wrong_type(&self, expected: &'static str, found: Id) -> PickleError {
        PickleError::WrongType {
            opcode: self.op,
            offset: self.op_offset,
            expected,
            found: self.node(found).type_name(),
        }
    }

    fn underflow(&self) -> PickleError {
        PickleError::StackUnderflow {
            opcode: self.op,
            offset: self.op_offset,
        }
    }

    fn forbidden(&self, reason: &'static str) -> PickleError {
        PickleError::ForbiddenOpcode {
            opcode: self.op,
            offset: self.op_offset,
            reason,
        }
    }

    // ----- reading the input ----------------------------------------------

    /// Ends the current frame if the position has reached its end, and
    /// refuses a read of `n` bytes that would cross it.
    fn check_frame(&mut self, n: usize) -> Result<()> {
        if let Some(end) = self.frame_end {
            if self.pos >= end {
                self.frame_end = None;
            } else if n > end - self.pos {
                return Err(PickleError::Frame {
                    offset: self.op_offset,
                    reason: "an opcode runs past the end of its frame",
                });
            }
        }
        Ok(())
    }

    /// Takes `n` bytes of opcode argument. A length beyond the input is an
    /// error before anything is allocated.
    fn take(&mut self, n: u64) -> Result<&'a [u8]> {
        let available = self.input.len().saturating_sub(self.pos);
        let len = match usize::try_from(n) {
            Ok(len) if len <= available => len,
            _ => {
                return Err(PickleError::Truncated {
                    opcode: self.op,
                    offset: self.op_offset,
                    needed: n,
                    available,
                });
            }
        };
        self.check_frame(len)?;
        let bytes = self
            .input
            .get(self.pos..self.pos + len)
            .ok_or(PickleError::Truncated {
                opcode: self.op,
                offset: self.op_offset,
                needed: n,
                available,
            })?;
        self.pos += len;
        Ok(bytes)
    }

    fn take_array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let bytes = self.take(N as u64)?;
        let mut array = [0; N];
        array.copy_from_slice(bytes);
        Ok(array)
    }

    fn take_u8(&mut self) -> Result<u8> {
        Ok(self.take_array::<1>()?[0])
    }

    fn take_u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.take_array()?))
    }

    fn take_i32(&mut self) -> Result<i32> {
        Ok(i32::from_le_bytes(self.take_array()?))
    }

    fn take_u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.take_array()?))
    }

    /// Takes a length-prefixed string or bytes payload, checking first that
    /// it is present, then that it is within [`Limits::max_str_len`].
    fn take_payload(&mut self, len: u64) -> Result<&'a [u8]> {
        let bytes = self.take(len)?;
        self.check_str_len(bytes.len())?;
        Ok(bytes)
    }

    fn escaped_error(&self, error: EscapeError) -> PickleError {
        match error {
            EscapeError::Invalid(reason) => self.invalid_argument(reason),
            EscapeError::TooLong(len) => PickleError::StringTooLong {
                opcode: self.op,
                offset: self.op_offset,
                len: len as u64,
                limit: self.limits.max_str_len(),
            },
        }
    }

    fn check_str_len(&self, len: usize) -> Result<()> {
        if len > self.limits.max_str_len() {
            return Err(PickleError::StringTooLong {
                opcode: self.op,
                offset: self.op_offset,
                len: len as u64,
                limit: self.limits.max_str_len(),
            });
        }
        Ok(())
    }

    /// Takes a newline-terminated argument (protocol 0), without the newline.
    fn take_line(&mut self) -> Result<&'a [u8]> {
        let mut end = self.input.len();
        let mut in_frame = false;
        if let Some(frame_end) = self.frame_end {
            if self.pos >= frame_end {
                self.frame_end = None;
            } else {
                end = frame_end.min(end);
                in_frame = true;
            }
        }
        let window = self.input.get(self.pos..end).unwrap_or_default();
        match window.iter().position(|&b| b == b'\n') {
            Some(newline) => {
                self.pos += newline + 1;
                Ok(&window[..newline])
            }
            None if in_frame => Err(PickleError::Frame {
                offset: self.op_offset,
                reason: "a line runs past the end of its frame",
            }),
            None => Err(PickleError::Truncated {
                opcode: self.op,
                offset: self.op_offset,
                needed: window.len() as u64 + 1,
                available: window.len(),
            }),
        }
    }

    fn take_utf8_line(&mut self) -> Result<&'a str> {
        let line = self.take_line()?;
        std::str::from_utf8(line).map_err(|e| self.invalid_argument(format!("not UTF-8: {e}")))
    }

    // ----- the stack ------------------------------------------------------

    fn node(&self, id: Id) -> &Node {
        // Ids only ever come from `alloc`, so they are in range; `Node::None`
        // is a harmless stand-in that keeps this function panic-free.
        self.nodes.get(id).unwrap_or(&Node::None)
    }

    fn alloc(&mut self, node: Node) -> Result<Id> {
        if self.nodes.len().saturating_add(self.charged) >= self.limits.max_values() {
            return Err(PickleError::ValueLimit {
                limit: self.limits.max_values(),
            });
        }
        self.nodes.push(node);
        Ok(self.nodes.len() - 1)
    }

    /// Counts `n` bytes of string data made while running (not read from
    /// the input) against [`Limits::max_total_bytes`].
    fn charge_bytes(&mut self, n: usize) -> Result<()> {
        self.made_bytes = self.made_bytes.saturating_add(n);
        if self.made_bytes > self.limits.max_total_bytes() {
            return Err(PickleError::ByteLimit {
                limit: self.limits.max_total_bytes(),
            });
        }
        Ok(())
    }

    /// Counts `n` values' worth of copying against
    /// [`Limits::max_values`], like `n` allocations.
    fn charge(&mut self, n: usize) -> Result<()> {
        self.charged = self.charged.saturating_add(n);
        if self.nodes.len().saturating_add(self.charged) > self.limits.max_values() {
            return Err(PickleError::ValueLimit {
                limit: self.limits.max_values(),
            });
        }
        Ok(())
    }

    fn push_new(&mut self, node: Node) -> Result<()> {
        let id = self.alloc(node)?;
        self.push(id)
    }

    /// Pushes an existing value. `DUP` and memo `GET`s create no value, so
    /// the stack (with the open marks) is bounded here, not by `alloc`.
    fn push(&mut self, id: Id) -> Result<()> {
        self.check_stack_room()?;
        self.stack.push(id);
        Ok(())
    }

    fn check_stack_room(&self) -> Result<()> {
        if self.stack.len() + self.marks.len() >= self.limits.max_values() {
            return Err(PickleError::StackLimit {
                offset: self.op_offset,
                limit: self.limits.max_values(),
            });
        }
        Ok(())
    }

    /// Stack length at the innermost open mark: values below it belong to
    /// an outer collection and cannot be popped by ordinary opcodes.
    fn fence(&self) -> usize {
        self.marks.last().copied().unwrap_or(0)
    }

    fn pop(&mut self) -> Result<Id> {
        if self.stack.len() <= self.fence() {
            return Err(self.underflow());
        }
        self.stack.pop().ok_or_else(|| self.underflow())
    }

    fn top(&self) -> Result<Id> {
        if self.stack.len() <= self.fence() {
            return Err(self.underflow());
        }
        self.stack.last().copied().ok_or_else(|| self.underflow())
    }

    fn pop_mark(&mut self) -> Result<Vec<Id>> {
        let mark = self.marks.pop().ok_or(PickleError::MissingMark {
            opcode: self.op,
            offset: self.op_offset,
        })?;
        if mark > self.stack.len() {
            return Err(self.underflow());
        }
        Ok(self.stack.split_off(mark))
    }

    fn node_mut(&mut self, id: Id) -> Result<&mut Node> {
        let underflow = self.underflow();
        self.nodes.get_mut(id).ok_or(underflow)
    }

    /// Refuses `list` and `dict` as dict keys, as Python does (unhashable).
    fn check_key(&self, key: Id) -> Result<()> {
        match self.node(key) {
            Node::List(_) | Node::Dict(_) => Err(self.wrong_type("a hashable dict key", key)),
            _ => Ok(()),
        }
    }

    fn pairs(&self, items: Vec<Id>) -> Result<Vec<(Id, Id)>> {
        if items.len() % 2 != 0 {
            return Err(
                self.invalid_argument(format!("odd number of items ({}) for a dict", items.len()))
            );
        }
        let pairs: Vec<(Id, Id)> = items.chunks_exact(2).map(|c| (c[0], c[1])).collect();
        for &(key, _) in &pairs {
            self.check_key(key)?;
        }
        Ok(pairs)
    }

    // ----- the memo -------------------------------------------------------

    fn memo_put(&mut self, index: u64) -> Result<()> {
        let top = self.top()?;
        let len = self.memo.len();
        match self.memo.entry(index) {
            Entry::Occupied(mut slot) => {
                slot.insert(top);
            }
            Entry::Vacant(slot) => {
                if len >= self.limits.max_memo() {
                    return Err(PickleError::MemoLimit {
                        offset: self.op_offset,
                        limit: self.limits.max_memo(),
                    });
                }
                slot.insert(top);
            }
        }
        Ok(())
    }

    fn memo_get(&mut self, index: u64) -> Result<()> {
        let id = *self.memo.get(&index).ok_or(PickleError::MemoMissing {
            opcode: self.op,
            offset: self.op_offset,
            index,
        })?;
        self.push(id)
    }

    fn parse_index(&self, line: &str) -> Result<u64> {
        line.trim_ascii()
            .parse::<u64>()
            .map_err(|_| self.invalid_argument(format!("bad memo index {line:?}")))
    }

    // ----- globals and objects --------------------------------------------

    fn resolve_global(&self, module: &str, name: &str) -> Result<GlobalKind> {
        Ok(match (module, name) {
            ("copyreg" | "copy_reg", "_reconstructor") => GlobalKind::Reconstructor,
            ("builtins" | "__builtin__", "object") => GlobalKind::BaseObject,
            ("builtins" | "__builtin__", "bytes") => GlobalKind::BytesType,
            ("_codecs", "encode") => GlobalKind::CodecsEncode,
            _ if self.limits.is_class_allowed(module, name) => GlobalKind::Class,
            _ => {
                return Err(PickleError::GlobalNotAllowed {
                    module: module.to_owned(),
                    name: name.to_owned(),
                    offset: self.op_offset,
                    accepted: self.limits.accepted(),
                });
            }
        })
    }

    fn push_global(&mut self, module: &str, name: &str) -> Result<()> {
        let kind = self.resolve_global(module, name)?;
        self.push_new(Node::Global {
            module: module.to_owned(),
            name: name.to_owned(),
            kind,
        })
    }

    /// The `(module, name)` of an allowlisted class node.
    fn class_of(&self, id: Id) -> Result<(String, String)> {
        match self.node(id) {
            Node::Global {
                module,
                name,
                kind: GlobalKind::Class,
            } => Ok((module.clone(), name.clone())),
            Node::Global { module, name, .. } => Err(self.invalid_call(format!(
                "{module}.{name} is not a class this decoder may instantiate"
            ))),
            other => Err(self.invalid_call(format!(
                "expected an allowlisted class but found {}",
                other.type_name()
            ))),
        }
    }

    fn is_empty_tuple(&self, id: Id) -> bool {
        matches!(self.node(id), Node::Tuple(items) if items.is_empty())
    }

    fn reduce(&mut self) -> Result<()> {
        let args = self.pop()?;
        let func = self.pop()?;
        let (module, name, kind) = match self.node(func) {
            Node::Global { module, name, kind } => (module.clone(), name.clone(), *kind),
            other => {
                return Err(self.invalid_call(format!(
                    "it calls a {} (only copyreg._reconstructor, _codecs.encode and \
                     builtins.bytes calls are accepted)",
                    other.type_name()
                )));
            }
        };
        let Node::Tuple(items) = self.node(args) else {
            return Err(self.wrong_type("an argument tuple", args));
        };
        // No accepted call takes more than three arguments: copying no more
        // makes REDUCE's cost independent of the tuple's size.
        let arity = items.len();
        let items: Vec<Id> = items.iter().take(3).copied().collect();
        let node = match kind {
            GlobalKind::Reconstructor => {
                let shape_error = || {
                    self.invalid_call(
                        "copyreg._reconstructor is only accepted as (allowlisted class, \
                         builtins.object, None)",
                    )
                };
                let (&[cls, base, state], 3) = (&items[..], arity) else {
                    return Err(shape_error());
                };
                let (module, name) = self.class_of(cls)?;
                let base_ok = matches!(
                    self.node(base),
                    Node::Global {
                        kind: GlobalKind::BaseObject,
                        ..
                    }
                );
                if !base_ok || !matches!(self.node(state), Node::None) {
                    return Err(shape_error());
                }
                Node::Object {
                    module,
                    name,
                    state: None,
                }
            }
            GlobalKind::CodecsEncode => {
                let shape_error = || {
                    self.invalid_call(
                        "_codecs.encode is only accepted as (str, 'latin1'), the way \
                         protocols 0 to 2 encode bytes",
                    )
                };
                let (&[text, encoding], 2) = (&items[..], arity) else {
                    return Err(shape_error());
                };
                let (Node::Str(text_str), Node::Str(encoding)) =
                    (self.node(text), self.node(encoding))
                else {
                    return Err(shape_error());
                };
                if !matches!(encoding.as_str(), "latin1" | "latin-1") {
                    return Err(shape_error());
                }
                // The only bytes not read from the input: a memoized string
                // may be encoded again and again, so the copies are charged.
                let len = text_str.len();
                self.charge_bytes(len)?;
                let Node::Str(text) = self.node(text) else {
                    return Err(self.wrong_type("a str", text));
                };
                let mut bytes = Vec::with_capacity(text.len());
                for c in text.chars() {
                    let byte = u8::try_from(u32::from(c)).map_err(|_| {
                        self.invalid_call(format!(
                            "_codecs.encode(..., 'latin1') of a string with character \
                             U+{:04X}, which latin-1 cannot encode",
                            u32::from(c)
                        ))
                    })?;
                    bytes.push(byte);
                }
                Node::Bytes(bytes)
            }
            GlobalKind::BytesType => {
                if arity != 0 {
                    return Err(self.invalid_call(
                        "builtins.bytes is only accepted with no arguments (b'' in \
                         protocols 0 to 2)",
                    ));
                }
                Node::Bytes(Vec::new())
            }
            GlobalKind::Class => {
                return Err(self.invalid_call(format!(
                    "calling class {module}.{name} is not accepted (objects must be built \
                     with NEWOBJ or copyreg._reconstructor)"
                )));
            }
            GlobalKind::BaseObject => {
                return Err(self.invalid_call(format!("calling {module}.{name} is not accepted")));
            }
        };
        self.push_new(node)
    }

    fn new_object(&mut self, kwargs: Option<Id>) -> Result<()> {
        if let Some(kwargs) = kwargs {
            if !matches!(self.node(kwargs), Node::Dict(entries) if entries.is_empty()) {
                return Err(self.invalid_call(
                    "keyword arguments to __new__ are not accepted (only an empty dict)",
                ));
            }
        }
        let args = self.pop()?;
        let cls = self.pop()?;
        let (module, name) = self.class_of(cls)?;
        if !self.is_empty_tuple(args) {
            return Err(self.invalid_call(format!(
                "arguments to {module}.{name}.__new__ are not accepted (only an empty tuple)"
            )));
        }
        self.push_new(Node::Object {
            module,
            name,
            state: None,
        })
    }

    /// `BUILD` as CPython's `load_build` does it for an object without
    /// `__setstate__`: the state dict's items are copied into the
    /// instance's `__dict__` *now*, so changing the dict later (through the
    /// memo) does not change the object, and a second `BUILD` updates the
    /// attributes the first one set.
    fn build(&mut self) -> Result<()> {
        let state = self.pop()?;
        let object = self.top()?;
        let Node::Dict(items) = self.node(state) else {
            return Err(self.invalid_call(format!(
                "object state must be a dict, found {}",
                self.node(state).type_name()
            )));
        };
        let count = items.len();
        let attributes = match self.node(object) {
            Node::Object { state, .. } => *state,
            other => {
                return Err(self.invalid_call(format!(
                    "it sets the state of a {} (only objects of allowlisted classes have state)",
                    other.type_name()
                )));
            }
        };
        // The copy holds two ids per item: charged like values, so that
        // repeating BUILD with a large dict stays within the budget.
        self.charge(count.saturating_mul(2))?;
        let items = match self.node(state) {
            Node::Dict(items) => items.clone(),
            _ => Vec::new(),
        };
        match attributes {
            Some(dict) => match self.node_mut(dict)? {
                Node::Dict(existing) => existing.extend(items),
                // The instance dict is only ever made below.
                _ => return Err(self.invalid_call("the object's attributes are not a dict")),
            },
            None => {
                let dict = self.alloc(Node::Dict(items))?;
                if let Node::Object { state, .. } = self.node_mut(object)? {
                    *state = Some(dict);
                }
            }
        }
        Ok(())
    }

    // ----- scalars ----------------------------------------------------------

    fn parse_int_text(&self, text: &str) -> Result<i64> {
        let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(self.invalid_argument(format!("{text:?} is not an integer")));
        }
        text.parse::<i64>().map_err(|_| PickleError::IntTooLarge {
            opcode: self.op,
            offset: self.op_offset,
        })
    }

    /// Little-endian two's complement, as in `LONG1` / `LONG4`.
    fn decode_long(&self, bytes: &[u8]) -> Result<i64> {
        let Some(&last) = bytes.last() else {
            return Ok(0);
        };
        let negative = last & 0x80 != 0;
        let fill = if negative { 0xff } else { 0x00 };
        let mut array = [fill; 8];
        let (low, high) = bytes.split_at(bytes.len().min(8));
        array[..low.len()].copy_from_slice(low);
        let sign_kept = high.is_empty() || (array[7] & 0x80 != 0) == negative;
        if !sign_kept || high.iter().any(|&b| b != fill) {
            return Err(PickleError::IntTooLarge {
                opcode: self.op,
                offset: self.op_offset,
            });
        }
        Ok(i64::from_le_bytes(array))
    }

    fn push_str(&mut self, bytes: &[u8]) -> Result<()> {
        let text = std::str::from_utf8(bytes)
            .map_err(|e| self.invalid_argument(format!("string is not UTF-8: {e}")))?;
        self.push_new(Node::Str(text.to_owned()))
    }

    /// Python 2 `str` opcodes: decoded as ASCII, as `pickle.loads` does by
    /// default.
    fn push_ascii(&mut self, bytes: Vec<u8>) -> Result<()> {
        if !bytes.is_ascii() {
            return Err(self.invalid_argument(
                "python 2 string with non-ASCII bytes (decoded as ASCII, like pickle.loads)",
            ));
        }
        self.check_str_len(bytes.len())?;
        let text = String::from_utf8(bytes)
            .map_err(|e| self.invalid_argument(format!("string is not ASCII: {e}")))?;
        self.push_new(Node::Str(text))
    }

    fn push_bytes(&mut self, bytes: &[u8]) -> Result<()> {
        self.push_new(Node::Bytes(bytes.to_vec()))
    }

    fn len_u8(&mut self) -> Result<u64> {
        Ok(u64::from(self.take_u8()?))
    }

    fn len_u32(&mut self) -> Result<u64> {
        Ok(u64::from(self.take_u32()?))
    }

    fn len_i32(&mut self) -> Result<u64> {
        let len = self.take_i32()?;
        u64::try_from(len).map_err(|_| self.invalid_argument(format!("negative length {len}")))
    }

    // ----- the machine ------------------------------------------------------

    /// Runs the pickle to `STOP`; returns the node of the result.
    fn run(&mut self) -> Result<Id> {
        loop {
            let offset = self.pos;
            let Some(&byte) = self.input.get(offset) else {
                return Err(PickleError::MissingStop { offset });
            };
            self.op_offset = offset;
            self.op = op::name(byte).unwrap_or("?");
            self.check_frame(1)?;
            self.pos += 1;
            if byte == op::STOP {
                break;
            }
            self.step(byte)?;
        }
        if self.stack.len() != 1 || !self.marks.is_empty() {
            return Err(PickleError::BadStop {
                offset: self.op_offset,
                values: self.stack.len(),
                marks: self.marks.len(),
            });
        }
        if self.pos != self.input.len() {
            return Err(PickleError::TrailingBytes {
                offset: self.pos,
                count: self.input.len() - self.pos,
            });
        }
        self.stack.pop().ok_or_else(|| self.underflow())
    }

    fn step(&mut self, byte: u8) -> Result<()> {
        match byte {
            // protocol and framing
            op::PROTO => {
                let version = self.take_u8()?;
                if version > 5 {
                    return Err(PickleError::UnsupportedProtocol {
                        version,
                        offset: self.op_offset,
                    });
                }
            }
            op::FRAME => {
                let len = self.take_u64()?;
                if self.frame_end.is_some_and(|end| self.pos < end) {
                    return Err(PickleError::Frame {
                        offset: self.op_offset,
                        reason: "a new frame starts before the previous one ends",
                    });
                }
                let available = self.input.len() - self.pos;
                match usize::try_from(len) {
                    Ok(len) if len <= available => self.frame_end = Some(self.pos + len),
                    _ => {
                        return Err(PickleError::Truncated {
                            opcode: self.op,
                            offset: self.op_offset,
                            needed: len,
                            available,
                        });
                    }
                }
            }

            // stack manipulation
            op::MARK => {
                self.check_stack_room()?;
                self.marks.push(self.stack.len());
            }
            op::POP => {
                if self.stack.len() > self.fence() {
                    self.stack.pop();
                } else if self.marks.pop().is_none() {
                    return Err(self.underflow());
                }
            }
            op::POP_MARK => {
                self.pop_mark()?;
            }
            op::DUP => {
                let top = self.top()?;
                self.push(top)?;
            }

            // scalars
            op::NONE => self.push_new(Node::None)?,
            op::NEWTRUE => self.push_new(Node::Bool(true))?,
            op::NEWFALSE => self.push_new(Node::Bool(false))?,
            op::INT => {
                let line = self.take_utf8_line()?;
                let node = match line {
                    "00" => Node::Bool(false),
                    "01" => Node::Bool(true),
                    _ => Node::Int(self.parse_int_text(line.trim_ascii())?),
                };
                self.push_new(node)?;
            }
            op::LONG => {
                let line = self.take_utf8_line()?;
                let trimmed = line.trim_ascii();
                let text = trimmed.strip_suffix('L').unwrap_or(trimmed);
                let value = self.parse_int_text(text)?;
                self.push_new(Node::Int(value))?;
            }
            op::BININT => {
                let value = self.take_i32()?;
                self.push_new(Node::Int(value.into()))?;
            }
            op::BININT1 => {
                let value = self.take_u8()?;
                self.push_new(Node::Int(value.into()))?;
            }
            op::BININT2 => {
                let value = u16::from_le_bytes(self.take_array()?);
                self.push_new(Node::Int(value.into()))?;
            }
            op::LONG1 | op::LONG4 => {
                let len = if byte == op::LONG1 {
                    self.len_u8()?
                } else {
                    self.len_i32()?
                };
                let bytes = self.take(len)?;
                let value = self.decode_long(bytes)?;
                self.push_new(Node::Int(value))?;
            }
            op::FLOAT => {
                let line = self.take_utf8_line()?;
                let value = line
                    .trim_ascii()
                    .parse::<f64>()
                    .map_err(|_| self.invalid_argument(format!("{line:?} is not a float")))?;
                self.push_new(Node::Float(value))?;
            }
            op::BINFLOAT => {
                let value = f64::from_be_bytes(self.take_array()?);
                self.push_new(Node::Float(value))?;
            }

            // strings and bytes
            op::SHORT_BINUNICODE | op::BINUNICODE | op::BINUNICODE8 => {
                let len = match byte {
                    op::SHORT_BINUNICODE => self.len_u8()?,
                    op::BINUNICODE => self.len_u32()?,
                    _ => self.take_u64()?,
                };
                let bytes = self.take_payload(len)?;
                self.push_str(bytes)?;
            }
            op::UNICODE => {
                let line = self.take_line()?;
                let text = raw_unicode_escape(line, self.limits.max_str_len())
                    .map_err(|e| self.escaped_error(e))?;
                self.push_new(Node::Str(text))?;
            }
            op::SHORT_BINBYTES | op::BINBYTES | op::BINBYTES8 | op::BYTEARRAY8 => {
                let len = match byte {
                    op::SHORT_BINBYTES => self.len_u8()?,
                    op::BINBYTES => self.len_u32()?,
                    _ => self.take_u64()?,
                };
                let bytes = self.take_payload(len)?;
                self.push_bytes(bytes)?;
            }
            op::SHORT_BINSTRING | op::BINSTRING => {
                let len = if byte == op::SHORT_BINSTRING {
                    self.len_u8()?
                } else {
                    self.len_i32()?
                };
                let bytes = self.take_payload(len)?;
                self.push_ascii(bytes.to_vec())?;
            }
            op::STRING => {
                let line = self.take_line()?;
                let quoted = match line {
                    [q @ (b'\'' | b'"'), inner @ .., last] if last == q => inner,
                    _ => {
                        return Err(
                            self.invalid_argument("the STRING opcode argument must be quoted")
                        );
                    }
                };
                let bytes = escape_decode(quoted, self.limits.max_str_len())
                    .map_err(|e| self.escaped_error(e))?;
                self.push_ascii(bytes)?;
            }

            // containers
            op::EMPTY_TUPLE => self.push_new(Node::Tuple(Vec::new()))?,
            op::EMPTY_LIST => self.push_new(Node::List(Vec::new()))?,
            op::EMPTY_DICT => self.push_new(Node::Dict(Vec::new()))?,
            op::TUPLE => {
                let items = self.pop_mark()?;
                self.push_new(Node::Tuple(items))?;
            }
            op::TUPLE1 | op::TUPLE2 | op::TUPLE3 => {
                let n = usize::from(byte - op::TUPLE1) + 1;
                if self.stack.len() < self.fence() + n {
                    return Err(self.underflow());
                }
                let items = self.stack.split_off(self.stack.len() - n);
                self.push_new(Node::Tuple(items))?;
            }
            op::LIST => {
                let items = self.pop_mark()?;
                self.push_new(Node::List(items))?;
            }
            op::DICT => {
                let items = self.pop_mark()?;
                let pairs = self.pairs(items)?;
                self.push_new(Node::Dict(pairs))?;
            }
            op::APPEND | op::APPENDS => {
                let items = if byte == op::APPEND {
                    vec![self.pop()?]
                } else {
                    self.pop_mark()?
                };
                let list = self.top()?;
                match self.node_mut(list)? {
                    Node::List(existing) => existing.extend(items),
                    _ => return Err(self.wrong_type("a list", list)),
                }
            }
            op::SETITEM | op::SETITEMS => {
                let items = if byte == op::SETITEM {
                    let value = self.pop()?;
                    let key = self.pop()?;
                    vec![key, value]
                } else {
                    self.pop_mark()?
                };
                let pairs = self.pairs(items)?;
                let dict = self.top()?;
                match self.node_mut(dict)? {
                    Node::Dict(existing) => existing.extend(pairs),
                    _ => return Err(self.wrong_type("a dict", dict)),
                }
            }

            // memo
            op::PUT => {
                let line = self.take_utf8_line()?;
                let index = self.parse_index(line)?;
                self.memo_put(index)?;
            }
            op::BINPUT => {
                let index = self.take_u8()?;
                self.memo_put(index.into())?;
            }
            op::LONG_BINPUT => {
                let index = self.take_u32()?;
                self.memo_put(index.into())?;
            }
            op::MEMOIZE => {
                let index = self.memo.len() as u64;
                self.memo_put(index)?;
            }
            op::GET => {
                let line = self.take_utf8_line()?;
                let index = self.parse_index(line)?;
                self.memo_get(index)?;
            }
            op::BINGET => {
                let index = self.take_u8()?;
                self.memo_get(index.into())?;
            }
            op::LONG_BINGET => {
                let index = self.take_u32()?;
                self.memo_get(index.into())?;
            }

            // globals and objects
            op::GLOBAL => {
                let module = self.take_utf8_line()?;
                let name = self.take_utf8_line()?;
                self.push_global(module, name)?;
            }
            op::STACK_GLOBAL => {
                let name = self.pop()?;
                let module = self.pop()?;
                let (Node::Str(module), Node::Str(name)) = (self.node(module), self.node(name))
                else {
                    return Err(self.invalid_argument("STACK_GLOBAL needs two str on the stack"));
                };
                let (module, name) = (module.clone(), name.clone());
                self.push_global(&module, &name)?;
            }
            op::REDUCE => self.reduce()?,
            op::NEWOBJ => self.new_object(None)?,
            op::NEWOBJ_EX => {
                let kwargs = self.pop()?;
                self.new_object(Some(kwargs))?;
            }
            op::BUILD => self.build()?,

            // refused on principle
            op::INST | op::OBJ => {
                return Err(self.forbidden("it instantiates an arbitrary class"));
            }
            op::PERSID | op::BINPERSID => {
                return Err(self.forbidden("persistent ids refer to objects outside the pickle"));
            }
            op::EXT1 | op::EXT2 | op::EXT4 => {
                return Err(self.forbidden("extension codes stand for arbitrary globals"));
            }
            op::EMPTY_SET | op::ADDITEMS | op::FROZENSET => {
                return Err(self.forbidden("sets are not supported"));
            }
            op::NEXT_BUFFER | op::READONLY_BUFFER => {
                return Err(self.forbidden("out-of-band buffers are not supported"));
            }
            _ => {
                return Err(PickleError::UnknownOpcode {
                    byte,
                    offset: self.op_offset,
                });
            }
        }
        Ok(())
    }

    // ----- arena to Value ---------------------------------------------------

    /// Converts the result node into an owned tree, iteratively, charging
    /// every produced value (and string byte) against the limits.
    fn into_value(self, root: Id) -> Result<Value> {
        let mut budget = Budget {
            limits: self.limits,
            values: 0,
            bytes: 0,
        };
        let mut on_path = vec![false; self.nodes.len()];
        let mut frames: Vec<Frame> = Vec::new();
        if let Some(value) = self.enter(root, &mut frames, &mut on_path, &mut budget)? {
            return Ok(value);
        }
        while let Some(frame) = frames.last_mut() {
            let node = self.node(frame.id);
            if let Some(child) = node.child(frame.next) {
                frame.next += 1;
                if let Some(value) = self.enter(child, &mut frames, &mut on_path, &mut budget)? {
                    if let Some(parent) = frames.last_mut() {
                        parent.items.push(value);
                    }
                }
                continue;
            }
            let Some(frame) = frames.pop() else { break };
            if let Some(flag) = on_path.get_mut(frame.id) {
                *flag = false;
            }
            let value = self.finish(frame);
            match frames.last_mut() {
                Some(parent) => parent.items.push(value),
                None => return Ok(value),
            }
        }
        // Unreachable: the loop returns when the root frame finishes.
        Err(PickleError::RecursiveStructure)
    }

    /// Produces a scalar directly, or opens a frame for a container.
    fn enter(
        &self,
        id: Id,
        frames: &mut Vec<Frame>,
        on_path: &mut [bool],
        budget: &mut Budget<'_>,
    ) -> Result<Option<Value>> {
        budget.value()?;
        let node = self.node(id);
        let value = match node {
            Node::None => Value::None,
            Node::Bool(b) => Value::Bool(*b),
            Node::Int(i) => Value::Int(*i),
            Node::Float(x) => Value::Float(*x),
            Node::Str(s) => {
                budget.bytes(s.len())?;
                Value::Str(s.clone())
            }
            Node::Bytes(b) => {
                budget.bytes(b.len())?;
                Value::Bytes(b.clone())
            }
            Node::Global { module, name, .. } => {
                return Err(PickleError::GlobalAsValue {
                    module: module.clone(),
                    name: name.clone(),
                });
            }
            Node::Tuple(_) | Node::List(_) | Node::Dict(_) | Node::Object { .. } => {
                if let Node::Object { module, name, .. } = node {
                    budget.bytes(module.len().saturating_add(name.len()))?;
                }
                let flag = on_path.get_mut(id).ok_or(PickleError::RecursiveStructure)?;
                if *flag {
                    return Err(PickleError::RecursiveStructure);
                }
                if frames.len() >= self.limits.max_depth() {
                    return Err(PickleError::DepthLimit {
                        limit: self.limits.max_depth(),
                    });
                }
                *flag = true;
                let capacity = node.child_count().min(budget.remaining_values());
                frames.push(Frame {
                    id,
                    next: 0,
                    items: Vec::with_capacity(capacity),
                });
                return Ok(None);
            }
        };
        Ok(Some(value))
    }

    fn finish(&self, frame: Frame) -> Value {
        let mut items = frame.items;
        match self.node(frame.id) {
            Node::Tuple(_) => Value::Tuple(items),
            Node::List(_) => Value::List(items),
            Node::Dict(_) => {
                let mut pairs = Vec::with_capacity(items.len() / 2);
                let mut iter = items.into_iter();
                while let (Some(k), Some(v)) = (iter.next(), iter.next()) {
                    pairs.push((k, v));
                }
                Value::Dict(merge_duplicate_keys(pairs))
            }
            Node::Object { module, name, .. } => Value::Object {
                module: module.clone(),
                name: name.clone(),
                state: Box::new(items.pop().unwrap_or(Value::Dict(Vec::new()))),
            },
            // Only containers open frames.
            _ => Value::None,
        }
    }
}

struct Frame {
    id: Id,
    next: usize,
    items: Vec<Value>,
}

struct Budget<'a> {
    limits: &'a Limits,
    values: usize,
    bytes: usize,
}

impl Budget<'_> {
    fn value(&mut self) -> Result<()> {
        self.values += 1;
        if self.values > self.limits.max_values() {
            return Err(PickleError::ValueLimit {
                limit: self.limits.max_values(),
            });
        }
        Ok(())
    }

    fn bytes(&mut self, n: usize) -> Result<()> {
        self.bytes = self.bytes.saturating_add(n);
        if self.bytes > self.limits.max_total_bytes() {
            return Err(PickleError::ByteLimit {
                limit: self.limits.max_total_bytes(),
            });
        }
        Ok(())
    }

    fn remaining_values(&self) -> usize {
        self.limits.max_values().saturating_sub(self.values)
    }
}

/// A dict key as Python compares it, for the key types where that is simple:
/// `True == 1 == 1.0`, `-0.0 == 0`, `'a' != b'a'`.
#[derive(PartialEq, Eq, Hash)]
enum Key<'a> {
    None,
    Int(i64),
    Float(u64),
    Str(&'a str),
    Bytes(&'a [u8]),
}

impl<'a> Key<'a> {
    fn of(value: &'a Value) -> Option<Self> {
        Some(match value {
            Value::None => Self::None,
            Value::Bool(b) => Self::Int(i64::from(*b)),
            Value::Int(i) => Self::Int(*i),
            Value::Float(x) => {
                // -2**63 <= x < 2**63 and integral: equal to that int.
                const LIMIT: f64 = 9_223_372_036_854_775_808.0;
                if x.is_nan() {
                    return None;
                } else if x.trunc() == *x && (-LIMIT..LIMIT).contains(x) {
                    Self::Int(*x as i64)
                } else {
                    Self::Float(x.to_bits())
                }
            }
            Value::Str(s) => Self::Str(s),
            Value::Bytes(b) => Self::Bytes(b),
            _ => return None,
        })
    }
}

/// Python dict semantics for repeated keys: the key keeps its first
/// position and takes the last value.
fn merge_duplicate_keys(pairs: Vec<(Value, Value)>) -> Vec<(Value, Value)> {
    if pairs.len() < 2 {
        return pairs;
    }
    let mut winner: Vec<usize> = (0..pairs.len()).collect();
    let mut duplicate = vec![false; pairs.len()];
    let mut any = false;
    {
        let mut first: HashMap<Key<'_>, usize> = HashMap::with_capacity(pairs.len());
        for (i, (key, _)) in pairs.iter().enumerate() {
            let Some(key) = Key::of(key) else { continue };
            match first.entry(key) {
                Entry::Occupied(slot) => {
                    winner[*slot.get()] = i;
                    duplicate[i] = true;
                    any = true;
                }
                Entry::Vacant(slot) => {
                    slot.insert(i);
                }
            }
        }
    }
    if !any {
        return pairs;
    }
    let mut slots: Vec<Option<(Value, Value)>> = pairs.into_iter().map(Some).collect();
    let mut merged = Vec::with_capacity(slots.len());
    for i in 0..slots.len() {
        if duplicate[i] {
            continue;
        }
        let Some((key, mut value)) = slots[i].take() else {
            continue;
        };
        if winner[i] != i {
            if let Some((_, last)) = slots[winner[i]].take() {
                value = last;
            }
        }
        merged.push((key, value));
    }
    merged
}

/// Why an escaped protocol 0 string could not be decoded.
#[derive(Debug, PartialEq)]
enum EscapeError {
    /// A malformed escape.
    Invalid(String),
    /// The decoded string grew past the length limit (its length so far).
    TooLong(usize),
}

impl From<String> for EscapeError {
    fn from(reason: String) -> Self {
        Self::Invalid(reason)
    }
}

/// Refuses a decoded string as soon as it outgrows `limit`, so that a long
/// line never costs more than `limit` bytes of memory.
fn check_escaped_len(len: usize, limit: usize) -> std::result::Result<(), EscapeError> {
    if len > limit {
        return Err(EscapeError::TooLong(len));
    }
    Ok(())
}

/// Python's `raw-unicode-escape` decoding (protocol 0 `UNICODE`): bytes are
/// latin-1 characters, except `\uXXXX` and `\UXXXXXXXX` after an odd number
/// of backslashes. Stops once the UTF-8 result exceeds `limit` bytes.
fn raw_unicode_escape(bytes: &[u8], limit: usize) -> std::result::Result<String, EscapeError> {
    let mut out = String::with_capacity(bytes.len().min(limit));
    let mut i = 0;
    while let Some(&byte) = bytes.get(i) {
        check_escaped_len(out.len(), limit)?;
        if byte != b'\\' {
            out.push(char::from(byte));
            i += 1;
            continue;
        }
        let start = i;
        while bytes.get(i) == Some(&b'\\') {
            i += 1;
        }
        let run = i - start;
        let digits = match bytes.get(i) {
            Some(b'u') if run % 2 == 1 => 4,
            Some(b'U') if run % 2 == 1 => 8,
            _ => 0,
        };
        let literal = if digits == 0 { run } else { run - 1 };
        out.extend(std::iter::repeat_n('\\', literal));
        if digits == 0 {
            continue;
        }
        i += 1;
        let hex = bytes
            .get(i..i + digits)
            .and_then(|h| std::str::from_utf8(h).ok())
            .filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(|| format!("truncated \\{} escape", if digits == 4 { 'u' } else { 'U' }))?;
        let code = u32::from_str_radix(hex, 16).map_err(|e| e.to_string())?;
        let c = char::from_u32(code).ok_or_else(|| {
            format!("escape for U+{code:04X} is not a valid character (lone surrogates are not supported)")
        })?;
        out.push(c);
        i += digits;
    }
    check_escaped_len(out.len(), limit)?;
    Ok(out)
}

/// Python's `codecs.escape_decode` (protocol 0 `STRING`, written by Python 2).
/// Stops once the result exceeds `limit` bytes.
fn escape_decode(bytes: &[u8], limit: usize) -> std::result::Result<Vec<u8>, EscapeError> {
    let mut out = Vec::with_capacity(bytes.len().min(limit));
    let mut i = 0;
    while let Some(&byte) = bytes.get(i) {
        check_escaped_len(out.len(), limit)?;
        i += 1;
        if byte != b'\\' {
            out.push(byte);
            continue;
        }
        let Some(&escape) = bytes.get(i) else {
            return Err(EscapeError::Invalid("trailing \\ in string".to_owned()));
        };
        i += 1;
        match escape {
            b'\n' => {}
            b'\\' | b'\'' | b'"' => out.push(escape),
            b'a' => out.push(0x07),
            b'b' => out.push(0x08),
            b'f' => out.push(0x0c),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'v' => out.push(0x0b),
            b'0'..=b'7' => {
                let mut code = u32::from(escape - b'0');
                for _ in 0..2 {
                    match bytes.get(i) {
                        Some(&d @ b'0'..=b'7') => {
                            code = code * 8 + u32::from(d - b'0');
                            i += 1;
                        }
                        _ => break,
                    }
                }
                out.push((code & 0xff) as u8);
            }
            b'x' => {
                let hex = bytes
                    .get(i..i + 2)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))
                    .ok_or_else(|| "invalid \\x escape".to_owned())?;
                out.push(u8::from_str_radix(hex, 16).map_err(|e| e.to_string())?);
                i += 2;
            }
            other => {
                out.push(b'\\');
                out.push(other);
            }
        }
    }
    check_escaped_len(out.len(), limit)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_unicode_escape_matches_python() {
        // b'a\\u00e9\\U0001f600\\x'.decode('raw-unicode-escape') == 'aé😀\\x'
        assert_eq!(
            raw_unicode_escape(b"a\\u00e9\\U0001f600\\x", 64).as_deref(),
            Ok("a\u{e9}\u{1f600}\\x")
        );
        // An even run of backslashes does not start an escape.
        assert_eq!(
            raw_unicode_escape(b"\\\\u0041", 64).as_deref(),
            Ok("\\\\u0041")
        );
        assert_eq!(
            raw_unicode_escape(b"\\\\\\u0041", 64).as_deref(),
            Ok("\\\\A")
        );
        // Latin-1 bytes are characters.
        assert_eq!(raw_unicode_escape(b"\xe9", 64).as_deref(), Ok("\u{e9}"));
        assert!(raw_unicode_escape(b"\\u00", 64).is_err());
        assert!(raw_unicode_escape(b"\\ud800", 64).is_err());
        assert!(raw_unicode_escape(b"\\U00110000", 64).is_err());
    }

    #[test]
    fn escape_decode_matches_python() {
        // codecs.escape_decode(b'a\\777\\q\\x41\\\n') == (b'a\xff\\qA', 13)
        assert_eq!(
            escape_decode(b"a\\777\\q\\x41\\\n", 64).as_deref(),
            Ok(&b"a\xff\\qA"[..])
        );
        assert_eq!(
            escape_decode(b"\\'\\\"\\\\\\n\\t\\0", 64).as_deref(),
            Ok(&b"'\"\\\n\t\0"[..])
        );
        assert!(escape_decode(b"abc\\", 64).is_err());
        assert!(escape_decode(b"\\x4", 64).is_err());
        // Long results are refused once they pass the limit, not after.
        assert_eq!(escape_decode(b"abcdef", 3), Err(EscapeError::TooLong(4)));
        assert_eq!(
            raw_unicode_escape(b"abcdef", 3),
            Err(EscapeError::TooLong(4))
        );
        assert_eq!(escape_decode(b"abc", 3).as_deref(), Ok(&b"abc"[..]));
    }

    #[test]
    fn duplicate_keys_merge_like_python() {
        // {'a': 1, 'b': 2, 'a': 3, True: 4, 1.0: 5} == {'a': 3, 'b': 2, True: 5}
        let pairs = vec![
            (Value::Str("a".into()), Value::Int(1)),
            (Value::Str("b".into()), Value::Int(2)),
            (Value::Str("a".into()), Value::Int(3)),
            (Value::Bool(true), Value::Int(4)),
            (Value::Float(1.0), Value::Int(5)),
        ];
        assert_eq!(
            merge_duplicate_keys(pairs),
            vec![
                (Value::Str("a".into()), Value::Int(3)),
                (Value::Str("b".into()), Value::Int(2)),
                (Value::Bool(true), Value::Int(5)),
            ]
        );
    }
}
