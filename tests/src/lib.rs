//! The end-to-end harness: runs the real `iris-listener` and `iris-client`
//! binaries as child processes.
//!
//! - [`ListenerProcess::start`] starts a listener (on `127.0.0.1:0` unless
//!   told otherwise) and returns once it is listening: it waits, without
//!   sleeping, for the `listening on` log line, by which time the listener
//!   has written its `--address-file`.
//! - [`run_client`] / [`spawn_client`] run clients.
//! - Every child is killed when its guard is dropped, so a failing test never
//!   leaves a process behind; every wait is bounded by [`timeout`].
//!
//! The binaries are built (`cargo build -p iris-listener -p iris-client`)
//! once per test process, so the tests never run stale binaries; set
//! `IRIS_E2E_NO_BUILD=1` to use the ones next to the test executable as
//! they are.
//!
//! Children get a hermetic environment: `IRIS_AUTHKEY`, `IRIS_ADDRESS` and
//! `RUST_LOG` are removed (the caller passes what it wants) and `NO_COLOR`
//! is set.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};

pub use iris_testkit::netns::{Host, Network};
pub use iris_testkit::{
    Finished, Lines, Process, Signal, Summary, TIMEOUT_ENV, parse_acknowledgement, timeout,
};

/// The environment variable holding the authkey.
pub const AUTHKEY_ENV: &str = "IRIS_AUTHKEY";

/// The authkey the tests use.
pub const TEST_KEY: &str = "My voice is my password, verify me.";

/// `IRIS_AUTHKEY=TEST_KEY`, for the `env` arguments.
pub const KEY_ENV: (&str, &str) = (AUTHKEY_ENV, TEST_KEY);

/// The repository's root directory.
pub fn repo_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().unwrap_or(manifest_dir).to_path_buf()
}

/// `data/iris.csv`: Fisher's 150 irises, with a header line.
pub fn iris_csv() -> PathBuf {
    repo_root().join("data").join("iris.csv")
}

struct Binaries {
    listener: PathBuf,
    client: PathBuf,
}

fn binaries() -> &'static Binaries {
    static BINARIES: OnceLock<Binaries> = OnceLock::new();
    BINARIES.get_or_init(|| {
        if std::env::var_os("IRIS_E2E_NO_BUILD").is_some_and(|value| value == "1") {
            next_to_test_executable()
        } else {
            build()
        }
    })
}

/// The `iris-listener` binary.
pub fn listener_bin() -> &'static Path {
    &binaries().listener
}

/// The `iris-client` binary.
pub fn client_bin() -> &'static Path {
    &binaries().client
}

/// Builds both binaries with the cargo running the tests, and takes their
/// paths from cargo's own report (so any target directory works).
fn build() -> Binaries {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(&cargo)
        .args([
            "build",
            "--quiet",
            "--message-format=json-render-diagnostics",
            "-p",
            "iris-listener",
            "-p",
            "iris-client",
            "--manifest-path",
        ])
        .arg(repo_root().join("Cargo.toml"))
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", Path::new(&cargo).display()));
    assert!(
        output.status.success(),
        "`cargo build -p iris-listener -p iris-client` failed ({}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let mut listener = None;
    let mut client = None;
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let Ok(message) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let (Some(name), Some(executable)) = (
            message["target"]["name"].as_str(),
            message["executable"].as_str(),
        ) else {
            continue;
        };
        match name {
            "iris-listener" => listener = Some(PathBuf::from(executable)),
            "iris-client" => client = Some(PathBuf::from(executable)),
            _ => {}
        }
    }
    match (listener, client) {
        (Some(listener), Some(client)) => Binaries { listener, client },
        _ => {
            panic!("`cargo build -p iris-listener -p iris-client` reported no executables for them")
        }
    }
}

