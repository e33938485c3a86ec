//! Authentication: wrong keys, missing keys, key files.

use iris_e2e::{
    AUTHKEY_ENV, KEY_ENV, ListenerProcess, TEST_KEY, client_args, run_client, send, write_file,
};

use crate::FLOWERS;

#[test]
fn a_wrong_key_is_rejected_and_the_listener_keeps_serving() {
    let listener = ListenerProcess::start(&[], &[KEY_ENV]);
    let flower = FLOWERS[0].arg();

    let intruder = run_client(
        &client_args("send", listener.address(), &["--flower", &flower]),
        &[(AUTHKEY_ENV, "not the password")],
    );
    intruder.assert_code(4);
    assert!(
        !intruder.stderr.is_empty(),
        "the client says nothing about the failure\n{}",
        intruder.describe()
    );
    let rejections = listener.wait_for_log("reject", 1);
    assert_eq!(rejections.len(), 1, "{rejections:?}");

    // The listener is still serving: a good client right after succeeds.
    let good = send(listener.address(), &["--flower", &flower]);
    good.assert_all_acknowledged(1);

    let finished = listener.stop();
    finished.assert_code(0);
    assert_eq!(finished.area_lines().len(), 1, "{}", finished.describe());
    let summary = finished.summary();
    assert_eq!(summary.get("rejected"), 1, "{}", summary.line);
    assert_eq!(summary.get("flowers"), 1, "{}", summary.line);
}

#[test]
fn a_listener_without_a_key_refuses_to_start() {
    let Err(finished) = ListenerProcess::try_start(&[], &[]) else {
        panic!("the listener started without an authkey");
    };
    assert!(
        finished.code().is_some_and(|code| code != 0),
        "{}",
        finished.describe()
    );
    let stderr = finished.stderr_text();
    assert!(
        stderr.contains(AUTHKEY_ENV) && stderr.contains("--authkey-file"),
        "the message should name both {AUTHKEY_ENV} and --authkey-file\n{}",
        finished.describe()
    );
}

#[test]
fn a_client_without_a_key_fails_with_a_message() {
    let listener = ListenerProcess::start(&[], &[KEY_ENV]);
    let flower = FLOWERS[0].arg();
    let client = run_client(
        &client_args("send", listener.address(), &["--flower", &flower]),
        &[],
    );
    assert!(
        client.code().is_some_and(|code| code != 0),
        "{}",
        client.describe()
    );
    assert!(
        client.stderr_text().contains(AUTHKEY_ENV),
        "the message should name {AUTHKEY_ENV}\n{}",
        client.describe()
    );
    let finished = listener.stop();
    finished.assert_code(0);
    assert_eq!(finished.summary().get("flowers"), 0);
}

#[test]
fn keys_can_come_from_files() {
    let dir = tempfile::tempdir().expect("temp dir");
    // One trailing newline is not part of the key.
    let key_file = write_file(dir.path(), "key", &format!("{TEST_KEY}\n"));
    let key_file = key_file.to_str().expect("a UTF-8 path");
    let listener = ListenerProcess::start(&["--authkey-file", key_file], &[]);
    let flower = FLOWERS[1].arg();

    // The listener's key file against the client's environment variable.
    let client = send(listener.address(), &["--flower", &flower]);
    client.assert_code(0);
    // And a key file on both sides.
    let client = run_client(
        &client_args(
            "send",
            listener.address(),
            &["--authkey-file", key_file, "--flower", &flower],
        ),
        &[],
    );
    client.assert_all_acknowledged(1);

    let finished = listener.stop();
    finished.assert_code(0);
    assert_eq!(finished.summary().get("flowers"), 2);
}
