//! Where the flowers to send come from (a file, standard input, `--flower`
//! values, or the seed program's one flower) and how a file's rows are
//! parsed: CSV with or without its header, or JSON Lines.
//!
//! [`Rows`] parses one row at a time from any `Read`, so `send` can stream
//! an input of any size in constant memory; [`Input::load`] reads a whole
//! input for `--check-first`.

use std::fmt;
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;

use anyhow::anyhow;
use iris_model::dataset::HEADER;
use iris_model::{DatasetError, Iris, IrisReader, Species};
use serde::Deserialize;

/// What `send` reads its flowers from.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Input {
    /// The seed program's flower, `Iris(5.1, 3.5, 1.4, 0.2, setosa)`.
    Seed,
    /// A data set file.
    File(PathBuf),
    /// A data set on standard input.
    Stdin,
    /// Flowers given with `--flower`, already validated by the flag parser.
    Inline(Vec<Iris>),
}

impl Input {
    /// The input the `send` arguments ask for: FILE (`-` for stdin) or the
    /// `--flower` values (clap rejects both at once), else the seed flower.
    pub(crate) fn from_args(file: Option<PathBuf>, flowers: Vec<Iris>) -> Input {
        match file {
            Some(path) if path.as_os_str() == "-" => Input::Stdin,
            Some(path) => Input::File(path),
            None if flowers.is_empty() => Input::Seed,
            None => Input::Inline(flowers),
        }
    }
}

/// Names the input in error messages.
impl fmt::Display for Input {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Input::Seed => f.write_str("the built-in flower"),
            Input::File(path) => write!(f, "{}", path.display()),
            Input::Stdin => f.write_str("standard input"),
            Input::Inline(_) => f.write_str("the --flower values"),
        }
    }
}

/// How the rows of a file or of standard input are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// CSV; with `header`, the first line must be [`HEADER`].
    Csv {
        /// Whether the first line is the header (else it is a flower).
        header: bool,
    },
    /// One JSON object per line with the fields of `iris-listener --format
    /// json`; other fields (`connection`, `area`) are ignored.
    JsonLines,
}

/// Why reading rows stopped before the end of the input.
#[derive(Debug)]
pub(crate) enum RowError {
    /// A row (or the header) that is not valid: its line and why.
    Bad {
        /// The line number, 1-based.
        line: u64,
        /// What is wrong, starting with "line N: ".
        error: anyhow::Error,
    },
    /// The input could not be read.
    Read(anyhow::Error),
}

impl From<DatasetError> for RowError {
    fn from(error: DatasetError) -> Self {
        match error {
            DatasetError::Csv { ref source, .. } if source.is_io_error() => {
                RowError::Read(error.into())
            }
            error => RowError::Bad {
                line: error.line().unwrap_or(1),
                error: error.into(),
            },
        }
    }
}

/// Flowers parsed one row at a time from a reader: the memory used does
/// not depend on how many rows there are.
pub(crate) enum Rows<R: Read> {
    /// CSV whose header has not been read yet: it is read with the first
    /// row, so that nothing is read before the first row is wanted.
    CsvHeaderPending(Option<R>),
    /// CSV rows.
    Csv(IrisReader<R>),
    /// JSON Lines.
    Json(JsonLines<R>),
}

impl<R: Read> Rows<R> {
    /// Rows of `format` from `reader`; nothing is read yet.
    pub(crate) fn new(reader: R, format: Format) -> Self {
        match format {
            Format::Csv { header: true } => Rows::CsvHeaderPending(Some(reader)),
            Format::Csv { header: false } => Rows::Csv(IrisReader::headerless(reader)),
            Format::JsonLines => Rows::Json(JsonLines::new(reader)),
        }
    }

    /// The next flower; `None` at the end of the input. After an error the
    /// caller stops: rows are not resumed past a bad one.
    pub(crate) fn next_flower(&mut self) -> Option<Result<Iris, RowError>> {
        match self {
            Rows::Csv(rows) => rows.next().map(|row| row.map_err(RowError::from)),
            Rows::Json(rows) => rows.next_flower(),
            Rows::CsvHeaderPending(reader) => {
                let reader = reader.take()?;
                match IrisReader::new(reader) {
                    Ok(rows) => {
                        *self = Rows::Csv(rows);
                        self.next_flower()
                    }
                    Err(error) => Some(Err(error.into())),
                }
            }
        }
    }
}