/// The binaries in the directory above the test executable's (`deps/`).
fn next_to_test_executable() -> Binaries {
    let exe = std::env::current_exe().expect("the test executable's path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test executable is in <target>/<profile>/deps");
    let find = |name: &str| {
        let path = dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
        assert!(
            path.is_file(),
            "{} is missing: run `cargo build -p iris-listener -p iris-client` \
             (or unset IRIS_E2E_NO_BUILD)",
            path.display()
        );
        path
    };
    Binaries {
        listener: find("iris-listener"),
        client: find("iris-client"),
    }
}

fn hermetic(program: &Path, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(program);
    command
        .args(args)
        .env_remove(AUTHKEY_ENV)
        .env_remove("IRIS_ADDRESS")
        .env_remove("RUST_LOG")
        .env("NO_COLOR", "1");
    for (key, value) in env {
        command.env(key, value);
    }
    command
}

/// A running `iris-listener`, killed when dropped.
#[derive(Debug)]
pub struct ListenerProcess {
    process: Process,
    address: String,
    _dir: tempfile::TempDir,
}

impl ListenerProcess {
    /// Starts `iris-listener ARGS` with `env` and waits until it listens.
    /// Adds `--address 127.0.0.1:0` unless `args` has an `--address`, and
    /// always an `--address-file`. Panics, showing its stderr, if the
    /// listener exits first.
    pub fn start(args: &[&str], env: &[(&str, &str)]) -> ListenerProcess {
        Self::try_start(args, env).unwrap_or_else(|finished| {
            panic!(
                "the listener exited before listening\n{}",
                finished.describe()
            )
        })
    }

    /// [`ListenerProcess::start`], returning how the listener ended if it
    /// exited before listening.
    pub fn try_start(args: &[&str], env: &[(&str, &str)]) -> Result<ListenerProcess, Finished> {
        Self::try_start_with_stdout(args, env, None, None)
    }

    /// [`ListenerProcess::start`] in the network namespace `host`; `args`
    /// name an `--address` of that host's. `stdout` as in
    /// [`ListenerProcess::start_with_stdout`], or `None` to read its lines.
    pub fn start_on(
        host: &Host,
        args: &[&str],
        env: &[(&str, &str)],
        stdout: Option<Stdio>,
    ) -> ListenerProcess {
        Self::try_start_with_stdout(args, env, stdout, Some(host)).unwrap_or_else(|finished| {
            panic!(
                "the listener in {} exited before listening\n{}",
                host.name,
                finished.describe()
            )
        })
    }

    /// [`ListenerProcess::start`] with the listener's stdout going to
    /// `stdout` (a file, or null) instead of being read into lines.
    pub fn start_with_stdout(
        args: &[&str],
        env: &[(&str, &str)],
        stdout: Stdio,
    ) -> ListenerProcess {
        Self::try_start_with_stdout(args, env, Some(stdout), None).unwrap_or_else(|finished| {
            panic!(
                "the listener exited before listening\n{}",
                finished.describe()
            )
        })
    }

    fn try_start_with_stdout(
        args: &[&str],
        env: &[(&str, &str)],
        stdout: Option<Stdio>,
        host: Option<&Host>,
    ) -> Result<ListenerProcess, Finished> {
        let dir = tempfile::tempdir().expect("a temp dir");
        let address_file = dir.path().join("address");
        let mut command = hermetic(listener_bin(), args, env);
        if !args
            .iter()
            .any(|arg| *arg == "--address" || arg.starts_with("--address="))
        {
            command.args(["--address", "127.0.0.1:0"]);
        }
        command.arg("--address-file").arg(&address_file);
        if let Some(host) = host {
            command = host.wrap(&command);
        }
        let (process, _) = Process::spawn_with("iris-listener", command, Stdio::null(), stdout);
        let ready = process.stderr().wait_for("`listening on`", |lines| {
            lines
                .iter()
                .any(|line| line.contains("listening on"))
                .then_some(())
        });
        if ready.is_err() {
            return Err(process.finish());
        }
        let address = std::fs::read_to_string(&address_file)
            .unwrap_or_else(|e| {
                panic!(
                    "the listener logged `listening on` but {} is unreadable: {e}",
                    address_file.display()
                )
            })
            .trim_end_matches('\n')
            .to_owned();
        assert!(!address.is_empty(), "the address file is empty");
        Ok(ListenerProcess {
            process,
            address,
            _dir: dir,
        })
    }

