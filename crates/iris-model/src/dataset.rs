//! Loading the Iris data set from CSV.
//!
//! The file must start with the header
//! `sepal_length,sepal_width,petal_length,petal_width,species`; species may
//! use the UCI spelling (`Iris-setosa`). Whitespace around fields is ignored
//! and blank lines are skipped. Every flower goes through [`Iris::new`], so a
//! loaded data set holds only valid flowers.
//!
//! ```
//! let csv = "sepal_length,sepal_width,petal_length,petal_width,species\n\
//!            5.1,3.5,1.4,0.2,Iris-setosa\n";
//! let flowers = iris_model::read_csv(csv.as_bytes())?;
//! assert_eq!(flowers[0].total_area(), 18.13);
//! # Ok::<(), iris_model::DatasetError>(())
//! ```

use std::fs::File;
use std::io::Read;
use std::path::Path;

use crate::iris::MEASUREMENTS;
use crate::{DatasetError, Iris, Species};

/// The column names, in file order (which is also [`Iris::new`]'s order).
const FIELDS: [&str; 5] = [
    MEASUREMENTS[0],
    MEASUREMENTS[1],
    MEASUREMENTS[2],
    MEASUREMENTS[3],
    "species",
];

/// The exact first line a data set file must have.
pub const HEADER: &str = "sepal_length,sepal_width,petal_length,petal_width,species";

/// Reads a whole data set, stopping at the first bad row.
///
/// # Errors
///
/// See [`DatasetError`]: unreadable input, a wrong header, or a bad row
/// (reported with its line number).
pub fn read_csv<R: Read>(reader: R) -> Result<Vec<Iris>, DatasetError> {
    IrisReader::new(reader)?.collect()
}

/// Reads a whole data set from a file, stopping at the first bad row.
///
/// # Errors
///
/// [`DatasetError::Open`] (with the path) if the file cannot be opened,
/// otherwise as [`read_csv`].
pub fn load_csv(path: impl AsRef<Path>) -> Result<Vec<Iris>, DatasetError> {
    IrisReader::open(path)?.collect()
}

/// Streams flowers from CSV one row at a time, for data sets too large to
/// hold in memory or callers that want to skip bad rows.
///
/// Each bad row yields its own `Err` and reading continues with the next row;
/// after an I/O error the iterator ends, since retrying would fail forever.
#[derive(Debug)]
pub struct IrisReader<R> {
    csv: csv::Reader<R>,
    record: csv::StringRecord,
    done: bool,
}

impl IrisReader<File> {
    /// Opens a data set file and checks its header.
    ///
    /// # Errors
    ///
    /// [`DatasetError::Open`] if the file cannot be opened, otherwise as
    /// [`IrisReader::new`].
    pub fn open(path: impl AsRef<Path>) -> Result<Self, DatasetError> {
        let path = path.as_ref();
        let file = File::open(path).map_err(|source| DatasetError::Open {
            path: path.to_owned(),
            source,
        })?;
        IrisReader::new(file)
    }
}

impl<R: Read> IrisReader<R> {
    /// Wraps a reader (no need for a `BufReader`: the CSV reader buffers) and
    /// checks the header, so a wrong file fails before any row is read.
    ///
    /// # Errors
    ///
    /// [`DatasetError::Header`] if the first line is not [`HEADER`],
    /// [`DatasetError::Csv`] if it cannot be read.
    pub fn new(reader: R) -> Result<Self, DatasetError> {
        let mut rows = IrisReader::build(reader, true);
        let header = rows.csv.headers().map_err(csv_error)?;
        if !header.iter().map(str::trim_ascii).eq(FIELDS) {
            return Err(DatasetError::Header {
                found: header
                    .iter()
                    .map(|name| name.trim_ascii().to_owned())
                    .collect(),
            });
        }
        Ok(rows)
    }

    /// Wraps a reader of bare rows, without the header line: the first line
    /// is the first flower, in [`HEADER`]'s column order. Nothing is read
    /// until the first row is asked for, so a live feed can be wrapped
    /// before it has sent anything.
    pub fn headerless(reader: R) -> Self {
        IrisReader::build(reader, false)
    }

    fn build(reader: R, has_headers: bool) -> Self {
        let csv = csv::ReaderBuilder::new()
            .has_headers(has_headers)
            // Short and long rows are reported by us, naming the column.
            .flexible(true)
            // Fields are trimmed as they are parsed: the csv crate's own
            // trimming copies every record, two allocations a row, about
            // half the time of reading a large file.
            .trim(csv::Trim::None)
            .from_reader(reader);
        IrisReader {
            csv,
            record: csv::StringRecord::new(),
            done: false,
        }
    }
}

