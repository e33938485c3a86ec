//! `iris-listener`: accepts authenticated clients and prints each flower's
//! area, as the seed's Python listener does, for many clients at once.

mod log_budget;
mod output;
mod server;
mod session;
mod workers;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{CommandFactory, Parser};
use iris_app::{ConnectionArgs, Verbosity, init_logging, parse_seconds};
use iris_wire::{Address, Listener};
use signal_hook::iterator::Signals;

use crate::output::{Format, Output};
use crate::server::{Config, Server, Stopper, Summary};

/// Listens for iris clients and Python multiprocessing.connection clients,
/// and prints `Area: <total area>` for every flower they send.
#[derive(Parser, Debug)]
#[command(version, after_help = AFTER_HELP)]
struct Cli {
    #[command(flatten)]
    connection: ConnectionArgs,

    /// Authenticated connections served at once; more are refused.
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..))]
    max_connections: u32,

    /// Handshakes in progress at once, apart from --max-connections, so that
    /// peers without the key cannot take the slots of those with it; more
    /// connections wait in the kernel's backlog until one ends (each within
    /// --handshake-timeout).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..))]
    max_handshakes: u32,

    /// Largest message accepted, in bytes. No message the listener
    /// understands needs more than a few KiB (a flower's pickle is refused
    /// past 4 KiB), and this bounds what each connection can make the
    /// listener hold.
    #[arg(long, value_name = "BYTES", default_value_t = MAX_FRAME)]
    max_frame: u64,

    /// How each flower is printed.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,

    /// Exit after the first authenticated connection ends, as the seed does.
    #[arg(long)]
    once: bool,

    /// Once listening, write the bound address to this file (atomically).
    #[arg(long, value_name = "PATH")]
    address_file: Option<PathBuf>,

    /// Seconds a reply may wait for a client that does not read; then the
    /// connection is dropped, so such a client cannot hold a slot forever.
    #[arg(long, value_name = "SECONDS", default_value_t = 30.0, value_parser = parse_seconds)]
    write_timeout: f64,

    /// Seconds an authenticated client may send nothing at all; then its
    /// connection is closed and its slot freed, so that a client that went
    /// away without closing (its host or link died) cannot hold a slot
    /// forever. 0 waits forever.
    #[arg(long, value_name = "SECONDS", default_value_t = 300.0, value_parser = parse_seconds_or_zero)]
    idle_timeout: f64,

    /// TCP keepalive: after SECONDS without a byte from a client, probe it
    /// every SECONDS/6 (at least 1 s); after 3 unanswered probes, or data
    /// unacknowledged as long (TCP_USER_TIMEOUT), its connection fails and
    /// its slot is freed: a dead client is noticed SECONDS + 3 probe
    /// intervals after it last sent (90 s by default). 0 turns keepalive
    /// off.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    keepalive: u32,

    /// Seconds open connections get to finish after SIGINT or SIGTERM.
    #[arg(long, value_name = "SECONDS", default_value_t = 5.0, value_parser = parse_seconds)]
    shutdown_timeout: f64,

    #[command(flatten)]
    verbosity: Verbosity,
}

const AFTER_HELP: &str = "\
The authkey comes from the IRIS_AUTHKEY environment variable or --authkey-file.

On SIGINT or SIGTERM the listener stops accepting, lets open connections
finish (up to --shutdown-timeout), prints a summary line to stderr and exits 0.
A second signal exits at once.

Exit codes:
  0  stopped by SIGINT or SIGTERM, or --once and its connection succeeded
  1  cannot start (no authkey, address in use, ...), the --once connection
     failed, or a second signal
  2  usage error: bad flags or flag values, including an unparsable --address";

/// The default `--max-frame`: 64 KiB, room to spare over the largest frame
/// a flower takes (the seed's pickle of a pickle of at most
/// `MAX_PICKLE_LEN`, 4 KiB), and small enough that any frame fits the
/// connection's ordinary read buffer (256 KiB), so a connection never holds
/// more than that buffer (see the README's worst case).
const MAX_FRAME: u64 = 64 << 10;
const _: () = assert!(MAX_FRAME >= 4 * iris_protocol::python::MAX_PICKLE_LEN as u64);

/// Exit code of a usage error, as clap's own and the client's.
const USAGE: u8 = 2;

