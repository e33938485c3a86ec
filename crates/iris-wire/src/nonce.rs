//! Challenge nonces: the operating system's random bytes, fetched 100
//! nonces at a time.
//!
//! Every handshake needs 40 fresh random bytes on each side, and asking the
//! kernel for them is a system call on the handshake's critical path (about
//! 0.75 µs on the benchmark VM, four times a `getpid`). The nonces are public
//! once sent, so holding the next ones in memory reveals nothing to someone
//! who cannot already read the process (and with it the authkey).
//!
//! What must never happen is two processes using the same nonce: a server
//! that forks after its first handshake would otherwise give parent and
//! child the same buffer, and an answer recorded from one could be replayed
//! to the other. The buffer therefore remembers which process filled it, and
//! a process that finds another's buffer throws it away and refills it.
//!
//! What it cannot tell apart is two copies of one process restored from the
//! same memory snapshot (a cloned VM): they share the unused nonces, as they
//! share the process's X25519 key share, where a `getrandom` per nonce would
//! have been reseeded by the kernel. Do not restore one snapshot of a
//! running listener or client twice.

use std::io;
use std::sync::{Mutex, PoisonError};

use ring::rand::{SecureRandom, SystemRandom};

use crate::Error;
use crate::handshake::NONCE_LEN;

/// Nonces fetched per system call.
const NONCES_PER_FILL: usize = 100;

/// This process's unused nonces.
static POOL: Mutex<NoncePool> = Mutex::new(NoncePool::EMPTY);

/// 40 random bytes from the operating system, for a challenge, never
/// handed out twice and never shared with a forked process.
pub(crate) fn fresh_nonce() -> Result<[u8; NONCE_LEN], Error> {
    let process = std::process::id();
    POOL.lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take(process, |bytes| SystemRandom::new().fill(bytes).is_ok())
        .ok_or_else(|| Error::Io(io::Error::other("the system random generator failed")))
}

/// Random bytes not yet used, and the process they were fetched for.
struct NoncePool {
    bytes: [u8; NONCE_LEN * NONCES_PER_FILL],
    /// How many of `bytes` were handed out.
    used: usize,
    /// The process that filled `bytes` (0 before the first fill: no process
    /// has that id).
    process: u32,
}

impl NoncePool {
    const EMPTY: NoncePool = NoncePool {
        bytes: [0; NONCE_LEN * NONCES_PER_FILL],
        used: NONCE_LEN * NONCES_PER_FILL,
        process: 0,
    };

    /// The next nonce for `process`, refilling with `fill` when the bytes
    /// are used up or were fetched by another process. `None` if `fill`
    /// fails (then nothing is handed out).
    fn take(
        &mut self,
        process: u32,
        fill: impl FnOnce(&mut [u8]) -> bool,
    ) -> Option<[u8; NONCE_LEN]> {
        if self.process != process || self.used + NONCE_LEN > self.bytes.len() {
            self.used = self.bytes.len();
            if !fill(&mut self.bytes) {
                return None;
            }
            self.process = process;
            self.used = 0;
        }
        let mut nonce = [0; NONCE_LEN];
        nonce.copy_from_slice(&self.bytes[self.used..self.used + NONCE_LEN]);
        self.used += NONCE_LEN;
        Some(nonce)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    /// A fill that writes a counter, so that every fill is recognisable.
    fn counting_fill(fills: &mut u8) -> impl FnOnce(&mut [u8]) -> bool + '_ {
        move |bytes| {
            *fills += 1;
            for (index, word) in bytes.chunks_mut(4).enumerate() {
                let value = (u32::from(*fills) << 24) | index as u32;
                word.copy_from_slice(&value.to_be_bytes()[..word.len()]);
            }
            true
        }
    }

    #[test]
    fn one_fill_serves_many_nonces_then_another_is_fetched() {
        let mut pool = NoncePool::EMPTY;
        let mut fills = 0;
        let mut seen = HashSet::new();
        for _ in 0..NONCES_PER_FILL {
            let nonce = pool.take(7, counting_fill(&mut fills)).expect("filled");
            assert!(seen.insert(nonce), "a nonce was handed out twice");
        }
        assert_eq!(fills, 1);
        let nonce = pool.take(7, counting_fill(&mut fills)).expect("filled");
        assert_eq!(fills, 2, "the pool is refilled once used up");
        assert!(seen.insert(nonce));
    }

    #[test]
    fn a_forked_process_refills_instead_of_reusing_the_parents_nonces() {
        let mut parent = NoncePool::EMPTY;
        let mut fills = 0;
        parent.take(7, counting_fill(&mut fills)).expect("filled");
        // fork() copies the pool as it is.
        let mut child = NoncePool {
            bytes: parent.bytes,
            used: parent.used,
            process: parent.process,
        };
        let from_parent = parent.take(7, counting_fill(&mut fills)).expect("filled");
        assert_eq!(fills, 1);
        let from_child = child.take(8, counting_fill(&mut fills)).expect("filled");
        assert_eq!(fills, 2, "the child fetched its own bytes");
        assert_ne!(from_parent, from_child);
    }

    #[test]
    fn a_failed_fill_hands_out_nothing_and_is_retried() {
        let mut pool = NoncePool::EMPTY;
        assert_eq!(pool.take(7, |_| false), None);
        assert_eq!(
            pool.take(7, |_| false),
            None,
            "no stale bytes after a failure"
        );
        let mut fills = 0;
        assert!(pool.take(7, counting_fill(&mut fills)).is_some());
    }

    #[test]
    fn nonces_from_the_system_differ() {
        let first = fresh_nonce().expect("random bytes");
        let second = fresh_nonce().expect("random bytes");
        assert_ne!(first, second);
        assert_ne!(first, [0; NONCE_LEN]);
    }
}
