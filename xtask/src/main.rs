//! Project automation, run as `cargo xtask TASK` (an alias in
//! `.cargo/config.toml`).
//!
//! Tasks:
//! - `demo`: builds the binaries and runs the whole system end to end.
//! - `bench`: iris against CPython's multiprocessing.connection, side by
//!   side (see `bench.rs`).
//! - `fuzz`: runs the fuzz targets in `fuzz/`.

mod bench;
mod demo;
mod fuzz;
mod process;

use std::process::ExitCode;

const USAGE: &str = "\
usage: cargo xtask TASK

tasks:
  demo    build iris-listener and iris-client, start a listener, send
          data/iris.csv from three clients at once, and check the results
  bench   [--quick] [--only NAME[,NAME...]] [--save]
          iris against CPython's multiprocessing.connection, side by side:
          a table, target/bench/latest.json and target/bench/ratios.svg
  fuzz [TARGET...] [--seconds N]
          run the cargo-fuzz targets in fuzz/ (all, 60 s each, by default),
          installing cargo-fuzz if needed; needs the nightly toolchain
  help    show this message";

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let task = args.next();
    let rest: Vec<String> = args.collect();
    let result = match task.as_deref() {
        Some("demo") => demo::run(&rest),
        Some("bench") => bench::run(&rest),
        Some("fuzz") => fuzz::run(&rest),
        Some("help" | "-h" | "--help") => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Some(other) => {
            eprintln!("xtask: unknown task {other:?}\n\n{USAGE}");
            return ExitCode::from(2);
        }
        None => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("xtask: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
