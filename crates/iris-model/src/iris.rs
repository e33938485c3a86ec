use serde::{Deserialize, Serialize};

use crate::{ModelError, Species};

/// The names of an [`Iris`]'s measurements, in order: the data set's
/// columns, the seed's dataclass attributes, the JSON fields and the
/// accessors. Everything that names them uses this list.
pub const MEASUREMENTS: [&str; 4] = ["sepal_length", "sepal_width", "petal_length", "petal_width"];

/// One flower of the Iris data set, measured in centimetres.
///
/// The fields are private and every constructor (including deserialization)
/// validates them, so holding an `Iris` proves its measurements are finite
/// and positive. The serialized field order is the order of
/// [`Iris::new`]'s parameters; postcard encodes fields positionally, so that
/// order is part of the native wire format.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawIris")]
pub struct Iris {
    sepal_length: f64,
    sepal_width: f64,
    petal_length: f64,
    petal_width: f64,
    species: Species,
}

/// The unchecked shape of an [`Iris`], so deserialization can reuse
/// [`Iris::new`]'s validation instead of trusting the peer.
#[derive(Deserialize)]
#[serde(rename = "Iris")]
struct RawIris {
    sepal_length: f64,
    sepal_width: f64,
    petal_length: f64,
    petal_width: f64,
    species: Species,
}

impl TryFrom<RawIris> for Iris {
    type Error = ModelError;

    fn try_from(raw: RawIris) -> Result<Self, Self::Error> {
        Iris::new(
            raw.sepal_length,
            raw.sepal_width,
            raw.petal_length,
            raw.petal_width,
            raw.species,
        )
    }
}

/// Checks one measurement. `value > 0.0` alone already rejects NaN but would
/// let `+inf` through, hence the explicit `is_finite`.
fn measurement(field: &'static str, value: f64) -> Result<f64, ModelError> {
    if value.is_finite() && value > 0.0 {
        Ok(value)
    } else {
        Err(ModelError::InvalidMeasurement { field, value })
    }
}

impl Iris {
    /// Builds a flower, rejecting any measurement that is not finite and
    /// greater than zero.
    ///
    /// # Errors
    ///
    /// [`ModelError::InvalidMeasurement`] naming the first offending field
    /// (in parameter order) and its value.
    pub fn new(
        sepal_length: f64,
        sepal_width: f64,
        petal_length: f64,
        petal_width: f64,
        species: Species,
    ) -> Result<Iris, ModelError> {
        let [sl, sw, pl, pw] = MEASUREMENTS;
        Ok(Iris {
            sepal_length: measurement(sl, sepal_length)?,
            sepal_width: measurement(sw, sepal_width)?,
            petal_length: measurement(pl, petal_length)?,
            petal_width: measurement(pw, petal_width)?,
            species,
        })
    }

    /// Sepal length in centimetres.
    #[must_use]
    pub fn sepal_length(&self) -> f64 {
        self.sepal_length
    }

    /// Sepal width in centimetres.
    #[must_use]
    pub fn sepal_width(&self) -> f64 {
        self.sepal_width
    }

    /// Petal length in centimetres.
    #[must_use]
    pub fn petal_length(&self) -> f64 {
        self.petal_length
    }

    /// Petal width in centimetres.
    #[must_use]
    pub fn petal_width(&self) -> f64 {
        self.petal_width
    }

    /// The flower's species.
    #[must_use]
    pub fn species(&self) -> Species {
        self.species
    }

    /// `sepal_length * sepal_width`, computed exactly as the Python seed
    /// does so that results are bit-identical.
    #[must_use]
    pub fn sepal_area(&self) -> f64 {
        self.sepal_length * self.sepal_width
    }

    /// `petal_length * petal_width`, computed exactly as the Python seed
    /// does so that results are bit-identical.
    #[must_use]
    pub fn petal_area(&self) -> f64 {
        self.petal_length * self.petal_width
    }

    /// `sepal_area() + petal_area()`, in that order and without fused
    /// multiply-add, because the Python seed rounds each product separately
    /// and our output must match it to the last bit.
    #[must_use]
    pub fn total_area(&self) -> f64 {
        self.sepal_area() + self.petal_area()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seed() -> Iris {
        Iris::new(5.1, 3.5, 1.4, 0.2, Species::Setosa).expect("seed flower is valid")
    }

    #[test]
    fn getters_return_what_was_given() {
        let flower = seed();
        assert_eq!(flower.sepal_length(), 5.1);
        assert_eq!(flower.sepal_width(), 3.5);
        assert_eq!(flower.petal_length(), 1.4);
        assert_eq!(flower.petal_width(), 0.2);
        assert_eq!(flower.species(), Species::Setosa);
    }

    #[test]
    fn areas_match_the_python_seed_bit_for_bit() {
        let flower = seed();
        // Python: 5.1 * 3.5 == 17.849999999999998, 1.4 * 0.2 == 0.27999999999999997,
        // and their sum == 18.13 (float.hex: 0x1.22147ae147ae1p+4).
        assert_eq!(
            flower.sepal_area().to_bits(),
            17.849999999999998_f64.to_bits()
        );
        assert_eq!(
            flower.petal_area().to_bits(),
            0.27999999999999997_f64.to_bits()
        );
        assert_eq!(flower.total_area().to_bits(), 18.13_f64.to_bits());
    }

    #[test]
    fn rejects_every_bad_measurement_naming_field_and_value() {
        let bad = [0.0, -0.0, -1.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY];
        let fields = ["sepal_length", "sepal_width", "petal_length", "petal_width"];
        for (index, field) in fields.into_iter().enumerate() {
            for value in bad {
                let mut values = [5.1, 3.5, 1.4, 0.2];
                values[index] = value;
                let [a, b, c, d] = values;
                let err = Iris::new(a, b, c, d, Species::Virginica).expect_err(field);
                assert!(
                    matches!(err, ModelError::InvalidMeasurement { field: f, .. } if f == field)
                );
                assert!(err.to_string().starts_with(&format!("invalid {field}: ")));
            }
        }
    }

    #[test]
    fn error_message_has_the_documented_shape() {
        let err = Iris::new(5.1, -1.0, 1.4, 0.2, Species::Setosa).expect_err("negative");
        assert_eq!(
            err.to_string(),
            "invalid sepal_width: -1 (measurements must be finite and greater than zero)"
        );
    }

    #[test]
    fn accepts_tiny_and_huge_positive_values() {
        let flower = Iris::new(f64::MIN_POSITIVE, 5e-324, f64::MAX, 1.0, Species::Setosa);
        assert!(flower.is_ok());
    }

    #[test]
    fn json_round_trip_keeps_field_names_and_order() {
        let json = serde_json::to_string(&seed()).expect("serialize");
        assert_eq!(
            json,
            r#"{"sepal_length":5.1,"sepal_width":3.5,"petal_length":1.4,"petal_width":0.2,"species":"setosa"}"#
        );
        let back: Iris = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back, seed());
    }

    #[test]
    fn deserialize_validates() {
        let json = r#"{"sepal_length":5.1,"sepal_width":-1,"petal_length":1.4,"petal_width":0.2,"species":"setosa"}"#;
        let err = serde_json::from_str::<Iris>(json).expect_err("negative width");
        assert!(err.to_string().contains("invalid sepal_width: -1"), "{err}");
    }
}
