//! The scenarios of `cargo xtask bench`, each run for iris, for the CPython
//! baseline (and extra versions where cheap) and for a raw floor where the
//! issue asks for one, alternating round by round. iris runs sealed, its
//! default between iris peers; most rows also run iris unsealed
//! (`--no-sealing` on the listener, `--sealing off` or `--no-sealing` on the
//! client) right after it in each round, shown as a second row and in the
//! sealed/unsealed column. Every iris run checks that its sessions were
//! sealed, or not, as its row says.
//!
//! | scenario | iris | CPython | floor |
//! |---|---|---|---|
//! | `stream` | `iris-listener --once -q` ← `iris-client send - --repeat N` (and `--codec pickle`: the seed's format) | `bench/listener.py` ← `bench/client.py` | — |
//! | `fan-in` | `iris-listener -q` ← 64 × `iris-client send` | `listener.py` (`multiprocessing.connection.wait` over the 64) ← 64 × `client.py` | — |
//! | `handshake` | `iris-listener -q` ← `iris-bench handshake` ×1 / ×16; fast open: `iris-bench handshake --sealing require` ×1 | `drivers.py handshake-server` ← `handshake-client` (not for fast open) | `iris-bench floor-server --mode handshake` ← `iris-bench handshake --raw` |
//! | `ping` | `iris-listener --once -q` ← `iris-bench ping` | `drivers.py echo-server` ← `ping-client` | `floor-server --mode ping` ← `iris-bench ping --raw` |
//! | `bulk` | `iris-bench bulk-server` ← `iris-bench bulk` | `drivers.py bulk-server` ← `bulk-client` | `floor-server --mode bulk` ← `iris-bench bulk --raw` |
//! | `idle` | `iris-listener -q` ← `iris-bench idle --ping` | `listener.py` (the 1,000 held in `wait`) ← `iris-bench idle` | — |
//!
//! Clients started together wait at a gate (their stdin) until all of them
//! are ready, so process and interpreter start-up are never timed.

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use iris_testkit::{Summary, acknowledged};
use serde_json::json;

use super::proc::{self, Finished, Gated, Server};
use super::report::{Better, Goal, Metric, Unit};
use super::{Env, Python, RunRecord};
use crate::process;

/// The scenarios, in the order they run.
pub(crate) const NAMES: &[&str] = &["stream", "fan-in", "handshake", "ping", "bulk", "idle"];

/// How long one side's run may take before everything is killed.
const RUN_TIMEOUT: Duration = Duration::from_secs(300);
/// How long clients get to reach their start gate.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a server gets to exit when it is done or stopped.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// The seed's flower, as `iris-client send -` reads it.
pub(crate) const SEED_CSV: &str =
    "sepal_length,sepal_width,petal_length,petal_width,species\n5.1,3.5,1.4,0.2,setosa\n";

/// Runs scenario `name`; `earlier` holds the metrics of the scenarios run
/// before it (fan-in's goal is stream's result).
pub(crate) fn run(name: &str, env: &Env, earlier: &[Metric]) -> anyhow::Result<Vec<Metric>> {
    match name {
        "stream" => stream(env),
        "fan-in" => fan_in(env, earlier),
        "handshake" => handshake(env),
        "ping" => ping(env),
        "bulk" => bulk(env),
        "idle" => idle(env),
        other => bail!("unknown scenario {other:?}"),
    }
}

/// Who is measured.
#[derive(Clone, Copy, Debug)]
enum Side<'a> {
    /// iris as deployed: sealed, the default between iris peers (or, where
    /// the row says so, with sealing required: fast open).
    Iris,
    /// iris with sealing off on both ends (`--no-sealing`, `--sealing off`).
    IrisUnsealed,
    /// The CPython baseline.
    Baseline(&'a Python),
    /// Another CPython version, an extra row.
    Extra(&'a Python),
    /// The raw socket floor.
    Floor,
}

impl Side<'_> {
    fn label(&self) -> String {
        match self {
            Side::Iris => "iris".to_owned(),
            Side::IrisUnsealed => "iris unsealed".to_owned(),
            Side::Baseline(python) | Side::Extra(python) => python.label(),
            Side::Floor => "floor".to_owned(),
        }
    }
}

