//! The single error type of this crate.

use std::fmt;

/// Why a pickle was refused by [`decode`](crate::decode).
///
/// Every variant that comes from a particular opcode carries the opcode's
/// `pickletools` name and its byte offset in the input. The `Display` text is
/// lowercase, has no trailing period, and where useful says what is accepted
/// instead.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PickleError {
    /// The whole pickle is longer than
    /// [`Limits::max_input_len`](crate::Limits::max_input_len); refused
    /// before any of it is decoded.
    InputTooLong {
        /// The input's length in bytes.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// The input ended before a `STOP` opcode.
    MissingStop {
        /// Offset at which the next opcode was expected.
        offset: usize,
    },
    /// An opcode's argument (or a length it declares) runs past the end of
    /// the input. Checked before anything is allocated for the argument.
    Truncated {
        /// The opcode.
        opcode: &'static str,
        /// Offset of the opcode.
        offset: usize,
        /// Bytes the argument needs.
        needed: u64,
        /// Bytes left in the input after the opcode.
        available: usize,
    },
    /// A byte that is not an opcode of any pickle protocol (0 to 5).
    UnknownOpcode {
        /// The byte.
        byte: u8,
        /// Offset of the byte.
        offset: usize,
    },
    /// A valid opcode that this decoder refuses on principle.
    ForbiddenOpcode {
        /// The opcode.
        opcode: &'static str,
        /// Offset of the opcode.
        offset: usize,
        /// Why it is refused.
        reason: &'static str,
    },
    /// A `PROTO` opcode naming a protocol above 5.
    UnsupportedProtocol {
        /// The protocol number found.
        version: u8,
        /// Offset of the opcode.
        offset: usize,
    },
    /// A `GLOBAL` or `STACK_GLOBAL` naming something other than the few
    /// data-only helpers and the allowlisted classes.
    GlobalNotAllowed {
        /// Module part of the global.
        module: String,
        /// Name part of the global.
        name: String,
        /// Offset of the opcode.
        offset: usize,
        /// What would have been accepted (derived from the allowlist).
        accepted: String,
    },
    /// A `REDUCE`, `NEWOBJ`, `NEWOBJ_EX` or `BUILD` that is not one of the
    /// exact shapes CPython uses for plain data and plain objects.
    InvalidCall {
        /// The opcode.
        opcode: &'static str,
        /// Offset of the opcode.
        offset: usize,
        /// What was wrong.
        reason: String,
    },
    /// An opcode needed more values than the stack holds (above the last
    /// mark).
    StackUnderflow {
        /// The opcode.
        opcode: &'static str,
        /// Offset of the opcode.
        offset: usize,
    },
    /// An opcode that collects items up to a `MARK` found no mark.
    MissingMark {
        /// The opcode.
        opcode: &'static str,
        /// Offset of the opcode.
        offset: usize,
    },
    /// An opcode found a value of the wrong type on the stack.
    WrongType {
        /// The opcode.
        opcode: &'static str,
        /// Offset of the opcode.
        offset: usize,
        /// The type it needed.
        expected: &'static str,
        /// The type it found.
        found: &'static str,
    },
    /// A memo lookup (`GET`, `BINGET`, `LONG_BINGET`) of an index that was
    /// never stored.
    MemoMissing {
        /// The opcode.
        opcode: &'static str,
        /// Offset of the opcode.
        offset: usize,
        /// The memo index.
        index: u64,
    },
    /// An opcode argument that does not parse (bad text integer or float,
    /// invalid UTF-8, negative length, odd number of dict items, ...).
    InvalidArgument {
        /// The opcode.
        opcode: &'static str,
        /// Offset of the opcode.
        offset: usize,
        /// What was wrong.
        reason: String,
    },
    /// An integer that does not fit in an `i64`.
    IntTooLarge {
        /// The opcode.
        opcode: &'static str,
        /// Offset of the opcode.
        offset: usize,
    },
    /// A string or bytes value longer than [`Limits::max_str_len`](crate::Limits::max_str_len).
    StringTooLong {
        /// The opcode.
        opcode: &'static str,
        /// Offset of the opcode.
        offset: usize,
        /// The length found, in bytes.
        len: u64,
        /// The limit.
        limit: usize,
    },
    /// More memo entries than [`Limits::max_memo`](crate::Limits::max_memo).
    MemoLimit {
        /// Offset of the memoizing opcode.
        offset: usize,
        /// The limit.
        limit: usize,
    },
    /// More values than [`Limits::max_values`](crate::Limits::max_values),
    /// either while decoding or in the result (shared values count once per
    /// copy).
    ValueLimit {
        /// The limit.
        limit: usize,
    },
    /// More values and open marks on the stack at once than
    /// [`Limits::max_values`](crate::Limits::max_values): a flood of `DUP`,
    /// memo `GET` or `MARK` opcodes, which create no value but grow the
    /// stack.
    StackLimit {
        /// Offset of the opcode that would grow the stack further.
        offset: usize,
        /// The limit.
        limit: usize,
    },
    /// More string and bytes content in the result than
    /// [`Limits::max_total_bytes`](crate::Limits::max_total_bytes).
    ByteLimit {
        /// The limit.
        limit: usize,
    },
    /// Containers nested deeper than [`Limits::max_depth`](crate::Limits::max_depth).
    DepthLimit {
        /// The limit.
        limit: usize,
    },
    /// A container that contains itself (e.g. `l = []; l.append(l)`), which
    /// a tree of [`Value`](crate::Value)s cannot represent.
    RecursiveStructure,
    /// A class or helper function (a global) that ended up in the data
    /// itself rather than being used to build an object.
    GlobalAsValue {
        /// Module part of the global.
        module: String,
        /// Name part of the global.
        name: String,
    },
    /// A malformed protocol 4 frame.
    Frame {
        /// Offset of the problem.
        offset: usize,
        /// What was wrong.
        reason: &'static str,
    },
    /// `STOP` was reached with other than exactly one value on the stack, or
    /// with an open `MARK`.
    BadStop {
        /// Offset of `STOP`.
        offset: usize,
        /// Values on the stack.
        values: usize,
        /// Open marks.
        marks: usize,
    },
    /// Bytes follow the `STOP` opcode.
    TrailingBytes {
        /// Offset of the first byte after `STOP`.
        offset: usize,
        /// How many bytes follow.
        count: usize,
    },
}

