//! `iris-client send`: streams flowers to the listener as they are read,
//! then asks it how many it received and fails unless that is every one.
//!
//! The native protocol is `Message::Iris` per flower, then
//! `Message::Close`, answered by `Reply::Closed { flowers }`. The count in
//! that reply is the only evidence of delivery: a TCP write succeeding
//! means the bytes reached our kernel, not the listener's application.
//! Toward a Python listener (no iris mark on its challenge) the flowers go
//! as the seed client's pickles, then `'close'`, and nothing is answered.
//!
//! **Streaming.** A file or standard input is parsed one row at a time and
//! each flower is queued as soon as it is parsed. The queue is written when
//! it fills (64 KiB) and whenever the input has nothing ready (see
//! [`crate::feed`]), so a live feed arrives row by row and a file in large
//! writes. Memory stays constant whatever the input's size: the parser's
//! buffers, 64 KiB of queued frames, at most 256 KiB read ahead from a
//! pipe, and (with `--repeat`) up to [`REPLAY_CACHE`] flowers kept for the
//! later passes.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::fs::File;
use std::io::{self, IsTerminal, Read};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use iris_app::ConnectionArgs;
use iris_model::Iris;
use iris_protocol::{Message, Reply};
use iris_wire::Connection;

use crate::connect::{Target, print_line};
use crate::exit::{self, Failure};
use crate::feed::{Opened, Stop, catch_signals};
use crate::input::{Format, Input, RowError, Rows};

/// How long a send whose connection failed waits for the count a stopping
/// listener sends before closing; it is already there when there is one.
const LAST_COUNT_WAIT: Duration = Duration::from_secs(1);

/// Below this many flowers in total a progress bar would only flicker.
const PROGRESS_MIN_FLOWERS: u64 = 10_000;

/// Below this many bytes of file a progress bar would only flicker.
const PROGRESS_MIN_BYTES: u64 = 256 << 10;

/// Flowers between progress bar updates. Updating reads the clock, which
/// would cost more than sending a flower, so it happens rarely.
const PROGRESS_STEP: u64 = 1 << 16;

/// With `--repeat`, a file of at most this many flowers is kept in memory
/// after its first pass and replayed from there (2.5 MiB at most); a larger
/// one is read again for every pass.
pub(crate) const REPLAY_CACHE: usize = 1 << 16;

/// Which encoding `--codec` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Codec {
    /// Native toward an iris listener, pickles toward any other.
    Auto,
    /// Native postcard messages, acknowledged by an iris listener.
    Native,
    /// Pickles exactly as the Python seed client sends them.
    Pickle,
}

/// What `send` was asked to do.
#[derive(Debug)]
pub(crate) struct Plan {
    /// Where the flowers come from.
    pub(crate) input: Input,
    /// How a file's or stdin's rows are written.
    pub(crate) format: Format,
    /// How many times the input is sent.
    pub(crate) repeat: u64,
    /// Read and check the whole input before connecting.
    pub(crate) check_first: bool,
    /// The encoding asked for.
    pub(crate) codec: Codec,
    /// The Python class pickled flowers are instances of: module, class.
    pub(crate) class: (String, String),
}

impl Plan {
    /// Whether the input is read whole before connecting: when asked, when
    /// it is already in memory, and for standard input sent more than once
    /// (a pipe cannot be read twice).
    fn reads_first(&self) -> bool {
        self.check_first
            || matches!(self.input, Input::Seed | Input::Inline(_))
            || (self.input == Input::Stdin && self.repeat > 1)
    }
}

/// Runs `send`.
pub(crate) fn run(args: &ConnectionArgs, plan: Plan) -> Result<(), Failure> {
    let target = Target::new(args)?;
    if plan.reads_first() {
        send_loaded(&target, plan)
    } else {
        send_streamed(&target, plan)
    }
}

/// How flowers go on the wire, once the listener is known.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Encoding {
    Native,
    Pickle { module: String, class: String },
}

