//! Addresses: TCP `host:port` and Unix-domain socket paths.

use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::str::FromStr;

use crate::Error;

/// Where a listener listens or a client connects, like CPython's `AF_INET`
/// and `AF_UNIX` address families.
///
/// Parsed from text: anything containing `/` is a Unix-domain socket path
/// (`/run/iris.sock`, `./iris.sock`); otherwise `host:port`, with IPv6
/// literals in brackets (`[::1]:6000`). Port 0 asks the system for a free
/// port.
///
/// ```
/// use iris_wire::Address;
///
/// let tcp: Address = "localhost:6000".parse()?;
/// assert_eq!(tcp, Address::Tcp { host: "localhost".into(), port: 6000 });
/// let v6: Address = "[::1]:0".parse()?;
/// assert_eq!(v6.to_string(), "[::1]:0");
/// let unix: Address = "/tmp/iris.sock".parse()?;
/// assert!(matches!(unix, Address::Unix(_)));
/// # Ok::<(), iris_wire::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Address {
    /// A TCP address: a host name or IP literal, and a port.
    Tcp {
        /// Host name or IP address literal (IPv6 without brackets).
        host: String,
        /// Port number; 0 lets the system choose when binding.
        port: u16,
    },
    /// A Unix-domain socket path.
    Unix(PathBuf),
}

impl Address {
    /// Resolves a TCP address, IPv4 addresses first.
    ///
    /// IPv4 comes first because CPython's `Client(('localhost', 6000))`
    /// connects over IPv4 only: a listener bound to `localhost` must be
    /// reachable there.
    pub(crate) fn resolve(&self) -> std::io::Result<Vec<SocketAddr>> {
        let Address::Tcp { host, port } = self else {
            return Ok(Vec::new());
        };
        let mut addrs: Vec<SocketAddr> = (host.as_str(), *port).to_socket_addrs()?.collect();
        addrs.sort_by_key(|addr| addr.is_ipv6());
        addrs.dedup();
        Ok(addrs)
    }
}

impl FromStr for Address {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self, Error> {
        let invalid = |reason| Error::InvalidAddress {
            address: text.to_owned(),
            reason,
        };
        if text.contains('/') {
            return Ok(Address::Unix(PathBuf::from(text)));
        }
        let (host, port) = if let Some(bracketed) = text.strip_prefix('[') {
            let (host, rest) = bracketed
                .split_once(']')
                .ok_or_else(|| invalid("an IPv6 address needs a closing bracket"))?;
            let port = rest
                .strip_prefix(':')
                .ok_or_else(|| invalid("expected :PORT after the bracketed IPv6 address"))?;
            (host, port)
        } else {
            let (host, port) = text.rsplit_once(':').ok_or_else(|| {
                invalid("expected HOST:PORT, [IPV6]:PORT, or a socket path containing '/'")
            })?;
            if host.contains(':') {
                return Err(invalid("put an IPv6 address in brackets: [::1]:6000"));
            }
            (host, port)
        };
        if host.is_empty() {
            return Err(invalid("the host is empty"));
        }
        let port = port
            .parse()
            .map_err(|_| invalid("the port must be a number from 0 to 65535"))?;
        Ok(Address::Tcp {
            host: host.to_owned(),
            port,
        })
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Tcp { host, port } if host.contains(':') => write!(f, "[{host}]:{port}"),
            Address::Tcp { host, port } => write!(f, "{host}:{port}"),
            Address::Unix(path) => write!(f, "{}", path.display()),
        }
    }
}

/// What the functions that take an address accept: text as [`Address`]
/// parses it (`&str`, `String`), an [`Address`], or a [`SocketAddr`].
pub trait ToAddress {
    /// The address, or why the text is not one.
    fn to_address(&self) -> Result<Address, Error>;
}

impl ToAddress for str {
    fn to_address(&self) -> Result<Address, Error> {
        self.parse()
    }
}

impl ToAddress for String {
    fn to_address(&self) -> Result<Address, Error> {
        self.parse()
    }
}

impl ToAddress for Address {
    fn to_address(&self) -> Result<Address, Error> {
        Ok(self.clone())
    }
}

impl ToAddress for SocketAddr {
    fn to_address(&self) -> Result<Address, Error> {
        Ok(Address::from(*self))
    }
}

impl<T: ToAddress + ?Sized> ToAddress for &T {
    fn to_address(&self) -> Result<Address, Error> {
        (**self).to_address()
    }
}

impl From<SocketAddr> for Address {
    fn from(addr: SocketAddr) -> Self {
        Address::Tcp {
            host: addr.ip().to_string(),
            port: addr.port(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_forms_users_write() {
        let cases = [
            ("localhost:6000", "localhost:6000"),
            ("127.0.0.1:0", "127.0.0.1:0"),
            ("[::1]:6000", "[::1]:6000"),
            ("./iris.sock", "./iris.sock"),
            ("/run/iris/iris.sock", "/run/iris/iris.sock"),
        ];
        for (text, shown) in cases {
            let address: Address = text.parse().expect(text);
            assert_eq!(address.to_string(), shown);
        }
    }

    #[test]
    fn rejects_malformed_addresses_with_a_reason() {
        for text in [
            "localhost",
            ":6000",
            "host:99999",
            "host:port",
            "::1:6000",
            "[::1",
            "[::1]6000",
            "",
        ] {
            let err = text.parse::<Address>().expect_err(text);
            assert!(matches!(err, Error::InvalidAddress { .. }), "{text}: {err}");
        }
    }

    #[test]
    fn localhost_resolves_ipv4_first() {
        let address: Address = "localhost:6000".parse().expect("valid");
        let resolved = address.resolve().expect("localhost resolves");
        assert!(
            resolved.first().is_some_and(SocketAddr::is_ipv4),
            "{resolved:?}"
        );
    }
}
