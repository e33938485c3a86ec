//! `iris-client send`: streams flowers to the listener, then asks it how
//! many it received and fails unless that is every one.
//!
//! The protocol is the native one: `Message::Iris` per flower, then
//! `Message::Close`, answered by `Reply::Closed { flowers }`. The count in
//! that reply is the only evidence of delivery: a TCP write succeeding
//! means the bytes reached our kernel, not the listener's application.

use std::fmt;
use std::io::IsTerminal;
use std::time::Instant;

use anyhow::{Context, anyhow};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use iris_app::ConnectionArgs;
use iris_model::{Iris, Message, Reply};
use iris_wire::Connection;

use crate::connect::{Target, print_line};
use crate::exit::{self, Failure};
use crate::input::Input;

/// Below this many flowers in total a progress bar would only flicker.
const PROGRESS_MIN_FLOWERS: u64 = 10_000;

/// Flowers between progress bar updates. Updating reads the clock, which
/// would cost more than sending a flower, so it happens rarely.
const PROGRESS_STEP: u64 = 1 << 16;

/// How flowers go on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Codec {
    /// Native postcard messages, acknowledged by an iris listener.
    Native,
    /// Pickles exactly as the Python seed client sends them.
    Pickle {
        /// The Python module of the class, e.g. `iris`.
        module: String,
        /// The class name, e.g. `Iris`.
        class: String,
    },
}

/// Runs `send`: reads the input, connects, streams, checks the count.
pub(crate) fn run(
    args: &ConnectionArgs,
    input: Input,
    repeat: u64,
    codec: &Codec,
) -> Result<(), Failure> {
    let target = Target::new(args)?;
    let address = target.address();

    // All of the input is validated before connecting: a bad row must not
    // leave half a data set at the listener.
    let name = input.to_string();
    let flowers = input
        .load()
        .with_context(|| format!("cannot read flowers from {name} (nothing was sent)"))?;
    let total = (flowers.len() as u64).checked_mul(repeat).ok_or_else(|| {
        anyhow!(
            "{} flowers times --repeat {repeat} is too many",
            flowers.len()
        )
    })?;

    let mut connection = target.connect()?;
    if let Codec::Pickle { module, class } = codec {
        return send_pickles(connection, &flowers, repeat, module, class, address, total);
    }
    let progress = progress_bar(total);
    let started = Instant::now();
    let outcome = stream(&mut connection, &flowers, repeat, &progress);
    progress.finish_and_clear();

    let acknowledged = outcome.map_err(|broken| broken.into_failure(address, total))?;
    let elapsed = started.elapsed().as_secs_f64();
    tracing::debug!(
        flowers = total,
        seconds = elapsed,
        per_second = total as f64 / elapsed.max(f64::MIN_POSITIVE),
        "streamed"
    );
    // The count is in; a failing shutdown changes nothing about delivery.
    if let Err(error) = connection.close() {
        tracing::debug!(error = %error, "closing the connection failed");
    }
    check_count(total, acknowledged)?;
    print_line(format_args!(
        "sent {} to {address}; {acknowledged} acknowledged",
        flower_count(total)
    ))?;
    Ok(())
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
    /// Says what is known: how many flowers may be lost, and how many never
    /// left, but not how many arrived, since nothing was acknowledged.
    fn into_failure(self, address: &str, total: u64) -> Failure {
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
            (_, 0) => "no flowers were sent".to_owned(),
            (1, 1) => "the flower was sent and may be lost".to_owned(),
            (handed, total) if handed == total => {
                format!("all {total} flowers were sent and up to {total} may be lost")
            }
            (handed, total) => format!(
                "{handed} of {} were sent and up to {handed} may be lost; the other {} not sent",
                flower_count(total),
                were(total - handed)
            ),
        };
        Failure::new(
            exit::NOT_ACKNOWLEDGED,
            cause.context(format!("{what}: {loss}")),
        )
    }
}

