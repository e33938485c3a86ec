//! `cargo xtask demo`: the whole system end to end.
//!
//! Builds `iris-listener` and `iris-client`, starts a listener on a free
//! port with a fresh random authkey, sends `data/iris.csv` split in three
//! from three clients at once, stops the listener with SIGTERM and checks
//! that every flower was acknowledged, printed and counted.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};

use iris_testkit::{Summary, acknowledged};

use crate::process::{self, Guarded, Output, Scratch};

/// How many clients send at once.
const CLIENTS: usize = 3;
/// How long the listener gets to start listening.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the clients get to send everything and be acknowledged.
const CLIENTS_TIMEOUT: Duration = Duration::from_secs(120);
/// How long the listener gets to exit after SIGTERM.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs the demo; an error means it failed (children are killed by then).
pub(crate) fn run(args: &[String]) -> anyhow::Result<()> {
    if let Some(arg) = args.first() {
        bail!("`demo` takes no arguments, got {arg:?}");
    }
    process::kill_children_on_interrupt()?;

    let root = process::workspace_root();
    step("building iris-listener and iris-client");
    let bins = build(&root)?;

    let scratch = Scratch::new("iris-demo")?;
    let data = root.join("data").join("iris.csv");
    let (parts, flowers) = split_csv(&data, CLIENTS, scratch.path())?;
    let key = crate::key::random_hex(32)?;

    step("starting iris-listener on 127.0.0.1:0 with a fresh random authkey");
    let listener = RunningListener::start(&bins.listener, &key, scratch.path())?;
    step(&format!("listener is listening on {}", listener.address));

    step(&format!(
        "sending {} ({flowers} flowers) from {CLIENTS} clients at once",
        data.display()
    ));
    let clients = run_clients(&bins.client, &listener.address, &key, &parts)?;

    step("stopping the listener with SIGTERM");
    let listener = listener.stop()?;

    verdict(flowers, &clients, &listener)
}

fn step(message: &str) {
    console().line(format_args!("==> {message}"));
}

/// Where everything the demo shows goes while its children run: the
/// listener's stdout and stderr, the clients' output and the demo's steps,
/// each line whole (see [`Relay`]).
fn console() -> &'static Relay<std::io::Stdout> {
    static CONSOLE: OnceLock<Relay<std::io::Stdout>> = OnceLock::new();
    CONSOLE.get_or_init(|| Relay::new(std::io::stdout()))
}

/// Writes lines from many threads to one writer, a whole line per write
/// under one lock, so that lines from different sources never tear into
/// each other (`INFO connection 3 closed: 50 flowersArea: 24.15`), whatever
/// the writer does with a write.
struct Relay<W> {
    out: Mutex<W>,
}

impl<W: Write> Relay<W> {
    fn new(out: W) -> Relay<W> {
        Relay {
            out: Mutex::new(out),
        }
    }

    /// Writes `text` and a newline as one piece. A failed write (a closed
    /// terminal) is ignored: the demo's verdict does not depend on it.
    fn line(&self, text: impl std::fmt::Display) {
        let line = format!("{text}\n");
        let mut out = self.out.lock().unwrap_or_else(PoisonError::into_inner);
        let _ = out.write_all(line.as_bytes()).and_then(|()| out.flush());
    }

    /// Relays every line of `source`, after `prefix`, until it ends;
    /// returns the lines (without the prefix).
    fn relay(&self, source: impl Read, prefix: &str) -> Vec<String> {
        let mut lines = Vec::new();
        for line in BufReader::new(source).lines() {
            let Ok(line) = line else { break };
            self.line(format_args!("{prefix}{line}"));
            lines.push(line);
        }
        lines
    }
}

struct Binaries {
    listener: PathBuf,
    client: PathBuf,
}

/// Builds both binaries (debug profile) and finds them.
fn build(root: &Path) -> anyhow::Result<Binaries> {
    let dir = process::cargo_build(root, false, &["iris-listener", "iris-client"])?;
    Ok(Binaries {
        listener: process::binary(&dir, "iris-listener")?,
        client: process::binary(&dir, "iris-client")?,
    })
}

