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

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};

/// Set to `1` to make a missing interpreter fail the test instead of
/// skipping it (CI does).
pub const REQUIRE_PYTHON_ENV: &str = "IRIS_REQUIRE_PYTHON";

/// A CPython interpreter to test against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Python {
    /// `major.minor`, e.g. `3.12`.
    pub version: &'static str,
    /// The interpreter's path.
    pub path: PathBuf,
}

impl Python {
    /// Whether this CPython only speaks the legacy HMAC-MD5 handshake.
    pub fn is_legacy(&self) -> bool {
        self.version == "3.11"
    }

    /// A command running this interpreter, with unbuffered output.
    pub fn command(&self) -> Command {
        let mut command = Command::new(&self.path);
        command
            .env("PYTHONUNBUFFERED", "1")
            .env("PYTHONDONTWRITEBYTECODE", "1");
        command
    }
}

/// Whether missing interpreters must fail the test.
pub fn python_required() -> bool {
    std::env::var(REQUIRE_PYTHON_ENV).is_ok_and(|v| v == "1")
}

fn pyenv_root() -> PathBuf {
    if let Ok(output) = Command::new("pyenv").arg("root").output() {
        if output.status.success() {
            let root = String::from_utf8_lossy(&output.stdout).trim().to_owned();
            if !root.is_empty() {
                return PathBuf::from(root);
            }
        }
    }
    let home = std::env::var_os("HOME").unwrap_or_default();
    Path::new(&home).join(".pyenv")
}

/// Asks `path` for its `major.minor` version.
fn version_of(path: &Path) -> Option<String> {
    let output = Command::new(path)
        .args(["-c", "import sys; print('%d.%d' % sys.version_info[:2])"])
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// The CPython peers this project is tested against: 3.11 (`python3`), and
/// 3.12.1 and 3.13.0 from pyenv.
///
/// A missing one is skipped with a message naming `test`, or, when
/// [`REQUIRE_PYTHON_ENV`] is `1`, fails the test.
pub fn pythons(test: &str) -> Vec<Python> {
    let root = pyenv_root();
    let candidates: [(&'static str, PathBuf); 3] = [
        ("3.11", PathBuf::from("python3")),
        ("3.12", root.join("versions/3.12.1/bin/python")),
        ("3.13", root.join("versions/3.13.0/bin/python")),
    ];
    let mut found = Vec::new();
    for (version, path) in candidates {
        match version_of(&path) {
            Some(actual) if actual == version => found.push(Python { version, path }),
            other => {
                let why = match other {
                    Some(actual) => format!("{} is CPython {actual}", path.display()),
                    None => format!("{} does not run", path.display()),
                };
                if python_required() {
                    panic!(
                        "{test}: CPython {version} is required ({REQUIRE_PYTHON_ENV}=1) but {why}"
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

/// A child process that is killed when dropped, so a failing test never
/// leaves one behind.
#[derive(Debug)]
pub struct ChildGuard {
    child: Option<Child>,
    stdout: Option<BufReader<ChildStdout>>,
}

impl ChildGuard {
    /// Spawns `command` with piped stdout and stderr.
    pub fn spawn(mut command: Command) -> ChildGuard {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
        let stdout = child.stdout.take().map(BufReader::new);
        ChildGuard {
            child: Some(child),
            stdout,
        }
    }

    /// Reads stdout up to the next line; panics with the child's stderr if
    /// it ends first.
    pub fn read_line(&mut self) -> String {
        let mut line = String::new();
        let read = self
            .stdout
            .as_mut()
            .map(|stdout| stdout.read_line(&mut line))
            .unwrap_or(Ok(0));
        match read {
            Ok(n) if n > 0 => line.trim_end_matches('\n').to_owned(),
            _ => {
                let output = self.finish();
                panic!(
                    "the child ended before printing a line ({}); stderr:\n{}",
                    output.status, output.stderr
                );
            }
        }
    }

    /// Waits for the child to exit and collects what it printed.
    pub fn finish(&mut self) -> Finished {
        let mut child = self.child.take().expect("the child is still owned");
        let mut stdout = String::new();
        if let Some(mut reader) = self.stdout.take() {
            let _ = reader.read_to_string(&mut stdout);
        }
        let mut stderr = String::new();
        if let Some(mut pipe) = child.stderr.take() {
            let _ = pipe.read_to_string(&mut stderr);
        }
        let status = child.wait().expect("wait for the child");
        Finished {
            status,
            stdout,
            stderr,
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// What a finished child printed, and how it exited.
#[derive(Debug)]
pub struct Finished {
    /// The exit status.
    pub status: std::process::ExitStatus,
    /// The rest of standard output.
    pub stdout: String,
    /// All of standard error.
    pub stderr: String,
}