/// Rounds per scenario: three at least, so that the median shrugs off one
/// disturbed run.
/// The flags that turn sealing off for the unsealed side: for
/// `iris-listener` and `iris-client`, and for the `iris-bench` drivers.
fn sealing_flags(side: Side<'_>) -> (&'static [&'static str], &'static [&'static str]) {
    match side {
        Side::IrisUnsealed => (&["--no-sealing"], &["--sealing", "off"]),
        _ => (&[], &[]),
    }
}

/// Fails unless an iris side's sessions were sealed as its row says:
/// `sealed` of `count` sessions.
fn check_sealed(side: Side<'_>, sealed: u64, count: u64) -> anyhow::Result<()> {
    let expected = match side {
        Side::Iris => count,
        Side::IrisUnsealed => 0,
        _ => return Ok(()),
    };
    ensure!(
        sealed == expected,
        "{}: {sealed} of {count} sessions were sealed, expected {expected}",
        side.label()
    );
    Ok(())
}

/// The row names of a metric measured sealed and unsealed.
fn sealing_names(name: &str) -> (String, String) {
    (
        format!("{name}, sealed (default)"),
        format!("{name}, unsealed (--no-sealing)"),
    )
}

fn rounds(env: &Env) -> usize {
    if env.quick { 3 } else { 5 }
}

/// Rounds in which the extra CPython versions run too.
const EXTRA_ROUNDS: usize = 3;

fn baseline_label(env: &Env) -> Option<String> {
    env.baseline.as_ref().map(Python::label)
}

fn extra_labels(env: &Env) -> Vec<String> {
    env.extras.iter().map(Python::label).collect()
}

/// A metric with the baseline, and optionally the extras and the floor.
fn metric(
    env: &Env,
    scenario: &'static str,
    name: &str,
    short: &str,
    unit: Unit,
    better: Better,
) -> Metric {
    Metric::new(scenario, name, short, unit, better).with_cpython(baseline_label(env).as_deref())
}

/// What one run of one side measured: a value per metric, in the metrics'
/// order, and the details for the JSON.
type Measured = (Vec<f64>, serde_json::Value);

/// Which sides a scenario variant runs, and how often.
struct Plan<'a> {
    scenario: &'static str,
    variant: &'a str,
    /// Whether iris runs unsealed too, right after the sealed run.
    unsealed: bool,
    /// Whether the CPython baseline runs.
    baseline: bool,
    /// Whether there is a floor.
    floor: bool,
    /// Whether the extra CPython versions run (in the first rounds).
    extras: bool,
    rounds: usize,
}

/// Runs `measure` for every side, round after round, each round in the
/// same order (iris, iris unsealed, CPython, floor, then the extras in the
/// first rounds), and files the values under `metrics`.
fn alternate(
    env: &Env,
    plan: &Plan<'_>,
    metrics: &mut [Metric],
    mut measure: impl FnMut(Side<'_>) -> anyhow::Result<Measured>,
) -> anyhow::Result<()> {
    let &Plan {
        scenario,
        variant,
        unsealed,
        baseline,
        floor,
        extras,
        rounds,
    } = plan;
    for round in 0..rounds {
        let mut sides = vec![Side::Iris];
        if unsealed {
            sides.push(Side::IrisUnsealed);
        }
        if let Some(python) = env.baseline.as_ref().filter(|_| baseline) {
            sides.push(Side::Baseline(python));
        }
        if floor {
            sides.push(Side::Floor);
        }
        if extras && round < EXTRA_ROUNDS {
            sides.extend(env.extras.iter().map(Side::Extra));
        }
        let mut summary = Vec::new();
        for side in sides {
            let (values, details) = measure(side).with_context(|| {
                format!(
                    "{scenario} ({variant}), round {}, {}",
                    round + 1,
                    side.label()
                )
            })?;
            ensure!(
                values.len() == metrics.len(),
                "{scenario}: {} values for {} metrics",
                values.len(),
                metrics.len()
            );
            for (metric, &value) in metrics.iter_mut().zip(&values) {
                match side {
                    Side::Iris => metric.iris.runs.push(value),
                    Side::IrisUnsealed => metric.push_unsealed(value),
                    Side::Baseline(_) => metric.push_cpython(value),
                    Side::Extra(python) => metric.push_extra(&python.label(), value),
                    Side::Floor => metric.push_floor(value),
                }
            }
            env.record(RunRecord {
                scenario,
                variant: variant.to_owned(),
                side: side.label(),
                round: round + 1,
                values: details,
            });
            summary.push(format!(
                "{} {}",
                side.label(),
                metrics[0].unit.format(values[0])
            ));
        }
        eprintln!(
            "    {variant}, round {}/{rounds}: {} ({})",
            round + 1,
            summary.join(", "),
            metrics[0].name
        );
    }
    Ok(())
}

fn seconds_between(start: Instant, end: Instant) -> f64 {
    end.saturating_duration_since(start).as_secs_f64().max(1e-9)
}

// ---------------------------------------------------------------------------
// stream and fan-in

fn stream(env: &Env) -> anyhow::Result<Vec<Metric>> {
    let (iris_flowers, python_flowers) = if env.quick {
        (2_000_000, 20_000)
    } else {
        (20_000_000, 400_000)
    };
    let (sealed, unsealed) = sealing_names("flowers/s, 1 client");
    let mut metrics = vec![
        metric(
            env,
            "stream",
            &sealed,
            "stream\nflowers/s",
            Unit::PerSecond,
            Better::Higher,
        )
        .with_extras(&extra_labels(env))
        .with_unsealed(unsealed)
        .with_goals(vec![
            Goal::AtLeast(20e6),
            Goal::CpythonRatioAtLeast(100.0),
            Goal::UnsealedRatioAtLeast(0.85),
        ]),
    ];
    alternate(
        env,
        &Plan {
            scenario: "stream",
            variant: "1 client",
            unsealed: true,
            baseline: true,
            floor: false,
            extras: true,
            rounds: rounds(env),
        },
        &mut metrics,
        |side| match side {
            Side::Iris | Side::IrisUnsealed => {
                stream_iris(env, side, 1, iris_flowers, Codec::Native)
            }
            Side::Baseline(python) | Side::Extra(python) => {
                stream_python(env, python, 1, python_flowers)
            }
            Side::Floor => bail!("stream has no floor"),
        },
    )?;
    // The same format on both sides: iris-listener fed the seed's pickles,
    // so that the table separates what the implementation gains from what
    // the native format gains.
    let pickled_flowers = if env.quick { 200_000 } else { 2_000_000 };
    let mut same_format = vec![metric(
        env,
        "stream",
        "flowers/s, 1 client, the seed's pickles, sealed (default)",
        "stream, pickles\nflowers/s",
        Unit::PerSecond,
        Better::Higher,
    )];
    alternate(
        env,
        &Plan {
            scenario: "stream",
            variant: "1 client, pickles",
            unsealed: false,
            baseline: true,
            floor: false,
            extras: false,
            rounds: rounds(env),
        },
        &mut same_format,
        |side| match side {
            Side::Iris => stream_iris(env, side, 1, pickled_flowers, Codec::Pickle),
            Side::Baseline(python) | Side::Extra(python) => {
                stream_python(env, python, 1, python_flowers)
            }
            Side::IrisUnsealed | Side::Floor => bail!("not measured"),
        },
    )?;
    metrics.extend(same_format);
    Ok(metrics)
}

/// How `iris-client` encodes the flowers it streams.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Codec {
    /// Native iris messages, acknowledged.
    Native,
    /// Pickles exactly as the Python seed client sends them, unacknowledged
    /// (as towards a Python listener).
    Pickle,
}

/// Clients sending at once in `fan-in`.
const FAN_IN_CLIENTS: u64 = 64;

fn fan_in(env: &Env, earlier: &[Metric]) -> anyhow::Result<Vec<Metric>> {
    let (iris_flowers, python_flowers) = if env.quick {
        (2_000_000, 32_000)
    } else {
        (20_000_000, 400_000)
    };
    let mut goals = Vec::new();
    if let Some(stream) = earlier
        .iter()
        .find(|metric| metric.scenario == "stream")
        .and_then(Metric::iris_median)
    {
        // "fan-in no lower than stream".
        goals.push(Goal::AtLeast(stream));
    }
    let mut metrics = vec![
        metric(
            env,
            "fan-in",
            "flowers/s, 64 clients, sealed (default)",
            "fan-in\nflowers/s",
            Unit::PerSecond,
            Better::Higher,
        )
        .with_goals(goals),
    ];
    alternate(
        env,
        &Plan {
            scenario: "fan-in",
            variant: "64 clients",
            unsealed: false,
            baseline: true,
            floor: false,
            extras: false,
            // Starting 64 interpreters a round is --quick's largest cost.
            rounds: if env.quick { 2 } else { rounds(env) },
        },
        &mut metrics,
        |side| match side {
            Side::Iris => stream_iris(env, side, FAN_IN_CLIENTS, iris_flowers, Codec::Native),
            Side::Baseline(python) | Side::Extra(python) => {
                stream_python(env, python, FAN_IN_CLIENTS, python_flowers)
            }
            Side::IrisUnsealed | Side::Floor => bail!("not measured"),
        },
    )?;
    Ok(metrics)
}

/// `iris-listener` with stdout to /dev/null and `clients` × `iris-client
/// send`, `total` flowers in all. Timed from the clients' start signal to
/// the last client's exit, which comes after its acknowledgement, which the
/// listener sends only once that connection's lines are written. Pickles
/// are not acknowledged: then the time runs to the `--once` listener's exit,
/// after it has written every line. `side` says whether both ends seal.
fn stream_iris(
    env: &Env,
    side: Side<'_>,
    clients: u64,
    total: u64,
    codec: Codec,
) -> anyhow::Result<Measured> {
    let each = total / clients;
    let host = env.fresh_host();
    let address_file = env.fresh_file("address");
    let (no_sealing, _) = sealing_flags(side);
    let mut command = env.iris_command(&env.listener_bin);
    command
        .args(["-q", "--address", &format!("{host}:0"), "--address-file"])
        .arg(&address_file)
        .args(no_sealing);
    if clients == 1 {
        command.arg("--once");
    }
    let listener = Server::start("iris-listener", &mut command, &address_file)?;
    let commands = (0..clients)
        .map(|_| {
            let mut client = env.iris_command(&env.client_bin);
            client.args(["-q", "send", "-", "--repeat", &each.to_string()]);
            client
                .args(["--address", &listener.address])
                .args(no_sealing);
            if codec == Codec::Pickle {
                client.args(["--codec", "pickle"]);
            }
            client
        })
        .collect();
    let mut gated = Gated::spawn("iris-client", commands)?;
    gated.wait_ready(READY_TIMEOUT)?;
    let started = gated.release(SEED_CSV.as_bytes())?;
    let finished = gated.finish(RUN_TIMEOUT)?;
    let mut ended = last_exit(&finished)?;
    for client in &finished {
        client.check()?;
        if codec == Codec::Pickle {
            continue;
        }
        let acknowledged = acknowledged(&client.output.stdout);
        ensure!(
            acknowledged == Some(each),
            "{} reports {acknowledged:?} flowers acknowledged, expected {each}: {}",
            client.name,
            client.output.stdout.trim_end()
        );
    }
    let (status, log) = if clients == 1 {
        let finished = listener.finish(STOP_TIMEOUT)?;
        if codec == Codec::Pickle {
            ended = Instant::now();
        }
        finished
    } else {
        listener.stop(STOP_TIMEOUT)?
    };
    ensure!(status.success(), "iris-listener exited with {status}");
    let counted = summary_value(&log, "flowers");
    ensure!(
        counted == Some(each * clients),
        "iris-listener counted {counted:?} flowers, expected {}",
        each * clients
    );
    check_sealed(side, summary_value(&log, "sealed").unwrap_or(0), clients)?;
    let seconds = seconds_between(started, ended);
    let flowers = each * clients;
    Ok((
        vec![flowers as f64 / seconds],
        json!({ "flowers": flowers, "clients": clients, "seconds": seconds }),
    ))
}

/// `bench/listener.py` with stdout to /dev/null and `clients` ×
/// `bench/client.py`. Timed from the clients' start signal to the listener's
/// `done`, logged once every connection has sent 'close' and stdout is
/// flushed (a Python listener sends no acknowledgement to wait for).
fn stream_python(env: &Env, python: &Python, clients: u64, total: u64) -> anyhow::Result<Measured> {
    let each = total / clients;
    let host = env.fresh_host();
    let address_file = env.fresh_file("address");
    let mut command = env.python_command(python, "listener.py");
    command
        .arg(&host)
        .arg(&address_file)
        .arg(clients.to_string());
    let mut listener = Server::start(
        &format!("{} listener.py", python.label()),
        &mut command,
        &address_file,
    )?;
    let commands = (0..clients)
        .map(|_| {
            let mut client = env.python_command(python, "client.py");
            client.arg(&listener.address).arg(each.to_string());
            client
        })
        .collect();
    let mut gated = Gated::spawn(&format!("{} client.py", python.label()), commands)?;
    gated.wait_ready(READY_TIMEOUT)?;
    let started = gated.release(b"")?;
    let ended = listener.wait_line("done", RUN_TIMEOUT)?;
    for client in gated.finish(RUN_TIMEOUT)? {
        client.check()?;
    }
    let (status, _) = listener.finish(STOP_TIMEOUT)?;
    ensure!(status.success(), "listener.py exited with {status}");
    let seconds = seconds_between(started, ended);
    let flowers = each * clients;
    Ok((
        vec![flowers as f64 / seconds],
        json!({ "flowers": flowers, "clients": clients, "seconds": seconds }),
    ))
}

/// A field of iris-listener's `summary:` line.
pub(crate) fn summary_value(log: &[String], name: &str) -> Option<u64> {
    log.iter()
        .find_map(|line| Summary::parse(line))
        .and_then(|summary| summary.value(name))
}

fn last_exit(finished: &[Finished]) -> anyhow::Result<Instant> {
    finished
        .iter()
        .map(|client| client.exited)
        .max()
        .context("no clients ran")
}

// ---------------------------------------------------------------------------
// handshake

/// Concurrent clients in the second handshake variant.
const HANDSHAKE_CLIENTS: u64 = 16;
/// At most this many connections per run, in all clients together.
const HANDSHAKE_MAX: u64 = 20_000;

fn handshake(env: &Env) -> anyhow::Result<Vec<Metric>> {
    let seconds = if env.quick { 0.25 } else { 1.5 };
    let mut metrics = Vec::new();
    for clients in [1, HANDSHAKE_CLIENTS] {
        let variant = if clients == 1 {
            "1 client".to_owned()
        } else {
            format!("{clients} clients")
        };
        let extras = if clients == 1 {
            extra_labels(env)
        } else {
            Vec::new()
        };
        let (rate_goals, latency_goals) = if clients == 1 {
            (
                Vec::new(),
                vec![
                    Goal::FloorRatioAtMost(1.25),
                    Goal::CpythonRatioAtMost(0.5),
                    Goal::UnsealedRatioAtMost(1.1),
                ],
            )
        } else {
            (
                vec![
                    Goal::FloorRatioAtLeast(0.9),
                    Goal::UnsealedRatioAtLeast(0.8),
                ],
                Vec::new(),
            )
        };
        let (rate_sealed, rate_unsealed) = sealing_names(&format!("connections/s, {variant}"));
        let (latency_sealed, latency_unsealed) =
            sealing_names(&format!("latency p50 µs, {variant}"));
        let mut pair = vec![
            metric(
                env,
                "handshake",
                &rate_sealed,
                &format!("handshake ×{clients}\nconnections/s"),
                Unit::PerSecond,
                Better::Higher,
            )
            .with_extras(&extras)
            .with_floor()
            .with_unsealed(rate_unsealed)
            .with_goals(rate_goals),
            metric(
                env,
                "handshake",
                &latency_sealed,
                &format!("handshake ×{clients}\nlatency p50"),
                Unit::Micros,
                Better::Lower,
            )
            .with_extras(&extras)
            .with_floor()
            .with_unsealed(latency_unsealed)
            .with_goals(latency_goals),
        ];
        alternate(
            env,
            &Plan {
                scenario: "handshake",
                variant: &variant,
                unsealed: true,
                baseline: true,
                floor: true,
                extras: clients == 1,
                rounds: rounds(env),
            },
            &mut pair,
            |side| {
                handshake_run(
                    env,
                    side,
                    clients,
                    seconds,
                    HANDSHAKE_MAX / clients,
                    Opening::Handshake,
                )
            },
        )?;
        metrics.append(&mut pair);
    }
    metrics.push(fast_open(env, seconds)?);
    Ok(metrics)
}

/// What `handshake_run`'s iris clients time.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Opening {
    /// Connect and authenticate.
    Handshake,
    /// Connect and authenticate with sealing required (fast open: the
    /// client's challenge goes out at once, and its handshake is done, its
    /// first data free to leave, one round trip after the connect) for the
    /// sealed side; with sealing off for the unsealed one.
    FastOpen,
}

