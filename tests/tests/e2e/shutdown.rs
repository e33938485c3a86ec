//! Stopping the listener while clients send: SIGTERM drains, SIGKILL cuts.

use iris_e2e::{Finished, KEY_ENV, ListenerProcess, client_args, send, spawn_client};

use crate::{FLOWERS, spawn_senders};

/// Waits for a stopped listener to exit 0; returns it and how many `Area:`
/// lines it printed (all of its lines).
fn finish_counting_areas(listener: ListenerProcess) -> (Finished, u64) {
    let finished = listener.finish();
    finished.assert_code(0);
    let printed = finished.area_lines().len() as u64;
    assert_eq!(
        printed,
        finished.stdout.len() as u64,
        "{}",
        finished.describe()
    );
    (finished, printed)
}

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

    let (finished, printed) = finish_counting_areas(listener);
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

/// Past the grace period, streaming sessions are cut between two reads,
/// and each client is told how many of its flowers were printed: it exits
/// 5 reporting that count as acknowledged and the rest as not, and the
/// counts add up exactly to the lines printed and the summary.
#[test]
fn sigterm_past_the_grace_period_cuts_senders_off_with_exit_5() {
    const CLIENTS: usize = 3;
    const REPEAT: u64 = 1_000_000;
    let listener = ListenerProcess::start(&["--shutdown-timeout", "0.2"], &[KEY_ENV]);
    // Far more than can be sent in the grace period.
    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let flower = FLOWERS[i].arg();
            spawn_client(
                &client_args(
                    "send",
                    listener.address(),
                    &["--flower", &flower, "--repeat", &REPEAT.to_string()],
                ),
                &[KEY_ENV],
            )
        })
        .collect();
    listener.wait_for_log("authenticated", CLIENTS);
    listener.wait_for_stdout_lines(1);
    listener.terminate();

    let mut acknowledged = 0;
    let mut sent = 0;
    for client in clients {
        let client = client.finish();
        client.assert_code(5);
        let (handed, acked) = client
            .acknowledgement()
            .unwrap_or_else(|| panic!("no count\n{}", client.describe()));
        assert!(acked <= handed && handed < REPEAT, "{}", client.describe());
        // It reports the rest as not acknowledged.
        assert!(
            client.stderr_text().contains(&format!(
                "it acknowledged {acked} of the {handed} flowers sent; {} not acknowledged;",
                handed - acked
            )),
            "{}",
            client.describe()
        );
        acknowledged += acked;
        sent += handed;
    }
    let (finished, printed) = finish_counting_areas(listener);
    // Every flower acknowledged was printed, and nothing else was.
    assert_eq!(printed, acknowledged, "{}", finished.describe());
    let summary = finished.summary();
    assert_eq!(summary.get("flowers"), printed, "{}", summary.line);
    assert!(!summary.line.contains("abandoned"), "{}", summary.line);
    assert_eq!(
        finished
            .stderr
            .iter()
            .filter(|line| line.contains("cut at the end of --shutdown-timeout"))
            .count(),
        CLIENTS,
        "{}",
        finished.describe()
    );
    eprintln!(
        "SIGTERM mid-stream: {sent} flowers sent, {acknowledged} acknowledged = printed; {}",
        summary.line
    );
}