impl Encoding {
    fn for_listener(plan: &Plan, connection: &Connection) -> Encoding {
        let native = match plan.codec {
            Codec::Native => true,
            Codec::Pickle => false,
            Codec::Auto => {
                let iris = connection.peer_is_iris_listener();
                if !iris {
                    tracing::info!(
                        "the listener is not iris (no iris mark on its challenge): sending the seed client's pickles"
                    );
                }
                iris
            }
        };
        if native {
            Encoding::Native
        } else {
            Encoding::Pickle {
                module: plan.class.0.clone(),
                class: plan.class.1.clone(),
            }
        }
    }
}

/// The connection and what has been handed to it.
struct Sink {
    connection: Connection,
    encoding: Encoding,
    /// A pickled flower's frame, reused.
    frame: Vec<u8>,
    /// Flowers handed to the connection (possibly still in its buffer, or
    /// in the one whose write failed).
    handed: u64,
    /// Why the connection failed while the input was being read.
    failed: Option<iris_wire::Error>,
}

impl Sink {
    fn new(connection: Connection, encoding: Encoding) -> Self {
        Sink {
            connection,
            encoding,
            frame: Vec::with_capacity(256),
            handed: 0,
            failed: None,
        }
    }

    /// Queues one flower; the connection writes when its buffer fills.
    fn send(&mut self, flower: &Iris) -> Result<(), iris_wire::Error> {
        self.handed += 1;
        match &self.encoding {
            Encoding::Native => self.connection.send(&Message::Iris(*flower)),
            Encoding::Pickle { module, class } => {
                self.frame.clear();
                iris_protocol::python::write_flower_frame(&mut self.frame, flower, module, class);
                self.connection.send_bytes(&self.frame)
            }
        }
    }

    /// Queues many flowers. This is the hot loop of `--repeat`: a native
    /// flower costs an encode into the connection's buffer and a bounds
    /// check, no allocation and no system call.
    fn send_all(&mut self, flowers: &[Iris]) -> Result<(), iris_wire::Error> {
        if self.encoding != Encoding::Native {
            return flowers.iter().try_for_each(|flower| self.send(flower));
        }
        for (index, &flower) in flowers.iter().enumerate() {
            if let Err(error) = self.connection.send(&Message::Iris(flower)) {
                self.handed += index as u64 + 1;
                return Err(error);
            }
        }
        self.handed += flowers.len() as u64;
        Ok(())
    }

    /// Writes what is queued because the input has nothing ready; a
    /// failure is kept for the report and stops the reading.
    fn flush_before_waiting(&mut self) -> io::Result<()> {
        self.connection.flush().map_err(|error| {
            self.failed = Some(error);
            io::Error::other("the connection to the listener failed")
        })
    }

    /// After the connection failed: the count a stopping iris listener
    /// sends before it closes (`Reply::Closed` ahead of our `Close`, when its
    /// shutdown bound runs out), if it is there to be read. The kernel keeps
    /// it readable after the reset that failed our write.
    fn count_after_failure(&mut self) -> Option<u64> {
        if self.encoding != Encoding::Native {
            return None;
        }
        self.connection
            .set_read_timeout(Some(LAST_COUNT_WAIT))
            .ok()?;
        match self.connection.recv::<Reply>() {
            Ok(Reply::Closed { flowers }) => Some(flowers),
            _ => None,
        }
    }

    /// Ends the session: native `Close` and the acknowledged count, or the
    /// pickle `'close'` (`None`: Python listeners answer nothing).
    fn close(mut self) -> Result<Option<u64>, Broken> {
        let handed = self.handed;
        let broken = |error| Broken { handed, error };
        match self.encoding {
            Encoding::Native => {
                // recv flushes whatever is still buffered, then waits.
                let reply = self
                    .connection
                    .send(&Message::Close)
                    .and_then(|()| self.connection.recv::<Reply>());
                let flowers = match reply {
                    Ok(Reply::Closed { flowers }) => flowers,
                    Ok(other) => return Err(broken(BrokenBy::UnexpectedReply(other))),
                    Err(error) => match self.count_after_failure() {
                        Some(flowers) => flowers,
                        None => return Err(broken(BrokenBy::Wire(error))),
                    },
                };
                // The count is in; a failing shutdown changes nothing.
                if let Err(error) = self.connection.close() {
                    tracing::debug!(error = %error, "closing the connection failed");
                }
                Ok(Some(flowers))
            }
            Encoding::Pickle { .. } => {
                let result = self
                    .connection
                    .send_bytes(&iris_protocol::python::close_frame())
                    .and_then(|()| self.connection.close());
                result.map_err(|error| broken(BrokenBy::Wire(error)))?;
                Ok(None)
            }
        }
    }
}

