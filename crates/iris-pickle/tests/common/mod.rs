//! Helpers shared by the integration tests: finding CPython interpreters and
//! running snippets in them.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::path::Path;

/// A CPython interpreter to test against.
pub struct Python {
    /// What the test output calls it (`CPython 3.12.1`).
    pub label: String,
    inner: iris_testkit::Python,
}

/// The CPython peers of `iris_testkit::pythons` (3.11, 3.12.1, 3.13.0),
/// handed to `test`: missing ones are skipped with a message, or fail the
/// test when `IRIS_REQUIRE_PYTHON=1`.
pub fn pythons(test: &str) -> Vec<Python> {
    iris_testkit::pythons(test)
        .into_iter()
        .map(|inner| Python {
            label: format!("CPython {}", inner.full_version),
            inner,
        })
        .collect()
}

/// Runs `script` with `python -c`, passing `args`; returns stdout. Panics
/// with stderr if the script fails.
pub fn run(python: &Python, script: &str, args: &[&str]) -> String {
    let out = python
        .inner
        .command()
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{} failed:\n{}",
        python.label,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Directory holding the seed's `iris.py` (the repository's verbatim copy in
/// `tests/seed`; the tests fall back to an identical dataclass if it is
/// missing).
pub fn seed_dir() -> String {
    if let Ok(dir) = std::env::var("IRIS_SEED_PYTHON_DIR") {
        return dir;
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/seed");
    if dir.join("iris.py").is_file() {
        dir.to_string_lossy().into_owned()
    } else {
        String::new()
    }
}

/// Python prelude: imports `Iris` from `sys.argv[1]` (the seed directory),
/// or defines the same dataclass as module `iris` if that is empty.
pub const PRELUDE: &str = r#"
import sys, pickle
if sys.argv[1]:
    sys.path.insert(0, sys.argv[1])
try:
    from iris import Iris
except ImportError:
    import types
    _m = types.ModuleType('iris')
    sys.modules['iris'] = _m
    exec('''
from dataclasses import dataclass
@dataclass
class Iris:
    sepal_length: float
    sepal_width: float
    petal_length: float
    petal_width: float
    species: str
''', _m.__dict__)
    Iris = _m.Iris
"#;

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn unhex(text: &str) -> Vec<u8> {
    assert!(text.len() % 2 == 0, "odd hex length");
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

/// The rows of data/iris.csv, header skipped, split on commas.
pub fn iris_rows() -> Vec<(f64, f64, f64, f64, String)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/iris.csv");
    let text = std::fs::read_to_string(&path).unwrap();
    text.lines()
        .skip(1)
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let parts: Vec<&str> = line.trim().split(',').collect();
            assert_eq!(parts.len(), 5, "bad row {line:?}");
            (
                parts[0].parse().unwrap(),
                parts[1].parse().unwrap(),
                parts[2].parse().unwrap(),
                parts[3].parse().unwrap(),
                parts[4].to_owned(),
            )
        })
        .collect()
}
