//! Accepting clients, one thread each, up to a limit; stopping gracefully.

use std::io;
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use iris_wire::{Address, Connection, Error, Incoming, Listener};

use crate::output::{Counts, Output};
use crate::session::{self, Ending, SessionError};
use crate::workers::Workers;

/// Session threads need little stack; a small one keeps many idle
/// connections cheap.
const SESSION_STACK: usize = 256 << 10;

/// How the server runs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Config {
    /// Connections served at once; more are refused.
    pub(crate) max_connections: usize,
    /// Stop after the first authenticated connection ends, like the seed.
    pub(crate) once: bool,
    /// How long open connections may take to finish once stopping.
    pub(crate) shutdown_timeout: Duration,
}

/// What the server did, for the summary line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Summary {
    /// Authenticated connections.
    pub(crate) connections: u64,
    /// Connections refused: failed handshakes and those over the limit.
    pub(crate) rejected: u64,
    /// Flowers written to stdout.
    pub(crate) flowers: Counts,
    /// Connections still open when the shutdown bound ran out.
    pub(crate) abandoned: usize,
    /// Whether the (only, with `--once`) session ended in an error.
    pub(crate) failed_sessions: u64,
}

#[derive(Debug, Default)]
struct Slots {
    active: usize,
    stop_requested: Option<Instant>,
}

/// State shared by the accept loop, the sessions and whoever stops us.
#[derive(Debug)]
struct Shared {
    slots: Mutex<Slots>,
    changed: Condvar,
    stopping: AtomicBool,
    wake_address: Address,
    next_id: AtomicU64,
    connections: AtomicU64,
    rejected: AtomicU64,
    failed: AtomicU64,
}

impl Shared {
    fn slots(&self) -> MutexGuard<'_, Slots> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn release_slot(&self) {
        self.slots().active -= 1;
        self.changed.notify_all();
    }
}

/// A handle that stops the server from another thread (a signal handler, a
/// session whose stdout went away).
#[derive(Debug, Clone)]
pub(crate) struct Stopper(Arc<Shared>);

impl Stopper {
    /// Stops accepting; open connections get the shutdown bound to finish.
    pub(crate) fn stop(&self) {
        let shared = &self.0;
        if shared.stopping.swap(true, Ordering::SeqCst) {
            return;
        }
        shared.slots().stop_requested = Some(Instant::now());
        shared.changed.notify_all();
        // The accept loop is blocked in accept(): a connection wakes it.
        if let Err(e) = wake(&shared.wake_address) {
            tracing::debug!("could not wake the accept loop: {e}");
        }
    }
}

fn wake(address: &Address) -> io::Result<()> {
    match address {
        Address::Tcp { host, port } => {
            let host = match host.as_str() {
                "0.0.0.0" => "127.0.0.1",
                "::" => "::1",
                other => other,
            };
            TcpStream::connect((host, *port)).map(drop)
        }
        #[cfg(unix)]
        Address::Unix(path) => std::os::unix::net::UnixStream::connect(path).map(drop),
        #[cfg(not(unix))]
        Address::Unix(_) => Ok(()),
    }
}

/// The accept loop and its sessions.
#[derive(Debug)]
pub(crate) struct Server {
    listener: Listener,
    workers: Workers,
    output: Arc<Output>,
    shared: Arc<Shared>,
    config: Config,
}

impl Server {
    pub(crate) fn new(listener: Listener, output: Output, config: Config) -> Self {
        let shared = Arc::new(Shared {
            slots: Mutex::new(Slots::default()),
            changed: Condvar::new(),
            stopping: AtomicBool::new(false),
            wake_address: listener.local_addr().clone(),
            next_id: AtomicU64::new(1),
            connections: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            failed: AtomicU64::new(0),
        });
        Server {
            listener,
            workers: Workers::new(SESSION_STACK),
            output: Arc::new(output),
            shared,
            config,
        }
    }

    pub(crate) fn stopper(&self) -> Stopper {
        Stopper(Arc::clone(&self.shared))
    }

    /// Serves until stopped (or, with `once`, until the first connection
    /// ends), then waits for open connections within the shutdown bound.
    pub(crate) fn run(self) -> Summary {
        while !self.shared.stopping.load(Ordering::SeqCst) {
            let incoming = match self.listener.accept_unauthenticated() {
                Ok(incoming) => incoming,
                Err(e) => {
                    self.accept_failed(&e);
                    continue;
                }
            };
            if self.shared.stopping.load(Ordering::SeqCst) {
                break;
            }
            if self.config.once {
                // Like the seed, serve one client; unlike it, a client that
                // fails to authenticate does not end the listener.
                let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
                match self.session_context().authenticate(incoming, id) {
                    Ok(connection) => {
                        self.start_session(connection, id);
                        break;
                    }
                    Err(rejection) => rejection.log(),
                }
                continue;
            }
            self.admit(incoming);
        }
        self.drain()
    }

    fn accept_failed(&self, e: &Error) {
        tracing::warn!("accept failed: {e}");
        if let Error::Io(io) = e {
            // Out of file descriptors: back off instead of spinning.
            if io
                .raw_os_error()
                .is_some_and(|code| code == 24 || code == 23)
            {
                thread::sleep(Duration::from_millis(50));
            }
        }
    }

