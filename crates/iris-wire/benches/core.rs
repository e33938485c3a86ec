//! Micro-benchmarks of the protocol core: frame headers and the handshake.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use iris_wire::frame::{Header, decode_header, next_frame};
use iris_wire::handshake::{AuthKey, Handshake, MAX_HANDSHAKE_FRAME};

fn frame_header(c: &mut Criterion) {
    c.bench_function("frame/encode_header", |b| {
        b.iter(|| Header::encode(black_box(34)))
    });
    let header = Header::encode(34);
    c.bench_function("frame/decode_header", |b| {
        b.iter(|| decode_header(black_box(header.as_bytes()), 64 << 20))
    });
    let mut stream = Vec::new();
    for _ in 0..1000 {
        stream.extend_from_slice(Header::encode(34).as_bytes());
        stream.extend_from_slice(&[0u8; 34]);
    }
    c.bench_function("frame/split_1000_frames", |b| {
        b.iter(|| {
            let mut rest = black_box(&stream[..]);
            let mut count = 0;
            while let Ok(Some((_, used))) = next_frame(rest, 64 << 20) {
                rest = &rest[used..];
                count += 1;
            }
            count
        })
    });
}

fn deliver(from: &mut Handshake, to: &mut Handshake) {
    let bytes = from.take_outgoing();
    let mut rest = &bytes[..];
    while let Ok(Some((payload, used))) = next_frame(rest, MAX_HANDSHAKE_FRAME) {
        to.receive(payload).expect("handshake step");
        rest = &rest[used..];
    }
}

fn handshake(c: &mut Criterion) {
    let key = AuthKey::new(b"My voice is my password, verify me.").expect("key");
    c.bench_function("handshake/mutual_in_memory", |b| {
        b.iter(|| {
            let mut listener = Handshake::listener(&key, [7; 40], false);
            let mut client = Handshake::client(&key, [9; 40], false);
            while !(listener.is_complete() && client.is_complete()) {
                deliver(&mut listener, &mut client);
                deliver(&mut client, &mut listener);
            }
        })
    });
    c.bench_function("handshake/authkey_new", |b| {
        b.iter(|| AuthKey::new(black_box(b"My voice is my password, verify me.")))
    });
}

criterion_group!(benches, frame_header, handshake);
criterion_main!(benches);
