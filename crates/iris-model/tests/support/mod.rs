//! Finds the CPython interpreter for interop tests, or decides to skip them.
//!
//! Nothing here is specific to iris-model, so it can move as is into a
//! shared test-support crate.

use std::env;
use std::path::{Path, PathBuf};

/// Setting this to `1` (as CI does) turns a missing interpreter into a test
/// failure, so interop coverage cannot silently disappear.
pub(crate) const REQUIRE_PYTHON_ENV: &str = "IRIS_REQUIRE_PYTHON";

/// The first `python3` executable on `PATH`, if any.
pub(crate) fn find_python3() -> Option<PathBuf> {
    let path = env::var_os("PATH")?;
    let name = format!("python3{}", env::consts::EXE_SUFFIX);
    env::split_paths(&path)
        .map(|dir| dir.join(&name))
        .find(|candidate| is_executable(candidate))
}

/// The interpreter for test `test`, or `None` after printing why the test is
/// skipped.
///
/// # Panics
///
/// When `python3` is missing and [`REQUIRE_PYTHON_ENV`] is `1`.
pub(crate) fn python3_or_skip(test: &str) -> Option<PathBuf> {
    if let Some(python) = find_python3() {
        return Some(python);
    }
    if env::var_os(REQUIRE_PYTHON_ENV).is_some_and(|value| value == "1") {
        panic!(
            "{test}: python3 not found on PATH, but {REQUIRE_PYTHON_ENV}=1 requires it; \
             install CPython 3 or put it on PATH"
        );
    }
    eprintln!(
        "skipping {test}: python3 not found on PATH (set {REQUIRE_PYTHON_ENV}=1 to fail instead)"
    );
    None
}

#[cfg(unix)]
fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(path: &Path) -> bool {
    path.is_file()
}