    /// The bound address, as written to the address file.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The listener process.
    pub fn process(&self) -> &Process {
        &self.process
    }

    /// Waits until the listener has printed at least `n` stdout lines.
    pub fn wait_for_stdout_lines(&self, n: usize) {
        let found = self
            .process
            .stdout()
            .wait_for(&format!("{n} stdout lines"), |lines| {
                (lines.len() >= n).then_some(())
            });
        if let Err(lines) = found {
            panic!(
                "the listener's stdout ended after {} lines, before {n}; stderr:\n{}",
                lines.len(),
                self.process.stderr().snapshot().join("\n")
            );
        }
    }

    /// Waits until `count` stderr lines contain `needle`; returns them.
    pub fn wait_for_log(&self, needle: &str, count: usize) -> Vec<String> {
        let found = self.process.stderr().wait_for(
            &format!("{count} log lines containing {needle:?}"),
            |lines| {
                let matching: Vec<String> = lines
                    .iter()
                    .filter(|line| line.contains(needle))
                    .cloned()
                    .collect();
                (matching.len() >= count).then_some(matching)
            },
        );
        found.unwrap_or_else(|lines| {
            panic!(
                "the listener exited before logging {count} lines containing {needle:?}; stderr:\n{}",
                lines.join("\n")
            )
        })
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        self.process.signal(Signal::SIGTERM);
    }

    /// Sends SIGKILL.
    pub fn kill(&mut self) {
        self.process.kill();
    }

    /// SIGTERM, then [`ListenerProcess::finish`].
    pub fn stop(self) -> Finished {
        self.terminate();
        self.finish()
    }

    /// Waits for the listener to exit.
    pub fn finish(self) -> Finished {
        self.process.finish()
    }
}

/// Starts `iris-client ARGS` with `env`.
pub fn spawn_client(args: &[&str], env: &[(&str, &str)]) -> Process {
    Process::spawn("iris-client", hermetic(client_bin(), args, env))
}

/// Runs `iris-client ARGS` with `env` to its end in the network namespace
/// `host`.
pub fn run_client_on(host: &Host, args: &[&str], env: &[(&str, &str)]) -> Finished {
    spawn_client_on(host, args, env).finish()
}

/// Starts `iris-client ARGS` with `env` in the network namespace `host`.
pub fn spawn_client_on(host: &Host, args: &[&str], env: &[(&str, &str)]) -> Process {
    Process::spawn("iris-client", host.wrap(&hermetic(client_bin(), args, env)))
}

/// [`spawn_client_with_stdin`] in the network namespace `host`.
pub fn spawn_client_with_stdin_on(
    host: &Host,
    args: &[&str],
    env: &[(&str, &str)],
) -> (Process, ChildStdin) {
    Process::spawn_with_stdin("iris-client", host.wrap(&hermetic(client_bin(), args, env)))
}

/// Starts `iris-client ARGS` with `env` and a standard input to write.
pub fn spawn_client_with_stdin(args: &[&str], env: &[(&str, &str)]) -> (Process, ChildStdin) {
    Process::spawn_with_stdin("iris-client", hermetic(client_bin(), args, env))
}

/// Runs `iris-client ARGS` with `env` to its end.
pub fn run_client(args: &[&str], env: &[(&str, &str)]) -> Finished {
    spawn_client(args, env).finish()
}

/// The arguments for `iris-client SUBCOMMAND` to reach `address`, then
/// `rest`. (The client takes its connection flags after the subcommand.)
pub fn client_args<'a>(subcommand: &'a str, address: &'a str, rest: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![subcommand, "--address", address];
    args.extend_from_slice(rest);
    args
}

