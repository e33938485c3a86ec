//! Formats `f64` exactly like CPython's `repr(float)` (and `str(float)`,
//! `f'{x}'`), so our output is byte-identical to the Python seed's.
//!
//! CPython prints the shortest digit string that round-trips, in positional
//! notation when the decimal exponent `decpt` (value = 0.DIGITS × 10^decpt)
//! satisfies `-4 < decpt <= 16` and in exponent notation otherwise:
//!
//! | value            | output               |
//! |------------------|----------------------|
//! | `1.0`            | `1.0`                |
//! | `1e15`           | `1000000000000000.0` |
//! | `1e16`           | `1e+16`              |
//! | `1e-4`           | `0.0001`             |
//! | `1e-5`           | `1e-05`              |
//! | `-0.0`           | `-0.0`               |
//! | `f64::INFINITY`  | `inf`                |
//! | `f64::NAN`       | `nan`                |
//!
//! The shortest digits come from the `zmij` crate (Schubfach-based, about
//! twice as fast as `ryu` here); this module only moves the decimal point and
//! fixes the exponent style. zmij's own layout already equals CPython's for
//! `1e-4 <= |x| < 1e16` (which covers every data-set area) and for exponents
//! of two or more digits, so those values are returned after a cheap layout
//! check; one-digit exponents (`1e-9 <= |x| < 1e-5`) get a zero inserted.
//! The rest (`1e-5 <= |x| < 1e-4`, which zmij prints positionally) and any
//! layout a future zmij might pick go through a general rearrangement.
//!
//! ```
//! use iris_model::py_float::{PyFloatBuffer, PyRepr, py_repr};
//!
//! let mut buffer = PyFloatBuffer::new();
//! assert_eq!(buffer.format(0.1 + 0.2), "0.30000000000000004");
//! assert_eq!(buffer.format(1e22), "1e+22");
//! assert_eq!(py_repr(2.5e-7), "2.5e-07");
//! assert_eq!(format!("Area: {}", PyRepr(18.13)), "Area: 18.13");
//! ```

use std::fmt;

/// Room for the longest output we can produce: a sign, 17 significant digits,
/// a point and an exponent need at most 24 bytes, and the general path bounds
/// anything else (24 digits, 7 exponent digits) well below this.
const CAPACITY: usize = 48;

/// At most 17 significant digits are needed for any `f64`; the slack only
/// matters if the digit source ever pads, and then only zeros are dropped.
const MAX_DIGITS: usize = 24;

/// Reusable, allocation-free formatter, like `ryu::Buffer`.
///
/// Create one per thread or loop and call [`format`](Self::format) for each
/// value; creating one is also cheap (no heap, just a small stack array).
pub struct PyFloatBuffer {
    shortest: zmij::Buffer,
    bytes: [u8; CAPACITY],
}

impl PyFloatBuffer {
    /// Makes an empty buffer.
    #[must_use]
    pub fn new() -> Self {
        PyFloatBuffer {
            shortest: zmij::Buffer::new(),
            bytes: [0; CAPACITY],
        }
    }

    /// Formats `x` as CPython's `repr(x)` would, into this buffer.
    #[must_use = "formatting has no side effect besides the returned text"]
    #[inline]
    pub fn format(&mut self, x: f64) -> &str {
        if !x.is_finite() {
            // CPython drops the sign of NaN but keeps the sign of infinity.
            return if x.is_nan() {
                "nan"
            } else if x > 0.0 {
                "inf"
            } else {
                "-inf"
            };
        }
        if x == 0.0 {
            return if x.is_sign_negative() { "-0.0" } else { "0.0" };
        }
        let shortest = self.shortest.format_finite(x);
        let bytes = shortest.as_bytes();
        // zmij already lays out most values as CPython does; the checks are
        // O(1) or a short memchr, so this path stays within a few ns of zmij.
        let verbatim = if (1e-4..1e16).contains(&x.abs()) {
            // CPython is positional here (-4 < decpt <= 16): the bounds are
            // exact because 1e16 is a double and 1e-4 parses to the smallest
            // double whose shortest digits have decpt == -3.
            is_plain_positional(bytes)
        } else {
            is_python_exponent(bytes)
        };
        if verbatim {
            return shortest;
        }
        let len = pad_exponent(bytes, &mut self.bytes)
            .unwrap_or_else(|| rearrange(bytes, &mut self.bytes));
        self.bytes
            .get(..len)
            .and_then(|text| std::str::from_utf8(text).ok())
            // Unreachable (we only write ASCII); zmij's text still round-trips.
            .unwrap_or(shortest)
    }
}