/// Fast open: from the connect until the client's handshake is done and its
/// first data may leave, with sealing required, against the raw floor of a
/// connect and one ping-pong (the handshake scenario's floor: one round
/// trip after the connect, as fast open), and against the same unsealed
/// (the pipelined CPython handshake: two round trips after the connect).
fn fast_open(env: &Env, seconds: f64) -> anyhow::Result<Metric> {
    let mut metric = Metric::new(
        "handshake",
        "fast open p50 µs: connect until the first data may leave, 1 client, --require-sealed",
        "fast open\nlatency p50",
        Unit::Micros,
        Better::Lower,
    )
    .with_floor()
    .with_unsealed(
        "connect until the first data may leave p50 µs, 1 client, unsealed (--no-sealing)",
    )
    .with_goals(vec![Goal::FloorRatioAtMost(1.25)]);
    alternate(
        env,
        &Plan {
            scenario: "handshake",
            variant: "fast open",
            unsealed: true,
            baseline: false,
            floor: true,
            extras: false,
            rounds: rounds(env),
        },
        std::slice::from_mut(&mut metric),
        |side| {
            let (values, details) =
                handshake_run(env, side, 1, seconds, HANDSHAKE_MAX, Opening::FastOpen)?;
            // Only the latency: the rate says nothing more here.
            Ok((values[1..].to_vec(), details))
        },
    )?;
    Ok(metric)
}

