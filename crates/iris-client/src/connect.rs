//! Reaching the listener: checking the address, loading the key and
//! connecting, shared by `send` and `ping`.
//!
//! Checking is split from connecting so that `send --check-first` can
//! validate its whole input in between: nothing is sent, and no connection
//! is even opened, unless the address, the key and every flower are good.

use anyhow::Context;
use iris_app::ConnectionArgs;
use iris_wire::{Address, Client, Connection};

use crate::exit::{self, Failure};

/// A listener address and key that have been checked, ready to connect.
pub(crate) struct Target<'a> {
    args: &'a ConnectionArgs,
    key: Vec<u8>,
}

impl<'a> Target<'a> {
    /// Checks the address (a usage error if it cannot be parsed) and loads
    /// the authkey (exit code 1 if there is none).
    pub(crate) fn new(args: &'a ConnectionArgs) -> Result<Self, Failure> {
        if let Err(error) = args.address.parse::<Address>() {
            return Err(Failure::new(exit::USAGE, error));
        }
        let key = args.authkey()?;
        Ok(Target { args, key })
    }

    /// The address as the user gave it, for messages.
    pub(crate) fn address(&self) -> &str {
        &self.args.address
    }

    /// Connects and authenticates, mapping failures to exit codes 3 and 4.
    pub(crate) fn connect(&self) -> Result<Connection, Failure> {
        let address = self.address();
        let connection = Client::connect_with(address, &self.key, &self.args.wire_options())
            .map_err(|error| {
                let code = exit::connect_code(&error);
                Failure::new(code, describe_connect_failure(address, error, code))
            })?;
        if connection.is_sealed() {
            tracing::debug!(address, "connected and authenticated, sealed");
        } else {
            tracing::debug!(
                address,
                iris = connection.peer_is_iris_listener(),
                "connected and authenticated, unsealed: the session crosses the network readable and alterable"
            );
        }
        Ok(connection)
    }
}

/// Says what went wrong while connecting, and what to do about it: not
/// reaching the listener (exit 3) and reaching it but failing to
/// authenticate (exit 4) are different problems with different fixes.
fn describe_connect_failure(address: &str, error: iris_wire::Error, code: u8) -> anyhow::Error {
    use iris_wire::{AuthError, Error as E};
    let hint = match (&error, code) {
        (E::Timeout { .. } | E::HandshakeTimeout { .. }, _) => format!(
            "is {address} an iris or Python listener? If it is only slow, raise --handshake-timeout"
        ),
        (_, exit::CANNOT_CONNECT) => {
            format!("is a listener running at {address}? (--address or IRIS_ADDRESS)")
        }
        (E::Authentication(AuthError::Rejected | AuthError::WrongDigest), _) => {
            "use the listener's key (IRIS_AUTHKEY or --authkey-file)".to_owned()
        }
        // The library's messages name no flag (legacy MD5, say); the hint does.
        _ => iris_app::hint(&error).unwrap_or_default().to_owned(),
    };
    let what = match code {
        exit::AUTH_FAILED => format!("reached {address}, but could not authenticate"),
        exit::LISTENER_BUSY => format!("reached {address}, but it is serving all it can"),
        _ => format!("cannot connect to {address}"),
    };
    let error = match error {
        // Its message already reads "cannot connect to ADDR: ...".
        error @ E::Connect { .. } => anyhow::Error::new(error),
        other => anyhow::Error::new(other).context(what),
    };
    if hint.is_empty() {
        error
    } else {
        anyhow::anyhow!("{error:#}; {hint}")
    }
}

/// Writes one line of the program's output to stdout.
///
/// `println!` would panic when stdout is a closed pipe (`| head`); this
/// turns that into an ordinary error instead.
pub(crate) fn print_line(line: std::fmt::Arguments<'_>) -> anyhow::Result<()> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_fmt(line)
        .and_then(|()| stdout.write_all(b"\n"))
        .context("cannot write to standard output")
}

#[cfg(test)]
mod tests {
    use std::io;

    use iris_wire::{AuthError, Error};

    use super::*;

    fn message(error: Error) -> String {
        let code = exit::connect_code(&error);
        format!(
            "{:#}",
            describe_connect_failure("localhost:6000", error, code)
        )
    }

    #[test]
    fn not_reaching_and_not_authenticating_are_worded_apart() {
        let refused = message(Error::Connect {
            address: "localhost:6000".into(),
            source: io::Error::new(io::ErrorKind::ConnectionRefused, "Connection refused"),
        });
        assert_eq!(
            refused,
            "cannot connect to localhost:6000: Connection refused; \
             is a listener running at localhost:6000? (--address or IRIS_ADDRESS)"
        );
        let wrong_key = message(Error::Authentication(AuthError::Rejected));
        assert!(
            wrong_key.starts_with("reached localhost:6000, but could not authenticate: "),
            "{wrong_key}"
        );
        assert!(!wrong_key.contains("cannot connect"), "{wrong_key}");
        assert!(
            wrong_key.ends_with("(IRIS_AUTHKEY or --authkey-file)"),
            "{wrong_key}"
        );
        let legacy = message(Error::Authentication(AuthError::LegacyMd5Disabled));
        assert!(legacy.contains("--allow-legacy-md5"), "{legacy}");
        let slow = message(Error::Timeout {
            waiting_for: "the peer's handshake",
        });
        assert!(
            slow.starts_with("cannot connect to localhost:6000: timed out"),
            "{slow}"
        );
        assert!(slow.ends_with("raise --handshake-timeout"), "{slow}");
    }
}
