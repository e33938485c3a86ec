//! `cargo xtask callgrind [--short N] [--long N]`: the listener's
//! instructions per streamed flower, sealed and unsealed, counted by
//! valgrind's callgrind. Times move with the load on a shared VM;
//! instruction counts do not.
//!
//! Runs the release `iris-listener --once -q` under `valgrind
//! --tool=callgrind`, fed by `iris-client send - --repeat N` (the seed's
//! flower, native format; the client runs natively), for two stream
//! lengths, sealed (the default) and with `--no-sealing` on both ends. The
//! difference of the two counts over the difference in flowers is what one
//! flower costs: start-up, the handshake and the exit are in both runs and
//! cancel out. Prints a table, writes `target/bench/callgrind.json` and
//! keeps the profiles in `target/bench/callgrind/` for `callgrind_annotate`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use iris_testkit::acknowledged;
use serde::Serialize;

use super::proc::{Gated, Server};
use super::scenarios::SEED_CSV;
use crate::process;

const USAGE: &str = "\
usage: cargo xtask callgrind [--short N] [--long N]

  --short  flowers in the shorter stream (default 100000)
  --long   flowers in the longer stream (default 300000)";

/// The target: sealed at most this many times unsealed.
const TARGET_RATIO: f64 = 1.15;
/// How long one listener run under valgrind (50 to 100 times slower than
/// natively) may take.
const RUN_TIMEOUT: Duration = Duration::from_secs(900);

#[derive(Debug, PartialEq, Eq)]
struct Flags {
    short: u64,
    long: u64,
}

fn parse_flags(args: &[String]) -> anyhow::Result<Flags> {
    let mut flags = Flags {
        short: 100_000,
        long: 300_000,
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let slot = match arg.as_str() {
            "--short" => &mut flags.short,
            "--long" => &mut flags.long,
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?}\n\n{USAGE}"),
        };
        let value = args
            .next()
            .with_context(|| format!("{arg} needs a number"))?;
        *slot = value
            .replace('_', "")
            .parse()
            .with_context(|| format!("{arg} {value:?} is not a number of flowers"))?;
    }
    ensure!(
        flags.short > 0 && flags.long > flags.short,
        "--long ({}) must be more flowers than --short ({}), and --short more than 0",
        flags.long,
        flags.short
    );
    Ok(flags)
}

/// The counts of one kind of session.
#[derive(Debug, Serialize)]
struct Row {
    sessions: &'static str,
    ir_short: u64,
    ir_long: u64,
    ir_per_flower: f64,
}

#[derive(Serialize)]
struct Json<'a> {
    short: u64,
    long: u64,
    valgrind: &'a str,
    rows: &'a [Row],
    sealed_over_unsealed: f64,
    target_at_most: f64,
}

/// Counts, prints and writes the results.
pub(crate) fn run(args: &[String]) -> anyhow::Result<()> {
    let flags = parse_flags(args)?;
    let valgrind = Command::new("valgrind")
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .ok()
        .filter(|output| output.status.success())
        .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_owned())
        .context("valgrind does not run: install it (apt-get install valgrind) and try again")?;
    process::kill_children_on_interrupt()?;
    let root = process::workspace_root();
    let out_dir = process::target_dir(&root)?.join("bench");
    let profiles = out_dir.join("callgrind");
    std::fs::create_dir_all(&profiles)
        .with_context(|| format!("cannot create {}", profiles.display()))?;

    super::step("building iris-listener and iris-client (release)");
    let release = process::cargo_build(&root, true, &["iris-listener", "iris-client"])?;
    let binaries = Binaries {
        listener: process::binary(&release, "iris-listener")?,
        client: process::binary(&release, "iris-client")?,
        key: crate::key::random_hex(32)?,
    };
    let (scratch, _scratch) = super::scratch_dir(&out_dir)?;

    let mut rows = Vec::new();
    for (sessions, name, sealing) in [
        ("unsealed (--no-sealing)", "unsealed", &["--no-sealing"][..]),
        ("sealed (default)", "sealed", &[][..]),
    ] {
        let mut counts = [0; 2];
        for (count, flowers) in counts.iter_mut().zip([flags.short, flags.long]) {
            super::step(&format!("{sessions}: {flowers} flowers under callgrind"));
            *count = binaries.count(
                sealing,
                flowers,
                &profiles.join(format!("{name}-{flowers}.out")),
                &scratch.join(format!("address-{name}-{flowers}")),
            )?;
            eprintln!("    {count} instructions");
        }
        ensure!(
            counts[1] > counts[0],
            "{sessions}: the longer stream took fewer instructions ({} against {}): \
             nothing to divide",
            counts[1],
            counts[0]
        );
        rows.push(Row {
            sessions,
            ir_short: counts[0],
            ir_long: counts[1],
            ir_per_flower: (counts[1] - counts[0]) as f64 / (flags.long - flags.short) as f64,
        });
    }
    let ratio = rows[1].ir_per_flower / rows[0].ir_per_flower;

    println!();
    println!("{}", table(&rows, &flags));
    println!(
        "sealed/unsealed: {ratio:.3}× per flower (target ≤ {TARGET_RATIO}×: {})",
        if ratio <= TARGET_RATIO {
            "met"
        } else {
            "missed"
        }
    );
    println!(
        "{valgrind}; its virtual CPU has AES-NI and AVX2 but not VAES nor AVX-512, \
         so ring's AES-GCM may take another code path than natively"
    );
    let json = serde_json::to_string_pretty(&Json {
        short: flags.short,
        long: flags.long,
        valgrind: &valgrind,
        rows: &rows,
        sealed_over_unsealed: ratio,
        target_at_most: TARGET_RATIO,
    })
    .context("cannot encode the results")?;
    let json_path = out_dir.join("callgrind.json");
    super::write(&json_path, &json)?;
    println!(
        "wrote {}; profiles in {} (callgrind_annotate FILE)",
        json_path.display(),
        profiles.display()
    );
    Ok(())
}

