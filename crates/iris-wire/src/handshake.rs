//! The mutual authentication of `multiprocessing.connection`, as a state
//! machine over frame payloads: it never touches a socket.
//!
//! Each side proves it holds the authkey without sending it: one side sends
//! a random challenge, the other answers with an HMAC of it keyed by the
//! authkey, and the first replies `#WELCOME#` or `#FAILURE#`. The listener
//! challenges first, then the client challenges the listener, as CPython's
//! `deliver_challenge` / `answer_challenge` do.
//!
//! ```text
//! listener                                     client
//!   #CHALLENGE#{sha256}<40 random bytes>  -->
//!                                         <--  {sha256}<HMAC-SHA256(key, challenge)>
//!   #WELCOME#                             -->
//!                                         <--  #CHALLENGE#{sha256}<40 random bytes>
//!   {sha256}<HMAC-SHA256(key, challenge)> -->
//!                                         <--  #WELCOME#
//! ```
//!
//! The HMAC covers the whole challenge including its `{sha256}` prefix, so a
//! man in the middle cannot downgrade the digest.
//!
//! **Pipelining.** An iris listener appends [`IRIS_MARK`] to its challenge
//! (inside what the HMAC covers, so it cannot be forged onto a CPython
//! challenge without the key mattering; CPython clients answer any challenge
//! bytes). A client that sees the mark sends its answer and its own challenge
//! together, without waiting for `#WELCOME#`, and the listener then sends its
//! welcome and its answer together: 1.5 round trips instead of 3. Towards a
//! listener without the mark the client waits, because CPython's listener
//! would otherwise stall on Nagle's algorithm and the delayed ACK.
//!
//! **Legacy peers.** CPython 3.11 and older send a bare 20-byte challenge and
//! answer with a bare 16-byte HMAC-MD5. Those peers are accepted only when the
//! caller enables legacy MD5 explicitly.

use std::fmt;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use hmac::{Hmac, KeyInit, Mac};
use md5::Md5;
use sha2::{Sha256, Sha384};
use subtle::ConstantTimeEq;

use crate::Options;
use crate::error::{AuthError, Error};
use crate::frame::Header;
use crate::seal::{
    KeyShare, RECORDS_PER_KEY, Sealing, Secret, Session, derived_from_authkey, traffic_secrets,
    transcript_hash,
};

/// Prefix of a challenge frame.
pub const CHALLENGE_PREFIX: &[u8] = b"#CHALLENGE#";
/// The verdict for a correct answer.
pub const WELCOME: &[u8] = b"#WELCOME#";
/// The verdict for a wrong answer.
pub const FAILURE: &[u8] = b"#FAILURE#";
/// How many random bytes a challenge carries (CPython's `MESSAGE_LENGTH`).
pub const NONCE_LEN: usize = 40;
/// Handshake frames longer than this are refused, as CPython refuses them.
pub const MAX_HANDSHAKE_FRAME: u64 = 256;
/// Appended by an iris listener that does not seal to its challenge, to say
/// "you may pipeline".
pub const IRIS_MARK: &[u8] = b"~iris:pipeline";
/// Appended, with its X25519 public key, by an iris listener that offers a
/// sealed session (docs/PROTOCOL.md §3); implies pipelining.
pub const LISTENER_SEAL_MARK: &[u8] = b"~iris:seal1:L";
/// Appended, with its X25519 public key, by an iris client that accepts the
/// listener's offer of a sealed session.
pub const CLIENT_SEAL_MARK: &[u8] = b"~iris:seal1:C";
/// Length of an X25519 public key in a sealing mark.
pub const SEAL_KEY_LEN: usize = 32;
/// Length of a challenge message with a sealing mark.
const SEALED_MESSAGE_LEN: usize = 8 + NONCE_LEN + 13 + SEAL_KEY_LEN;
/// What the client's first record holds: its `#WELCOME#`, framed.
const SEALED_WELCOME: &[u8] = b"\x00\x00\x00\x09#WELCOME#";

const SHA256_PREFIX: &[u8] = b"{sha256}";
const LEGACY_CHALLENGE_LEN: usize = 20;
const MD5_DIGEST_LEN: usize = 16;
/// CPython's `_MAX_DIGEST_LEN` is 8 (`sha3_384`); a little slack costs nothing.
const MAX_DIGEST_NAME_LEN: usize = 16;

/// A shared secret, validated and with its HMAC key schedule precomputed.
///
/// Cloning is cheap. `Debug` never shows the key.
#[derive(Clone)]
pub struct AuthKey {
    raw: Arc<[u8]>,
    sha256: Hmac<Sha256>,
    /// The key schedule's `derived` secret, which depends on the key alone.
    sealing_salt: Arc<OnceLock<Secret>>,
}

impl AuthKey {
    /// Validates `bytes` as an authkey. An empty key is refused: it would
    /// mean "no authentication", which this library never offers.
    pub fn new(bytes: &[u8]) -> Result<Self, Error> {
        if bytes.is_empty() {
            return Err(Error::EmptyAuthkey);
        }
        Ok(AuthKey {
            raw: bytes.into(),
            sha256: hmac_key(bytes),
            sealing_salt: Arc::default(),
        })
    }

    /// The key made last from the same bytes, or a new one: what the key's
    /// bytes turn into wherever an authkey is taken ([`ToAuthKey`]).
    fn reusing(bytes: &[u8]) -> Result<Self, Error> {
        static LAST: LastKey = LastKey::new();
        LAST.get_or_make(bytes)
    }

    fn sealing_salt(&self) -> &Secret {
        self.sealing_salt
            .get_or_init(|| derived_from_authkey(&self.raw))
    }

    fn legacy_md5(&self) -> Hmac<Md5> {
        hmac_key(&self.raw)
    }
}

/// An HMAC keyed with `key`, its key schedule computed.
fn hmac_key<M: KeyInit>(key: &[u8]) -> M {
    // HMAC accepts keys of any length, so this cannot fail.
    M::new_from_slice(key).unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"))
}

/// The [`AuthKey`] this process made last from bytes.
///
/// A client that connects again and again with the same key's bytes (as
/// `Client::connect(address, b"secret")` in a loop does) then computes the
/// key's HMAC schedule and its sealing salt once, instead of on every
/// connection's critical path. Only the last key is kept, until a key of
/// other bytes replaces it; the caller holds the same bytes anyway.
struct LastKey(Mutex<Option<AuthKey>>);

