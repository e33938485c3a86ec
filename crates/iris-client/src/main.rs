//! `iris-client`: sends Iris flowers to an iris listener and checks that the
//! listener acknowledged every one; `ping` checks that a listener is up.
//!
//! This file only parses flags, sets up logging, dispatches, and turns
//! errors into exit codes; the work is in the modules.

mod connect;
mod exit;
mod feed;
mod input;
mod ping;
mod send;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, CommandFactory, Parser, Subcommand};
use iris_app::{ConnectionArgs, Verbosity};
use iris_model::Iris;

/// Send Iris flowers to an iris listener and check every one arrived.
///
/// The authkey comes from the IRIS_AUTHKEY environment variable or from
/// --authkey-file, never from a command-line value.
#[derive(Parser, Debug)]
#[command(name = "iris-client", version, after_help = exit::HELP)]
struct Cli {
    #[command(subcommand)]
    command: Command,

    /// Global: accepted before or after the subcommand.
    #[command(flatten)]
    connection: ConnectionArgs,

    #[command(flatten)]
    verbosity: Verbosity,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Send flowers as they are read, then wait until the listener
    /// acknowledges how many it received; fail (exit 5) unless that is
    /// every one.
    ///
    /// FILE (or standard input) is streamed: each flower is sent as soon as
    /// its row is parsed, and what is queued is written whenever the input
    /// has nothing more ready, so a live feed (`producer | iris-client send
    /// -`) arrives row by row and a large file in large writes, in constant
    /// memory whatever its size. A bad row stops the send there: the
    /// flowers before it were sent and acknowledged, and the client exits 6
    /// naming the line. --check-first reads and checks the whole input
    /// before connecting instead, so a bad row sends nothing.
    ///
    /// Ctrl-C or SIGTERM stops reading; what was read is sent and the
    /// acknowledged count reported (exit 130 or 143). A second signal exits
    /// at once.
    ///
    /// Toward an iris listener flowers go as native messages; toward any
    /// other (a Python multiprocessing.connection listener, whose challenge
    /// has no iris mark) as the pickles the seed's Python client sends, and
    /// since Python listeners acknowledge nothing, success then means "sent".
    #[command(after_help = exit::HELP)]
    Send(SendArgs),

    /// Check that a listener is up and the key is right, and time round trips.
    #[command(after_help = exit::HELP)]
    Ping(PingArgs),
}

#[derive(Args, Debug)]
struct SendArgs {
    /// Data set to send, or - for standard input: CSV whose first line is
    /// the header sepal_length,sepal_width,petal_length,petal_width,species
    /// (see --no-header and --format). Without FILE or --flower, sends the
    /// single flower 5.1,3.5,1.4,0.2,setosa.
    #[arg(value_name = "FILE", conflicts_with = "flower")]
    file: Option<PathBuf>,

    /// How FILE is written: csv, or json for JSON Lines, one object per
    /// line with the fields of `iris-listener --format json` (sepal_length,
    /// sepal_width, petal_length, petal_width, species; others such as area
    /// are ignored), so a listener's output can be replayed.
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = InputFormat::Csv)]
    format: InputFormat,

    /// The CSV has no header line: every line is a flower, in the columns
    /// sepal_length,sepal_width,petal_length,petal_width,species.
    #[arg(long)]
    no_header: bool,

    /// Read and check the whole input before connecting, so that a bad row
    /// sends nothing (memory then grows with the input).
    #[arg(long)]
    check_first: bool,

    /// A flower to send, as SEPAL_LENGTH,SEPAL_WIDTH,PETAL_LENGTH,PETAL_WIDTH,SPECIES
    /// (repeatable).
    #[arg(long, value_name = "SL,SW,PL,PW,SPECIES", value_parser = input::parse_flower)]
    flower: Vec<Iris>,

    /// Send the input N times over, for load tests. A file of up to 65,536
    /// flowers is replayed from memory after its first pass, a larger one
    /// read again for each pass. Standard input cannot be read twice: with
    /// N > 1 it is read whole (and checked) before connecting, in memory.
    #[arg(long, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u64).range(1..))]
    repeat: u64,

    /// How flowers are encoded: auto picks native toward an iris listener
    /// and pickles toward any other; native iris messages are acknowledged
    /// by an iris listener; pickle sends exactly what the Python seed
    /// client sends (for a Python listener, which sends no acknowledgement).
    #[arg(long, value_enum, default_value_t = CodecName::Auto)]
    codec: CodecName,

    /// For pickles: the Python class flowers are pickled as.
    #[arg(long, value_name = "MODULE.CLASS", default_value = "iris.Iris",
          value_parser = parse_class)]
    class: (String, String),
}

