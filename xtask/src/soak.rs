//! `cargo xtask soak [--clients N] [--flowers M] [--seconds S] [--quick]`:
//! many authenticated clients at once against a release listener, mixed
//! with peers that misbehave, and an exact reckoning at the end.
//!
//! Each round starts all of these at once against one listener:
//! - N good clients (threads with the blocking `iris_wire::Client`): each
//!   authenticates, waits until all N are authenticated (so N sessions are
//!   open at the same moment), then sends M setosa flowers and `Close`, and
//!   expects M acknowledged;
//! - silent peers, which connect and never answer the challenge;
//! - garbage peers: random bytes, an HTTP request, a wrong answer, a header
//!   announcing 2 GiB;
//! - clients with a wrong key;
//! - dropped clients: they authenticate, send versicolor flowers and a
//!   `Ping` (its `Pong` proves the listener has read them), then vanish
//!   without `Close`, half with a FIN, half with a RST;
//! - killed clients: `iris-client send -` processes fed virginica rows,
//!   killed with SIGKILL once authenticated, in the middle of their stream.
//!
//! The species tell the kinds apart in the listener's summary, so every
//! count is checked exactly: setosa is what the good clients saw
//! acknowledged, versicolor what the dropped clients sent before their
//! `Pong`; virginica is at most what the killed clients were fed;
//! `connections` counts the authenticated peers, `rejected` the silent,
//! garbage and wrong-key ones; `flowers` equals the `Area:` lines on stdout.
//! Rounds repeat until `--seconds` have passed (one round by default). The
//! listener's descriptors must come back to where they started after every
//! round. It reports the listener's peak RSS (VmHWM), descriptors and
//! threads, the duration and the connections per second.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Condvar, Mutex, PoisonError};
use std::thread::{Scope, ScopedJoinHandle};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use iris_model::{Iris, Species};
use iris_protocol::{Message, Reply};
use iris_testkit::Summary;
use iris_wire::{Client, Options, Stream};

use crate::bench::proc::{self, Server};
use crate::process::{self, Guarded, Scratch};

const USAGE: &str = "\
usage: cargo xtask soak [--clients N] [--flowers M] [--seconds S] [--quick]
  --clients N   good clients authenticated at once per round [default: 1000]
  --flowers M   flowers each good client sends [default: 1000]
  --seconds S   repeat rounds until S seconds have passed [default: one round]
  --quick       100 clients x 100 flowers, one round (CI's smoke run)";

const AUTHKEY_ENV: &str = "IRIS_AUTHKEY";
/// Deadline of a peer's handshake, connect included: generous, since a
/// thousand handshakes share two cores with everything else.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(60);
/// Bound on any one read or write of a peer, so that nothing waits forever.
const IO_TIMEOUT: Duration = Duration::from_secs(120);
/// How long all good clients get to be authenticated together.
const READY_TIMEOUT: Duration = Duration::from_secs(300);
/// How long the listener gets to close a round's connections (its
/// descriptors back to where they were), and to exit after SIGTERM.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Stack of each peer thread: a blocking client needs little.
const PEER_STACK: usize = 128 * 1024;
/// Flowers each dropped client sends before it vanishes.
const DROPPED_FLOWERS: u64 = 100;
/// Rows each killed client is fed, half of them once it is authenticated
/// (it is killed before it could end).
const KILLED_ROWS: usize = 500;
/// At most this many `iris-client` processes are killed per round.
const MAX_KILLED: usize = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Flags {
    clients: usize,
    flowers: u64,
    seconds: u64,
}

fn parse(args: &[String]) -> anyhow::Result<Flags> {
    let mut quick = false;
    let mut clients = None;
    let mut flowers = None;
    let mut seconds = 0;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut number = |name: &str| -> anyhow::Result<u64> {
            let value = args
                .next()
                .with_context(|| format!("{name} needs a number\n{USAGE}"))?;
            value
                .parse()
                .ok()
                .filter(|&n| n > 0)
                .with_context(|| format!("{name} takes a positive number, got {value:?}"))
        };
        match arg.as_str() {
            "--quick" => quick = true,
            "--clients" => clients = Some(usize::try_from(number("--clients")?)?),
            "--flowers" => flowers = Some(number("--flowers")?),
            "--seconds" => seconds = number("--seconds")?,
            "-h" | "--help" => bail!("{USAGE}"),
            other => bail!("unknown flag {other:?}\n{USAGE}"),
        }
    }
    let (default_clients, default_flowers) = if quick { (100, 100) } else { (1000, 1000) };
    Ok(Flags {
        clients: clients.unwrap_or(default_clients),
        flowers: flowers.unwrap_or(default_flowers),
        seconds,
    })
}

