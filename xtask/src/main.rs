//! Project automation, run as `cargo xtask TASK` (an alias in
//! `.cargo/config.toml`).
//!
//! Tasks:
//! - `demo`: builds the binaries and runs the whole system end to end.
//! - `bench`: iris against CPython's multiprocessing.connection, side by
//!   side (see `bench.rs`).
//! - `callgrind`: the listener's instructions per streamed flower, sealed
//!   and unsealed (see `bench_callgrind.rs`).
//! - `soak`: a thousand authenticated clients at once, mixed with hostile
//!   peers, and an exact reckoning of every flower (see `soak.rs`).
//! - `fuzz`: runs the fuzz targets in `fuzz/`.
//! - `generate`: man pages and shell completions of both binaries.
//! - `test`: the test suite, with the CPython interpreters it needs, ending
//!   with what was covered (see `test.rs`).

mod bench;
mod demo;
mod fuzz;
mod generate;
mod key;
mod process;
mod soak;
mod test;

use std::process::ExitCode;

const USAGE: &str = "\
usage: cargo xtask TASK

tasks:
  test    [CARGO TEST ARGS...]
          cargo test --workspace with CPython 3.11, 3.12.1 and 3.13.0 (installed
          with pyenv or uv when missing; a missing one fails the run), ending
          with what was covered; IRIS_SKIP_INTEROP=1 skips interop on purpose;
          as root or under CI, installs iproute2 and haproxy (apt-get) for the
          network-namespace tests when missing
  demo    build iris-listener and iris-client, start a listener, send
          data/iris.csv from three clients at once, and check the results
  bench   [--quick] [--only NAME[,NAME...]] [--save]
          iris against CPython's multiprocessing.connection, side by side:
          a table, target/bench/latest.json and target/bench/ratios.svg
  callgrind [--short N] [--long N]
          iris-listener's instructions per streamed flower, sealed and
          unsealed, under valgrind's callgrind (two stream lengths, 100,000
          and 300,000 flowers by default): a table and target/bench/callgrind.json
  soak    [--clients N] [--flowers M] [--seconds S] [--quick]
          a release listener under N authenticated clients at once (1,000 x
          1,000 flowers by default; --quick: 100 x 100) mixed with silent,
          garbage, wrong-key, dropped and SIGKILLed peers; fails unless every
          count matches the listener's summary; reports its peak RSS
  fuzz [TARGET...] [--seconds N]
          run the cargo-fuzz targets in fuzz/ (all, 60 s each, by default),
          installing cargo-fuzz if needed; needs the nightly toolchain
  generate [DIR]
          man pages and bash/zsh/fish/elvish/powershell completions of both
          binaries, written to DIR (default target/generated)
  help    show this message";

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let task = args.next();
    let rest: Vec<String> = args.collect();
    let result = match task.as_deref() {
        Some("test") => test::run(&rest),
        Some("demo") => demo::run(&rest),
        Some("bench") => bench::run(&rest),
        Some("callgrind") => bench::callgrind::run(&rest),
        Some("soak") => soak::run(&rest),
        Some("fuzz") => fuzz::run(&rest),
        Some("generate") => generate::run(&rest),
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