/// What a run needs.
struct Binaries {
    listener: PathBuf,
    client: PathBuf,
    key: String,
}

impl Binaries {
    /// The listener's instructions for one stream of `flowers`, with
    /// `sealing` (the flags of both ends), its profile written to `profile`.
    fn count(
        &self,
        sealing: &[&str],
        flowers: u64,
        profile: &Path,
        address_file: &Path,
    ) -> anyhow::Result<u64> {
        let mut command = process::iris_command(Path::new("valgrind"), &self.key);
        command
            .arg("--tool=callgrind")
            .arg(format!("--callgrind-out-file={}", profile.display()))
            .arg(&self.listener)
            .args(["-q", "--once", "--address", "127.0.0.1:0", "--address-file"])
            .arg(address_file)
            .args(sealing);
        let listener = Server::start("iris-listener under callgrind", &mut command, address_file)?;

        let mut client = process::iris_command(&self.client, &self.key);
        client
            .args(["-q", "send", "-", "--repeat", &flowers.to_string()])
            .args(["--address", &listener.address])
            .args(sealing);
        let mut gated = Gated::spawn("iris-client", vec![client])?;
        gated.release(SEED_CSV.as_bytes())?;
        for client in gated.finish(RUN_TIMEOUT)? {
            client.check()?;
            let acknowledged = acknowledged(&client.output.stdout);
            ensure!(
                acknowledged == Some(flowers),
                "iris-client reports {acknowledged:?} flowers acknowledged, expected {flowers}"
            );
        }
        let (status, log) = listener.finish(RUN_TIMEOUT)?;
        ensure!(status.success(), "iris-listener exited with {status}");
        let sealed = super::scenarios::summary_value(&log, "sealed");
        let expected = u64::from(sealing.is_empty());
        ensure!(
            sealed == Some(expected),
            "iris-listener counted {sealed:?} sealed sessions, expected {expected}"
        );
        let text = std::fs::read_to_string(profile)
            .with_context(|| format!("cannot read {}", profile.display()))?;
        total_instructions(&text)
            .with_context(|| format!("{} has no instruction total", profile.display()))
    }
}

/// The `summary:` (or `totals:`) line of a callgrind profile counting only
/// instructions, the default.
fn total_instructions(profile: &str) -> Option<u64> {
    profile.lines().find_map(|line| {
        line.strip_prefix("summary:")
            .or_else(|| line.strip_prefix("totals:"))?
            .trim()
            .parse()
            .ok()
    })
}

fn table(rows: &[Row], flags: &Flags) -> String {
    let header = [
        "listener sessions".to_owned(),
        format!("Ir, {} flowers", flags.short),
        format!("Ir, {} flowers", flags.long),
        "Ir per flower".to_owned(),
    ];
    let cells: Vec<[String; 4]> = rows
        .iter()
        .map(|row| {
            [
                row.sessions.to_owned(),
                row.ir_short.to_string(),
                row.ir_long.to_string(),
                format!("{:.1}", row.ir_per_flower),
            ]
        })
        .collect();
    let widths: Vec<usize> = (0..4)
        .map(|column| {
            cells
                .iter()
                .map(|row| row[column].chars().count())
                .chain([header[column].chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: &[String; 4]| {
        cells
            .iter()
            .zip(&widths)
            .map(|(cell, &width)| format!("{cell:<width$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_owned()
    };
    let rule: [String; 4] = std::array::from_fn(|column| "-".repeat(widths[column]));
    let mut out = vec![line(&header), line(&rule)];
    out.extend(cells.iter().map(line));
    out.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_parse() {
        let args = |list: &[&str]| list.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            parse_flags(&args(&[])).expect("defaults"),
            Flags {
                short: 100_000,
                long: 300_000
            }
        );
        assert_eq!(
            parse_flags(&args(&["--short", "10_000", "--long", "30000"])).expect("valid"),
            Flags {
                short: 10_000,
                long: 30_000
            }
        );
        assert!(parse_flags(&args(&["--short", "5", "--long", "5"])).is_err());
        assert!(parse_flags(&args(&["--long", "many"])).is_err());
        assert!(parse_flags(&args(&["--short"])).is_err());
    }

    #[test]
    fn the_total_comes_from_the_profile() {
        let profile = "version: 1\nevents: Ir\nsummary: 70351336\nfn=(1) main\ncfn=(2) summary_due\ntotals: 70351336\n";
        assert_eq!(total_instructions(profile), Some(70_351_336));
        assert_eq!(total_instructions("events: Ir\nfn=(1) main\n"), None);
    }
}
