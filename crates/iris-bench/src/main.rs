//! `iris-bench`: the Rust drivers of `cargo xtask bench`.
//!
//! Each subcommand is one side of one benchmark scenario, run as a child
//! process by the harness (`xtask/src/bench.rs`), which also runs the
//! `iris-listener` and `iris-client` binaries and the Python programs in
//! `bench/`. A driver prints its result on stdout as one JSON object and
//! nothing else; errors go to stderr with a non-zero exit.
//!
//! ```text
//! iris-bench handshake --address A [--seconds S] [--max N] [--raw]
//!     connect, authenticate, close, in a loop (raw: TCP connect + one
//!     40-byte ping-pong); prints {"count","elapsed_ns","latencies_ns"}
//! iris-bench ping --address A [--count N] [--warmup W] [--raw]
//!     Message::Ping / Reply::Pong round trips (raw: 5-byte echo, the size
//!     of a Ping frame); prints {"latencies_ns"}
//! iris-bench bulk --address A [--size BYTES] [--count K] [--raw [--source BYTES]]
//!     K frames of BYTES each, then waits for the server's count (raw: the
//!     same bytes in 1 MiB writes from a reused buffer of --source bytes,
//!     1 MiB by default); prints {"bytes","elapsed_ns"}
//! iris-bench bulk-server --host H --address-file F [--count K] [--max-frame B]
//!     the iris-wire receiving side of `bulk`: recv_frame K times, answers
//!     with the byte count
//! iris-bench floor-server --host H --address-file F --mode MODE [--bytes N]
//!     the raw std::net servers of the floors: `handshake` (40-byte echo,
//!     then wait for the client to close; connections one after the other
//!     on the accepting thread), `handshake-threaded` (the same with a
//!     thread per connection, for reference), `ping` (5-byte echo on one
//!     connection), `bulk` (read N bytes into a reused buffer of
//!     `--buffer` bytes, 1 MiB by default, and answer their count)
//! iris-bench idle --address A [--connections N] [--ping] [--allow-legacy-md5]
//!     opens N authenticated connections (each pinged with --ping, which
//!     proves the iris listener serves it), prints `ready N`, holds them
//!     until its stdin ends
//! ```
//!
//! The authkey comes from `IRIS_AUTHKEY`, as for the binaries. Processes
//! started together (the 16 handshake clients) wait for their standard
//! input to end before they start: the harness closes it once all of them
//! are ready, so that process start-up is never timed.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::str::FromStr;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use iris_model::{Message, Reply};
use iris_wire::{Client, Connection, Listener, Options};

const AUTHKEY_ENV: &str = "IRIS_AUTHKEY";

/// The raw handshake floor's ping: 40 bytes, the size of a challenge nonce.
const HANDSHAKE_PING_LEN: usize = 40;
/// The raw ping floor's message: as long as an iris Ping frame (4-byte
/// header, 1-byte message).
const RAW_PING_LEN: usize = 5;
/// The raw bulk floor writes and reads this much at a time.
const RAW_CHUNK: usize = 1 << 20;