fn main() -> ExitCode {
    if let Some(code) = iris_app::generate::from_args(Cli::command) {
        return code;
    }
    let cli = Cli::parse();
    // A usage error like clap's own, before anything starts.
    if let Err(e) = cli.connection.address.parse::<Address>() {
        eprintln!("error: {e}");
        return ExitCode::from(USAGE);
    }
    init_logging(cli.verbosity);
    match run(&cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: &Cli) -> anyhow::Result<ExitCode> {
    // Signals are caught from before we announce readiness: a SIGTERM that
    // follows `listening on` at once must still stop us gracefully.
    let signals = catch_signals()?;
    let authkey = cli.connection.authkey()?;
    let idle_timeout = Some(Duration::from_secs_f64(cli.idle_timeout)).filter(|t| !t.is_zero());
    let options = cli
        .connection
        .wire_options()
        .with_max_frame(cli.max_frame)
        .with_write_timeout(Some(Duration::from_secs_f64(cli.write_timeout)))
        .with_read_timeout(idle_timeout)
        .with_keepalive(Some(Duration::from_secs(cli.keepalive.into())));
    raise_descriptor_limit(
        u64::from(cli.max_connections) + u64::from(cli.max_handshakes) + SPARE_DESCRIPTORS,
    );
    let listener = Listener::bind_with(&cli.connection.address, &authkey, options)
        .map_err(|e| anyhow::anyhow!(iris_app::with_hint(&e)))?;
    let address = listener.local_addr().to_string();
    if let Some(path) = &cli.address_file {
        write_atomically(path, &format!("{address}\n"))
            .with_context(|| format!("cannot write the address file {}", path.display()))?;
    }
    tracing::info!("listening on {address}");

    let config = Config {
        max_connections: cli.max_connections as usize,
        max_handshakes: cli.max_handshakes as usize,
        once: cli.once,
        shutdown_timeout: Duration::from_secs_f64(cli.shutdown_timeout),
        idle_timeout,
    };
    let server = Server::new(listener, Output::new(cli.format), config);
    stop_on_signals(signals, server.stopper())?;
    let summary = server.run();
    eprintln!("{}", summary_line(&summary));
    let failed = cli.once && summary.failed_sessions > 0;
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// The summary printed to stderr when the listener stops.
fn summary_line(summary: &Summary) -> String {
    let [setosa, versicolor, virginica] = summary.flowers.per_species;
    let mut line = format!(
        "summary: connections={} rejected={} flowers={} setosa={setosa} versicolor={versicolor} virginica={virginica}",
        summary.connections,
        summary.rejected,
        summary.flowers.total(),
    );
    line.push_str(&format!(
        " sealed={} unsealed={}",
        summary.sealed,
        summary.connections - summary.sealed
    ));
    // Only when some were: connections still open when the shutdown bound
    // ran out, whose unacknowledged flowers their clients report.
    if summary.abandoned > 0 {
        line.push_str(&format!(" abandoned={}", summary.abandoned));
    }
    line
}

/// Starts queueing SIGINT and SIGTERM instead of dying of them.
fn catch_signals() -> anyhow::Result<Signals> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    Signals::new([SIGINT, SIGTERM]).context("cannot handle signals")
}

/// The first SIGINT or SIGTERM stops gracefully; a second exits at once.
fn stop_on_signals(mut signals: Signals, stopper: Stopper) -> anyhow::Result<()> {
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let mut seen = 0;
            for signal in signals.forever() {
                seen += 1;
                if seen > 1 {
                    eprintln!(
                        "error: second signal {signal}: exiting without waiting for connections"
                    );
                    std::process::exit(1);
                }
                tracing::info!("signal {signal} received: stopping");
                stopper.stop();
            }
        })
        .context("cannot start the signal thread")?;
    Ok(())
}

/// Descriptors beyond the connections': stdio, the listening socket, the
/// signal pipe, the wake-up connection, with room to spare.
const SPARE_DESCRIPTORS: u64 = 32;

/// Raises the soft limit on open descriptors to `wanted` if it is lower
/// (commonly 1,024, under the default --max-connections alone), within the
/// hard limit; warns if the hard limit is lower. Past the limit, new
/// connections wait in the backlog (see `server.rs`).
fn raise_descriptor_limit(wanted: u64) {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return;
    };
    if soft >= wanted {
        return;
    }
    let raised = wanted.min(hard);
    if raised > soft {
        if let Err(e) = setrlimit(Resource::RLIMIT_NOFILE, raised, hard) {
            tracing::warn!("cannot raise the limit on open files from {soft} to {raised}: {e}");
            return;
        }
        tracing::debug!("raised the limit on open files from {soft} to {raised}");
    }
    if raised < wanted {
        tracing::warn!(
            "the limit on open files is {raised} (ulimit -n, hard limit {hard}), fewer than the {wanted} that --max-connections and --max-handshakes need: past it, new connections wait in the backlog; raise the hard limit or lower --max-connections"
        );
    }
}

/// Parses a number of seconds where 0 means "no limit".
fn parse_seconds_or_zero(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(0.0) => Ok(0.0),
        _ => parse_seconds(text).map_err(|e| format!("{e}, or 0 for no limit")),
    }
}

/// Writes `contents` to a temporary file beside `path`, then renames it into
/// place, so a reader never sees a partial address.
fn write_atomically(path: &Path, contents: &str) -> std::io::Result<()> {
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(format!(".tmp-{}", std::process::id()));
    let temporary = PathBuf::from(temporary);
    std::fs::write(&temporary, contents)?;
    std::fs::rename(&temporary, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&temporary);
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn the_summary_line_is_stable() {
        let mut summary = Summary {
            connections: 3,
            sealed: 2,
            rejected: 1,
            ..Summary::default()
        };
        summary.flowers.per_species = [50, 49, 51];
        assert_eq!(
            summary_line(&summary),
            "summary: connections=3 rejected=1 flowers=150 setosa=50 versicolor=49 virginica=51 sealed=2 unsealed=1"
        );
        summary.abandoned = 2;
        assert!(summary_line(&summary).ends_with("sealed=2 unsealed=1 abandoned=2"));
    }

    #[test]
    fn an_idle_timeout_of_zero_means_none() {
        assert_eq!(parse_seconds_or_zero("0"), Ok(0.0));
        assert_eq!(parse_seconds_or_zero("2.5"), Ok(2.5));
        for bad in ["-1", "nan", "soon"] {
            let error = parse_seconds_or_zero(bad).expect_err(bad);
            assert!(error.ends_with("or 0 for no limit"), "{error}");
        }
    }

    #[test]
    fn the_address_file_is_replaced_whole() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("address");
        write_atomically(&path, "old\n").expect("write");
        write_atomically(&path, "127.0.0.1:4000\n").expect("rewrite");
        assert_eq!(
            std::fs::read_to_string(&path).expect("read"),
            "127.0.0.1:4000\n"
        );
        assert_eq!(std::fs::read_dir(dir.path()).expect("list").count(), 1);
    }
}