/// The client side of a driver scenario. For iris and the floor:
/// `iris-bench SCENARIO --address A --NAME VALUE ...`, plus `floor_flags` for
/// the floor and `--sealing off` for unsealed iris; for CPython: `drivers.py SCENARIO-client A VALUE ...`, the same
/// values in the same order.
fn driver_client(
    env: &Env,
    side: Side<'_>,
    scenario: &str,
    address: &str,
    flags: &[(&str, &str)],
    floor_flags: &[&str],
) -> Command {
    match side {
        Side::Iris | Side::IrisUnsealed | Side::Floor => {
            let mut command = env.iris_command(&env.bench_bin);
            command.args([scenario, "--address", address]);
            for (name, value) in flags {
                command.args([name, value]);
            }
            if matches!(side, Side::Floor) {
                command.args(floor_flags);
            }
            command.args(sealing_flags(side).1);
            command
        }
        Side::Baseline(python) | Side::Extra(python) => {
            let mut command = env.python_command(python, "drivers.py");
            command.arg(format!("{scenario}-client")).arg(address);
            for (_, value) in flags {
                command.arg(value);
            }
            command
        }
    }
}

/// A server, `clients` clients connecting, authenticating (and, with
/// `opening`, pinging) and closing in a loop for `seconds` (or `max`
/// connections each).
fn handshake_run(
    env: &Env,
    side: Side<'_>,
    clients: u64,
    seconds: f64,
    max: u64,
    opening: Opening,
) -> anyhow::Result<Measured> {
    let host = env.fresh_host();
    let address_file = env.fresh_file("address");
    let (mut server_command, name) = match side {
        Side::Iris | Side::IrisUnsealed => {
            let mut command = env.iris_command(&env.listener_bin);
            command
                .args(["-q", "--address", &format!("{host}:0"), "--address-file"])
                .arg(&address_file)
                .args(sealing_flags(side).0);
            (command, "iris-listener".to_owned())
        }
        Side::Baseline(python) | Side::Extra(python) => {
            let mut command = env.python_command(python, "drivers.py");
            command
                .arg("handshake-server")
                .arg(&host)
                .arg(&address_file);
            (command, format!("{} handshake-server", python.label()))
        }
        Side::Floor => {
            let mut command = env.iris_command(&env.bench_bin);
            command
                .args(["floor-server", "--mode", "handshake", "--host", &host])
                .arg("--address-file")
                .arg(&address_file);
            (command, "floor-server".to_owned())
        }
    };
    let server = Server::start(&name, &mut server_command, &address_file)?;
    let seconds_text = seconds.to_string();
    let max_text = max.to_string();
    let commands: Vec<Command> = (0..clients)
        .map(|_| {
            let mut command = driver_client(
                env,
                side,
                "handshake",
                &server.address,
                &[("--seconds", &seconds_text), ("--max", &max_text)],
                &["--raw"],
            );
            if opening == Opening::FastOpen && matches!(side, Side::Iris) {
                command.args(["--sealing", "require"]);
            }
            command
        })
        .collect();
    let mut gated = Gated::spawn(&format!("{} handshake client", side.label()), commands)?;
    gated.wait_ready(READY_TIMEOUT)?;
    gated.release(b"")?;
    let finished = gated.finish(RUN_TIMEOUT)?;
    let mut count = 0;
    let mut elapsed: f64 = 0.0;
    let mut latencies = Vec::new();
    for client in &finished {
        client.check()?;
        let result: HandshakeResult = parse_result(client)?;
        check_sealed(side, result.sealed, result.count)?;
        count += result.count;
        elapsed = elapsed.max(result.elapsed_ns as f64 / 1e9);
        latencies.extend(result.latencies_ns.iter().map(|&ns| ns as f64 / 1e3));
    }
    ensure!(count > 0, "no connection completed");
    match side {
        Side::Iris | Side::IrisUnsealed => {
            let (status, _) = server.stop(STOP_TIMEOUT)?;
            ensure!(status.success(), "iris-listener exited with {status}");
        }
        // Serve until killed.
        _ => drop(server),
    }
    let rate = count as f64 / elapsed.max(1e-9);
    let percentiles = Percentiles::of(latencies);
    Ok((
        vec![rate, percentiles.p50],
        json!({
            "clients": clients,
            "connections": count,
            "seconds": elapsed,
            "connections_per_s": rate,
            "latency_us": percentiles,
        }),
    ))
}

