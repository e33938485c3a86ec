//! Accepting clients, one thread each, up to a limit; stopping gracefully.
//!
//! Two separate limits keep peers without the key from starving those with
//! it: at most `max_handshakes` handshakes run at once (each bounded by the
//! handshake deadline), and at most `max_connections` authenticated
//! sessions. While the handshakes are all taken, new connections wait in
//! the kernel's backlog; authenticated sessions never give up their slots to
//! them. Failed and refused connections are logged at a bounded rate.

use std::io;
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use iris_wire::{Address, Connection, Error, Incoming, Listener, Stream};

use crate::log_budget::LogBudget;
use crate::output::{Counts, Output};
use crate::session::{self, Ending, SessionError};
use crate::workers::Workers;

/// Session threads need little stack; a small one keeps many idle
/// connections cheap.
const SESSION_STACK: usize = 256 << 10;

/// How long the accept loop waits before trying again when the system is
/// out of descriptors or memory for a new connection.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// How long sessions get to end once cut at the shutdown bound: a
/// streaming one ends at its next read, within milliseconds.
const CUT_TIMEOUT: Duration = Duration::from_secs(1);

/// How long the summary waits for a session that is writing its lines
/// when the shutdown bound runs out (see `Output::freeze`).
const FREEZE_TIMEOUT: Duration = Duration::from_secs(1);

/// How often failed handshakes and refused connections are summarised
/// instead of logged one by one.
const LOG_WINDOW: Duration = Duration::from_secs(10);
/// How many of them per window get a line of their own.
const LOG_BURST: u32 = 5;

/// How the server runs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Config {
    /// Authenticated connections served at once; more are refused.
    pub(crate) max_connections: usize,
    /// Handshakes in progress at once; more connections wait in the backlog.
    pub(crate) max_handshakes: usize,
    /// Stop after the first authenticated connection ends, like the seed.
    pub(crate) once: bool,
    /// How long open connections may take to finish once stopping.
    pub(crate) shutdown_timeout: Duration,
    /// How long an authenticated client may send nothing (`None`: forever).
    pub(crate) idle_timeout: Option<Duration>,
}

/// What the server did, for the summary line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Summary {
    /// Authenticated connections.
    pub(crate) connections: u64,
    /// Authenticated connections whose session was sealed; the others
    /// were not (CPython peers, or sealing off).
    pub(crate) sealed: u64,
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
    /// Connections in their handshake.
    handshakes: usize,
    /// Authenticated sessions.
    sessions: usize,
    /// Session threads not finished yet (handshake, session and its log
    /// lines): what a stop waits for.
    running: usize,
    /// With `--once`: a connection authenticated and is the one served.
    once_claimed: bool,
    /// With `--once`: that connection's session is over and logged; the
    /// listener exits without waiting for handshakes still under way.
    once_done: bool,
    stop_requested: Option<Instant>,
    /// Threads waiting in [`Shared::wait_for_change`]. Usually none (the
    /// accept loop waits only at the handshake limit, and the summary only
    /// once stopping), and then a change costs no system call to announce.
    watchers: usize,
}

/// State shared by the accept loop, the sessions and whoever stops us.
#[derive(Debug)]
struct Shared {
    slots: Mutex<Slots>,
    changed: Condvar,
    stopping: AtomicBool,
    /// Raised when the shutdown bound runs out: sessions end at their next
    /// wait for the network (see `session::Ending::Cut`).
    cutting: AtomicBool,
    wake_address: Address,
    next_id: AtomicU64,
    connections: AtomicU64,
    sealed: AtomicU64,
    rejected: AtomicU64,
    failed: AtomicU64,
    failed_handshakes: Mutex<LogBudget>,
    refusals: Mutex<LogBudget>,
}

