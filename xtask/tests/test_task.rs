//! `cargo xtask test` when CPython 3.12 and 3.13 are nowhere to be found:
//! it must fail before running anything, naming what is missing and how to
//! install it. The machine's interpreters stay where they are: the xtask
//! runs with a PATH of our making and an empty pyenv root.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The real `python3`'s executable (3.11 here), so that only 3.12 and 3.13
/// are missing.
fn real_python3() -> PathBuf {
    let output = Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .expect("python3 runs");
    assert!(output.status.success());
    PathBuf::from(String::from_utf8(output.stdout).unwrap().trim())
}

/// Runs `xtask test` with `bin` as the whole PATH and an empty pyenv root.
fn xtask_test(home: &Path, bin: &Path) -> Output {
    let empty = home.join("empty-pyenv-root");
    std::fs::create_dir_all(&empty).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_xtask"));
    command
        .arg("test")
        .env("PATH", bin)
        .env("HOME", home)
        .env("PYENV_ROOT", &empty)
        .env_remove("IRIS_SKIP_INTEROP")
        // Set when this runs under `cargo xtask test` itself.
        .env_remove("IRIS_INTEROP_LOG")
        .env_remove("IRIS_REQUIRE_PYTHON");
    for version in ["3_11", "3_12", "3_13"] {
        command.env_remove(format!("IRIS_PYTHON_{version}"));
    }
    command.output().expect("run xtask")
}

fn with_python3_only() -> (tempfile::TempDir, PathBuf) {
    let home = tempfile::tempdir().unwrap();
    let bin = home.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    std::os::unix::fs::symlink(real_python3(), bin.join("python3")).unwrap();
    (home, bin)
}

#[test]
fn without_pyenv_or_uv_it_fails_naming_what_is_missing() {
    let (home, bin) = with_python3_only();
    let output = xtask_test(home.path(), &bin);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    for needle in [
        "CPython 3.12 is missing",
        "CPython 3.13 is missing",
        "neither pyenv nor uv is installed",
        "uv python install 3.12.1 3.13.0\n",
        "IRIS_SKIP_INTEROP=1 cargo xtask test",
    ] {
        assert!(stderr.contains(needle), "no {needle:?} in:\n{stderr}");
    }
    assert!(
        !stderr.contains("CPython 3.11 is missing"),
        "python3 is 3.11: {stderr}"
    );
    assert!(
        !String::from_utf8_lossy(&output.stdout).contains("test result"),
        "nothing ran"
    );
}

#[test]
fn a_failed_install_is_reported_with_its_command() {
    let (home, bin) = with_python3_only();
    // A pyenv that cannot download anything.
    let pyenv = bin.join("pyenv");
    std::fs::write(
        &pyenv,
        "#!/bin/sh\ncase \"$1\" in\n  root) echo \"$PYENV_ROOT\" ;;\n  \
         install) echo \"pyenv: cannot download $3\" >&2; exit 1 ;;\n  *) exit 1 ;;\nesac\n",
    )
    .unwrap();
    let mut permissions = std::fs::metadata(&pyenv).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o755);
    std::fs::set_permissions(&pyenv, permissions).unwrap();

    let output = xtask_test(home.path(), &bin);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    for needle in [
        "installing it with `pyenv install --skip-existing 3.12.1`",
        "pyenv: cannot download 3.12.1",
        "`pyenv install --skip-existing 3.13.0` failed",
        "pyenv could not install them",
    ] {
        assert!(stderr.contains(needle), "no {needle:?} in:\n{stderr}");
    }
}
