//! `cargo xtask test`: the test suite, honest about CPython interop.
//!
//! It finds the CPython interpreters iris is tested against (3.11, 3.12.1,
//! 3.13.0; see `iris_testkit::VERSIONS`), installs a missing one with pyenv
//! or uv, whichever the machine has, and fails naming what is missing when
//! neither can. Likewise the `cryptography` package that the Python sealed
//! client needs, with pip, in `python3`. It then runs `cargo test --workspace` with missing
//! interpreters as failures (`IRIS_REQUIRE_PYTHON=1`) and an interop log
//! (`IRIS_INTEROP_LOG`) to which every test case that runs CPython appends a
//! line, and ends with what was covered: the tests' totals, and the CPython
//! versions the interop cases really ran against. `IRIS_SKIP_INTEROP=1`
//! skips interop on purpose, and the last lines say so. Where the
//! network-namespace tests must run (as root or under CI), it installs
//! iproute2 and HAProxy with apt-get when missing.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::{Context, bail};
use iris_testkit::{
    INTEROP_LOG_ENV, REQUIRE_PYTHON_ENV, SKIP_INTEROP_ENV, VERSIONS, full_version_of,
    interpreter_path, is_of, path_env,
};

use crate::process::{self, Guarded};

/// Runs the suite; `args` go to `cargo test` (e.g. `--locked`).
pub(crate) fn run(args: &[String]) -> anyhow::Result<()> {
    // Inside a run (a test that runs shell commands, say), running the whole
    // suite again would recurse without end.
    if std::env::var_os(INTEROP_LOG_ENV).is_some() {
        bail!(
            "{INTEROP_LOG_ENV} is set: `cargo xtask test` is already running; \
             not running it inside itself"
        );
    }
    process::kill_children_on_interrupt()?;
    let root = process::workspace_root();
    let skip = iris_testkit::interop_skipped();
    let pythons = if skip {
        Vec::new()
    } else {
        let pythons = provide_pythons()?;
        provide_cryptography(&pythons)?;
        pythons
    };
    provide_network_tools()?;

    let log = process::target_dir(&root)?
        .join("xtask-test")
        .join("interop.log");
    if let Some(dir) = log.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    match std::fs::remove_file(&log) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(e).with_context(|| format!("cannot remove {}", log.display()));
        }
        _ => {}
    }

    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(&cargo);
    command
        // Every test binary runs, so the closing totals are complete.
        .args(["test", "--workspace", "--no-fail-fast"])
        .args(args)
        .arg("--manifest-path")
        .arg(root.join("Cargo.toml"))
        .env(INTEROP_LOG_ENV, &log)
        .stdin(Stdio::null())
        .stdout(Stdio::piped());
    if skip {
        command.env_remove(REQUIRE_PYTHON_ENV);
    } else {
        command.env(REQUIRE_PYTHON_ENV, "1");
        for python in &pythons {
            command.env(path_env(python.version), &python.path);
        }
    }
    let with = if skip {
        format!("interop skipped: {SKIP_INTEROP_ENV}=1")
    } else {
        let versions: Vec<&str> = pythons.iter().map(|p| p.full_version.as_str()).collect();
        format!("with CPython {}", versions.join(", "))
    };
    let shown: Vec<&str> = ["cargo", "test", "--workspace", "--no-fail-fast"]
        .into_iter()
        .chain(args.iter().map(String::as_str))
        .collect();
    eprintln!("==> {} ({with})", shown.join(" "));
    let mut tests = Guarded::spawn("cargo test", &mut command)?;
    let stdout = tests.take_stdout().context("no stdout pipe")?;
    let mut totals = Totals::default();
    let mut out = std::io::stdout();
    for line in BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        totals.add(&line);
        let _ = writeln!(out, "{line}");
    }
    let status = tests.wait()?;

    let log_text = match std::fs::read_to_string(&log) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", log.display())),
    };
    let cases = interop_cases(&log_text);
    let expected: Vec<&str> = pythons.iter().map(|p| p.full_version.as_str()).collect();
    let report = Report {
        totals,
        cargo_succeeded: status.success(),
        cargo_status: status.to_string(),
        skipped: skip,
        expected: &expected,
        cases: &cases,
    };
    let (lines, passed) = report.lines();
    println!();
    for line in &lines {
        println!("{line}");
    }
    if passed {
        Ok(())
    } else {
        bail!("the test run failed (see the lines above)")
    }
}

