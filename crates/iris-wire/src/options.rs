//! Connection options shared by listeners and clients.

use std::time::Duration;

use crate::seal::Sealing;

/// Default limit on a frame received after authentication: 64 MiB.
pub const DEFAULT_MAX_FRAME: u64 = 64 << 20;

/// Default time a peer gets to complete the handshake.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// Options for [`Listener::bind_with`](crate::Listener::bind_with) and
/// [`Client::connect_with`](crate::Client::connect_with).
///
/// The defaults are the secure ones: SHA-256 only, a handshake timeout so a
/// silent peer cannot hold a connection slot, and a 64 MiB frame limit.
///
/// ```
/// use std::time::Duration;
/// use iris_wire::Options;
///
/// let options = Options::new()
///     .with_legacy_md5(true)
///     .with_max_frame(128 << 20)
///     .with_read_timeout(Some(Duration::from_secs(30)));
/// assert_eq!(options.max_frame(), 128 << 20);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    legacy_md5: bool,
    handshake_timeout: Option<Duration>,
    read_timeout: Option<Duration>,
    write_timeout: Option<Duration>,
    max_frame: u64,
    keepalive: Option<Duration>,
    sealing: Sealing,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            legacy_md5: false,
            handshake_timeout: Some(DEFAULT_HANDSHAKE_TIMEOUT),
            read_timeout: None,
            write_timeout: None,
            max_frame: DEFAULT_MAX_FRAME,
            keepalive: None,
            sealing: Sealing::Prefer,
        }
    }
}

impl Options {
    /// The defaults.
    pub fn new() -> Self {
        Options::default()
    }

    /// Accepts the legacy HMAC-MD5 handshake of CPython 3.11 and older.
    /// Off by default: MD5 is broken, enable it only for such peers.
    pub fn with_legacy_md5(mut self, enabled: bool) -> Self {
        self.legacy_md5 = enabled;
        self
    }

    /// The deadline for the whole handshake, connecting included on the
    /// client, counted from the accept on the listener; `None` waits forever.
    /// Each read and write gets only the time left (to within 10 ms), so a
    /// peer that trickles its bytes is cut off at the deadline like a
    /// silent one.
    pub fn with_handshake_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.handshake_timeout = timeout.filter(|t| !t.is_zero());
        self
    }

    /// How long a receive may wait after authentication; `None` (the
    /// default) waits forever.
    pub fn with_read_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.read_timeout = timeout.filter(|t| !t.is_zero());
        self
    }

    /// How long a send may wait for the peer to make room after
    /// authentication; `None` (the default) waits forever. A server sets this
    /// so that a peer that stops reading cannot hold a thread forever.
    pub fn with_write_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.write_timeout = timeout.filter(|t| !t.is_zero());
        self
    }

    /// The largest frame accepted after authentication, in bytes.
    pub fn with_max_frame(mut self, bytes: u64) -> Self {
        self.max_frame = bytes;
        self
    }

    /// Turns TCP keepalive on for the connections a
    /// [`Listener`](crate::Listener) (or, with the `tokio` feature, an
    /// `AsyncListener`) accepts, so that a peer whose host or
    /// link died (no FIN, no RST: the half-open case) is noticed even while
    /// nothing is sent; `None` (the default) leaves the system's setting
    /// (off). Unix-socket connections are not affected.
    ///
    /// After `idle` without a byte from the peer, the kernel sends a probe;
    /// on Linux, probes follow every [`keepalive_interval`] and after
    /// [`KEEPALIVE_PROBES`] unanswered ones the connection fails with a
    /// timed-out I/O error. `TCP_USER_TIMEOUT` is set to the same total
    /// ([`Options::keepalive_limit`]), so data we sent that stays
    /// unacknowledged that long ends the connection too, instead of being
    /// retransmitted for a quarter of an hour.
    pub fn with_keepalive(mut self, idle: Option<Duration>) -> Self {
        self.keepalive = idle.filter(|t| !t.is_zero());
        self
    }

    /// Whether sessions with iris peers are sealed: [`Sealing::Prefer`] by
    /// default (sealed with iris peers, unsealed with CPython's);
    /// [`Sealing::Require`] refuses peers that cannot seal, and makes a
    /// client send its challenge at once (fast open).
    pub fn with_sealing(mut self, sealing: Sealing) -> Self {
        self.sealing = sealing;
        self
    }

    /// Whether legacy HMAC-MD5 is accepted.
    pub fn legacy_md5(&self) -> bool {
        self.legacy_md5
    }

    /// The handshake timeout.
    pub fn handshake_timeout(&self) -> Option<Duration> {
        self.handshake_timeout
    }

    /// The read timeout after authentication.
    pub fn read_timeout(&self) -> Option<Duration> {
        self.read_timeout
    }

    /// The write timeout after authentication.
    pub fn write_timeout(&self) -> Option<Duration> {
        self.write_timeout
    }

    /// The largest frame accepted after authentication.
    pub fn max_frame(&self) -> u64 {
        self.max_frame
    }

    /// The keepalive idle time of accepted TCP connections (`None`: off).
    pub fn keepalive(&self) -> Option<Duration> {
        self.keepalive
    }

    /// With keepalive on, how long after a peer last sent anything (or
    /// after data we sent went unacknowledged) its connection fails if the
    /// peer stopped answering: the idle time plus [`KEEPALIVE_PROBES`]
    /// probe intervals, 90 s for an idle time of 60 s (on Linux; elsewhere
    /// the system's probe interval and count apply).
    pub fn keepalive_limit(&self) -> Option<Duration> {
        self.keepalive.map(keepalive_limit)
    }

    /// The sealing policy.
    pub fn sealing(&self) -> Sealing {
        self.sealing
    }
}

/// How many unanswered keepalive probes end a connection.
pub const KEEPALIVE_PROBES: u32 = 3;

/// See [`Options::keepalive_limit`].
pub(crate) fn keepalive_limit(idle: Duration) -> Duration {
    idle + keepalive_interval(idle) * KEEPALIVE_PROBES
}

/// The time between keepalive probes for an idle time of `idle`: a sixth of
/// it, in whole seconds as the kernel counts them, at least 1 s, so that a
/// dead peer is declared so half the idle time after the first probe.
pub fn keepalive_interval(idle: Duration) -> Duration {
    Duration::from_secs((idle.as_secs() / 6).max(1))
}