#[derive(serde::Deserialize)]
struct HandshakeResult {
    count: u64,
    /// Sessions sealed (iris-bench only).
    #[serde(default)]
    sealed: u64,
    elapsed_ns: u64,
    latencies_ns: Vec<u64>,
}

#[derive(serde::Deserialize)]
struct LatencyResult {
    #[serde(default)]
    sealed: bool,
    latencies_ns: Vec<u64>,
}

#[derive(serde::Deserialize)]
struct BulkResult {
    #[serde(default)]
    sealed: bool,
    bytes: u64,
    elapsed_ns: u64,
}

fn parse_result<T: serde::de::DeserializeOwned>(client: &Finished) -> anyhow::Result<T> {
    let line = client
        .output
        .stdout
        .lines()
        .rev()
        .find(|line| line.starts_with('{'))
        .with_context(|| format!("{} printed no result", client.name))?;
    serde_json::from_str(line).with_context(|| format!("{} printed a bad result", client.name))
}

/// Latency percentiles in µs.
#[derive(Debug, serde::Serialize)]
struct Percentiles {
    samples: usize,
    min: f64,
    p50: f64,
    p90: f64,
    p99: f64,
    max: f64,
}

impl Percentiles {
    fn of(mut values: Vec<f64>) -> Percentiles {
        values.sort_by(f64::total_cmp);
        let q = |q| super::report::quantile_sorted(&values, q);
        Percentiles {
            samples: values.len(),
            min: q(0.0),
            p50: q(0.5),
            p90: q(0.9),
            p99: q(0.99),
            max: q(1.0),
        }
    }
}