/// How the sending ended, before the session is closed.
#[derive(Debug)]
enum Ended {
    /// The whole input was sent.
    Complete,
    /// A bad row stopped it.
    BadRow { line: u64, error: anyhow::Error },
    /// The input could not be read.
    ReadFailed(anyhow::Error),
    /// A signal stopped it.
    Stopped(i32),
    /// The connection failed.
    Broken(iris_wire::Error),
}

/// `--check-first`, `--flower`, the seed flower, and stdin with
/// `--repeat`: the whole input is read and checked, then sent.
fn send_loaded(target: &Target<'_>, plan: Plan) -> Result<(), Failure> {
    let name = plan.input.to_string();
    let flowers = plan
        .input
        .clone()
        .load(plan.format)
        .map_err(|error| match error {
            RowError::Bad { error, .. } => Failure::new(
                exit::BAD_INPUT,
                error.context(format!("bad input in {name} (nothing was sent)")),
            ),
            RowError::Read(error) => Failure::new(
                exit::OTHER,
                error.context(format!(
                    "cannot read flowers from {name} (nothing was sent)"
                )),
            ),
        })?;
    let total = (flowers.len() as u64)
        .checked_mul(plan.repeat)
        .ok_or_else(|| {
            anyhow!(
                "{} flowers times --repeat {} is too many",
                flowers.len(),
                plan.repeat
            )
        })?;

    let connection = target.connect()?;
    let encoding = Encoding::for_listener(&plan, &connection);
    let mut sink = Sink::new(connection, encoding);
    let stop = Arc::new(Stop::default());
    catch_signals(Arc::clone(&stop), None)?;
    let progress = Progress::flowers(total);
    let started = Instant::now();
    let ended = replay(&mut sink, &flowers, plan.repeat, &stop, |_, _, handed| {
        progress.bar.set_position(handed);
    });
    progress.bar.finish_and_clear();
    log_rate(sink.handed, started);
    finish(sink, ended, target.address(), &name)
}

/// A file or standard input, streamed: each flower is sent as it is parsed.
fn send_streamed(target: &Target<'_>, plan: Plan) -> Result<(), Failure> {
    let name = plan.input.to_string();
    let open = || -> anyhow::Result<Opened> {
        match &plan.input {
            Input::File(path) => File::open(path)
                .and_then(Opened::new)
                .with_context(|| format!("cannot open {}", path.display())),
            _ => Opened::stdin().context("cannot read standard input"),
        }
    };
    let opened = open().map_err(|error| anyhow!("{error:#} (nothing was sent)"))?;
    let size = opened.size();

    let connection = target.connect()?;
    let encoding = Encoding::for_listener(&plan, &connection);
    let sink = RefCell::new(Sink::new(connection, encoding));
    let stop = Arc::new(Stop::default());
    catch_signals(Arc::clone(&stop), opened.waker())?;
    let progress = match size {
        Some(size) => Progress::bytes(size.saturating_mul(plan.repeat)),
        None => Progress::counter(),
    };
    let delivered = Cell::new(0);
    let before_waiting = || {
        let mut sink = sink.borrow_mut();
        progress.update(sink.handed, delivered.get());
        sink.flush_before_waiting()
    };
    let started = Instant::now();

    let mut cache = (plan.repeat > 1).then(Vec::new);
    let feed = opened.feed(&stop, &before_waiting, &delivered);
    let mut ended = stream(
        &sink,
        Rows::new(feed, plan.format),
        &mut cache,
        &stop,
        &progress,
        &delivered,
    );
    let mut pass = 1;
    while pass < plan.repeat && matches!(ended, Ended::Complete) {
        if let Some(flowers) = &cache {
            // The rest of the passes, from memory.
            let size = size.unwrap_or(0);
            let per_flower = size as f64 / flowers.len().max(1) as f64;
            let mut sink = sink.borrow_mut();
            let passes = plan.repeat - pass;
            ended = replay(
                &mut sink,
                flowers,
                passes,
                &stop,
                |replayed, done, handed| {
                    let bytes = size * (pass + replayed) + (done as f64 * per_flower) as u64;
                    progress.update(handed, bytes);
                },
            );
            break;
        }
        let opened = match open() {
            Ok(opened) => opened,
            Err(error) => {
                ended = Ended::ReadFailed(error.context(format!("cannot read pass {}", pass + 1)));
                break;
            }
        };
        let feed = opened.feed(&stop, &before_waiting, &delivered);
        ended = stream(
            &sink,
            Rows::new(feed, plan.format),
            &mut None,
            &stop,
            &progress,
            &delivered,
        );
        pass += 1;
    }
    progress.bar.finish_and_clear();
    let sink = sink.into_inner();
    log_rate(sink.handed, started);
    finish(sink, ended, target.address(), &name)
}

