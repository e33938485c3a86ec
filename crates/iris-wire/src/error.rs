//! The error type of the library.

use std::fmt;
use std::io;
use std::time::Duration;

use crate::codec::CodecError;
use crate::frame::FrameError;
use crate::seal::RecordError;

/// Everything that can go wrong while connecting, authenticating, sending or
/// receiving.
///
/// Messages are written for the person running the program: they say what
/// happened and, where there is something to do, what to do about it. Each
/// includes its cause, so printing the error alone tells the whole story.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The authkey was empty. An empty key would mean "no authentication",
    /// which this library never offers.
    EmptyAuthkey,
    /// The address could not be parsed.
    InvalidAddress {
        /// The address as given.
        address: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Binding the listening socket failed.
    Bind {
        /// The address as given.
        address: String,
        /// The underlying error.
        source: io::Error,
    },
    /// No address the name resolved to accepted a connection.
    Connect {
        /// The address as given.
        address: String,
        /// The error from the last address tried.
        source: io::Error,
    },
    /// The mutual authentication failed; the connection is closed.
    Authentication(AuthError),
    /// The peer's bytes are not valid frames (a length over the limit, a
    /// bad length, a stream that ended inside a frame); the connection
    /// cannot be used further.
    Frame(FrameError),
    /// The peer closed the connection cleanly, between two frames.
    Closed,
    /// The peer did not send anything within the configured time.
    Timeout {
        /// What we were waiting for.
        waiting_for: &'static str,
    },
    /// The handshake did not complete within the handshake timeout. The
    /// limit is a deadline for the whole handshake, not for each read: a
    /// peer that trickles bytes is cut off at it too.
    HandshakeTimeout {
        /// The configured handshake timeout.
        limit: Duration,
    },
    /// A sealed session's record could not be sealed or opened (one that
    /// was tampered with, say); the connection cannot be used further.
    Sealed(RecordError),
    /// A received payload could not be decoded into the requested type.
    Decode(CodecError),
    /// A value could not be encoded.
    Encode(CodecError),
    /// Any other I/O error on the connection.
    Io(io::Error),
}

/// Why the mutual authentication failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthError {
    /// The peer's answer to our challenge is wrong: it holds a different
    /// authkey.
    WrongDigest,
    /// The peer rejected our answer to its challenge (`#FAILURE#`): it holds
    /// a different authkey.
    Rejected,
    /// The peer speaks the legacy HMAC-MD5 handshake (CPython 3.11 and older)
    /// and legacy MD5 is not enabled ([`Options::with_legacy_md5`](crate::Options::with_legacy_md5)).
    /// The message names no option: programs add how their users enable it.
    LegacyMd5Disabled,
    /// The peer asked for a digest this library does not implement.
    UnsupportedDigest(String),
    /// The peer closed the connection during the handshake.
    PeerClosed,
    /// The listener closed the connection before sending its challenge:
    /// what an iris listener does with a connection over its limit, so
    /// that a client can tell "busy" from "wrong key".
    ClosedBeforeChallenge,
    /// The peer posed, as its challenge, a challenge that one of this
    /// process's own clients issued in a handshake still under way: a fake
    /// listener trying to get one client's answer to use on another
    /// connection (a reflection attack). It is not answered.
    ReflectedChallenge,
    /// Sealing is required here, and the peer cannot seal: a CPython peer,
    /// or an iris peer with sealing off.
    PeerCannotSeal,
    /// The client's first sealed record did not open to its `#WELCOME#`:
    /// the two sides derived different keys, because a man in the middle
    /// altered the handshake (or the client does not hold the authkey).
    KeyConfirmation,
    /// The peer sent something that is not part of the handshake.
    Protocol(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::EmptyAuthkey => f.write_str(
                "the authkey is empty: an empty key would disable authentication, so set a non-empty key",
            ),
            Error::InvalidAddress { address, reason } => {
                write!(f, "invalid address {address:?}: {reason}")
            }
            Error::Bind { address, source } => write!(f, "cannot listen on {address}: {source}"),
            Error::Connect { address, source } => {
                write!(f, "cannot connect to {address}: {source}")
            }
            Error::Authentication(reason) => write!(f, "authentication failed: {reason}"),
            Error::Frame(e) => e.fmt(f),
            Error::Closed => f.write_str("the peer closed the connection"),
            Error::Timeout { waiting_for } => {
                write!(f, "timed out waiting for {waiting_for}")
            }
            Error::HandshakeTimeout { limit } => write!(
                f,
                "the handshake did not complete within {:.1} s: the peer is too slow, does not speak this protocol, or is a listener too busy to answer; try again, or raise the handshake timeout",
                limit.as_secs_f64()
            ),
            Error::Sealed(source) => source.fmt(f),
            Error::Decode(source) => write!(f, "cannot decode the received message: {source}"),
            Error::Encode(source) => write!(f, "cannot encode the message: {source}"),
            Error::Io(source) => write!(f, "connection error: {source}"),
        }
    }
}

