//! `cargo xtask bench [--quick] [--only NAME[,NAME…]] [--save]`: iris
//! against CPython's `multiprocessing.connection`, side by side.
//!
//! Builds `iris-listener`, `iris-client` and `iris-bench` in release, then
//! runs each scenario (see `bench_scenarios.rs`) for iris, for CPython (the
//! programs in `bench/`) and, where there is one, for a raw-socket floor,
//! alternating them round by round (A B A B …). It prints one table
//! (median, min–max, ratios, targets), and writes under `target/bench/`:
//! `latest.json` (every run, plus the machine), `latest.md` (the table in
//! Markdown) and `ratios.svg` (the chart). `--save` also copies the chart to
//! `bench/ratios.svg` for the README.
//!
//! Everything runs on loopback (127.0.0.0/8); every loop is bounded in
//! count and time; every child process is killed on error, on exit and on
//! Ctrl-C. Nothing here asserts anything about timings.

#[path = "bench_callgrind.rs"]
pub(crate) mod callgrind;
#[path = "bench_chart.rs"]
mod chart;
#[path = "bench_proc.rs"]
pub(crate) mod proc;
#[path = "bench_report.rs"]
mod report;
#[path = "bench_scenarios.rs"]
mod scenarios;

use std::cell::{Cell, RefCell};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail, ensure};
use serde::Serialize;

use crate::process;
use report::Metric;

use process::AUTHKEY_ENV;

const USAGE: &str = "\
usage: cargo xtask bench [--quick] [--only NAME[,NAME...]] [--save]

  --quick   small sizes, three rounds, no extra CPython versions (CI smoke test)
  --only    run only these scenarios: stream, fan-in, handshake, ping, bulk, idle
  --save    also copy the chart to bench/ratios.svg (for the README)";

/// The command line.
#[derive(Debug, Default)]
struct Flags {
    quick: bool,
    only: Vec<String>,
    save: bool,
}

fn parse_flags(args: &[String]) -> anyhow::Result<Flags> {
    let mut flags = Flags::default();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => flags.quick = true,
            "--save" => flags.save = true,
            "--only" => {
                let names = args.next().context("--only needs a scenario name")?;
                flags
                    .only
                    .extend(names.split(',').map(|name| name.trim().to_owned()));
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?}\n\n{USAGE}"),
        }
    }
    for name in &flags.only {
        ensure!(
            scenarios::NAMES.contains(&name.as_str()),
            "unknown scenario {name:?}: the scenarios are {}",
            scenarios::NAMES.join(", ")
        );
    }
    Ok(flags)
}

/// A CPython interpreter found on this machine.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Python {
    /// `3.13`.
    pub(crate) version: String,
    /// `3.13.0`.
    pub(crate) full_version: String,
    pub(crate) path: PathBuf,
}

impl Python {
    /// `CPython 3.13`.
    pub(crate) fn label(&self) -> String {
        format!("CPython {}", self.version)
    }
}

/// What the scenarios share: binaries, interpreters, a scratch directory,
/// the authkey, fresh loopback addresses, and the raw run records.
pub(crate) struct Env {
    pub(crate) quick: bool,
    pub(crate) listener_bin: PathBuf,
    pub(crate) client_bin: PathBuf,
    pub(crate) bench_bin: PathBuf,
    /// The repository's `bench/` directory (the Python programs).
    pub(crate) python_dir: PathBuf,
    /// The baseline: CPython 3.13, or the newest found.
    pub(crate) baseline: Option<Python>,
    /// The other versions found, measured as extra rows (not with --quick).
    pub(crate) extras: Vec<Python>,
    scratch: PathBuf,
    key: String,
    next_host: Cell<u32>,
    next_file: Cell<u32>,
    runs: RefCell<Vec<RunRecord>>,
    notes: RefCell<Vec<String>>,
}

/// One run of one side of a scenario, as written to the JSON.
#[derive(Debug, Serialize)]
pub(crate) struct RunRecord {
    pub(crate) scenario: &'static str,
    pub(crate) variant: String,
    pub(crate) side: String,
    pub(crate) round: usize,
    pub(crate) values: serde_json::Value,
}