/// Sends the flowers of `rows` as they are parsed, keeping them in `cache`
/// while they fit (else dropping it).
fn stream<R: Read>(
    sink: &RefCell<Sink>,
    mut rows: Rows<R>,
    cache: &mut Option<Vec<Iris>>,
    stop: &Stop,
    progress: &Progress,
    delivered: &Cell<u64>,
) -> Ended {
    let mut next_progress = sink.borrow().handed + PROGRESS_STEP;
    loop {
        // No borrow of the sink is held here: the feed flushes it when the
        // input has nothing ready.
        let flower = match rows.next_flower() {
            None => return Ended::Complete,
            Some(Ok(flower)) => flower,
            Some(Err(error)) => return stopped_reading(sink, stop, error),
        };
        let mut sink = sink.borrow_mut();
        if let Err(error) = sink.send(&flower) {
            return Ended::Broken(error);
        }
        if let Some(flowers) = cache {
            if flowers.len() < REPLAY_CACHE {
                flowers.push(flower);
            } else {
                *cache = None;
            }
        }
        if sink.handed >= next_progress {
            progress.update(sink.handed, delivered.get());
            next_progress = sink.handed + PROGRESS_STEP;
        }
    }
}

/// Why reading stopped: the feed's own errors (the connection failed while
/// flushing, or a signal) come before what the parser saw.
fn stopped_reading(sink: &RefCell<Sink>, stop: &Stop, error: RowError) -> Ended {
    if let Some(error) = sink.borrow_mut().failed.take() {
        return Ended::Broken(error);
    }
    // The feed checks the flag before every read it makes.
    if let (RowError::Read(_), Some(signal)) = (&error, stop.requested()) {
        return Ended::Stopped(signal);
    }
    match error {
        RowError::Bad { line, error } => Ended::BadRow { line, error },
        RowError::Read(error) => Ended::ReadFailed(error),
    }
}

/// Sends `flowers` `passes` times, checking for a stop between chunks.
/// `progress` gets the pass, the flowers done in it, and all handed.
fn replay(
    sink: &mut Sink,
    flowers: &[Iris],
    passes: u64,
    stop: &Stop,
    mut progress: impl FnMut(u64, usize, u64),
) -> Ended {
    let mut next_progress = sink.handed + PROGRESS_STEP;
    let chunk_len = usize::try_from(PROGRESS_STEP).unwrap_or(usize::MAX);
    for pass in 0..passes {
        // Chunks bound the time between checks when the input itself is
        // large; for a small input, one chunk is the whole input.
        for (index, chunk) in flowers.chunks(chunk_len).enumerate() {
            if let Some(signal) = stop.requested() {
                return Ended::Stopped(signal);
            }
            if let Err(error) = sink.send_all(chunk) {
                return Ended::Broken(error);
            }
            if sink.handed >= next_progress {
                progress(pass, index * chunk_len + chunk.len(), sink.handed);
                next_progress = sink.handed + PROGRESS_STEP;
            }
        }
    }
    progress(passes, 0, sink.handed);
    Ended::Complete
}

fn log_rate(flowers: u64, started: Instant) {
    let elapsed = started.elapsed().as_secs_f64();
    tracing::debug!(
        flowers,
        seconds = elapsed,
        per_second = flowers as f64 / elapsed.max(f64::MIN_POSITIVE),
        "streamed"
    );
}

