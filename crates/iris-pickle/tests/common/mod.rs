//! Helpers shared by the integration tests: finding CPython interpreters and
//! running snippets in them.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A CPython interpreter to test against.
pub struct Python {
    /// What the test output calls it (`python3`, `pyenv 3.12.1`, ...).
    pub label: String,
    /// The executable.
    pub path: PathBuf,
}

/// `python3` on `PATH` plus the newest pyenv 3.12.x and 3.13.x. Missing
/// ones are reported and skipped, or fail the test when
/// `IRIS_REQUIRE_PYTHON=1`.
pub fn pythons() -> Vec<Python> {
    let require = std::env::var("IRIS_REQUIRE_PYTHON").is_ok_and(|v| v == "1");
    let mut found = Vec::new();
    let mut missing = Vec::new();

    let python3 = PathBuf::from("python3");
    if works(&python3) {
        found.push(Python {
            label: "python3".to_owned(),
            path: python3,
        });
    } else {
        missing.push("python3 on PATH".to_owned());
    }

    let root = pyenv_root();
    for minor in ["3.12", "3.13"] {
        match pyenv_version(&root, minor) {
            Some((version, path)) if works(&path) => found.push(Python {
                label: format!("pyenv {version}"),
                path,
            }),
            _ => missing.push(format!(
                "CPython {minor} ({}/versions/{minor}.*/bin/python)",
                root.display()
            )),
        }
    }

    for what in &missing {
        if require {
            panic!("IRIS_REQUIRE_PYTHON=1 but {what} is not available");
        }
        eprintln!("skipping tests against {what}: not available");
    }
    found
}

fn works(python: &Path) -> bool {
    Command::new(python)
        .args(["-c", "import sys; assert sys.version_info >= (3, 8)"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn pyenv_root() -> PathBuf {
    if let Ok(out) = Command::new("pyenv").arg("root").output() {
        if out.status.success() {
            let root = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            if !root.is_empty() {
                return PathBuf::from(root);
            }
        }
    }
    let home = std::env::var_os("HOME").unwrap_or_default();
    PathBuf::from(home).join(".pyenv")
}

/// The newest installed `minor.*` version under `root/versions`.
fn pyenv_version(root: &Path, minor: &str) -> Option<(String, PathBuf)> {
    let prefix = format!("{minor}.");
    let mut best: Option<(u32, String)> = None;
    for entry in std::fs::read_dir(root.join("versions")).ok()? {
        let name = entry.ok()?.file_name().to_string_lossy().into_owned();
        let Some(patch) = name.strip_prefix(&prefix) else {
            continue;
        };
        let Ok(patch) = patch.parse::<u32>() else {
            continue;
        };
        if best.as_ref().is_none_or(|(p, _)| patch > *p) {
            best = Some((patch, name));
        }
    }
    let (_, name) = best?;
    let path = root.join("versions").join(&name).join("bin").join("python");
    Some((name, path))
}

/// Runs `script` with `python -c`, passing `args`; returns stdout. Panics
/// with stderr if the script fails.
pub fn run(python: &Python, script: &str, args: &[&str]) -> String {
    let out = Command::new(&python.path)
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

/// Directory holding the seed's `iris.py`, if present (the tests fall back
/// to an identical dataclass otherwise).
pub fn seed_dir() -> String {
    if let Ok(dir) = std::env::var("IRIS_SEED_PYTHON_DIR") {
        return dir;
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/seed/python");
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
