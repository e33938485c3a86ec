//! The Python sealed client (`tests/python/sealed_client.py`), written from
//! `docs/PROTOCOL.md` alone, against the real listener: proof that the spec
//! is complete, and that its test vectors are the ones the document shows.

use std::path::PathBuf;

use iris_e2e::{Finished, KEY_ENV, ListenerProcess, Process, repo_root};
use iris_testkit::Python;

use crate::{FLOWERS, area_of};

/// The seed's client, on a given port and flower: `sys.argv[1:]` are the
/// seed's directory, the port and `SL,SW,PL,PW,SPECIES`.
const CPYTHON_CLIENT: &str = r#"
import pickle, sys
from multiprocessing.connection import Client
sys.path.insert(0, sys.argv[1])
from iris import Iris
*measurements, species = sys.argv[3].split(',')
connection = Client(('127.0.0.1', int(sys.argv[2])), authkey=b'My voice is my password, verify me.')
connection.send(pickle.dumps(Iris(*map(float, measurements), species)))
connection.send('close')
connection.close()
"#;

fn sealed_client() -> PathBuf {
    repo_root()
        .join("tests")
        .join("python")
        .join("sealed_client.py")
}

/// Runs `sealed_client.py ARGS` with `python` to its end.
fn run_sealed_client(python: &Python, args: &[&str]) -> Finished {
    let mut command = python.command();
    command.arg(sealed_client()).args(args);
    Process::spawn("sealed_client.py", command).finish()
}

/// Sends the three test flowers, with `options` (`--fast-open`, say); the
/// client must report a sealed session.
fn send_flowers(python: &Python, address: &str, options: &[&str]) {
    let flowers: Vec<String> = FLOWERS.iter().map(|flower| flower.arg()).collect();
    let mut args = vec!["--address", address];
    for flower in &flowers {
        args.extend(["--flower", flower.as_str()]);
    }
    args.extend(options);
    let client = run_sealed_client(python, &args);
    client.assert_code(0);
    assert!(
        client.stdout_text().contains("sent 3 flowers")
            && client.stdout_text().contains("in a sealed session"),
        "{}",
        client.describe()
    );
}

/// Asserts that the listener printed the areas of `sessions` sessions of
/// the three flowers and the `more` areas, in any order.
fn assert_areas(finished: &Finished, sessions: usize, more: &[f64]) {
    let mut areas: Vec<f64> = finished.area_lines().into_iter().map(area_of).collect();
    let mut expected: Vec<f64> = (0..sessions)
        .flat_map(|_| FLOWERS.iter().map(|flower| flower.area()))
        .chain(more.iter().copied())
        .collect();
    areas.sort_by(f64::total_cmp);
    expected.sort_by(f64::total_cmp);
    assert_eq!(areas, expected, "{}", finished.describe());
}

/// The listener's `authenticated` log lines.
fn authenticated_lines(finished: &Finished) -> Vec<&str> {
    finished
        .stderr
        .iter()
        .map(String::as_str)
        .filter(|line| line.contains(" authenticated"))
        .collect()
}