impl Input {
    /// Reads and validates every flower (`--check-first`), stopping at the
    /// first bad row.
    pub(crate) fn load(self, format: Format) -> Result<Vec<Iris>, RowError> {
        let read_all = |reader: Box<dyn Read>| {
            let mut rows = Rows::new(reader, format);
            let mut flowers = Vec::new();
            while let Some(flower) = rows.next_flower() {
                flowers.push(flower?);
            }
            Ok(flowers)
        };
        match self {
            Input::Seed => Ok(vec![seed_flower()]),
            Input::File(path) => {
                let file = std::fs::File::open(&path).map_err(|source| {
                    RowError::Read(
                        anyhow::Error::new(source)
                            .context(format!("cannot open {}", path.display())),
                    )
                })?;
                read_all(Box::new(file))
            }
            Input::Stdin => read_all(Box::new(std::io::stdin().lock())),
            Input::Inline(flowers) => Ok(flowers),
        }
    }
}

/// The longest JSON line accepted: a flower's line is about 150 bytes, and
/// the bound keeps a stray binary file from being read whole into memory.
const MAX_JSON_LINE: usize = 64 << 10;

/// The fields of `iris-listener --format json` that make the flower.
#[derive(Deserialize)]
struct JsonFlower {
    sepal_length: f64,
    sepal_width: f64,
    petal_length: f64,
    petal_width: f64,
    species: String,
}

/// JSON Lines: one flower object per line; blank lines are skipped.
pub(crate) struct JsonLines<R> {
    reader: BufReader<R>,
    line: Vec<u8>,
    number: u64,
}

impl<R: Read> JsonLines<R> {
    fn new(reader: R) -> Self {
        JsonLines {
            reader: BufReader::new(reader),
            line: Vec::new(),
            number: 0,
        }
    }

    fn next_flower(&mut self) -> Option<Result<Iris, RowError>> {
        loop {
            self.line.clear();
            let limit = MAX_JSON_LINE as u64 + 1;
            match (&mut self.reader)
                .take(limit)
                .read_until(b'\n', &mut self.line)
            {
                Ok(0) => return None,
                Ok(_) => {}
                Err(error) => {
                    return Some(Err(RowError::Read(
                        anyhow::Error::new(error)
                            .context(format!("cannot read line {}", self.number + 1)),
                    )));
                }
            }
            self.number += 1;
            let line = self.number;
            let bad = |error: anyhow::Error| Some(Err(RowError::Bad { line, error }));
            if self.line.len() > MAX_JSON_LINE {
                return bad(anyhow!(
                    "line {line}: longer than {MAX_JSON_LINE} bytes; expected one JSON object per line"
                ));
            }
            if self.line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            return Some(parse_json_flower(&self.line).map_err(|why| RowError::Bad {
                line,
                error: anyhow!("line {line}: {why}"),
            }));
        }
    }
}

/// One JSON Lines row as a flower; the error says what is wrong with it.
fn parse_json_flower(line: &[u8]) -> Result<Iris, String> {
    let flower: JsonFlower = serde_json::from_slice(line).map_err(|error| {
        // serde_json adds "at line 1 column N": the line is ours to name.
        let text = error.to_string();
        let what = text
            .rsplit_once(" at line ")
            .map_or(text.as_str(), |(what, _)| what);
        format!(
            "invalid JSON flower: {what} (column {}); expected an object with {}",
            error.column(),
            HEADER.replace(',', ", ")
        )
    })?;
    let species: Species = flower
        .species
        .parse()
        .map_err(|error| format!("invalid row: {error}"))?;
    Iris::new(
        flower.sepal_length,
        flower.sepal_width,
        flower.petal_length,
        flower.petal_width,
        species,
    )
    .map_err(|error| format!("invalid row: {error}"))
}

/// The flower the original Python client sent.
pub(crate) fn seed_flower() -> Iris {
    // Constant measurements, all finite and positive: this cannot fail.
    Iris::new(5.1, 3.5, 1.4, 0.2, Species::Setosa).expect("the seed flower is valid")
}