/// How many peers of each kind a round has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Plan {
    clients: usize,
    flowers: u64,
    /// Silent, garbage, wrong-key and dropped peers, each.
    per_kind: usize,
    killed: usize,
}

impl Plan {
    fn new(flags: &Flags) -> Plan {
        let per_kind = (flags.clients / 50).max(1);
        Plan {
            clients: flags.clients,
            flowers: flags.flowers,
            per_kind,
            killed: per_kind.min(MAX_KILLED),
        }
    }

    /// Peers that authenticate in a round.
    fn authenticated(&self) -> u64 {
        (self.clients + self.per_kind + self.killed) as u64
    }

    /// Peers the listener must reject in a round.
    fn rejected(&self) -> u64 {
        3 * self.per_kind as u64
    }

    /// Open files the listener and this process each need: a socket per
    /// peer, three pipes per killed client, and room for the rest.
    fn open_files(&self) -> u64 {
        (self.clients + 4 * self.per_kind + 4 * self.killed) as u64 + 1024
    }

    fn describe(&self) -> String {
        let k = self.per_kind;
        format!(
            "{} clients x {} flowers at once, with {k} silent, {k} garbage, {k} wrong-key, \
             {k} dropped ({} FIN, {} RST) and {} SIGKILLed peers",
            group(self.clients as u64),
            group(self.flowers),
            k.div_ceil(2),
            k / 2,
            self.killed
        )
    }
}

/// Runs the soak; an error means a count did not match or a peer did not
/// behave as expected (children are killed by then).
pub(crate) fn run(args: &[String]) -> anyhow::Result<()> {
    let flags = parse(args)?;
    let plan = Plan::new(&flags);
    process::kill_children_on_interrupt()?;
    if let Some(soft) = process::raise_open_files(plan.open_files())
        .context("not enough open files for the soak's connections")?
    {
        step(&format!(
            "raised the soft limit on open files from {soft} to {} (ulimit -n)",
            plan.open_files()
        ));
    }
    let root = process::workspace_root();
    step("building iris-listener and iris-client (release)");
    let release = process::cargo_build(&root, true, &["iris-listener", "iris-client"])?;
    let flowers = Flowers::load(&root.join("data").join("iris.csv"))?;
    let scratch = Scratch::new("iris-soak")?;
    let key = crate::key::random_hex(32)?;
    let listener = Listener::start(
        &process::binary(&release, "iris-listener")?,
        &key,
        scratch.path(),
        &plan,
    )?;
    let listener_threads_at_start = threads(listener.server.pid())?;
    let soak = Soak {
        plan,
        address: listener.server.address.clone(),
        key,
        client_bin: process::binary(&release, "iris-client")?,
        flowers,
    };
    step(&format!(
        "listener on {} (pid {}, {} descriptors); each round: {}",
        soak.address,
        listener.server.pid(),
        listener.baseline_fds,
        plan.describe()
    ));

    let started = Instant::now();
    let mut rounds = Vec::new();
    loop {
        let round = soak.round(rounds.len() + 1, &listener)?;
        rounds.push(round);
        if started.elapsed() >= Duration::from_secs(flags.seconds) {
            break;
        }
    }
    let duration = started.elapsed();
    let peak_rss = proc::peak_rss_mib(listener.server.pid())?;
    let threads_after = threads(listener.server.pid())?;
    step("stopping the listener with SIGTERM");
    let finished = listener.stop()?;
    let listener_threads = (listener_threads_at_start, threads_after);
    verdict(
        &plan,
        &rounds,
        &finished,
        duration,
        peak_rss,
        listener_threads,
    )
}

fn step(message: &str) {
    println!("==> {message}");
}

