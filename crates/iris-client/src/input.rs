//! Where the flowers to send come from: a CSV file, standard input,
//! `--flower` values, or (with none of these) the seed program's one flower.
//!
//! Everything is read and validated up front, before any connection is
//! made, so a bad row sends nothing rather than half a data set.

use std::fmt;
use std::path::PathBuf;

use iris_model::dataset::HEADER;
use iris_model::{DatasetError, Iris, IrisReader, Species};

/// What `send` reads its flowers from.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Input {
    /// The seed program's flower, `Iris(5.1, 3.5, 1.4, 0.2, setosa)`.
    Seed,
    /// A CSV data set file.
    File(PathBuf),
    /// A CSV data set on standard input.
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

    /// Reads and validates every flower, stopping at the first bad row.
    pub(crate) fn load(self) -> Result<Vec<Iris>, DatasetError> {
        match self {
            Input::Seed => Ok(vec![seed_flower()]),
            Input::File(path) => iris_model::load_csv(path),
            Input::Stdin => iris_model::read_csv(std::io::stdin().lock()),
            Input::Inline(flowers) => Ok(flowers),
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

    #[test]
    fn the_seed_input_is_the_seed_flower() {
        let flowers = Input::Seed.load().expect("seed");
        assert_eq!(flowers, [flower(5.1, 3.5, 1.4, 0.2, Species::Setosa)]);
    }

    #[test]
    fn a_data_set_file_loads_and_a_bad_row_names_its_line() {
        let data_set = concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/iris.csv");
        let flowers = Input::File(data_set.into()).load().expect("data set");
        assert_eq!(flowers.len(), 150);

        let path = std::env::temp_dir().join(format!("iris-client-{}-bad.csv", std::process::id()));
        std::fs::write(
            &path,
            format!("{HEADER}\n5.1,3.5,1.4,0.2,setosa\n5,3,abc,1,setosa\n"),
        )
        .expect("write temp file");
        let result = Input::File(path.clone()).load();
        let _ = std::fs::remove_file(&path);
        let error = result.expect_err("bad row");
        assert_eq!(error.line(), Some(3), "{error}");
        assert!(error.to_string().starts_with("line 3: "), "{error}");
    }
}
