//! Checks the `py_float` formatter against the real CPython `repr(float)`.

#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::path::Path;
use std::process::Stdio;
use std::thread;

use iris_model::{PyFloatBuffer, PyRepr, load_csv, py_repr};
use iris_testkit::Python;

/// Reads one u64 bit pattern per line and prints `repr` of that double, so
/// the values reach Python bit-exactly (NaN payloads and -0.0 included).
const REPR_SCRIPT: &str = r#"
import struct, sys
bits = sys.stdin.read().split()
out = [repr(struct.unpack("<d", struct.pack("<Q", int(b)))[0]) for b in bits]
sys.stdout.write("\n".join(out) + "\n")
"#;

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn with_neighbours(values: &mut Vec<f64>, value: f64) {
    let bits = value.to_bits();
    values.extend([
        value,
        -value,
        f64::from_bits(bits.wrapping_sub(1)),
        f64::from_bits(bits.wrapping_add(1)),
    ]);
}

fn sample_values() -> Vec<f64> {
    let mut values = Vec::new();

    let data_set = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/iris.csv");
    for flower in load_csv(data_set).unwrap() {
        values.extend([
            flower.sepal_length(),
            flower.sepal_width(),
            flower.petal_length(),
            flower.petal_width(),
            flower.sepal_area(),
            flower.petal_area(),
            flower.total_area(),
        ]);
    }

    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    for _ in 0..20_000 {
        values.push(f64::from_bits(rng.next()));
    }
    // Random bit patterns are mostly far from 1; these cover everyday magnitudes.
    for _ in 0..20_000 {
        let bits = rng.next();
        let exponent = (bits % 30) as i32 - 9;
        values.push((bits >> 11) as f64 / (1_u64 << 53) as f64 * 10_f64.powi(exponent));
    }
    for _ in 0..2_000 {
        // Short decimals, like measurements and their products.
        let bits = rng.next();
        values.push((bits % 100_000) as f64 / 100.0);
        values.push((bits % 1000) as f64 / 10.0 * ((bits >> 20) % 1000) as f64 / 10.0);
    }

    for exponent in -30..=30 {
        for mantissa in 1..=9 {
            let value: f64 = format!("{mantissa}e{exponent}").parse().unwrap();
            with_neighbours(&mut values, value);
        }
    }
    for exponent in [-5, -4, -3, 15, 16, 17] {
        let value: f64 = format!("1e{exponent}").parse().unwrap();
        with_neighbours(&mut values, value * 0.5);
        with_neighbours(&mut values, value * 1.5);
    }
    for bits in [
        1,
        2,
        3,
        0x0000_0000_0000_ffff,
        0x0008_0000_0000_0000,
        0x000f_ffff_ffff_ffff,
    ] {
        with_neighbours(&mut values, f64::from_bits(bits));
    }
    for _ in 0..1_000 {
        values.push(f64::from_bits(rng.next() & 0x800f_ffff_ffff_ffff));
    }
    for value in [
        f64::MAX,
        f64::MIN_POSITIVE,
        f64::EPSILON,
        2_f64.powi(53),
        1e23,
    ] {
        with_neighbours(&mut values, value);
    }
    values.extend([
        0.0,
        -0.0,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NAN,
        -f64::NAN,
    ]);
    values
}

fn cpython_reprs(python: &Python, values: &[f64]) -> Vec<String> {
    let mut child = python
        .command()
        .args(["-I", "-c", REPR_SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", python.path.display()));
    let input: String = values
        .iter()
        .map(|v| format!("{}\n", v.to_bits()))
        .collect();
    let mut stdin = child.stdin.take().unwrap();
    // Written from a thread so a full stdout pipe cannot deadlock us.
    let writer = thread::spawn(move || stdin.write_all(input.as_bytes()));
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(
        output.status.success(),
        "{} failed ({}): {}",
        python.path.display(),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn py_repr_matches_cpython() {
    let values = sample_values();
    for python in iris_testkit::pythons("py_repr_matches_cpython") {
        check_against(&python, &values);
    }
}

fn check_against(python: &Python, values: &[f64]) {
    let expected = cpython_reprs(python, values);
    assert_eq!(
        expected.len(),
        values.len(),
        "python answered a different count"
    );

    let mut buffer = PyFloatBuffer::new();
    let mut mismatches = Vec::new();
    for (&value, python_repr) in values.iter().zip(&expected) {
        let ours = buffer.format(value);
        let consistent = py_repr(value) == ours && PyRepr(value).to_string() == ours;
        if ours != python_repr || !consistent {
            mismatches.push(format!(
                "bits {:#018x}: ours {ours:?}, python {python_repr:?}, apis agree: {consistent}",
                value.to_bits()
            ));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of {} values differ from CPython, first ones:\n{}",
        mismatches.len(),
        values.len(),
        mismatches[..mismatches.len().min(20)].join("\n")
    );
    eprintln!(
        "{} values match the repr of {}",
        values.len(),
        python.path.display()
    );
}
