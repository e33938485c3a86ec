//! What [`decode`](crate::decode) accepts: size bounds and the class allowlist.

/// Bounds and class allowlist for [`decode`](crate::decode).
///
/// Start from [`Limits::default()`] (plain data only, bounds below) and
/// adjust with the `with_*` / `allow_*` methods:
///
/// ```
/// use iris_pickle::Limits;
/// let limits = Limits::default().allow_class("Iris").with_max_depth(8);
/// assert_eq!(limits.max_depth(), 8);
/// assert!(limits.is_class_allowed("iris", "Iris"));
/// assert!(!limits.is_class_allowed("os", "system"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    max_input_len: usize,
    max_depth: usize,
    max_values: usize,
    max_memo: usize,
    max_str_len: usize,
    max_total_bytes: usize,
    classes: Vec<ClassRule>,
}

/// One allowlist entry: a class name, optionally tied to one module.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ClassRule {
    module: Option<String>,
    name: String,
}

impl Limits {
    /// Default for [`max_input_len`](Self::max_input_len): 64 MiB, the
    /// largest frame a `multiprocessing` peer accepts by default.
    pub const DEFAULT_MAX_INPUT_LEN: usize = 64 << 20;
    /// Default for [`max_depth`](Self::max_depth).
    pub const DEFAULT_MAX_DEPTH: usize = 32;
    /// Highest accepted [`max_depth`](Self::max_depth); larger settings are
    /// clamped to it, because dropping or comparing a [`Value`](crate::Value)
    /// recurses once per level.
    pub const MAX_DEPTH_CEILING: usize = 512;
    /// Default for [`max_values`](Self::max_values).
    pub const DEFAULT_MAX_VALUES: usize = 1_000_000;
    /// Default for [`max_memo`](Self::max_memo).
    pub const DEFAULT_MAX_MEMO: usize = 1_000_000;
    /// Default for [`max_str_len`](Self::max_str_len): 16 MiB.
    pub const DEFAULT_MAX_STR_LEN: usize = 16 << 20;
    /// Default for [`max_total_bytes`](Self::max_total_bytes): 64 MiB.
    pub const DEFAULT_MAX_TOTAL_BYTES: usize = 64 << 20;

    /// Maximum length in bytes of the whole pickle. A longer input is
    /// refused before its first opcode is read, so its cost is one
    /// comparison however long it is.
    pub fn max_input_len(&self) -> usize {
        self.max_input_len
    }

    /// Maximum nesting of containers (tuple, list, dict, object) in the
    /// result. A flat list is depth 1; an object with its state dict is
    /// depth 2. Self-containing structures are refused separately.
    pub fn max_depth(&self) -> usize {
        self.max_depth
    }

    /// Maximum number of values, counted three times over: the values
    /// created while running the pickle (at most one per opcode), the
    /// values and marks on the stack at once (`DUP`, memo `GET` and `MARK`
    /// grow the stack without creating a value), and the values in the
    /// result, where a value shared through the memo counts once per place
    /// it appears. This is what stops "billion laughs" memo bombs.
    pub fn max_values(&self) -> usize {
        self.max_values
    }

    /// Maximum number of distinct memo entries.
    pub fn max_memo(&self) -> usize {
        self.max_memo
    }

    /// Maximum length in bytes of one string or bytes value (UTF-8 length
    /// for strings).
    pub fn max_str_len(&self) -> usize {
        self.max_str_len
    }

    /// Maximum total length of all strings and bytes in the result
    /// (including class and module names), where a string shared through
    /// the memo counts once per place it appears; and, separately, of the
    /// bytes that `_codecs.encode` calls make while the pickle runs (the
    /// only string data not read from the input).
    pub fn max_total_bytes(&self) -> usize {
        self.max_total_bytes
    }

    /// Sets [`max_input_len`](Self::max_input_len).
    #[must_use]
    pub fn with_max_input_len(mut self, bytes: usize) -> Self {
        self.max_input_len = bytes;
        self
    }

    /// Sets [`max_depth`](Self::max_depth), clamped to
    /// [`MAX_DEPTH_CEILING`](Self::MAX_DEPTH_CEILING).
    #[must_use]
    pub fn with_max_depth(mut self, depth: usize) -> Self {
        self.max_depth = depth.min(Self::MAX_DEPTH_CEILING);
        self
    }

    /// Sets [`max_values`](Self::max_values).
    #[must_use]
    pub fn with_max_values(mut self, values: usize) -> Self {
        self.max_values = values;
        self
    }

    /// Sets [`max_memo`](Self::max_memo).
    #[must_use]
    pub fn with_max_memo(mut self, entries: usize) -> Self {
        self.max_memo = entries;
        self
    }

    /// Sets [`max_str_len`](Self::max_str_len).
    #[must_use]
    pub fn with_max_str_len(mut self, bytes: usize) -> Self {
        self.max_str_len = bytes;
        self
    }

    /// Sets [`max_total_bytes`](Self::max_total_bytes).
    #[must_use]
    pub fn with_max_total_bytes(mut self, bytes: usize) -> Self {
        self.max_total_bytes = bytes;
        self
    }

    /// Accepts objects of the class called `name` in any module (for
    /// example `allow_class("Iris")` accepts `iris.Iris` and
    /// `__main__.Iris`). The module is reported in
    /// [`Value::Object`](crate::Value::Object) so the caller can still check
    /// it. Nothing is ever imported: the name only decides whether the
    /// object's data is returned or refused.
    #[must_use]
    pub fn allow_class(mut self, name: &str) -> Self {
        self.classes.push(ClassRule {
            module: None,
            name: name.to_owned(),
        });
        self
    }

    /// Accepts objects of the class `module.name` only.
    #[must_use]
    pub fn allow_class_in(mut self, module: &str, name: &str) -> Self {
        self.classes.push(ClassRule {
            module: Some(module.to_owned()),
            name: name.to_owned(),
        });
        self
    }

    /// Whether objects of class `module.name` are accepted.
    pub fn is_class_allowed(&self, module: &str, name: &str) -> bool {
        self.classes
            .iter()
            .any(|rule| rule.name == name && rule.module.as_deref().is_none_or(|m| m == module))
    }

    /// Human-readable description of what is accepted, used in errors:
    /// `"plain data"` or `"plain data and objects of class Iris"`.
    pub(crate) fn accepted(&self) -> String {
        if self.classes.is_empty() {
            return "plain data".to_owned();
        }
        let names: Vec<String> = self
            .classes
            .iter()
            .map(|rule| match &rule.module {
                Some(module) => format!("{module}.{}", rule.name),
                None => rule.name.clone(),
            })
            .collect();
        let noun = if names.len() == 1 { "class" } else { "classes" };
        format!("plain data and objects of {noun} {}", names.join(", "))
    }
}

impl Default for Limits {
    /// Plain data only (no class allowed) with the `DEFAULT_*` bounds.
    fn default() -> Self {
        Self {
            max_input_len: Self::DEFAULT_MAX_INPUT_LEN,
            max_depth: Self::DEFAULT_MAX_DEPTH,
            max_values: Self::DEFAULT_MAX_VALUES,
            max_memo: Self::DEFAULT_MAX_MEMO,
            max_str_len: Self::DEFAULT_MAX_STR_LEN,
            max_total_bytes: Self::DEFAULT_MAX_TOTAL_BYTES,
            classes: Vec::new(),
        }
    }
}