impl Default for PyFloatBuffer {
    fn default() -> Self {
        PyFloatBuffer::new()
    }
}

impl fmt::Debug for PyFloatBuffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PyFloatBuffer").finish_non_exhaustive()
    }
}

/// Formats `x` as CPython's `repr(x)` into a new `String`; prefer
/// [`PyFloatBuffer`] in loops.
#[must_use]
pub fn py_repr(x: f64) -> String {
    PyFloatBuffer::new().format(x).to_owned()
}

/// Displays the wrapped value as CPython's `repr` would, so it can be used
/// in `format!`/`write!` without an intermediate `String`. Width and
/// alignment flags apply as they do for strings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PyRepr(pub f64);

impl fmt::Display for PyRepr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(PyFloatBuffer::new().format(self.0))
    }
}

/// True when `text` is `[-]digits.digits`, CPython's positional layout.
/// Not a full validation: zmij never emits stray bytes or trailing zeros,
/// and the CPython comparison test guards upgrades of zmij.
#[inline]
fn is_plain_positional(text: &[u8]) -> bool {
    matches!(text.last(), Some(b'0'..=b'9')) && text.contains(&b'.') && !text.contains(&b'e')
}

/// True when `text` is `[-]d[.ddd]e±XX[X]` with no trailing fraction zero and
/// at least two exponent digits, CPython's exponent layout. zmij's layout
/// differs only for one-digit exponents, which CPython pads (`1e-07`).
#[inline]
fn is_python_exponent(text: &[u8]) -> bool {
    let unsigned = text.strip_prefix(b"-").unwrap_or(text);
    let Some(e_at) = unsigned.iter().rposition(|&byte| byte == b'e') else {
        return false;
    };
    let (mantissa, exponent) = unsigned.split_at(e_at);
    let mantissa_ok = matches!(
        mantissa,
        [b'1'..=b'9'] | [b'1'..=b'9', b'.', .., b'1'..=b'9']
    );
    let exponent_ok = matches!(
        exponent,
        [b'e', b'+' | b'-', b'1'..=b'9', b'0'..=b'9']
            | [b'e', b'+' | b'-', b'1'..=b'9', b'0'..=b'9', b'0'..=b'9']
    );
    mantissa_ok && exponent_ok
}

/// Rewrites zmij's one-digit exponents (`2.5e-7`, for `1e-9 <= |x| < 1e-5`)
/// into CPython's two-digit form (`2.5e-07`) without a full re-parse.
/// Returns `None` for any other layout, leaving it to [`rearrange`].
fn pad_exponent(text: &[u8], out: &mut [u8; CAPACITY]) -> Option<usize> {
    let [
        mantissa @ ..,
        b'e',
        sign @ (b'+' | b'-'),
        digit @ b'1'..=b'9',
    ] = text
    else {
        return None;
    };
    let unsigned = mantissa.strip_prefix(b"-").unwrap_or(mantissa);
    if !matches!(
        unsigned,
        [b'1'..=b'9'] | [b'1'..=b'9', b'.', .., b'1'..=b'9']
    ) {
        return None;
    }
    let mut cursor = Cursor::new(out);
    cursor.extend(mantissa);
    cursor.extend(&[b'e', *sign, b'0', *digit]);
    Some(cursor.len)
}

/// A finite nonzero number as CPython's `_Py_dg_dtoa` describes it:
/// value = ±0.DIGITS × 10^decpt, with no leading or trailing zero digits.
struct Decimal {
    negative: bool,
    digits: [u8; MAX_DIGITS],
    len: usize,
    decpt: i32,
}