/// Splits the CSV at `data` into `n` files in `dir`, each with the header;
/// returns their paths and the number of flowers in all.
fn split_csv(data: &Path, n: usize, dir: &Path) -> anyhow::Result<(Vec<PathBuf>, usize)> {
    let text =
        std::fs::read_to_string(data).with_context(|| format!("cannot read {}", data.display()))?;
    let mut lines = text.lines().filter(|line| !line.trim().is_empty());
    let header = lines
        .next()
        .with_context(|| format!("{} is empty", data.display()))?;
    let rows: Vec<&str> = lines.collect();
    ensure!(
        rows.len() >= n,
        "{} has fewer than {n} flowers",
        data.display()
    );
    let mut parts = Vec::with_capacity(n);
    for (index, chunk) in rows.chunks(rows.len().div_ceil(n)).enumerate() {
        let path = dir.join(format!("part{}.csv", index + 1));
        let mut contents = format!("{header}\n");
        for row in chunk {
            contents.push_str(row);
            contents.push('\n');
        }
        std::fs::write(&path, contents)
            .with_context(|| format!("cannot write {}", path.display()))?;
        parts.push(path);
    }
    Ok((parts, rows.len()))
}

/// Makes a command hermetic with respect to the caller's iris settings:
/// the authkey and address come from the demo, logs are at the default level
/// (so that `listening on` is logged) and uncoloured.
fn iris_command(program: &Path, key: &str) -> Command {
    let mut command = process::iris_command(program, key);
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// A listener whose stdout is shown as it comes and whose stderr is shown
/// (prefixed) and kept.
struct RunningListener {
    guard: Guarded,
    address: String,
    /// Disconnected once the listener's stderr ends (it exited).
    stderr_events: Receiver<()>,
    stdout: JoinHandle<Vec<String>>,
    stderr: JoinHandle<Vec<String>>,
}

/// What the listener printed, and how it exited.
struct FinishedListener {
    status: std::process::ExitStatus,
    stdout: Vec<String>,
    stderr: Vec<String>,
}

impl RunningListener {
    /// Starts the listener and waits until it logs `listening on`; by then
    /// it has written its address file.
    fn start(program: &Path, key: &str, dir: &Path) -> anyhow::Result<RunningListener> {
        let address_file = dir.join("listener.address");
        let mut command = iris_command(program, key);
        command
            .args(["--address", "127.0.0.1:0", "--address-file"])
            .arg(&address_file);
        let mut guard = Guarded::spawn("iris-listener", &mut command)?;
        let stdout = guard.take_stdout().context("no stdout pipe")?;
        let stderr = guard.take_stderr().context("no stderr pipe")?;

        let stdout = std::thread::spawn(move || console().relay(stdout, ""));
        let (events, stderr_events) = mpsc::channel();
        let stderr = std::thread::spawn(move || {
            let mut lines = Vec::new();
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                console().line(format_args!("    listener | {line}"));
                if line.contains("listening on") {
                    let _ = events.send(());
                }
                lines.push(line);
            }
            lines
        });

        match stderr_events.recv_timeout(READY_TIMEOUT) {
            Ok(()) => {}
            Err(RecvTimeoutError::Disconnected) => {
                let lines = stderr.join().unwrap_or_default();
                let status = guard.wait()?;
                bail!(
                    "iris-listener exited ({status}) before listening; its stderr:\n{}",
                    lines.join("\n")
                );
            }
            Err(RecvTimeoutError::Timeout) => bail!(
                "iris-listener did not log `listening on` within {}s",
                READY_TIMEOUT.as_secs()
            ),
        }
        let address = std::fs::read_to_string(&address_file)
            .with_context(|| {
                format!(
                    "iris-listener logged `listening on` but its address file {} is unreadable",
                    address_file.display()
                )
            })?
            .trim_end_matches('\n')
            .to_owned();
        ensure!(
            !address.is_empty(),
            "iris-listener's address file {} is empty",
            address_file.display()
        );
        Ok(RunningListener {
            guard,
            address,
            stderr_events,
            stdout,
            stderr,
        })
    }

    /// Sends SIGTERM and waits for the listener to exit.
    fn stop(self) -> anyhow::Result<FinishedListener> {
        self.guard.terminate()?;
        let deadline = Instant::now() + SHUTDOWN_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stderr_events.recv_timeout(left) {
                Ok(()) => {}
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => bail!(
                    "iris-listener did not exit within {}s of SIGTERM",
                    SHUTDOWN_TIMEOUT.as_secs()
                ),
            }
        }
        let stderr = self.stderr.join().unwrap_or_default();
        let stdout = self.stdout.join().unwrap_or_default();
        let status = self.guard.wait()?;
        Ok(FinishedListener {
            status,
            stdout,
            stderr,
        })
    }
}

