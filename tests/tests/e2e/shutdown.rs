//! Stopping the listener while clients send: SIGTERM drains, SIGKILL cuts.

use iris_e2e::{KEY_ENV, ListenerProcess, client_args, send, spawn_client};

use crate::{FLOWERS, spawn_senders};

#[test]
fn sigterm_while_clients_send_prints_every_acknowledged_flower() {
    const CLIENTS: usize = 4;
    const REPEAT: u64 = 50_000;
    let listener = ListenerProcess::start(&[], &[KEY_ENV]);
    let clients = spawn_senders(listener.address(), CLIENTS, REPEAT);
    // Every client is connected and authenticated, and flowers are flowing.
    listener.wait_for_log("authenticated", CLIENTS);
    listener.wait_for_stdout_lines(1);
    listener.terminate();

    let mut acknowledged = 0;
    for client in clients {
        let finished = client.finish();
        match finished.code() {
            // Finished within the grace period: all of it acknowledged.
            Some(0) => {
                assert_eq!(
                    finished.acknowledgement(),
                    Some((REPEAT, REPEAT)),
                    "{}",
                    finished.describe()
                );
            }
            // Cut off: not (all) acknowledged, and it says so.
            Some(5) => assert!(!finished.stderr.is_empty(), "{}", finished.describe()),
            _ => panic!("expected exit 0 or 5\n{}", finished.describe()),
        }
        eprintln!(
            "client exited {:?}, acknowledged {:?}",
            finished.code(),
            finished.acknowledgement()
        );
        acknowledged += finished.acknowledged();
    }

    let finished = listener.finish();
    finished.assert_code(0);
    let printed = finished.area_lines().len() as u64;
    assert_eq!(
        printed,
        finished.stdout.len() as u64,
        "{}",
        finished.describe()
    );
    assert!(
        printed >= acknowledged,
        "{acknowledged} flowers acknowledged but only {printed} printed"
    );
    let summary = finished.summary();
    assert_eq!(summary.get("flowers"), printed, "{}", summary.line);
    assert_eq!(
        summary.get("connections"),
        CLIENTS as u64,
        "{}",
        summary.line
    );
}

#[test]
fn sigkill_while_a_client_sends_makes_it_exit_5() {
    let mut listener = ListenerProcess::start(&[], &[KEY_ENV]);
    let flower = FLOWERS[0].arg();
    let client = spawn_client(
        &client_args(
            "send",
            listener.address(),
            &["--flower", &flower, "--repeat", "1000000"],
        ),
        &[KEY_ENV],
    );
    // The client is connected and sending when the listener dies.
    listener.wait_for_stdout_lines(1);
    listener.kill();
    let killed = listener.finish();
    assert_eq!(
        killed.code(),
        None,
        "killed by a signal\n{}",
        killed.describe()
    );

    let finished = client.finish();
    finished.assert_code(5);
    assert!(
        !finished.stderr.is_empty(),
        "the client should say what went wrong\n{}",
        finished.describe()
    );
}

#[test]
fn after_sigterm_the_listener_is_gone_and_clients_cannot_connect() {
    // A Unix socket in a private directory: no other listener can take the
    // address over once this one is gone (as a TCP port could).
    let dir = tempfile::tempdir().expect("temp dir");
    let socket = dir.path().join("iris.sock");
    let socket = socket.to_str().expect("a UTF-8 path");
    let listener = ListenerProcess::start(&["--address", socket], &[KEY_ENV]);
    let finished = listener.stop();
    finished.assert_code(0);
    let summary = finished.summary();
    assert_eq!(summary.get("connections"), 0, "{}", summary.line);
    assert_eq!(summary.get("flowers"), 0, "{}", summary.line);

    let client = send(socket, &["--flower", &FLOWERS[0].arg()]);
    client.assert_code(3);
}

#[test]
fn sigterm_past_the_grace_period_cuts_senders_off_with_exit_5() {
    const CLIENTS: usize = 3;
    let listener = ListenerProcess::start(&["--shutdown-timeout", "0.2"], &[KEY_ENV]);
    // Far more than can be sent in the grace period.
    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let flower = FLOWERS[i].arg();
            spawn_client(
                &client_args(
                    "send",
                    listener.address(),
                    &["--flower", &flower, "--repeat", "1000000"],
                ),
                &[KEY_ENV],
            )
        })
        .collect();
    listener.wait_for_log("authenticated", CLIENTS);
    listener.wait_for_stdout_lines(1);
    listener.terminate();

    let finished = listener.finish();
    finished.assert_code(0);
    let summary = finished.summary();
    let printed = finished.area_lines().len() as u64;
    // Lines are published whole, and the summary counts them after the
    // last: exactly what was printed, even with sessions cut off.
    assert_eq!(
        summary.get("flowers"),
        printed,
        "{printed} printed; {}",
        summary.line
    );
    // Cut off: the sessions were still open when the bound ran out.
    assert!(summary.line.ends_with(" abandoned=3"), "{}", summary.line);
    let mut acknowledged = 0;
    let mut sent = 0;
    for client in clients {
        let client = client.finish();
        client.assert_code(5);
        // It says how many it sent and that none of them was acknowledged.
        let stderr = client.stderr_text();
        assert!(
            stderr.contains("broke before the listener acknowledged"),
            "{}",
            client.describe()
        );
        let handed = stderr
            .split_once(" were sent and up to ")
            .and_then(|(before, _)| before.rsplit(' ').next())
            .and_then(|count| count.parse::<u64>().ok())
            .unwrap_or_else(|| panic!("no count of flowers sent\n{}", client.describe()));
        assert!(
            stderr.contains(&format!("up to {handed} may be lost")),
            "{}",
            client.describe()
        );
        assert!(handed < 1_000_000, "{}", client.describe());
        acknowledged += client.acknowledged();
        sent += handed;
    }
    assert!(
        printed >= acknowledged,
        "{acknowledged} flowers acknowledged but only {printed} printed"
    );
    // Nothing was printed that the clients did not send.
    assert!(printed <= sent, "{printed} printed, {sent} sent");
    eprintln!(
        "SIGTERM mid-stream: {sent} flowers sent, {printed} printed, {acknowledged} acknowledged; {}",
        summary.line
    );
}