/// Parses one `--flower` value, `SEPAL_LENGTH,SEPAL_WIDTH,PETAL_LENGTH,PETAL_WIDTH,SPECIES`.
///
/// The value goes through the same CSV reader as a data set file, so the
/// rules (trimmed fields, `Iris-` species prefix, positive finite numbers)
/// cannot drift apart; only the messages differ, since "line 2" would mean
/// nothing for a flag. The error is a plain string because clap prints it
/// after naming the flag and its value.
pub(crate) fn parse_flower(value: &str) -> Result<Iris, String> {
    if value.contains(['\n', '\r']) {
        return Err("expected a single flower, found a line break".into());
    }
    let csv = format!("{HEADER}\n{value}\n");
    let mut rows = IrisReader::new(csv.as_bytes()).map_err(|error| chain(&error))?;
    match rows.next() {
        Some(Ok(flower)) => Ok(flower),
        Some(Err(error)) => Err(describe_row_error(&error)),
        None => Err(format!(
            "expected 5 comma-separated values {HEADER}, found none"
        )),
    }
}

/// A row error without its "line N: " prefix.
fn describe_row_error(error: &DatasetError) -> String {
    match error {
        DatasetError::MissingField { field, .. } => {
            format!("missing {field} (expected 5 comma-separated values {HEADER})")
        }
        DatasetError::ExtraFields { found, .. } => {
            format!("{found} values found (expected exactly 5: {HEADER})")
        }
        DatasetError::InvalidNumber {
            field,
            value,
            source,
            ..
        } => format!("invalid {field} {value:?}: {source}"),
        DatasetError::InvalidRow { source, .. } => source.to_string(),
        other => chain(other),
    }
}