impl LastKey {
    const fn new() -> Self {
        LastKey(Mutex::new(None))
    }

    fn get_or_make(&self, bytes: &[u8]) -> Result<AuthKey, Error> {
        let mut last = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(key) = last.as_ref()
            && bool::from(key.raw.ct_eq(bytes))
        {
            return Ok(key.clone());
        }
        let key = AuthKey::new(bytes)?;
        *last = Some(key.clone());
        Ok(key)
    }
}

/// What the functions that take an authkey accept: the key's bytes
/// (`&[u8]`, `b"..."`, `Vec<u8>`) or an [`AuthKey`] made beforehand.
///
/// Bytes equal to those of the key this process made last from bytes reuse
/// that key, with its precomputed HMAC schedule and sealing salt, so that
/// connecting in a loop with the same bytes costs no more than passing an
/// [`AuthKey`].
pub trait ToAuthKey {
    /// The validated key (an empty one is refused).
    fn to_auth_key(&self) -> Result<AuthKey, Error>;
}

impl ToAuthKey for AuthKey {
    fn to_auth_key(&self) -> Result<AuthKey, Error> {
        Ok(self.clone())
    }
}

impl ToAuthKey for [u8] {
    fn to_auth_key(&self) -> Result<AuthKey, Error> {
        AuthKey::reusing(self)
    }
}

impl<const N: usize> ToAuthKey for [u8; N] {
    fn to_auth_key(&self) -> Result<AuthKey, Error> {
        AuthKey::reusing(self)
    }
}

impl ToAuthKey for Vec<u8> {
    fn to_auth_key(&self) -> Result<AuthKey, Error> {
        AuthKey::reusing(self)
    }
}

impl<T: ToAuthKey + ?Sized> ToAuthKey for &T {
    fn to_auth_key(&self) -> Result<AuthKey, Error> {
        (**self).to_auth_key()
    }
}

impl fmt::Debug for AuthKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AuthKey(<redacted>)")
    }
}

/// Which side of the connection a [`Handshake`] plays.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The side that accepted the connection; it challenges first.
    Listener,
    /// The side that connected.
    Client,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum AfterVerdict {
    Done,
    SendChallenge,
    AwaitResponse,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// We sent our challenge and wait for the answer.
    AwaitResponse,
    /// We wait for the peer's challenge.
    AwaitChallenge,
    /// We answered the peer's challenge and wait for its verdict.
    AwaitVerdict(AfterVerdict),
    /// Listener of a sealed session: we answered the client's challenge and
    /// wait for its first record, the sealed `#WELCOME#`.
    AwaitSealedWelcome,
    Done,
    Failed,
}

/// What a handshake that offers sealing keeps until the keys are derived.
struct SealState {
    share: KeyShare,
    require: bool,
    /// The client sent its challenge first (docs/PROTOCOL.md §4.5).
    fast_open: bool,
    peer_public: Option<[u8; SEAL_KEY_LEN]>,
    /// Listener, fast open: the client's key, taken as `peer_public` only
    /// once its answer to our challenge proves it holds the authkey, so
    /// that no X25519 work is done for a client that has proved nothing.
    unproven_public: Option<[u8; SEAL_KEY_LEN]>,
    shared: Option<Secret>,
    /// The transcript: `Lm`, `Cr`, `Cm`, `Lr` (empty until known).
    listener_challenge: Vec<u8>,
    client_response: Vec<u8>,
    client_challenge: Vec<u8>,
    listener_response: Vec<u8>,
}

impl SealState {
    fn transcript_complete(&self) -> bool {
        ![
            &self.listener_challenge,
            &self.client_response,
            &self.client_challenge,
            &self.listener_response,
        ]
        .iter()
        .any(|message| message.is_empty())
    }
}

/// One side of the mutual authentication, driven by the frames it receives.
///
/// The caller writes [`Handshake::take_outgoing`] to the peer (the bytes are
/// already framed), reads one frame of at most [`MAX_HANDSHAKE_FRAME`] bytes,
/// passes its payload to [`Handshake::receive`], and repeats until
/// [`Handshake::is_complete`]. After an error, the outgoing bytes may hold a
/// `#FAILURE#` verdict worth sending before closing. Before waiting for the
/// peer, a caller may call [`Handshake::prepare`] so that the key agreement
/// of a sealed session runs while the peer works.
///
/// ```
/// use iris_wire::frame::next_frame;
/// use iris_wire::handshake::{AuthKey, Handshake, MAX_HANDSHAKE_FRAME};
/// use iris_wire::seal::{KeyShare, Sealing};
///
/// /// Delivers everything `from` has to send to `to`.
/// fn deliver(from: &mut Handshake, to: &mut Handshake) -> Result<(), Box<dyn std::error::Error>> {
///     let bytes = from.take_outgoing();
///     let mut rest = &bytes[..];
///     while let Some((payload, used)) = next_frame(rest, MAX_HANDSHAKE_FRAME)? {
///         to.receive(payload)?;
///         rest = &rest[used..];
///     }
///     Ok(())
/// }
///
/// let key = AuthKey::new(b"secret")?;
/// let mut listener = Handshake::listener(&key, [7; 40], false)
///     .with_sealing(KeyShare::generate()?, Sealing::Prefer);
/// let mut client = Handshake::client(&key, [9; 40], false)
///     .with_sealing(KeyShare::generate()?, Sealing::Prefer);
/// while !(listener.is_complete() && client.is_complete()) {
///     deliver(&mut listener, &mut client)?;
///     deliver(&mut client, &mut listener)?;
/// }
/// assert!(listener.is_sealed() && client.is_sealed());
/// let (mut to_listener, mut from_client) = (client.take_session().unwrap(), listener.take_session().unwrap());
/// let mut record = Vec::new();
/// to_listener.sealer.seal(b"hello", &mut record)?;
/// from_client.opener.feed(&record);
/// assert!(from_client.opener.open_next()?);
/// assert_eq!(from_client.opener.plaintext(), b"hello");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Handshake {
    role: Role,
    key: AuthKey,
    legacy_md5: bool,
    state: State,
    /// Our challenge, without the `#CHALLENGE#` prefix: what the HMAC covers.
    our_challenge: Vec<u8>,
    outgoing: Vec<u8>,
    /// Whether the peer's challenge carried an iris listener's mark.
    peer_marked: bool,
    /// `Some` while sealing is on offer and still possible.
    seal: Option<Box<SealState>>,
    /// The sealed session's keys, once derived. Boxed: a `Handshake` is
    /// moved by value (into a listener's `Incoming`, onto the session
    /// thread, into the driver), and every copy inline would cost each
    /// session thread stack pages it keeps for its whole life, sealed or not.
    session: Option<Box<Session>>,
    sealed: bool,
}