/// An interpreter found or installed for the run.
#[derive(Debug)]
struct Found {
    version: &'static str,
    full_version: String,
    path: PathBuf,
}

/// What can install CPython on this machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Installer {
    Pyenv,
    Uv,
}

impl Installer {
    fn detect() -> Option<Installer> {
        let works = |program: &str, arg: &str| {
            Command::new(program)
                .arg(arg)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|status| status.success())
        };
        if works("pyenv", "root") {
            Some(Installer::Pyenv)
        } else if works("uv", "--version") {
            Some(Installer::Uv)
        } else {
            None
        }
    }

    fn name(self) -> &'static str {
        match self {
            Installer::Pyenv => "pyenv",
            Installer::Uv => "uv",
        }
    }

    /// The command that installs `what` (`3.12.1`, or `3.11` for the
    /// newest 3.11).
    fn install_command(self, what: &str) -> Vec<String> {
        let args: &[&str] = match self {
            Installer::Pyenv => &["pyenv", "install", "--skip-existing"],
            Installer::Uv => &["uv", "python", "install"],
        };
        args.iter()
            .map(|arg| (*arg).to_owned())
            .chain([what.to_owned()])
            .collect()
    }

    /// Where the installed `what` of `version` (`major.minor`) is.
    fn find(self, version: &str, what: &str) -> Option<PathBuf> {
        match self {
            Installer::Pyenv => pyenv_version(version, what),
            Installer::Uv => {
                let output = Command::new("uv")
                    .args(["python", "find", what])
                    .stdin(Stdio::null())
                    .output()
                    .ok()?;
                let path = String::from_utf8_lossy(&output.stdout).trim().to_owned();
                (output.status.success() && !path.is_empty()).then(|| PathBuf::from(path))
            }
        }
    }
}

/// An installed pyenv version: exactly `what`, or for a bare `major.minor`
/// the newest of that minor.
fn pyenv_version(version: &str, what: &str) -> Option<PathBuf> {
    let versions = iris_testkit::pyenv_root().join("versions");
    let name = if what == version {
        std::fs::read_dir(&versions)
            .ok()?
            .flatten()
            .filter_map(|entry| entry.file_name().into_string().ok())
            .filter(|name| is_of(name, version))
            .filter_map(|name| {
                let patch: u32 = name[version.len() + 1..].parse().ok()?;
                Some((patch, name))
            })
            .max()?
            .1
    } else {
        what.to_owned()
    };
    let path = versions.join(name).join("bin").join("python");
    path.is_file().then_some(path)
}

/// The interpreter of `version` at `path`, if it runs and is that version.
fn probe(version: &'static str, path: PathBuf) -> Option<Found> {
    let full_version = full_version_of(&path)?;
    is_of(&full_version, version).then_some(Found {
        version,
        full_version,
        path,
    })
}

/// Finds every interpreter, installing the missing ones; fails naming what
/// is missing and how to install it when that cannot be done.
fn provide_pythons() -> anyhow::Result<Vec<Found>> {
    let mut found = Vec::new();
    let mut missing = Vec::new();
    for (version, what) in VERSIONS {
        let path = interpreter_path(version);
        match probe(version, path.clone()) {
            Some(python) => found.push(python),
            None => missing.push((version, what, path)),
        }
    }
    if missing.is_empty() {
        return Ok(found);
    }
    let installer = Installer::detect();
    let mut failures = Vec::new();
    for (version, what, path) in missing {
        let why = format!(
            "CPython {version} is missing ({} does not run as {version})",
            path.display()
        );
        // Installed already, where the installer keeps it (a 3.11 from
        // pyenv when `python3` is another version, say).
        if let Some(python) = installer
            .and_then(|installer| installer.find(version, what))
            .and_then(|path| probe(version, path))
        {
            eprintln!("==> {why}; using {}", python.path.display());
            found.push(python);
            continue;
        }
        let Some(installer) = installer else {
            failures.push((what, why));
            continue;
        };
        let command = installer.install_command(what);
        eprintln!("==> {why}: installing it with `{}`", command.join(" "));
        let status = Command::new(&command[0])
            .args(&command[1..])
            .stdin(Stdio::null())
            .status();
        let installed = installer
            .find(version, what)
            .and_then(|path| probe(version, path));
        match (status, installed) {
            (Ok(status), Some(python)) if status.success() => found.push(python),
            (Ok(status), _) => failures.push((
                what,
                format!(
                    "{why}, and `{}` failed ({status}; its output is above)",
                    command.join(" ")
                ),
            )),
            (Err(e), _) => failures.push((
                what,
                format!("{why}, and `{}` could not run: {e}", command.join(" ")),
            )),
        }
    }
    if failures.is_empty() {
        return Ok(found);
    }
    bail!("{}", missing_message(&failures, installer));
}

