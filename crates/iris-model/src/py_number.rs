//! Measurements and areas as a Python program computes them.
//!
//! The seed's `Iris` dataclass does not enforce its `float` annotations, so a
//! Python client may well send `Iris(5, 3, 1, 1, 'setosa')`; the seed's
//! listener then computes `5 * 3 + 1 * 1` in integer arithmetic and prints
//! `Area: 16`, not `Area: 16.0`. [`PyIris`] keeps each measurement as the
//! `int` or `float` it was and computes [`PyIris::total_area`] with Python's
//! rules:
//!
//! * `int * int` and `int + int` are exact. Measurements are `int`s of at
//!   most 64 bits (the pickle decoder refuses larger ones), so a product fits
//!   in an `i128` (below 2**126 in magnitude) and so does the sum of two
//!   products of positive measurements (below 2**127).
//! * `int` op `float` converts the `int` to the nearest `float`, ties to
//!   even, as CPython's `float(int)` does (Rust's `as f64` from `i64` and
//!   `i128` rounds the same way), then computes in `float`.
//! * `float` op `float` is IEEE 754 arithmetic, as for [`Iris`].
//!
//! Areas print as Python prints them: an `int` area as its decimal digits
//! (`repr(int)`), a `float` one as [`PyRepr`] does.
//!
//! ```
//! use iris_model::{PyArea, PyIris, PyNumber, Species};
//!
//! let ints = PyIris::new([PyNumber::Int(5), PyNumber::Int(3), PyNumber::Int(1), PyNumber::Int(1)],
//!                        Species::Setosa)?;
//! assert_eq!(ints.total_area(), PyArea::Int(16));
//! assert_eq!(ints.total_area().to_string(), "16");
//!
//! let big = PyNumber::Int(1 << 62);
//! let huge = PyIris::new([big, big, PyNumber::Int(1), PyNumber::Int(1)], Species::Setosa)?;
//! assert_eq!(huge.total_area().to_string(), "21267647932558653966460912964485513217");
//!
//! let mixed = PyIris::new([PyNumber::Int(5), PyNumber::Float(3.5), PyNumber::Float(1.4),
//!                          PyNumber::Float(0.2)], Species::Setosa)?;
//! assert_eq!(mixed.total_area().to_string(), "17.78");
//! # Ok::<(), iris_model::ModelError>(())
//! ```

use std::fmt;

use serde::{Serialize, Serializer};

use crate::py_float::PyRepr;
use crate::{Iris, ModelError, Species};

/// A number as a Python program may give it: an `int` (of at most 64 bits)
/// or a `float`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PyNumber {
    /// A Python `int`.
    Int(i64),
    /// A Python `float`.
    Float(f64),
}

impl PyNumber {
    /// The nearest `f64`, as Python's `float(x)`.
    #[must_use]
    pub fn to_f64(self) -> f64 {
        match self {
            // Round to nearest, ties to even: CPython's int-to-float rule.
            Self::Int(i) => i as f64,
            Self::Float(x) => x,
        }
    }
}

impl std::ops::Mul for PyNumber {
    type Output = PyArea;

    /// `self * other` with Python's rules.
    fn mul(self, other: PyNumber) -> PyArea {
        match (self, other) {
            // |i64| <= 2**63, so a product is at most 2**126: no overflow.
            (Self::Int(a), Self::Int(b)) => PyArea::Int(i128::from(a) * i128::from(b)),
            _ => PyArea::Float(self.to_f64() * other.to_f64()),
        }
    }
}

impl fmt::Display for PyNumber {
    /// Python's `repr`: `5` for an `int`, `5.0` for a `float`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Int(i) => fmt::Display::fmt(i, f),
            Self::Float(x) => fmt::Display::fmt(&PyRepr(*x), f),
        }
    }
}

impl Serialize for PyNumber {
    /// An integer number for an `int`, a float for a `float`.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Int(i) => serializer.serialize_i64(*i),
            Self::Float(x) => serializer.serialize_f64(*x),
        }
    }
}

/// An area as Python computes it: an exact `int` when every factor was an
/// `int`, otherwise a `float`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PyArea {
    /// An `int` result, exact.
    Int(i128),
    /// A `float` result.
    Float(f64),
}

impl std::ops::Add for PyArea {
    type Output = PyArea;

    /// `self + other` with Python's rules.
    fn add(self, other: PyArea) -> PyArea {
        match (self, other) {
            // Only for a sum of two products of `i64::MIN` could this
            // saturate; `PyIris` measurements are positive, so it never does.
            (Self::Int(a), Self::Int(b)) => Self::Int(a.saturating_add(b)),
            _ => Self::Float(self.to_f64() + other.to_f64()),
        }
    }
}

impl PyArea {
    /// The nearest `f64`, as Python's `float(x)`.
    #[must_use]
    pub fn to_f64(self) -> f64 {
        match self {
            // Round to nearest, ties to even, as CPython; an i128 is far
            // below f64::MAX, so never infinite.
            Self::Int(i) => i as f64,
            Self::Float(x) => x,
        }
    }
}

impl fmt::Display for PyArea {
    /// Python's `repr`: the digits of an `int`, [`PyRepr`] for a `float`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Int(i) => fmt::Display::fmt(i, f),
            Self::Float(x) => fmt::Display::fmt(&PyRepr(*x), f),
        }
    }
}

impl Serialize for PyArea {
    /// An integer number (all its digits) for an `int`, a float for a
    /// `float`.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Int(i) => serializer.serialize_i128(*i),
            Self::Float(x) => serializer.serialize_f64(*x),
        }
    }
}

