//! Child processes that never outlive the xtask: each one is killed when its
//! guard is dropped (every error path), and all of them are killed when the
//! xtask is interrupted (Ctrl-C, SIGTERM, SIGHUP).

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::{Mutex, MutexGuard, PoisonError};

use anyhow::{Context, ensure};
use iris_testkit::Signal;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

/// The ids of the children that are running, or exited but not reaped yet
/// (so their ids cannot have been reused).
static LIVE: Mutex<BTreeSet<u32>> = Mutex::new(BTreeSet::new());

/// Scratch directories to remove if the xtask is interrupted (their owners'
/// `Drop` does not run then).
static SCRATCH: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Removes `dir` (recursively) should the xtask be interrupted.
pub(crate) fn remove_on_interrupt(dir: &Path) {
    SCRATCH
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(dir.to_path_buf());
}

fn live() -> MutexGuard<'static, BTreeSet<u32>> {
    LIVE.lock().unwrap_or_else(PoisonError::into_inner)
}

/// On SIGINT, SIGTERM or SIGHUP: kills every live child, then exits with
/// 128 + the signal's number.
pub(crate) fn kill_children_on_interrupt() -> anyhow::Result<()> {
    let mut signals =
        Signals::new([SIGINT, SIGTERM, SIGHUP]).context("cannot install the Ctrl-C handler")?;
    std::thread::Builder::new()
        .name("interrupt".into())
        .spawn(move || {
            if let Some(signal) = signals.forever().next() {
                // Held until the exit: no child can be reaped, its id freed
                // and reused, while it is being killed.
                let live = live();
                eprintln!(
                    "\nxtask: interrupted; killing {} child process(es)",
                    live.len()
                );
                kill(&live);
                for dir in SCRATCH
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .iter()
                {
                    let _ = std::fs::remove_dir_all(dir);
                }
                std::process::exit(128 + signal);
            }
        })
        .context("cannot start the Ctrl-C handler thread")?;
    Ok(())
}

/// Kills every live child (on a path that gives up on all of them at once,
/// such as a timeout); their guards still reap them.
pub(crate) fn kill_all() {
    kill(&live());
}

fn kill(pids: &BTreeSet<u32>) {
    for &pid in pids {
        let _ = send_signal(pid, Signal::SIGKILL);
    }
}

/// Sends `signal` to `pid`.
fn send_signal(pid: u32, signal: Signal) -> anyhow::Result<()> {
    iris_testkit::send_signal(pid, signal).with_context(|| format!("kill -{signal} {pid} failed"))
}

/// A child process that is killed and reaped when dropped.
#[derive(Debug)]
pub(crate) struct Guarded {
    name: String,
    child: Option<Child>,
    pid: u32,
}

