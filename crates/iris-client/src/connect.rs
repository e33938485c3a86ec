//! Reaching the listener: checking the address, loading the key and
//! connecting, shared by `send` and `ping`.
//!
//! Checking is split from connecting so that `send` can validate its whole
//! input in between: nothing is sent, and no connection is even opened,
//! unless the address, the key and every flower are good.

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
                let error = match error {
                    // Its message already reads "cannot connect to ADDR: ...".
                    iris_wire::Error::Connect { .. } => anyhow::Error::new(error),
                    // The library's message names no flag; the hint does.
                    other if iris_app::hint(&other).is_some() => {
                        anyhow::Error::msg(iris_app::with_hint(&other))
                            .context(format!("cannot connect to {address}"))
                    }
                    other => {
                        anyhow::Error::new(other).context(format!("cannot connect to {address}"))
                    }
                };
                Failure::new(code, error)
            })?;
        tracing::debug!(address, "connected and authenticated");
        Ok(connection)
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
