//! The Rust programs as drop-ins for the seed's Python programs: the seed's
//! client and listener run unchanged against them, on CPython 3.11 (with
//! legacy MD5), 3.12 and 3.13, and a pickle never runs code here.

use std::io::Write;
use std::path::PathBuf;
use std::process::Command;

use iris_e2e::{
    KEY_ENV, ListenerProcess, Process, client_args, iris_csv, peak_rss_kib, repo_root, run_client,
    seed_port, send, spawn_client_with_stdin,
};
use iris_testkit::{Python, pythons};

/// The seed programs, copied verbatim into the repository.
pub(crate) fn seed_dir() -> PathBuf {
    repo_root().join("tests").join("seed")
}

pub(crate) fn script(name: &str) -> PathBuf {
    repo_root().join("tests").join("python").join(name)
}

/// `--allow-legacy-md5` where the peer is CPython 3.11.
fn legacy_flag(python: &Python) -> &'static [&'static str] {
    if python.is_legacy() {
        &["--allow-legacy-md5"]
    } else {
        &[]
    }
}

/// Waits for the `READY <port>` line our Python wrappers print on stderr.
fn ready_port(process: &Process, what: &str) -> String {
    process
        .stderr()
        .wait_for(what, |lines| {
            lines
                .iter()
                .find_map(|line| line.strip_prefix("READY ").map(str::to_owned))
        })
        .unwrap_or_else(|lines| panic!("{what} ended before it listened:\n{}", lines.join("\n")))
}

pub(crate) fn python_process(
    python: &Python,
    name: &str,
    configure: impl FnOnce(&mut Command),
) -> Process {
    let mut command = python.command();
    configure(&mut command);
    Process::spawn(&format!("CPython {} {name}", python.version), command)
}

/// SHA-256 of the seed's programs as the training note has them.
const SEED_DIGESTS: [(&str, &str); 3] = [
    (
        "iris.py",
        "e9a977e287b81eb1b8322b69ad9b52e441d1c410e8914b6af8492c4142844fd8",
    ),
    (
        "multiprocessing-client.py",
        "15d699e3c660275895f008cf4bf923c093d802ec97c5507a5b355d95ffb2e847",
    ),
    (
        "multiprocessing-listener.py",
        "f04f430ca01f636faddc66e4986a32be8824307b0a4d33d8b96dd2905d729dc7",
    ),
];

#[test]
fn the_seed_copies_are_verbatim() {
    for (name, digest) in SEED_DIGESTS {
        let path = seed_dir().join(name);
        let bytes =
            std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        let ours: String = ring::digest::digest(&ring::digest::SHA256, &bytes)
            .as_ref()
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect();
        assert_eq!(ours, digest, "tests/seed/{name} is not the seed's program");
    }
}

/// The seed's programs use `localhost:6000`, so this is the one test that
/// binds a fixed port; it runs every case in turn, never in parallel.
#[test]
fn the_seed_programs_run_unchanged_against_iris_on_port_6000() {
    let _port = seed_port();
    for python in pythons("the_seed_programs_run_unchanged_against_iris_on_port_6000") {
        // The seed's client → iris-listener --once.
        let mut args = vec!["--once", "--address", "localhost:6000"];
        args.extend(legacy_flag(&python));
        let listener = ListenerProcess::start(&args, &[KEY_ENV]);
        let client = python_process(&python, "seed client", |command| {
            command
                .current_dir(seed_dir())
                .arg("multiprocessing-client.py");
        })
        .finish();
        client.assert_code(0);
        let finished = listener.finish();
        finished.assert_code(0);
        assert_eq!(finished.stdout, ["Area: 18.13"], "{}", finished.describe());

        // iris-client → the seed's listener: with no flags (the codec
        // chooses itself: this listener's challenge has no iris mark) and
        // with --codec pickle. Only 3.11 needs a flag, for its MD5.
        for codec in [&[][..], &["--codec", "pickle"]] {
            let seed_listener = python_process(&python, "seed listener", |command| {
                command.arg(script("run_seed_listener.py")).arg(seed_dir());
            });
            assert_eq!(ready_port(&seed_listener, "the seed listener"), "6000");
            let mut args = vec!["send", "--address", "localhost:6000"];
            args.extend(codec);
            args.extend(legacy_flag(&python));
            let client = run_client(&args, &[KEY_ENV]);
            client.assert_code(0);
            assert!(
                client.stdout.concat().contains("no acknowledgement"),
                "the client says no acknowledgement comes: {}",
                client.describe()
            );
            let finished = seed_listener.finish();
            finished.assert_code(0);
            assert_eq!(finished.stdout, ["Area: 18.13"], "{}", finished.describe());
        }
    }
}

