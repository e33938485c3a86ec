//! Test support shared by iris's crates: finding the real CPython
//! interpreters to test against, and child processes that never outlive a
//! test.
//!
//! ```no_run
//! for python in iris_testkit::pythons("my test") {
//!     let output = python.command().arg("-c").arg("print(1)").output()?;
//!     assert!(output.status.success());
//! }
//! # Ok::<(), std::io::Error>(())
//! ```

pub mod netns;
pub mod process;
pub mod report;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub use nix::sys::signal::Signal;
pub use process::{
    Finished, Lines, Process, TIMEOUT_ENV, send_signal, send_signal_to_group, timeout,
};
pub use report::{Summary, acknowledged, parse_acknowledgement};

/// Set to `1` to make a missing interpreter fail the test instead of
/// skipping it (`cargo xtask test` does).
pub const REQUIRE_PYTHON_ENV: &str = "IRIS_REQUIRE_PYTHON";

/// Set to `1` to skip every test against CPython, on purpose: `cargo xtask
/// test` then says so in its last lines.
pub const SKIP_INTEROP_ENV: &str = "IRIS_SKIP_INTEROP";

/// Names a file to which every interop test case that runs CPython appends
/// `FULL_VERSION<TAB>TEST` (once per interpreter command); `cargo xtask test`
/// sets it and counts the distinct lines, so its report of what was covered
/// comes from what ran, not from what was meant to run.
pub const INTEROP_LOG_ENV: &str = "IRIS_INTEROP_LOG";

/// The CPython versions iris is tested against: `major.minor`, and what to
/// install when it is missing (`pyenv install` / `uv python install`).
pub const VERSIONS: [(&str, &str); 3] = [("3.11", "3.11"), ("3.12", "3.12.1"), ("3.13", "3.13.0")];

/// A CPython interpreter to test against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Python {
    /// `major.minor`, e.g. `3.12`.
    pub version: &'static str,
    /// The exact version, e.g. `3.12.1`.
    pub full_version: String,
    /// The interpreter's path.
    pub path: PathBuf,
    /// The test case this interpreter was handed to, for the interop log.
    test: String,
}

impl Python {
    /// Whether this CPython only speaks the legacy HMAC-MD5 handshake.
    pub fn is_legacy(&self) -> bool {
        self.version == "3.11"
    }

    /// A command running this interpreter, with unbuffered output. Records
    /// the test case in the interop log (see [`INTEROP_LOG_ENV`]).
    pub fn command(&self) -> Command {
        self.record();
        let mut command = Command::new(&self.path);
        command
            .env("PYTHONUNBUFFERED", "1")
            .env("PYTHONDONTWRITEBYTECODE", "1");
        command
    }

    /// Records in the interop log that this test case runs this CPython,
    /// for a test that runs it some other way than [`Python::command`]
    /// (a shell script, say).
    pub fn record(&self) {
        let Some(log) = std::env::var_os(INTEROP_LOG_ENV) else {
            return;
        };
        let line = format!("{}\t{}\n", self.full_version, self.test);
        // One small write to a file opened for appending: lines from
        // concurrent tests never mix.
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .and_then(|mut file| file.write_all(line.as_bytes()));
        if let Err(e) = written {
            panic!(
                "cannot append to the interop log {}: {e}",
                Path::new(&log).display()
            );
        }
    }
}

/// Whether missing interpreters must fail the test.
pub fn python_required() -> bool {
    std::env::var(REQUIRE_PYTHON_ENV).is_ok_and(|v| v == "1")
}

/// Whether interop tests are skipped on purpose.
pub fn interop_skipped() -> bool {
    std::env::var(SKIP_INTEROP_ENV).is_ok_and(|v| v == "1")
}

/// pyenv's root: `pyenv root`, else `$PYENV_ROOT`, else `~/.pyenv`.
pub fn pyenv_root() -> PathBuf {
    if let Ok(output) = Command::new("pyenv").arg("root").output() {
        if output.status.success() {
            let root = String::from_utf8_lossy(&output.stdout).trim().to_owned();
            if !root.is_empty() {
                return PathBuf::from(root);
            }
        }
    }
    if let Some(root) = std::env::var_os("PYENV_ROOT") {
        return PathBuf::from(root);
    }
    let home = std::env::var_os("HOME").unwrap_or_default();
    Path::new(&home).join(".pyenv")
}

/// The environment variable that names the interpreter of `version`
/// (`major.minor`) instead of the default place: `IRIS_PYTHON_3_12`.
pub fn path_env(version: &str) -> String {
    format!("IRIS_PYTHON_{}", version.replace('.', "_"))
}

/// Where the interpreter of `version` (`major.minor`) is looked for: the
/// path in [`path_env`] if set, else `python3` for 3.11 and pyenv's
/// pinned version for the others.
pub fn interpreter_path(version: &str) -> PathBuf {
    if let Some(path) = std::env::var_os(path_env(version)) {
        return PathBuf::from(path);
    }
    match VERSIONS.iter().find(|(minor, _)| *minor == version) {
        Some((_, pinned)) if version != "3.11" => pyenv_root()
            .join("versions")
            .join(pinned)
            .join("bin/python"),
        _ => PathBuf::from("python3"),
    }
}

/// Asks `path` for its exact version (`3.12.1`); `None` if it does not run.
pub fn full_version_of(path: &Path) -> Option<String> {
    let output = Command::new(path)
        .args(["-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// Whether an exact version (`3.12.1`) is of `major.minor` (`3.12`).
pub fn is_of(full_version: &str, version: &str) -> bool {
    full_version
        .strip_prefix(version)
        .is_some_and(|rest| rest.starts_with('.'))
}

/// The CPython peers this project is tested against: 3.11 (`python3`), and
/// 3.12.1 and 3.13.0 from pyenv (or wherever [`path_env`] says).
///
/// A missing one is skipped with a message naming `test`, or, when
/// [`REQUIRE_PYTHON_ENV`] is `1`, fails the test. With
/// [`SKIP_INTEROP_ENV`] set to `1`, there are none.
pub fn pythons(test: &str) -> Vec<Python> {
    if interop_skipped() {
        eprintln!("{test}: skipping CPython interop ({SKIP_INTEROP_ENV}=1)");
        return Vec::new();
    }
    let mut found = Vec::new();
    for (version, _) in VERSIONS {
        let path = interpreter_path(version);
        match full_version_of(&path) {
            Some(full_version) if is_of(&full_version, version) => found.push(Python {
                version,
                full_version,
                path,
                test: test.to_owned(),
            }),
            other => {
                let why = match other {
                    Some(actual) => format!("{} is CPython {actual}", path.display()),
                    None => format!("{} does not run", path.display()),
                };
                if python_required() {
                    panic!(
                        "{test}: CPython {version} is required ({REQUIRE_PYTHON_ENV}=1) but {why}; \
                         `cargo xtask test` provides it"
                    );
                }
                eprintln!("{test}: skipping CPython {version}: {why}");
            }
        }
    }
    found
}

/// Only the default `python3`, for tests that need just one CPython.
pub fn python3(test: &str) -> Option<Python> {
    pythons(test)
        .into_iter()
        .find(|python| python.version == "3.11")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_versions_belong_to_their_minor_only() {
        assert!(is_of("3.12.1", "3.12"));
        assert!(!is_of("3.1.2", "3.12"));
        assert!(!is_of("3.120.0", "3.12"));
        assert!(!is_of("3.12", "3.12"));
        assert_eq!(path_env("3.13"), "IRIS_PYTHON_3_13");
    }
}
