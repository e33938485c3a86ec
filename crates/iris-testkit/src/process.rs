//! Child processes for tests: each is killed when its guard is dropped, so
//! a failing test never leaves one behind, and its output is read as it
//! comes (by threads that drain the pipes) so that a test can wait for a
//! line without sleeping. Every wait is bounded by [`timeout`].

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

use crate::report::{Summary, parse_acknowledgement};

/// The environment variable that overrides [`timeout`], in seconds.
pub const TIMEOUT_ENV: &str = "IRIS_E2E_TIMEOUT_SECS";

/// How long any single wait may take before the test fails: 300 s unless
/// [`TIMEOUT_ENV`] says otherwise. Generous, as the machine may be busy;
/// a healthy run never comes close.
pub fn timeout() -> Duration {
    let seconds = std::env::var(TIMEOUT_ENV)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(300);
    Duration::from_secs(seconds)
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The lines a child writes to one pipe, read as they come by a thread that
/// keeps draining the pipe so the child never blocks on it.
#[derive(Debug)]
pub struct Lines {
    state: Mutex<LinesState>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct LinesState {
    lines: Vec<String>,
    /// When each line was read, for tests that time what a child says.
    arrivals: Vec<Instant>,
    ended: bool,
}

impl Lines {
    fn read(pipe: impl Read + Send + 'static) -> Arc<Lines> {
        let lines = Arc::new(Lines {
            state: Mutex::new(LinesState::default()),
            changed: Condvar::new(),
        });
        let writer = Arc::clone(&lines);
        std::thread::spawn(move || {
            let mut reader = BufReader::new(pipe);
            let mut buffer = Vec::new();
            loop {
                buffer.clear();
                match reader.read_until(b'\n', &mut buffer) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        if buffer.ends_with(b"\n") {
                            buffer.pop();
                        }
                        let line = String::from_utf8_lossy(&buffer).into_owned();
                        let mut state = lock(&writer.state);
                        state.lines.push(line);
                        state.arrivals.push(Instant::now());
                        drop(state);
                        writer.changed.notify_all();
                    }
                }
            }
            lock(&writer.state).ended = true;
            writer.changed.notify_all();
        });
        lines
    }

    /// The lines so far.
    pub fn snapshot(&self) -> Vec<String> {
        lock(&self.state).lines.clone()
    }

    /// Waits until `find` finds something in the lines so far, and returns
    /// it; or, if the pipe ends first, returns `Err` with all the lines.
    /// Panics after [`timeout`], saying it was waiting for `what`.
    pub fn wait_for<T>(
        &self,
        what: &str,
        mut find: impl FnMut(&[String]) -> Option<T>,
    ) -> Result<T, Vec<String>> {
        let deadline = Instant::now() + timeout();
        let mut state = lock(&self.state);
        loop {
            if let Some(found) = find(&state.lines) {
                return Ok(found);
            }
            if state.ended {
                return Err(state.lines.clone());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "timed out after {:?} waiting for {what}; lines so far:\n{}",
                timeout(),
                state.lines.join("\n")
            );
            state = self
                .changed
                .wait_timeout(state, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// When line `index` (from 0) was read from the pipe, if it has been:
    /// within microseconds of when the child wrote it, since a thread
    /// waits on the pipe all the time.
    pub fn arrival(&self, index: usize) -> Option<Instant> {
        lock(&self.state).arrivals.get(index).copied()
    }

    /// Waits for the first line that `matches` and returns it with when it
    /// was read; `Err` with all the lines if the pipe ends first. Panics
    /// after [`timeout`], saying it was waiting for `what`.
    pub fn wait_for_line(
        &self,
        what: &str,
        matches: impl Fn(&str) -> bool,
    ) -> Result<(String, Instant), Vec<String>> {
        let index = self.wait_for(what, |lines| lines.iter().position(|line| matches(line)))?;
        let line = lock(&self.state).lines[index].clone();
        let arrival = self
            .arrival(index)
            .expect("a line read has its arrival time");
        Ok((line, arrival))
    }

    /// Whether the pipe has ended (the child exited or closed it).
    pub fn ended(&self) -> bool {
        lock(&self.state).ended
    }

    /// Waits for the pipe to end (the child exited) and returns every line.
    pub fn wait_end(&self, what: &str) -> Vec<String> {
        match self.wait_for(what, |_| None::<()>) {
            Ok(()) => unreachable!("the finder never finds"),
            Err(lines) => lines,
        }
    }
}

/// A child process with its stdout and stderr read into [`Lines`]; killed
/// when dropped.
#[derive(Debug)]
pub struct Process {
    name: String,
    child: Option<Child>,
    stdout: Arc<Lines>,
    stderr: Arc<Lines>,
    /// How many stdout lines [`Process::read_line`] has returned.
    stdout_read: usize,
}

impl Process {
    /// Spawns `command` with stdin closed and stdout and stderr piped.
    pub fn spawn(name: &str, command: Command) -> Process {
        Process::spawn_with(name, command, Stdio::null(), None).0
    }

    /// Spawns `command` with standard input a pipe the caller writes (and
    /// closes by dropping it), stdout and stderr piped.
    pub fn spawn_with_stdin(name: &str, command: Command) -> (Process, ChildStdin) {
        let (process, stdin) = Process::spawn_with(name, command, Stdio::piped(), None);
        (process, stdin.expect("piped stdin"))
    }

    /// Spawns `command` with `stdin`, and stdout to `stdout` if given (a
    /// file, or null for millions of lines no test should hold in memory;
    /// [`Process::stdout`] then has no lines), else piped into [`Lines`].
    pub fn spawn_with(
        name: &str,
        mut command: Command,
        stdin: Stdio,
        stdout: Option<Stdio>,
    ) -> (Process, Option<ChildStdin>) {
        let read_stdout = stdout.is_none();
        let mut child = command
            .stdin(stdin)
            .stdout(stdout.unwrap_or_else(Stdio::piped))
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} ({command:?}): {e}"));
        let stdout = match child.stdout.take() {
            Some(pipe) if read_stdout => Lines::read(pipe),
            _ => Lines::read(std::io::empty()),
        };
        let stderr = Lines::read(child.stderr.take().expect("piped stderr"));
        let stdin = child.stdin.take();
        let process = Process {
            name: name.to_owned(),
            child: Some(child),
            stdout,
            stderr,
            stdout_read: 0,
        };
        (process, stdin)
    }

    /// The child's standard output.
    pub fn stdout(&self) -> &Lines {
        &self.stdout
    }

    /// The child's standard error.
    pub fn stderr(&self) -> &Lines {
        &self.stderr
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).expect("not reaped yet")
    }

    /// Sends `signal` (such as [`Signal::SIGTERM`]). The child is not
    /// reaped before [`Process::finish`], so its id cannot have been reused.
    pub fn signal(&self, signal: Signal) {
        let pid = self.pid();
        send_signal(pid, signal)
            .unwrap_or_else(|e| panic!("kill -{signal} {pid} ({}) failed: {e}", self.name));
    }

    /// Reads the next line of stdout that this method has not returned yet,
    /// waiting for it; panics with stderr if stdout ends first.
    pub fn read_line(&mut self) -> String {
        let index = self.stdout_read;
        let found = self.stdout.wait_for(
            &format!("line {} of {}'s stdout", index + 1, self.name),
            |lines| lines.get(index).cloned(),
        );
        match found {
            Ok(line) => {
                self.stdout_read += 1;
                line
            }
            Err(_) => panic!(
                "{} ended before printing a line; stderr:\n{}",
                self.name,
                self.stderr.snapshot().join("\n")
            ),
        }
    }

    /// Kills the child with SIGKILL.
    pub fn kill(&mut self) {
        if let Some(child) = self.child.as_mut() {
            child.kill().expect("SIGKILL the child");
        }
    }

    /// Waits for the child to close its pipes and exit; returns what it
    /// printed. Panics after [`timeout`].
    pub fn finish(mut self) -> Finished {
        let what = format!("{} to exit", self.name);
        let stderr = self.stderr.wait_end(&what);
        let stdout = self.stdout.wait_end(&what);
        let mut child = self.child.take().expect("not reaped yet");
        let status = child.wait().expect("wait for the child");
        Finished {
            name: self.name.clone(),
            status,
            stdout,
            stderr,
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// What a finished child printed, and how it exited.
#[derive(Debug)]
pub struct Finished {
    /// Which child, for messages.
    pub name: String,
    /// How it exited.
    pub status: ExitStatus,
    /// Its stdout lines.
    pub stdout: Vec<String>,
    /// Its stderr lines.
    pub stderr: Vec<String>,
}

impl Finished {
    /// The exit code (`None` when killed by a signal).
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// Panics, showing what the child printed, unless it exited with `code`.
    pub fn assert_code(&self, code: i32) -> &Finished {
        assert_eq!(self.code(), Some(code), "{}", self.describe());
        self
    }

    /// Panics, showing what the child printed, unless it exited 0 after
    /// reporting `flowers` flowers sent and as many acknowledged (a
    /// client's `sent N flowers to ADDR; N acknowledged`).
    pub fn assert_all_acknowledged(&self, flowers: u64) -> &Finished {
        self.assert_code(0);
        assert_eq!(
            self.acknowledgement(),
            Some((flowers, flowers)),
            "{}",
            self.describe()
        );
        self
    }

    /// Everything about the run, for assertion messages.
    pub fn describe(&self) -> String {
        format!(
            "{} exited with {}\n--- stdout ({} lines, last 20):\n{}\n--- stderr:\n{}",
            self.name,
            self.status,
            self.stdout.len(),
            self.stdout[self.stdout.len().saturating_sub(20)..].join("\n"),
            self.stderr.join("\n")
        )
    }

    /// The whole of stdout.
    pub fn stdout_text(&self) -> String {
        self.stdout.join("\n")
    }

    /// The whole of stderr.
    pub fn stderr_text(&self) -> String {
        self.stderr.join("\n")
    }

    /// The stdout lines that start with `Area: `.
    pub fn area_lines(&self) -> Vec<&str> {
        self.stdout
            .iter()
            .map(String::as_str)
            .filter(|line| line.starts_with("Area: "))
            .collect()
    }

    /// The listener's `summary:` line; panics if there is none.
    pub fn summary(&self) -> Summary {
        self.stderr
            .iter()
            .find_map(|line| Summary::parse(line))
            .unwrap_or_else(|| panic!("no `summary:` line\n{}", self.describe()))
    }

    /// A client's `sent N flowers to ADDR; M acknowledged` line, as
    /// `(N, M)`, if it printed one.
    pub fn acknowledgement(&self) -> Option<(u64, u64)> {
        self.stdout
            .iter()
            .find_map(|line| parse_acknowledgement(line))
    }

    /// The `M` of a client's acknowledgement, 0 when it printed none.
    pub fn acknowledged(&self) -> u64 {
        self.acknowledgement().map_or(0, |(_, acked)| acked)
    }
}

/// Sends `signal` to the process `pid`.
pub fn send_signal(pid: u32, signal: Signal) -> nix::Result<()> {
    kill(pid_of(pid)?, signal)
}

/// Sends `signal` to every process of the process group `pgid`.
pub fn send_signal_to_group(pgid: u32, signal: Signal) -> nix::Result<()> {
    killpg(pid_of(pgid)?, signal)
}

fn pid_of(id: u32) -> nix::Result<Pid> {
    i32::try_from(id)
        .map(Pid::from_raw)
        .map_err(|_| nix::errno::Errno::ESRCH)
}
