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
//! ([`Connection`](crate::Connection),
//! [`AsyncConnection`](crate::AsyncConnection)) drive them.

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