#[test]
fn the_python_sealed_client_is_served_sealed_pipelined_and_fast_open() {
    let test = "the_python_sealed_client_is_served_sealed_pipelined_and_fast_open";
    let Some(python) = iris_testkit::python3(test) else {
        return;
    };

    // Sealing by default: the sealed client in both modes, and a CPython
    // client beside them (python3 is 3.11: legacy MD5), unsealed.
    let listener = ListenerProcess::start(&["--allow-legacy-md5"], &[KEY_ENV]);
    send_flowers(&python, listener.address(), &[]);
    send_flowers(&python, listener.address(), &["--fast-open"]);
    let port = listener
        .address()
        .rsplit_once(':')
        .expect("HOST:PORT")
        .1
        .to_owned();
    let mut cpython = python.command();
    cpython
        .arg("-c")
        .arg(CPYTHON_CLIENT)
        .arg(repo_root().join("tests").join("seed"))
        .arg(&port)
        .arg(FLOWERS[0].arg());
    Process::spawn("a CPython client", cpython)
        .finish()
        .assert_code(0);
    let finished = listener.stop();
    finished.assert_code(0);
    assert_areas(&finished, 2, &[FLOWERS[0].area()]);
    let logged = authenticated_lines(&finished);
    assert_eq!(logged.len(), 3, "{}", finished.describe());
    for line in &logged[..2] {
        assert!(
            line.ends_with("authenticated, sealed"),
            "the sealed client's connection is not logged as sealed: {line}"
        );
    }
    assert!(
        logged[2].contains("unsealed"),
        "the CPython client's connection is not logged as unsealed: {}",
        logged[2]
    );
    let summary = finished.summary();
    assert_eq!(summary.get("sealed"), 2, "{}", summary.line);
    assert_eq!(summary.get("unsealed"), 1, "{}", summary.line);
    assert_eq!(summary.get("rejected"), 0, "{}", summary.line);

    // A listener that requires sealing serves it the same, both modes,
    // and reassembles frames from records cut anywhere (every byte its own
    // record; frames straddling records of 7 bytes).
    let listener = ListenerProcess::start(&["--require-sealed"], &[KEY_ENV]);
    send_flowers(&python, listener.address(), &[]);
    send_flowers(&python, listener.address(), &["--fast-open"]);
    send_flowers(&python, listener.address(), &["--record-size", "1"]);
    send_flowers(
        &python,
        listener.address(),
        &["--fast-open", "--record-size", "7"],
    );
    let finished = listener.stop();
    finished.assert_code(0);
    assert_areas(&finished, 4, &[]);
    let summary = finished.summary();
    assert_eq!(summary.get("sealed"), 4, "{}", summary.line);
    assert_eq!(summary.get("unsealed"), 0, "{}", summary.line);
}

#[test]
fn a_wrong_key_fails_cleanly_in_both_modes_and_the_listener_keeps_serving() {
    let test = "a_wrong_key_fails_cleanly_in_both_modes_and_the_listener_keeps_serving";
    let Some(python) = iris_testkit::python3(test) else {
        return;
    };
    let listener = ListenerProcess::start(&[], &[KEY_ENV]);
    let address = listener.address();
    let wrong = ["--address", address, "--authkey", "not the password"];

    // Pipelined, the listener refuses our answer with #FAILURE#; in fast
    // open, the client sees first that the listener's answer is wrong.
    let pipelined = run_sealed_client(&python, &wrong);
    pipelined.assert_code(4);
    assert!(
        pipelined
            .stderr_text()
            .contains("the listener rejected our key"),
        "{}",
        pipelined.describe()
    );
    let fast_open = run_sealed_client(&python, &[&wrong[..], &["--fast-open"]].concat());
    fast_open.assert_code(4);
    assert!(
        fast_open
            .stderr_text()
            .contains("the listener's answer to our challenge is wrong"),
        "{}",
        fast_open.describe()
    );
    for failed in [&pipelined, &fast_open] {
        assert!(
            !failed.stderr_text().contains("Traceback"),
            "a failure is a message, not a traceback\n{}",
            failed.describe()
        );
    }
    listener.wait_for_log("rejected", 2);

    send_flowers(&python, address, &["--fast-open"]);
    let finished = listener.stop();
    finished.assert_code(0);
    assert_areas(&finished, 1, &[]);
    let summary = finished.summary();
    assert_eq!(summary.get("rejected"), 2, "{}", summary.line);
    assert_eq!(summary.get("sealed"), 1, "{}", summary.line);
}

#[test]
fn the_python_sealed_client_refuses_a_listener_that_cannot_seal() {
    let test = "the_python_sealed_client_refuses_a_listener_that_cannot_seal";
    let Some(python) = iris_testkit::python3(test) else {
        return;
    };
    let listener = ListenerProcess::start(&["--no-sealing"], &[KEY_ENV]);
    for mode in [&[][..], &["--fast-open"]] {
        let client = run_sealed_client(
            &python,
            &[&["--address", listener.address()][..], mode].concat(),
        );
        client.assert_code(9);
        assert!(
            client
                .stderr_text()
                .contains("the listener cannot seal: it is an iris listener with sealing off"),
            "{}",
            client.describe()
        );
    }
    let finished = listener.stop();
    finished.assert_code(0);
    assert!(finished.area_lines().is_empty(), "{}", finished.describe());
    assert_eq!(finished.summary().get("flowers"), 0);
}