/// The port of a `HOST:PORT` address.
pub(crate) fn port_of(address: &str) -> String {
    address.rsplit_once(':').expect("HOST:PORT").1.to_owned()
}

/// The seed's listener code, looped, on a free port; returns it and its port.
pub(crate) fn looped_seed_listener(python: &Python) -> (Process, String) {
    let listener = python_process(python, "looped seed listener", |command| {
        command
            .arg(script("seed_loop.py"))
            .arg(seed_dir())
            .arg("listener");
    });
    let port = ready_port(&listener, "the looped seed listener");
    (listener, port)
}

/// Starts the seed's client code, looped over every row of the data set,
/// against `port`.
pub(crate) fn looped_seed_client(python: &Python, port: String) -> Process {
    python_process(python, "looped seed client", |command| {
        command.arg(script("seed_loop.py")).args([
            seed_dir(),
            "client".into(),
            port.into(),
            iris_csv(),
        ]);
    })
}

/// Runs the seed's client code, looped over every row of the data set,
/// against `port`; it must succeed.
fn run_looped_seed_client(python: &Python, port: String) {
    looped_seed_client(python, port).finish().assert_code(0);
}

/// What the seed's listener prints when the seed's client code sends every
/// row of the data set: the reference output.
fn python_to_python(python: &Python) -> Vec<String> {
    let (listener, port) = looped_seed_listener(python);
    run_looped_seed_client(python, port);
    let finished = listener.finish();
    finished.assert_code(0);
    finished.stdout
}

#[test]
fn all_150_rows_print_the_same_bytes_as_python_in_both_directions() {
    for python in pythons("all_150_rows_print_the_same_bytes_as_python_in_both_directions") {
        let reference = python_to_python(&python);
        assert_eq!(reference.len(), 150, "the seed listener printed every row");

        // Python client → iris-listener.
        let mut args = vec!["--once"];
        args.extend(legacy_flag(&python));
        let listener = ListenerProcess::start(&args, &[KEY_ENV]);
        run_looped_seed_client(&python, port_of(listener.address()));
        let finished = listener.finish();
        finished.assert_code(0);
        assert!(
            finished.stdout == reference,
            "CPython {}: iris-listener printed other lines",
            python.version
        );

        // iris-client → Python listener, the codec chosen or forced.
        for codec in [&[][..], &["--codec", "pickle"]] {
            let (python_listener, port) = looped_seed_listener(&python);
            let address = format!("127.0.0.1:{port}");
            let csv = iris_csv();
            let mut args = vec![csv.to_str().expect("UTF-8 path")];
            args.extend(codec);
            args.extend(legacy_flag(&python));
            send(&address, &args).assert_code(0);
            let finished = python_listener.finish();
            finished.assert_code(0);
            assert!(
                finished.stdout == reference,
                "CPython {} {codec:?}: the Python listener printed other lines",
                python.version
            );
        }
    }
}

#[test]
fn a_live_feed_reaches_a_python_listener_row_by_row() {
    for python in pythons("a_live_feed_reaches_a_python_listener_row_by_row") {
        // -u: the listener's prints are not held in its stdout buffer.
        let listener = python_process(&python, "looped seed listener", |command| {
            command
                .arg("-u")
                .arg(script("seed_loop.py"))
                .arg(seed_dir())
                .arg("listener");
        });
        let port = ready_port(&listener, "the looped seed listener");
        let address = format!("127.0.0.1:{port}");
        let mut args = client_args("send", &address, &["-"]);
        args.extend(legacy_flag(&python));
        let (client, mut feed) = spawn_client_with_stdin(&args, &[KEY_ENV]);
        writeln!(
            feed,
            "sepal_length,sepal_width,petal_length,petal_width,species\n5.1,3.5,1.4,0.2,setosa"
        )
        .and_then(|()| feed.flush())
        .expect("write row 1");
        // Row 2 only once row 1 is printed: pickles stream too.
        listener
            .stdout()
            .wait_for("the first Area line", |lines| {
                (!lines.is_empty()).then_some(())
            })
            .unwrap_or_else(|lines| panic!("the listener ended: {lines:?}"));
        writeln!(feed, "6.3,3.3,6.0,2.5,virginica").expect("write row 2");
        drop(feed);
        let client = client.finish();
        client.assert_code(0);
        assert!(
            client.stdout.concat().contains("sent 2 flowers"),
            "{}",
            client.describe()
        );
        let finished = listener.finish();
        finished.assert_code(0);
        assert_eq!(
            finished.stdout,
            ["Area: 18.13", "Area: 35.79"],
            "CPython {}",
            python.version
        );
    }
}