/// Closes the session and reports: what was sent and acknowledged on
/// stdout, and why it stopped early, if it did, as the error.
fn finish(mut sink: Sink, ended: Ended, address: &str, input: &str) -> Result<(), Failure> {
    let handed = sink.handed;
    let encoding = sink.encoding.clone();
    if let Ended::Broken(error) = ended {
        if let Some(acknowledged) = sink.count_after_failure() {
            print_line(format_args!(
                "sent {} to {address}; {acknowledged} acknowledged",
                flower_count(handed)
            ))?;
            return Err(Failure::new(
                exit::NOT_ACKNOWLEDGED,
                anyhow!(
                    "the listener at {address} stopped taking flowers before the input ended (it is shutting down): it acknowledged {acknowledged} of the {} sent; {} not acknowledged; the rest of the input was not sent ({error})",
                    flower_count(handed),
                    handed.saturating_sub(acknowledged)
                ),
            ));
        }
        return Err(Broken {
            handed,
            error: BrokenBy::Wire(error),
        }
        .into_failure(address, None));
    }
    let complete = matches!(ended, Ended::Complete);
    let acknowledged = sink
        .close()
        .map_err(|broken| broken.into_failure(address, complete.then_some(handed)))?;
    let delivered = match (acknowledged, &encoding) {
        (Some(acknowledged), _) => {
            check_count(handed, acknowledged).map_err(|failure| {
                if complete {
                    failure
                } else {
                    let why = early_end(&ended, input);
                    Failure::new(failure.code, failure.error.context(why))
                }
            })?;
            print_line(format_args!(
                "sent {} to {address}; {acknowledged} acknowledged",
                flower_count(handed)
            ))?;
            "sent and acknowledged"
        }
        (None, Encoding::Pickle { module, class }) => {
            print_line(format_args!(
                "sent {} to {address} as pickles of {module}.{class}, then 'close'; a Python listener sends no acknowledgement, so delivery is not confirmed",
                flower_count(handed)
            ))?;
            "sent (a Python listener does not acknowledge)"
        }
        (None, Encoding::Native) => unreachable!("a native close always returns the count"),
    };
    let before = match handed {
        0 => "no flowers were sent".to_owned(),
        1 => format!("the flower before it was {delivered}"),
        n => format!("the {n} flowers before it were {delivered}"),
    };
    match ended {
        Ended::Complete | Ended::Broken(_) => Ok(()),
        Ended::BadRow { line, error } => Err(Failure::new(
            exit::BAD_INPUT,
            error.context(format!(
                "bad input: the send stopped at line {line} of {input}; {before}"
            )),
        )),
        Ended::ReadFailed(error) => Err(Failure::new(
            exit::OTHER,
            error.context(format!("cannot read {input}; {before}")),
        )),
        Ended::Stopped(signal) => {
            let before = before.replace(" before it", "");
            Err(Failure::new(
                exit::stopped_by(signal),
                anyhow!(
                    "stopped by {}: the rest of {input} was not read; {before}",
                    signal_name(signal)
                ),
            ))
        }
    }
}

/// Why a send ended before its input did, for a count that did not match.
fn early_end(ended: &Ended, input: &str) -> String {
    match ended {
        Ended::BadRow { line, .. } => {
            format!("the send stopped at a bad row, line {line} of {input}")
        }
        Ended::ReadFailed(_) => format!("the send stopped when {input} could not be read"),
        Ended::Stopped(signal) => format!("the send was stopped by {}", signal_name(*signal)),
        Ended::Complete | Ended::Broken(_) => String::new(),
    }
}

fn signal_name(signal: i32) -> String {
    match signal {
        signal_hook::consts::SIGINT => "SIGINT (Ctrl-C)".to_owned(),
        signal_hook::consts::SIGTERM => "SIGTERM".to_owned(),
        other => format!("signal {other}"),
    }
}

/// "1 flower", "150 flowers".
fn flower_count(count: u64) -> String {
    if count == 1 {
        "1 flower".to_owned()
    } else {
        format!("{count} flowers")
    }
}

/// "1 was", "3 were".
fn were(count: u64) -> String {
    if count == 1 {
        "1 was".to_owned()
    } else {
        format!("{count} were")
    }
}