/// Sends every flower `repeat` times, then Close, and returns the count the
/// listener acknowledged.
///
/// This is the hot loop. `Connection::send` encodes into the connection's
/// write buffer, which is written out only when it fills (and by `recv`), so
/// a flower costs an encode and a bounds check: no allocation, no system
/// call. The input is reused for each repetition instead of copied.
fn stream(
    connection: &mut Connection,
    flowers: &[Iris],
    repeat: u64,
    progress: &ProgressBar,
) -> Result<u64, Broken> {
    let mut handed: u64 = 0;
    let mut next_progress = PROGRESS_STEP;
    let chunk_len = usize::try_from(PROGRESS_STEP).unwrap_or(usize::MAX);
    for _ in 0..repeat {
        // Chunks bound the time between progress checks when the input
        // itself is large; for a small input, one chunk is the whole input.
        for chunk in flowers.chunks(chunk_len) {
            for (index, &flower) in chunk.iter().enumerate() {
                if let Err(error) = connection.send(&Message::Iris(flower)) {
                    return Err(Broken {
                        handed: handed + index as u64 + 1,
                        error: BrokenBy::Wire(error),
                    });
                }
            }
            handed += chunk.len() as u64;
            if handed >= next_progress {
                progress.set_position(handed);
                next_progress = handed + PROGRESS_STEP;
            }
        }
    }
    progress.set_position(handed);
    progress.set_message("(waiting for the count)");

    let broken = |error| Broken { handed, error };
    connection
        .send(&Message::Close)
        .map_err(|error| broken(BrokenBy::Wire(error)))?;
    // recv flushes whatever is still buffered, then waits for the count.
    match connection.recv::<Reply>() {
        Ok(Reply::Closed { flowers }) => Ok(flowers),
        Ok(other) => Err(broken(BrokenBy::UnexpectedReply(other))),
        Err(error) => Err(broken(BrokenBy::Wire(error))),
    }
}

/// Sends what the seed's Python client sends: per flower a pickle of the
/// bytes of a pickle of `module.class(...)`, then a pickle of `'close'`.
///
/// A Python listener answers nothing, so success means only that every byte
/// was handed to the operating system and the connection closed cleanly;
/// the message says so.
fn send_pickles(
    mut connection: Connection,
    flowers: &[Iris],
    repeat: u64,
    module: &str,
    class: &str,
    address: &str,
    total: u64,
) -> Result<(), Failure> {
    let mut frame = Vec::with_capacity(256);
    let mut handed: u64 = 0;
    let result = (|| {
        for _ in 0..repeat {
            for flower in flowers {
                frame.clear();
                iris_app::python::write_flower_frame(&mut frame, flower, module, class);
                connection.send_bytes(&frame)?;
                handed += 1;
            }
        }
        connection.send_bytes(&iris_app::python::close_frame())?;
        connection.close()
    })();
    if let Err(error) = result {
        return Err(Broken {
            handed,
            error: BrokenBy::Wire(error),
        }
        .into_failure(address, total));
    }
    print_line(format_args!(
        "sent {} to {address} as pickles of {module}.{class}, then 'close'; a Python listener sends no acknowledgement, so delivery is not confirmed",
        flower_count(total)
    ))?;
    Ok(())
}

/// A progress bar on stderr for large inputs when stderr is a terminal;
/// otherwise a hidden one, so the send loop has a single code path.
fn progress_bar(total: u64) -> ProgressBar {
    if total < PROGRESS_MIN_FLOWERS || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let style = ProgressStyle::with_template(
        "{bar:30.cyan/blue} {human_pos}/{human_len} flowers, {rate}, eta {eta} {msg}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    // indicatif's own {per_sec} prints four decimals of flowers per second.
    .with_key("rate", |state: &ProgressState, out: &mut dyn fmt::Write| {
        let _ = write!(out, "{:.1}M/s", state.per_sec() / 1e6);
    });
    ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr()).with_style(style)
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
        .into_failure("localhost:6000", 1);
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
        let failure = broken(40).into_failure("localhost:6000", 150);
        assert_eq!(failure.code, exit::NOT_ACKNOWLEDGED);
        assert_eq!(
            format!("{:#}", failure.error),
            "the connection to localhost:6000 broke before the listener acknowledged: \
             40 of 150 flowers were sent and up to 40 may be lost; the other 110 were not sent: \
             the peer closed the connection"
        );

        let failure = broken(150).into_failure("localhost:6000", 150);
        assert!(
            failure
                .error
                .to_string()
                .ends_with("all 150 flowers were sent and up to 150 may be lost"),
            "{:#}",
            failure.error
        );
    }

    #[test]
    fn small_inputs_get_no_progress_bar() {
        assert!(progress_bar(PROGRESS_MIN_FLOWERS - 1).is_hidden());
    }
}