/// Each message already includes its cause (the I/O error, the handshake
/// failure), so `source()` returns nothing and a chain printer such as
/// anyhow's `{:#}` shows every cause once; the variants' fields carry the
/// underlying errors for callers that want them.
impl std::error::Error for Error {}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthError::WrongDigest => f.write_str(
                "the peer's digest is wrong: it uses a different authkey",
            ),
            AuthError::Rejected => f.write_str(
                "the peer rejected our digest: it uses a different authkey",
            ),
            AuthError::LegacyMd5Disabled => f.write_str(
                "the peer uses the legacy HMAC-MD5 handshake of CPython 3.11 and older, which is not enabled here; enable legacy MD5 to talk to it, or upgrade the peer to CPython 3.12 or newer",
            ),
            AuthError::UnsupportedDigest(name) => write!(
                f,
                "the peer asked for digest {name:?}; supported are sha256 and sha384 (and md5 with legacy MD5 enabled)"
            ),
            AuthError::PeerClosed => f.write_str(
                "the peer closed the connection during the handshake: it may be at its connection limit, use a different authkey, require legacy MD5, or not speak this protocol",
            ),
            AuthError::ClosedBeforeChallenge => f.write_str(
                "the listener closed the connection before sending its challenge: it is at its connection limit (an iris listener says so this way), or not a multiprocessing.connection listener; try again later",
            ),
            AuthError::ReflectedChallenge => f.write_str(
                "the peer sent back a challenge that this process issued itself, which only a listener without the authkey trying a reflection attack does; not answering it. Check that the address is the listener you mean",
            ),
            AuthError::PeerCannotSeal => f.write_str(
                "sealing is required here, and the peer cannot seal: it is a CPython peer, or an iris peer with sealing off; allow unsealed sessions, or use an iris peer that seals",
            ),
            AuthError::KeyConfirmation => f.write_str(
                "the client's first sealed record did not open: the two sides derived different keys, so something between them altered the handshake",
            ),
            AuthError::Protocol(what) => write!(f, "handshake protocol error: {what}"),
        }
    }
}

impl std::error::Error for AuthError {}

impl From<FrameError> for Error {
    fn from(error: FrameError) -> Self {
        Error::Frame(error)
    }
}

impl From<RecordError> for Error {
    fn from(error: RecordError) -> Self {
        match error {
            RecordError::Rejected => Error::Authentication(AuthError::Rejected),
            other => Error::Sealed(other),
        }
    }
}

impl From<AuthError> for Error {
    fn from(reason: AuthError) -> Self {
        Error::Authentication(reason)
    }
}

impl Error {
    /// Maps an I/O error, turning the stream's own timeouts into
    /// [`Error::Timeout`] and unwrapping record errors carried through I/O
    /// results.
    pub(crate) fn from_io(source: io::Error, waiting_for: &'static str) -> Self {
        if let Some(record) = source
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<RecordError>())
        {
            return record.clone().into();
        }
        match source.kind() {
            io::ErrorKind::WouldBlock => Error::Timeout { waiting_for },
            // Ours: a deadline that ran out (an error made from the kind
            // alone), or a socket timeout on Windows. From a Unix socket,
            // ETIMEDOUT is the kernel giving up on an unresponsive peer
            // (keepalive, unacknowledged data): a dead peer, which the
            // caller needs to tell apart from a quiet one.
            io::ErrorKind::TimedOut if cfg!(windows) || source.raw_os_error().is_none() => {
                Error::Timeout { waiting_for }
            }
            _ => Error::Io(source),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quiet_peer_times_out_and_a_dead_one_is_an_io_error() {
        // SO_RCVTIMEO running out (EAGAIN), and a deadline of ours.
        for ours in [
            io::Error::from(io::ErrorKind::WouldBlock),
            io::Error::from(io::ErrorKind::TimedOut),
        ] {
            assert!(matches!(
                Error::from_io(ours, "a message"),
                Error::Timeout {
                    waiting_for: "a message"
                }
            ));
        }
        // The kernel giving up on the peer: keepalive or TCP_USER_TIMEOUT.
        #[cfg(target_os = "linux")]
        {
            const ETIMEDOUT: i32 = 110;
            assert!(matches!(
                Error::from_io(io::Error::from_raw_os_error(ETIMEDOUT), "a message"),
                Error::Io(e) if e.kind() == io::ErrorKind::TimedOut
            ));
        }
    }
}
