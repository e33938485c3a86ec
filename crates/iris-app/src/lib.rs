//! What the `iris-listener` and `iris-client` binaries share: the flags both
//! take, how the authkey is loaded, logging, hints that name their flags,
//! and completions and man pages ([`generate`]). The frames Python programs
//! send are `iris-protocol`'s.
//!
//! ```
//! use clap::Parser;
//! use iris_app::ConnectionArgs;
//!
//! #[derive(Parser)]
//! struct Cli {
//!     #[command(flatten)]
//!     connection: ConnectionArgs,
//! }
//!
//! let cli = Cli::try_parse_from(["prog", "--address", "127.0.0.1:0", "--allow-legacy-md5"])?;
//! assert_eq!(cli.connection.address, "127.0.0.1:0");
//! assert!(cli.connection.wire_options().legacy_md5());
//! # Ok::<(), clap::Error>(())
//! ```

mod authkey;
pub mod generate;
mod logging;

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

pub use authkey::{AUTHKEY_ENV, load_authkey, read_authkey_file};
pub use logging::{Verbosity, init_logging};

/// The default address, the seed program's `('localhost', 6000)`.
pub const DEFAULT_ADDRESS: &str = "localhost:6000";

/// Flags for reaching the other side, shared by the listener and the client.
///
/// They are global, so a program with subcommands accepts them before or
/// after the subcommand.
#[derive(Args, Debug, Clone)]
pub struct ConnectionArgs {
    /// Where to listen or connect: `HOST:PORT`, `[IPV6]:PORT`, or a Unix
    /// socket path (anything containing '/').
    #[arg(
        long,
        env = "IRIS_ADDRESS",
        default_value = DEFAULT_ADDRESS,
        global = true,
        help = "HOST:PORT, [IPV6]:PORT, or a Unix socket path (anything containing '/')"
    )]
    pub address: String,

    /// Read the authkey from this file: its bytes, less one trailing newline.
    /// Without it the key comes from the IRIS_AUTHKEY environment variable.
    /// Keys are never taken as command-line values, which `ps` would show.
    #[arg(long, value_name = "PATH", global = true)]
    pub authkey_file: Option<PathBuf>,

    /// Accept the legacy HMAC-MD5 handshake of CPython 3.11 and older peers.
    #[arg(long, global = true)]
    pub allow_legacy_md5: bool,

    /// Seconds the whole handshake may take, connecting included: a deadline,
    /// not a limit per read, so a peer that trickles bytes is cut off too.
    #[arg(long, value_name = "SECONDS", default_value_t = 5.0, value_parser = parse_seconds, global = true)]
    pub handshake_timeout: f64,

    /// Refuse peers that cannot seal (CPython's, or iris with sealing off).
    /// Without it, sessions with iris peers are sealed and sessions with
    /// CPython peers are not. A client that requires sealing also sends its
    /// challenge at once (fast open: one round trip less).
    #[arg(long, global = true, conflicts_with = "no_sealing")]
    pub require_sealed: bool,

    /// Never seal, not even with iris peers: every session readable and
    /// alterable on the path, as with CPython. For measurements.
    #[arg(long, global = true)]
    pub no_sealing: bool,
}

impl ConnectionArgs {
    /// The wire options these flags ask for.
    pub fn wire_options(&self) -> iris_wire::Options {
        let sealing = if self.require_sealed {
            iris_wire::Sealing::Require
        } else if self.no_sealing {
            iris_wire::Sealing::Off
        } else {
            iris_wire::Sealing::Prefer
        };
        iris_wire::Options::new()
            .with_legacy_md5(self.allow_legacy_md5)
            .with_handshake_timeout(Some(Duration::from_secs_f64(self.handshake_timeout)))
            .with_sealing(sealing)
    }

    /// Loads the authkey these flags point at (see [`load_authkey`]).
    pub fn authkey(&self) -> anyhow::Result<Vec<u8>> {
        load_authkey(self.authkey_file.as_deref())
    }
}

/// What a user of the programs can do about `error`, in terms of their
/// flags (the library's messages name no flag), to append to its message.
///
/// ```
/// use iris_wire::{AuthError, Error};
///
/// let error = Error::Authentication(AuthError::LegacyMd5Disabled);
/// assert_eq!(iris_app::with_hint(&error), format!("{error}: pass --allow-legacy-md5 to enable it"));
/// ```
pub fn hint(error: &iris_wire::Error) -> Option<&'static str> {
    use iris_wire::{AuthError, Error};
    match error {
        Error::Authentication(AuthError::LegacyMd5Disabled) => {
            Some("pass --allow-legacy-md5 to enable it")
        }
        Error::Authentication(AuthError::PeerCannotSeal) => {
            Some("drop --require-sealed to accept unsealed sessions")
        }
        Error::Bind { source, .. } if source.kind() == std::io::ErrorKind::AddrInUse => Some(
            "another program listens there (an iris-listener still running?): stop it, or \
             listen elsewhere: another port, or --address localhost:0 for any free one \
             (--address-file PATH tells which)",
        ),
        _ => None,
    }
}

/// `error`'s message followed by its [`hint`], if it has one.
pub fn with_hint(error: &iris_wire::Error) -> String {
    match hint(error) {
        Some(hint) => format!("{error}: {hint}"),
        None => error.to_string(),
    }
}

/// Parses a positive, finite number of seconds.
pub fn parse_seconds(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(seconds) if seconds.is_finite() && seconds > 0.0 && seconds < 1e9 => Ok(seconds),
        _ => Err(format!(
            "expected a positive number of seconds, got {text:?}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_in_use_says_what_to_do() {
        let error = iris_wire::Error::Bind {
            address: "localhost:6000".into(),
            source: std::io::Error::from(std::io::ErrorKind::AddrInUse),
        };
        let message = with_hint(&error);
        assert!(
            message.starts_with("cannot listen on localhost:6000: "),
            "{message}"
        );
        assert!(message.contains("--address localhost:0"), "{message}");
        assert!(message.contains("stop it"), "{message}");
        let refused = iris_wire::Error::Bind {
            address: "localhost:6000".into(),
            source: std::io::Error::from(std::io::ErrorKind::PermissionDenied),
        };
        assert_eq!(hint(&refused), None);
    }

    #[test]
    fn seconds_must_be_positive_and_finite() {
        assert_eq!(parse_seconds("2.5"), Ok(2.5));
        for bad in ["0", "-1", "nan", "inf", "soon"] {
            assert!(parse_seconds(bad).is_err(), "{bad}");
        }
    }
}
