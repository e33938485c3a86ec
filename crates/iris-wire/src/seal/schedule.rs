//! The key schedule of a sealed session (docs/PROTOCOL.md §4.1–4.2): the
//! transcript hash and TLS 1.3's HKDF-Expand-Label chain, with a pre-shared
//! key (the authkey) and an X25519 secret as inputs.
//!
//! HKDF and SHA-256 come from RustCrypto's `hkdf` and `sha2` (SHA-NI where
//! the CPU has it): a handshake makes about a dozen short HMACs here, each a
//! third cheaper than with ring's, whose contexts are copied around more.

use hkdf::Hkdf;
use sha2::{Digest, Sha256};
use zeroize::Zeroize;

/// Prefix of every label, so that no iris secret can equal a TLS one.
const LABEL_PREFIX: &[u8] = b"iris1 ";

/// Length of a secret, of the transcript hash and of an AES-256 key.
pub(crate) const SECRET_LEN: usize = 32;
/// Length of an AES-GCM nonce and of a direction's IV.
pub(crate) const IV_LEN: usize = 12;

/// A secret of the schedule.
pub(crate) type Secret = [u8; SECRET_LEN];

/// `secret` as the key of HKDF-Expand: its HMAC key schedule, computed once
/// for all the labels expanded from it.
fn prk(secret: &Secret) -> Hkdf<Sha256> {
    Hkdf::from_prk(secret)
        .unwrap_or_else(|_| unreachable!("a secret is as long as SHA-256's output"))
}

/// TLS 1.3's HKDF-Expand-Label (RFC 8446 §7.1) over SHA-256, with the
/// label prefix `iris1 `, filling `out`.
fn expand_label(prk: &Hkdf<Sha256>, label: &[u8], context: &[u8], out: &mut [u8]) {
    let length = (out.len() as u16).to_be_bytes();
    let label_len = [(LABEL_PREFIX.len() + label.len()) as u8];
    let context_len = [context.len() as u8];
    let info = [
        &length[..],
        &label_len,
        LABEL_PREFIX,
        label,
        &context_len,
        context,
    ];
    // Every output here is at most 32 bytes, far under HKDF-SHA256's 8160.
    prk.expand_multi_info(&info, out)
        .unwrap_or_else(|_| unreachable!("HKDF-SHA256 outputs up to 8160 bytes"));
}

fn expand_secret(prk: &Hkdf<Sha256>, label: &[u8], context: &[u8]) -> Secret {
    let mut out = [0; SECRET_LEN];
    expand_label(prk, label, context, &mut out);
    out
}

/// HKDF-Extract over SHA-256: the pseudorandom key, and it keyed for
/// HKDF-Expand.
fn extract(salt: &[u8], ikm: &[u8]) -> (Secret, Hkdf<Sha256>) {
    let (prk, keyed) = Hkdf::<Sha256>::extract(Some(salt), ikm);
    (prk.into(), keyed)
}

/// `derived` of the schedule: depends on the authkey alone, so an
/// [`AuthKey`](crate::handshake::AuthKey) computes it once.
pub(crate) fn derived_from_authkey(authkey: &[u8]) -> Secret {
    let (mut early_secret, early) = extract(&[0; SECRET_LEN], authkey);
    early_secret.zeroize();
    let empty_hash = Sha256::digest(b"");
    expand_secret(&early, b"derived", &empty_hash)
}

/// The transcript hash `TH` over the four handshake messages, in the
/// protocol's fixed order whatever order they travelled in.
pub(crate) fn transcript_hash(
    listener_challenge: &[u8],
    client_response: &[u8],
    client_challenge: &[u8],
    listener_response: &[u8],
) -> Secret {
    let mut context = Sha256::new();
    for message in [
        listener_challenge,
        client_response,
        client_challenge,
        listener_response,
    ] {
        context.update((message.len() as u32).to_be_bytes());
        context.update(message);
    }
    context.finalize().into()
}

/// The two directions' first traffic secrets.
pub(crate) struct TrafficSecrets {
    /// Client to listener.
    pub(crate) client: Secret,
    /// Listener to client.
    pub(crate) listener: Secret,
}

impl Drop for TrafficSecrets {
    fn drop(&mut self) {
        // The session's record layer keeps its own copies, which it does
        // not wipe yet (the README says why).
        self.client.zeroize();
        self.listener.zeroize();
    }
}

/// Derives the traffic secrets from `derived` (the authkey's), the X25519
/// shared secret and the transcript hash.
pub(crate) fn traffic_secrets(
    derived: &Secret,
    shared: &Secret,
    transcript: &Secret,
) -> TrafficSecrets {
    let (mut master_secret, master) = extract(derived, shared);
    master_secret.zeroize();
    TrafficSecrets {
        client: expand_secret(&master, b"c traffic", transcript),
        listener: expand_secret(&master, b"l traffic", transcript),
    }
}

/// The AES-256-GCM key and IV of a direction's secret.
pub(crate) fn key_and_iv(secret: &Secret) -> (Secret, [u8; IV_LEN]) {
    let secret = prk(secret);
    let key = expand_secret(&secret, b"key", b"");
    let mut iv = [0; IV_LEN];
    expand_label(&secret, b"iv", b"", &mut iv);
    (key, iv)
}

/// The secret that follows `secret` after a key update.
pub(crate) fn next_secret(secret: &Secret) -> Secret {
    expand_secret(&prk(secret), b"traffic upd", b"")
}