impl Decimal {
    /// Reads any plain decimal text (`-12.5`, `0.00012`, `1.5e16`, `1e-7`,
    /// `30000.0`), so correctness does not depend on the digit source's layout.
    fn parse(text: &[u8]) -> Decimal {
        let mut decimal = Decimal {
            negative: false,
            digits: [b'0'; MAX_DIGITS],
            len: 0,
            decpt: 0,
        };
        let mut seen_point = false;
        for (index, &byte) in text.iter().enumerate() {
            match byte {
                b'-' if index == 0 => decimal.negative = true,
                b'.' => seen_point = true,
                // A leading zero only shifts the point, and only after it.
                b'0' if decimal.len == 0 => decimal.decpt -= i32::from(seen_point),
                b'0'..=b'9' => {
                    if let Some(slot) = decimal.digits.get_mut(decimal.len) {
                        *slot = byte;
                        decimal.len += 1;
                    }
                    if !seen_point {
                        decimal.decpt += 1;
                    }
                }
                b'e' | b'E' => {
                    let exponent = text.get(index + 1..).unwrap_or_default();
                    decimal.decpt = decimal.decpt.saturating_add(parse_exponent(exponent));
                    break;
                }
                _ => {}
            }
        }
        while decimal.len > 0 && decimal.digits.get(decimal.len - 1) == Some(&b'0') {
            decimal.len -= 1;
        }
        decimal
    }

    fn digits(&self) -> &[u8] {
        self.digits.get(..self.len).unwrap_or_default()
    }
}

/// Parses `[+-]digits`, clamping so absurd input cannot overflow.
fn parse_exponent(text: &[u8]) -> i32 {
    let (negative, digits) = match text {
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        _ => (false, text),
    };
    let mut value: i32 = 0;
    for &byte in digits.iter().filter(|byte| byte.is_ascii_digit()) {
        value = (value * 10 + i32::from(byte - b'0')).min(1_000_000);
    }
    if negative { -value } else { value }
}

/// The general path: re-lays out any decimal text the way CPython's
/// `format_float_short` does for `repr`.
fn rearrange(text: &[u8], out: &mut [u8; CAPACITY]) -> usize {
    let decimal = Decimal::parse(text);
    let digits = decimal.digits();
    let mut cursor = Cursor::new(out);
    if decimal.negative {
        cursor.push(b'-');
    }
    let Some((&first, rest)) = digits.split_first() else {
        cursor.extend(b"0.0");
        return cursor.len;
    };
    let decpt = decimal.decpt;
    if -4 < decpt && decpt <= 16 {
        if decpt <= 0 {
            cursor.extend(b"0.");
            cursor.zeros(decpt.unsigned_abs());
            cursor.extend(digits);
        } else {
            match digits.split_at_checked(decpt.unsigned_abs() as usize) {
                Some((integer, fraction)) if !fraction.is_empty() => {
                    cursor.extend(integer);
                    cursor.push(b'.');
                    cursor.extend(fraction);
                }
                _ => {
                    cursor.extend(digits);
                    cursor.zeros(decpt.unsigned_abs().saturating_sub(digits.len() as u32));
                    cursor.extend(b".0");
                }
            }
        }
    } else {
        cursor.push(first);
        if !rest.is_empty() {
            cursor.push(b'.');
            cursor.extend(rest);
        }
        let exponent = decpt - 1;
        cursor.extend(&[b'e', if exponent < 0 { b'-' } else { b'+' }]);
        cursor.exponent(exponent.unsigned_abs());
    }
    cursor.len
}

/// Bounds-checked appends into the output array; overflow is impossible for
/// the lengths we produce, and would truncate rather than panic.
struct Cursor<'a> {
    out: &'a mut [u8; CAPACITY],
    len: usize,
}

impl<'a> Cursor<'a> {
    fn new(out: &'a mut [u8; CAPACITY]) -> Self {
        Cursor { out, len: 0 }
    }