impl<R: Read> Iterator for IrisReader<R> {
    type Item = Result<Iris, DatasetError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.csv.read_record(&mut self.record) {
            Ok(true) => {
                let line = self.record.position().map_or(0, csv::Position::line);
                Some(parse_row(&self.record, line))
            }
            Ok(false) => {
                self.done = true;
                None
            }
            Err(error) => {
                self.done = error.is_io_error();
                Some(Err(csv_error(error)))
            }
        }
    }
}

fn csv_error(source: csv::Error) -> DatasetError {
    DatasetError::Csv {
        line: source.position().map(csv::Position::line),
        source,
    }
}

fn parse_row(record: &csv::StringRecord, line: u64) -> Result<Iris, DatasetError> {
    if let Some(&field) = FIELDS.get(record.len()) {
        return Err(DatasetError::MissingField { line, field });
    }
    if record.len() > FIELDS.len() {
        return Err(DatasetError::ExtraFields {
            line,
            found: record.len(),
        });
    }
    let number = |index: usize| -> Result<f64, DatasetError> {
        let field = FIELDS.get(index).copied().unwrap_or("?");
        let value = record.get(index).unwrap_or_default().trim_ascii();
        value
            .parse::<f64>()
            .map_err(|source| DatasetError::InvalidNumber {
                line,
                field,
                value: value.to_owned(),
                source,
            })
    };
    let invalid_row = |source| DatasetError::InvalidRow { line, source };
    let sepal_length = number(0)?;
    let sepal_width = number(1)?;
    let petal_length = number(2)?;
    let petal_width = number(3)?;
    let species = record
        .get(4)
        .unwrap_or_default()
        .trim_ascii()
        .parse::<Species>()
        .map_err(invalid_row)?;
    Iris::new(
        sepal_length,
        sepal_width,
        petal_length,
        petal_width,
        species,
    )
    .map_err(invalid_row)
}

#[cfg(test)]
mod tests {
    use std::error::Error;

    use super::*;
    use crate::ModelError;
    use crate::py_float::PyRepr;