// ---------------------------------------------------------------------------
// ping

fn ping(env: &Env) -> anyhow::Result<Vec<Metric>> {
    let count: u64 = if env.quick { 2_000 } else { 20_000 };
    let extras = extra_labels(env);
    let (p50_sealed, p50_unsealed) = sealing_names("round trip p50 µs");
    let (p99_sealed, p99_unsealed) = sealing_names("round trip p99 µs");
    let mut metrics = vec![
        metric(
            env,
            "ping",
            &p50_sealed,
            "ping\np50",
            Unit::Micros,
            Better::Lower,
        )
        .with_extras(&extras)
        .with_floor()
        .with_unsealed(p50_unsealed)
        .with_goals(vec![Goal::FloorRatioAtMost(1.2)]),
        metric(
            env,
            "ping",
            &p99_sealed,
            "ping\np99",
            Unit::Micros,
            Better::Lower,
        )
        .with_extras(&extras)
        .with_floor()
        .with_unsealed(p99_unsealed),
    ];
    alternate(
        env,
        &Plan {
            scenario: "ping",
            variant: &format!("{count} round trips"),
            unsealed: true,
            baseline: true,
            floor: true,
            extras: true,
            rounds: rounds(env),
        },
        &mut metrics,
        |side| ping_run(env, side, count),
    )?;
    Ok(metrics)
}

/// Round trips not timed before the `count` that are.
const PING_WARMUP: u64 = 200;

fn ping_run(env: &Env, side: Side<'_>, count: u64) -> anyhow::Result<Measured> {
    let host = env.fresh_host();
    let address_file = env.fresh_file("address");
    let count_text = count.to_string();
    let warmup_text = PING_WARMUP.to_string();
    let (mut server_command, name) = match side {
        Side::Iris | Side::IrisUnsealed => {
            let mut command = env.iris_command(&env.listener_bin);
            command
                .args(["-q", "--once", "--address", &format!("{host}:0")])
                .arg("--address-file")
                .arg(&address_file)
                .args(sealing_flags(side).0);
            (command, "iris-listener".to_owned())
        }
        Side::Baseline(python) | Side::Extra(python) => {
            let mut command = env.python_command(python, "drivers.py");
            command.arg("echo-server").arg(&host).arg(&address_file);
            (command, format!("{} echo-server", python.label()))
        }
        Side::Floor => {
            let mut command = env.iris_command(&env.bench_bin);
            command
                .args(["floor-server", "--mode", "ping", "--host", &host])
                .arg("--address-file")
                .arg(&address_file);
            (command, "floor-server".to_owned())
        }
    };
    let server = Server::start(&name, &mut server_command, &address_file)?;
    let mut client = driver_client(
        env,
        side,
        "ping",
        &server.address,
        &[("--count", &count_text), ("--warmup", &warmup_text)],
        &["--raw"],
    );
    let finished = proc::run_client(&format!("{} ping", side.label()), &mut client, RUN_TIMEOUT)?;
    let result: LatencyResult = parse_result(&finished)?;
    check_sealed(side, result.sealed.into(), 1)?;
    let (status, _) = server.finish(STOP_TIMEOUT)?;
    ensure!(status.success(), "{name} exited with {status}");
    let percentiles = Percentiles::of(
        result
            .latencies_ns
            .iter()
            .map(|&ns| ns as f64 / 1e3)
            .collect(),
    );
    Ok((
        vec![percentiles.p50, percentiles.p99],
        json!({ "round_trips": count, "latency_us": percentiles }),
    ))
}