impl fmt::Debug for Handshake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handshake")
            .field("role", &self.role)
            .field("state", &self.state)
            .field("sealing", &self.seal.is_some())
            .field("sealed", &self.sealed)
            .finish_non_exhaustive()
    }
}

impl Handshake {
    /// Starts the listener's side: the challenge is queued at once.
    pub fn listener(key: &AuthKey, nonce: [u8; NONCE_LEN], legacy_md5: bool) -> Self {
        let mut handshake = Handshake::new(Role::Listener, key, nonce, legacy_md5, true);
        handshake.queue_our_challenge();
        handshake.state = State::AwaitResponse;
        handshake
    }

    /// Starts the client's side, which waits for the listener's challenge.
    pub fn client(key: &AuthKey, nonce: [u8; NONCE_LEN], legacy_md5: bool) -> Self {
        Handshake::new(Role::Client, key, nonce, legacy_md5, false)
    }

    /// Starts `role`'s side as `options` say: legacy MD5 and sealing, with
    /// the process's current [`KeyShare`].
    pub fn with_options(
        role: Role,
        key: &AuthKey,
        nonce: [u8; NONCE_LEN],
        options: &Options,
    ) -> Result<Self, Error> {
        let handshake = match role {
            Role::Listener => Handshake::listener(key, nonce, options.legacy_md5()),
            Role::Client => Handshake::client(key, nonce, options.legacy_md5()),
        };
        Ok(match options.sealing() {
            Sealing::Off => handshake,
            sealing => handshake.with_sealing(KeyShare::current()?, sealing),
        })
    }

    /// Offers a sealed session with `share`'s key ([`Sealing::Prefer`]), or
    /// insists on one ([`Sealing::Require`]: a client then sends its
    /// challenge at once, the fast open). Call it on a new handshake,
    /// before taking anything from it.
    pub fn with_sealing(mut self, share: KeyShare, sealing: Sealing) -> Self {
        let require = match sealing {
            Sealing::Off => return self,
            Sealing::Prefer => false,
            Sealing::Require => true,
        };
        let fast_open = self.role == Role::Client && require;
        match self.role {
            Role::Listener => {
                // Replace the pipelining mark queued by `listener`.
                self.our_challenge.truncate(SHA256_PREFIX.len() + NONCE_LEN);
                self.our_challenge.extend_from_slice(LISTENER_SEAL_MARK);
                self.our_challenge.extend_from_slice(share.public());
                self.outgoing.clear();
                self.queue_our_challenge();
            }
            Role::Client if fast_open => {
                self.mark_our_challenge(&share);
                self.queue_our_challenge();
            }
            Role::Client => {}
        }
        self.seal = Some(Box::new(SealState {
            share,
            require,
            fast_open,
            peer_public: None,
            unproven_public: None,
            shared: None,
            listener_challenge: Vec::new(),
            client_response: Vec::new(),
            client_challenge: Vec::new(),
            listener_response: Vec::new(),
        }));
        self
    }

    fn new(
        role: Role,
        key: &AuthKey,
        nonce: [u8; NONCE_LEN],
        legacy_md5: bool,
        mark: bool,
    ) -> Self {
        let mut our_challenge = Vec::with_capacity(SEALED_MESSAGE_LEN);
        our_challenge.extend_from_slice(SHA256_PREFIX);
        our_challenge.extend_from_slice(&nonce);
        if mark {
            our_challenge.extend_from_slice(IRIS_MARK);
        }
        Handshake {
            role,
            key: key.clone(),
            legacy_md5,
            state: State::AwaitChallenge,
            our_challenge,
            outgoing: Vec::with_capacity(256),
            peer_marked: false,
            seal: None,
            session: None,
            sealed: false,
        }
    }

    fn mark_our_challenge(&mut self, share: &KeyShare) {
        self.our_challenge.extend_from_slice(CLIENT_SEAL_MARK);
        self.our_challenge.extend_from_slice(share.public());
    }

    /// Which side this is.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Whether both sides are authenticated.
    pub fn is_complete(&self) -> bool {
        self.state == State::Done
    }

    /// Whether the peer will wait for what we send in answer to its next
    /// frame: false once only its verdict on our answer (its welcome,
    /// sealed or not) is still to come, and once the handshake is over.
    pub(crate) fn peer_waits_for_our_answers(&self) -> bool {
        match self.state {
            State::AwaitChallenge => true,
            // A fast-open client we answered waits for nothing more: its
            // answer and its first record are its verdict.
            State::AwaitResponse => !self.seal.as_deref().is_some_and(|seal| seal.fast_open),
            _ => false,
        }
    }

    /// Whether the completed handshake set up a sealed session.
    pub fn is_sealed(&self) -> bool {
        self.sealed
    }

    /// The sealed session's keys, once the handshake is complete and
    /// sealed; `None` otherwise, and after the first call.
    pub fn take_session(&mut self) -> Option<Session> {
        if self.state == State::Done {
            self.session.take().map(|session| *session)
        } else {
            None
        }
    }