/// The block of section 6 is what the independent implementation computes,
/// so the document cannot drift from it.
#[test]
fn the_test_vectors_in_protocol_md_are_the_python_clients() {
    let Some(python) =
        iris_testkit::python3("the_test_vectors_in_protocol_md_are_the_python_clients")
    else {
        return;
    };
    let vectors = run_sealed_client(&python, &["--vectors"]);
    vectors.assert_code(0);
    let block = format!("{}\n", vectors.stdout_text());
    let names: Vec<&str> = vectors
        .stdout
        .iter()
        .filter_map(|line| line.split_once(" = ").map(|(name, _)| name))
        .collect();
    assert_eq!(
        names,
        [
            "Lm",
            "Cm",
            "Cr",
            "Lr",
            "TH",
            "shared",
            "early",
            "derived",
            "master",
            "c_secret",
            "l_secret",
            "client key",
            "client iv",
            "listener key",
            "listener iv",
            "client record 0",
            "client record 1",
            "listener record 0",
            "c_secret next",
        ],
        "{}",
        vectors.describe()
    );
    assert!(block.starts_with("```text\n") && block.ends_with("\n```\n"));
    let doc_path = repo_root().join("docs").join("PROTOCOL.md");
    let doc = std::fs::read_to_string(&doc_path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", doc_path.display()));
    assert!(
        doc.contains(&block),
        "docs/PROTOCOL.md's test vectors differ from `python3 tests/python/sealed_client.py \
         --vectors`; it prints:\n{block}"
    );
}

/// Sends, through the Python client's record layer, the seed's flower and
/// `close` with an empty record before each (section 4.3 allows records of
/// 0 to 65536 bytes): the empty record right after record 0 leaves in the
/// same write as record 0. `sys.argv[1:]`: tests/python, tests/seed, the
/// address.
const EMPTY_RECORDS: &str = r#"
import pickle, sys
sys.path[:0] = sys.argv[1:3]
import sealed_client
from iris import Iris
connection = sealed_client.connect(sys.argv[3], sealed_client.SEED_KEY.encode())
flower = sealed_client.frame(pickle.dumps(pickle.dumps(Iris(5.1, 3.5, 1.4, 0.2, 'setosa'))))
close = sealed_client.frame(pickle.dumps('close'))
connection.write_records([b'', flower, b'', close])
connection.close()
"#;

#[test]
fn the_listener_opens_empty_records() {
    let Some(python) = iris_testkit::python3("the_listener_opens_empty_records") else {
        return;
    };
    let listener = ListenerProcess::start(&[], &[KEY_ENV]);
    let mut command = python.command();
    command
        .arg("-c")
        .arg(EMPTY_RECORDS)
        .arg(repo_root().join("tests").join("python"))
        .arg(repo_root().join("tests").join("seed"))
        .arg(listener.address());
    Process::spawn("empty records", command)
        .finish()
        .assert_code(0);
    let finished = listener.stop();
    finished.assert_code(0);
    assert_eq!(
        finished.area_lines(),
        ["Area: 18.13"],
        "{}",
        finished.describe()
    );
}

/// 25,000 flowers of 168 bytes in 1-byte records: 4.2 million records, so
/// the client's direction moves to its second key (after 2^22 records,
/// section 4.3) before the end.
#[test]
fn the_key_update_after_2_22_records_matches_the_listener() {
    let Some(python) =
        iris_testkit::python3("the_key_update_after_2_22_records_matches_the_listener")
    else {
        return;
    };
    let listener = ListenerProcess::start_with_stdout(&[], &[KEY_ENV], std::process::Stdio::null());
    let client = run_sealed_client(
        &python,
        &[
            "--address",
            listener.address(),
            "--record-size",
            "1",
            "--repeat",
            "25000",
            "--timeout",
            "120",
        ],
    );
    let finished = listener.stop();
    assert_eq!(
        client.code(),
        Some(0),
        "{}\n{}",
        client.describe(),
        finished.describe()
    );
    finished.assert_code(0);
    let summary = finished.summary();
    assert_eq!(summary.get("flowers"), 25_000, "{}", finished.describe());
    assert_eq!(summary.get("sealed"), 1, "{}", summary.line);
}
