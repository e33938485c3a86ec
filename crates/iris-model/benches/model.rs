//! Micro-benchmarks of the listener's per-flower work: decoding a message,
//! computing the area, and formatting it as CPython would.

use std::hint::black_box;
use std::io::Write;

use criterion::{Criterion, criterion_group, criterion_main};
use iris_model::{Iris, Message, PyFloatBuffer, Species, write_area_line};

fn flowers() -> Vec<Iris> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/iris.csv");
    iris_model::load_csv(path).expect("data set")
}

fn message_codec(c: &mut Criterion) {
    let seed = Iris::new(5.1, 3.5, 1.4, 0.2, Species::Setosa).expect("valid");
    let encoded = postcard::to_stdvec(&Message::Iris(seed)).expect("encode");
    let mut buffer = Vec::with_capacity(64);
    c.bench_function("message/encode", |b| {
        b.iter(|| {
            buffer.clear();
            postcard::to_io(black_box(&Message::Iris(seed)), &mut buffer).expect("encode");
        })
    });
    // The hand-written decoder the listener runs, beside postcard's, which
    // it must match byte for byte: its reason to exist is this difference.
    c.bench_function("message/decode", |b| {
        b.iter(|| Message::decode(black_box(&encoded)).expect("decode"))
    });
    c.bench_function("message/decode_postcard", |b| {
        b.iter(|| postcard::from_bytes::<Message>(black_box(&encoded)).expect("decode"))
    });
}

fn area_formatting(c: &mut Criterion) {
    let areas: Vec<f64> = flowers().iter().map(Iris::total_area).collect();
    let mut out = Vec::with_capacity(64 * 1024);
    c.bench_function("area/write_area_line_150", |b| {
        b.iter(|| {
            out.clear();
            for &area in black_box(&areas) {
                write_area_line(&mut out, area);
            }
        })
    });
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

criterion_group!(benches, message_codec, area_formatting);
criterion_main!(benches);
