//! `cargo xtask fuzz [TARGET...] [--seconds N]`: runs the cargo-fuzz targets
//! in `fuzz/` (one per decoder of untrusted bytes), installing cargo-fuzz
//! first if this machine lacks it.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, bail, ensure};

/// Every target in `fuzz/Cargo.toml`.
const TARGETS: [&str; 8] = [
    "pickle_decode",
    "python_frame",
    "message",
    "frame_header",
    "frame_decoder",
    "handshake_listener",
    "handshake_client",
    "record_opener",
];

/// Seconds per target unless `--seconds` says otherwise.
const DEFAULT_SECONDS: u64 = 60;

pub(crate) fn run(args: &[String]) -> anyhow::Result<()> {
    let (targets, seconds) = parse(args)?;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("xtask lives in the workspace")?;
    let fuzz_dir = root.join("fuzz");
    ensure_cargo_fuzz()?;
    for target in &targets {
        println!("==> fuzzing {target} for {seconds} s");
        let corpus = fuzz_dir.join("corpus").join(target);
        std::fs::create_dir_all(&corpus)
            .with_context(|| format!("cannot create {}", corpus.display()))?;
        let status = Command::new("cargo")
            .current_dir(&fuzz_dir)
            .args(["+nightly", "fuzz", "run", target])
            .arg(&corpus)
            .arg(fuzz_dir.join("seeds").join(target))
            .args([
                "--",
                &format!("-max_total_time={seconds}"),
                "-rss_limit_mb=2048",
            ])
            .status()
            .context("cannot run cargo fuzz")?;
        ensure!(
            status.success(),
            "fuzz target {target} found a failure ({status}); the input is in fuzz/artifacts/{target}/"
        );
        println!("==> {target}: no failure in {seconds} s");
    }
    Ok(())
}

fn parse(args: &[String]) -> anyhow::Result<(Vec<String>, u64)> {
    let mut targets = Vec::new();
    let mut seconds = DEFAULT_SECONDS;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--seconds" => {
                let value = args.next().context("--seconds needs a number")?;
                seconds =
                    value.parse().ok().filter(|&s| s > 0).with_context(|| {
                        format!("--seconds takes a positive number, got {value:?}")
                    })?;
            }
            target if TARGETS.contains(&target) => targets.push(target.to_owned()),
            other => bail!(
                "unknown fuzz target or flag {other:?}; targets: {}",
                TARGETS.join(", ")
            ),
        }
    }
    if targets.is_empty() {
        targets = TARGETS.iter().map(|&t| t.to_owned()).collect();
    }
    Ok((targets, seconds))
}

/// cargo-fuzz comes from crates.io; libFuzzer needs the nightly toolchain.
fn ensure_cargo_fuzz() -> anyhow::Result<()> {
    let nightly = Command::new("cargo")
        .args(["+nightly", "--version"])
        .output()
        .is_ok_and(|output| output.status.success());
    ensure!(
        nightly,
        "fuzzing needs the nightly toolchain (rustup toolchain install nightly)"
    );
    let installed = Command::new("cargo")
        .args(["fuzz", "--version"])
        .output()
        .is_ok_and(|output| output.status.success());
    if !installed {
        println!("==> installing cargo-fuzz");
        let status = Command::new("cargo")
            .args(["install", "cargo-fuzz", "--locked"])
            .status()
            .context("cannot run cargo install")?;
        ensure!(
            status.success(),
            "cargo install cargo-fuzz failed ({status})"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|&a| a.to_owned()).collect()
    }

    #[test]
    fn defaults_to_every_target_for_a_minute() {
        let (targets, seconds) = parse(&[]).expect("no arguments");
        assert_eq!(targets, TARGETS);
        assert_eq!(seconds, DEFAULT_SECONDS);
    }

    #[test]
    fn every_target_of_the_fuzz_crate_is_run() {
        let manifest =
            std::fs::read_to_string(crate::process::workspace_root().join("fuzz/Cargo.toml"))
                .expect("fuzz/Cargo.toml");
        let mut bins: Vec<&str> = manifest
            .split("[[bin]]")
            .skip(1)
            .filter_map(|bin| {
                bin.lines()
                    .find_map(|line| line.trim().strip_prefix("name = "))
                    .map(|name| name.trim_matches('"'))
            })
            .collect();
        let mut targets = TARGETS.to_vec();
        bins.sort_unstable();
        targets.sort_unstable();
        assert_eq!(
            targets, bins,
            "TARGETS (what `cargo xtask fuzz` and CI run) must list every [[bin]] of fuzz/Cargo.toml"
        );
    }

    #[test]
    fn takes_targets_and_seconds() {
        let (targets, seconds) = parse(&strings(&["message", "--seconds", "600"])).expect("valid");
        assert_eq!(targets, ["message"]);
        assert_eq!(seconds, 600);
        assert!(parse(&strings(&["nonsense"])).is_err());
        assert!(parse(&strings(&["--seconds", "0"])).is_err());
        assert!(parse(&strings(&["--seconds"])).is_err());
    }
}