    /// Takes the framed bytes to send to the peer (possibly none).
    pub fn take_outgoing(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.outgoing)
    }

    /// Whether bytes are waiting to be sent.
    pub fn has_outgoing(&self) -> bool {
        !self.outgoing.is_empty()
    }

    /// What [`take_outgoing`](Handshake::take_outgoing) would return, left
    /// in place.
    pub(crate) fn outgoing(&self) -> &[u8] {
        &self.outgoing
    }

    /// Whether the peer's challenge carried an iris listener's mark, which
    /// only iris listeners add: on the client side, once the challenge has
    /// arrived, this tells an iris listener from CPython's (whose peers
    /// expect pickles). Always false on the listener side.
    pub fn peer_is_iris_listener(&self) -> bool {
        self.peer_marked
    }

    /// Does now the work of a sealed session that can be done ahead: the
    /// X25519 agreement once the peer's key is known, and the keys once the
    /// transcript is complete. Call it after sending and before waiting, so
    /// that it overlaps the peer's work; [`receive`](Handshake::receive)
    /// does it anyway when needed.
    pub fn prepare(&mut self) -> Result<(), AuthError> {
        let Some(seal) = self.seal.as_deref_mut() else {
            return Ok(());
        };
        // The key schedule's first steps depend on the authkey alone: done
        // once per key, and here rather than once the transcript is in.
        self.key.sealing_salt();
        if let (None, Some(peer)) = (seal.shared, seal.peer_public) {
            seal.shared = Some(seal.share.agree(&peer)?);
        }
        if let (None, Some(shared)) = (&self.session, seal.shared)
            && seal.transcript_complete()
        {
            let transcript = transcript_hash(
                &seal.listener_challenge,
                &seal.client_response,
                &seal.client_challenge,
                &seal.listener_response,
            );
            let secrets = traffic_secrets(self.key.sealing_salt(), &shared, &transcript);
            let (ours, theirs) = match self.role {
                Role::Client => (secrets.client, secrets.listener),
                Role::Listener => (secrets.listener, secrets.client),
            };
            self.session = Some(Box::new(Session::new(ours, theirs, RECORDS_PER_KEY)));
        }
        Ok(())
    }

    /// Handles one frame payload from the peer.
    pub fn receive(&mut self, frame: &[u8]) -> Result<(), AuthError> {
        let result = self.step(frame);
        if result.is_err() {
            self.state = State::Failed;
            self.session = None;
        }
        result
    }

    fn step(&mut self, frame: &[u8]) -> Result<(), AuthError> {
        match self.state {
            State::AwaitResponse
                if self.role == Role::Listener && frame.starts_with(CHALLENGE_PREFIX) =>
            {
                self.receive_fast_open_challenge(frame)
            }
            State::AwaitResponse => self.receive_response(frame),
            State::AwaitChallenge => self.receive_challenge(frame),
            State::AwaitVerdict(after) => {
                parse_verdict(frame)?;
                self.state = match after {
                    AfterVerdict::Done => State::Done,
                    AfterVerdict::AwaitResponse => State::AwaitResponse,
                    AfterVerdict::SendChallenge => {
                        self.queue_our_challenge();
                        State::AwaitResponse
                    }
                };
                Ok(())
            }
            State::AwaitSealedWelcome => self.receive_sealed_welcome(frame),
            State::Done => Err(AuthError::Protocol(
                "a frame arrived after the handshake was complete".into(),
            )),
            State::Failed => Err(AuthError::Protocol("the handshake already failed".into())),
        }
    }

    /// The peer's answer to our challenge.
    fn receive_response(&mut self, frame: &[u8]) -> Result<(), AuthError> {
        if frame == FAILURE {
            // A fast-open client that found our answer to its challenge
            // wrong says so in place of its own answer.
            return Err(AuthError::Rejected);
        }
        if let Err(reason) = verify_response(&self.key, &self.our_challenge, frame, self.legacy_md5)
        {
            self.queue_frame(FAILURE);
            return Err(reason);
        }
        match (self.role, self.seal.as_deref_mut()) {
            (Role::Listener, Some(seal)) => {
                seal.listener_challenge.clone_from(&self.our_challenge);
                seal.client_response = frame.to_vec();
                if let Some(key) = seal.unproven_public.take() {
                    seal.peer_public = Some(key);
                }
                if seal.fast_open {
                    // The fast-open client does not wait for a verdict.
                    self.state = State::AwaitSealedWelcome;
                } else {
                    self.queue_frame(WELCOME);
                    self.state = State::AwaitChallenge;
                }
            }
            (Role::Listener, None) => {
                self.queue_frame(WELCOME);
                self.state = State::AwaitChallenge;
            }
            (Role::Client, Some(seal)) => {
                seal.client_challenge.clone_from(&self.our_challenge);
                seal.listener_response = frame.to_vec();
                self.prepare()?;
                let Some(session) = self.session.as_mut() else {
                    unreachable!("the transcript is complete and the secret agreed")
                };
                // Key confirmation: the verdict travels as record 0.
                session
                    .sealer
                    .seal(SEALED_WELCOME, &mut self.outgoing)
                    .map_err(|e| AuthError::Protocol(e.to_string()))?;
                self.seal = None;
                self.sealed = true;
                self.state = State::Done;
            }
            (Role::Client, None) => {
                self.queue_frame(WELCOME);
                self.state = State::Done;
            }
        }
        Ok(())
    }

    /// The peer's challenge.
    fn receive_challenge(&mut self, frame: &[u8]) -> Result<(), AuthError> {
        let challenge = parse_challenge(frame)?;
        match self.role {
            Role::Listener => {
                let client_key = match challenge.mark {
                    Mark::ClientSeal(key) if self.seal.is_some() => Some(key),
                    _ if self.seal.as_ref().is_some_and(|seal| seal.require) => {
                        return Err(AuthError::PeerCannotSeal);
                    }
                    _ => None,
                };
                let response = respond(&self.key, challenge.message, self.legacy_md5)?;
                self.queue_frame(&response);
                match (client_key, self.seal.as_deref_mut()) {
                    (Some(key), Some(seal)) => {
                        seal.peer_public = Some(key);
                        seal.client_challenge = challenge.message.to_vec();
                        seal.listener_response = response;
                        self.state = State::AwaitSealedWelcome;
                    }
                    _ => {
                        self.seal = None;
                        self.state = State::AwaitVerdict(AfterVerdict::Done);
                    }
                }
            }
            Role::Client => {
                if let Mark::ClientSeal(_) = challenge.mark {
                    // Only clients issue these: answering one would hand a
                    // fake listener the answer it needs for another client.
                    return Err(AuthError::Protocol(
                        "the peer sent a client's challenge, which no listener does (a reflection?); not answering it".into(),
                    ));
                }
                self.peer_marked = challenge.pipelining();
                let listener_key = match challenge.mark {
                    Mark::ListenerSeal(key) => Some(key),
                    _ => None,
                };
                match (self.seal.as_deref_mut(), listener_key) {
                    (Some(seal), Some(key)) => {
                        seal.peer_public = Some(key);
                        seal.listener_challenge = challenge.message.to_vec();
                    }
                    (Some(seal), None) if seal.require => return Err(AuthError::PeerCannotSeal),
                    _ => self.seal = None,
                }
                let response = respond(&self.key, challenge.message, self.legacy_md5)?;
                self.queue_frame(&response);
                let fast_open = match self.seal.as_deref_mut() {
                    Some(seal) => {
                        seal.client_response = response;
                        seal.fast_open
                    }
                    None => false,
                };
                let after = if fast_open {
                    // Our challenge already went out; the answer to it is
                    // on its way.
                    self.state = State::AwaitResponse;
                    return Ok(());
                } else if self.peer_marked {
                    if let Some(share) = self.seal.as_ref().map(|seal| seal.share.clone()) {
                        self.mark_our_challenge(&share);
                    }
                    self.queue_our_challenge();
                    AfterVerdict::AwaitResponse
                } else {
                    AfterVerdict::SendChallenge
                };
                self.state = State::AwaitVerdict(after);
            }
        }
        Ok(())
    }

    /// Listener: a client that requires sealing sent its challenge before
    /// answering ours (docs/PROTOCOL.md §4.5).
    fn receive_fast_open_challenge(&mut self, frame: &[u8]) -> Result<(), AuthError> {
        let Some(seal) = self.seal.as_deref_mut().filter(|seal| !seal.fast_open) else {
            self.queue_frame(FAILURE);
            return Err(AuthError::Protocol(
                "expected an answer to our challenge, got a challenge (a client that requires sealing talking to a listener that does not seal?)".into(),
            ));
        };
        let challenge = parse_challenge(frame)?;
        let Mark::ClientSeal(key) = challenge.mark else {
            return Err(AuthError::Protocol(
                "a client sent its challenge first without the sealing mark".into(),
            ));
        };
        seal.fast_open = true;
        seal.unproven_public = Some(key);
        seal.client_challenge = challenge.message.to_vec();
        let response = respond(&self.key, challenge.message, self.legacy_md5)?;
        self.queue_frame(&response);
        if let Some(seal) = self.seal.as_deref_mut() {
            seal.listener_response = response;
        }
        Ok(())
    }

    /// Listener: the client's first record, which must open to its
    /// `#WELCOME#`: proof that it derived the same keys.
    fn receive_sealed_welcome(&mut self, frame: &[u8]) -> Result<(), AuthError> {
        if frame == FAILURE {
            return Err(AuthError::Rejected);
        }
        self.prepare()?;
        let Some(session) = self.session.as_mut() else {
            unreachable!("the transcript is complete and the secret agreed")
        };
        let mut sealed = frame.to_vec();
        match session.opener.open_whole(&mut sealed) {
            Ok(SEALED_WELCOME) => {
                self.seal = None;
                self.sealed = true;
                self.state = State::Done;
                Ok(())
            }
            _ => Err(AuthError::KeyConfirmation),
        }
    }

    fn queue_our_challenge(&mut self) {
        let len = CHALLENGE_PREFIX.len() + self.our_challenge.len();
        self.outgoing
            .extend_from_slice(Header::encode(len as u64).as_bytes());
        self.outgoing.extend_from_slice(CHALLENGE_PREFIX);
        self.outgoing.extend_from_slice(&self.our_challenge);
    }

    fn queue_frame(&mut self, payload: &[u8]) {
        self.outgoing
            .extend_from_slice(Header::encode(payload.len() as u64).as_bytes());
        self.outgoing.extend_from_slice(payload);
    }
}

