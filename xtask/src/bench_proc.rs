//! The benchmark's processes: servers that are waited for until they
//! listen, clients held at a start gate so that their start-up is never
//! timed, bounded waits for everything, and the memory of a process.
//!
//! Every child is a [`Guarded`]: killed when dropped (every error path) and
//! when the xtask is interrupted.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};

use crate::process::{self, Guarded, Output};

/// How long a server gets to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How often the address file is looked for.
const POLL: Duration = Duration::from_millis(2);

/// A server on a loopback address, its stderr read line by line.
pub(crate) struct Server {
    guard: Guarded,
    pub(crate) address: String,
    /// Each stderr line and when it was read; disconnected once the server
    /// exited (its stderr ended).
    lines: Receiver<(Instant, String)>,
    /// The stderr lines read so far, for error messages.
    log: Vec<String>,
}

impl Server {
    /// Spawns `command` with stdout to /dev/null and waits until it has
    /// written its address to `address_file` (atomically, ending in a
    /// newline), which every server here does once it listens.
    pub(crate) fn start(
        name: &str,
        command: &mut Command,
        address_file: &Path,
    ) -> anyhow::Result<Server> {
        command.stdout(Stdio::null());
        Server::start_with_stdout(name, command, address_file)
    }

    /// As [`Server::start`], with the stdout `command` has (piped: take it
    /// with [`Server::take_stdout`]).
    pub(crate) fn start_with_stdout(
        name: &str,
        command: &mut Command,
        address_file: &Path,
    ) -> anyhow::Result<Server> {
        command.stdin(Stdio::null()).stderr(Stdio::piped());
        let mut guard = Guarded::spawn(name, command)?;
        let stderr = guard.take_stderr().context("no stderr pipe")?;
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if sender.send((Instant::now(), line)).is_err() {
                    break;
                }
            }
        });
        let mut server = Server {
            guard,
            address: String::new(),
            lines,
            log: Vec::new(),
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(text) = std::fs::read_to_string(address_file)
                && let Some(address) = text.strip_suffix('\n')
            {
                server.address = address.trim().to_owned();
                return Ok(server);
            }
            match server.lines.recv_timeout(POLL) {
                Ok((_, line)) => server.log.push(line),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => bail!(
                    "{name} exited before it listened; its stderr:\n{}",
                    server.log.join("\n")
                ),
            }
            ensure!(
                Instant::now() < deadline,
                "{name} did not listen within {}s",
                START_TIMEOUT.as_secs()
            );
        }
    }

    pub(crate) fn pid(&self) -> u32 {
        self.guard.pid()
    }

    /// Takes the server's piped stdout.
    pub(crate) fn take_stdout(&mut self) -> Option<ChildStdout> {
        self.guard.take_stdout()
    }

    /// Waits for a stderr line starting with `prefix` and returns when it
    /// was read.
    pub(crate) fn wait_line(&mut self, prefix: &str, timeout: Duration) -> anyhow::Result<Instant> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok((at, line)) => {
                    let found = line.starts_with(prefix);
                    self.log.push(line);
                    if found {
                        return Ok(at);
                    }
                }
                Err(RecvTimeoutError::Timeout) => bail!(
                    "{} did not print {prefix:?} within {}s; its stderr:\n{}",
                    self.guard.name(),
                    timeout.as_secs(),
                    self.tail()
                ),
                Err(RecvTimeoutError::Disconnected) => bail!(
                    "{} exited before printing {prefix:?}; its stderr:\n{}",
                    self.guard.name(),
                    self.tail()
                ),
            }
        }
    }

    /// Waits for the server to exit by itself, then reaps it; returns its
    /// exit status and all its stderr lines.
    pub(crate) fn finish(mut self, timeout: Duration) -> anyhow::Result<(ExitStatus, Vec<String>)> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok((_, line)) => self.log.push(line),
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => bail!(
                    "{} did not exit within {}s; its stderr:\n{}",
                    self.guard.name(),
                    timeout.as_secs(),
                    self.tail()
                ),
            }
        }
        let status = self.guard.wait()?;
        Ok((status, self.log))
    }

    /// Stops the server with SIGTERM and waits for it to exit.
    pub(crate) fn stop(self, timeout: Duration) -> anyhow::Result<(ExitStatus, Vec<String>)> {
        self.guard.terminate()?;
        self.finish(timeout)
    }

    /// The last stderr lines, for error messages.
    fn tail(&self) -> String {
        let from = self.log.len().saturating_sub(20);
        self.log[from..].join("\n")
    }
}

