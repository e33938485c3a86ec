//! Runs the real `iris-client` binary against fake listeners: an in-process
//! `iris_wire::Listener` that answers natively (and can be told to lose
//! flowers or hang up), a socket that never answers, and a port where
//! nothing listens. Every socket binds port 0; nothing sleeps.

use std::io::Write;
use std::net::TcpListener;
use std::process::{Command, Output, Stdio};
use std::thread::JoinHandle;

use iris_protocol::{Message, Reply};

const KEY: &str = "a test key, not a secret";
const DATA_SET: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/iris.csv");
const HEADER: &str = "sepal_length,sepal_width,petal_length,petal_width,species";

/// The binary with a clean environment: our key, no inherited address or
/// log filter that would change what it prints.
fn client(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_iris-client"));
    command
        .args(args)
        .env("IRIS_AUTHKEY", KEY)
        .env_remove("IRIS_ADDRESS")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null());
    command
}

fn run(command: &mut Command) -> Output {
    command.output().expect("the iris-client binary runs")
}

fn run_with_stdin(command: &mut Command, input: &str) -> Output {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the iris-client binary runs");
    let mut stdin = child.stdin.take().expect("piped stdin");
    stdin.write_all(input.as_bytes()).expect("write stdin");
    drop(stdin);
    child.wait_with_output().expect("wait for iris-client")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Asserts the exit code, showing both streams when it is wrong.
fn assert_exit(output: &Output, code: i32) {
    assert_eq!(
        output.status.code(),
        Some(code),
        "stdout: {}\nstderr: {}",
        stdout(output),
        stderr(output)
    );
}

/// How the fake listener treats its one connection.
#[derive(Clone, Copy)]
enum Behaviour {
    /// Counts flowers until Close, answers Closed with `lose` fewer, and
    /// answers every Ping with Pong.
    Acknowledge { lose: u64 },
    /// Drops the connection after this many flowers, acknowledging nothing.
    HangUpAfter(u64),
}

/// What the fake listener saw.
#[derive(Debug, PartialEq)]
struct Seen {
    flowers: u64,
    pings: u64,
    closed: bool,
}

/// Listens on 127.0.0.1:0 with `key` and serves one connection in a
/// thread. Join the handle only once the client has exited successfully
/// far enough to have connected, or it may wait in accept forever.
fn fake_listener(
    key: &str,
    behaviour: Behaviour,
) -> (String, JoinHandle<Result<Seen, iris_wire::Error>>) {
    let listener = iris_wire::Listener::bind("127.0.0.1:0", key.as_bytes()).expect("bind");
    let address = listener.local_addr().to_string();
    let handle = std::thread::spawn(move || {
        let mut connection = listener.accept()?;
        let mut seen = Seen {
            flowers: 0,
            pings: 0,
            closed: false,
        };
        loop {
            match connection.recv::<Message>()? {
                Message::Iris(_) => {
                    seen.flowers += 1;
                    if let Behaviour::HangUpAfter(n) = behaviour {
                        if seen.flowers == n {
                            return Ok(seen);
                        }
                    }
                }
                Message::Ping => {
                    seen.pings += 1;
                    connection.send(&Reply::Pong)?;
                }
                Message::Close => {
                    let lose = match behaviour {
                        Behaviour::Acknowledge { lose } => lose,
                        Behaviour::HangUpAfter(_) => 0,
                    };
                    connection.send(&Reply::Closed {
                        flowers: seen.flowers.saturating_sub(lose),
                    })?;
                    seen.closed = true;
                    connection.flush()?;
                    // The client hangs up after reading the reply.
                    return match connection.recv::<Message>() {
                        Err(iris_wire::Error::Closed) => Ok(seen),
                        Err(other) => Err(other),
                        Ok(message) => panic!("unexpected {message:?} after Close"),
                    };
                }
            }
        }
    });
    (address, handle)
}

fn join(handle: JoinHandle<Result<Seen, iris_wire::Error>>) -> Seen {
    handle
        .join()
        .expect("listener thread")
        .expect("listener side")
}

#[test]
fn help_lists_the_exit_codes() {
    for args in [&["--help"][..], &["send", "--help"], &["ping", "--help"]] {
        let output = run(&mut client(args));
        assert_exit(&output, 0);
        let help = stdout(&output);
        assert!(help.contains("Exit codes:"), "{help}");
        for line in [
            "  0  success",
            "  1  other error",
            "  2  usage error",
            "  3  cannot connect",
            "  4  authentication failed",
            "  5  data not acknowledged",
            "  6  bad input",
            "  7  ping: the listener is up",
            "130  send stopped by SIGINT",
        ] {
            assert!(help.contains(line), "{args:?} lacks {line:?}:\n{help}");
        }
    }
}

#[test]
fn a_missing_key_is_exit_1_and_says_where_keys_come_from() {
    let output = run(client(&["send", "--address", "127.0.0.1:9"]).env_remove("IRIS_AUTHKEY"));
    assert_exit(&output, 1);
    let message = stderr(&output);
    assert!(message.starts_with("error: "), "{message}");
    assert!(message.contains("IRIS_AUTHKEY"), "{message}");
    assert!(message.contains("--authkey-file"), "{message}");
}

#[test]
fn with_check_first_a_bad_row_fails_with_its_line_before_anything_is_connected() {
    // A socket that is bound but never accepts: had the client connected
    // first, its connection would sit in the backlog and show up below (and
    // the handshake would time out into a different error).
    let silent = TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = silent.local_addr().expect("local address").to_string();
    let csv = format!(
        "{HEADER}\n5.1,3.5,1.4,0.2,setosa\n4.9,3.0,1.4,0.2,setosa\n4.7,abc,1.3,0.2,setosa\n"
    );

    let output = run_with_stdin(
        &mut client(&["send", "-", "--check-first", "--address", &address]),
        &csv,
    );

    assert_exit(&output, 6);
    let message = stderr(&output);
    assert!(message.contains("line 4"), "{message}");
    assert!(
        message.contains(r#"invalid sepal_width "abc""#),
        "{message}"
    );
    assert!(message.contains("nothing was sent"), "{message}");
    assert!(stdout(&output).is_empty());
    silent.set_nonblocking(true).expect("nonblocking");
    let accepted = silent.accept();
    assert!(
        matches!(&accepted, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "the client connected: {accepted:?}"
    );
}

#[test]
fn streaming_a_bad_row_stops_there_after_the_rows_before_it_are_acknowledged() {
    let (address, listener) = fake_listener(KEY, Behaviour::Acknowledge { lose: 0 });
    let csv = format!(
        "{HEADER}\n5.1,3.5,1.4,0.2,setosa\n4.9,3.0,1.4,0.2,setosa\n4.7,abc,1.3,0.2,setosa\n6,3,5,2,virginica\n"
    );
    let output = run_with_stdin(&mut client(&["send", "-", "--address", &address]), &csv);
    assert_exit(&output, 6);
    assert_eq!(
        stdout(&output),
        format!("sent 2 flowers to {address}; 2 acknowledged\n")
    );
    assert_eq!(
        stderr(&output),
        "error: bad input: the send stopped at line 4 of standard input; \
         the 2 flowers before it were sent and acknowledged: \
         line 4: invalid sepal_width \"abc\": invalid float literal\n"
    );
    assert_eq!(
        join(listener),
        Seen {
            flowers: 2,
            pings: 0,
            closed: true
        }
    );
}

#[test]
fn bare_rows_and_json_lines_are_read() {
    let (address, listener) = fake_listener(KEY, Behaviour::Acknowledge { lose: 0 });
    let rows = "5.1,3.5,1.4,0.2,setosa\n6.3,3.3,6.0,2.5,virginica\n";
    let output = run_with_stdin(
        &mut client(&["send", "-", "--no-header", "--address", &address]),
        rows,
    );
    assert_exit(&output, 0);
    assert_eq!(join(listener).flowers, 2);

    let (address, listener) = fake_listener(KEY, Behaviour::Acknowledge { lose: 0 });
    let lines = concat!(
        r#"{"connection":1,"species":"setosa","sepal_length":5.1,"sepal_width":3.5,"petal_length":1.4,"petal_width":0.2,"area":18.13}"#,
        "\n"
    );
    let output = run_with_stdin(
        &mut client(&["send", "-", "--format", "json", "--address", &address]),
        lines,
    );
    assert_exit(&output, 0);
    assert_eq!(join(listener).flowers, 1);

    let output = run(&mut client(&[
        "send",
        "-",
        "--format",
        "json",
        "--no-header",
    ]));
    assert_exit(&output, 2);
}

#[test]
fn a_bad_flower_flag_is_a_usage_error_naming_the_value() {
    let output = run(&mut client(&[
        "send",
        "--flower",
        "5.1,3.5,1.4,-0.2,setosa",
    ]));
    assert_exit(&output, 2);
    let message = stderr(&output);
    assert!(message.contains("5.1,3.5,1.4,-0.2,setosa"), "{message}");
    assert!(message.contains("invalid petal_width: -0.2"), "{message}");
}

#[test]
fn nothing_listening_is_exit_3() {
    // Bind to learn a free port, then free it: connecting is refused.
    let address = {
        let probe = TcpListener::bind("127.0.0.1:0").expect("bind");
        probe.local_addr().expect("local address").to_string()
    };
    for command in ["send", "ping"] {
        let output = run(&mut client(&[command, "--address", &address]));
        assert_exit(&output, 3);
        let message = stderr(&output);
        assert!(
            message.contains(&format!("cannot connect to {address}")),
            "{message}"
        );
    }
}

#[test]
fn sends_the_data_set_and_every_flower_is_acknowledged() {
    let (address, listener) = fake_listener(KEY, Behaviour::Acknowledge { lose: 0 });
    let output = run(&mut client(&["send", DATA_SET, "--address", &address]));
    assert_exit(&output, 0);
    assert_eq!(
        stdout(&output),
        format!("sent 150 flowers to {address}; 150 acknowledged\n")
    );
    assert_eq!(
        join(listener),
        Seen {
            flowers: 150,
            pings: 0,
            closed: true
        }
    );
}

#[test]
fn repeat_streams_the_input_several_times() {
    let (address, listener) = fake_listener(KEY, Behaviour::Acknowledge { lose: 0 });
    let output = run(&mut client(&[
        "send",
        DATA_SET,
        "--repeat",
        "1000",
        "--address",
        &address,
    ]));
    assert_exit(&output, 0);
    assert!(stdout(&output).ends_with("; 150000 acknowledged\n"));
    assert_eq!(join(listener).flowers, 150_000);
}

#[test]
fn inline_flowers_and_the_default_flower_are_sent() {
    let (address, listener) = fake_listener(KEY, Behaviour::Acknowledge { lose: 0 });
    let output = run(&mut client(&[
        "send",
        "--flower",
        "5.1,3.5,1.4,0.2,setosa",
        "--flower",
        "7.7, 3.8, 6.7, 2.2, Iris-virginica",
        "--address",
        &address,
    ]));
    assert_exit(&output, 0);
    assert!(stdout(&output).starts_with("sent 2 flowers"));
    assert_eq!(join(listener).flowers, 2);

    let (address, listener) = fake_listener(KEY, Behaviour::Acknowledge { lose: 0 });
    let output = run(&mut client(&["send", "--address", &address]));
    assert_exit(&output, 0);
    assert_eq!(
        stdout(&output),
        format!("sent 1 flower to {address}; 1 acknowledged\n")
    );
    assert_eq!(join(listener).flowers, 1);
}

#[test]
fn stdin_is_read_with_a_dash() {
    let (address, listener) = fake_listener(KEY, Behaviour::Acknowledge { lose: 0 });
    let csv = format!("{HEADER}\n5.1,3.5,1.4,0.2,setosa\n6.3,3.3,6.0,2.5,virginica\n");
    let output = run_with_stdin(&mut client(&["send", "-", "--address", &address]), &csv);
    assert_exit(&output, 0);
    assert!(stdout(&output).ends_with("; 2 acknowledged\n"));
    assert_eq!(join(listener).flowers, 2);
}

#[test]
fn fewer_acknowledged_than_sent_is_exit_5_naming_the_loss() {
    let (address, listener) = fake_listener(KEY, Behaviour::Acknowledge { lose: 60 });
    let output = run(&mut client(&["send", DATA_SET, "--address", &address]));
    assert_exit(&output, 5);
    assert_eq!(
        stderr(&output),
        "error: the listener acknowledged 90 of 150 flowers; 60 were lost\n"
    );
    assert!(stdout(&output).is_empty());
    join(listener);
}

#[test]
fn a_listener_that_hangs_up_is_exit_5_saying_what_may_be_lost() {
    let (address, listener) = fake_listener(KEY, Behaviour::HangUpAfter(10));
    let output = run(&mut client(&[
        "send",
        DATA_SET,
        "--repeat",
        "100",
        "--address",
        &address,
    ]));
    assert_exit(&output, 5);
    let message = stderr(&output);
    assert!(
        message.contains(&format!(
            "the connection to {address} broke before the listener acknowledged"
        )),
        "{message}"
    );
    assert!(message.contains("may be lost"), "{message}");
    assert_eq!(join(listener).flowers, 10);
}

#[test]
fn a_wrong_key_is_exit_4() {
    let (address, listener) = fake_listener("another key", Behaviour::Acknowledge { lose: 0 });
    let output = run(&mut client(&["send", "--address", &address]));
    assert_exit(&output, 4);
    let message = stderr(&output);
    assert!(message.contains("authentication failed"), "{message}");
    assert!(message.contains("different authkey"), "{message}");
    assert!(!message.contains("cannot connect"), "{message}");
    assert!(
        message.contains("IRIS_AUTHKEY or --authkey-file"),
        "{message}"
    );
    let refused = listener.join().expect("listener thread");
    assert!(
        matches!(refused, Err(iris_wire::Error::Authentication(_))),
        "{refused:?}"
    );
}

#[test]
fn ping_reports_each_round_trip_and_a_summary_then_closes_cleanly() {
    let (address, listener) = fake_listener(KEY, Behaviour::Acknowledge { lose: 0 });
    let output = run(&mut client(&[
        "ping",
        "--count",
        "3",
        "--address",
        &address,
    ]));
    assert_exit(&output, 0);
    let text = stdout(&output);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    for line in &lines[..3] {
        assert!(
            line.starts_with(&format!("pong from {address}: time=")) && line.ends_with(" ms"),
            "{line}"
        );
    }
    assert!(
        lines[3].starts_with(&format!("3 pongs from {address}: min/median/max = ")),
        "{}",
        lines[3]
    );
    assert_eq!(
        join(listener),
        Seen {
            flowers: 0,
            pings: 3,
            closed: true
        }
    );
}

#[test]
fn a_single_ping_prints_no_summary() {
    let (address, listener) = fake_listener(KEY, Behaviour::Acknowledge { lose: 0 });
    let output = run(&mut client(&["ping", "--address", &address]));
    assert_exit(&output, 0);
    assert_eq!(stdout(&output).lines().count(), 1);
    assert_eq!(join(listener).pings, 1);
}