/// Exit code 5 unless the listener counted exactly what was sent.
fn check_count(sent: u64, acknowledged: u64) -> Result<(), Failure> {
    if acknowledged == sent {
        return Ok(());
    }
    let error = if acknowledged < sent {
        let lost = sent - acknowledged;
        anyhow!(
            "the listener acknowledged {acknowledged} of {}; {} lost",
            flower_count(sent),
            were(lost)
        )
    } else {
        // More than was sent: the count cannot be trusted to prove anything.
        anyhow!(
            "the listener acknowledged {} but only {sent} were sent; its count cannot be trusted",
            flower_count(acknowledged)
        )
    };
    Err(Failure::new(exit::NOT_ACKNOWLEDGED, error))
}

/// The connection failed after it was established, before the count came.
#[derive(Debug)]
struct Broken {
    /// Flowers handed to the connection (possibly still in its buffer, or
    /// in the one whose write failed) before it broke.
    handed: u64,
    /// Why it broke.
    error: BrokenBy,
}

#[derive(Debug)]
enum BrokenBy {
    Wire(iris_wire::Error),
    /// The listener answered Close with something other than Closed.
    UnexpectedReply(Reply),
}

impl Broken {
    /// Says what is known: how many flowers may be lost, and, when the
    /// input's size is known (`total`), how many never left; not how many
    /// arrived, since nothing was acknowledged.
    fn into_failure(self, address: &str, total: Option<u64>) -> Failure {
        let Broken { handed, error } = self;
        let (what, cause) = match error {
            BrokenBy::Wire(error) => (
                format!("the connection to {address} broke before the listener acknowledged"),
                anyhow::Error::new(error),
            ),
            BrokenBy::UnexpectedReply(reply) => (
                format!("the listener at {address} did not acknowledge"),
                anyhow!("it answered Close with {reply:?} instead of Closed"),
            ),
        };
        let loss = match (handed, total) {
            (0, _) => "no flowers were sent".to_owned(),
            (1, Some(1)) => "the flower was sent and may be lost".to_owned(),
            (handed, Some(total)) if handed == total => {
                format!("all {total} flowers were sent and up to {total} may be lost")
            }
            (handed, Some(total)) => format!(
                "{handed} of {} were sent and up to {handed} may be lost; the other {} not sent",
                flower_count(total),
                were(total - handed)
            ),
            (handed, None) => format!(
                "{} sent and up to {handed} may be lost; the rest of the input was not sent",
                were(handed)
            ),
        };
        Failure::new(
            exit::NOT_ACKNOWLEDGED,
            cause.context(format!("{what}: {loss}")),
        )
    }
}

/// The progress display on stderr: a bar of flowers or of a file's bytes,
/// or a counter for a pipe; hidden when stderr is not a terminal, and for
/// inputs too small to need one, so the send loop has a single code path.
struct Progress {
    bar: ProgressBar,
    bytes: bool,
}

impl Progress {
    /// A bar of `total` flowers.
    fn flowers(total: u64) -> Progress {
        let bar = if total < PROGRESS_MIN_FLOWERS || !io::stderr().is_terminal() {
            ProgressBar::hidden()
        } else {
            ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr()).with_style(
                style(
                    "{bar:30.cyan/blue} {human_pos}/{human_len} flowers, {rate}, eta {eta} {msg}",
                ),
            )
        };
        Progress { bar, bytes: false }
    }

    /// A bar of a file's `total` bytes (times the passes).
    fn bytes(total: u64) -> Progress {
        let bar = if total < PROGRESS_MIN_BYTES || !io::stderr().is_terminal() {
            ProgressBar::hidden()
        } else {
            ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr()).with_style(
                style("{bar:30.cyan/blue} {bytes}/{total_bytes}, {msg} flowers, {bytes_per_sec}, eta {eta}"),
            )
        };
        Progress { bar, bytes: true }
    }

    /// A counter of flowers and their rate, for an input of unknown size.
    fn counter() -> Progress {
        let bar = if io::stderr().is_terminal() {
            ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr())
                .with_style(style("{spinner} {human_pos} flowers, {rate}"))
        } else {
            ProgressBar::hidden()
        };
        Progress { bar, bytes: false }
    }

    /// Moves the display to `flowers` sent, `bytes` read.
    fn update(&self, flowers: u64, bytes: u64) {
        if self.bar.is_hidden() {
            return;
        }
        if self.bytes {
            self.bar
                .set_message(indicatif::HumanCount(flowers).to_string());
            self.bar.set_position(bytes);
        } else {
            self.bar.set_position(flowers);
        }
    }
}