    /// Takes a slot for a new connection, or refuses it.
    fn admit(&self, incoming: Incoming) {
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        {
            let mut slots = self.shared.slots();
            if slots.active >= self.config.max_connections {
                drop(slots);
                self.shared.rejected.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    "connection {id} from {} refused: the limit of {} connections is reached",
                    incoming.peer_addr(),
                    self.config.max_connections
                );
                return;
            }
            slots.active += 1;
        }
        self.spawn_session(Start::Incoming(Box::new(incoming)), id);
    }

    fn start_session(&self, connection: Connection, id: u64) {
        self.shared.slots().active += 1;
        self.spawn_session(Start::Authenticated(connection), id);
    }

    /// Runs a session on its own thread; its slot is already taken.
    fn spawn_session(&self, start: Start, id: u64) {
        let server = self.session_context();
        if let Err(e) = self.workers.run(move || server.run(start, id)) {
            self.shared.release_slot();
            self.shared.rejected.fetch_add(1, Ordering::Relaxed);
            tracing::error!("connection {id} refused: cannot start a thread for it: {e}");
        }
    }

    fn session_context(&self) -> SessionContext {
        SessionContext {
            output: Arc::clone(&self.output),
            shared: Arc::clone(&self.shared),
        }
    }

    /// Waits for open sessions, within the bound once a stop was requested.
    fn drain(self) -> Summary {
        let mut slots = self.shared.slots();
        loop {
            if slots.active == 0 {
                break;
            }
            match slots.stop_requested {
                None => {
                    slots = self
                        .shared
                        .changed
                        .wait(slots)
                        .unwrap_or_else(|e| e.into_inner())
                }
                Some(at) => {
                    let deadline = at + self.config.shutdown_timeout;
                    let now = Instant::now();
                    if now >= deadline {
                        tracing::warn!(
                            "{} connection(s) still open after {:?}; leaving them",
                            slots.active,
                            self.config.shutdown_timeout
                        );
                        break;
                    }
                    slots = self
                        .shared
                        .changed
                        .wait_timeout(slots, deadline - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
            }
        }
        let abandoned = slots.active;
        drop(slots);
        Summary {
            connections: self.shared.connections.load(Ordering::Relaxed),
            rejected: self.shared.rejected.load(Ordering::Relaxed),
            flowers: self.output.printed(),
            abandoned,
            failed_sessions: self.shared.failed.load(Ordering::Relaxed),
        }
    }
}

/// What a session thread needs of the server.
struct SessionContext {
    output: Arc<Output>,
    shared: Arc<Shared>,
}

/// How a session thread starts.
enum Start {
    /// Accepted; the handshake runs on the session's thread.
    Incoming(Box<Incoming>),
    /// Already authenticated (by the accepting thread, with `--once`).
    Authenticated(Connection),
}

/// A failed handshake, logged once its slot is free again.
struct Rejection {
    id: u64,
    peer: Address,
    error: Error,
}

impl Rejection {
    fn log(&self) {
        let Rejection { id, peer, error } = self;
        let error = iris_app::with_hint(error);
        tracing::warn!("connection {id} from {peer} rejected: {error}");
    }
}

impl SessionContext {
    /// A session thread: authenticate if needed, serve, free the slot, and
    /// only then log how it ended, so that whoever reads the log and
    /// connects again finds the slot free.
    fn run(&self, start: Start, id: u64) {
        let mut connection = match start {
            Start::Authenticated(connection) => connection,
            Start::Incoming(incoming) => match self.authenticate(*incoming, id) {
                Ok(connection) => connection,
                Err(rejection) => {
                    self.shared.release_slot();
                    rejection.log();
                    return;
                }
            },
        };
        let outcome = session::serve(&mut connection, id, &self.output);
        drop(connection);
        self.shared.release_slot();
        self.report(id, outcome);
    }

    fn authenticate(&self, incoming: Incoming, id: u64) -> Result<Connection, Rejection> {
        let peer = incoming.peer_addr().clone();
        tracing::info!("connection {id} opened from {peer}");
        match incoming.authenticate() {
            Ok(connection) => {
                self.shared.connections.fetch_add(1, Ordering::Relaxed);
                tracing::info!("connection {id} authenticated");
                Ok(connection)
            }
            Err(error) => {
                self.shared.rejected.fetch_add(1, Ordering::Relaxed);
                Err(Rejection { id, peer, error })
            }
        }
    }

    fn report(&self, id: u64, outcome: session::Outcome) {
        let flowers = outcome.flowers.total();
        match outcome.result {
            Ok(Ending::Closed) => tracing::info!("connection {id} closed: {flowers} flowers"),
            Ok(Ending::Disconnected) => tracing::info!(
                "connection {id} closed by the client without Close: {flowers} flowers"
            ),
            Err(SessionError::StdoutClosed) => {
                Stopper(Arc::clone(&self.shared)).stop();
            }
            Err(e) => {
                self.shared.failed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!("connection {id} dropped after {flowers} flowers: {e}");
            }
        }
    }
}
