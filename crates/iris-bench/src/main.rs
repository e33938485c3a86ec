//! `iris-bench`: the Rust drivers of `cargo xtask bench`.
//!
//! Each subcommand is one side of one benchmark scenario, run as a child
//! process by the harness (`xtask/src/bench.rs`), which also runs the
//! `iris-listener` and `iris-client` binaries and the Python programs in
//! `bench/`. A driver prints its result on stdout as one JSON object and
//! nothing else; errors go to stderr with a non-zero exit.
//!
//! ```text
//! iris-bench handshake --address A [--seconds S] [--max N] [--sealing S] [--ping] [--raw]
//!     connect, authenticate, close, in a loop (with --ping, one
//!     Ping / Pong round trip before the close, timed too; raw: TCP connect
//!     + one 40-byte ping-pong); prints {"count","sealed","elapsed_ns",
//!     "latencies_ns"}
//! iris-bench ping --address A [--count N] [--warmup W] [--sealing S] [--raw]
//!     Message::Ping / Reply::Pong round trips (raw: 5-byte echo, the size
//!     of a Ping frame); prints {"sealed","latencies_ns"}
//! iris-bench bulk --address A [--size BYTES] [--count K] [--sealing S] [--raw [--source BYTES]]
//!     K frames of BYTES each, then waits for the server's count (raw: the
//!     same bytes in 1 MiB writes from a reused buffer of --source bytes,
//!     1 MiB by default); prints {"bytes","sealed","elapsed_ns"}
//! iris-bench bulk-server --host H --address-file F [--count K] [--max-frame B] [--sealing S]
//!     the iris-wire receiving side of `bulk`: recv_frame K times, answers
//!     with the byte count
//! iris-bench floor-server --host H --address-file F --mode MODE [--bytes N]
//!     the raw std::net servers of the floors: `handshake` (40-byte echo,
//!     then wait for the client to close; connections one after the other
//!     on the accepting thread), `handshake-threaded` (the same with a
//!     thread per connection, for reference), `ping` (5-byte echo on one
//!     connection), `bulk` (read N bytes into a reused buffer of
//!     `--buffer` bytes, 1 MiB by default, and answer their count)
//! iris-bench idle --address A [--connections N] [--ping] [--sealing S] [--allow-legacy-md5]
//!     opens N authenticated connections (each pinged with --ping, which
//!     proves the iris listener serves it), prints `ready N`, holds them
//!     until its stdin ends
//! ```
//!
//! `--sealing off|prefer|require` is the iris-wire sealing policy
//! (`prefer`, sealed with iris peers, by default; `require` makes a client
//! send its challenge at once: fast open). The results say whether the
//! sessions were sealed, so the harness can check each row measured what
//! its label says.
//!
//! The authkey comes from `IRIS_AUTHKEY`, as for the binaries. Processes
//! started together (the 16 handshake clients) wait for their standard
//! input to end before they start: the harness closes it once all of them
//! are ready, so that process start-up is never timed.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use clap::{Parser, ValueEnum};
use iris_protocol::{Message, Reply};
use iris_wire::{Client, Connection, Listener, Options, Sealing};
use serde_json::json;

const AUTHKEY_ENV: &str = "IRIS_AUTHKEY";

/// The raw handshake floor's ping: 40 bytes, the size of a challenge nonce.
const HANDSHAKE_PING_LEN: usize = 40;
/// The raw ping floor's message: as long as an iris Ping frame (4-byte
/// header, 1-byte message).
const RAW_PING_LEN: usize = 5;
/// The raw bulk floor writes and reads this much at a time.
const RAW_CHUNK: usize = 1 << 20;