    fn push(&mut self, byte: u8) {
        if let Some(slot) = self.out.get_mut(self.len) {
            *slot = byte;
            self.len += 1;
        }
    }

    fn extend(&mut self, bytes: &[u8]) {
        if let Some(slots) = self.out.get_mut(self.len..self.len + bytes.len()) {
            slots.copy_from_slice(bytes);
            self.len += bytes.len();
        }
    }

    fn zeros(&mut self, count: u32) {
        for _ in 0..count.min(CAPACITY as u32) {
            self.push(b'0');
        }
    }

    /// Writes at least two digits, as C's `%+.02d` does.
    fn exponent(&mut self, value: u32) {
        let mut reversed = [b'0'; 10];
        let mut remaining = value;
        let mut count = 0;
        for slot in &mut reversed {
            *slot = b'0' + (remaining % 10) as u8;
            remaining /= 10;
            count += 1;
            if remaining == 0 && count >= 2 {
                break;
            }
        }
        for &digit in reversed.iter().take(count).rev() {
            self.push(digit);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repr(x: f64) -> String {
        py_repr(x)
    }

    /// The general path alone, to check it against the fast paths.
    fn general(x: f64) -> String {
        if !x.is_finite() || x == 0.0 {
            return repr(x);
        }
        let mut shortest = zmij::Buffer::new();
        let mut out = [0; CAPACITY];
        let len = rearrange(shortest.format_finite(x).as_bytes(), &mut out);
        String::from_utf8(out[..len].to_vec()).expect("ascii")
    }

    #[test]
    fn special_values() {
        assert_eq!(repr(0.0), "0.0");
        assert_eq!(repr(-0.0), "-0.0");
        assert_eq!(repr(f64::INFINITY), "inf");
        assert_eq!(repr(f64::NEG_INFINITY), "-inf");
        assert_eq!(repr(f64::NAN), "nan");
        assert_eq!(repr(-f64::NAN), "nan");
        assert_eq!(repr(f64::from_bits(0x7ff0_0000_0000_0001)), "nan");
    }

    #[test]
    fn positional_and_exponent_thresholds() {
        let cases = [
            (1.0, "1.0"),
            (-1.0, "-1.0"),
            (0.1, "0.1"),
            (18.13, "18.13"),
            (100.0, "100.0"),
            (1e15, "1000000000000000.0"),
            (9999999999999998.0, "9999999999999998.0"),
            (1e16, "1e+16"),
            (1.5e16, "1.5e+16"),
            (-1e16, "-1e+16"),
            (1e17, "1e+17"),
            (123456789012345680.0, "1.2345678901234568e+17"),
            (1e22, "1e+22"),
            (1e100, "1e+100"),
            (0.001, "0.001"),
            (0.0001, "0.0001"),
            (0.00012, "0.00012"),
            (-0.0001, "-0.0001"),
            (1e-5, "1e-05"),
            (1.2e-5, "1.2e-05"),
            (9.999999999999999e-5, "9.999999999999999e-05"),
            (-1e-5, "-1e-05"),
            (1e-7, "1e-07"),
            (1e-10, "1e-10"),
            (0.30000000000000004, "0.30000000000000004"),
            (f64::MAX, "1.7976931348623157e+308"),
            (f64::MIN, "-1.7976931348623157e+308"),
            (f64::MIN_POSITIVE, "2.2250738585072014e-308"),
            (5e-324, "5e-324"),
            (2.5e-310, "2.5e-310"),
        ];
        for (value, expected) in cases {
            assert_eq!(repr(value), expected, "{value:e}");
            assert_eq!(general(value), expected, "general path, {value:e}");
        }
    }

    #[test]
    fn neighbours_of_the_thresholds() {
        let below_1e16 = f64::from_bits(1e16_f64.to_bits() - 1);
        assert_eq!(repr(below_1e16), "9999999999999998.0");
        let above_1e16 = f64::from_bits(1e16_f64.to_bits() + 1);
        assert_eq!(repr(above_1e16), "1.0000000000000002e+16");
        let below_1e4 = f64::from_bits(1e-4_f64.to_bits() - 1);
        assert_eq!(repr(below_1e4), "9.999999999999999e-05");
        let above_1e4 = f64::from_bits(1e-4_f64.to_bits() + 1);
        assert_eq!(repr(above_1e4), "0.00010000000000000002");
    }

    #[test]
    fn fast_paths_agree_with_the_general_path() {
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut buffer = PyFloatBuffer::new();
        for round in 0..200_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let value = if round % 2 == 0 {
                f64::from_bits(state)
            } else {
                // Spread over the decades around both thresholds.
                let exponent = (state % 30) as i32 - 8;
                (state >> 11) as f64 / (1_u64 << 53) as f64 * 10_f64.powi(exponent)
            };
            assert_eq!(
                buffer.format(value),
                general(value),
                "{:#x}",
                value.to_bits()
            );
        }
    }

    #[test]
    fn general_path_reads_any_decimal_layout() {
        let cases: [(&[u8], &str); 10] = [
            (b"1e16", "1e+16"),
            (b"1.5E16", "1.5e+16"),
            (b"10000000000000000", "1e+16"),
            (b"0.00001", "1e-05"),
            (b"00012.500", "12.5"),
            (b"-0.000", "-0.0"),
            (b"1.0e-1", "0.1"),
            (b"123e-2", "1.23"),
            (b"1e+999999999999", "1e+1000000"),
            (b"", "0.0"),
        ];
        for (text, expected) in cases {
            let mut out = [0; CAPACITY];
            let len = rearrange(text, &mut out);
            assert_eq!(&out[..len], expected.as_bytes(), "{}", text.escape_ascii());
        }
    }

    #[test]
    fn layout_checks_reject_what_cpython_would_not_print() {
        let positional: [&[u8]; 4] = [b"1.5", b"-0.0001", b"100.0", b"9999999999999998.0"];
        for text in positional {
            assert!(is_plain_positional(text), "{}", text.escape_ascii());
        }
        let not_positional: [&[u8]; 5] = [b"100", b"1.", b"1e5", b"1.5e+16", b""];
        for text in not_positional {
            assert!(!is_plain_positional(text), "{}", text.escape_ascii());
        }
        let exponent: [&[u8]; 5] = [b"1e+16", b"-5e-324", b"1.5e+16", b"1.25e-10", b"9e+99"];
        for text in exponent {
            assert!(is_python_exponent(text), "{}", text.escape_ascii());
        }
        let not_exponent: [&[u8]; 10] = [
            b"1e16",
            b"1e-7",
            b"1.50e+16",
            b"1.5e+016",
            b"0.5e+16",
            b"1.e+16",
            b"1e+0",
            b"1e+1234",
            b"12e+16",
            b"1.5",
        ];
        for text in not_exponent {
            assert!(!is_python_exponent(text), "{}", text.escape_ascii());
        }
    }

    #[test]
    fn pad_exponent_handles_only_one_digit_exponents() {
        let mut out = [0; CAPACITY];
        let len = pad_exponent(b"-2.5e-7", &mut out);
        assert_eq!(len.map(|len| &out[..len]), Some(&b"-2.5e-07"[..]));
        let len = pad_exponent(b"1e-9", &mut out);
        assert_eq!(len.map(|len| &out[..len]), Some(&b"1e-09"[..]));
        let others: [&[u8]; 6] = [b"1e-10", b"1e-0", b"2.50e-7", b"0.5e-7", b"1e7", b"0.00001"];
        for text in others {
            assert_eq!(
                pad_exponent(text, &mut out),
                None,
                "{}",
                text.escape_ascii()
            );
        }
    }

    #[test]
    fn display_wrapper() {
        assert_eq!(PyRepr(1e-5).to_string(), "1e-05");
        assert_eq!(format!("[{:>6}]", PyRepr(0.5)), "[   0.5]");
        assert_eq!(PyRepr(1e16).to_string(), "1e+16");
    }
}
