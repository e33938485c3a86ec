//! The client's exit codes for usage errors, bad input and unreachable
//! listeners, and `ping`.

use iris_e2e::{KEY_ENV, ListenerProcess, client_args, run_client, send, write_file};

#[test]
fn a_usage_error_exits_2() {
    let client = run_client(&["send", "--no-such-flag"], &[KEY_ENV]);
    client.assert_code(2);
}

#[test]
fn a_malformed_flower_argument_is_a_usage_error() {
    let client = run_client(&["send", "--flower", "5.1,3.5,1.4"], &[KEY_ENV]);
    client.assert_code(2);
}

#[test]
fn a_malformed_csv_exits_6_after_the_rows_before_it_or_with_check_first_before_any() {
    let dir = tempfile::tempdir().expect("temp dir");
    let csv = write_file(
        dir.path(),
        "bad.csv",
        "sepal_length,sepal_width,petal_length,petal_width,species\n\
         5.1,3.5,1.4,0.2,setosa\n\
         5.1,oops,1.4,0.2,setosa\n",
    );
    let csv = csv.to_str().expect("a UTF-8 path");
    let listener = ListenerProcess::start(&[], &[KEY_ENV]);

    let client = send(listener.address(), &[csv]);
    client.assert_code(6);
    assert_eq!(
        client.acknowledgement(),
        Some((1, 1)),
        "{}",
        client.describe()
    );
    assert!(
        client.stderr_text().contains("line 3"),
        "{}",
        client.describe()
    );

    let client = send(listener.address(), &[csv, "--check-first"]);
    client.assert_code(6);
    assert!(
        client.stderr_text().contains("nothing was sent"),
        "{}",
        client.describe()
    );
    let finished = listener.stop();
    finished.assert_code(0);
    assert_eq!(finished.summary().get("flowers"), 1);
    assert_eq!(finished.area_lines(), ["Area: 18.13"]);
}

#[test]
fn an_unreachable_listener_exits_3() {
    let dir = tempfile::tempdir().expect("temp dir");
    let nowhere = dir.path().join("nobody-listens-here.sock");
    let client = send(
        nowhere.to_str().expect("a UTF-8 path"),
        &["--flower", "5.1,3.5,1.4,0.2,setosa"],
    );
    client.assert_code(3);
    assert!(!client.stderr.is_empty(), "{}", client.describe());
}

#[test]
fn ping_succeeds_and_sends_no_flowers() {
    let listener = ListenerProcess::start(&[], &[KEY_ENV]);
    let client = run_client(
        &client_args("ping", listener.address(), &["--count", "3"]),
        &[KEY_ENV],
    );
    client.assert_code(0);
    let finished = listener.stop();
    finished.assert_code(0);
    assert_eq!(finished.summary().get("flowers"), 0);
    assert!(finished.area_lines().is_empty(), "{}", finished.describe());
}
