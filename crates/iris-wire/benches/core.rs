//! Micro-benchmarks of the protocol core: frame headers, the handshake,
//! sealed records, and the two AEADs ring offers that records could use
//! (the numbers behind choosing AES-256-GCM).

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use iris_wire::frame::{Header, decode_header, next_frame};
use iris_wire::handshake::{AuthKey, Handshake, MAX_HANDSHAKE_FRAME};
use iris_wire::seal::{KeyShare, Sealing, Session};
use ring::aead::{AES_256_GCM, Aad, Algorithm, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};

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
    let shares = (
        KeyShare::from_private_bytes([1; 32]),
        KeyShare::from_private_bytes([2; 32]),
    );
    c.bench_function("handshake/mutual_in_memory_sealed", |b| {
        b.iter(|| sealed_pair(&key, &shares))
    });
    c.bench_function("handshake/key_share_generate", |b| {
        b.iter(KeyShare::generate)
    });
    c.bench_function("handshake/authkey_new", |b| {
        b.iter(|| AuthKey::new(black_box(b"My voice is my password, verify me.")))
    });
}

/// A sealed handshake in memory between two fixed key shares (whose X25519
/// secret is agreed once and remembered, as between repeat peers).
fn sealed_pair(key: &AuthKey, shares: &(KeyShare, KeyShare)) -> (Session, Session) {
    let mut listener =
        Handshake::listener(key, [7; 40], false).with_sealing(shares.0.clone(), Sealing::Prefer);
    let mut client =
        Handshake::client(key, [9; 40], false).with_sealing(shares.1.clone(), Sealing::Prefer);
    while !(listener.is_complete() && client.is_complete()) {
        deliver(&mut listener, &mut client);
        deliver(&mut client, &mut listener);
    }
    (
        client.take_session().expect("sealed"),
        listener.take_session().expect("sealed"),
    )
}

fn records(c: &mut Criterion) {
    let key = AuthKey::new(b"My voice is my password, verify me.").expect("key");
    let shares = (
        KeyShare::from_private_bytes([1; 32]),
        KeyShare::from_private_bytes([2; 32]),
    );
    for size in [40usize, 65_536] {
        let plaintext = vec![7u8; size];
        let (mut client, _) = sealed_pair(&key, &shares);
        let mut out = Vec::with_capacity(size + 64);
        c.bench_function(&format!("record/seal_{size}"), |b| {
            b.iter(|| {
                out.clear();
                client
                    .sealer
                    .seal(black_box(&plaintext), &mut out)
                    .expect("seal");
            })
        });
        let (mut client, mut listener) = sealed_pair(&key, &shares);
        c.bench_function(&format!("record/seal_and_open_{size}"), |b| {
            b.iter(|| {
                out.clear();
                client.sealer.seal(&plaintext, &mut out).expect("seal");
                listener.opener.feed(&out);
                assert!(listener.opener.open_next().expect("open"));
                let opened = listener.opener.plaintext().len();
                listener.opener.consume(opened);
                opened
            })
        });
    }
    for (name, algorithm) in [
        ("aes_256_gcm", &AES_256_GCM),
        ("chacha20_poly1305", &CHACHA20_POLY1305),
    ] {
        for size in [40usize, 65_536] {
            aead_seal(c, name, algorithm, size);
        }
    }
}

/// Sealing in place with `algorithm` straight from ring, for the choice of
/// AEAD.
fn aead_seal(c: &mut Criterion, name: &str, algorithm: &'static Algorithm, size: usize) {
    let key = LessSafeKey::new(UnboundKey::new(algorithm, &[7; 32]).expect("key"));
    let mut buffer = vec![1u8; size];
    let mut counter = 0u64;
    c.bench_function(&format!("aead/{name}_seal_{size}"), |b| {
        b.iter(|| {
            counter += 1;
            let mut nonce = [0u8; 12];
            nonce[4..].copy_from_slice(&counter.to_be_bytes());
            key.seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from([0u8; 4]),
                &mut buffer,
            )
            .expect("seal")
        })
    });
}

criterion_group!(benches, frame_header, handshake, records);
criterion_main!(benches);