/// The iris mark at the end of a challenge message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Mark {
    /// None: a CPython peer, or iris with nothing to announce.
    None,
    /// An iris listener that does not seal; the client may pipeline.
    Pipeline,
    /// An iris listener offering a sealed session, with its X25519 key.
    ListenerSeal([u8; SEAL_KEY_LEN]),
    /// An iris client accepting a sealed session, with its X25519 key.
    ClientSeal([u8; SEAL_KEY_LEN]),
}

/// A challenge received from the peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Challenge<'a> {
    /// What the answer's HMAC covers: everything after `#CHALLENGE#`.
    pub message: &'a [u8],
    /// The iris mark it carries.
    pub mark: Mark,
}

impl Challenge<'_> {
    /// Whether the challenger is an iris listener that accepts pipelining.
    pub fn pipelining(&self) -> bool {
        matches!(self.mark, Mark::Pipeline | Mark::ListenerSeal(_))
    }
}

/// Parses a challenge frame: `#CHALLENGE#` followed by at least 20 bytes.
pub fn parse_challenge(frame: &[u8]) -> Result<Challenge<'_>, AuthError> {
    let Some(message) = frame.strip_prefix(CHALLENGE_PREFIX) else {
        return Err(AuthError::Protocol(format!(
            "expected a challenge, got {}",
            describe(frame)
        )));
    };
    if message.len() < LEGACY_CHALLENGE_LEN {
        return Err(AuthError::Protocol(format!(
            "challenge too short: {} bytes",
            message.len()
        )));
    }
    Ok(Challenge {
        message,
        mark: mark_of(message),
    })
}

/// The mark a challenge message carries, recognised only at its exact place.
fn mark_of(message: &[u8]) -> Mark {
    let Some(rest) = message.strip_prefix(SHA256_PREFIX) else {
        return Mark::None;
    };
    if rest.len() == NONCE_LEN + IRIS_MARK.len() && rest.ends_with(IRIS_MARK) {
        return Mark::Pipeline;
    }
    if message.len() != SEALED_MESSAGE_LEN {
        return Mark::None;
    }
    let (tag, key) = rest[NONCE_LEN..].split_at(LISTENER_SEAL_MARK.len());
    let key: [u8; SEAL_KEY_LEN] = key
        .try_into()
        .unwrap_or_else(|_| unreachable!("length checked"));
    match tag {
        LISTENER_SEAL_MARK => Mark::ListenerSeal(key),
        CLIENT_SEAL_MARK => Mark::ClientSeal(key),
        _ => Mark::None,
    }
}

/// The nonce of a frame that is exactly a challenge in an iris client's
/// format, `#CHALLENGE#{sha256}<nonce>` with no mark or the client's sealing
/// mark; `None` for anything else. A client uses it to refuse answering a
/// challenge that one of its own connections issued (a reflection).
pub(crate) fn challenge_nonce(frame: &[u8]) -> Option<&[u8]> {
    let message = frame.strip_prefix(CHALLENGE_PREFIX)?;
    let rest = message.strip_prefix(SHA256_PREFIX)?;
    match mark_of(message) {
        Mark::None if rest.len() == NONCE_LEN => Some(rest),
        Mark::ClientSeal(_) => Some(&rest[..NONCE_LEN]),
        _ => None,
    }
}

