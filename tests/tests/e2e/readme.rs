//! The README's shell blocks run as written, and its output samples are
//! what the commands print, so the README cannot drift from what works.
//!
//! - A block starting `# Terminal 1` and the next one starting `# Terminal 2`
//!   run as two shells: the first in the background until something listens
//!   on the seed's port 6000, then the second to its end; then the first
//!   ends by itself or is stopped with SIGTERM, as [`PAIRS`] says.
//! - Other blocks run line by line in one shell, except the commands too
//!   heavy or recursive to run inside the suite (the test command itself,
//!   benchmarks, the soak, fuzzing, lints): for those, the task, flags,
//!   packages and files they name are checked to exist ([`check_heavy`]).
//! - Output samples (```` ```text ```` blocks) are compared with snapbox,
//!   with timestamps, ephemeral ports and timings as wildcards.
//!
//! Every shell block must be one of these; a new block the test does not know
//! fails it.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use iris_e2e::{Finished, Process, SEED_PORT, listening_process, repo_root, seed_port, timeout};

/// A fenced block of README.md.
#[derive(Debug, Clone)]
struct Block {
    /// The line of its opening fence, for messages.
    line: usize,
    lang: String,
    text: String,
}

impl Block {
    fn first_line(&self) -> &str {
        self.text.lines().next().unwrap_or("")
    }
}

fn readme() -> String {
    let path = repo_root().join("README.md");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// Every fenced block, in order.
fn blocks(readme: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut open: Option<Block> = None;
    for (index, line) in readme.lines().enumerate() {
        match (&mut open, line.strip_prefix("```")) {
            (None, Some(lang)) => {
                open = Some(Block {
                    line: index + 1,
                    lang: lang.trim().to_owned(),
                    text: String::new(),
                })
            }
            (Some(_), Some("")) => blocks.extend(open.take()),
            (Some(block), _) => {
                block.text.push_str(line);
                block.text.push('\n');
            }
            (None, None) => {}
        }
    }
    assert!(open.is_none(), "README.md has an unclosed code block");
    blocks
}

fn shell_blocks(readme: &str) -> Vec<Block> {
    blocks(readme)
        .into_iter()
        .filter(|block| block.lang == "sh")
        .collect()
}

/// The output sample (text block) that contains `needle`.
fn sample(readme: &str, needle: &str) -> String {
    blocks(readme)
        .into_iter()
        .find(|block| block.lang == "text" && block.text.contains(needle))
        .map(|block| block.text)
        .unwrap_or_else(|| panic!("README.md has no text block with {needle:?}"))
}

/// How a terminal-1 block ends once terminal 2 is done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// It exits by itself (`--once`, the seed's listener).
    ByItself,
    /// It is a listener that runs until SIGTERM.
    Sigterm,
}

/// The two-terminal blocks, by the first line of terminal 1.
const PAIRS: [(&str, End); 3] = [
    ("# Terminal 1: build, then listen", End::Sigterm),
    ("# Terminal 1: serve one connection", End::ByItself),
    ("# Terminal 1: the seed's listener", End::ByItself),
];

/// A shell running README text in the repository's root, with the
/// environment a new user has (no iris variables), in its own process group
/// so that [`Group`] can kill whatever it started.
fn shell(text: &str) -> Command {
    let mut command = Command::new("bash");
    command
        .arg("-ec")
        .arg(text)
        .current_dir(repo_root())
        .env_remove("IRIS_AUTHKEY")
        .env_remove("IRIS_ADDRESS")
        .env_remove("RUST_LOG")
        .env("NO_COLOR", "1")
        .process_group(0);
    // What cargo sets for this test, which a user's shell does not have;
    // a `cargo build` in the block would otherwise see a changed
    // environment and rebuild crates whose build scripts read it.
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if [
            "CARGO_MANIFEST_",
            "CARGO_PKG_",
            "CARGO_CRATE_",
            "CARGO_BIN_",
        ]
        .iter()
        .any(|prefix| key.starts_with(prefix))
            || key == "CARGO_PRIMARY_PACKAGE"
            || key == "CARGO_TARGET_TMPDIR"
        {
            command.env_remove(key.as_ref());
        }
    }
    command
}

/// Kills a shell's process group when dropped, so that a failing test
/// leaves no listener behind on port 6000.
struct Group(u32);