impl fmt::Display for PickleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InputTooLong { len, limit } => write!(
                f,
                "pickle of {len} bytes is longer than the limit of {limit} bytes; refused \
                 without decoding"
            ),
            Self::MissingStop { offset } => {
                write!(f, "pickle ends at offset {offset} without a STOP opcode")
            }
            Self::Truncated {
                opcode,
                offset,
                needed,
                available,
            } => write!(
                f,
                "pickle truncated: {opcode} at offset {offset} needs {needed} more bytes \
                 but only {available} remain"
            ),
            Self::UnknownOpcode { byte, offset } => {
                write!(f, "unknown pickle opcode 0x{byte:02x} at offset {offset}")
            }
            Self::ForbiddenOpcode {
                opcode,
                offset,
                reason,
            } => write!(
                f,
                "pickle opcode {opcode} at offset {offset} is not allowed: {reason}"
            ),
            Self::UnsupportedProtocol { version, offset } => write!(
                f,
                "unsupported pickle protocol {version} at offset {offset} (protocols 0 to 5 \
                 are accepted)"
            ),
            Self::GlobalNotAllowed {
                module,
                name,
                offset,
                accepted,
            } => write!(
                f,
                "pickle refers to global {module}.{name} at offset {offset}, which is not \
                 allowed (only {accepted} are accepted)"
            ),
            Self::InvalidCall {
                opcode,
                offset,
                reason,
            } => write!(f, "refused {opcode} at offset {offset}: {reason}"),
            Self::StackUnderflow { opcode, offset } => {
                write!(f, "pickle stack underflow at {opcode}, offset {offset}")
            }
            Self::MissingMark { opcode, offset } => {
                write!(f, "no MARK on the stack for {opcode} at offset {offset}")
            }
            Self::WrongType {
                opcode,
                offset,
                expected,
                found,
            } => write!(
                f,
                "wrong type on the stack for {opcode} at offset {offset}: expected {expected}, \
                 found {found}"
            ),
            Self::MemoMissing {
                opcode,
                offset,
                index,
            } => write!(
                f,
                "memo entry {index} used by {opcode} at offset {offset} was never stored"
            ),
            Self::InvalidArgument {
                opcode,
                offset,
                reason,
            } => write!(
                f,
                "invalid argument to {opcode} at offset {offset}: {reason}"
            ),
            Self::IntTooLarge { opcode, offset } => write!(
                f,
                "integer in {opcode} at offset {offset} does not fit in 64 bits (only \
                 integers from -2**63 to 2**63-1 are accepted)"
            ),
            Self::StringTooLong {
                opcode,
                offset,
                len,
                limit,
            } => write!(
                f,
                "string or bytes in {opcode} at offset {offset} holds {len} bytes, more than the \
                 limit of {limit}"
            ),
            Self::MemoLimit { offset, limit } => write!(
                f,
                "pickle stores more than {limit} memo entries (at offset {offset})"
            ),
            Self::ValueLimit { limit } => write!(
                f,
                "pickle expands to more than {limit} values (shared values count once per use)"
            ),
            Self::StackLimit { offset, limit } => write!(
                f,
                "pickle holds more than {limit} values and marks on its stack (at offset {offset})"
            ),
            Self::ByteLimit { limit } => write!(
                f,
                "pickle expands to more than {limit} bytes of string and bytes data \
                 (shared values count once per use)"
            ),
            Self::DepthLimit { limit } => {
                write!(f, "pickle nests containers more than {limit} levels deep")
            }
            Self::RecursiveStructure => write!(
                f,
                "pickle contains a container that contains itself, which is not supported"
            ),
            Self::GlobalAsValue { module, name } => write!(
                f,
                "pickle uses global {module}.{name} as a value (only plain data and objects \
                 are accepted)"
            ),
            Self::Frame { offset, reason } => {
                write!(f, "bad pickle frame at offset {offset}: {reason}")
            }
            Self::BadStop {
                offset,
                values,
                marks,
            } => write!(
                f,
                "pickle stops at offset {offset} with {values} values and {marks} open marks on \
                 the stack (exactly one value and no mark expected)"
            ),
            Self::TrailingBytes { offset, count } => write!(
                f,
                "{count} unexpected bytes after the pickle's STOP opcode, at offset {offset}"
            ),
        }
    }
}

impl std::error::Error for PickleError {}