    fn data_set_path() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/iris.csv")
    }

    /// The whole chain, as anyhow's `{:#}` would print it.
    fn chain(error: &dyn Error) -> String {
        let mut text = error.to_string();
        let mut source = error.source();
        while let Some(cause) = source {
            text.push_str(": ");
            text.push_str(&cause.to_string());
            source = cause.source();
        }
        text
    }

    fn read_one_row(row: &str) -> Result<Vec<Iris>, DatasetError> {
        read_csv(format!("{HEADER}\n5.1,3.5,1.4,0.2,setosa\n{row}\n").as_bytes())
    }

    #[test]
    fn loads_the_real_data_set() {
        let flowers = load_csv(data_set_path()).expect("data/iris.csv loads");
        assert_eq!(flowers.len(), 150);
        for species in Species::ALL {
            let count = flowers.iter().filter(|f| f.species() == species).count();
            assert_eq!(count, 50, "{species}");
        }
        let first = flowers[0];
        assert_eq!(
            first,
            Iris::new(5.1, 3.5, 1.4, 0.2, Species::Setosa).expect("valid")
        );
        assert_eq!(format!("{}", PyRepr(first.total_area())), "18.13");
    }

    #[test]
    fn accepts_uci_names_whitespace_and_blank_lines() {
        let csv = format!("{HEADER}\n\n 4.9 , 3.0,1.4,0.2, Iris-Versicolor \n\n");
        let flowers = read_csv(csv.as_bytes()).expect("valid");
        assert_eq!(flowers.len(), 1);
        assert_eq!(flowers[0].species(), Species::Versicolor);

        let spaced = HEADER.replace(',', " , ");
        let flowers = read_csv(format!(" {spaced}\t\n5.1,3.5,1.4,0.2,setosa\n").as_bytes())
            .expect("a header with spaces");
        assert_eq!(flowers.len(), 1);
    }

    #[test]
    fn non_number_names_line_field_and_value() {
        let err = read_one_row("5.0,3.0,1.4,abc,setosa").expect_err("abc");
        assert!(matches!(
            err,
            DatasetError::InvalidNumber {
                line: 3,
                field: "petal_width",
                ..
            }
        ));
        assert_eq!(err.line(), Some(3));
        assert_eq!(
            chain(&err),
            r#"line 3: invalid petal_width "abc": invalid float literal"#
        );
    }

    #[test]
    fn empty_field_is_not_a_number() {
        let err = read_one_row("5.0,,1.4,0.2,setosa").expect_err("empty");
        assert_eq!(err.to_string(), r#"line 3: invalid sepal_width """#);
    }

    #[test]
    fn negative_and_non_finite_measurements_are_rejected() {
        let err = read_one_row("5.0,3.0,-1.4,0.2,setosa").expect_err("negative");
        assert!(matches!(
            err,
            DatasetError::InvalidRow {
                line: 3,
                source: ModelError::InvalidMeasurement {
                    field: "petal_length",
                    ..
                }
            }
        ));
        assert_eq!(
            chain(&err),
            "line 3: invalid row: invalid petal_length: -1.4 \
             (measurements must be finite and greater than zero)"
        );
        for text in ["nan", "inf", "-inf", "0", "1e999"] {
            let row = format!("{text},3.0,1.4,0.2,setosa");
            assert!(read_one_row(&row).is_err(), "{row}");
        }
    }

    #[test]
    fn missing_and_extra_columns_are_named() {
        let err = read_one_row("5.0,3.0,1.4,0.2").expect_err("short");
        assert!(matches!(
            err,
            DatasetError::MissingField {
                line: 3,
                field: "species"
            }
        ));
        assert!(
            err.to_string()
                .starts_with("line 3: missing species column"),
            "{err}"
        );

        let err = read_one_row("5.0,3.0").expect_err("shorter");
        assert!(matches!(
            err,
            DatasetError::MissingField {
                field: "petal_length",
                ..
            }
        ));

        let err = read_one_row("5.0,3.0,1.4,0.2,setosa,extra").expect_err("long");
        assert!(matches!(
            err,
            DatasetError::ExtraFields { line: 3, found: 6 }
        ));
    }

    #[test]
    fn unknown_species_is_rejected() {
        let err = read_one_row("5.0,3.0,1.4,0.2,rose").expect_err("rose");
        assert!(matches!(
            err,
            DatasetError::InvalidRow {
                line: 3,
                source: ModelError::UnknownSpecies { .. }
            }
        ));
        assert!(chain(&err).starts_with(r#"line 3: invalid row: unknown species "rose""#));
    }

    #[test]
    fn wrong_or_missing_header_is_reported() {
        let err = read_csv("5.1,3.5,1.4,0.2,setosa\n".as_bytes()).expect_err("no header");
        assert!(matches!(err, DatasetError::Header { .. }));
        assert_eq!(err.line(), Some(1));
        assert!(err.to_string().contains(HEADER), "{err}");

        let err = read_csv("".as_bytes()).expect_err("empty");
        assert_eq!(
            err.to_string(),
            format!("data set is empty (expected the header {HEADER:?})")
        );
    }

    #[test]
    fn header_only_is_an_empty_data_set() {
        assert_eq!(read_csv(HEADER.as_bytes()).expect("valid").len(), 0);
    }

    #[test]
    fn missing_file_names_the_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("nope.csv");
        let err = load_csv(&path).expect_err("missing");
        assert!(matches!(err, DatasetError::Open { .. }));
        assert!(
            err.to_string().contains(&path.display().to_string()),
            "{err}"
        );
        assert!(err.source().is_some());
    }

    #[test]
    fn streaming_reader_continues_after_a_bad_row() {
        let csv = format!("{HEADER}\n5.1,3.5,1.4,0.2,setosa\nx,1,1,1,setosa\n6,3,5,2,virginica\n");
        let results: Vec<_> = IrisReader::new(csv.as_bytes()).expect("header").collect();
        assert_eq!(results.len(), 3);
        assert!(results[0].is_ok());
        assert_eq!(
            results[1].as_ref().err().and_then(DatasetError::line),
            Some(3)
        );
        assert!(results[2].is_ok());
    }

    #[test]
    fn headerless_rows_start_at_line_one() {
        let csv = "5.1,3.5,1.4,0.2,setosa\n\n6,3,5,2,virginica\n7,x,1,1,setosa\n";
        let results: Vec<_> = IrisReader::headerless(csv.as_bytes()).collect();
        assert_eq!(results.len(), 3);
        assert_eq!(
            results[0].as_ref().ok(),
            Some(&Iris::new(5.1, 3.5, 1.4, 0.2, Species::Setosa).expect("valid"))
        );
        assert!(results[1].is_ok());
        assert_eq!(
            results[2].as_ref().err().and_then(DatasetError::line),
            Some(4)
        );
        // A header line is just a bad row here.
        let header = format!("{HEADER}\n");
        let mut rows = IrisReader::headerless(header.as_bytes());
        assert!(matches!(
            rows.next(),
            Some(Err(DatasetError::InvalidNumber { line: 1, .. }))
        ));
    }

    #[test]
    fn non_utf8_row_is_a_csv_error_with_its_line() {
        let mut csv = format!("{HEADER}\n5.1,3.5,1.4,0.2,setosa\n").into_bytes();
        csv.extend_from_slice(b"5.1,3.5,1.4,0.2,set\xffosa\n");
        let err = read_csv(csv.as_slice()).expect_err("bad utf-8");
        assert!(
            matches!(err, DatasetError::Csv { line: Some(3), .. }),
            "{err:?}"
        );
    }
}