/// Runs `iris-client send --address ADDRESS ARGS` with the test key.
pub fn send(address: &str, args: &[&str]) -> Finished {
    run_client(&client_args("send", address, args), &[KEY_ENV])
}

/// Splits a CSV file's data lines into `n` CSV texts, each with the header.
pub fn split_csv(path: &Path, n: usize) -> Vec<String> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let mut lines = text.lines().filter(|line| !line.trim().is_empty());
    let header = lines.next().expect("a header line");
    let rows: Vec<&str> = lines.collect();
    rows.chunks(rows.len().div_ceil(n).max(1))
        .map(|chunk| {
            let mut part = format!("{header}\n");
            for row in chunk {
                part.push_str(row);
                part.push('\n');
            }
            part
        })
        .collect()
}

/// Peak resident memory of a process in KiB (`VmHWM` in /proc).
pub fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc status")
}

/// CPU time (user plus system) a process has used, from `/proc/PID/stat`.
pub fn cpu_time(pid: u32) -> std::time::Duration {
    /// `/proc` counts in USER_HZ, 100 a second on every Linux ABI.
    const TICKS_PER_SECOND: u64 = 100;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc stat");
    // The command name, in parentheses, may hold spaces: count fields after it.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .expect("a command name in /proc stat");
    // utime and stime are fields 14 and 15; the state (field 3) comes first.
    let ticks: u64 = fields[11..13]
        .iter()
        .map(|field| field.parse::<u64>().expect("utime and stime"))
        .sum();
    std::time::Duration::from_millis(ticks * 1000 / TICKS_PER_SECOND)
}

/// How many file descriptors a process has open (`/proc/PID/fd`).
pub fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("/proc fd")
        .count()
}

/// How many threads a process has (`/proc/PID/task`).
pub fn threads(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .expect("/proc task")
        .count()
}

/// Writes `contents` to `dir/name` and returns the path.
pub fn write_file(dir: &Path, name: impl AsRef<OsStr>, contents: &str) -> PathBuf {
    let path = dir.join(name.as_ref());
    std::fs::write(&path, contents)
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    path
}

/// The seed's fixed port, `localhost:6000`.
pub const SEED_PORT: u16 = 6000;

/// Holds port 6000 for one test at a time: the tests that run the seed's
/// programs (or the README's commands) as written, on the seed's fixed
/// port. Dropping it lets the next one in.
#[derive(Debug)]
pub struct SeedPort {
    _guard: MutexGuard<'static, ()>,
}

/// Waits for the other users of port 6000 in this test process, then checks
/// that nothing else (another program, a listener left running) has the
/// port; panics saying which process has it and how to stop it.
pub fn seed_port() -> SeedPort {
    static PORT: Mutex<()> = Mutex::new(());
    let guard = PORT.lock().unwrap_or_else(PoisonError::into_inner);
    if let Err(e) = std::net::TcpListener::bind(("127.0.0.1", SEED_PORT)) {
        let holder = match listening_process(SEED_PORT) {
            Some((pid, command)) => format!(
                "process {pid} ({command}) is listening on it: stop it (`kill {pid}`) and run the tests again"
            ),
            None => format!(
                "find what listens on it with `ss -ltnp 'sport = :{SEED_PORT}'` and stop it"
            ),
        };
        panic!(
            "port {SEED_PORT} is busy ({e}): this test runs the seed's programs as written, \
             and they use localhost:{SEED_PORT}; {holder}"
        );
    }
    SeedPort { _guard: guard }
}

/// A TCP socket of this network namespace, as `/proc/net/tcp{,6}` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpSocket {
    /// The local port.
    pub local_port: u16,
    /// The remote port (0 for a listening socket).
    pub remote_port: u16,
    /// The state, in the kernel's numbering: 1 established, 10 listening.
    pub state: u8,
    /// Bytes sent and not yet acknowledged by the peer.
    pub send_queue: u64,
    /// Bytes received and not yet read by the program.
    pub receive_queue: u64,
    /// The socket's inode, as `/proc/PID/fd` links name it (`socket:[N]`).
    pub inode: String,
}