impl Env {
    /// A loopback address not used before in this run, `127.42.X.Y`:
    /// every server gets its own, so that the TIME_WAIT sockets of one run's
    /// connection loops never crowd the next run's ports.
    pub(crate) fn fresh_host(&self) -> String {
        let n = self.next_host.get();
        self.next_host.set(n + 1);
        format!("127.42.{}.{}", (n / 250) % 250, n % 250 + 1)
    }

    /// A path in the scratch directory not used before.
    pub(crate) fn fresh_file(&self, stem: &str) -> PathBuf {
        let n = self.next_file.get();
        self.next_file.set(n + 1);
        self.scratch.join(format!("{stem}-{n}"))
    }

    /// A command for one of our binaries, with the authkey and nothing of
    /// the caller's iris settings.
    pub(crate) fn iris_command(&self, program: &Path) -> Command {
        process::iris_command(program, &self.key)
    }

    /// A command running `bench/SCRIPT` with `python`.
    pub(crate) fn python_command(&self, python: &Python, script: &str) -> Command {
        let mut command = Command::new(&python.path);
        command
            .arg(self.python_dir.join(script))
            .env(AUTHKEY_ENV, &self.key)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .env_remove("PYTHONPATH")
            .env_remove("PYTHONSTARTUP");
        command
    }

    pub(crate) fn record(&self, record: RunRecord) {
        self.runs.borrow_mut().push(record);
    }

    pub(crate) fn note(&self, note: String) {
        eprintln!("    note: {note}");
        self.notes.borrow_mut().push(note);
    }
}

/// A scratch directory under `out_dir`, removed when the guard drops or
/// the xtask is interrupted.
fn scratch_dir(out_dir: &Path) -> anyhow::Result<(PathBuf, RemoveOnDrop)> {
    let scratch = out_dir.join(format!("tmp-{}", std::process::id()));
    std::fs::create_dir_all(&scratch)
        .with_context(|| format!("cannot create {}", scratch.display()))?;
    process::remove_on_interrupt(&scratch);
    Ok((scratch.clone(), RemoveOnDrop(scratch)))
}