/// The drivers; each prints one JSON object (or `ready N`) on stdout.
#[derive(Parser, Debug)]
#[command(name = "iris-bench", about = "The Rust drivers of `cargo xtask bench`")]
enum Command {
    /// Connect, authenticate, close, in a loop (raw: TCP connect and one
    /// 40-byte ping-pong).
    Handshake {
        #[arg(long)]
        address: String,
        #[arg(long, default_value_t = 1.0)]
        seconds: f64,
        #[arg(long, default_value_t = 20_000)]
        max: usize,
        #[arg(long, value_enum, default_value_t = SealingArg::Prefer)]
        sealing: SealingArg,
        /// One Ping / Pong round trip after the handshake, inside the time.
        #[arg(long)]
        ping: bool,
        #[arg(long)]
        raw: bool,
    },
    /// Message::Ping / Reply::Pong round trips (raw: a 5-byte echo).
    Ping {
        #[arg(long)]
        address: String,
        #[arg(long, default_value_t = 10_000)]
        count: usize,
        #[arg(long, default_value_t = 200)]
        warmup: usize,
        #[arg(long, value_enum, default_value_t = SealingArg::Prefer)]
        sealing: SealingArg,
        #[arg(long)]
        raw: bool,
    },
    /// K frames of BYTES each, then the server's count (raw: the same bytes
    /// in 1 MiB writes from a reused buffer of --source bytes).
    Bulk {
        #[arg(long)]
        address: String,
        #[arg(long, default_value_t = 64 << 20)]
        size: usize,
        #[arg(long, default_value_t = 4)]
        count: usize,
        #[arg(long, value_enum, default_value_t = SealingArg::Prefer)]
        sealing: SealingArg,
        #[arg(long)]
        raw: bool,
        #[arg(long, default_value_t = RAW_CHUNK)]
        source: usize,
    },
    /// The iris-wire receiving side of `bulk`.
    BulkServer {
        #[arg(long)]
        host: String,
        #[arg(long)]
        address_file: PathBuf,
        #[arg(long, default_value_t = 4)]
        count: usize,
        #[arg(long, default_value_t = 128 << 20)]
        max_frame: u64,
        #[arg(long, value_enum, default_value_t = SealingArg::Prefer)]
        sealing: SealingArg,
    },
    /// The raw std::net servers of the floors.
    FloorServer {
        #[arg(long)]
        host: String,
        #[arg(long)]
        address_file: PathBuf,
        #[arg(long, value_enum)]
        mode: FloorMode,
        #[arg(long, default_value_t = 0)]
        bytes: u64,
        #[arg(long = "buffer", default_value_t = RAW_CHUNK)]
        buffer_len: usize,
    },
    /// Opens N authenticated connections, prints `ready N`, holds them
    /// until stdin ends.
    Idle {
        #[arg(long)]
        address: String,
        #[arg(long, default_value_t = 1000)]
        connections: usize,
        #[arg(long)]
        ping: bool,
        #[arg(long, value_enum, default_value_t = SealingArg::Prefer)]
        sealing: SealingArg,
        #[arg(long)]
        allow_legacy_md5: bool,
    },
}

/// `--sealing`: iris-wire's [`Sealing`] policies.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum SealingArg {
    /// Never seal.
    Off,
    /// Seal with iris peers (the default).
    Prefer,
    /// Seal or fail; a client sends its challenge at once (fast open).
    Require,
}

impl SealingArg {
    fn options(self) -> Options {
        Options::new().with_sealing(match self {
            SealingArg::Off => Sealing::Off,
            SealingArg::Prefer => Sealing::Prefer,
            SealingArg::Require => Sealing::Require,
        })
    }
}

/// What a floor server serves.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum FloorMode {
    /// 40-byte echo, then wait for the client to close; connections one
    /// after the other on the accepting thread.
    Handshake,
    /// The same with a thread per connection, for reference.
    HandshakeThreaded,
    /// 5-byte echo on one connection.
    Ping,
    /// Read N bytes into a reused buffer and answer their count.
    Bulk,
}

