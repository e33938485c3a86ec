//! The acceptance criterion: the listener prints, line for line, what the
//! seed's Python listener prints for the same flowers.

use iris_e2e::{
    KEY_ENV, ListenerProcess, client_args, iris_csv, spawn_client, split_csv, write_file,
};

/// The seed's Python listener prints `f'Area: {flower.total_area()}'`,
/// where `total_area()` is `sepal_length * sepal_width + petal_length *
/// petal_width`; this computes that for every row of a CSV file.
const PYTHON_AREAS: &str = r#"
import csv, sys
with open(sys.argv[1], newline='') as f:
    for row in csv.DictReader(f):
        sl, sw, pl, pw = (float(row[k]) for k in
                          ('sepal_length', 'sepal_width', 'petal_length', 'petal_width'))
        print(f'Area: {sl * sw + pl * pw}')
"#;

#[test]
fn three_clients_at_once_print_the_same_areas_as_the_python_seed() {
    let test = "three_clients_at_once_print_the_same_areas_as_the_python_seed";
    let Some(python) = iris_testkit::python3(test) else {
        return;
    };
    let csv = iris_csv();
    let output = python
        .command()
        .arg("-c")
        .arg(PYTHON_AREAS)
        .arg(&csv)
        .output()
        .expect("run python3");
    assert!(
        output.status.success(),
        "python3 failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut expected: Vec<String> = String::from_utf8(output.stdout)
        .expect("UTF-8")
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(expected.len(), 150);

    let dir = tempfile::tempdir().expect("temp dir");
    let parts: Vec<_> = split_csv(&csv, 3)
        .iter()
        .enumerate()
        .map(|(i, part)| write_file(dir.path(), format!("part{i}.csv"), part))
        .collect();
    let listener = ListenerProcess::start(&[], &[KEY_ENV]);
    let clients: Vec<_> = parts
        .iter()
        .map(|part| {
            spawn_client(
                &client_args(
                    "send",
                    listener.address(),
                    &[part.to_str().expect("a UTF-8 path")],
                ),
                &[KEY_ENV],
            )
        })
        .collect();
    for client in clients {
        let finished = client.finish();
        finished.assert_all_acknowledged(50);
    }
    let finished = listener.stop();
    finished.assert_code(0);

    let mut actual = finished.stdout.clone();
    actual.sort();
    expected.sort();
    assert_eq!(actual, expected, "the multisets of `Area:` lines differ");
}