/// Runs the benchmarks.
pub(crate) fn run(args: &[String]) -> anyhow::Result<()> {
    let flags = parse_flags(args)?;
    process::kill_children_on_interrupt()?;
    let started = Instant::now();
    let root = process::workspace_root();
    let target_dir = process::target_dir(&root)?;

    step("building iris-listener, iris-client and iris-bench (release)");
    let release =
        process::cargo_build(&root, true, &["iris-listener", "iris-client", "iris-bench"])?;
    let bin = |name: &str| process::binary(&release, name);

    let out_dir = target_dir.join("bench");
    std::fs::create_dir_all(&out_dir)
        .with_context(|| format!("cannot create {}", out_dir.display()))?;
    let (scratch, _scratch) = scratch_dir(&out_dir)?;

    let (baseline, extras, mut notes) = find_pythons(flags.quick);
    for note in &notes {
        eprintln!("    note: {note}");
    }
    let machine = Machine::describe();
    step(&format!(
        "machine: {} ({} cores), Linux {}; baseline {}",
        machine.cpu,
        machine.cores,
        machine.kernel,
        baseline
            .as_ref()
            .map_or_else(|| "none (no CPython found)".to_owned(), Python::label)
    ));

    let env = Env {
        quick: flags.quick,
        listener_bin: bin("iris-listener")?,
        client_bin: bin("iris-client")?,
        bench_bin: bin("iris-bench")?,
        python_dir: root.join("bench"),
        baseline,
        extras,
        scratch,
        key: crate::key::random_hex(32)?,
        next_host: Cell::new(0),
        next_file: Cell::new(0),
        runs: RefCell::new(Vec::new()),
        notes: RefCell::new(Vec::new()),
    };

    let mut metrics: Vec<Metric> = Vec::new();
    let mut failures = Vec::new();
    let mut durations: Vec<(&str, f64)> = Vec::new();
    for &name in scenarios::NAMES {
        if !flags.only.is_empty() && !flags.only.iter().any(|only| only == name) {
            continue;
        }
        step(&format!("scenario {name}"));
        let scenario_started = Instant::now();
        match scenarios::run(name, &env, &metrics) {
            Ok(mut measured) => metrics.append(&mut measured),
            Err(error) => {
                eprintln!("    scenario {name} FAILED: {error:#}");
                failures.push(format!("{name}: {error:#}"));
            }
        }
        let took = scenario_started.elapsed().as_secs_f64();
        eprintln!("    ({name} took {took:.1}s)");
        durations.push((name, took));
    }
    let elapsed = started.elapsed();
    notes.extend(env.notes.borrow().iter().cloned());

    let baseline_label = env
        .baseline
        .as_ref()
        .map_or_else(|| "CPython".to_owned(), Python::label);
    let table = report::plain_table(&metrics, &baseline_label);
    println!();
    println!("{table}");
    let missed: Vec<String> = metrics
        .iter()
        .filter(|metric| metric.goals_met() == Some(false))
        .map(|metric| format!("{} {}", metric.scenario, metric.name))
        .collect();
    let checked = metrics
        .iter()
        .filter(|metric| metric.goals_met().is_some())
        .count();
    if checked > 0 {
        println!(
            "targets: {} of {checked} met{}",
            checked - missed.len(),
            if missed.is_empty() {
                String::new()
            } else {
                format!("; missed: {}", missed.join(", "))
            }
        );
    }
    for note in &notes {
        println!("note: {note}");
    }
    let took: Vec<String> = durations
        .iter()
        .map(|(name, seconds)| format!("{name} {seconds:.0}s"))
        .collect();
    println!(
        "{} mode, {:.0}s ({}); {}",
        if flags.quick { "quick" } else { "full" },
        elapsed.as_secs_f64(),
        took.join(", "),
        machine.one_line()
    );

    // The outputs.
    let markdown = report::markdown_table(&metrics, &baseline_label);
    write(&out_dir.join("latest.md"), &markdown)?;
    let json = Json {
        format: 1,
        mode: if flags.quick { "quick" } else { "full" },
        started_unix: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs().saturating_sub(elapsed.as_secs()))
            .unwrap_or(0),
        duration_s: elapsed.as_secs_f64(),
        scenario_durations_s: durations.iter().copied().collect(),
        machine: &machine,
        baseline: env.baseline.as_ref(),
        extras: &env.extras,
        notes: &notes,
        failures: &failures,
        metrics: &metrics,
        runs: &env.runs.borrow(),
    };
    let json = serde_json::to_string_pretty(&json).context("cannot encode the results")?;
    write(&out_dir.join("latest.json"), &json)?;
    let chart_path = out_dir.join("ratios.svg");
    let footnote = format!(
        "{} ({} cores), Linux {}; {}",
        machine.cpu,
        machine.cores,
        machine.kernel,
        if flags.quick { "--quick" } else { "full run" }
    );
    let drawn = chart::draw(&chart_path, &metrics, &baseline_label, &footnote)?;
    println!(
        "wrote {}, {}{}",
        out_dir.join("latest.json").display(),
        out_dir.join("latest.md").display(),
        if drawn {
            format!(" and {}", chart_path.display())
        } else {
            " (no chart: nothing to compare with)".to_owned()
        }
    );
    if flags.save && drawn {
        let saved = root.join("bench").join("ratios.svg");
        std::fs::copy(&chart_path, &saved)
            .with_context(|| format!("cannot copy the chart to {}", saved.display()))?;
        println!("saved the chart as {}", saved.display());
    }
    if !failures.is_empty() {
        bail!(
            "{} scenario(s) failed: {}",
            failures.len(),
            failures.join("; ")
        );
    }
    Ok(())
}

#[derive(Serialize)]
struct Json<'a> {
    format: u32,
    mode: &'static str,
    started_unix: u64,
    duration_s: f64,
    scenario_durations_s: std::collections::BTreeMap<&'a str, f64>,
    machine: &'a Machine,
    baseline: Option<&'a Python>,
    extras: &'a [Python],
    notes: &'a [String],
    failures: &'a [String],
    metrics: &'a [Metric],
    runs: &'a [RunRecord],
}

fn step(message: &str) {
    eprintln!("==> {message}");
}

fn write(path: &Path, contents: &str) -> anyhow::Result<()> {
    std::fs::write(path, contents).with_context(|| format!("cannot write {}", path.display()))
}

struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The CPythons to compare with: 3.13 as the baseline (else the newest
/// found), the others as extras (none with `quick`). Missing ones are
/// skipped with a note.
fn find_pythons(quick: bool) -> (Option<Python>, Vec<Python>, Vec<String>) {
    let root = iris_testkit::pyenv_root();
    let candidates = [
        ("3.11", PathBuf::from("python3")),
        ("3.12", root.join("versions/3.12.1/bin/python")),
        ("3.13", root.join("versions/3.13.0/bin/python")),
    ];
    let mut found = Vec::new();
    let mut notes = Vec::new();
    for (version, path) in candidates {
        match iris_testkit::full_version_of(&path) {
            Some(full) if full.starts_with(&format!("{version}.")) => found.push(Python {
                version: version.to_owned(),
                full_version: full,
                path,
            }),
            Some(full) => notes.push(format!(
                "skipping CPython {version}: {} is CPython {full}",
                path.display()
            )),
            None => notes.push(format!(
                "skipping CPython {version}: {} does not run",
                path.display()
            )),
        }
    }
    let baseline = found.pop();
    match &baseline {
        Some(python) if python.version != "3.13" => notes.push(format!(
            "CPython 3.13 not found: the baseline is {} (the issue's targets are against 3.13)",
            python.label()
        )),
        Some(_) => {}
        None => notes.push("no CPython found: only iris and the floors are measured".to_owned()),
    }
    let extras = if quick { Vec::new() } else { found };
    (baseline, extras, notes)
}

/// The machine the numbers come from.
#[derive(Debug, Serialize)]
pub(crate) struct Machine {
    cpu: String,
    cores: usize,
    kernel: String,
    memory_gib: f64,
    rustc: String,
    open_files: Option<(u64, u64)>,
    tcp_tw_reuse: Option<String>,
}

impl Machine {
    fn describe() -> Machine {
        let lscpu = Command::new("lscpu")
            .env("LC_ALL", "C")
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .ok()
            .map(|output| String::from_utf8_lossy(&output.stdout).into_owned())
            .unwrap_or_default();
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let field = |text: &str, name: &str| {
            text.lines().find_map(|line| {
                let (key, value) = line.split_once(':')?;
                (key.trim() == name).then(|| value.trim().to_owned())
            })
        };
        let cpu = field(&lscpu, "Model name")
            .or_else(|| field(&cpuinfo, "model name"))
            .unwrap_or_else(|| "unknown CPU".to_owned());
        let memory_gib = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|text| {
                let kib: f64 = field(&text, "MemTotal")?
                    .trim_end_matches("kB")
                    .trim()
                    .parse()
                    .ok()?;
                Some((kib / 1024.0 / 1024.0 * 10.0).round() / 10.0)
            })
            .unwrap_or(0.0);
        let rustc = Command::new(std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into()))
            .arg("--version")
            .output()
            .ok()
            .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_owned())
            .unwrap_or_default();
        Machine {
            cpu,
            cores: std::thread::available_parallelism().map_or(0, usize::from),
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map(|text| text.trim().to_owned())
                .unwrap_or_default(),
            memory_gib,
            rustc,
            open_files: nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
                .ok(),
            tcp_tw_reuse: std::fs::read_to_string("/proc/sys/net/ipv4/tcp_tw_reuse")
                .ok()
                .map(|text| text.trim().to_owned()),
        }
    }

    fn one_line(&self) -> String {
        let mut line = format!(
            "{} ({} cores, {} GiB), Linux {}",
            self.cpu, self.cores, self.memory_gib, self.kernel
        );
        if !self.rustc.is_empty() {
            let _ = write!(line, ", {}", self.rustc);
        }
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_parse() {
        let args = |list: &[&str]| list.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let flags = parse_flags(&args(&["--quick", "--only", "stream,ping", "--save"]))
            .expect("valid flags");
        assert!(flags.quick && flags.save);
        assert_eq!(flags.only, ["stream", "ping"]);
        assert!(parse_flags(&args(&["--only", "nope"])).is_err());
        assert!(parse_flags(&args(&["--fast"])).is_err());
    }
}
