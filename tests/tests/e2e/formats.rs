//! Output formats and transports: `--format json`, Unix sockets, `--once`.

use std::collections::BTreeMap;

use iris_e2e::{KEY_ENV, ListenerProcess, iris_csv, send};

use crate::{FLOWERS, area_of};

#[test]
fn json_output_has_every_field_and_the_exact_area() {
    let listener = ListenerProcess::start(&["--format", "json"], &[KEY_ENV]);
    let csv = iris_csv();
    let client = send(listener.address(), &[csv.to_str().expect("a UTF-8 path")]);
    client.assert_all_acknowledged(150);

    let finished = listener.stop();
    finished.assert_code(0);
    assert_eq!(finished.stdout.len(), 150, "{}", finished.describe());
    let mut connections = BTreeMap::new();
    let mut species = BTreeMap::new();
    for line in &finished.stdout {
        let value: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        let object = value
            .as_object()
            .unwrap_or_else(|| panic!("not an object: {line}"));
        let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "area",
                "connection",
                "petal_length",
                "petal_width",
                "sepal_length",
                "sepal_width",
                "species"
            ],
            "{line}"
        );
        let number = |key: &str| {
            value[key]
                .as_f64()
                .unwrap_or_else(|| panic!("{key} is not a number: {line}"))
        };
        let (sl, sw, pl, pw) = (
            number("sepal_length"),
            number("sepal_width"),
            number("petal_length"),
            number("petal_width"),
        );
        assert_eq!(number("area"), sl * sw + pl * pw, "{line}");
        let connection = value["connection"]
            .as_u64()
            .unwrap_or_else(|| panic!("connection is not a count: {line}"));
        *connections.entry(connection).or_insert(0) += 1;
        let name = value["species"]
            .as_str()
            .unwrap_or_else(|| panic!("species is not a string: {line}"));
        *species.entry(name.to_owned()).or_insert(0) += 1;
    }
    assert_eq!(
        connections.len(),
        1,
        "one client, one connection: {connections:?}"
    );
    let expected: BTreeMap<String, i32> = ["setosa", "versicolor", "virginica"]
        .into_iter()
        .map(|name| (name.to_owned(), 50))
        .collect();
    assert_eq!(species, expected);
}

#[test]
fn a_unix_socket_address_works() {
    let dir = tempfile::tempdir().expect("temp dir");
    let socket = dir.path().join("iris.sock");
    let socket = socket.to_str().expect("a UTF-8 path");
    let listener = ListenerProcess::start(&["--address", socket], &[KEY_ENV]);
    assert_eq!(
        listener.address(),
        socket,
        "the address file holds the socket path"
    );

    let flowers: Vec<String> = FLOWERS.iter().map(|flower| flower.arg()).collect();
    let client = send(
        socket,
        &[
            "--flower",
            &flowers[0],
            "--flower",
            &flowers[1],
            "--flower",
            &flowers[2],
        ],
    );
    client.assert_all_acknowledged(3);

    let finished = listener.stop();
    finished.assert_code(0);
    let areas: Vec<f64> = finished.area_lines().into_iter().map(area_of).collect();
    let expected: Vec<f64> = FLOWERS.iter().map(|flower| flower.area()).collect();
    assert_eq!(areas, expected, "one connection's flowers print in order");
    assert_eq!(finished.summary().get("flowers"), 3);
}

#[test]
fn once_exits_by_itself_after_the_first_connection() {
    let listener = ListenerProcess::start(&["--once"], &[KEY_ENV]);
    let flower = FLOWERS[2].arg();
    let client = send(listener.address(), &["--flower", &flower, "--repeat", "3"]);
    client.assert_all_acknowledged(3);

    // No signal: the listener ends on its own.
    let finished = listener.finish();
    finished.assert_code(0);
    assert_eq!(finished.area_lines().len(), 3, "{}", finished.describe());
    let summary = finished.summary();
    assert_eq!(summary.get("connections"), 1, "{}", summary.line);
    assert_eq!(summary.get("flowers"), 3, "{}", summary.line);
    assert_eq!(summary.get("virginica"), 3, "{}", summary.line);
}