/// What a finished child printed, and how it exited.
#[derive(Debug)]
pub(crate) struct Output {
    pub(crate) status: ExitStatus,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Guarded {
    /// Spawns `command`, registering it with the interrupt handler.
    pub(crate) fn spawn(name: impl Into<String>, command: &mut Command) -> anyhow::Result<Guarded> {
        let name = name.into();
        // Held across the spawn so that an interrupt cannot fall between the
        // spawn and the registration.
        let mut live = live();
        let child = command.spawn().with_context(|| {
            format!("cannot start {name} ({})", command.get_program().display())
        })?;
        let pid = child.id();
        live.insert(pid);
        Ok(Guarded {
            name,
            child: Some(child),
            pid,
        })
    }

    /// The name given at spawn, for messages.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// The child's process id (valid until it is reaped).
    pub(crate) fn pid(&self) -> u32 {
        self.pid
    }

    /// Takes the child's piped standard input.
    pub(crate) fn take_stdin(&mut self) -> Option<ChildStdin> {
        self.child.as_mut().and_then(|child| child.stdin.take())
    }

    /// Takes the child's piped standard output.
    pub(crate) fn take_stdout(&mut self) -> Option<ChildStdout> {
        self.child.as_mut().and_then(|child| child.stdout.take())
    }

    /// Takes the child's piped standard error.
    pub(crate) fn take_stderr(&mut self) -> Option<ChildStderr> {
        self.child.as_mut().and_then(|child| child.stderr.take())
    }

    /// Asks the child to stop with SIGTERM.
    pub(crate) fn terminate(&self) -> anyhow::Result<()> {
        ensure!(self.child.is_some(), "{} was already reaped", self.name);
        send_signal(self.pid, Signal::SIGTERM).with_context(|| format!("cannot stop {}", self.name))
    }

    /// Kills the child with SIGKILL and reaps it.
    pub(crate) fn kill(mut self) -> anyhow::Result<ExitStatus> {
        let mut child = self.child.take().context("the child was already reaped")?;
        let killed = child.kill();
        live().remove(&self.pid);
        let status = child
            .wait()
            .with_context(|| format!("cannot wait for {}", self.name))?;
        killed.with_context(|| format!("cannot kill {}", self.name))?;
        Ok(status)
    }

    /// Reaps the child. Call it once the child closed its pipes (it exited),
    /// since the interrupt handler no longer covers it while this waits.
    pub(crate) fn wait(mut self) -> anyhow::Result<ExitStatus> {
        let mut child = self.child.take().context("the child was already reaped")?;
        live().remove(&self.pid);
        child
            .wait()
            .with_context(|| format!("cannot wait for {}", self.name))
    }

    /// Reads the child's piped stdout and stderr to their ends, then reaps it.
    pub(crate) fn output(mut self) -> anyhow::Result<Output> {
        let stdout = self.take_stdout();
        let stderr = self.take_stderr();
        let (stdout, stderr) = std::thread::scope(|scope| {
            let stderr = scope.spawn(|| read_all(stderr));
            let stdout = read_all(stdout);
            (stdout, stderr.join().unwrap_or_default())
        });
        let status = self.wait()?;
        Ok(Output {
            status,
            stdout,
            stderr,
        })
    }
}

fn read_all(pipe: Option<impl Read>) -> String {
    let mut bytes = Vec::new();
    if let Some(mut pipe) = pipe {
        let _ = pipe.read_to_end(&mut bytes);
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

impl Drop for Guarded {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            live().remove(&self.pid);
            let _ = child.wait();
        }
    }
}

/// The environment variable the binaries read the authkey from.
pub(crate) const AUTHKEY_ENV: &str = "IRIS_AUTHKEY";

/// A command for one of our binaries, with `key` as its authkey and
/// nothing of the caller's iris settings: no address, the default log
/// level, no colours.
pub(crate) fn iris_command(program: &Path, key: &str) -> Command {
    let mut command = Command::new(program);
    command
        .env(AUTHKEY_ENV, key)
        .env_remove("IRIS_ADDRESS")
        .env_remove("RUST_LOG")
        .env("NO_COLOR", "1");
    command
}

/// A fresh directory under the system's temp dir, removed when dropped
/// and when the xtask is interrupted.
pub(crate) struct Scratch(PathBuf);

impl Scratch {
    /// Creates `PREFIX-PID-RANDOM` in the temp dir.
    pub(crate) fn new(prefix: &str) -> anyhow::Result<Scratch> {
        let name = format!(
            "{prefix}-{}-{}",
            std::process::id(),
            crate::key::random_hex(6)?
        );
        let path = std::env::temp_dir().join(name);
        std::fs::create_dir(&path).with_context(|| format!("cannot create {}", path.display()))?;
        remove_on_interrupt(&path);
        Ok(Scratch(path))
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Raises this process's soft limit on open files to at least `needed`
/// (children started from now on inherit it). Returns the soft limit it
/// had when it was raised, `None` when it was high enough already, and an
/// error naming the fix when the hard limit is below `needed`.
pub(crate) fn raise_open_files(needed: u64) -> anyhow::Result<Option<u64>> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) =
        getrlimit(Resource::RLIMIT_NOFILE).context("cannot read the limit on open files")?;
    if soft >= needed {
        return Ok(None);
    }
    ensure!(
        hard >= needed,
        "this needs {needed} open files but the hard limit is {hard}; raise it (as root: ulimit -Hn {needed}, or LimitNOFILE= for a service)"
    );
    setrlimit(Resource::RLIMIT_NOFILE, needed, hard)
        .context("cannot raise the soft limit on open files")?;
    Ok(Some(soft))
}

/// The workspace's root: this crate's parent directory.
pub(crate) fn workspace_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().unwrap_or(manifest_dir).to_path_buf()
}

/// `$CARGO_TARGET_DIR`, or `target/` in the workspace.
pub(crate) fn target_dir(root: &Path) -> anyhow::Result<PathBuf> {
    Ok(match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => std::env::current_dir()
            .context("cannot read the current directory")?
            .join(dir),
        None => root.join("target"),
    })
}

/// Builds `packages` with the cargo that runs xtask (`$CARGO`), in the
/// release profile or the debug one, forwarding its output; returns the
/// directory the binaries are in. The build is guarded like every child,
/// so an interrupt stops it too.
pub(crate) fn cargo_build(
    root: &Path,
    release: bool,
    packages: &[&str],
) -> anyhow::Result<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(&cargo);
    command.arg("build");
    if release {
        command.arg("--release");
    }
    for package in packages {
        command.args(["-p", package]);
    }
    command
        .arg("--manifest-path")
        .arg(root.join("Cargo.toml"))
        .stdin(Stdio::null())
        .stderr(Stdio::piped());
    let mut build = Guarded::spawn("cargo build", &mut command)?;
    if let Some(stderr) = build.take_stderr() {
        for line in std::io::BufRead::lines(std::io::BufReader::new(stderr)) {
            let Ok(line) = line else { break };
            eprintln!("{line}");
        }
    }
    let status = build.wait()?;
    ensure!(
        status.success(),
        "`cargo build{} -p {}` failed ({status})",
        if release { " --release" } else { "" },
        packages.join(" -p ")
    );
    Ok(target_dir(root)?.join(if release { "release" } else { "debug" }))
}

/// The path of binary `name` in `dir`, which must exist.
pub(crate) fn binary(dir: &Path, name: &str) -> anyhow::Result<PathBuf> {
    let path = dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    ensure!(
        path.is_file(),
        "{} is missing after the build (is the target directory elsewhere?)",
        path.display()
    );
    Ok(path)
}