/// A flower as a Python client sent it: a valid [`Iris`] plus each
/// measurement as the `int` or `float` it was, so that its area is computed
/// as Python computes it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PyIris {
    iris: Iris,
    measurements: [PyNumber; 4],
}

impl PyIris {
    /// Builds a flower from `[sepal_length, sepal_width, petal_length,
    /// petal_width]`, validated as [`Iris::new`] validates (an `int` must be
    /// greater than zero, a `float` finite and greater than zero).
    ///
    /// # Errors
    ///
    /// [`ModelError::InvalidMeasurement`] naming the first offending field.
    pub fn new(measurements: [PyNumber; 4], species: Species) -> Result<PyIris, ModelError> {
        let [a, b, c, d] = measurements.map(PyNumber::to_f64);
        // A positive i64 converts to a positive finite f64 and a
        // non-positive one to a non-positive f64: validating the
        // conversions validates the ints.
        let iris = Iris::new(a, b, c, d, species)?;
        Ok(PyIris { iris, measurements })
    }

    /// The flower, with each measurement as the nearest `f64`.
    #[must_use]
    pub fn iris(&self) -> &Iris {
        &self.iris
    }

    /// The measurements as sent: sepal length, sepal width, petal length,
    /// petal width.
    #[must_use]
    pub fn measurements(&self) -> [PyNumber; 4] {
        self.measurements
    }

    /// The seed's `total_area()`, `sepal_length * sepal_width +
    /// petal_length * petal_width`, with Python's `int` and `float` rules.
    /// Equal, bit for bit, to [`Iris::total_area`] when every measurement is
    /// a `float`.
    #[must_use]
    pub fn total_area(&self) -> PyArea {
        let [sl, sw, pl, pw] = self.measurements;
        sl * sw + pl * pw
    }
}

impl From<Iris> for PyIris {
    /// A flower whose measurements are all `float`s.
    fn from(iris: Iris) -> Self {
        PyIris {
            iris,
            measurements: [
                iris.sepal_length(),
                iris.sepal_width(),
                iris.petal_length(),
                iris.petal_width(),
            ]
            .map(PyNumber::Float),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use PyNumber::{Float, Int};

    fn area(measurements: [PyNumber; 4]) -> PyArea {
        PyIris::new(measurements, Species::Setosa)
            .expect("valid")
            .total_area()
    }

    #[test]
    fn int_arithmetic_is_exact_like_python() {
        // Python: 5 * 3 + 1 * 1 == 16
        assert_eq!(area([Int(5), Int(3), Int(1), Int(1)]), PyArea::Int(16));
        // Python: (2**63 - 1) ** 2 * 2 == 170141183460469231694793815568465002498
        let max = Int(i64::MAX);
        assert_eq!(
            area([max, max, max, max]).to_string(),
            "170141183460469231694793815568465002498"
        );
    }

    #[test]
    fn mixed_arithmetic_rounds_the_int_like_python() {
        // Python: 2**53 + 1 is not a float; (2**53 + 1) * 1.0 == 9007199254740992.0
        let odd = Int((1 << 53) + 1);
        assert_eq!(
            area([odd, Float(1.0), Float(1.0), Float(1.0)]).to_string(),
            "9007199254740992.0"
        );
        // Python: (2**62 * 2**62 + 3) + 0.5 == 2.1267647932558654e+37
        let big = Int(1 << 62);
        assert_eq!(
            area([big, big, Int(3), Float(0.5)]).to_string(),
            "2.1267647932558654e+37"
        );
        // An i128 sum converts with ties to even, as float(int) does:
        // float(2**64 + 2**11) == 1.8446744073709552e+19 (2**64, the even one)
        assert_eq!(PyArea::Int((1 << 64) + (1 << 11)).to_f64(), 2f64.powi(64));
        assert_eq!(
            PyArea::Int((1 << 64) + (1 << 11) + 1).to_f64(),
            2f64.powi(64) + 4096.0
        );
    }

    #[test]
    fn floats_alone_match_iris_bit_for_bit() {
        let iris = Iris::new(5.1, 3.5, 1.4, 0.2, Species::Setosa).expect("valid");
        let py = PyIris::from(iris);
        assert_eq!(py.total_area(), PyArea::Float(iris.total_area()));
        assert_eq!(py.total_area().to_string(), "18.13");
        assert_eq!(py.iris(), &iris);
    }

    #[test]
    fn non_positive_ints_are_refused_like_floats() {
        for bad in [0, -1, i64::MIN] {
            let err = PyIris::new([Int(1), Int(bad), Int(1), Int(1)], Species::Setosa)
                .expect_err("not positive");
            assert!(
                err.to_string().starts_with("invalid sepal_width: "),
                "{err}"
            );
        }
    }

    #[test]
    fn display_and_json_carry_python_values() {
        let shown: Vec<String> = [
            PyArea::Int(16),
            PyArea::Float(16.0),
            PyArea::Int(i128::from(i64::MAX) * 2),
        ]
        .iter()
        .map(ToString::to_string)
        .collect();
        assert_eq!(shown, ["16", "16.0", "18446744073709551614"]);
        assert_eq!(
            serde_json::to_string(&(PyArea::Int(1 << 100), PyNumber::Int(5), PyArea::Float(5.0)))
                .expect("json"),
            "[1267650600228229401496703205376,5,5.0]"
        );
    }
}