/// Clients that have started but wait for their standard input to end
/// before they do anything that is timed.
pub(crate) struct Gated {
    guards: Vec<Guarded>,
    stdins: Vec<ChildStdin>,
}

impl Gated {
    /// Spawns one client per command, stdin, stdout and stderr piped.
    pub(crate) fn spawn(name: &str, commands: Vec<Command>) -> anyhow::Result<Gated> {
        let mut gated = Gated {
            guards: Vec::with_capacity(commands.len()),
            stdins: Vec::with_capacity(commands.len()),
        };
        let many = commands.len() > 1;
        for (index, mut command) in commands.into_iter().enumerate() {
            command
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            let label = if many {
                format!("{name} {}", index + 1)
            } else {
                name.to_owned()
            };
            let mut guard = Guarded::spawn(label, &mut command)?;
            gated
                .stdins
                .push(guard.take_stdin().context("no stdin pipe")?);
            gated.guards.push(guard);
        }
        Ok(gated)
    }

    /// Waits until every client is blocked reading its stdin, for at most
    /// `timeout`. The kernel says where a process sleeps in
    /// `/proc/PID/wchan` (a pipe read, here); where it does not say (a
    /// hardened kernel shows `0`), a client counts as ready once it has
    /// slept without using any CPU for [`SETTLED`].
    pub(crate) fn wait_ready(&self, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        let mut waiting: Vec<Readiness> = self
            .guards
            .iter()
            .map(|guard| Readiness::new(guard.pid()))
            .collect();
        while !waiting.is_empty() && Instant::now() < deadline {
            waiting.retain_mut(|client| !client.ready());
            std::thread::sleep(POLL);
        }
        if !waiting.is_empty() {
            eprintln!(
                "    note: {} of {} client(s) not seen waiting on stdin after {}s; starting anyway",
                waiting.len(),
                self.guards.len(),
                timeout.as_secs()
            );
        }
        Ok(())
    }

    /// Waits for a line starting with `prefix` on the stdout of client
    /// `index` (whose stdout is read from then on by a thread, and no longer
    /// part of its [`Finished`] output).
    pub(crate) fn wait_stdout_line(
        &mut self,
        index: usize,
        prefix: &str,
        timeout: Duration,
    ) -> anyhow::Result<()> {
        let guard = self.guards.get_mut(index).context("no such client")?;
        let name = guard.name().to_owned();
        let stdout = guard
            .take_stdout()
            .context("its stdout was taken already")?;
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match lines.recv_timeout(left) {
                Ok(line) if line.starts_with(prefix) => return Ok(()),
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => bail!(
                    "{name} did not print {prefix:?} within {}s",
                    timeout.as_secs()
                ),
                Err(RecvTimeoutError::Disconnected) => {
                    bail!("{name} exited before it printed {prefix:?}")
                }
            }
        }
    }

    /// Ends every client's stdin, after writing `input` to it; returns the
    /// instant just before the first write: the start of the timed run.
    pub(crate) fn release(&mut self, input: &[u8]) -> anyhow::Result<Instant> {
        let started = Instant::now();
        for (stdin, guard) in self.stdins.drain(..).zip(&self.guards) {
            let mut stdin = stdin;
            stdin
                .write_all(input)
                .with_context(|| format!("cannot start {}", guard.name()))?;
        }
        Ok(started)
    }

    /// Waits for every client to exit (see [`finish_all`]).
    pub(crate) fn finish(self, timeout: Duration) -> anyhow::Result<Vec<Finished>> {
        drop(self.stdins);
        finish_all(self.guards, timeout)
    }
}

/// How long a client must sleep without using CPU to count as waiting at
/// its gate, where the kernel does not show what it waits for.
const SETTLED: Duration = Duration::from_millis(200);

/// Watches one client on its way to its start gate.
struct Readiness {
    pid: u32,
    /// Its CPU time and since when it has not changed, while asleep.
    asleep_since: Option<(u64, Instant)>,
}

impl Readiness {
    fn new(pid: u32) -> Readiness {
        Readiness {
            pid,
            asleep_since: None,
        }
    }

    fn ready(&mut self) -> bool {
        let pid = self.pid;
        if let Ok(wchan) = std::fs::read_to_string(format!("/proc/{pid}/wchan"))
            && wchan.trim() != "0"
            && !wchan.trim().is_empty()
        {
            return wchan.contains("pipe_read") || wchan.contains("pipe_wait");
        }
        self.settled()
    }