impl Drop for Group {
    fn drop(&mut self) {
        let _ = iris_testkit::send_signal_to_group(self.0, iris_testkit::Signal::SIGKILL);
    }
}

/// Starts a terminal-1 shell and waits until it listens on port 6000.
fn start_terminal1(name: &str, text: &str) -> (Process, Group) {
    let terminal = Process::spawn(name, shell(text));
    let group = Group(terminal.pid());
    wait_for_port_6000(&terminal, name);
    (terminal, group)
}

/// Waits until something listens on port 6000 (nothing did when
/// [`seed_port`] checked), or `terminal` ends first.
fn wait_for_port_6000(terminal: &Process, what: &str) {
    let deadline = Instant::now() + timeout();
    // /proc is polled: the seed's listener prints nothing when ready, and
    // connecting to see would use up its one connection.
    while listening_process(SEED_PORT).is_none() {
        let ended = terminal.stderr().ended();
        assert!(
            !ended,
            "{what} ended before listening on {SEED_PORT}:\n{}",
            terminal.stderr().snapshot().join("\n")
        );
        assert!(
            Instant::now() < deadline,
            "{what} did not listen on {SEED_PORT} within {:?}",
            timeout()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Runs a terminal-1 block and its terminal-2 block; returns how each
/// ended.
fn run_pair(first: &Block, second: &Block, end: End) -> (Finished, Finished) {
    let (terminal1, _group) = start_terminal1(
        &format!("README line {} (terminal 1)", first.line),
        &first.text,
    );
    let terminal2 = Process::spawn(
        &format!("README line {} (terminal 2)", second.line),
        shell(&second.text),
    )
    .finish();
    terminal2.assert_code(0);
    if end == End::Sigterm {
        stop_listener_on_port_6000();
    }
    (terminal1.finish(), terminal2)
}

/// Sends SIGTERM to the program listening on port 6000, as Ctrl-C would.
fn stop_listener_on_port_6000() {
    let (pid, _) = listening_process(SEED_PORT).expect("a listener on port 6000");
    iris_testkit::send_signal(pid, iris_testkit::Signal::SIGTERM)
        .unwrap_or_else(|e| panic!("kill -TERM {pid} failed: {e}"));
}

/// Turns a README output sample into a snapbox pattern: timestamps,
/// ephemeral ports and timings become `[..]`.
fn pattern(sample: &str) -> String {
    let mut lines = Vec::new();
    for line in sample.lines() {
        let mut line = line.to_owned();
        if let Some((first, rest)) = line.split_once(' ') {
            let is_timestamp = first.len() > 20
                && first.ends_with('Z')
                && first.contains('T')
                && first
                    .chars()
                    .all(|c| c.is_ascii_digit() || "-T:.Z".contains(c));
            if is_timestamp {
                line = format!("[..] {rest}");
            }
        }
        line = wildcard_after(&line, "127.0.0.1:", |port| port != SEED_PORT.to_string());
        line = wildcard_after(&line, "time=", |_| true);
        line = wildcard_after(&line, "min/median/max = ", |_| true);
        lines.push(line);
    }
    lines.join("\n") + "\n"
}

/// Replaces the number after each `marker` with `[..]` where `replace`
/// says so.
fn wildcard_after(line: &str, marker: &str, replace: impl Fn(&str) -> bool) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(at) = rest.find(marker) {
        let (before, after) = rest.split_at(at + marker.len());
        out.push_str(before);
        let end = after
            .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '/'))
            .unwrap_or(after.len());
        let number = after[..end].trim_end_matches('.');
        if !number.is_empty() && replace(number) {
            out.push_str("[..]");
            rest = &after[number.len()..];
        } else {
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

fn assert_matches(actual: &[String], sample: &str, what: &str) {
    eprintln!("checking {what}");
    snapbox::Assert::new().eq(actual.join("\n") + "\n", pattern(sample));
}

#[test]
fn the_two_terminal_blocks_run_as_written() {
    let readme = readme();
    let blocks = shell_blocks(&readme);
    let mut pairs = Vec::new();
    for (index, block) in blocks.iter().enumerate() {
        if !block.first_line().starts_with("# Terminal 1") {
            continue;
        }
        let second = blocks
            .get(index + 1)
            .filter(|next| next.first_line().starts_with("# Terminal 2"))
            .unwrap_or_else(|| {
                panic!(
                    "README line {}: a `# Terminal 1` block must be followed by a `# Terminal 2` block",
                    block.line
                )
            });
        let end = PAIRS
            .iter()
            .find(|(start, _)| block.first_line().starts_with(start))
            .map(|(_, end)| *end)
            .unwrap_or_else(|| {
                panic!(
                    "README line {}: unknown two-terminal block {:?}; add it to PAIRS in {}",
                    block.line,
                    block.first_line(),
                    file!()
                )
            });
        pairs.push((block.clone(), second.clone(), end));
    }
    assert_eq!(
        pairs.len(),
        PAIRS.len(),
        "every pair in PAIRS is in the README"
    );

    let test = "the_two_terminal_blocks_run_as_written";
    let _port = seed_port();

    // Running it by hand: the listener, then three clients.
    let (listener, clients) = run_pair(&pairs[0].0, &pairs[0].1, pairs[0].2);
    listener.assert_code(0);
    assert_matches(
        &clients.stdout,
        &sample(&readme, "sent 1 flower"),
        "terminal 2's sample",
    );
    let log_sample = sample(&readme, "INFO listening on");
    let (areas, logs): (Vec<&str>, Vec<&str>) = log_sample
        .lines()
        .partition(|line| line.starts_with("Area: "));
    // Terminal 1 shows cargo's build first; the listener's log starts with
    // `listening on`.
    let first_logs: Vec<String> = listener
        .stderr
        .iter()
        .skip_while(|line| !line.contains("listening on"))
        .take(logs.len())
        .cloned()
        .collect();
    assert_matches(
        &first_logs,
        &(logs.join("\n") + "\n"),
        "the listener's log sample",
    );
    assert!(
        listener.stdout.starts_with(
            &areas
                .iter()
                .map(|area| area.to_string())
                .collect::<Vec<_>>()
        ),
        "the listener printed the sample's Area lines first: {}",
        listener.describe()
    );
    assert_eq!(listener.area_lines().len(), 151, "{}", listener.describe());

    let Some(python) = iris_testkit::python3(test) else {
        eprintln!("{test}: skipping the Python blocks");
        return;
    };
    python.record();

    // A Python client, the Rust listener.
    let (listener, client) = run_pair(&pairs[1].0, &pairs[1].1, pairs[1].2);
    listener.assert_code(0);
    assert_eq!(listener.stdout, ["Area: 18.13"], "{}", client.describe());

    // Without --allow-legacy-md5, the log names it (python3 is 3.11).
    let without_flag = Block {
        text: pairs[1].0.text.replace(" --allow-legacy-md5", ""),
        ..pairs[1].0.clone()
    };
    assert_ne!(without_flag.text, pairs[1].0.text, "the block has the flag");
    let (terminal1, _group) =
        start_terminal1("README terminal 1 without the flag", &without_flag.text);
    let client = Process::spawn("the seed's client", shell(&pairs[1].1.text)).finish();
    assert_ne!(client.code(), Some(0), "a 3.11 client is refused");
    // A refused connection is not the --once one: the listener goes on.
    let rejection = terminal1
        .stderr()
        .wait_for("the rejection", |lines| {
            lines
                .iter()
                .find(|line| line.contains(" rejected: "))
                .cloned()
        })
        .unwrap_or_else(|lines| panic!("no rejection logged:\n{}", lines.join("\n")));
    stop_listener_on_port_6000();
    terminal1.finish().assert_code(0);
    assert_matches(
        &[rejection],
        &sample(&readme, "rejected: authentication failed"),
        "the legacy rejection sample",
    );

    // The Rust client, a Python listener.
    let (listener, client) = run_pair(&pairs[2].0, &pairs[2].1, pairs[2].2);
    listener.assert_code(0);
    assert_eq!(listener.area_lines().len(), 150, "{}", listener.describe());
    assert!(
        client.stdout.concat().contains("sent 150 flowers"),
        "{}",
        client.describe()
    );
}

/// The commands of shell blocks that are not run here, by how they start.
const HEAVY: [&str; 8] = [
    "cargo xtask test",
    "cargo xtask bench",
    "cargo xtask soak",
    "cargo xtask fuzz",
    "cargo test",
    "cargo clippy",
    "cargo fmt",
    "cargo bench",
];

/// Checks that what a command too heavy to run names exists: the xtask
/// task and its flags, cargo packages and benches, scripts.
fn check_heavy(line: &str, xtask_help: &str) {
    let words: Vec<&str> = line
        .split('#')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    match words.as_slice() {
        ["cargo", "xtask", task, rest @ ..] => {
            assert!(
                xtask_help.contains(&format!("\n  {task} ")),
                "`{line}`: xtask has no task {task:?}:\n{xtask_help}"
            );
            for flag in rest.iter().filter(|word| word.starts_with("--")) {
                let flag = flag.split('=').next().unwrap_or(flag);
                assert!(
                    xtask_help.contains(flag),
                    "`{line}`: xtask's help knows no {flag}:\n{xtask_help}"
                );
            }
        }
        ["cargo", _, rest @ ..] => {
            for pair in rest.windows(2) {
                match pair {
                    ["-p", package] => assert!(
                        repo_root()
                            .join("crates")
                            .join(package)
                            .join("Cargo.toml")
                            .is_file()
                            // The end-to-end tests' package lives in tests/.
                            || std::fs::read_to_string(repo_root().join("tests/Cargo.toml"))
                                .is_ok_and(|manifest| {
                                    manifest.contains(&format!("name = \"{package}\""))
                                }),
                        "`{line}`: no package {package}"
                    ),
                    ["--bench", bench] => assert!(
                        std::fs::read_dir(repo_root().join("crates"))
                            .expect("crates/")
                            .flatten()
                            .any(|krate| krate
                                .path()
                                .join("benches")
                                .join(format!("{bench}.rs"))
                                .is_file()),
                        "`{line}`: no bench {bench}"
                    ),
                    _ => {}
                }
            }
        }
        _ => panic!("`{line}` is not a heavy command"),
    }
}

#[test]
fn the_other_shell_blocks_run_as_written() {
    let readme = readme();
    let xtask_help = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .args(["xtask", "help"])
        .current_dir(repo_root())
        .output()
        .expect("run cargo xtask help");
    assert!(xtask_help.status.success(), "cargo xtask help failed");
    let xtask_help = String::from_utf8_lossy(&xtask_help.stdout).into_owned();

    let mut ran = 0;
    for block in shell_blocks(&readme) {
        let first = block.first_line();
        if first.starts_with("# Terminal 1") || first.starts_with("# Terminal 2") {
            continue;
        }
        let mut script = String::new();
        for line in block.text.lines() {
            let command = line.split('#').next().unwrap_or("").trim();
            if HEAVY.iter().any(|heavy| command.starts_with(heavy)) {
                check_heavy(command, &xtask_help);
            } else if command.contains(".ci/run") {
                assert_eq!(command, "bash .ci/run", "README line {}", block.line);
                assert!(
                    Path::new(&repo_root().join(".ci/run")).is_file(),
                    ".ci/run exists"
                );
            } else {
                script.push_str(line);
                script.push('\n');
            }
        }
        if script
            .trim()
            .lines()
            .all(|line| line.trim().is_empty() || line.trim_start().starts_with('#'))
        {
            continue;
        }
        let finished =
            Process::spawn(&format!("README line {}", block.line), shell(&script)).finish();
        assert_eq!(
            finished.code(),
            Some(0),
            "README line {}: the block fails as written:\n{script}\n{}",
            block.line,
            finished.describe()
        );
        ran += 1;
    }
    // The Quick start's demo and the completions block.
    assert!(ran >= 2, "only {ran} blocks ran");
}

#[test]
fn samples_are_turned_into_patterns() {
    assert_eq!(
        pattern("2026-11-27T10:20:01.123456Z  INFO connection 1 opened from 127.0.0.1:51234\n"),
        "[..]  INFO connection 1 opened from 127.0.0.1:[..]\n"
    );
    assert_eq!(
        pattern("2026-11-27T10:20:01.123456Z  INFO listening on 127.0.0.1:6000\n"),
        "[..]  INFO listening on 127.0.0.1:6000\n"
    );
    assert_eq!(
        pattern("5 pongs from localhost:6000: min/median/max = 0.041/0.064/0.088 ms\n"),
        "5 pongs from localhost:6000: min/median/max = [..] ms\n"
    );
    assert_eq!(
        pattern("pong from localhost:6000: time=0.088 ms\n"),
        "pong from localhost:6000: time=[..] ms\n"
    );
}
