//! Exit codes, and the error type that carries one.
//!
//! Scripts branch on the exit code, so every code has one meaning and the
//! mapping from [`iris_wire::Error`] is done by matching the enum, never by
//! looking at message text. The table is repeated in `--help`
//! ([`HELP`]), which a test keeps in sync with the constants.

/// Everything worked (for `send`: every flower was acknowledged).
pub(crate) const SUCCESS: u8 = 0;
/// Any other error: bad input file, missing key, I/O, a listener that
/// answers `ping` wrongly.
pub(crate) const OTHER: u8 = 1;
/// Usage error: what clap reports itself (unknown flag, bad `--flower`
/// value, ...), and an `--address` that cannot be parsed.
pub(crate) const USAGE: u8 = 2;
/// Cannot connect: refused, unreachable, name resolution, or no handshake
/// within `--handshake-timeout`.
pub(crate) const CANNOT_CONNECT: u8 = 3;
/// The handshake failed: wrong key, legacy MD5 needed, or the peer does
/// not speak the protocol.
pub(crate) const AUTH_FAILED: u8 = 4;
/// `send` only: the listener did not acknowledge every flower sent.
pub(crate) const NOT_ACKNOWLEDGED: u8 = 5;
/// `send` only: a bad row (or header) in the input. Streaming, the send
/// stopped there and the flowers before it were sent and acknowledged;
/// with `--check-first`, nothing was sent.
pub(crate) const BAD_INPUT: u8 = 6;
/// `ping` only: the listener authenticated (it is up, the key is right)
/// but is not iris, so it does not answer pings: a Python listener.
pub(crate) const NOT_IRIS: u8 = 7;
/// The listener is at its connection limit: it closed the connection
/// before its challenge, which an iris listener does only for that.
pub(crate) const LISTENER_BUSY: u8 = 8;
/// `--require-sealed` and the listener cannot seal (a Python listener, or
/// iris with sealing off).
pub(crate) const CANNOT_SEAL: u8 = 9;
/// `send` stopped by SIGINT (Ctrl-C), the shell's 128 + 2.
pub(crate) const STOPPED_BY_SIGINT: u8 = 130;
/// `send` stopped by SIGTERM, the shell's 128 + 15.
pub(crate) const STOPPED_BY_SIGTERM: u8 = 143;

/// The exit code of a `send` stopped by `signal` (SIGINT or SIGTERM, the
/// only ones caught).
pub(crate) fn stopped_by(signal: i32) -> u8 {
    if signal == signal_hook::consts::SIGTERM {
        STOPPED_BY_SIGTERM
    } else {
        STOPPED_BY_SIGINT
    }
}

/// The exit code table for `--help`.
pub(crate) const HELP: &str = "\
Exit codes:
  0  success (send: every flower sent was acknowledged, or, toward a Python
     listener, sent: Python listeners do not acknowledge)
  1  other error: input file missing or unreadable, no authkey, I/O, a
     listener that answers ping wrongly
  2  usage error: bad flags or flag values, including an unparsable --address
  3  cannot connect: refused, unreachable, unknown host, or no handshake in
     time; is a listener running at --address?
  4  authentication failed: the listener answered but the handshake failed:
     different authkey, legacy MD5 needed (--allow-legacy-md5), or not a
     multiprocessing.connection listener
  5  data not acknowledged: the listener acknowledged fewer flowers than were
     sent, or the connection broke before it acknowledged
  6  bad input: the send stopped at a bad row (its line is named); the flowers
     before it were sent and acknowledged (with --check-first: none sent)
  7  ping: the listener is up and the key is right, but it is not iris (a
     Python listener), and Python listeners do not answer pings
  8  the listener is busy: it closed the connection before its challenge, as
     an iris listener at its --max-connections does; try again later
  9  --require-sealed, and the listener cannot seal: a Python listener, or
     iris with sealing off
130  send stopped by SIGINT (Ctrl-C), 143 by SIGTERM: the flowers read until
     then were sent and acknowledged; a second signal exits at once";

/// An error on its way to `main`, with the exit code it should end in.
#[derive(Debug)]
pub(crate) struct Failure {
    /// One of the constants of this module.
    pub(crate) code: u8,
    /// What to tell the user; printed with `{:#}`, the whole chain.
    pub(crate) error: anyhow::Error,
}

impl Failure {
    /// An error that ends in `code`.
    pub(crate) fn new(code: u8, error: impl Into<anyhow::Error>) -> Self {
        Failure {
            code,
            error: error.into(),
        }
    }
}

/// Plain errors (input, key, I/O) are exit code 1, so `?` on an
/// `anyhow::Result` does the right thing.
impl From<anyhow::Error> for Failure {
    fn from(error: anyhow::Error) -> Self {
        Failure::new(OTHER, error)
    }
}

