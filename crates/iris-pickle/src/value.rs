//! The data a pickle may decode to.

/// A decoded pickle: plain Python data, plus objects of allowlisted classes.
///
/// Values are plain owned trees. Where the pickle shares one Python object in
/// several places (through its memo), the result holds one copy per place;
/// every copy is counted against [`Limits`](crate::Limits).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `None`.
    None,
    /// `True` / `False`.
    Bool(bool),
    /// An `int` that fits in 64 bits (larger ones are refused).
    Int(i64),
    /// A `float`.
    Float(f64),
    /// A `str`.
    Str(String),
    /// A `bytes` (or a protocol 5 `bytearray`).
    Bytes(Vec<u8>),
    /// A `tuple`.
    Tuple(Vec<Value>),
    /// A `list`.
    List(Vec<Value>),
    /// A `dict`, as `(key, value)` pairs in insertion order. Repeated keys
    /// are merged the way Python does (first position, last value) for
    /// `None`, bool/int/float, `str` and `bytes` keys; other keys are kept
    /// as they come.
    Dict(Vec<(Value, Value)>),
    /// An instance of an allowlisted class, e.g. `iris.Iris`.
    Object {
        /// The class's module as named by the pickle (e.g. `iris` or
        /// `__main__`).
        module: String,
        /// The class name (e.g. `Iris`).
        name: String,
        /// The instance state set by `BUILD`: a [`Value::Dict`] of its
        /// attributes (empty if the pickle had no `BUILD`).
        state: Box<Value>,
    },
}

impl Value {
    /// The Python type name of the value (`"str"`, `"dict"`, ...; `"object"`
    /// for [`Value::Object`]).
    pub fn type_name(&self) -> &'static str {
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
        }
    }

    /// The string, if this is a [`Value::Str`].
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The bytes, if this is a [`Value::Bytes`].
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Self::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// The float, if this is a [`Value::Float`] (no conversion from ints).
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Self::Float(x) => Some(*x),
            _ => None,
        }
    }

    /// The integer, if this is a [`Value::Int`] (no conversion from bools).
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Self::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// Looks up a `str` key: in a [`Value::Dict`] directly, or in the state
    /// dict of a [`Value::Object`]. `None` for other values or a missing key.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Self::Dict(entries) => entries
                .iter()
                .find(|(k, _)| k.as_str() == Some(key))
                .map(|(_, v)| v),
            Self::Object { state, .. } => state.get(key),
            _ => None,
        }
    }
}