// ---------------------------------------------------------------------------
// bulk

/// The size of a bulk message: 64 MiB.
const BULK_SIZE: u64 = 64 << 20;

fn bulk(env: &Env) -> anyhow::Result<Vec<Metric>> {
    let count: u64 = if env.quick { 2 } else { 16 };
    let mut metrics = Vec::new();
    // The floor, 1 MiB writes, reads into a 1 MiB buffer: both
    // buffers stay in the cache. Then, for comparison, the same writes from
    // and reads into 64 MiB buffers, as messages of that size need.
    for message_buffers in [false, true] {
        let (name, short, variant) = if message_buffers {
            (
                "64 MiB messages, MB/s, floor with 64 MiB buffers",
                "bulk vs floor\nwith 64 MiB buffers",
                format!("{count} × 64 MiB; floor with 64 MiB buffers"),
            )
        } else {
            (
                "64 MiB messages, MB/s",
                "bulk\nMB/s",
                format!("{count} × 64 MiB"),
            )
        };
        let (name, unsealed) = sealing_names(name);
        let mut metric = if message_buffers {
            Metric::new(
                "bulk",
                name,
                short,
                Unit::MegabytesPerSecond,
                Better::Higher,
            )
        } else {
            metric(
                env,
                "bulk",
                &name,
                short,
                Unit::MegabytesPerSecond,
                Better::Higher,
            )
            .with_goals(vec![
                Goal::FloorRatioAtLeast(0.8),
                Goal::UnsealedRatioAtLeast(0.7),
            ])
        }
        .with_floor()
        .with_unsealed(unsealed);
        alternate(
            env,
            &Plan {
                scenario: "bulk",
                variant: &variant,
                unsealed: true,
                baseline: !message_buffers,
                floor: true,
                extras: false,
                rounds: rounds(env),
            },
            std::slice::from_mut(&mut metric),
            |side| bulk_run(env, side, count, message_buffers),
        )?;
        metrics.push(metric);
    }
    Ok(metrics)
}

/// One bulk run; `message_buffers` gives the floor 64 MiB buffers.
fn bulk_run(
    env: &Env,
    side: Side<'_>,
    count: u64,
    message_buffers: bool,
) -> anyhow::Result<Measured> {
    let floor_buffer = if message_buffers { BULK_SIZE } else { 1 << 20 }.to_string();
    let host = env.fresh_host();
    let address_file = env.fresh_file("address");
    let count_text = count.to_string();
    let size_text = BULK_SIZE.to_string();
    let (mut server_command, name) = match side {
        Side::Iris | Side::IrisUnsealed => {
            let mut command = env.iris_command(&env.bench_bin);
            command
                .args(["bulk-server", "--host", &host, "--count", &count_text])
                .args(["--max-frame", &(2 * BULK_SIZE).to_string()])
                .arg("--address-file")
                .arg(&address_file)
                .args(sealing_flags(side).1);
            (command, "iris-bench bulk-server".to_owned())
        }
        Side::Baseline(python) | Side::Extra(python) => {
            let mut command = env.python_command(python, "drivers.py");
            command
                .arg("bulk-server")
                .arg(&host)
                .arg(&address_file)
                .arg(&count_text);
            (command, format!("{} bulk-server", python.label()))
        }
        Side::Floor => {
            let mut command = env.iris_command(&env.bench_bin);
            command
                .args(["floor-server", "--mode", "bulk", "--host", &host])
                .args(["--bytes", &(BULK_SIZE * count).to_string()])
                .args(["--buffer", &floor_buffer])
                .arg("--address-file")
                .arg(&address_file);
            (command, "floor-server".to_owned())
        }
    };
    let server = Server::start(&name, &mut server_command, &address_file)?;
    let mut client = driver_client(
        env,
        side,
        "bulk",
        &server.address,
        &[("--size", &size_text), ("--count", &count_text)],
        &["--raw", "--source", &floor_buffer],
    );
    let finished = proc::run_client(&format!("{} bulk", side.label()), &mut client, RUN_TIMEOUT)?;
    let result: BulkResult = parse_result(&finished)?;
    check_sealed(side, result.sealed.into(), 1)?;
    let (status, _) = server.finish(STOP_TIMEOUT)?;
    ensure!(status.success(), "{name} exited with {status}");
    let seconds = result.elapsed_ns as f64 / 1e9;
    let rate = result.bytes as f64 / seconds.max(1e-9) / 1e6;
    Ok((
        vec![rate],
        json!({ "bytes": result.bytes, "seconds": seconds, "mb_per_s": rate }),
    ))
}

