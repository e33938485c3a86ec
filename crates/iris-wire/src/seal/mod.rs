//! Sealed sessions: after the handshake, every byte between two iris peers
//! encrypted and authenticated (docs/PROTOCOL.md §3–4).
//!
//! Two iris peers agree on sealing inside the CPython handshake itself: the
//! listener's challenge and the client's carry marks with their X25519
//! public keys, covered by the HMACs, so nothing is added to the round trips
//! and no man in the middle can strip them. The keys come from the authkey,
//! the X25519 secret and a hash of the whole handshake (TLS 1.3's key
//! schedule); records are AES-256-GCM. CPython peers see ordinary challenges
//! and go on unsealed, unless sealing is [required](Sealing::Require).
//!
//! This module is sans I/O: [`RecordSealer`] and [`RecordOpener`] turn
//! bytes into records and back, and the adapters
//! ([`Connection`](crate::Connection), and `AsyncConnection` with the
//! `tokio` feature) drive them.

mod key_share;
mod record;
mod schedule;

pub use key_share::{KEY_SHARE_LIFETIME, KeyShare};
pub use record::{
    MAX_RECORD_LEN, MAX_RECORD_PLAINTEXT, RECORD_HEADER_LEN, RECORDS_PER_KEY, RecordError,
    RecordOpener, RecordSealer, TAG_LEN,
};
pub(crate) use schedule::{Secret, derived_from_authkey, traffic_secrets, transcript_hash};

/// Whether a peer seals its sessions with iris peers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Sealing {
    /// Never: every session is CPython's, readable and alterable by anyone
    /// on the path. For measurements, and peers on one trusted host.
    Off,
    /// Seal with iris peers, go on unsealed with CPython peers.
    #[default]
    Prefer,
    /// Seal or refuse the connection. A client that requires sealing sends
    /// its challenge without waiting for the listener's (fast open, one
    /// round trip less).
    Require,
}

/// The two directions of a sealed session, as the handshake hands them
/// over: ours to seal, the peer's to open.
#[derive(Debug)]
pub struct Session {
    /// Seals what we send.
    pub sealer: RecordSealer,
    /// Opens what the peer sends.
    pub opener: RecordOpener,
}

impl Session {
    /// The session of one side, from the two traffic secrets.
    pub(crate) fn new(ours: Secret, theirs: Secret, records_per_key: u64) -> Session {
        Session {
            sealer: RecordSealer::new(ours, records_per_key),
            opener: RecordOpener::new(theirs, records_per_key),
        }
    }
}

#[cfg(test)]
mod tests {
    //! docs/PROTOCOL.md's test vectors, which `tests/python/sealed_client.py`
    //! (written from the document alone) checks too.

    use super::record::RecordSealer;
    use super::schedule::{derived_from_authkey, key_and_iv, next_secret, traffic_secrets};
    use super::*;
    use crate::frame::next_frame;
    use crate::handshake::{AuthKey, Handshake, MAX_HANDSHAKE_FRAME};

    const PROTOCOL: &str = include_str!("../../../../docs/PROTOCOL.md");
    const ALICE: &str = "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a";
    const BOB: &str = "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb";

    fn unhex(text: &str) -> Vec<u8> {
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex"))
            .collect()
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The value of `name = hex` in the document's vector block.
    fn vector(name: &str) -> String {
        let (_, vectors) = PROTOCOL
            .split_once("## 6. Test vectors")
            .expect("docs/PROTOCOL.md has its vectors section");
        vectors
            .lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(" = "))
            .unwrap_or_else(|| panic!("docs/PROTOCOL.md has no vector {name:?}"))
            .trim()
            .to_owned()
    }

    fn frames(bytes: &[u8]) -> Vec<Vec<u8>> {
        let mut rest = bytes;
        let mut frames = Vec::new();
        while let Some((payload, used)) = next_frame(rest, MAX_HANDSHAKE_FRAME).expect("frame") {
            frames.push(payload.to_vec());
            rest = &rest[used..];
        }
        frames
    }

    fn private(text: &str) -> [u8; 32] {
        unhex(text).try_into().expect("32 bytes")
    }

