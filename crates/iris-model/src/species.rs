use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::ModelError;

/// The three species of the Iris data set.
///
/// The variant order is part of the native wire format: postcard encodes a
/// species by its variant index, so reordering or inserting variants would
/// silently change what old peers decode. Only append, never reorder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Species {
    /// Iris setosa.
    Setosa,
    /// Iris versicolor.
    Versicolor,
    /// Iris virginica.
    Virginica,
}

impl Species {
    /// Every species, in wire order, for code that tallies or iterates them.
    pub const ALL: [Species; 3] = [Species::Setosa, Species::Versicolor, Species::Virginica];

    /// The species' index in the native wire format (its variant index,
    /// which postcard writes): the position in [`Species::ALL`].
    #[must_use]
    pub const fn index(self) -> u8 {
        self as u8
    }

    /// The species with wire index `index`, if any.
    #[must_use]
    pub const fn from_index(index: u8) -> Option<Species> {
        match index {
            0 => Some(Species::Setosa),
            1 => Some(Species::Versicolor),
            2 => Some(Species::Virginica),
            _ => None,
        }
    }

    /// The lowercase name used by our CSV file, serde and [`fmt::Display`].
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Species::Setosa => "setosa",
            Species::Versicolor => "versicolor",
            Species::Virginica => "virginica",
        }
    }
}

impl fmt::Display for Species {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl FromStr for Species {
    type Err = ModelError;

    /// Accepts `setosa` as well as the UCI spelling `Iris-setosa`, in any
    /// letter case, because both spellings circulate in copies of the data set.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        const UCI_PREFIX: &str = "iris-";
        let name = match s.split_at_checked(UCI_PREFIX.len()) {
            Some((prefix, rest)) if prefix.eq_ignore_ascii_case(UCI_PREFIX) => rest,
            _ => s,
        };
        Species::ALL
            .into_iter()
            .find(|species| species.as_str().eq_ignore_ascii_case(name))
            .ok_or_else(|| ModelError::UnknownSpecies {
                given: s.to_owned(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_indices_are_the_variant_order_postcard_writes() {
        for (position, species) in Species::ALL.into_iter().enumerate() {
            assert_eq!(usize::from(species.index()), position);
            assert_eq!(Species::from_index(species.index()), Some(species));
            assert_eq!(
                postcard::to_stdvec(&species).expect("encode"),
                [species.index()]
            );
        }
        assert_eq!(Species::from_index(3), None);
    }

    #[test]
    fn parses_plain_and_uci_names_in_any_case() {
        for (text, expected) in [
            ("setosa", Species::Setosa),
            ("Iris-setosa", Species::Setosa),
            ("IRIS-SETOSA", Species::Setosa),
            ("Versicolor", Species::Versicolor),
            ("iris-versicolor", Species::Versicolor),
            ("virginica", Species::Virginica),
            ("Iris-virginica", Species::Virginica),
        ] {
            assert_eq!(text.parse::<Species>().ok(), Some(expected), "{text}");
        }
    }

    #[test]
    fn rejects_unknown_names_and_says_what_is_accepted() {
        for text in [
            "",
            "iris-",
            "rose",
            "Iris setosa",
            "setosa ",
            "Iris-Iris-setosa",
            "é",
        ] {
            let err = text.parse::<Species>().expect_err(text);
            let message = err.to_string();
            assert!(message.contains(&format!("{text:?}")), "{message}");
            assert!(
                message.contains("setosa, versicolor or virginica"),
                "{message}"
            );
        }
    }

    #[test]
    fn display_and_as_str_are_lowercase_names() {
        assert_eq!(Species::Versicolor.as_str(), "versicolor");
        assert_eq!(Species::Virginica.to_string(), "virginica");
        assert_eq!(format!("{:>8}", Species::Setosa), "  setosa");
    }

    #[test]
    fn serde_uses_lowercase_names() {
        let json = serde_json::to_string(&Species::ALL).expect("serialize");
        assert_eq!(json, r#"["setosa","versicolor","virginica"]"#);
        let back: Vec<Species> = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back, Species::ALL);
    }
}