/// The `--format` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum InputFormat {
    /// Comma-separated values, with the header line unless --no-header.
    Csv,
    /// JSON Lines, as `iris-listener --format json` writes them.
    Json,
}

/// The `--codec` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum CodecName {
    /// Native toward an iris listener, pickles toward any other.
    Auto,
    /// Postcard messages; the listener acknowledges the count.
    Native,
    /// `pickle.dumps(pickle.dumps(Iris(...)))` per flower, then `'close'`.
    Pickle,
}

/// Splits `module.Class` at its last dot (modules may be dotted).
fn parse_class(text: &str) -> Result<(String, String), String> {
    match text.rsplit_once('.') {
        Some((module, class)) if !module.is_empty() && !class.is_empty() => {
            Ok((module.to_owned(), class.to_owned()))
        }
        _ => Err(format!(
            "expected MODULE.CLASS, such as iris.Iris, got {text:?}"
        )),
    }
}

#[derive(Args, Debug)]
struct PingArgs {
    /// Number of pings, sent back to back.
    #[arg(long, short = 'c', value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..))]
    count: u32,

    /// Seconds to wait for each reply.
    #[arg(long, value_name = "SECONDS", default_value_t = 5.0,
          value_parser = iris_app::parse_seconds)]
    timeout: f64,
}

fn main() -> ExitCode {
    if let Some(code) = iris_app::generate::from_args(<Cli as clap::CommandFactory>::command) {
        return code;
    }
    // Usage errors exit here with clap's own code 2 (and --help with 0).
    let cli = Cli::parse();
    iris_app::init_logging(cli.verbosity);
    let result = match cli.command {
        Command::Send(args) => {
            let format = match (args.format, args.no_header) {
                (InputFormat::Csv, no_header) => input::Format::Csv { header: !no_header },
                (InputFormat::Json, false) => input::Format::JsonLines,
                (InputFormat::Json, true) => Cli::command()
                    .error(
                        clap::error::ErrorKind::ArgumentConflict,
                        "--no-header is for CSV; JSON Lines have no header",
                    )
                    .exit(),
            };
            let codec = match args.codec {
                CodecName::Auto => send::Codec::Auto,
                CodecName::Native => send::Codec::Native,
                CodecName::Pickle => send::Codec::Pickle,
            };
            send::run(
                &cli.connection,
                send::Plan {
                    input: input::Input::from_args(args.file, args.flower),
                    format,
                    repeat: args.repeat,
                    check_first: args.check_first,
                    codec,
                    class: args.class,
                },
            )
        }
        Command::Ping(args) => ping::run(
            &cli.connection,
            args.count,
            Duration::from_secs_f64(args.timeout),
        ),
    };
    if tracing::enabled!(tracing::Level::DEBUG) {
        log_peak_memory();
    }
    match result {
        Ok(()) => ExitCode::from(exit::SUCCESS),
        Err(failure) => {
            eprintln!("error: {:#}", failure.error);
            ExitCode::from(failure.code)
        }
    }
}

/// Logs the process's peak resident memory (Linux's VmHWM), so that `-v`
/// shows what streaming an input cost; the end-to-end tests read it.
fn log_peak_memory() {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    if let Some(peak) = status.lines().find_map(|line| line.strip_prefix("VmHWM:")) {
        tracing::debug!("peak resident memory: {}", peak.trim().replace("kB", "KiB"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_split_at_the_last_dot() {
        assert_eq!(parse_class("iris.Iris"), Ok(("iris".into(), "Iris".into())));
        assert_eq!(
            parse_class("garden.flowers.Iris"),
            Ok(("garden.flowers".into(), "Iris".into()))
        );
        for bad in ["Iris", ".Iris", "iris.", ""] {
            assert!(parse_class(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn flower_and_file_exclude_each_other() {
        let result = Cli::try_parse_from([
            "iris-client",
            "send",
            "data.csv",
            "--flower",
            "5.1,3.5,1.4,0.2,setosa",
        ]);
        assert!(result.is_err());
    }

    #[test]
    fn repeat_and_count_must_be_positive() {
        for args in [
            &["iris-client", "send", "--repeat", "0"][..],
            &["iris-client", "ping", "--count", "0"],
        ] {
            assert!(Cli::try_parse_from(args).is_err(), "{args:?}");
        }
    }
}