/// The Python package the sealed client (`tests/python/sealed_client.py`)
/// needs, as pip takes it.
const CRYPTOGRAPHY: &str = "cryptography>=42";

/// Makes sure `python3` (the 3.11 the sealed-client tests run) can import
/// `cryptography`, installing it with pip when it cannot; fails naming the
/// command when that does not work, so those tests never skip silently.
fn provide_cryptography(pythons: &[Found]) -> anyhow::Result<()> {
    let Some(python) = pythons.iter().find(|python| python.version == "3.11") else {
        return Ok(());
    };
    let imports = || {
        Command::new(&python.path)
            .args(["-c", "import cryptography"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    };
    if imports() {
        return Ok(());
    }
    let install = [
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        CRYPTOGRAPHY,
    ];
    // Quoted for a shell, where `>=` would redirect.
    let shown = format!(
        "{} {} '{CRYPTOGRAPHY}'",
        python.path.display(),
        install[..install.len() - 1].join(" ")
    );
    eprintln!(
        "==> CPython {} cannot import `cryptography` (the sealed client's tests need it): \
         installing it with `{shown}`",
        python.full_version
    );
    let status = Command::new(&python.path)
        .args(install)
        .stdin(Stdio::null())
        .status();
    if imports() {
        return Ok(());
    }
    let why = match status {
        Ok(status) => format!("`{shown}` failed ({status}; its output is above)"),
        Err(e) => format!("`{shown}` could not run: {e}"),
    };
    bail!(
        "the sealed client's tests need the Python package `{CRYPTOGRAPHY}` in CPython {}, and \
         {why}; install it (`{shown}`) and run `cargo xtask test` again, or skip interop on \
         purpose: {SKIP_INTEROP_ENV}=1 cargo xtask test",
        python.full_version
    )
}

/// What to tell the user when interpreters are missing and could not be
/// installed.
fn missing_message(failures: &[(&str, String)], installer: Option<Installer>) -> String {
    let what: Vec<&str> = failures.iter().map(|(what, _)| *what).collect();
    let mut message = String::from("the interop tests need CPython 3.11, 3.12.1 and 3.13.0:\n");
    for (_, failure) in failures {
        message.push_str(&format!("  - {failure}\n"));
    }
    match installer {
        None => message.push_str(&format!(
            "neither pyenv nor uv is installed to provide them; install uv or pyenv and run \
             `cargo xtask test` again (it installs what is missing), or install them with the \
             one command:\n    uv python install {}\n",
            what.join(" ")
        )),
        Some(installer) => message.push_str(&format!(
            "{} could not install them; fix what its output above says and run `cargo xtask \
             test` again\n",
            installer.name()
        )),
    }
    message.push_str(&format!(
        "or skip interop on purpose: {SKIP_INTEROP_ENV}=1 cargo xtask test"
    ));
    message
}

/// The programs the network-namespace tests (`tests/tests/e2e/links.rs`)
/// run, and the Debian package of each.
const NETWORK_TOOLS: [(&str, &str); 2] = [("ip", "iproute2"), ("haproxy", "haproxy")];

/// Where the network-namespace tests must run (as root, or under CI: see
/// `iris_testkit::netns::required`), installs the tools they need that are
/// missing, with apt-get, as `.ci/run` does; fails naming the command when
/// that cannot be done. Elsewhere those tests skip, saying why, and need
/// nothing.
fn provide_network_tools() -> anyhow::Result<()> {
    let missing: Vec<&str> = NETWORK_TOOLS
        .iter()
        .filter(|(program, _)| iris_testkit::netns::find_program(program).is_none())
        .map(|(_, package)| *package)
        .collect();
    if missing.is_empty() || !iris_testkit::netns::required() {
        return Ok(());
    }
    let command = format!("apt-get install -y {}", missing.join(" "));
    eprintln!(
        "==> the network-namespace tests need {}: installing with `apt-get update && {command}`",
        missing.join(", ")
    );
    let installed_now = Command::new("apt-get")
        .arg("update")
        .stdin(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
        && Command::new("apt-get")
            .args(["install", "-y", "--no-install-recommends"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
    if installed_now
        && NETWORK_TOOLS
            .iter()
            .all(|(program, _)| iris_testkit::netns::find_program(program).is_some())
    {
        return Ok(());
    }
    bail!(
        "the network-namespace tests need {} and it could not be installed here; install it with \
         `{command}` (as root) and run `cargo xtask test` again",
        missing.join(" and ")
    )
}

/// The totals of cargo test's `test result:` lines.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Totals {
    binaries: u64,
    passed: u64,
    failed: u64,
    ignored: u64,
}

impl Totals {
    /// Adds `test result: ok. 5 passed; 0 failed; 1 ignored; ...`.
    fn add(&mut self, line: &str) {
        let Some(rest) = line.trim().strip_prefix("test result: ") else {
            return;
        };
        self.binaries += 1;
        for part in rest.split(';') {
            let mut words = part.split_whitespace().rev();
            let (Some(what), Some(count)) = (words.next(), words.next()) else {
                continue;
            };
            let Ok(count) = count.parse::<u64>() else {
                continue;
            };
            match what {
                "passed" => self.passed += count,
                "failed" => self.failed += count,
                "ignored" => self.ignored += count,
                _ => {}
            }
        }
    }
}

/// Distinct interop test cases per exact CPython version, from the interop
/// log's `VERSION<TAB>TEST` lines.
fn interop_cases(log: &str) -> BTreeMap<String, usize> {
    let distinct: BTreeSet<(&str, &str)> = log
        .lines()
        .filter_map(|line| line.split_once('\t'))
        .collect();
    let mut cases = BTreeMap::new();
    for (version, _) in distinct {
        *cases.entry(version.to_owned()).or_insert(0) += 1;
    }
    cases
}

/// Everything the closing lines say.
struct Report<'a> {
    totals: Totals,
    cargo_succeeded: bool,
    cargo_status: String,
    skipped: bool,
    /// The exact versions provided, each of which must have run.
    expected: &'a [&'a str],
    cases: &'a BTreeMap<String, usize>,
}

impl Report<'_> {
    /// The closing lines, and whether the run passed.
    fn lines(&self) -> (Vec<String>, bool) {
        let mut lines = Vec::new();
        let mut problems = Vec::new();
        let total_cases: usize = self.cases.values().sum();
        let coverage = if self.skipped {
            lines.push(format!(
                "xtask test: interop SKIPPED on purpose ({SKIP_INTEROP_ENV}=1): no test talked to CPython"
            ));
            format!("interop NOT tested ({SKIP_INTEROP_ENV}=1)")
        } else {
            let per_version: Vec<String> = self
                .cases
                .iter()
                .map(|(version, count)| format!("CPython {version}: {count} cases"))
                .collect();
            lines.push(format!(
                "xtask test: interop cases that ran: {}",
                if per_version.is_empty() {
                    "none".to_owned()
                } else {
                    per_version.join(", ")
                }
            ));
            for version in self.expected {
                if !self.cases.contains_key(*version) {
                    problems.push(format!("no interop case ran against CPython {version}"));
                }
            }
            format!(
                "interop with CPython {} ({total_cases} cases)",
                self.cases.keys().cloned().collect::<Vec<_>>().join(", ")
            )
        };
        if !self.cargo_succeeded {
            problems.insert(0, format!("cargo test failed ({})", self.cargo_status));
        }
        if self.totals.failed > 0 && self.cargo_succeeded {
            problems.push(format!("{} tests failed", self.totals.failed));
        }
        let passed = problems.is_empty();
        let verdict = if passed { "PASSED" } else { "FAILED" };
        let Totals {
            binaries,
            passed: ok,
            failed,
            ignored,
        } = self.totals;
        let mut last = format!(
            "xtask test: {verdict}: {ok} passed, {failed} failed, {ignored} ignored \
             ({binaries} test binaries); {coverage}"
        );
        if !passed {
            last.push_str(&format!("; {}", problems.join("; ")));
        }
        lines.push(last);
        (lines, passed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_up_cargo_test_result_lines() {
        let mut totals = Totals::default();
        for line in [
            "running 3 tests",
            "test result: ok. 12 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.01s",
            "test foo ... ok",
            "test result: FAILED. 3 passed; 2 failed; 0 ignored; 0 measured; 0 filtered out; finished in 1.20s",
        ] {
            totals.add(line);
        }
        assert_eq!(
            totals,
            Totals {
                binaries: 2,
                passed: 15,
                failed: 2,
                ignored: 1
            }
        );
    }

    #[test]
    fn counts_distinct_cases_per_version() {
        let log = "3.11.7\ta\n3.11.7\ta\n3.11.7\tb\n3.12.1\ta\nnonsense\n3.13.0\tc\n";
        let cases = interop_cases(log);
        assert_eq!(
            cases.into_iter().collect::<Vec<_>>(),
            [
                ("3.11.7".to_owned(), 2),
                ("3.12.1".to_owned(), 1),
                ("3.13.0".to_owned(), 1)
            ]
        );
    }

    fn totals(passed: u64, failed: u64) -> Totals {
        Totals {
            binaries: 3,
            passed,
            failed,
            ignored: 0,
        }
    }

    /// The closing lines of a run whose cargo exited with `status` (0 is
    /// success) and whose interop log is `log`.
    fn close(
        totals: Totals,
        status: i32,
        skipped: bool,
        expected: &[&str],
        log: &str,
    ) -> (Vec<String>, bool) {
        let cases = interop_cases(log);
        Report {
            totals,
            cargo_succeeded: status == 0,
            cargo_status: format!("exit status: {status}"),
            skipped,
            expected,
            cases: &cases,
        }
        .lines()
    }

    #[test]
    fn the_last_line_says_what_was_covered() {
        let (lines, passed) = close(
            totals(40, 0),
            0,
            false,
            &["3.11.7", "3.12.1", "3.13.0"],
            "3.11.7\ta\n3.12.1\ta\n3.13.0\ta\n3.13.0\tb\n",
        );
        assert!(passed);
        assert_eq!(
            lines,
            [
                "xtask test: interop cases that ran: CPython 3.11.7: 1 cases, CPython 3.12.1: 1 cases, CPython 3.13.0: 2 cases",
                "xtask test: PASSED: 40 passed, 0 failed, 0 ignored (3 test binaries); interop with CPython 3.11.7, 3.12.1, 3.13.0 (4 cases)"
            ]
        );
    }

    #[test]
    fn a_provided_version_that_never_ran_fails_the_run() {
        let (lines, passed) = close(
            totals(40, 0),
            0,
            false,
            &["3.11.7", "3.12.1"],
            "3.11.7\ta\n",
        );
        assert!(!passed);
        let last = lines.last().expect("a last line");
        assert!(last.starts_with("xtask test: FAILED"), "{last}");
        assert!(
            last.contains("no interop case ran against CPython 3.12.1"),
            "{last}"
        );
    }

    #[test]
    fn a_skipped_run_says_so_last() {
        let (lines, passed) = close(totals(30, 0), 0, true, &[], "");
        assert!(passed);
        assert!(lines[0].contains("interop SKIPPED on purpose (IRIS_SKIP_INTEROP=1)"));
        assert!(
            lines[1].ends_with("interop NOT tested (IRIS_SKIP_INTEROP=1)"),
            "{}",
            lines[1]
        );
    }

    #[test]
    fn a_failed_cargo_run_fails_whatever_ran() {
        let (lines, passed) = close(totals(10, 1), 101, false, &["3.11.7"], "3.11.7\ta\n");
        assert!(!passed);
        assert!(
            lines[1].contains("FAILED: 10 passed, 1 failed")
                && lines[1].contains("cargo test failed (exit status: 101)"),
            "{}",
            lines[1]
        );
    }

    #[test]
    fn the_missing_message_names_the_versions_and_the_command() {
        let failures = [
            (
                "3.12.1",
                "CPython 3.12 is missing (x does not run as 3.12)".to_owned(),
            ),
            (
                "3.13.0",
                "CPython 3.13 is missing (y does not run as 3.13)".to_owned(),
            ),
        ];
        let message = missing_message(&failures, None);
        assert!(message.contains("neither pyenv nor uv"), "{message}");
        assert!(message.contains("  - CPython 3.12 is missing"), "{message}");
        assert!(
            message.contains("uv python install 3.12.1 3.13.0\n"),
            "{message}"
        );
        assert!(
            message.contains("IRIS_SKIP_INTEROP=1 cargo xtask test"),
            "{message}"
        );
    }
}
