//! This process's X25519 key for sealed sessions.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use ring::rand::{SecureRandom, SystemRandom};
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::{Zeroize, Zeroizing};

use super::schedule::Secret;
use crate::{AuthError, Error};

/// How long the process keeps one X25519 key before making a new one (at
/// the first handshake after that; until then an idle process keeps the
/// old one).
///
/// Sealed sessions made with a key can be opened by someone who, besides
/// the authkey, reads that key out of this process's memory while it lives;
/// once it is replaced and dropped (and zeroed), they cannot. Keeping one
/// key this long lets the X25519 work be done once per peer instead of
/// once per connection.
pub const KEY_SHARE_LIFETIME: Duration = Duration::from_secs(60);

/// Peers remembered per key, so that a peer's repeat connections skip the
/// Diffie-Hellman.
const AGREED_PEERS: usize = 1024;

/// An X25519 key pair offered in a handshake's mark, with the secrets
/// already agreed with recent peers.
///
/// Cloning is cheap. `Debug` shows only the public key.
#[derive(Clone)]
pub struct KeyShare(Arc<Inner>);

struct Inner {
    secret: StaticSecret,
    public: [u8; 32],
    born: Instant,
    agreed: Mutex<HashMap<[u8; 32], Secret>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The secrets agreed under a key that is replaced open its
        // sessions: they go with it (the private key zeroes itself).
        let agreed = self
            .agreed
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner);
        for secret in agreed.values_mut() {
            secret.zeroize();
        }
    }
}

static CURRENT: Mutex<Option<KeyShare>> = Mutex::new(None);

impl KeyShare {
    /// A new key pair from the operating system's random generator.
    pub fn generate() -> Result<KeyShare, Error> {
        let mut private = Zeroizing::new([0u8; 32]);
        SystemRandom::new()
            .fill(&mut *private)
            .map_err(|_| Error::Io(std::io::Error::other("the system random generator failed")))?;
        Ok(KeyShare::from_private_bytes(*private))
    }

    /// The key pair of a known private key: for test vectors. A real
    /// private key must be random and never leave the process.
    pub fn from_private_bytes(private: [u8; 32]) -> KeyShare {
        let secret = StaticSecret::from(private);
        let public = PublicKey::from(&secret).to_bytes();
        KeyShare(Arc::new(Inner {
            secret,
            public,
            born: Instant::now(),
            agreed: Mutex::new(HashMap::new()),
        }))
    }

    /// The process's current key pair, replaced once it is
    /// [`KEY_SHARE_LIFETIME`] old.
    pub fn current() -> Result<KeyShare, Error> {
        let mut current = CURRENT.lock().unwrap_or_else(PoisonError::into_inner);
        match &*current {
            Some(share) if share.0.born.elapsed() < KEY_SHARE_LIFETIME => Ok(share.clone()),
            _ => {
                let share = KeyShare::generate()?;
                *current = Some(share.clone());
                Ok(share)
            }
        }
    }

    /// The public key, as it travels in a mark.
    pub fn public(&self) -> &[u8; 32] {
        &self.0.public
    }

    /// The X25519 secret shared with the holder of `peer`; a peer key of
    /// low order, which would give a secret anyone knows, is refused.
    pub(crate) fn agree(&self, peer: &[u8; 32]) -> Result<Secret, AuthError> {
        let agreed = |inner: &Inner| {
            inner
                .agreed
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get(peer)
                .copied()
        };
        if let Some(secret) = agreed(&self.0) {
            return Ok(secret);
        }
        let shared = self.0.secret.diffie_hellman(&PublicKey::from(*peer));
        if !shared.was_contributory() {
            return Err(AuthError::Protocol(
                "the peer's sealing key is of low order: no secret can be agreed with it".into(),
            ));
        }
        let secret = shared.to_bytes();
        let mut table = self.0.agreed.lock().unwrap_or_else(PoisonError::into_inner);
        if table.len() >= AGREED_PEERS {
            // Any one goes: a peer that comes back pays one agreement.
            let evicted = table.keys().next().copied();
            if let Some(evicted) = evicted {
                if let Some(mut secret) = table.remove(&evicted) {
                    secret.zeroize();
                }
            }
        }
        table.insert(*peer, secret);
        Ok(secret)
    }
}

impl fmt::Debug for KeyShare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyShare")
            .field("public", &Hex(&self.0.public))
            .finish_non_exhaustive()
    }
}

struct Hex<'a>(&'a [u8]);

impl fmt::Debug for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|byte| write!(f, "{byte:02x}"))
    }
}