/// The exit code for a failed [`iris_wire::Client::connect_with`].
///
/// After the connection is up the same variants mean something else (a
/// broken connection while sending is "not acknowledged"), so this mapping is
/// only for the connect phase.
pub(crate) fn connect_code(error: &iris_wire::Error) -> u8 {
    use iris_wire::{AuthError, Error as E};
    match error {
        E::InvalidAddress { .. } => USAGE,
        // Io: a reset or similar before the handshake completed;
        // HandshakeTimeout: the socket connected (a busy listener's backlog
        // accepts it) but the handshake did not finish by its deadline.
        E::Connect { .. } | E::Timeout { .. } | E::HandshakeTimeout { .. } | E::Io(_) => {
            CANNOT_CONNECT
        }
        // The library reports a peer that closes or talks nonsense during the
        // handshake as Authentication, so those land here too.
        E::Authentication(AuthError::ClosedBeforeChallenge) => LISTENER_BUSY,
        E::Authentication(AuthError::PeerCannotSeal) => CANNOT_SEAL,
        E::Authentication(_) | E::Frame(_) => AUTH_FAILED,
        _ => OTHER,
    }
}

#[cfg(test)]
mod tests {
    use std::io;

    use iris_wire::{AuthError, Error};

    use super::*;

    #[test]
    fn connect_errors_map_to_their_codes() {
        let refused = Error::Connect {
            address: "127.0.0.1:1".into(),
            source: io::Error::from(io::ErrorKind::ConnectionRefused),
        };
        let cases = [
            (refused, CANNOT_CONNECT),
            (
                Error::HandshakeTimeout {
                    limit: std::time::Duration::from_secs(5),
                },
                CANNOT_CONNECT,
            ),
            (
                Error::Io(io::Error::from(io::ErrorKind::ConnectionReset)),
                CANNOT_CONNECT,
            ),
            (Error::Authentication(AuthError::Rejected), AUTH_FAILED),
            (Error::Authentication(AuthError::WrongDigest), AUTH_FAILED),
            (
                Error::Authentication(AuthError::LegacyMd5Disabled),
                AUTH_FAILED,
            ),
            (Error::Authentication(AuthError::PeerClosed), AUTH_FAILED),
            (
                Error::Authentication(AuthError::ClosedBeforeChallenge),
                LISTENER_BUSY,
            ),
            (
                Error::Authentication(AuthError::PeerCannotSeal),
                CANNOT_SEAL,
            ),
            (
                Error::Frame(iris_wire::frame::FrameError::BadLength { header: -7 }),
                AUTH_FAILED,
            ),
            (
                Error::InvalidAddress {
                    address: "nowhere".into(),
                    reason: "expected HOST:PORT",
                },
                USAGE,
            ),
            (Error::EmptyAuthkey, OTHER),
            (Error::Closed, OTHER),
        ];
        for (error, code) in cases {
            assert_eq!(connect_code(&error), code, "{error:?}");
        }
    }

    #[test]
    fn codes_are_distinct_and_documented() {
        let codes = [
            SUCCESS,
            OTHER,
            USAGE,
            CANNOT_CONNECT,
            AUTH_FAILED,
            NOT_ACKNOWLEDGED,
            BAD_INPUT,
            NOT_IRIS,
        ];
        for (index, code) in codes.iter().enumerate() {
            assert!(!codes[..index].contains(code), "{code} twice");
            assert!(HELP.contains(&format!("\n  {code}  ")), "{code} missing");
        }
        assert!(HELP.contains(&format!("\n{STOPPED_BY_SIGINT}  ")));
        assert!(HELP.contains(&format!(", {STOPPED_BY_SIGTERM} by SIGTERM")));
        assert_eq!(stopped_by(signal_hook::consts::SIGINT), 130);
        assert_eq!(stopped_by(signal_hook::consts::SIGTERM), 143);
    }

    #[test]
    fn wire_errors_print_their_cause_once() {
        let error = Error::Connect {
            address: "127.0.0.1:1".into(),
            source: io::Error::new(io::ErrorKind::ConnectionRefused, "Connection refused"),
        };
        let chain = format!("{:#}", anyhow::Error::new(error));
        assert_eq!(chain, "cannot connect to 127.0.0.1:1: Connection refused");

        let error = Error::Authentication(AuthError::Rejected);
        let chain = format!("{:#}", anyhow::Error::new(error));
        assert_eq!(chain.matches("different authkey").count(), 1, "{chain}");
    }

    #[test]
    fn plain_errors_are_exit_code_one() {
        let failure = Failure::from(anyhow::anyhow!("no such file"));
        assert_eq!(failure.code, OTHER);
    }
}