impl Shared {
    fn slots(&self) -> MutexGuard<'_, Slots> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Changes the slots and wakes whoever waits for a change.
    fn update(&self, change: impl FnOnce(&mut Slots)) {
        let mut slots = self.slots();
        change(&mut slots);
        self.announce(slots);
    }

    /// Releases the slots after a change, waking whoever waits for one.
    fn announce(&self, slots: MutexGuard<'_, Slots>) {
        let watched = slots.watchers > 0;
        drop(slots);
        if watched {
            self.changed.notify_all();
        }
    }

    /// Releases the slots until they change (or, with a `timeout`, at the
    /// latest until it runs out), then holds them again.
    fn wait_for_change<'a>(
        &self,
        mut slots: MutexGuard<'a, Slots>,
        timeout: Option<Duration>,
    ) -> MutexGuard<'a, Slots> {
        slots.watchers += 1;
        let mut slots = match timeout {
            None => self.changed.wait(slots).unwrap_or_else(|e| e.into_inner()),
            Some(timeout) => {
                self.changed
                    .wait_timeout(slots, timeout)
                    .unwrap_or_else(|e| e.into_inner())
                    .0
            }
        };
        slots.watchers -= 1;
        slots
    }

    /// Logs a failed handshake, within its budget.
    fn log_failed_handshake(&self, line: String) {
        let lines = lock(&self.failed_handshakes).record(Instant::now(), line);
        for line in lines {
            tracing::warn!("{line}");
        }
    }

    /// Logs a refused connection, within its budget.
    fn log_refusal(&self, line: String) {
        let lines = lock(&self.refusals).record(Instant::now(), line);
        for line in lines {
            tracing::warn!("{line}");
        }
    }

    /// Logs the summaries of budgets whose window has ended (`force`: all,
    /// as when stopping).
    fn flush_logs(&self, force: bool) {
        let now = Instant::now();
        for budget in [&self.failed_handshakes, &self.refusals] {
            if let Some(line) = lock(budget).flush(now, force) {
                tracing::warn!("{line}");
            }
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
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
        shared.update(|slots| slots.stop_requested = Some(Instant::now()));
        wake_accept_loop(shared);
    }
}