struct ClientRun {
    name: String,
    part: PathBuf,
    output: Output,
}

/// Runs one `iris-client send PART` per part, all at once, and waits for
/// them all.
fn run_clients(
    program: &Path,
    address: &str,
    key: &str,
    parts: &[PathBuf],
) -> anyhow::Result<Vec<ClientRun>> {
    let mut clients = Vec::with_capacity(parts.len());
    for (index, part) in parts.iter().enumerate() {
        let mut command = iris_command(program, key);
        command.args(["send", "--address", address]).arg(part);
        let guard = Guarded::spawn(format!("client {}", index + 1), &mut command)?;
        clients.push((guard, part.clone()));
    }
    let (done, results) = mpsc::channel();
    std::thread::scope(|scope| {
        for (index, (guard, part)) in clients.into_iter().enumerate() {
            let done = done.clone();
            scope.spawn(move || {
                let name = guard.name().to_owned();
                let output = guard.output();
                let _ = done.send((index, name, part, output));
            });
        }
        drop(done);
        let deadline = Instant::now() + CLIENTS_TIMEOUT;
        let mut runs: Vec<Option<ClientRun>> = (0..parts.len()).map(|_| None).collect();
        for _ in 0..parts.len() {
            let left = deadline.saturating_duration_since(Instant::now());
            match results.recv_timeout(left) {
                Ok((index, name, part, output)) => {
                    let output = output?;
                    show_client(&name, &output);
                    runs[index] = Some(ClientRun { name, part, output });
                }
                Err(_) => {
                    // Unblocks the threads still reading the clients' pipes.
                    process::kill_all();
                    bail!(
                        "the clients did not finish within {}s",
                        CLIENTS_TIMEOUT.as_secs()
                    );
                }
            }
        }
        Ok(runs.into_iter().flatten().collect())
    })
}

fn show_client(name: &str, output: &Output) {
    let stdout = output.stdout.trim_end();
    console().line(format_args!(
        "    {name} exited ({}): {stdout}",
        output.status
    ));
    for line in output.stderr.lines() {
        console().line(format_args!("    {name} | {line}"));
    }
}

/// Drops ANSI escape sequences (colours), should the logs have them.
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The listener's `summary: connections=C ... virginica=D` line, cleaned.
fn summary_line(stderr: &[String]) -> Option<String> {
    stderr.iter().map(|line| strip_ansi(line)).find_map(|line| {
        let at = line.find("summary:")?;
        Some(line[at..].trim_end().to_owned())
    })
}