    #[test]
    fn the_handshake_and_records_match_the_documents_vectors() {
        let key = AuthKey::new(b"My voice is my password, verify me.").expect("key");
        let listener_nonce: [u8; 40] = std::array::from_fn(|i| i as u8);
        let client_nonce: [u8; 40] = std::array::from_fn(|i| 0x40 + i as u8);
        let mut listener = Handshake::listener(&key, listener_nonce, false).with_sealing(
            KeyShare::from_private_bytes(private(ALICE)),
            Sealing::Prefer,
        );
        let mut client = Handshake::client(&key, client_nonce, false)
            .with_sealing(KeyShare::from_private_bytes(private(BOB)), Sealing::Prefer);

        let challenge = frames(&listener.take_outgoing()).remove(0);
        assert_eq!(hex(&challenge[11..]), vector("Lm"));
        client.receive(&challenge).expect("challenge");
        let answer_and_challenge = frames(&client.take_outgoing());
        assert_eq!(hex(&answer_and_challenge[0]), vector("Cr"));
        assert_eq!(hex(&answer_and_challenge[1][11..]), vector("Cm"));
        for frame in &answer_and_challenge {
            listener.receive(frame).expect("client's flight");
        }
        let welcome_and_answer = frames(&listener.take_outgoing());
        assert_eq!(hex(&welcome_and_answer[1]), vector("Lr"));
        for frame in &welcome_and_answer {
            client.receive(frame).expect("listener's flight");
        }
        let record_0 = client.take_outgoing();
        assert_eq!(hex(&record_0), vector("client record 0"));
        listener
            .receive(&record_0[4..])
            .expect("the sealed welcome opens");
        assert!(listener.is_complete() && client.is_complete());

        let mut to_listener = client.take_session().expect("sealed").sealer;
        let mut out = Vec::new();
        to_listener
            .seal(b"\x00\x00\x00\x05hello", &mut out)
            .expect("seal");
        assert_eq!(hex(&out), vector("client record 1"));
        let mut to_client = listener.take_session().expect("sealed").sealer;
        out.clear();
        to_client
            .seal(b"\x00\x00\x00\x05world", &mut out)
            .expect("seal");
        assert_eq!(hex(&out), vector("listener record 0"));
    }

    #[test]
    fn the_key_schedule_matches_the_documents_vectors() {
        let derived = derived_from_authkey(b"My voice is my password, verify me.");
        assert_eq!(hex(&derived), vector("derived"));
        let shared: Secret = unhex(&vector("shared")).try_into().expect("32 bytes");
        let transcript: Secret = unhex(&vector("TH")).try_into().expect("32 bytes");
        let secrets = traffic_secrets(&derived, &shared, &transcript);
        assert_eq!(hex(&secrets.client), vector("c_secret"));
        assert_eq!(hex(&secrets.listener), vector("l_secret"));
        let (key, iv) = key_and_iv(&secrets.client);
        assert_eq!(
            (hex(&key), hex(&iv)),
            (vector("client key"), vector("client iv"))
        );
        let (key, iv) = key_and_iv(&secrets.listener);
        assert_eq!(
            (hex(&key), hex(&iv)),
            (vector("listener key"), vector("listener iv"))
        );
        assert_eq!(hex(&next_secret(&secrets.client)), vector("c_secret next"));
    }

    /// The key update, with keys moving on every 3 records instead of 2^22:
    /// record 3 is the first under `next`, at sequence number 0, exactly
    /// as a fresh direction whose secret is `next` seals its record 0.
    #[test]
    fn the_key_update_seals_the_next_record_under_the_next_secret_from_sequence_0() {
        let secret = [7u8; 32];
        let mut sealer = RecordSealer::new(secret, 3);
        let mut out = Vec::new();
        for _ in 0..3 {
            sealer.seal_record(b"x", &mut out).expect("seal");
        }
        out.clear();
        sealer.seal_record(b"after", &mut out).expect("seal");
        let mut fresh = RecordSealer::new(next_secret(&secret), 3);
        let mut expected = Vec::new();
        fresh.seal_record(b"after", &mut expected).expect("seal");
        assert_eq!(out, expected);

        let mut opener = RecordOpener::new(secret, 3);
        let mut stream = Vec::new();
        let mut sealer = RecordSealer::new(secret, 3);
        for i in 0..10u8 {
            sealer.seal_record(&[i], &mut stream).expect("seal");
        }
        opener.feed(&stream);
        for i in 0..10u8 {
            assert!(opener.open_next().expect("open"));
            assert_eq!(opener.plaintext(), [i]);
            opener.consume(1);
        }
    }
}

#[cfg(test)]
mod scale {
    use super::RECORDS_PER_KEY;
    use super::record::{RecordOpener, RecordSealer};

    /// The real key update, past record 2^22 (slow in a debug build).
    #[test]
    #[ignore = "4 million records; run with --release --ignored"]
    fn the_key_update_at_2_22_records() {
        let mut sealer = RecordSealer::new([3; 32], RECORDS_PER_KEY);
        let mut opener = RecordOpener::new([3; 32], RECORDS_PER_KEY);
        let mut out = Vec::new();
        for i in 0..RECORDS_PER_KEY + 3 {
            out.clear();
            sealer.seal_record(&[i as u8], &mut out).expect("seal");
            opener.feed(&out);
            assert!(
                opener
                    .open_next()
                    .unwrap_or_else(|e| panic!("record {i}: {e}"))
            );
            opener.consume(1);
        }
    }
}