/// The accept loop may be blocked in accept(): a connection wakes it.
fn wake_accept_loop(shared: &Shared) {
    if let Err(e) = wake(&shared.wake_address) {
        tracing::debug!("could not wake the accept loop: {e}");
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
            cutting: AtomicBool::new(false),
            wake_address: listener.local_addr().clone(),
            next_id: AtomicU64::new(1),
            connections: AtomicU64::new(0),
            sealed: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            failed_handshakes: Mutex::new(LogBudget::new(
                "handshakes failed",
                LOG_WINDOW,
                LOG_BURST,
            )),
            refusals: Mutex::new(LogBudget::new("connections refused", LOG_WINDOW, LOG_BURST)),
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

    /// Serves until stopped (or, with `once`, until the first authenticated
    /// connection ends), then waits for open connections within the
    /// shutdown bound.
    pub(crate) fn run(self) -> Summary {
        while self.wait_for_a_handshake_slot() {
            let (stream, peer) = match self.listener.accept_stream() {
                Ok(accepted) => accepted,
                Err(e) => {
                    self.accept_failed(&e);
                    continue;
                }
            };
            if !self.accepting() {
                break;
            }
            self.shared.flush_logs(false);
            self.admit(stream, peer);
        }
        self.drain()
    }

    /// Whether new connections are still wanted.
    fn accepting(&self) -> bool {
        !self.shared.stopping.load(Ordering::SeqCst) && !self.shared.slots().once_claimed
    }

    /// Waits until fewer than `max_handshakes` handshakes are in progress,
    /// leaving new connections in the kernel's backlog meanwhile. Returns
    /// false once no more connections are wanted.
    fn wait_for_a_handshake_slot(&self) -> bool {
        let mut slots = self.shared.slots();
        let mut logged = false;
        loop {
            if self.shared.stopping.load(Ordering::SeqCst) || slots.once_claimed {
                return false;
            }
            if slots.handshakes < self.config.max_handshakes {
                return true;
            }
            if !logged {
                logged = true;
                let line = format!(
                    "{} handshakes in progress, the limit (--max-handshakes): new connections wait until one ends (at the latest at its handshake timeout)",
                    slots.handshakes
                );
                drop(slots);
                self.shared.log_refusal(line);
                slots = self.shared.slots();
                continue;
            }
            slots = self.shared.wait_for_change(slots, None);
        }
    }

    fn accept_failed(&self, e: &Error) {
        let code = match e {
            Error::Io(io) => io.raw_os_error(),
            _ => None,
        };
        // Within the refusals' budget: out of descriptors, this repeats
        // for as long as the shortage lasts.
        match code {
            Some(libc::EMFILE | libc::ENFILE) => self.shared.log_refusal(format!(
                "accept failed: {e}: out of file descriptors; new connections wait in the backlog until open ones close (retrying every {} ms): raise the limit (`ulimit -n`) or lower --max-connections",
                ACCEPT_BACKOFF.as_millis()
            )),
            _ => self.shared.log_refusal(format!("accept failed: {e}")),
        }
        // Out of descriptors or kernel memory, accept fails at once for as
        // long as the shortage lasts: back off instead of spinning.
        if matches!(
            code,
            Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
        ) {
            thread::sleep(ACCEPT_BACKOFF);
        }
    }

    /// Takes a handshake slot for a new connection and sends it the
    /// challenge, or, when the authenticated sessions are all taken,
    /// refuses it by closing it before the challenge: a signal clients can
    /// tell apart from a wrong key.
    fn admit(&self, stream: Stream, peer: Address) {
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        {
            let mut slots = self.shared.slots();
            if slots.sessions >= self.config.max_connections {
                drop(slots);
                drop(stream);
                self.shared.rejected.fetch_add(1, Ordering::Relaxed);
                self.shared.log_refusal(format!(
                    "connection {id} from {peer} refused: the limit of {} connections is reached",
                    self.config.max_connections
                ));
                return;
            }
            slots.handshakes += 1;
            slots.running += 1;
        }
        // Gives the slot back when the connection cannot be served after all.
        let give_up = |why: String| {
            self.shared.update(|slots| {
                slots.handshakes -= 1;
                slots.running -= 1;
            });
            self.shared.rejected.fetch_add(1, Ordering::Relaxed);
            tracing::error!("connection {id} refused: {why}");
        };
        let mut incoming = match self.listener.start_handshake(stream, peer) {
            Ok(incoming) => incoming,
            Err(e) => return give_up(e.to_string()),
        };
        // While no one else waits to be accepted, this thread answers the
        // client itself: no thread wake-up between its bytes and our answer.
        self.listener.advance_while_idle(&mut incoming);
        let server = self.session_context();
        if let Err(e) = self.workers.run(move || server.run(incoming, id)) {
            give_up(format!("cannot start a thread for it: {e}"));
        }
    }

    fn session_context(&self) -> SessionContext {
        SessionContext {
            output: Arc::clone(&self.output),
            shared: Arc::clone(&self.shared),
            config: self.config,
        }
    }

    /// Waits for open sessions, within the bound once a stop was requested.
    fn drain(self) -> Summary {
        let mut slots = self.shared.slots();
        loop {
            if slots.running == 0 || slots.once_done {
                break;
            }
            match slots.stop_requested {
                None => slots = self.shared.wait_for_change(slots, None),
                Some(at) => {
                    let cutting = self.shared.cutting.load(Ordering::SeqCst);
                    let deadline = at
                        + self.config.shutdown_timeout
                        + if cutting { CUT_TIMEOUT } else { Duration::ZERO };
                    let now = Instant::now();
                    if now >= deadline && !cutting {
                        tracing::warn!(
                            "{} connection(s) still open after {:?}: cutting them; their clients are told how many of their flowers were printed",
                            slots.running,
                            self.config.shutdown_timeout
                        );
                        self.shared.cutting.store(true, Ordering::SeqCst);
                        continue;
                    }
                    if now >= deadline {
                        tracing::warn!(
                            "{} connection(s) still open {:?} after they were cut (waiting for a client that sends nothing, or for stdout); leaving them",
                            slots.running,
                            CUT_TIMEOUT
                        );
                        break;
                    }
                    slots = self.shared.wait_for_change(slots, Some(deadline - now));
                }
            }
        }
        let abandoned = slots.running;
        drop(slots);
        self.shared.flush_logs(true);
        Summary {
            connections: self.shared.connections.load(Ordering::Relaxed),
            sealed: self.shared.sealed.load(Ordering::Relaxed),
            rejected: self.shared.rejected.load(Ordering::Relaxed),
            flowers: if abandoned == 0 {
                self.output.printed()
            } else {
                // Abandoned sessions may still be publishing: stop them.
                self.output.freeze(FREEZE_TIMEOUT).unwrap_or_else(|| {
                    tracing::warn!(
                        "stdout is blocked: lines being written now may be missing from the summary's count"
                    );
                    self.output.printed()
                })
            },
            abandoned,
            failed_sessions: self.shared.failed.load(Ordering::Relaxed),
        }
    }
}

/// What a session thread needs of the server.
struct SessionContext {
    output: Arc<Output>,
    shared: Arc<Shared>,
    config: Config,
}

impl SessionContext {
    /// A session thread: authenticate, serve, record how it ended, free the
    /// slot, log, and only then count the thread as finished. The outcome
    /// is recorded before the slot is freed, so that a `--once` listener
    /// waiting for the slot exits with the right status; the log line comes
    /// after, so that whoever reads it and connects again finds the slot
    /// free; and a stop waits for the log line.
    fn run(&self, incoming: Incoming, id: u64) {
        let mut served = false;
        if let Some(mut connection) = self.authenticate(incoming, id) {
            let outcome = session::serve(&mut connection, id, &self.output, &self.shared.cutting);
            drop(connection);
            let failed = self.record(&outcome);
            self.shared.update(|slots| slots.sessions -= 1);
            self.report(id, outcome, failed);
            served = true;
        }
        let once = self.config.once;
        self.shared.update(|slots| {
            slots.running -= 1;
            slots.once_done |= once && served;
        });
    }

    /// Runs the handshake and, if it succeeds, turns its handshake slot into
    /// a session slot. `None` if the connection is not to be served.
    fn authenticate(&self, incoming: Incoming, id: u64) -> Option<Connection> {
        let peer = incoming.peer_addr().clone();
        tracing::debug!("connection {id} opened from {peer}");
        let result = incoming.authenticate();
        let refusal = {
            let mut slots = self.shared.slots();
            slots.handshakes -= 1;
            let refusal = match &result {
                Err(_) => None,
                Ok(_) if self.config.once && slots.once_claimed => Some(
                    "refused: this listener runs with --once and is serving another connection",
                ),
                Ok(_) if slots.sessions >= self.config.max_connections => {
                    Some("refused: the connection limit was reached during its handshake")
                }
                Ok(_) => {
                    slots.sessions += 1;
                    slots.once_claimed = self.config.once;
                    None
                }
            };
            self.shared.announce(slots);
            refusal
        };
        match result {
            Ok(connection) => {
                if let Some(why) = refusal {
                    self.shared.rejected.fetch_add(1, Ordering::Relaxed);
                    self.shared
                        .log_refusal(format!("connection {id} from {peer} {why}"));
                    return None;
                }
                self.shared.connections.fetch_add(1, Ordering::Relaxed);
                if connection.is_sealed() {
                    self.shared.sealed.fetch_add(1, Ordering::Relaxed);
                    tracing::info!("connection {id} from {peer} authenticated, sealed");
                } else {
                    tracing::info!(
                        "connection {id} from {peer} authenticated, unsealed: a CPython peer or sealing off, so its messages cross the network readable and alterable"
                    );
                }
                if self.config.once {
                    // The accept loop waits in accept(): wake it to stop.
                    wake_accept_loop(&self.shared);
                }
                Some(connection)
            }
            Err(error) => {
                self.shared.rejected.fetch_add(1, Ordering::Relaxed);
                let error = iris_app::with_hint(&error);
                self.shared
                    .log_failed_handshake(format!("connection {id} from {peer} rejected: {error}"));
                None
            }
        }
    }

    /// Counts how the session ended; returns whether it failed.
    fn record(&self, outcome: &session::Outcome) -> bool {
        let failed = matches!(
            outcome.result,
            Err(ref e) if !matches!(e, SessionError::StdoutClosed)
        );
        if failed {
            self.shared.failed.fetch_add(1, Ordering::Relaxed);
        }
        failed
    }

    fn report(&self, id: u64, outcome: session::Outcome, failed: bool) {
        let flowers = outcome.flowers.total();
        match outcome.result {
            Ok(Ending::Closed) => tracing::info!("connection {id} closed: {flowers} flowers"),
            Ok(Ending::Disconnected) => tracing::info!(
                "connection {id} closed by the client without Close: {flowers} flowers"
            ),
            Ok(Ending::Cut) => tracing::warn!(
                "connection {id} cut at the end of --shutdown-timeout after {flowers} flowers, all printed; an iris client was told so"
            ),
            Err(SessionError::StdoutClosed) => {
                Stopper(Arc::clone(&self.shared)).stop();
            }
            Err(SessionError::Idle) => tracing::warn!(
                "connection {id} closed after {flowers} flowers: it sent nothing for {:.1} s (--idle-timeout); its slot is free",
                self.config.idle_timeout.unwrap_or_default().as_secs_f64()
            ),
            Err(e) => {
                debug_assert!(failed);
                tracing::warn!("connection {id} dropped after {flowers} flowers: {e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared() -> Arc<Shared> {
        Arc::new(Shared {
            slots: Mutex::new(Slots::default()),
            changed: Condvar::new(),
            stopping: AtomicBool::new(false),
            cutting: AtomicBool::new(false),
            wake_address: Address::Tcp {
                host: "127.0.0.1".into(),
                port: 1,
            },
            next_id: AtomicU64::new(1),
            connections: AtomicU64::new(0),
            sealed: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            failed_handshakes: Mutex::new(LogBudget::new("test", LOG_WINDOW, LOG_BURST)),
            refusals: Mutex::new(LogBudget::new("test", LOG_WINDOW, LOG_BURST)),
        })
    }

    /// A change is announced only to waiters, and every waiter hears it:
    /// one woken by the change, not by its timeout.
    #[test]
    fn a_thread_waiting_for_the_slots_wakes_when_they_change() {
        const PATIENCE: Duration = Duration::from_secs(20);
        let shared = shared();
        let waiter = {
            let shared = Arc::clone(&shared);
            thread::spawn(move || {
                let started = Instant::now();
                let mut slots = shared.slots();
                while slots.sessions == 0 && started.elapsed() < PATIENCE {
                    slots = shared.wait_for_change(slots, Some(PATIENCE));
                }
                (started.elapsed(), slots.sessions, slots.watchers)
            })
        };
        while shared.slots().watchers == 0 {
            thread::yield_now();
        }
        shared.update(|slots| slots.sessions = 1);
        let (waited, sessions, watchers) = waiter.join().expect("waiter");
        assert_eq!(sessions, 1);
        assert_eq!(watchers, 0, "a waiter no longer counts once woken");
        assert!(waited < PATIENCE, "woken by its timeout, not by the change");
    }
}
