//! `iris-client send` streams its input: a live feed is delivered row by
//! row, a file of any size in constant memory, a bad row stops the send
//! after the rows before it were acknowledged, and a listener's JSON output
//! replays into another listener.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;
use std::process::Stdio;
use std::time::Instant;

use iris_e2e::{
    KEY_ENV, ListenerProcess, Signal, client_args, iris_csv, send, spawn_client_with_stdin,
};

use crate::{FLOWERS, area_of};

const HEADER: &str = "sepal_length,sepal_width,petal_length,petal_width,species";

#[test]
fn a_live_feed_is_delivered_row_by_row() {
    let listener = ListenerProcess::start(&[], &[KEY_ENV]);
    let (client, mut feed) =
        spawn_client_with_stdin(&client_args("send", listener.address(), &["-"]), &[KEY_ENV]);
    writeln!(feed, "{HEADER}\n{}", FLOWERS[0].arg())
        .and_then(|()| feed.flush())
        .expect("write row 1");
    // Row 2 is written only once the listener has printed row 1: a client
    // that waited for more input before sending would stall here.
    listener.wait_for_stdout_lines(1);
    writeln!(feed, "{}", FLOWERS[1].arg()).expect("write row 2");
    drop(feed);

    let client = client.finish();
    client.assert_all_acknowledged(2);
    let finished = listener.stop();
    finished.assert_code(0);
    let areas: Vec<f64> = finished.area_lines().into_iter().map(area_of).collect();
    assert_eq!(areas, [FLOWERS[0].area(), FLOWERS[1].area()]);
}

#[test]
fn a_signal_stops_reading_and_what_was_sent_is_acknowledged() {
    for (signal, code) in [(Signal::SIGINT, 130), (Signal::SIGTERM, 143)] {
        let listener = ListenerProcess::start(&[], &[KEY_ENV]);
        let (client, mut feed) =
            spawn_client_with_stdin(&client_args("send", listener.address(), &["-"]), &[KEY_ENV]);
        writeln!(feed, "{HEADER}").expect("write the header");
        for flower in &FLOWERS {
            writeln!(feed, "{}", flower.arg()).expect("write a row");
        }
        feed.flush().expect("flush");
        // The feed stays open: the client waits for more when signalled.
        listener.wait_for_stdout_lines(FLOWERS.len());
        client.signal(signal);
        let client = client.finish();
        client.assert_code(code);
        assert_eq!(
            client.acknowledgement(),
            Some((3, 3)),
            "{}",
            client.describe()
        );
        assert!(
            client
                .stderr_text()
                .contains(&format!("stopped by {signal}")),
            "{}",
            client.describe()
        );
        drop(feed);
        let finished = listener.stop();
        assert_eq!(finished.summary().get("flowers"), 3);
    }
}

/// The client's own report of its peak resident memory (`-v`), in KiB.
fn reported_peak_kib(stderr: &[String]) -> Option<u64> {
    stderr.iter().find_map(|line| {
        let (_, rest) = line.split_once("peak resident memory: ")?;
        rest.trim().strip_suffix(" KiB")?.parse().ok()
    })
}

/// Writes a CSV of `rows` flowers (the three test flowers in turn) with
/// its header.
fn write_rows(path: &Path, rows: u64) {
    let file = File::create(path).expect("create the data file");
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let lines: Vec<String> = FLOWERS.iter().map(|flower| flower.arg()).collect();
    writeln!(out, "{HEADER}").expect("write");
    for row in 0..rows {
        writeln!(out, "{}", lines[(row % 3) as usize]).expect("write");
    }
    out.flush().expect("flush the data file");
}

/// Peak memory is measured by the client itself at its end, from Linux's
/// VmHWM: read from outside, the value of a process that has exited is
/// gone, and one read while it runs may miss the peak.
#[test]
fn ten_million_rows_are_sent_in_constant_memory() {
    const ROWS: u64 = 10_000_000;
    const LIMIT_KIB: u64 = 16 << 10;
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("ten-million.csv");
    let started = Instant::now();
    write_rows(&path, ROWS);
    let size = std::fs::metadata(&path).expect("data file").len();
    eprintln!(
        "wrote {ROWS} rows, {} MB, in {:.1?}",
        size / 1_000_000,
        started.elapsed()
    );
    // Ten million `Area:` lines are not worth holding in the test.
    let listener = ListenerProcess::start_with_stdout(&[], &[KEY_ENV], Stdio::null());

    let started = Instant::now();
    let client = send(
        listener.address(),
        &[path.to_str().expect("UTF-8 path"), "-v"],
    );
    eprintln!("sent {ROWS} rows in {:.1?}", started.elapsed());
    client.assert_all_acknowledged(ROWS);
    let peak = reported_peak_kib(&client.stderr)
        .unwrap_or_else(|| panic!("no peak memory in the log\n{}", client.describe()));
    eprintln!(
        "client peak RSS: {peak} KiB for a {} MB file",
        size / 1_000_000
    );
    assert!(
        peak < LIMIT_KIB,
        "the client's peak RSS was {peak} KiB, over {LIMIT_KIB} KiB, for a {size}-byte file"
    );
    let finished = listener.stop();
    finished.assert_code(0);
    assert_eq!(finished.summary().get("flowers"), ROWS);
}