/// A digest CPython may name in a `{digest}` prefix that we implement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Digest {
    Sha256,
    Sha384,
    LegacyMd5,
}

/// Splits `{name}payload`, as CPython's `_get_digest_name_and_payload` does;
/// `None` for the legacy unprefixed form.
fn split_digest(message: &[u8]) -> Result<Option<(Digest, &[u8])>, AuthError> {
    if message.len() == LEGACY_CHALLENGE_LEN || message.len() == MD5_DIGEST_LEN {
        return Ok(None);
    }
    let name_end = message
        .iter()
        .take(MAX_DIGEST_NAME_LEN + 2)
        .position(|&byte| byte == b'}');
    let (Some(b'{'), Some(end)) = (message.first(), name_end) else {
        return Err(AuthError::Protocol(format!(
            "expected a {{digest}} prefix or a legacy message, got {}",
            describe(message)
        )));
    };
    let digest = match &message[1..end] {
        b"sha256" => Digest::Sha256,
        b"sha384" => Digest::Sha384,
        b"md5" => Digest::LegacyMd5,
        other => {
            return Err(AuthError::UnsupportedDigest(
                String::from_utf8_lossy(other).into_owned(),
            ));
        }
    };
    Ok(Some((digest, &message[end + 1..])))
}

/// Computes our answer to the peer's challenge `message`, as CPython's
/// `_create_response` does.
pub fn respond(key: &AuthKey, message: &[u8], legacy_md5: bool) -> Result<Vec<u8>, AuthError> {
    let (digest, prefix): (Digest, &[u8]) = match split_digest(message)? {
        None => (Digest::LegacyMd5, b""),
        Some((Digest::Sha256, _)) => (Digest::Sha256, SHA256_PREFIX),
        Some((Digest::Sha384, _)) => (Digest::Sha384, b"{sha384}"),
        Some((Digest::LegacyMd5, _)) => (Digest::LegacyMd5, b"{md5}"),
    };
    let mut response = prefix.to_vec();
    match digest {
        Digest::Sha256 => {
            let mut mac = key.sha256.clone();
            mac.update(message);
            response.extend_from_slice(&mac.finalize().into_bytes());
        }
        Digest::Sha384 => {
            let mut mac: Hmac<Sha384> = hmac_key(&key.raw);
            mac.update(message);
            response.extend_from_slice(&mac.finalize().into_bytes());
        }
        Digest::LegacyMd5 => {
            if !legacy_md5 {
                return Err(AuthError::LegacyMd5Disabled);
            }
            let mut mac = key.legacy_md5();
            mac.update(message);
            response.extend_from_slice(&mac.finalize().into_bytes());
        }
    }
    Ok(response)
}

/// Checks the peer's answer to our challenge `message` in constant time.
///
/// Only the digest we asked for (SHA-256) is accepted, or a bare HMAC-MD5 from
/// a legacy peer when `legacy_md5` is set.
pub fn verify_response(
    key: &AuthKey,
    message: &[u8],
    response: &[u8],
    legacy_md5: bool,
) -> Result<(), AuthError> {
    match split_digest(response)? {
        Some((Digest::Sha256, mac)) => {
            let mut expected = key.sha256.clone();
            expected.update(message);
            expected
                .verify_slice(mac)
                .map_err(|_| AuthError::WrongDigest)
        }
        None | Some((Digest::LegacyMd5, _)) if !legacy_md5 => Err(AuthError::LegacyMd5Disabled),
        None => {
            let mut mac = key.legacy_md5();
            mac.update(message);
            mac.verify_slice(response)
                .map_err(|_| AuthError::WrongDigest)
        }
        Some((other, _)) => Err(AuthError::Protocol(format!(
            "the peer answered our sha256 challenge with {other:?}"
        ))),
    }
}

/// Interprets the peer's verdict on our answer.
pub fn parse_verdict(frame: &[u8]) -> Result<(), AuthError> {
    match frame {
        WELCOME => Ok(()),
        FAILURE => Err(AuthError::Rejected),
        other => Err(AuthError::Protocol(format!(
            "expected #WELCOME# or #FAILURE#, got {}",
            describe(other)
        ))),
    }
}

