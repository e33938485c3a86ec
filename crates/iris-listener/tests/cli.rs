//! The real `iris-listener` binary, driven by an in-process iris client.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use iris_model::{Iris, Species};
use iris_protocol::{Message, Reply};
use iris_wire::Client;

const KEY: &str = "listener cli test key";

fn listener() -> Command {
    Command::new(env!("CARGO_BIN_EXE_iris-listener"))
}

/// Kills the child if the test fails half-way.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the listener on an ephemeral port and waits until it says it is
/// listening; returns the address from its address file.
fn start(extra: &[&str]) -> (Running, String, BufReader<std::process::ChildStderr>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let address_file = dir.path().join("address");
    let mut child = listener()
        .args(["--address", "127.0.0.1:0", "--address-file"])
        .arg(&address_file)
        .args(extra)
        .env("IRIS_AUTHKEY", KEY)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start iris-listener");
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
    let running = Running(child);
    let mut line = String::new();
    loop {
        line.clear();
        assert!(
            stderr.read_line(&mut line).expect("read stderr") > 0,
            "listener exited early"
        );
        if line.contains("listening on") {
            break;
        }
    }
    let address = std::fs::read_to_string(&address_file).expect("address file");
    (running, address.trim().to_owned(), stderr)
}

#[test]
fn refuses_to_start_without_a_key_and_says_how_to_set_one() {
    let output = listener()
        .args(["--address", "127.0.0.1:0"])
        .env_remove("IRIS_AUTHKEY")
        .output()
        .expect("run");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("IRIS_AUTHKEY") && stderr.contains("--authkey-file"),
        "{stderr}"
    );
}

#[test]
fn help_explains_the_key_and_shutdown() {
    let output = listener().arg("--help").output().expect("run");
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(
        help.contains("IRIS_AUTHKEY") && help.contains("SIGTERM"),
        "{help}"
    );
}

#[test]
fn once_serves_one_client_prints_areas_and_acknowledges() {
    let (mut running, address, stderr) = start(&["--once"]);
    let mut connection = Client::connect(&address, KEY.as_bytes()).expect("connect");
    let seed = Iris::new(5.1, 3.5, 1.4, 0.2, Species::Setosa).expect("valid");
    for _ in 0..3 {
        connection.send(&Message::Iris(seed)).expect("send");
    }
    connection.send(&Message::Ping).expect("ping");
    assert_eq!(connection.recv::<Reply>().expect("pong"), Reply::Pong);
    connection.send(&Message::Close).expect("close");
    assert_eq!(
        connection.recv::<Reply>().expect("ack"),
        Reply::Closed { flowers: 3 }
    );

    let status = running.0.wait().expect("listener exits by itself");
    assert!(status.success());
    let mut stdout = String::new();
    std::io::Read::read_to_string(&mut running.0.stdout.take().expect("stdout"), &mut stdout)
        .expect("stdout");
    assert_eq!(stdout, "Area: 18.13\n".repeat(3));
    let log: Vec<String> = stderr.lines().map(|l| l.expect("utf-8")).collect();
    let summary = log
        .iter()
        .find(|l| l.starts_with("summary:"))
        .expect("summary line");
    assert_eq!(
        summary,
        "summary: connections=1 rejected=0 flowers=3 setosa=3 versicolor=0 virginica=0 sealed=1 unsealed=0"
    );
}

#[test]
fn a_bad_message_closes_only_that_connection() {
    let (mut running, address, _stderr) = start(&[]);
    let mut bad = Client::connect(&address, KEY.as_bytes()).expect("connect");
    bad.send_bytes(b"\x07garbage").expect("send");
    assert!(
        bad.recv_bytes().is_err(),
        "the listener drops the offending connection"
    );

    let mut good = Client::connect(&address, KEY.as_bytes()).expect("connect again");
    good.send(&Message::Close).expect("close");
    assert_eq!(
        good.recv::<Reply>().expect("ack"),
        Reply::Closed { flowers: 0 }
    );
    assert!(
        running.0.try_wait().expect("status").is_none(),
        "still running"
    );
}