#[test]
fn a_legacy_cpython_client_is_refused_with_the_flag_that_lets_it_in() {
    let test = "a_legacy_cpython_client_is_refused_with_the_flag_that_lets_it_in";
    let Some(python) = pythons(test).into_iter().find(Python::is_legacy) else {
        return;
    };
    let listener = ListenerProcess::start(&[], &[KEY_ENV]);
    let client = python_process(&python, "looped seed client", |command| {
        command.arg(script("seed_loop.py")).args([
            seed_dir(),
            "client".into(),
            port_of(listener.address()).into(),
            iris_csv(),
        ]);
    })
    .finish();
    assert_ne!(client.code(), Some(0), "{}", client.describe());
    let rejection = listener.wait_for_log("rejected", 1).remove(0);
    assert!(
        rejection.contains("legacy HMAC-MD5") && rejection.contains("--allow-legacy-md5"),
        "the log names the flag: {rejection}"
    );
    assert!(
        !rejection.contains("Options::"),
        "the log names no library option: {rejection}"
    );
}

#[test]
fn ping_says_python_listeners_do_not_answer_pings() {
    for python in pythons("ping_says_python_listeners_do_not_answer_pings") {
        let (listener, port) = looped_seed_listener(&python);
        let address = format!("127.0.0.1:{port}");
        let mut args = client_args("ping", &address, &[]);
        args.extend(legacy_flag(&python));
        let client = run_client(&args, &[KEY_ENV]);
        client.assert_code(7);
        let message = client.stderr_text();
        assert!(
            message.contains("Python listeners do not answer pings"),
            "{message}"
        );
        assert!(message.contains("the key is right"), "{message}");
        // The client said goodbye as the seed's client does: a clean end.
        let finished = listener.finish();
        finished.assert_code(0);
        assert!(finished.stdout.is_empty(), "{}", finished.describe());
    }
}

#[test]
fn send_with_no_flags_is_acknowledged_by_iris_listener() {
    let listener = ListenerProcess::start(&["--once"], &[KEY_ENV]);
    let csv = iris_csv();
    let client = send(listener.address(), &[csv.to_str().expect("UTF-8 path")]);
    client.assert_all_acknowledged(150);
    listener.finish().assert_code(0);
}