/// A progress style with `{rate}`: millions of flowers per second.
fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        // indicatif's own {per_sec} prints four decimals of flowers per second.
        .with_key("rate", |state: &ProgressState, out: &mut dyn fmt::Write| {
            let _ = write!(out, "{:.1}M/s", state.per_sec() / 1e6);
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_count_succeeds() {
        assert!(check_count(150, 150).is_ok());
        assert!(check_count(0, 0).is_ok());
    }

    #[test]
    fn a_short_count_names_the_loss() {
        let failure = check_count(150, 90).expect_err("short");
        assert_eq!(failure.code, exit::NOT_ACKNOWLEDGED);
        assert_eq!(
            failure.error.to_string(),
            "the listener acknowledged 90 of 150 flowers; 60 were lost"
        );
    }

    #[test]
    fn one_flower_is_singular() {
        let failure = check_count(1, 0).expect_err("lost");
        assert_eq!(
            failure.error.to_string(),
            "the listener acknowledged 0 of 1 flower; 1 was lost"
        );
        let failure = Broken {
            handed: 1,
            error: BrokenBy::UnexpectedReply(Reply::Pong),
        }
        .into_failure("localhost:6000", Some(1));
        assert_eq!(
            format!("{:#}", failure.error),
            "the listener at localhost:6000 did not acknowledge: \
             the flower was sent and may be lost: \
             it answered Close with Pong instead of Closed"
        );
    }

    #[test]
    fn an_excessive_count_is_not_trusted() {
        let failure = check_count(150, 151).expect_err("too many");
        assert_eq!(failure.code, exit::NOT_ACKNOWLEDGED);
        assert!(failure.error.to_string().contains("cannot be trusted"));
    }

    #[test]
    fn a_broken_connection_says_what_may_be_lost_and_what_was_not_sent() {
        let broken = |handed| Broken {
            handed,
            error: BrokenBy::Wire(iris_wire::Error::Closed),
        };
        let failure = broken(40).into_failure("localhost:6000", Some(150));
        assert_eq!(failure.code, exit::NOT_ACKNOWLEDGED);
        assert_eq!(
            format!("{:#}", failure.error),
            "the connection to localhost:6000 broke before the listener acknowledged: \
             40 of 150 flowers were sent and up to 40 may be lost; the other 110 were not sent: \
             the peer closed the connection"
        );

        let failure = broken(150).into_failure("localhost:6000", Some(150));
        assert!(
            failure
                .error
                .to_string()
                .ends_with("all 150 flowers were sent and up to 150 may be lost"),
            "{:#}",
            failure.error
        );

        // Streaming: how much input was left is unknown.
        let failure = broken(40).into_failure("localhost:6000", None);
        assert!(
            failure.error.to_string().ends_with(
                "40 were sent and up to 40 may be lost; the rest of the input was not sent"
            ),
            "{:#}",
            failure.error
        );
    }

    #[test]
    fn small_inputs_get_no_progress_bar() {
        assert!(Progress::flowers(PROGRESS_MIN_FLOWERS - 1).bar.is_hidden());
        assert!(Progress::bytes(PROGRESS_MIN_BYTES - 1).bar.is_hidden());
    }

    #[test]
    fn stdin_is_read_first_only_when_it_must_be_read_twice() {
        let plan = |input, repeat, check_first| Plan {
            input,
            format: Format::Csv { header: true },
            repeat,
            check_first,
            codec: Codec::Auto,
            class: ("iris".into(), "Iris".into()),
        };
        assert!(!plan(Input::Stdin, 1, false).reads_first());
        assert!(plan(Input::Stdin, 2, false).reads_first());
        assert!(!plan(Input::File("a.csv".into()), 5, false).reads_first());
        assert!(plan(Input::File("a.csv".into()), 1, true).reads_first());
        assert!(plan(Input::Seed, 1, false).reads_first());
    }
}
