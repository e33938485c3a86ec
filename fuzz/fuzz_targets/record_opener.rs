//! The record opener of a sealed session, against a man in the middle.
//!
//! A real session's client seals a stream the fuzzer chooses, cut into
//! records where the fuzzer says; the fuzzer then alters the sealed bytes
//! (flips, cuts, drops, duplicates, inserts garbage) and the listener's
//! opener reads them in fuzzer-chosen pieces. The opener must never panic,
//! and every plaintext byte it gives out must be the stream's own bytes, in
//! order: an attacker without the keys can make it stop, never lie.

#![no_main]

use std::sync::OnceLock;

use iris_wire::frame::next_frame;
use iris_wire::handshake::{AuthKey, Handshake, MAX_HANDSHAKE_FRAME};
use iris_wire::seal::{KeyShare, Sealing, Session};
use libfuzzer_sys::fuzz_target;

/// Both sides' key shares, made once: repeat handshakes between the same
/// shares reuse the agreed secret, so each run costs only HMACs and HKDF.
fn shares() -> &'static (AuthKey, KeyShare, KeyShare) {
    static SHARES: OnceLock<(AuthKey, KeyShare, KeyShare)> = OnceLock::new();
    SHARES.get_or_init(|| {
        (
            AuthKey::new(b"fuzzing key").expect("non-empty"),
            KeyShare::from_private_bytes([1; 32]),
            KeyShare::from_private_bytes([2; 32]),
        )
    })
}

/// A completed sealed handshake in memory: (client's session, listener's).
fn sessions() -> (Session, Session) {
    let (key, listener_share, client_share) = shares();
    let mut listener =
        Handshake::listener(key, [7; 40], false).with_sealing(listener_share.clone(), Sealing::Prefer);
    let mut client =
        Handshake::client(key, [9; 40], false).with_sealing(client_share.clone(), Sealing::Prefer);
    let deliver = |from: &mut Handshake, to: &mut Handshake| {
        let bytes = from.take_outgoing();
        let mut rest = &bytes[..];
        while let Ok(Some((payload, used))) = next_frame(rest, MAX_HANDSHAKE_FRAME) {
            to.receive(payload).expect("an honest handshake");
            rest = &rest[used..];
        }
    };
    while !(listener.is_complete() && client.is_complete()) {
        deliver(&mut listener, &mut client);
        deliver(&mut client, &mut listener);
    }
    (
        client.take_session().expect("sealed"),
        listener.take_session().expect("sealed"),
    )
}

/// Reads fuzzer choices off the front of the input.
struct Choices<'a>(&'a [u8]);

impl Choices<'_> {
    fn byte(&mut self) -> u8 {
        let (first, rest) = self.0.split_first().unwrap_or((&0, &[]));
        self.0 = rest;
        *first
    }

    fn number(&mut self) -> usize {
        usize::from(u16::from_le_bytes([self.byte(), self.byte()]))
    }
}

fuzz_target!(|data: &[u8]| {
    let mut choices = Choices(data);
    let (mut client, mut listener) = sessions();

    // The plaintext stream, sealed in pieces of fuzzer-chosen lengths.
    let stream_len = choices.number() % 20_000;
    let stream: Vec<u8> = (0..stream_len).map(|i| (i * 31 % 251) as u8).collect();
    let mut sealed = Vec::new();
    let mut at = 0;
    while at < stream.len() {
        let piece = if choices.0.is_empty() {
            stream.len() - at
        } else {
            (choices.number() * 4 + 1).min(stream.len() - at)
        };
        client
            .sealer
            .seal(&stream[at..at + piece], &mut sealed)
            .expect("sealing");
        at += piece;
    }

    // The man in the middle.
    for _ in 0..choices.byte() % 4 {
        if sealed.is_empty() {
            break;
        }
        let position = choices.number() * 7 % sealed.len();
        match choices.byte() % 5 {
            0 => sealed[position] ^= choices.byte() | 1,
            1 => sealed.truncate(position),
            2 => {
                let end = (position + choices.number()).min(sealed.len());
                sealed.drain(position..end);
            }
            3 => {
                let end = (position + choices.number()).min(sealed.len());
                let copy = sealed[position..end].to_vec();
                sealed.splice(position..position, copy);
            }
            _ => {
                let garbage: Vec<u8> = (0..choices.byte()).map(|_| choices.byte()).collect();
                sealed.splice(position..position, garbage);
            }
        }
    }

    // The listener reads in pieces and checks every byte it is given.
    let mut given = 0;
    let mut rest = &sealed[..];
    let opener = &mut listener.opener;
    loop {
        match opener.open_next() {
            Ok(true) => {
                let plaintext = opener.plaintext();
                assert_eq!(
                    plaintext,
                    &stream[given..given + plaintext.len()],
                    "the opener gave bytes that were not sealed there"
                );
                given += plaintext.len();
                let taken = plaintext.len();
                opener.consume(taken);
            }
            Ok(false) if rest.is_empty() => break,
            Ok(false) => {
                // Pieces as the fuzzer says while its choices last, then
                // whatever fits.
                let want = if choices.0.is_empty() {
                    rest.len()
                } else {
                    choices.number() + 1
                };
                let buffer = opener.buffer();
                let n = want.min(buffer.len()).min(rest.len());
                buffer[..n].copy_from_slice(&rest[..n]);
                opener.advance(n);
                rest = &rest[n..];
            }
            Err(_) => return,
        }
    }
    assert!(given <= stream.len());
});
