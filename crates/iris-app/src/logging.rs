//! Logging to stderr through tracing.

use std::io::IsTerminal;

use clap::Args;
use tracing_subscriber::EnvFilter;

/// `-v` / `-q` flags; `RUST_LOG`, when set, takes precedence.
#[derive(Args, Debug, Clone, Copy, Default)]
pub struct Verbosity {
    /// More log output (-v debug, -vv trace).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Less log output (-q warnings only, -qq errors only).
    #[arg(short, long, action = clap::ArgAction::Count, global = true, conflicts_with = "verbose")]
    pub quiet: u8,
}

impl Verbosity {
    /// The level these flags ask for, from the default `info`.
    pub fn level(&self) -> tracing::Level {
        match (self.verbose, self.quiet) {
            (0, 0) => tracing::Level::INFO,
            (1, _) => tracing::Level::DEBUG,
            (v, _) if v >= 2 => tracing::Level::TRACE,
            (_, 1) => tracing::Level::WARN,
            _ => tracing::Level::ERROR,
        }
    }
}

/// Sends log lines to stderr, filtered by `RUST_LOG` if set, else by
/// `verbosity`. Standard output stays free for the program's own output.
pub fn init_logging(verbosity: Verbosity) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(verbosity.level().as_str().to_ascii_lowercase()));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .init();
}