/// An error and its causes, joined like anyhow's `{:#}`.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(error) = cause {
        text.push_str(": ");
        text.push_str(&error.to_string());
        cause = error.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flower(sl: f64, sw: f64, pl: f64, pw: f64, species: Species) -> Iris {
        Iris::new(sl, sw, pl, pw, species).expect("valid test flower")
    }

    #[test]
    fn flower_values_parse_like_csv_rows() {
        assert_eq!(parse_flower("5.1,3.5,1.4,0.2,setosa"), Ok(seed_flower()));
        assert_eq!(
            parse_flower(" 7.7, 3.8 ,6.7,2.2,Iris-Virginica "),
            Ok(flower(7.7, 3.8, 6.7, 2.2, Species::Virginica))
        );
    }

    #[test]
    fn bad_flower_values_say_what_is_wrong_without_a_line_number() {
        let cases = [
            (
                "5.1,x,1.4,0.2,setosa",
                r#"invalid sepal_width "x": invalid float literal"#,
            ),
            ("5.1,3.5,1.4,0.2", "missing species"),
            ("5.1,3.5", "missing petal_length"),
            ("5.1,3.5,1.4,0.2,setosa,7", "6 values found"),
            ("5.1,3.5,-1.4,0.2,setosa", "invalid petal_length: -1.4"),
            ("5.1,3.5,1.4,nan,setosa", "invalid petal_width: NaN"),
            ("5.1,3.5,1.4,0.2,rose", r#"unknown species "rose""#),
            ("", "found none"),
            ("5.1,3.5,1.4,0.2,setosa\n5,3,1,1,setosa", "line break"),
        ];
        for (value, expected) in cases {
            let message = parse_flower(value).expect_err(value);
            assert!(message.contains(expected), "{value:?}: {message}");
            assert!(!message.contains("line 2"), "{value:?}: {message}");
        }
    }

    #[test]
    fn input_comes_from_file_stdin_flags_or_the_seed() {
        assert_eq!(Input::from_args(None, Vec::new()), Input::Seed);
        assert_eq!(Input::from_args(Some("-".into()), Vec::new()), Input::Stdin);
        assert_eq!(
            Input::from_args(Some("data/iris.csv".into()), Vec::new()),
            Input::File("data/iris.csv".into())
        );
        let flowers = vec![seed_flower(), seed_flower()];
        assert_eq!(
            Input::from_args(None, flowers.clone()),
            Input::Inline(flowers)
        );
    }

    const CSV: Format = Format::Csv { header: true };

    #[test]
    fn the_seed_input_is_the_seed_flower() {
        let flowers = Input::Seed.load(CSV).expect("seed");
        assert_eq!(flowers, [flower(5.1, 3.5, 1.4, 0.2, Species::Setosa)]);
    }

    #[test]
    fn a_data_set_file_loads_and_a_bad_row_names_its_line() {
        let data_set = concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/iris.csv");
        let flowers = Input::File(data_set.into()).load(CSV).expect("data set");
        assert_eq!(flowers.len(), 150);

        let path = std::env::temp_dir().join(format!("iris-client-{}-bad.csv", std::process::id()));
        std::fs::write(
            &path,
            format!("{HEADER}\n5.1,3.5,1.4,0.2,setosa\n5,3,abc,1,setosa\n"),
        )
        .expect("write temp file");
        let result = Input::File(path.clone()).load(CSV);
        let _ = std::fs::remove_file(&path);
        match result {
            Err(RowError::Bad { line: 3, error }) => {
                assert!(error.to_string().starts_with("line 3: "), "{error}");
            }
            other => panic!("expected a bad line 3, got {other:?}"),
        }
    }

    fn all_rows(text: &str, format: Format) -> Vec<Result<Iris, String>> {
        let mut rows = Rows::new(text.as_bytes(), format);
        let mut all = Vec::new();
        while let Some(row) = rows.next_flower() {
            let stop = row.is_err();
            all.push(row.map_err(|e| match e {
                RowError::Bad { error, .. } | RowError::Read(error) => format!("{error:#}"),
            }));
            if stop {
                break;
            }
        }
        all
    }

    #[test]
    fn rows_come_from_csv_with_or_without_a_header() {
        let body = "5.1,3.5,1.4,0.2,setosa\n6.3,3.3,6.0,2.5,virginica\n";
        let virginica = flower(6.3, 3.3, 6.0, 2.5, Species::Virginica);
        assert_eq!(
            all_rows(&format!("{HEADER}\n{body}"), CSV),
            [Ok(seed_flower()), Ok(virginica)]
        );
        assert_eq!(
            all_rows(body, Format::Csv { header: false }),
            [Ok(seed_flower()), Ok(virginica)]
        );
        let rows = all_rows(body, CSV);
        assert_eq!(rows.len(), 1);
        assert!(
            rows[0].as_ref().is_err_and(|e| e.contains(HEADER)),
            "{rows:?}"
        );
    }

    #[test]
    fn json_lines_are_read_from_the_listeners_output() {
        let text = concat!(
            r#"{"connection":1,"species":"setosa","sepal_length":5.1,"sepal_width":3.5,"petal_length":1.4,"petal_width":0.2,"area":18.13}"#,
            "\n\n",
            r#"{"species":"Iris-virginica","sepal_length":6.3,"sepal_width":3.3,"petal_length":6.0,"petal_width":2.5}"#,
        );
        assert_eq!(
            all_rows(text, Format::JsonLines),
            [
                Ok(seed_flower()),
                Ok(flower(6.3, 3.3, 6.0, 2.5, Species::Virginica))
            ]
        );
    }

    #[test]
    fn bad_json_lines_name_their_line_and_what_is_wrong() {
        let good = r#"{"species":"setosa","sepal_length":5.1,"sepal_width":3.5,"petal_length":1.4,"petal_width":0.2}"#;
        let cases = [
            (
                r#"{"species":"setosa","sepal_length":5.1}"#,
                "missing field `sepal_width`",
            ),
            ("5.1,3.5,1.4,0.2,setosa", "invalid JSON flower"),
            (
                r#"{"species":"rose","sepal_length":5.1,"sepal_width":3.5,"petal_length":1.4,"petal_width":0.2}"#,
                r#"unknown species "rose""#,
            ),
            (
                r#"{"species":"setosa","sepal_length":-5.1,"sepal_width":3.5,"petal_length":1.4,"petal_width":0.2}"#,
                "invalid sepal_length: -5.1",
            ),
        ];
        for (line, expected) in cases {
            let rows = all_rows(&format!("{good}\n{line}\n{good}\n"), Format::JsonLines);
            assert_eq!(rows.len(), 2, "{line}");
            let error = rows[1].as_ref().expect_err(line);
            assert!(error.starts_with("line 2: "), "{error}");
            assert!(error.contains(expected), "{line}: {error}");
            assert!(!error.contains("at line 1"), "{error}");
        }
        let long = format!("{}\n", " ".repeat(MAX_JSON_LINE + 10));
        let rows = all_rows(&long, Format::JsonLines);
        assert!(
            rows[0].as_ref().is_err_and(|e| e.contains("longer than")),
            "{rows:?}"
        );
    }
}