fn verdict(
    flowers: usize,
    clients: &[ClientRun],
    listener: &FinishedListener,
) -> anyhow::Result<()> {
    let flowers = flowers as u64;
    let mut failures = Vec::new();
    let mut total_acked = 0;
    for client in clients {
        let output = &client.output;
        if !output.status.success() {
            failures.push(format!(
                "{} (sending {}) exited with {}",
                client.name,
                client.part.display(),
                output.status
            ));
        }
        match acknowledged(&output.stdout) {
            Some(acked) => total_acked += acked,
            None => failures.push(format!(
                "{} printed no `sent N flowers to ADDR; N acknowledged` line",
                client.name
            )),
        }
    }
    if total_acked != flowers {
        failures.push(format!(
            "the clients report {total_acked} flowers acknowledged, expected {flowers}"
        ));
    }
    if !listener.status.success() {
        failures.push(format!(
            "iris-listener exited with {} after SIGTERM",
            listener.status
        ));
    }
    let areas = listener
        .stdout
        .iter()
        .filter(|line| line.starts_with("Area: "))
        .count() as u64;
    if areas != flowers {
        failures.push(format!(
            "iris-listener printed {areas} `Area:` lines, expected {flowers}"
        ));
    }
    let others = listener.stdout.len() as u64 - areas;
    if others != 0 {
        failures.push(format!(
            "iris-listener printed {others} stdout lines that are not `Area:` lines"
        ));
    }
    let summary = summary_line(&listener.stderr);
    match &summary {
        Some(summary) => match Summary::parse(summary).and_then(|s| s.value("flowers")) {
            Some(counted) if counted == flowers => {}
            Some(counted) => failures.push(format!(
                "the listener's summary says flowers={counted}, expected {flowers}"
            )),
            None => failures.push(format!(
                "the listener's summary has no flowers=N: {summary}"
            )),
        },
        None => failures.push("iris-listener printed no `summary:` line".to_owned()),
    }

    println!();
    println!(
        "listener {}",
        summary.as_deref().unwrap_or("printed no summary")
    );
    if failures.is_empty() {
        println!(
            "demo PASSED: {} clients sent {flowers} flowers, {total_acked} acknowledged; \
             the listener printed {areas} `Area:` lines, counted flowers={flowers} and exited 0",
            clients.len()
        );
        Ok(())
    } else {
        println!("demo FAILED:");
        for failure in &failures {
            println!("  - {failure}");
        }
        bail!(
            "the demo failed ({} problem(s), listed above)",
            failures.len()
        )
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    /// A writer that takes at most a few bytes per write and lets other
    /// threads run in between: a line written in pieces without a lock
    /// around them would tear.
    struct Trickle(Arc<Mutex<Vec<u8>>>);

    impl Write for Trickle {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let n = buf.len().min(5);
            self.0
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .extend_from_slice(&buf[..n]);
            std::thread::yield_now();
            Ok(n)
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn relayed_lines_from_concurrent_sources_never_tear() {
        const LINES: usize = 2000;
        let written = Arc::new(Mutex::new(Vec::new()));
        let relay = Relay::new(Trickle(Arc::clone(&written)));
        let source = |name: &str| -> String {
            (0..LINES)
                .map(|i| format!("{name} line {i} of a source that writes many lines\n"))
                .collect()
        };
        let (stdout, stderr) = (source("Area:"), source("INFO connection"));
        std::thread::scope(|scope| {
            let relay = &relay;
            let a = scope.spawn(move || relay.relay(stdout.as_bytes(), ""));
            let b = scope.spawn(move || relay.relay(stderr.as_bytes(), "    listener | "));
            assert_eq!(a.join().expect("source a").len(), LINES);
            assert_eq!(b.join().expect("source b").len(), LINES);
        });
        let written = String::from_utf8(written.lock().expect("lock").clone()).expect("UTF-8");
        let mut from = [0, 0];
        for line in written.lines() {
            let whole = |prefix: &str, name: &str| {
                line.strip_prefix(prefix)
                    .and_then(|rest| rest.strip_prefix(name))
                    .and_then(|rest| rest.strip_prefix(" line "))
                    .and_then(|rest| rest.strip_suffix(" of a source that writes many lines"))
                    .is_some_and(|i| i.parse::<usize>().is_ok())
            };
            if whole("", "Area:") {
                from[0] += 1;
            } else if whole("    listener | ", "INFO connection") {
                from[1] += 1;
            } else {
                panic!("a torn line: {line:?}");
            }
        }
        assert_eq!(from, [LINES, LINES], "every line arrived whole");
    }

    #[test]
    fn finds_the_summary_among_coloured_lines() {
        let stderr = vec![
            "\x1b[2m2026-01-01\x1b[0m \x1b[32m INFO\x1b[0m listening on 127.0.0.1:1".to_owned(),
            "summary: connections=3 rejected=0 flowers=150 setosa=50 versicolor=50 virginica=50"
                .to_owned(),
        ];
        let summary = summary_line(&stderr).expect("a summary");
        assert!(summary.starts_with("summary: connections=3"), "{summary}");
    }

    #[test]
    fn splits_the_csv_with_a_header_on_each_part() {
        let scratch = Scratch::new("iris-demo").expect("scratch dir");
        let data = scratch.path().join("all.csv");
        std::fs::write(&data, "h\n1\n2\n3\n4\n5\n\n").expect("write");
        let (parts, flowers) = split_csv(&data, 3, scratch.path()).expect("split");
        assert_eq!(flowers, 5);
        let contents: Vec<String> = parts
            .iter()
            .map(|part| std::fs::read_to_string(part).expect("read"))
            .collect();
        assert_eq!(contents, ["h\n1\n2\n", "h\n3\n4\n", "h\n5\n"]);
    }
}