// ---------------------------------------------------------------------------
// idle

/// Authenticated connections held open in `idle`.
const IDLE_CONNECTIONS: u64 = 1_000;
/// Open files the listener and the client get: the connections and room
/// for the rest.
const IDLE_OPEN_FILES: u64 = IDLE_CONNECTIONS + 1_000;

fn idle(env: &Env) -> anyhow::Result<Vec<Metric>> {
    match process::raise_open_files(IDLE_OPEN_FILES) {
        Ok(None) => {}
        Ok(Some(soft)) => env.note(format!(
            "idle: the soft limit on open files was {soft}; the listener and the client run with {IDLE_OPEN_FILES}"
        )),
        Err(error) => {
            env.note(format!("idle skipped: {error:#}"));
            return Ok(Vec::new());
        }
    }
    let rounds = if env.quick { 1 } else { 3 };
    let (rss_sealed, rss_unsealed) = sealing_names("listener RSS MiB, 1,000 idle connections");
    let (each_sealed, each_unsealed) = sealing_names("listener RSS KiB per idle connection");
    let mut metrics = vec![
        metric(
            env,
            "idle",
            &rss_sealed,
            "idle\nRSS",
            Unit::Mebibytes,
            Better::Lower,
        )
        .with_unsealed(rss_unsealed)
        .with_goals(vec![Goal::AtMost(64.0)]),
        metric(
            env,
            "idle",
            &each_sealed,
            "idle\nKiB/connection",
            Unit::Kibibytes,
            Better::Lower,
        )
        .with_unsealed(each_unsealed),
    ];
    alternate(
        env,
        &Plan {
            scenario: "idle",
            variant: "1,000 connections",
            unsealed: true,
            baseline: true,
            floor: false,
            extras: false,
            rounds,
        },
        &mut metrics,
        |side| idle_run(env, side),
    )?;
    Ok(metrics)
}

fn idle_run(env: &Env, side: Side<'_>) -> anyhow::Result<Measured> {
    let host = env.fresh_host();
    let address_file = env.fresh_file("address");
    let connections = IDLE_CONNECTIONS.to_string();
    let (mut server_command, name) = match side {
        Side::Iris | Side::IrisUnsealed => {
            let mut command = env.iris_command(&env.listener_bin);
            command
                .args(["-q", "--address", &format!("{host}:0"), "--address-file"])
                .arg(&address_file)
                .args(sealing_flags(side).0);
            (command, "iris-listener".to_owned())
        }
        Side::Baseline(python) | Side::Extra(python) => {
            let mut command = env.python_command(python, "listener.py");
            command.arg(&host).arg(&address_file).arg(&connections);
            (command, format!("{} listener.py", python.label()))
        }
        Side::Floor => bail!("idle has no floor"),
    };
    let mut server = Server::start(&name, &mut server_command, &address_file)?;
    // Settle, then the listener's memory before any connection.
    std::thread::sleep(Duration::from_millis(100));
    let before = proc::rss_mib(server.pid())?;

    let mut client = env.iris_command(&env.bench_bin);
    client.args([
        "idle",
        "--address",
        &server.address,
        "--connections",
        &connections,
    ]);
    let iris = matches!(side, Side::Iris | Side::IrisUnsealed);
    match side {
        // A Pong proves the listener's session serves the connection.
        Side::Iris | Side::IrisUnsealed => {
            client.arg("--ping").args(sealing_flags(side).1);
        }
        Side::Baseline(python) | Side::Extra(python) => {
            if python.version == "3.11" {
                client.arg("--allow-legacy-md5");
            }
        }
        Side::Floor => {}
    }
    let mut gated = Gated::spawn("iris-bench idle", vec![client])?;
    gated.wait_stdout_line(0, "ready", RUN_TIMEOUT)?;
    if !iris {
        // Every accept() returned: all authenticated, held in wait().
        server.wait_line("accepted", RUN_TIMEOUT)?;
    }
    std::thread::sleep(Duration::from_millis(100));
    let after = proc::rss_mib(server.pid())?;
    if iris {
        gated.release(b"")?;
        for client in gated.finish(RUN_TIMEOUT)? {
            client.check()?;
        }
        let (status, log) = server.stop(STOP_TIMEOUT)?;
        ensure!(status.success(), "iris-listener exited with {status}");
        check_sealed(
            side,
            summary_value(&log, "sealed").unwrap_or(0),
            IDLE_CONNECTIONS,
        )?;
    } else {
        // Killed first: it would print a traceback as the connections go.
        drop(server);
        gated.release(b"")?;
        for client in gated.finish(RUN_TIMEOUT)? {
            client.check()?;
        }
    }
    let per_connection = (after - before) * 1024.0 / IDLE_CONNECTIONS as f64;
    Ok((
        vec![after, per_connection],
        json!({
            "connections": IDLE_CONNECTIONS,
            "rss_mib_before": before,
            "rss_mib_with_connections": after,
            "kib_per_connection": per_connection,
        }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_latencies() {
        let p = Percentiles::of((1..=100).map(f64::from).collect());
        assert_eq!((p.samples, p.min, p.max), (100, 1.0, 100.0));
        assert_eq!(p.p50, 50.5);
    }
}