#[test]
fn connections_past_the_limit_are_refused_not_queued() {
    let (mut running, address, stderr) = start(&["--max-connections", "1"]);
    let mut first = Client::connect(&address, KEY.as_bytes()).expect("first client");
    first.send(&Message::Ping).expect("ping");
    assert_eq!(first.recv::<Reply>().expect("pong"), Reply::Pong);

    let err = Client::connect(&address, KEY.as_bytes()).expect_err("over the limit");
    // Told apart from a wrong key: closed before the challenge.
    assert!(
        matches!(
            err,
            iris_wire::Error::Authentication(iris_wire::AuthError::ClosedBeforeChallenge)
        ),
        "{err}"
    );

    // Once the first leaves, its slot is free again.
    first.send(&Message::Close).expect("close");
    assert_eq!(
        first.recv::<Reply>().expect("ack"),
        Reply::Closed { flowers: 0 }
    );
    drop(first);
    let mut lines = stderr.lines();
    let mut closed = false;
    for line in lines.by_ref() {
        let line = line.expect("utf-8");
        if line.contains("connection 1 closed") {
            closed = true;
            break;
        }
        if line.contains("connection 2") {
            assert!(
                line.contains("refused: the limit of 1 connections is reached"),
                "{line}"
            );
        }
    }
    assert!(closed, "the first connection's close was logged");
    let mut third = Client::connect(&address, KEY.as_bytes()).expect("a freed slot");
    third.send(&Message::Close).expect("close");
    assert_eq!(
        third.recv::<Reply>().expect("ack"),
        Reply::Closed { flowers: 0 }
    );
    assert!(
        running.0.try_wait().expect("status").is_none(),
        "still running"
    );
}

#[test]
fn a_closed_stdout_ends_the_listener_quietly() {
    let (mut running, address, stderr) = start(&[]);
    let seed = Iris::new(5.1, 3.5, 1.4, 0.2, Species::Setosa).expect("valid");
    let mut stdout = BufReader::new(running.0.stdout.take().expect("stdout"));
    let mut connection = Client::connect(&address, KEY.as_bytes()).expect("connect");
    connection.send(&Message::Iris(seed)).expect("send");
    connection.send(&Message::Ping).expect("ping");
    assert_eq!(connection.recv::<Reply>().expect("pong"), Reply::Pong);
    let mut line = String::new();
    stdout.read_line(&mut line).expect("first line");
    assert_eq!(line, "Area: 18.13\n");
    // Like `iris-listener | head -1`: the reader goes away.
    drop(stdout);
    connection.send(&Message::Iris(seed)).expect("send");
    connection.send(&Message::Close).expect("close");
    assert!(
        connection.recv::<Reply>().is_err(),
        "a flower that could not be printed is not acknowledged"
    );
    let status = running.0.wait().expect("the listener stops by itself");
    assert!(status.success(), "{status}");
    let log: Vec<String> = stderr.lines().map(|l| l.expect("utf-8")).collect();
    assert!(
        log.iter()
            .any(|l| l.contains("stdout was closed by its reader")),
        "{log:#?}"
    );
    assert!(!log.iter().any(|l| l.contains("panicked")), "{log:#?}");
}

#[test]
fn usage_errors_exit_2_like_the_clients() {
    for args in [
        &["--no-such-flag"][..],
        &["--max-connections", "0"],
        &["--address", "nowhere"],
    ] {
        let output = listener()
            .args(args)
            .env("IRIS_AUTHKEY", KEY)
            .stdin(Stdio::null())
            .output()
            .expect("run");
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

#[test]
fn help_lists_the_exit_codes() {
    let output = listener().arg("--help").output().expect("run");
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(help.contains("Exit codes:"), "{help}");
    for code in ["  0  ", "  1  ", "  2  usage error"] {
        assert!(help.contains(code), "no {code:?} in {help}");
    }
}

#[test]
fn an_address_in_use_says_what_to_do() {
    let (_running, address, _stderr) = start(&[]);
    let output = listener()
        .args(["--address", &address])
        .env("IRIS_AUTHKEY", KEY)
        .stdin(Stdio::null())
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    for needle in [
        &format!("cannot listen on {address}")[..],
        "another port",
        "--address localhost:0",
        "stop it",
    ] {
        assert!(stderr.contains(needle), "no {needle:?} in {stderr}");
    }
}

#[test]
fn generates_a_man_page_and_completions() {
    for (kind, needle) in [
        ("man", ".TH iris-listener 1"),
        ("complete-bash", "--allow-legacy-md5"),
        ("complete-zsh", "--allow-legacy-md5"),
        ("complete-fish", "allow-legacy-md5"),
    ] {
        let output = listener().args(["--generate", kind]).output().expect("run");
        assert!(output.status.success(), "{kind}");
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(text.contains(needle), "{kind}: no {needle:?}");
    }
    let output = listener()
        .args(["--generate", "complete-tcsh"])
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(2));
}