/// A short, printable description of unexpected bytes for error messages.
fn describe(bytes: &[u8]) -> String {
    const SHOWN: usize = 24;
    let shown = &bytes[..bytes.len().min(SHOWN)];
    let ellipsis = if bytes.len() > SHOWN { "..." } else { "" };
    format!(
        "{} bytes b\"{}{ellipsis}\"",
        bytes.len(),
        shown.escape_ascii()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED_KEY: &[u8] = b"My voice is my password, verify me.";

    fn key() -> AuthKey {
        AuthKey::new(SEED_KEY).expect("non-empty key")
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn counting_nonce() -> [u8; NONCE_LEN] {
        std::array::from_fn(|i| i as u8)
    }

    /// Splits framed bytes into payloads (short headers only: handshake frames are small).
    fn frames(mut bytes: &[u8]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while !bytes.is_empty() {
            let len = u32::from_be_bytes(bytes[..4].try_into().expect("4 bytes")) as usize;
            out.push(bytes[4..4 + len].to_vec());
            bytes = &bytes[4 + len..];
        }
        out
    }

    // Vectors from CPython 3.12:
    //   hmac.new(key, b'{sha256}' + bytes(range(40)), 'sha256').hexdigest()
    const SHA256_VECTOR: &str = "6491e9e64bcb1feda4e5dc25b28078db33ee5e81135cdf8db63127f1e7107d18";
    //   hmac.new(key, b'{sha256}' + bytes(range(40)) + b'~iris:pipeline', 'sha256').hexdigest()
    const SHA256_MARKED_VECTOR: &str =
        "92495b65f061c6ea3f3db63fa2ccb78bf8ce16005363acde21d14a9c3f3e43ac";
    //   hmac.new(key, bytes(range(100, 120)), 'md5').hexdigest()
    const MD5_LEGACY_VECTOR: &str = "91fddb594a23decdb444eeb7ee0848c4";
    //   hmac.new(key, b'{sha384}' + bytes(range(40)), 'sha384').hexdigest()
    const SHA384_VECTOR: &str = "c2bbef0735ae9f17f4dabc56de960408d909a69f119ab9bcaca5621323e68c1e9976e487edc977939ad8c9a59c328bf0";

    #[test]
    fn a_handshake_stays_small_enough_to_move_by_value() {
        // A listener's handshake is moved by value several times on its way
        // to a session thread, and each copy costs that thread stack pages
        // it keeps while its connection lasts: the sealed session inline
        // (1.3 KiB) once cost 12 KiB a connection at 1,000 idle ones.
        assert!(
            std::mem::size_of::<Handshake>() <= 512,
            "{} bytes",
            std::mem::size_of::<Handshake>()
        );
    }

    #[test]
    fn sha256_response_matches_cpython() {
        let message = [SHA256_PREFIX, &counting_nonce()].concat();
        let response = respond(&key(), &message, false).expect("sha256 challenge");
        assert_eq!(&response[..8], SHA256_PREFIX);
        assert_eq!(hex(&response[8..]), SHA256_VECTOR);
        verify_response(&key(), &message, &response, false).expect("own response verifies");
    }

    #[test]
    fn marked_challenge_matches_cpython_and_is_covered_by_the_mac() {
        let message = [SHA256_PREFIX, &counting_nonce(), IRIS_MARK].concat();
        let response = respond(&key(), &message, false).expect("sha256 challenge");
        assert_eq!(hex(&response[8..]), SHA256_MARKED_VECTOR);
        let unmarked = [SHA256_PREFIX, &counting_nonce()].concat();
        assert_eq!(
            verify_response(&key(), &unmarked, &response, false),
            Err(AuthError::WrongDigest)
        );
    }

    #[test]
    fn sha384_challenges_are_answered_like_cpython() {
        let message = [b"{sha384}".as_slice(), &counting_nonce()].concat();
        let response = respond(&key(), &message, false).expect("sha384 challenge");
        assert_eq!(&response[..8], b"{sha384}");
        assert_eq!(hex(&response[8..]), SHA384_VECTOR);
    }

    #[test]
    fn legacy_md5_matches_cpython_only_when_enabled() {
        let message: Vec<u8> = (100..120).collect();
        assert_eq!(
            respond(&key(), &message, false),
            Err(AuthError::LegacyMd5Disabled)
        );
        let response = respond(&key(), &message, true).expect("legacy enabled");
        assert_eq!(hex(&response), MD5_LEGACY_VECTOR);
        verify_response(&key(), &message, &response, true).expect("legacy verifies");
        assert_eq!(
            verify_response(&key(), &message, &response, false),
            Err(AuthError::LegacyMd5Disabled)
        );
    }

    #[test]
    fn the_same_bytes_reuse_the_key_made_last_and_other_bytes_replace_it() {
        let last = LastKey::new();
        let first = last.get_or_make(b"one key").expect("key");
        first.sealing_salt();
        let again = last.get_or_make(b"one key").expect("key");
        assert!(Arc::ptr_eq(&first.sealing_salt, &again.sealing_salt));
        assert!(
            again.sealing_salt.get().is_some(),
            "the salt is computed once"
        );

        let other = last.get_or_make(b"one key!").expect("key");
        assert_eq!(&other.raw[..], b"one key!");
        assert!(!Arc::ptr_eq(&first.sealing_salt, &other.sealing_salt));
        let back = last.get_or_make(b"one key").expect("key");
        assert!(!Arc::ptr_eq(&first.sealing_salt, &back.sealing_salt));
        assert_eq!(&back.raw[..], b"one key");
        assert!(matches!(last.get_or_make(b""), Err(Error::EmptyAuthkey)));
    }

    #[test]
    fn a_wrong_key_is_detected() {
        let message = [SHA256_PREFIX, &counting_nonce()].concat();
        let other = AuthKey::new(b"another key").expect("non-empty");
        let response = respond(&other, &message, false).expect("sha256");
        assert_eq!(
            verify_response(&key(), &message, &response, false),
            Err(AuthError::WrongDigest)
        );
        let mut truncated = response.clone();
        truncated.pop();
        assert_eq!(
            verify_response(&key(), &message, &truncated, false),
            Err(AuthError::WrongDigest)
        );
        // The right answer, cut short, is no answer: no prefix is accepted.
        let right = respond(&key(), &message, false).expect("sha256");
        assert_eq!(verify_response(&key(), &message, &right, false), Ok(()));
        for cut in [1, 16, 31] {
            assert_eq!(
                verify_response(&key(), &message, &right[..right.len() - cut], false),
                Err(AuthError::WrongDigest),
                "cut by {cut}"
            );
        }
    }

    #[test]
    fn garbage_responses_are_protocol_errors() {
        let message = [SHA256_PREFIX, &counting_nonce()].concat();
        for garbage in [
            &b""[..],
            b"hello there, listener",
            b"{sha256",
            b"{whirlpool}abc",
        ] {
            let err = verify_response(&key(), &message, garbage, true).expect_err("garbage");
            assert!(
                matches!(
                    err,
                    AuthError::Protocol(_) | AuthError::UnsupportedDigest(_)
                ),
                "{garbage:?}: {err}"
            );
        }
    }

    #[test]
    fn empty_keys_are_refused() {
        assert!(matches!(AuthKey::new(b""), Err(Error::EmptyAuthkey)));
        assert_eq!(format!("{:?}", key()), "AuthKey(<redacted>)");
    }

    #[test]
    fn challenges_are_parsed_and_checked() {
        assert!(parse_challenge(b"#WELCOME#").is_err());
        assert!(parse_challenge(b"#CHALLENGE#short").is_err());
        let legacy = [CHALLENGE_PREFIX, &[1u8; 20]].concat();
        let parsed = parse_challenge(&legacy).expect("legacy challenge");
        assert!(!parsed.pipelining());
        let marked = [CHALLENGE_PREFIX, SHA256_PREFIX, &[0u8; 40], IRIS_MARK].concat();
        assert!(parse_challenge(&marked).expect("marked").pipelining());
    }

    /// What each side sent, and how each side ended.
    struct PairRun {
        to_client: Vec<Vec<u8>>,
        to_listener: Vec<Vec<u8>>,
        listener_result: Result<(), AuthError>,
        client_result: Result<(), AuthError>,
    }

    fn run_pair(listener_key: &[u8], client_key: &[u8]) -> PairRun {
        let mut listener =
            Handshake::listener(&AuthKey::new(listener_key).expect("key"), [1; 40], false);
        let mut client = Handshake::client(&AuthKey::new(client_key).expect("key"), [2; 40], false);
        let (mut to_client, mut to_listener) = (Vec::new(), Vec::new());
        let (mut listener_result, mut client_result) = (Ok(()), Ok(()));
        // Each loop iteration is one flight in each direction.
        for _ in 0..4 {
            let flight = frames(&listener.take_outgoing());
            for frame in &flight {
                if client_result.is_ok() {
                    client_result = client.receive(frame);
                }
            }
            to_client.extend(flight);
            let flight = frames(&client.take_outgoing());
            for frame in &flight {
                if listener_result.is_ok() {
                    listener_result = listener.receive(frame);
                }
            }
            to_listener.extend(flight);
        }
        if listener_result.is_ok() {
            assert!(listener.is_complete());
        }
        if client_result.is_ok() {
            assert!(client.is_complete());
        }
        PairRun {
            to_client,
            to_listener,
            listener_result,
            client_result,
        }
    }

    #[test]
    fn iris_pair_pipelines_and_completes() {
        let PairRun {
            to_client,
            to_listener,
            listener_result,
            client_result,
        } = run_pair(b"k", b"k");
        listener_result.expect("listener authenticated");
        client_result.expect("client authenticated");
        // Flights: challenge; response + challenge; welcome + response; welcome.
        assert!(to_client[0].starts_with(CHALLENGE_PREFIX) && to_client[0].ends_with(IRIS_MARK));
        assert!(to_listener[0].starts_with(SHA256_PREFIX));
        assert!(to_listener[1].starts_with(CHALLENGE_PREFIX));
        assert!(!to_listener[1].ends_with(IRIS_MARK));
        assert_eq!(to_client[1], WELCOME);
        assert!(to_client[2].starts_with(SHA256_PREFIX));
        assert_eq!(to_listener[2], WELCOME);
    }

    #[test]
    fn only_a_marked_challenge_makes_the_peer_an_iris_listener() {
        let key = key();
        let mut listener = Handshake::listener(&key, [1; 40], false);
        let mut client = Handshake::client(&key, [2; 40], false);
        assert!(!client.peer_is_iris_listener(), "no challenge yet");
        for frame in frames(&listener.take_outgoing()) {
            client.receive(&frame).expect("marked challenge");
        }
        assert!(client.peer_is_iris_listener());
        for frame in frames(&client.take_outgoing()) {
            listener.receive(&frame).expect("response and challenge");
        }
        assert!(!listener.peer_is_iris_listener(), "clients do not mark");

        // CPython 3.12+ and CPython 3.11 (legacy MD5) challenges.
        for cpython in [
            [CHALLENGE_PREFIX, SHA256_PREFIX, &counting_nonce()].concat(),
            [CHALLENGE_PREFIX, &counting_nonce()[..20]].concat(),
        ] {
            let mut client = Handshake::client(&key, [2; 40], true);
            client.receive(&cpython).expect("CPython challenge");
            assert!(!client.peer_is_iris_listener(), "{cpython:?}");
        }
    }

    #[test]
    fn iris_pair_with_different_keys_fails_on_both_sides() {
        let PairRun {
            to_client,
            listener_result,
            client_result,
            ..
        } = run_pair(b"one", b"two");
        assert_eq!(listener_result, Err(AuthError::WrongDigest));
        assert_eq!(client_result, Err(AuthError::Rejected));
        assert_eq!(to_client.last().map(Vec::as_slice), Some(FAILURE));
    }

    #[test]
    fn client_waits_for_welcome_when_the_listener_is_not_iris() {
        // A CPython-style challenge: no mark.
        let mut client = Handshake::client(&key(), [2; 40], false);
        let challenge = [CHALLENGE_PREFIX, SHA256_PREFIX, &counting_nonce()].concat();
        client.receive(&challenge).expect("challenge");
        let flight = frames(&client.take_outgoing());
        assert_eq!(flight.len(), 1, "only the response before #WELCOME#");
        assert_eq!(hex(&flight[0][8..]), SHA256_VECTOR);
        client.receive(WELCOME).expect("welcome");
        let flight = frames(&client.take_outgoing());
        assert!(flight[0].starts_with(CHALLENGE_PREFIX));
    }

    /// A client never answers a challenge with a client's sealing mark:
    /// only clients issue those, so it can only be another client's,
    /// relayed by a fake listener that wants it answered.
    #[test]
    fn a_client_refuses_a_challenge_marked_by_a_client() {
        use crate::seal::{KeyShare, Sealing};
        let share = KeyShare::from_private_bytes([4; 32]);
        let mut client =
            Handshake::client(&key(), [3; 40], false).with_sealing(share.clone(), Sealing::Prefer);
        let relayed = [
            CHALLENGE_PREFIX,
            SHA256_PREFIX,
            &[9u8; 40],
            CLIENT_SEAL_MARK,
            share.public(),
        ]
        .concat();
        let refused = client.receive(&relayed).expect_err("not answered");
        assert!(matches!(refused, AuthError::Protocol(_)), "{refused}");
        assert!(!client.has_outgoing(), "no answer leaves");
    }

    /// A fast-open listener does no X25519 work for a client that has not
    /// answered its challenge yet.
    #[test]
    fn a_fast_open_listener_agrees_only_once_the_client_has_answered() {
        use crate::seal::{KeyShare, Sealing};
        let mut listener = Handshake::listener(&key(), [1; 40], false)
            .with_sealing(KeyShare::from_private_bytes([5; 32]), Sealing::Prefer);
        let _ = listener.take_outgoing();
        let client_share = KeyShare::from_private_bytes([6; 32]);
        let challenge = [
            CHALLENGE_PREFIX,
            SHA256_PREFIX,
            &[2u8; 40],
            CLIENT_SEAL_MARK,
            client_share.public(),
        ]
        .concat();
        listener
            .receive(&challenge)
            .expect("a fast-open challenge is answered");
        listener.prepare().expect("prepare");
        assert!(
            listener
                .seal
                .as_ref()
                .is_some_and(|seal| seal.shared.is_none()),
            "no agreement before the client's answer"
        );
    }

    #[test]
    fn frames_after_completion_or_failure_are_errors() {
        let mut client = Handshake::client(&key(), [2; 40], false);
        assert!(client.receive(b"#CHALLENGE#x").is_err());
        assert!(matches!(
            client.receive(WELCOME),
            Err(AuthError::Protocol(_))
        ));
    }
}