    /// Whether the client has slept without using CPU for [`SETTLED`].
    fn settled(&mut self) -> bool {
        let pid = self.pid;
        // `/proc/PID/stat`: "pid (comm) state … utime stime …", fields 3,
        // 14 and 15; comm may hold spaces, so count from its `)`.
        let Some((state, cpu)) = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|stat| {
                let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
                let cpu =
                    fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
                Some((fields.first()?.to_string(), cpu))
            })
        else {
            return false;
        };
        if state != "S" {
            self.asleep_since = None;
            return false;
        }
        match self.asleep_since {
            Some((before, since)) if before == cpu => since.elapsed() >= SETTLED,
            _ => {
                self.asleep_since = Some((cpu, Instant::now()));
                false
            }
        }
    }
}

/// A client that exited: what it printed, and when it was seen to exit.
pub(crate) struct Finished {
    pub(crate) name: String,
    pub(crate) output: Output,
    pub(crate) exited: Instant,
}

impl Finished {
    /// Fails unless the client exited 0.
    pub(crate) fn check(&self) -> anyhow::Result<()> {
        ensure!(
            self.output.status.success(),
            "{} failed ({}); its stderr:\n{}",
            self.name,
            self.output.status,
            self.output.stderr.trim_end()
        );
        Ok(())
    }
}

/// Waits for all `guards` to exit, reading their output, for at most
/// `timeout`; then kills every child and fails.
pub(crate) fn finish_all(guards: Vec<Guarded>, timeout: Duration) -> anyhow::Result<Vec<Finished>> {
    let count = guards.len();
    let (done, results) = mpsc::channel();
    std::thread::scope(|scope| {
        for (index, guard) in guards.into_iter().enumerate() {
            let done = done.clone();
            scope.spawn(move || {
                let name = guard.name().to_owned();
                let output = guard.output();
                let _ = done.send((index, name, Instant::now(), output));
            });
        }
        drop(done);
        let deadline = Instant::now() + timeout;
        let mut finished: Vec<Option<Finished>> = (0..count).map(|_| None).collect();
        for _ in 0..count {
            let left = deadline.saturating_duration_since(Instant::now());
            match results.recv_timeout(left) {
                Ok((index, name, exited, output)) => {
                    finished[index] = Some(Finished {
                        name,
                        output: output?,
                        exited,
                    });
                }
                Err(_) => {
                    // Unblocks the threads still reading the pipes.
                    process::kill_all();
                    bail!(
                        "{} of {count} client(s) did not finish within {}s",
                        finished.iter().filter(|f| f.is_none()).count(),
                        timeout.as_secs()
                    );
                }
            }
        }
        Ok(finished.into_iter().flatten().collect())
    })
}

/// Runs one client to its end (stdin closed), for at most `timeout`.
pub(crate) fn run_client(
    name: &str,
    command: &mut Command,
    timeout: Duration,
) -> anyhow::Result<Finished> {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let guard = Guarded::spawn(name, command)?;
    let finished = finish_all(vec![guard], timeout)?
        .pop()
        .context("the client vanished")?;
    finished.check()?;
    Ok(finished)
}

/// The resident memory of `pid` in MiB, from `/proc/PID/status`.
pub(crate) fn rss_mib(pid: u32) -> anyhow::Result<f64> {
    status_mib(pid, "VmRSS")
}

/// The peak resident memory of `pid` so far (its high-water mark) in MiB.
pub(crate) fn peak_rss_mib(pid: u32) -> anyhow::Result<f64> {
    status_mib(pid, "VmHWM")
}

/// The `FIELD:  N kB` line of `/proc/PID/status`, in MiB.
fn status_mib(pid: u32, field: &str) -> anyhow::Result<f64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    let kib: f64 = status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.trim().strip_suffix("kB"))
        .and_then(|number| number.trim().parse().ok())
        .with_context(|| format!("no {field} line in {path}"))?;
    Ok(kib / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Polls `readiness` for up to `within`.
    fn settles(readiness: &mut Readiness, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if readiness.settled() {
                return true;
            }
            std::thread::sleep(POLL);
        }
        false
    }

    #[test]
    fn a_sleeping_process_settles_and_a_busy_one_does_not() {
        let mut sleeper = Command::new("sleep").arg("5").spawn().expect("sleep");
        let mut busy = Command::new("sh")
            .args(["-c", "while :; do :; done"])
            .spawn()
            .expect("sh");
        let slept = settles(&mut Readiness::new(sleeper.id()), Duration::from_secs(3));
        let spun = settles(&mut Readiness::new(busy.id()), Duration::from_secs(1));
        for child in [&mut sleeper, &mut busy] {
            let _ = child.kill();
            let _ = child.wait();
        }
        assert!(slept, "a sleeping process settles");
        assert!(!spun, "a busy process does not");
    }
}
