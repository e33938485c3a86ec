use std::error::Error;
use std::fmt;
use std::io;
use std::num::ParseFloatError;
use std::path::PathBuf;

use crate::dataset::HEADER;

/// Why a flower or species was rejected.
///
/// Returned by [`Iris::new`](crate::Iris::new), by parsing a
/// [`Species`](crate::Species), and (as a serde error message) when
/// deserializing an [`Iris`](crate::Iris) that breaks the same rules.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ModelError {
    /// A measurement was NaN, infinite, zero or negative.
    InvalidMeasurement {
        /// The field's name as in the CSV header, e.g. `sepal_width`.
        field: &'static str,
        /// The rejected value.
        value: f64,
    },
    /// A species name matched none of the three species.
    UnknownSpecies {
        /// The text that was given, unchanged.
        given: String,
    },
}

impl fmt::Display for ModelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ModelError::InvalidMeasurement { field, value } => write!(
                f,
                "invalid {field}: {value} (measurements must be finite and greater than zero)"
            ),
            ModelError::UnknownSpecies { given } => write!(
                f,
                "unknown species {given:?} (expected setosa, versicolor or virginica, \
                 optionally prefixed with \"Iris-\")"
            ),
        }
    }
}

impl Error for ModelError {}

/// Why a data set could not be read.
///
/// Display describes this layer only and [`Error::source`] carries the cause,
/// so print the whole chain (for example anyhow's `{:#}`) to see both, e.g.
/// `line 7: invalid petal_width "abc": invalid float literal`.
#[derive(Debug)]
#[non_exhaustive]
pub enum DatasetError {
    /// The file could not be opened.
    Open {
        /// The path as given by the caller.
        path: PathBuf,
        /// What the operating system said.
        source: io::Error,
    },
    /// The input is not readable CSV: an I/O error, or a record that is not UTF-8.
    Csv {
        /// The line where the problem was found, when the CSV reader knows it.
        line: Option<u64>,
        /// What the CSV reader said.
        source: csv::Error,
    },
    /// The first line is not the expected header.
    Header {
        /// The header fields that were found (empty for empty input).
        found: Vec<String>,
    },
    /// A row has fewer than five columns.
    MissingField {
        /// The line of the row.
        line: u64,
        /// The first column that is missing.
        field: &'static str,
    },
    /// A row has more than five columns.
    ExtraFields {
        /// The line of the row.
        line: u64,
        /// How many columns the row has.
        found: usize,
    },
    /// A measurement column does not hold a number.
    InvalidNumber {
        /// The line of the row.
        line: u64,
        /// The column's name.
        field: &'static str,
        /// The column's text (after trimming whitespace).
        value: String,
        /// Why the text is not a number.
        source: ParseFloatError,
    },
    /// A row parsed but does not describe a valid flower.
    InvalidRow {
        /// The line of the row.
        line: u64,
        /// Which rule the row breaks.
        source: ModelError,
    },
}

impl DatasetError {
    /// The 1-based line the error refers to, if it refers to one, so callers
    /// can point editors at it without matching on every variant.
    #[must_use]
    pub fn line(&self) -> Option<u64> {
        match self {
            DatasetError::Open { .. } => None,
            DatasetError::Header { .. } => Some(1),
            DatasetError::Csv { line, .. } => *line,
            DatasetError::MissingField { line, .. }
            | DatasetError::ExtraFields { line, .. }
            | DatasetError::InvalidNumber { line, .. }
            | DatasetError::InvalidRow { line, .. } => Some(*line),
        }
    }
}

impl fmt::Display for DatasetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DatasetError::Open { path, .. } => {
                write!(f, "cannot open data set {:?}", path.display().to_string())
            }
            DatasetError::Csv {
                line: Some(line), ..
            } => write!(f, "line {line}: cannot read csv record"),
            DatasetError::Csv { line: None, .. } => f.write_str("cannot read csv data"),
            DatasetError::Header { found } if found.is_empty() => {
                write!(f, "data set is empty (expected the header {HEADER:?})")
            }
            DatasetError::Header { found } => write!(
                f,
                "unexpected header {:?} (the first line must be {HEADER:?})",
                found.join(",")
            ),
            DatasetError::MissingField { line, field } => write!(
                f,
                "line {line}: missing {field} column (each row needs the 5 columns {HEADER})"
            ),
            DatasetError::ExtraFields { line, found } => write!(
                f,
                "line {line}: {found} columns found (each row needs exactly the 5 columns {HEADER})"
            ),
            DatasetError::InvalidNumber {
                line, field, value, ..
            } => write!(f, "line {line}: invalid {field} {value:?}"),
            DatasetError::InvalidRow { line, .. } => write!(f, "line {line}: invalid row"),
        }
    }
}

impl Error for DatasetError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            DatasetError::Open { source, .. } => Some(source),
            DatasetError::Csv { source, .. } => Some(source),
            DatasetError::InvalidNumber { source, .. } => Some(source),
            DatasetError::InvalidRow { source, .. } => Some(source),
            DatasetError::Header { .. }
            | DatasetError::MissingField { .. }
            | DatasetError::ExtraFields { .. } => None,
        }
    }
}