#[test]
fn pickles_that_would_run_code_are_refused_and_the_listener_keeps_serving() {
    let Some(python) =
        pythons("pickles_that_would_run_code_are_refused_and_the_listener_keeps_serving")
            .into_iter()
            .find(|python| !python.is_legacy())
    else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let marker = dir.path().join("pwned");
    // Frames up to 64 MiB, so that the pickle decoder, not the default
    // 64 KiB frame limit, refuses the long attacks.
    let listener = ListenerProcess::start(&["--max-frame", "67108864"], &[KEY_ENV]);
    let port = port_of(listener.address());

    let attacker = python_process(&python, "attacker", |command| {
        command.arg(script("attack.py")).arg(&port).arg(&marker);
    })
    .finish();
    attacker.assert_code(0);
    let attacks = [
        ("os.system", "system"),
        // Connection.send never writes protocol 0 or 1, so such a frame is
        // read as a native message, and refused as one.
        ("os.system protocol 0", "unknown message type 0x63"),
        ("subprocess.Popen", "Popen"),
        ("builtins.eval", "eval"),
        ("nested reduce", "eval"),
        ("eval inside the seed's double pickle", "eval"),
        ("billion laughs", "expands to more than"),
        // Longer than any flower's pickle: refused before decoding.
        ("deep nesting", "longer than the limit of 4096 bytes"),
        ("60 MB string", "longer than the limit of 4096 bytes"),
    ];
    for (name, _) in attacks {
        assert!(
            attacker.stdout.contains(&format!("dropped {name}")),
            "the listener must drop the connection of {name:?}: {}",
            attacker.describe()
        );
    }
    // Sessions log after they close, so a quickly refused attack may be
    // logged before the one sent just before it: match lines in any order.
    let rejections = listener.wait_for_log("dropped after 0 flowers", attacks.len());
    for (name, needle) in attacks {
        let expected = attacks.iter().filter(|(_, n)| *n == needle).count();
        let found = rejections.iter().filter(|l| l.contains(needle)).count();
        assert!(
            found >= expected,
            "{name}: a log line says why ({needle:?}):\n{}",
            rejections.join("\n")
        );
    }
    assert!(
        !marker.exists(),
        "an attack ran code: {} exists",
        marker.display()
    );

    // A well-behaved client is served right after.
    let csv = iris_csv();
    let client = send(listener.address(), &[csv.to_str().expect("UTF-8 path")]);
    client.assert_all_acknowledged(150);

    let peak = peak_rss_kib(listener.process().pid());
    eprintln!("listener peak RSS after the attacks: {peak} KiB");
    assert!(
        peak < 256 * 1024,
        "the listener's memory stayed bounded by its frame limit: peak {peak} KiB"
    );
    let finished = listener.stop();
    finished.assert_code(0);
    assert_eq!(
        finished.summary().get("rejected"),
        0,
        "attackers authenticated; their sessions failed"
    );
    assert_eq!(finished.summary().get("flowers"), 150);
}

/// The `area` of a `--format json` line, as written (digits and all).
fn json_area(line: &str) -> &str {
    line.split_once("\"area\":")
        .and_then(|(_, rest)| rest.strip_suffix('}'))
        .unwrap_or_else(|| panic!("no area at the end of {line:?}"))
}

/// Whether a JSON area carries the value of the seed listener's `Area:`
/// line: the same digits for an `int`, the same `float` otherwise.
fn same_area(seed_line: &str, json: &str) -> bool {
    let seed = seed_line.strip_prefix("Area: ").unwrap_or(seed_line);
    if seed.bytes().all(|b| b.is_ascii_digit()) {
        return seed == json;
    }
    match (seed.parse::<f64>(), json.parse::<f64>()) {
        (Ok(a), Ok(b)) => a.to_bits() == b.to_bits() && json.contains(['.', 'e', 'E']),
        _ => false,
    }
}

#[test]
fn random_int_float_and_mixed_flowers_print_what_the_seed_listener_prints() {
    const FLOWERS: usize = 300;
    let test = "random_int_float_and_mixed_flowers_print_what_the_seed_listener_prints";
    // A new batch every run; the seed is in every failure message.
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_nanos() % 1_000_000_007);
    for python in pythons(test) {
        let (seed_listener, seed_port) = looped_seed_listener(&python);
        let mut args = vec!["--once"];
        args.extend(legacy_flag(&python));
        let text = ListenerProcess::start(&args, &[KEY_ENV]);
        args.extend(["--format", "json"]);
        let json = ListenerProcess::start(&args, &[KEY_ENV]);
        python_process(&python, "random flowers", |command| {
            command
                .arg(script("random_flowers.py"))
                .arg(seed_dir())
                .args([seed.to_string(), FLOWERS.to_string(), seed_port])
                .args([port_of(text.address()), port_of(json.address())]);
        })
        .finish()
        .assert_code(0);
        let reference = seed_listener.finish();
        reference.assert_code(0);
        assert_eq!(reference.stdout.len(), FLOWERS, "{}", reference.describe());
        let context = format!("CPython {}, random seed {seed}", python.version);

        let text = text.finish();
        text.assert_code(0);
        for (i, (ours, theirs)) in text.stdout.iter().zip(&reference.stdout).enumerate() {
            assert_eq!(ours, theirs, "{context}: flower {i}");
        }
        assert_eq!(text.stdout.len(), FLOWERS, "{context}: {}", text.describe());

        let json = json.finish();
        json.assert_code(0);
        assert_eq!(json.stdout.len(), FLOWERS, "{context}: {}", json.describe());
        for (i, (line, theirs)) in json.stdout.iter().zip(&reference.stdout).enumerate() {
            assert!(
                same_area(theirs, json_area(line)),
                "{context}: flower {i}: JSON {line} for {theirs}"
            );
        }
    }
}