/// `1234567` as `1,234,567`.
fn group(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// The data set's flowers, by the kind of peer that sends them.
struct Flowers {
    setosa: Vec<Iris>,
    versicolor: Vec<Iris>,
    /// Rows of `iris-client send -`'s CSV input, header first.
    virginica_csv: String,
}

impl Flowers {
    fn load(path: &Path) -> anyhow::Result<Flowers> {
        let all = iris_model::load_csv(path)
            .with_context(|| format!("cannot load {}", path.display()))?;
        let of = |species: Species| -> Vec<Iris> {
            all.iter()
                .copied()
                .filter(|iris| iris.species() == species)
                .collect()
        };
        let (setosa, versicolor, virginica) = (
            of(Species::Setosa),
            of(Species::Versicolor),
            of(Species::Virginica),
        );
        ensure!(
            !setosa.is_empty() && !versicolor.is_empty() && !virginica.is_empty(),
            "{} lacks one of the three species",
            path.display()
        );
        let mut virginica_csv =
            String::from("sepal_length,sepal_width,petal_length,petal_width,species\n");
        for iris in virginica.iter().cycle().take(KILLED_ROWS) {
            virginica_csv.push_str(&format!(
                "{},{},{},{},virginica\n",
                iris.sepal_length(),
                iris.sepal_width(),
                iris.petal_length(),
                iris.petal_width()
            ));
        }
        Ok(Flowers {
            setosa,
            versicolor,
            virginica_csv,
        })
    }
}

/// The release listener, its stdout counted as it comes.
struct Listener {
    server: Server,
    stdout: std::thread::JoinHandle<StdoutCount>,
    baseline_fds: usize,
}

/// What the listener wrote on stdout.
#[derive(Debug, Default)]
struct StdoutCount {
    areas: u64,
    others: u64,
    first_other: Option<String>,
}

/// What the listener left when it exited.
struct Finished {
    status: ExitStatus,
    stderr: Vec<String>,
    stdout: StdoutCount,
}

impl Listener {
    fn start(program: &Path, key: &str, dir: &Path, plan: &Plan) -> anyhow::Result<Listener> {
        let address_file = dir.join("listener.address");
        // A round's sessions may still be ending on the listener's side when
        // the next round's clients (which saw theirs end) arrive: room for two.
        let max_connections = 2 * plan.authenticated();
        let mut command = Command::new(program);
        command
            .env(AUTHKEY_ENV, key)
            .env_remove("IRIS_ADDRESS")
            .env_remove("RUST_LOG")
            .env("NO_COLOR", "1")
            .args(["-q", "--address", "127.0.0.1:0", "--address-file"])
            .arg(&address_file)
            .args(["--max-connections", &max_connections.to_string()])
            .stdout(Stdio::piped());
        let mut server = Server::start_with_stdout("iris-listener", &mut command, &address_file)?;
        let stdout = server.take_stdout().context("no stdout pipe")?;
        let stdout = std::thread::spawn(move || count_stdout(stdout));
        let baseline_fds = descriptors(server.pid())?;
        Ok(Listener {
            server,
            stdout,
            baseline_fds,
        })
    }

    /// Waits until the listener holds no more descriptors than when it
    /// started: every connection of the round is closed on its side too.
    fn settle(&self) -> anyhow::Result<()> {
        let deadline = Instant::now() + SETTLE_TIMEOUT;
        loop {
            let fds = descriptors(self.server.pid())?;
            if fds <= self.baseline_fds {
                return Ok(());
            }
            ensure!(
                Instant::now() < deadline,
                "the listener still holds {fds} descriptors {}s after the round ended, \
                 {} when it started: a leak, or connections it never closed",
                SETTLE_TIMEOUT.as_secs(),
                self.baseline_fds
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn stop(self) -> anyhow::Result<Finished> {
        let (status, stderr) = self.server.stop(SETTLE_TIMEOUT)?;
        let stdout = self
            .stdout
            .join()
            .map_err(|_| anyhow::anyhow!("the stdout reader panicked"))?;
        Ok(Finished {
            status,
            stderr,
            stdout,
        })
    }
}

fn count_stdout(stdout: impl Read) -> StdoutCount {
    let mut count = StdoutCount::default();
    let mut reader = BufReader::with_capacity(1 << 16, stdout);
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        if line.starts_with(b"Area: ") && line.ends_with(b"\n") {
            count.areas += 1;
        } else {
            count.others += 1;
            count
                .first_other
                .get_or_insert_with(|| String::from_utf8_lossy(&line).trim_end().to_owned());
        }
    }
    count
}

/// Open descriptors of `pid`.
fn descriptors(pid: u32) -> anyhow::Result<usize> {
    count_entries(&format!("/proc/{pid}/fd"))
}

/// Threads of `pid`.
fn threads(pid: u32) -> anyhow::Result<usize> {
    count_entries(&format!("/proc/{pid}/task"))
}

fn count_entries(dir: &str) -> anyhow::Result<usize> {
    Ok(std::fs::read_dir(dir)
        .with_context(|| format!("cannot list {dir}"))?
        .count())
}

/// Holds the good clients once authenticated until all are (or the soak
/// gives up on that), then lets them go together.
#[derive(Default)]
struct StartLine {
    /// Clients at the line, and whether they may go.
    state: Mutex<(usize, bool)>,
    changed: Condvar,
}

impl StartLine {
    fn lock(&self) -> std::sync::MutexGuard<'_, (usize, bool)> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A client arrives, and waits for the start.
    fn arrive(&self) {
        let mut state = self.lock();
        state.0 += 1;
        self.changed.notify_all();
        while !state.1 {
            state = self
                .changed
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Waits until `count` clients have arrived or `timeout` passed;
    /// returns how many arrived.
    fn wait_for(&self, count: usize, timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        let mut state = self.lock();
        while state.0 < count {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            state = self
                .changed
                .wait_timeout(state, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        state.0
    }

    fn go(&self) {
        self.lock().1 = true;
        self.changed.notify_all();
    }
}

/// What every round shares.
struct Soak {
    plan: Plan,
    address: String,
    key: String,
    client_bin: PathBuf,
    flowers: Flowers,
}

/// How a round went.
#[derive(Debug, Default)]
struct Round {
    acknowledged: u64,
    versicolor_sent: u64,
    virginica_fed: u64,
    /// Everything that did not go as expected, one line each.
    failures: Vec<String>,
    /// From the round's start until every good client was authenticated.
    ready_after: Duration,
    /// From the start line until every good client's `Close` was acknowledged.
    streamed_in: Duration,
    /// The longest a silent peer waited to be closed by the listener.
    silent_closed_after: Duration,
    /// The listener's descriptors and threads with every good client
    /// authenticated.
    fds: usize,
    threads: usize,
    took: Duration,
}

/// A misbehaving peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Peer {
    Silent,
    Garbage(usize),
    WrongKey,
    Dropped { rst: bool },
    Killed,
}

/// What a misbehaving peer's thread reports when it behaved as planned.
enum Behaved {
    /// A silent peer, closed by the listener after this long.
    SilentClosed(Duration),
    /// Versicolor flowers the listener read before the peer vanished.
    Dropped(u64),
    /// Virginica rows a killed client was fed.
    Killed(u64),
    Other,
}

impl Soak {
    fn round(&self, number: usize, listener: &Listener) -> anyhow::Result<Round> {
        let plan = &self.plan;
        let mut peers = Vec::new();
        for index in 0..plan.per_kind {
            peers.push(Peer::Silent);
            peers.push(Peer::Garbage(index));
            peers.push(Peer::WrongKey);
            peers.push(Peer::Dropped {
                rst: index % 2 == 1,
            });
        }
        peers.extend(std::iter::repeat_n(Peer::Killed, plan.killed));
        let start = StartLine::default();
        let started = Instant::now();
        let mut round = Round::default();
        let spawned: anyhow::Result<()> = std::thread::scope(|scope| {
            let mut misbehaving = Vec::with_capacity(peers.len());
            let mut good = Vec::with_capacity(plan.clients);
            let spawned = (|| -> anyhow::Result<()> {
                for peer in &peers {
                    misbehaving.push((*peer, spawn(scope, move || self.misbehave(*peer))?));
                }
                for _ in 0..plan.clients {
                    good.push(spawn(scope, || self.good_client(&start))?);
                }
                Ok(())
            })();
            if spawned.is_ok() {
                let ready = start.wait_for(plan.clients, READY_TIMEOUT);
                round.ready_after = started.elapsed();
                if ready < plan.clients {
                    round.failures.push(format!(
                        "only {ready} of {} good clients were through their handshake after {}s",
                        plan.clients,
                        READY_TIMEOUT.as_secs()
                    ));
                }
                let pid = listener.server.pid();
                round.fds = descriptors(pid).unwrap_or(0);
                round.threads = threads(pid).unwrap_or(0);
            }
            let released = Instant::now();
            start.go();
            for handle in good {
                match join(handle) {
                    Ok(acknowledged) => round.acknowledged += acknowledged,
                    Err(error) => round.failures.push(format!("a good client: {error}")),
                }
            }
            round.streamed_in = released.elapsed();
            for (peer, handle) in misbehaving {
                match join(handle) {
                    Ok(Behaved::SilentClosed(after)) => {
                        round.silent_closed_after = round.silent_closed_after.max(after);
                    }
                    Ok(Behaved::Dropped(sent)) => round.versicolor_sent += sent,
                    Ok(Behaved::Killed(fed)) => round.virginica_fed += fed,
                    Ok(Behaved::Other) => {}
                    Err(error) => round.failures.push(format!("a {peer:?} peer: {error}")),
                }
            }
            spawned
        });
        spawned?;
        if let Err(error) = listener.settle() {
            round.failures.push(format!("{error:#}"));
        }
        round.took = started.elapsed();
        println!(
            "    round {number}: {} clients authenticated at once after {:.2} s (listener: {} descriptors, {} threads); \
             {} flowers acknowledged {:.2} s later; silent peers closed after {:.2} s; round took {:.2} s",
            group(plan.clients as u64),
            round.ready_after.as_secs_f64(),
            group(round.fds as u64),
            group(round.threads as u64),
            group(round.acknowledged),
            round.streamed_in.as_secs_f64(),
            round.silent_closed_after.as_secs_f64(),
            round.took.as_secs_f64()
        );
        for failure in round.failures.iter().take(10) {
            println!("      - {failure}");
        }
        Ok(round)
    }

    fn options(&self) -> Options {
        Options::new()
            .with_handshake_timeout(Some(HANDSHAKE_TIMEOUT))
            .with_read_timeout(Some(IO_TIMEOUT))
            .with_write_timeout(Some(IO_TIMEOUT))
    }

    /// Authenticates, waits at the start line, sends its flowers and
    /// `Close`; returns the acknowledged count, which must be all of them.
    fn good_client(&self, start: &StartLine) -> anyhow::Result<u64> {
        let connected =
            Client::connect_with(self.address.as_str(), self.key.as_bytes(), &self.options());
        // At the line whatever happened, so the others are not held up.
        start.arrive();
        let mut connection = connected.context("cannot connect and authenticate")?;
        let flowers = usize::try_from(self.plan.flowers)?;
        for iris in self.flowers.setosa.iter().cycle().take(flowers) {
            connection.send(&Message::Iris(*iris))?;
        }
        connection.send(&Message::Close)?;
        connection.flush()?;
        match connection.recv::<Reply>()? {
            Reply::Closed { flowers } if flowers == self.plan.flowers => Ok(flowers),
            Reply::Closed { flowers } => bail!(
                "{flowers} of its {} flowers were acknowledged",
                self.plan.flowers
            ),
            other => bail!("Close was answered with {other:?}"),
        }
    }

    fn misbehave(&self, peer: Peer) -> anyhow::Result<Behaved> {
        match peer {
            Peer::Silent => {
                let started = Instant::now();
                let mut stream = self.raw_connection()?;
                expect_closed(&mut stream).context("a silent peer")?;
                Ok(Behaved::SilentClosed(started.elapsed()))
            }
            Peer::Garbage(index) => {
                let mut stream = self.raw_connection()?;
                // Whether the listener reads it all before it closes is its
                // business: a write that fails on the closed connection is fine.
                let _ = stream.write_all(&garbage(index)?);
                expect_closed(&mut stream).context("a garbage peer")?;
                Ok(Behaved::Other)
            }
            Peer::WrongKey => {
                let wrong = crate::key::random_hex(32)?;
                match Client::connect_with(self.address.as_str(), wrong.as_bytes(), &self.options())
                {
                    Err(iris_wire::Error::Authentication(_)) => Ok(Behaved::Other),
                    Err(other) => {
                        bail!("a wrong key failed otherwise than authentication: {other}")
                    }
                    Ok(_) => bail!("a wrong key was accepted"),
                }
            }
            Peer::Dropped { rst } => self.dropped(rst),
            Peer::Killed => self.killed(),
        }
    }

    fn raw_connection(&self) -> anyhow::Result<TcpStream> {
        let stream = TcpStream::connect(self.address.as_str())
            .with_context(|| format!("cannot connect to {}", self.address))?;
        stream.set_read_timeout(Some(IO_TIMEOUT))?;
        stream.set_write_timeout(Some(IO_TIMEOUT))?;
        Ok(stream)
    }

    /// Sends versicolor flowers and a `Ping`; once the `Pong` proves they
    /// were read, vanishes without `Close`: a FIN, or with `rst` a RST.
    fn dropped(&self, rst: bool) -> anyhow::Result<Behaved> {
        let mut connection =
            Client::connect_with(self.address.as_str(), self.key.as_bytes(), &self.options())
                .context("cannot connect and authenticate")?;
        let versicolor = &self.flowers.versicolor;
        for iris in versicolor.iter().cycle().take(DROPPED_FLOWERS as usize) {
            connection.send(&Message::Iris(*iris))?;
        }
        connection.send(&Message::Ping)?;
        connection.flush()?;
        let reply: Reply = connection.recv()?;
        ensure!(reply == Reply::Pong, "Ping was answered with {reply:?}");
        // The session is sealed, so the socket is reached through the
        // connection rather than handed back: nothing is queued, and
        // dropping the connection closes it.
        let Stream::Tcp(stream) = connection.get_ref() else {
            bail!("a TCP address gave another kind of stream");
        };
        if rst {
            // No linger: close() sends a RST instead of a FIN.
            socket2::SockRef::from(stream).set_linger(Some(Duration::ZERO))?;
        }
        drop(connection);
        Ok(Behaved::Dropped(DROPPED_FLOWERS))
    }

    /// Feeds virginica rows to an `iris-client send -`, and kills it with
    /// SIGKILL once it is authenticated, with rows in flight and its input
    /// still open (it never sends `Close`).
    fn killed(&self) -> anyhow::Result<Behaved> {
        let mut command = Command::new(&self.client_bin);
        command
            .env(AUTHKEY_ENV, &self.key)
            .env_remove("IRIS_ADDRESS")
            .env("RUST_LOG", "iris_client=debug")
            .env("NO_COLOR", "1")
            .args(["send", "-", "--address", &self.address])
            .args([
                "--handshake-timeout",
                &HANDSHAKE_TIMEOUT.as_secs().to_string(),
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut client = Guarded::spawn("iris-client send -", &mut command)?;
        let mut stdin = client.take_stdin().context("no stdin pipe")?;
        let stderr = client.take_stderr().context("no stderr pipe")?;
        let rows = self.flowers.virginica_csv.as_bytes();
        let (first, rest) = rows.split_at(rows.len() / 2);
        stdin.write_all(first).context("cannot feed iris-client")?;
        let mut log = Vec::new();
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            let authenticated = line.contains("connected and authenticated");
            log.push(line);
            if authenticated {
                break;
            }
        }
        ensure!(
            log.last()
                .is_some_and(|line| line.contains("connected and authenticated")),
            "iris-client ended before it was authenticated: {}",
            log.join(" / ")
        );
        // Killed once it has read, since it was authenticated, as many
        // bytes as the second half it is fed: it sends what it reads at once
        // (its socket writes are not counted in /proc, its pipe reads are).
        let read = bytes_read(client.pid())?;
        stdin.write_all(rest).context("cannot feed iris-client")?;
        stdin.flush()?;
        let deadline = Instant::now() + IO_TIMEOUT;
        while bytes_read(client.pid())? < read + rest.len() as u64 {
            ensure!(
                Instant::now() < deadline,
                "iris-client did not read its input within {}s",
                IO_TIMEOUT.as_secs()
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        let status = client.kill()?;
        ensure!(
            std::os::unix::process::ExitStatusExt::signal(&status) == Some(9),
            "iris-client was to be killed mid-stream but exited by itself ({status}): {}",
            log.join(" / ")
        );
        Ok(Behaved::Killed(KILLED_ROWS as u64))
    }
}

/// What `pid` has read so far with read(2) (`rchar` of `/proc/PID/io`):
/// files and pipes, not sockets (recv).
fn bytes_read(pid: u32) -> anyhow::Result<u64> {
    let path = format!("/proc/{pid}/io");
    let io = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    io.lines()
        .find_map(|line| line.strip_prefix("rchar:"))
        .and_then(|value| value.trim().parse().ok())
        .with_context(|| format!("no rchar line in {path}"))
}

/// Bytes that are no handshake answer, of four kinds.
fn garbage(index: usize) -> anyhow::Result<Vec<u8>> {
    Ok(match index % 4 {
        0 => crate::key::random_bytes(64)?,
        1 => b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n".to_vec(),
        // A frame of an answer's length, with the wrong digest.
        2 => {
            let mut frame = 40_u32.to_be_bytes().to_vec();
            frame.extend(crate::key::random_bytes(40)?);
            frame
        }
        // A header announcing 2 GiB, then nothing.
        _ => i32::MAX.to_be_bytes().to_vec(),
    })
}

/// Reads until the listener closes the connection (a FIN or a RST).
fn expect_closed(stream: &mut TcpStream) -> anyhow::Result<()> {
    let mut sink = Vec::new();
    let closed = match stream.read_to_end(&mut sink) {
        Ok(_) => true,
        Err(error) => error.kind() == std::io::ErrorKind::ConnectionReset,
    };
    ensure!(
        closed,
        "the listener did not close it within {}s",
        IO_TIMEOUT.as_secs()
    );
    let _ = stream.shutdown(Shutdown::Both);
    Ok(())
}

fn spawn<'scope, T: Send + 'scope>(
    scope: &'scope Scope<'scope, '_>,
    body: impl FnOnce() -> T + Send + 'scope,
) -> anyhow::Result<ScopedJoinHandle<'scope, T>> {
    std::thread::Builder::new()
        .stack_size(PEER_STACK)
        .spawn_scoped(scope, body)
        .context("cannot start a peer thread")
}

fn join<T>(handle: ScopedJoinHandle<'_, anyhow::Result<T>>) -> anyhow::Result<T> {
    handle
        .join()
        .map_err(|_| anyhow::anyhow!("its thread panicked"))?
        .map_err(|error| anyhow::anyhow!("{error:#}"))
}

fn verdict(
    plan: &Plan,
    rounds: &[Round],
    finished: &Finished,
    duration: Duration,
    peak_rss: f64,
    (threads_at_start, threads_after): (usize, usize),
) -> anyhow::Result<()> {
    let n = rounds.len() as u64;
    let mut failures: Vec<String> = rounds
        .iter()
        .enumerate()
        .flat_map(|(index, round)| {
            round
                .failures
                .iter()
                .map(move |failure| format!("round {}: {failure}", index + 1))
        })
        .collect();
    let acknowledged: u64 = rounds.iter().map(|r| r.acknowledged).sum();
    let versicolor_sent: u64 = rounds.iter().map(|r| r.versicolor_sent).sum();
    let virginica_fed: u64 = rounds.iter().map(|r| r.virginica_fed).sum();
    let expected_acknowledged = n * plan.clients as u64 * plan.flowers;
    if acknowledged != expected_acknowledged {
        failures.push(format!(
            "the good clients saw {acknowledged} flowers acknowledged, expected {expected_acknowledged}"
        ));
    }
    if !finished.status.success() {
        failures.push(format!(
            "iris-listener exited with {} after SIGTERM",
            finished.status
        ));
    }
    let summary = finished.stderr.iter().find_map(|line| Summary::parse(line));
    let Some(summary) = summary else {
        bail!(
            "iris-listener printed no summary line; its stderr:\n{}",
            finished.stderr.join("\n")
        );
    };
    let mut check = |what: &str, key: &str, expected: u64| {
        let found = summary.value(key);
        if found != Some(expected) {
            failures.push(format!(
                "{what}: the listener's summary has {key}={}, expected {expected}",
                found.map_or("(none)".to_owned(), |v| v.to_string())
            ));
        }
    };
    check(
        "authenticated peers",
        "connections",
        n * plan.authenticated(),
    );
    check(
        "silent, garbage and wrong-key peers",
        "rejected",
        n * plan.rejected(),
    );
    check(
        "flowers the good clients saw acknowledged",
        "setosa",
        acknowledged,
    );
    check(
        "flowers the dropped clients had sent before their Pong",
        "versicolor",
        versicolor_sent,
    );
    let virginica = summary.value("virginica").unwrap_or(u64::MAX);
    if virginica > virginica_fed {
        failures.push(format!(
            "the listener counted virginica={virginica}, more than the {virginica_fed} the killed clients were fed"
        ));
    }
    let counted = summary.value("flowers");
    let species_sum = acknowledged + versicolor_sent + virginica;
    if counted != Some(species_sum) {
        failures.push(format!(
            "the listener's summary says flowers={counted:?}, its species add up to {species_sum}"
        ));
    }
    if Some(finished.stdout.areas) != counted {
        failures.push(format!(
            "the listener printed {} `Area:` lines and counted flowers={counted:?}",
            finished.stdout.areas
        ));
    }
    if let Some(line) = &finished.stdout.first_other {
        failures.push(format!(
            "the listener printed {} stdout lines that are not `Area:` lines, the first: {line:?}",
            finished.stdout.others
        ));
    }
    if let Some(abandoned) = summary.value("abandoned") {
        failures.push(format!(
            "{abandoned} connections were still open when the listener stopped"
        ));
    }

    let seconds = duration.as_secs_f64();
    let connections = n * (plan.authenticated() + plan.rejected());
    let peak_fds = rounds.iter().map(|r| r.fds).max().unwrap_or(0);
    let peak_threads = rounds.iter().map(|r| r.threads).max().unwrap_or(0);
    let ready = rounds
        .iter()
        .map(|r| r.ready_after)
        .max()
        .unwrap_or_default();
    println!();
    println!("listener {}", summary.line);
    println!(
        "listener: peak RSS {peak_rss:.1} MiB (VmHWM); with every good client authenticated: \
         up to {} descriptors, {} threads; back to its starting descriptors after every round; \
         threads: {threads_at_start} at start, {threads_after} after the last round (finished \
         session threads wait for the next connection, up to 16)",
        group(peak_fds as u64),
        group(peak_threads as u64)
    );
    println!(
        "{n} round(s) of {} in {seconds:.1} s: {} connections ({:.0}/s, the silent peers' \
         handshake timeout bounding a round), {} flowers printed",
        plan.describe(),
        group(connections),
        connections as f64 / seconds,
        group(counted.unwrap_or(0)),
    );
    println!(
        "handshakes: every round's {} good clients authenticated within {:.2} s of its start ({:.0}/s); \
         the killed clients had {virginica} of the {virginica_fed} rows they were fed printed",
        group(plan.clients as u64),
        ready.as_secs_f64(),
        plan.clients as f64 / ready.as_secs_f64().max(f64::MIN_POSITIVE)
    );
    if failures.is_empty() {
        println!(
            "soak PASSED: every count exact: {} acknowledged = setosa, {} versicolor from dropped clients, \
             connections={}, rejected={}, {} `Area:` lines = flowers",
            group(acknowledged),
            group(versicolor_sent),
            group(n * plan.authenticated()),
            group(n * plan.rejected()),
            group(finished.stdout.areas)
        );
        Ok(())
    } else {
        println!("the listener's log (warnings and errors):");
        for line in finished.stderr.iter().take(40) {
            println!("    {line}");
        }
        println!("soak FAILED:");
        for failure in failures.iter().take(50) {
            println!("  - {failure}");
        }
        if failures.len() > 50 {
            println!("  - ... and {} more", failures.len() - 50);
        }
        bail!(
            "the soak failed ({} problem(s), listed above)",
            failures.len()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|&a| a.to_owned()).collect()
    }

    #[test]
    fn flags_have_defaults_and_quick_ones() {
        let full = parse(&[]).expect("no flags");
        assert_eq!((full.clients, full.flowers, full.seconds), (1000, 1000, 0));
        let quick = parse(&strings(&["--quick"])).expect("--quick");
        assert_eq!((quick.clients, quick.flowers), (100, 100));
        let mixed =
            parse(&strings(&["--clients", "7", "--quick", "--seconds", "30"])).expect("valid");
        assert_eq!((mixed.clients, mixed.flowers, mixed.seconds), (7, 100, 30));
        assert!(parse(&strings(&["--clients", "0"])).is_err());
        assert!(parse(&strings(&["--flowers"])).is_err());
        assert!(parse(&strings(&["--bogus"])).is_err());
    }

    #[test]
    fn a_plan_has_every_kind_of_peer() {
        let plan = Plan::new(&Flags {
            clients: 1000,
            flowers: 1000,
            seconds: 0,
        });
        assert_eq!((plan.per_kind, plan.killed), (20, 20));
        assert_eq!(plan.authenticated(), 1040);
        assert_eq!(plan.rejected(), 60);
        let tiny = Plan::new(&Flags {
            clients: 3,
            flowers: 1,
            seconds: 0,
        });
        assert_eq!((tiny.per_kind, tiny.killed), (1, 1));
    }

    #[test]
    fn numbers_are_grouped_by_thousands() {
        assert_eq!(group(0), "0");
        assert_eq!(group(999), "999");
        assert_eq!(group(1000), "1,000");
        assert_eq!(group(1_234_567), "1,234,567");
    }

    #[test]
    fn stdout_lines_are_counted_and_strangers_named() {
        let count = count_stdout(&b"Area: 1.0\nArea: 2\nhello\nArea: 3"[..]);
        assert_eq!((count.areas, count.others), (2, 2));
        assert_eq!(count.first_other.as_deref(), Some("hello"));
    }

    #[test]
    fn garbage_is_never_a_handshake_answer() {
        for index in 0..4 {
            let bytes = garbage(index).expect("garbage");
            assert!(bytes.len() >= 4, "at least a header: {bytes:?}");
        }
        assert_eq!(garbage(3).expect("garbage"), [0x7f, 0xff, 0xff, 0xff]);
    }
}
