//! Micro-benchmarks of the listener's per-flower decoding: the native
//! message codec, hand-written and postcard's.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use iris_model::{Iris, Species};
use iris_protocol::Message;

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

criterion_group!(benches, message_codec);
criterion_main!(benches);