impl TcpSocket {
    /// Established.
    pub const ESTABLISHED: u8 = 0x01;
    /// Listening.
    pub const LISTEN: u8 = 0x0A;
}

/// The TCP sockets (IPv4 and IPv6) of this network namespace, from /proc.
pub fn tcp_sockets() -> Vec<TcpSocket> {
    let port = |address: &str| {
        address
            .rsplit_once(':')
            .and_then(|(_, port)| u16::from_str_radix(port, 16).ok())
    };
    let queue = |queues: &str, which: usize| {
        queues
            .split(':')
            .nth(which)
            .and_then(|count| u64::from_str_radix(count, 16).ok())
    };
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|table| std::fs::read_to_string(table).ok())
        .flat_map(|text| {
            text.lines()
                .skip(1)
                .filter_map(|line| {
                    let fields: Vec<&str> = line.split_whitespace().collect();
                    Some(TcpSocket {
                        local_port: port(fields.get(1)?)?,
                        remote_port: port(fields.get(2)?)?,
                        state: u8::from_str_radix(fields.get(3)?, 16).ok()?,
                        send_queue: queue(fields.get(4)?, 0)?,
                        receive_queue: queue(fields.get(4)?, 1)?,
                        inode: (*fields.get(9)?).to_owned(),
                    })
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The process listening on TCP `port` (IPv4 or IPv6), from /proc: its id
/// and command line. `None` if it cannot be told (another user's process).
pub fn listening_process(port: u16) -> Option<(u32, String)> {
    let inodes: Vec<String> = tcp_sockets()
        .into_iter()
        .filter(|socket| socket.local_port == port && socket.state == TcpSocket::LISTEN)
        .map(|socket| socket.inode)
        .collect();
    let sockets: Vec<String> = inodes
        .iter()
        .map(|inode| format!("socket:[{inode}]"))
        .collect();
    for process in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = process.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(process.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            let Ok(target) = std::fs::read_link(fd.path()) else {
                continue;
            };
            if sockets
                .iter()
                .any(|socket| target.as_os_str() == socket.as_str())
            {
                let command = std::fs::read(process.path().join("cmdline"))
                    .map(|bytes| {
                        String::from_utf8_lossy(&bytes)
                            .split('\0')
                            .filter(|arg| !arg.is_empty())
                            .collect::<Vec<_>>()
                            .join(" ")
                    })
                    .unwrap_or_default();
                return Some((pid, command));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_csv_with_a_header_on_each_part() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = write_file(dir.path(), "all.csv", "h\n1\n2\n3\n\n");
        assert_eq!(split_csv(&path, 2), ["h\n1\n2\n", "h\n3\n"]);
    }

    #[test]
    fn reads_this_process_from_proc() {
        let pid = std::process::id();
        // Spin until the count moves: at least two ticks of CPU time. The
        // thread may wait for the CPU on a busy machine, hence a wall bound.
        let started = std::time::Instant::now();
        let mut spin = 0u64;
        while cpu_time(pid) < std::time::Duration::from_millis(20) {
            for _ in 0..100_000 {
                spin = std::hint::black_box(spin + 1);
            }
            assert!(
                started.elapsed() < std::time::Duration::from_secs(60),
                "no CPU time counted after a minute of spinning"
            );
        }
        assert!(open_fds(pid) >= 3, "stdin, stdout and stderr at least");
        assert!(threads(pid) >= 1);
    }

    #[test]
    fn names_the_process_listening_on_a_port() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("address").port();
        let (pid, command) = listening_process(port).expect("this process listens");
        assert_eq!(pid, std::process::id());
        assert!(!command.is_empty());
    }
}
