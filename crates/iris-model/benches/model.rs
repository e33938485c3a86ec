//! Micro-benchmarks of the listener's per-flower work: computing the area
//! and formatting it as CPython would (decoding the message is
//! `iris-protocol`'s bench).

use std::hint::black_box;
use std::io::Write;

use criterion::{Criterion, criterion_group, criterion_main};
use iris_model::{Iris, PyFloatBuffer};

fn flowers() -> Vec<Iris> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/iris.csv");
    iris_model::load_csv(path).expect("data set")
}

fn area_formatting(c: &mut Criterion) {
    let areas: Vec<f64> = flowers().iter().map(Iris::total_area).collect();
    let mut out = Vec::with_capacity(64 * 1024);
    let mut buffer = PyFloatBuffer::new();
    c.bench_function("area/py_float_format_150", |b| {
        b.iter(|| {
            let mut total = 0;
            for &area in black_box(&areas) {
                total += buffer.format(area).len();
            }
            total
        })
    });
    // The baseline the formatter replaces: std's Display through writeln!.
    c.bench_function("area/std_display_writeln_150", |b| {
        b.iter(|| {
            out.clear();
            for &area in black_box(&areas) {
                writeln!(out, "Area: {area}").expect("write to Vec");
            }
        })
    });
}

criterion_group!(benches, area_formatting);
criterion_main!(benches);