#[test]
fn a_bad_row_in_a_stream_stops_the_send_after_the_rows_before_it() {
    const GOOD: usize = 1_000_000;
    let dir = tempfile::tempdir().expect("temp dir");
    let printed = dir.path().join("listener-stdout");
    let listener = ListenerProcess::start_with_stdout(
        &[],
        &[KEY_ENV],
        Stdio::from(File::create(&printed).expect("create the stdout file")),
    );
    let (client, feed) =
        spawn_client_with_stdin(&client_args("send", listener.address(), &["-"]), &[KEY_ENV]);
    let writer = std::thread::spawn(move || {
        let mut feed = BufWriter::new(feed);
        let row = FLOWERS[0].arg();
        // The client stops reading at the bad row and exits, so writing
        // the rows after it may fail with a broken pipe.
        let _ = writeln!(feed, "{HEADER}")
            .and_then(|()| (0..GOOD).try_for_each(|_| writeln!(feed, "{row}")))
            .and_then(|()| writeln!(feed, "5.1,3.5,oops,0.2,setosa"))
            .and_then(|()| (0..10).try_for_each(|_| writeln!(feed, "{row}")))
            .and_then(|()| feed.flush());
    });

    let client = client.finish();
    writer.join().expect("the writer thread");
    client.assert_code(6);
    assert_eq!(
        client.acknowledgement(),
        Some((GOOD as u64, GOOD as u64)),
        "{}",
        client.describe()
    );
    let message = client.stderr_text();
    for needle in [
        "the send stopped at line 1000002 of standard input",
        "the 1000000 flowers before it were sent and acknowledged",
        r#"invalid petal_length "oops""#,
    ] {
        assert!(message.contains(needle), "{needle:?} in {message}");
    }

    let finished = listener.stop();
    finished.assert_code(0);
    assert_eq!(finished.summary().get("flowers"), GOOD as u64);
    let lines = BufReader::new(File::open(&printed).expect("the listener's stdout"))
        .lines()
        .map(|line| line.expect("a line"));
    let mut count = 0;
    for line in lines {
        assert_eq!(line, "Area: 18.13", "line {}", count + 1);
        count += 1;
    }
    assert_eq!(count, GOOD, "lines printed");
}

#[test]
fn json_lines_from_a_listener_replay_into_another() {
    let csv = iris_csv();
    let csv = csv.to_str().expect("UTF-8 path");

    // The reference: the data set, sent as CSV.
    let listener = ListenerProcess::start(&["--once"], &[KEY_ENV]);
    send(listener.address(), &[csv]).assert_code(0);
    let reference = listener.finish();
    reference.assert_code(0);
    assert_eq!(reference.area_lines().len(), 150);

    let listener = ListenerProcess::start(&["--once", "--format", "json"], &[KEY_ENV]);
    send(listener.address(), &[csv]).assert_code(0);
    let json = listener.finish();
    json.assert_code(0);
    assert_eq!(json.stdout.len(), 150, "{}", json.describe());

    let listener = ListenerProcess::start(&["--once"], &[KEY_ENV]);
    let (client, mut feed) = spawn_client_with_stdin(
        &client_args("send", listener.address(), &["-", "--format", "json"]),
        &[KEY_ENV],
    );
    for line in &json.stdout {
        writeln!(feed, "{line}").expect("write a JSON line");
    }
    drop(feed);
    let client = client.finish();
    client.assert_all_acknowledged(150);
    let replayed = listener.finish();
    replayed.assert_code(0);
    assert_eq!(replayed.area_lines(), reference.area_lines());
}

#[test]
fn a_file_is_repeated_and_stdin_with_repeat_is_read_first() {
    let csv = iris_csv();
    let listener = ListenerProcess::start_with_stdout(&[], &[KEY_ENV], Stdio::null());
    let client = send(
        listener.address(),
        &[csv.to_str().expect("UTF-8 path"), "--repeat", "3"],
    );
    client.assert_all_acknowledged(450);

    let text = std::fs::read_to_string(&csv).expect("the data set");
    let (client, mut feed) = spawn_client_with_stdin(
        &client_args("send", listener.address(), &["-", "--repeat", "2"]),
        &[KEY_ENV],
    );
    feed.write_all(text.as_bytes()).expect("write stdin");
    drop(feed);
    let client = client.finish();
    client.assert_all_acknowledged(300);

    let finished = listener.stop();
    assert_eq!(finished.summary().get("flowers"), 750);
}