const USAGE: &str = "usage: iris-bench handshake|ping|bulk|bulk-server|floor-server|idle [OPTIONS] (see the source's header)";

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    if args.is_empty() {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    }
    let command = args.remove(0);
    let args = Args(args);
    let result = match command.as_str() {
        "handshake" => handshake(args),
        "ping" => ping(args),
        "bulk" => bulk(args),
        "bulk-server" => bulk_server(args),
        "floor-server" => floor_server(args),
        "idle" => idle(args),
        other => {
            eprintln!("iris-bench: unknown command {other:?}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("iris-bench {command}: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// `--name VALUE` options and `--name` flags, taken out one by one; what is
/// left at the end is an error.
struct Args(Vec<String>);

impl Args {
    fn value(&mut self, name: &str) -> anyhow::Result<Option<String>> {
        let Some(at) = self.0.iter().position(|arg| arg == name) else {
            return Ok(None);
        };
        ensure!(at + 1 < self.0.len(), "{name} needs a value");
        let value = self.0.remove(at + 1);
        self.0.remove(at);
        Ok(Some(value))
    }

    fn required(&mut self, name: &str) -> anyhow::Result<String> {
        self.value(name)?
            .with_context(|| format!("{name} is required"))
    }

    fn number<T: FromStr>(&mut self, name: &str, default: T) -> anyhow::Result<T>
    where
        T::Err: std::error::Error + Send + Sync + 'static,
    {
        match self.value(name)? {
            Some(text) => text
                .parse()
                .with_context(|| format!("{name}: cannot parse {text:?}")),
            None => Ok(default),
        }
    }

    fn flag(&mut self, name: &str) -> bool {
        let before = self.0.len();
        self.0.retain(|arg| arg != name);
        self.0.len() != before
    }

    fn finish(self) -> anyhow::Result<()> {
        ensure!(self.0.is_empty(), "unexpected arguments: {:?}", self.0);
        Ok(())
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

/// `[1,2,3]`.
fn json_list(values: &[u64]) -> String {
    let mut out = String::with_capacity(values.len() * 8 + 2);
    out.push('[');
    for (index, value) in values.iter().enumerate() {
        if index > 0 {
            out.push(',');
        }
        out.push_str(&value.to_string());
    }
    out.push(']');
    out
}

fn print_result(json: &str) -> anyhow::Result<()> {
    let mut stdout = io::stdout().lock();
    writeln!(stdout, "{json}")
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

/// Connect, authenticate, close; or TCP connect and one 40-byte ping-pong.
fn handshake(mut args: Args) -> anyhow::Result<()> {
    let address = args.required("--address")?;
    let seconds: f64 = args.number("--seconds", 1.0)?;
    let max: usize = args.number("--max", 20_000)?;
    let raw = args.flag("--raw");
    args.finish()?;
    let key = if raw { Vec::new() } else { authkey()? };
    let options = Options::new();
    let budget = Duration::from_secs_f64(seconds);

    gate()?;
    let mut latencies = Vec::with_capacity(max.min(1 << 20));
    let mut ping = [0x5a_u8; HANDSHAKE_PING_LEN];
    let start = Instant::now();
    while latencies.len() < max && start.elapsed() < budget {
        let began = Instant::now();
        if raw {
            let mut stream = TcpStream::connect(address.as_str())
                .with_context(|| format!("cannot connect to {address}"))?;
            stream.set_nodelay(true)?;
            stream.write_all(&ping)?;
            stream.read_exact(&mut ping)?;
            latencies.push(nanos(began.elapsed()));
            drop(stream);
        } else {
            let connection = Client::connect_with(&address, &key, &options)?;
            latencies.push(nanos(began.elapsed()));
            connection.close()?;
        }
    }
    let elapsed = start.elapsed();
    print_result(&format!(
        r#"{{"count":{},"elapsed_ns":{},"latencies_ns":{}}}"#,
        latencies.len(),
        nanos(elapsed),
        json_list(&latencies)
    ))
}

/// Request/response round trips on one connection.
fn ping(mut args: Args) -> anyhow::Result<()> {
    let address = args.required("--address")?;
    let count: usize = args.number("--count", 10_000)?;
    let warmup: usize = args.number("--warmup", 200)?;
    let raw = args.flag("--raw");
    args.finish()?;
    let mut latencies = Vec::with_capacity(count);
    if raw {
        let mut stream = TcpStream::connect(address.as_str())
            .with_context(|| format!("cannot connect to {address}"))?;
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
        let mut connection = Client::connect_with(&address, &key, &Options::new())?;
        for round in 0..warmup + count {
            let began = Instant::now();
            connection.send(&Message::Ping)?;
            // recv flushes the Ping before it waits.
            let reply: Reply = connection.recv()?;
            ensure!(reply == Reply::Pong, "Ping answered with {reply:?}");
            if round >= warmup {
                latencies.push(nanos(began.elapsed()));
            }
        }
        close_natively(connection)?;
    }
    print_result(&format!(r#"{{"latencies_ns":{}}}"#, json_list(&latencies)))
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
fn bulk(mut args: Args) -> anyhow::Result<()> {
    let address = args.required("--address")?;
    let size: usize = args.number("--size", 64 << 20)?;
    let count: usize = args.number("--count", 4)?;
    let raw = args.flag("--raw");
    let source: usize = args.number("--source", RAW_CHUNK)?;
    args.finish()?;
    let total = (size as u64) * (count as u64);
    // Filled, so every page is mapped before the clock starts.
    let payload = vec![0xa5_u8; if raw { source.max(1) } else { size }];
    let elapsed;
    if raw {
        let mut stream = TcpStream::connect(address.as_str())
            .with_context(|| format!("cannot connect to {address}"))?;
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
        let options = Options::new().with_max_frame((size as u64).max(1 << 20));
        let mut connection = Client::connect_with(&address, &key, &options)?;
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
    print_result(&format!(
        r#"{{"bytes":{total},"elapsed_ns":{}}}"#,
        nanos(elapsed)
    ))
}

/// The iris-wire side receiving `bulk`.
fn bulk_server(mut args: Args) -> anyhow::Result<()> {
    let host = args.required("--host")?;
    let address_file = PathBuf::from(args.required("--address-file")?);
    let count: usize = args.number("--count", 4)?;
    let max_frame: u64 = args.number("--max-frame", 128 << 20)?;
    args.finish()?;
    let key = authkey()?;
    let listener = Listener::bind_with(
        format!("{host}:0"),
        &key,
        Options::new().with_max_frame(max_frame),
    )?;
    write_address_file(&address_file, &listener.local_addr().to_string())?;
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
fn floor_server(mut args: Args) -> anyhow::Result<()> {
    let host = args.required("--host")?;
    let address_file = PathBuf::from(args.required("--address-file")?);
    let mode = args.required("--mode")?;
    let bytes: u64 = args.number("--bytes", 0)?;
    let buffer_len: usize = args.number("--buffer", RAW_CHUNK)?;
    args.finish()?;
    let listener =
        TcpListener::bind((host.as_str(), 0)).with_context(|| format!("cannot bind {host}:0"))?;
    write_address_file(&address_file, &listener.local_addr()?.to_string())?;
    match mode.as_str() {
        // The floor: one connection after the other on the accepting
        // thread, the cheapest way to serve a connect-and-ping (measured
        // here: faster than a thread per connection for 1 client and for
        // 16). Runs until killed.
        "handshake" => loop {
            let (stream, _) = listener.accept()?;
            serve_handshake_floor(stream);
        },
        // For reference: a thread per connection, iris-listener's model.
        "handshake-threaded" => loop {
            let (stream, _) = listener.accept()?;
            std::thread::Builder::new()
                .stack_size(64 << 10)
                .spawn(move || serve_handshake_floor(stream))?;
        },
        "ping" => {
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
        "bulk" => {
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
        other => bail!("unknown --mode {other:?}: handshake, handshake-threaded, ping or bulk"),
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
fn idle(mut args: Args) -> anyhow::Result<()> {
    let address = args.required("--address")?;
    let connections: usize = args.number("--connections", 1000)?;
    let ping = args.flag("--ping");
    let legacy_md5 = args.flag("--allow-legacy-md5");
    args.finish()?;
    let key = authkey()?;
    let options = Options::new().with_legacy_md5(legacy_md5);
    let mut held = Vec::with_capacity(connections);
    for index in 0..connections {
        let mut connection = Client::connect_with(&address, &key, &options)
            .with_context(|| format!("connection {} of {connections}", index + 1))?;
        if ping {
            connection.send(&Message::Ping)?;
            let reply: Reply = connection.recv()?;
            ensure!(reply == Reply::Pong, "Ping answered with {reply:?}");
        }
        held.push(connection);
    }
    print_result(&format!("ready {connections}"))?;
    gate()?;
    drop(held);
    Ok(())
}