fn main() -> ExitCode {
    let command = Command::parse();
    let result = match command {
        Command::Handshake {
            address,
            seconds,
            max,
            sealing,
            ping,
            raw,
        } => handshake(&address, seconds, max, sealing.options(), ping, raw),
        Command::Ping {
            address,
            count,
            warmup,
            sealing,
            raw,
        } => self::ping(&address, count, warmup, sealing.options(), raw),
        Command::Bulk {
            address,
            size,
            count,
            sealing,
            raw,
            source,
        } => bulk(&address, size, count, sealing.options(), raw, source),
        Command::BulkServer {
            host,
            address_file,
            count,
            max_frame,
            sealing,
        } => bulk_server(
            &host,
            &address_file,
            count,
            sealing.options().with_max_frame(max_frame),
        ),
        Command::FloorServer {
            host,
            address_file,
            mode,
            bytes,
            buffer_len,
        } => floor_server(&host, &address_file, mode, bytes, buffer_len),
        Command::Idle {
            address,
            connections,
            ping,
            sealing,
            allow_legacy_md5,
        } => idle(
            &address,
            connections,
            ping,
            sealing.options().with_legacy_md5(allow_legacy_md5),
        ),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("iris-bench: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn authkey() -> anyhow::Result<Vec<u8>> {
    let key = std::env::var_os(AUTHKEY_ENV).with_context(|| format!("{AUTHKEY_ENV} is not set"))?;
    let key = key
        .into_string()
        .map_err(|_| anyhow::anyhow!("{AUTHKEY_ENV} is not UTF-8"))?;
    ensure!(!key.is_empty(), "{AUTHKEY_ENV} is empty");
    Ok(key.into_bytes())
}

/// Waits until standard input ends: the harness's start signal.
fn gate() -> anyhow::Result<()> {
    io::stdin()
        .lock()
        .read_to_end(&mut Vec::new())
        .context("cannot read the start signal on stdin")?;
    Ok(())
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

fn print_result(result: &serde_json::Value) -> anyhow::Result<()> {
    let mut stdout = io::stdout().lock();
    writeln!(stdout, "{result}")
        .and_then(|()| stdout.flush())
        .context("cannot write the result")
}

/// Writes `address` to `path` through a temporary file and a rename, so the
/// harness never reads half of it.
fn write_address_file(path: &Path, address: &str) -> anyhow::Result<()> {
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = PathBuf::from(temporary);
    std::fs::write(&temporary, format!("{address}\n"))
        .and_then(|()| std::fs::rename(&temporary, path))
        .with_context(|| format!("cannot write the address file {}", path.display()))
}

/// Connect, authenticate (and with `with_ping`, one Ping / Pong), close; or TCP
/// connect and one 40-byte ping-pong.
fn handshake(
    address: &str,
    seconds: f64,
    max: usize,
    options: Options,
    with_ping: bool,
    raw: bool,
) -> anyhow::Result<()> {
    let key = if raw { Vec::new() } else { authkey()? };
    let budget = Duration::from_secs_f64(seconds);

    gate()?;
    let mut latencies = Vec::with_capacity(max.min(1 << 20));
    let mut sealed = 0_usize;
    let mut ping = [0x5a_u8; HANDSHAKE_PING_LEN];
    let start = Instant::now();
    while latencies.len() < max && start.elapsed() < budget {
        let began = Instant::now();
        if raw {
            let mut stream = TcpStream::connect(address)
                .with_context(|| format!("cannot connect to {address}"))?;
            stream.set_nodelay(true)?;
            stream.write_all(&ping)?;
            stream.read_exact(&mut ping)?;
            latencies.push(nanos(began.elapsed()));
            drop(stream);
        } else {
            let mut connection = Client::connect_with(address, &key, &options)?;
            if with_ping {
                ping_pong(&mut connection)?;
            }
            latencies.push(nanos(began.elapsed()));
            sealed += usize::from(connection.is_sealed());
            connection.close()?;
        }
    }
    let elapsed = start.elapsed();
    print_result(&json!({
        "count": latencies.len(),
        "sealed": sealed,
        "elapsed_ns": nanos(elapsed),
        "latencies_ns": latencies,
    }))
}

/// One Message::Ping answered by Reply::Pong.
fn ping_pong(connection: &mut Connection) -> anyhow::Result<()> {
    connection.send(&Message::Ping)?;
    // recv flushes the Ping before it waits.
    let reply: Reply = connection.recv()?;
    ensure!(reply == Reply::Pong, "Ping answered with {reply:?}");
    Ok(())
}

/// Request/response round trips on one connection.
fn ping(
    address: &str,
    count: usize,
    warmup: usize,
    options: Options,
    raw: bool,
) -> anyhow::Result<()> {
    let mut latencies = Vec::with_capacity(count);
    let mut sealed = false;
    if raw {
        let mut stream =
            TcpStream::connect(address).with_context(|| format!("cannot connect to {address}"))?;
        stream.set_nodelay(true)?;
        let mut message = [0_u8, 0, 0, 1, 2];
        for round in 0..warmup + count {
            let began = Instant::now();
            stream.write_all(&message)?;
            stream.read_exact(&mut message)?;
            if round >= warmup {
                latencies.push(nanos(began.elapsed()));
            }
        }
    } else {
        let key = authkey()?;
        let mut connection = Client::connect_with(address, &key, &options)?;
        sealed = connection.is_sealed();
        for round in 0..warmup + count {
            let began = Instant::now();
            ping_pong(&mut connection)?;
            if round >= warmup {
                latencies.push(nanos(began.elapsed()));
            }
        }
        close_natively(connection)?;
    }
    print_result(&json!({ "sealed": sealed, "latencies_ns": latencies }))
}

/// Sends Close and waits for Closed, so the listener logs a clean close.
fn close_natively(mut connection: Connection) -> anyhow::Result<()> {
    connection.send(&Message::Close)?;
    match connection.recv::<Reply>()? {
        Reply::Closed { .. } => {}
        other => bail!("Close answered with {other:?}"),
    }
    connection.close()?;
    Ok(())
}

/// Large frames one way, then the receiver's count back.
fn bulk(
    address: &str,
    size: usize,
    count: usize,
    options: Options,
    raw: bool,
    source: usize,
) -> anyhow::Result<()> {
    let total = (size as u64) * (count as u64);
    let mut sealed = false;
    // Filled, so every page is mapped before the clock starts.
    let payload = vec![0xa5_u8; if raw { source.max(1) } else { size }];
    let elapsed;
    if raw {
        let mut stream =
            TcpStream::connect(address).with_context(|| format!("cannot connect to {address}"))?;
        let started = Instant::now();
        let mut left = total;
        let mut at = 0;
        while left > 0 {
            // 1 MiB writes, walking through the source buffer.
            if at == payload.len() {
                at = 0;
            }
            let n = usize::try_from(left)
                .unwrap_or(usize::MAX)
                .min(RAW_CHUNK)
                .min(payload.len() - at);
            stream.write_all(&payload[at..at + n])?;
            at += n;
            left -= n as u64;
        }
        let mut ack = [0_u8; 8];
        stream.read_exact(&mut ack)?;
        elapsed = started.elapsed();
        ensure!(
            u64::from_le_bytes(ack) == total,
            "the floor server counted {} bytes, not {total}",
            u64::from_le_bytes(ack)
        );
    } else {
        let key = authkey()?;
        let options = options.with_max_frame((size as u64).max(1 << 20));
        let mut connection = Client::connect_with(address, &key, &options)?;
        sealed = connection.is_sealed();
        let started = Instant::now();
        for _ in 0..count {
            connection.send_bytes(&payload)?;
        }
        let ack = connection.recv_bytes()?;
        elapsed = started.elapsed();
        let counted = <[u8; 8]>::try_from(ack.as_slice())
            .map(u64::from_le_bytes)
            .map_err(|_| anyhow::anyhow!("the server's count is {} bytes long", ack.len()))?;
        ensure!(
            counted == total,
            "the server counted {counted} bytes, not {total}"
        );
        connection.close()?;
    }
    print_result(&json!({ "bytes": total, "sealed": sealed, "elapsed_ns": nanos(elapsed) }))
}

/// The iris-wire side receiving `bulk`.
fn bulk_server(
    host: &str,
    address_file: &Path,
    count: usize,
    options: Options,
) -> anyhow::Result<()> {
    let key = authkey()?;
    let listener = Listener::bind_with(format!("{host}:0"), &key, options)?;
    write_address_file(address_file, &listener.local_addr().to_string())?;
    let mut connection = listener.accept()?;
    let mut total: u64 = 0;
    for _ in 0..count {
        total += connection.recv_frame()?.len() as u64;
    }
    connection.send_bytes(&total.to_le_bytes())?;
    connection.close()?;
    Ok(())
}

/// The raw std::net servers the floors are measured against.
fn floor_server(
    host: &str,
    address_file: &Path,
    mode: FloorMode,
    bytes: u64,
    buffer_len: usize,
) -> anyhow::Result<()> {
    let listener = TcpListener::bind((host, 0)).with_context(|| format!("cannot bind {host}:0"))?;
    write_address_file(address_file, &listener.local_addr()?.to_string())?;
    match mode {
        // The floor: one connection after the other on the accepting
        // thread, the cheapest way to serve a connect-and-ping (measured
        // here: faster than a thread per connection for 1 client and for
        // 16). Runs until killed.
        FloorMode::Handshake => loop {
            let (stream, _) = listener.accept()?;
            serve_handshake_floor(stream);
        },
        // For reference: a thread per connection, iris-listener's model.
        FloorMode::HandshakeThreaded => loop {
            let (stream, _) = listener.accept()?;
            std::thread::Builder::new()
                .stack_size(64 << 10)
                .spawn(move || serve_handshake_floor(stream))?;
        },
        FloorMode::Ping => {
            let (mut stream, _) = listener.accept()?;
            stream.set_nodelay(true)?;
            let mut message = [0_u8; RAW_PING_LEN];
            loop {
                match stream.read_exact(&mut message) {
                    Ok(()) => stream.write_all(&message)?,
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
                    Err(e) => return Err(e.into()),
                }
            }
        }
        FloorMode::Bulk => {
            let (mut stream, _) = listener.accept()?;
            let mut buffer = vec![0_u8; buffer_len.max(1)];
            let mut received: u64 = 0;
            let mut filled = 0;
            while received < bytes {
                // Reads fill the buffer before it is reused, as a receiver
                // of messages the buffer's size would.
                if filled == buffer.len() {
                    filled = 0;
                }
                let n = stream.read(&mut buffer[filled..])?;
                filled += n;
                ensure!(n > 0, "the client left after {received} of {bytes} bytes");
                received += n as u64;
            }
            stream.write_all(&received.to_le_bytes())?;
            Ok(())
        }
    }
}

fn serve_handshake_floor(mut stream: TcpStream) {
    let mut ping = [0_u8; HANDSHAKE_PING_LEN];
    let _ = stream
        .set_nodelay(true)
        .and_then(|()| stream.read_exact(&mut ping))
        .and_then(|()| stream.write_all(&ping))
        // Until the client closes, as iris-listener waits for a message.
        .and_then(|()| stream.read(&mut ping));
}

/// Many authenticated connections, held open until stdin ends.
fn idle(address: &str, connections: usize, ping: bool, options: Options) -> anyhow::Result<()> {
    let key = authkey()?;
    let mut held = Vec::with_capacity(connections);
    for index in 0..connections {
        let mut connection = Client::connect_with(address, &key, &options)
            .with_context(|| format!("connection {} of {connections}", index + 1))?;
        if ping {
            ping_pong(&mut connection)?;
        }
        held.push(connection);
    }
    let mut stdout = io::stdout().lock();
    writeln!(stdout, "ready {connections}")
        .and_then(|()| stdout.flush())
        .context("cannot announce readiness")?;
    drop(stdout);
    gate()?;
    drop(held);
    Ok(())
}
