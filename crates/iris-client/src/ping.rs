//! `iris-client ping`: checks that a listener is up and shares our key,
//! and measures round-trip times.
//!
//! Pings go back to back, not one per second like ICMP ping: this is a
//! health check and a latency probe, and waiting would only slow scripts.
//! Every exchange is one `Message::Ping` / `Reply::Pong`; at the end a
//! `Message::Close` / `Reply::Closed` pair lets the listener log a clean
//! close instead of a dropped connection.

use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use iris_app::ConnectionArgs;
use iris_protocol::{Message, Reply};
use iris_wire::Connection;

use crate::connect::{Target, print_line};
use crate::exit::{self, Failure};

/// Runs `ping`: `count` round trips, each waiting at most `timeout`.
pub(crate) fn run(args: &ConnectionArgs, count: u32, timeout: Duration) -> Result<(), Failure> {
    let target = Target::new(args)?;
    let address = target.address();
    let mut connection = target.connect()?;
    if !connection.peer_is_iris_listener() {
        return Err(not_iris(connection, address));
    }
    // Without a timeout a listener that accepts but never answers would
    // hang a health check forever.
    connection
        .set_read_timeout(Some(timeout))
        .map_err(anyhow::Error::new)
        .context("cannot set the reply timeout")?;

    // Capped: a huge --count must not reserve memory up front.
    let mut times = Vec::with_capacity(count.min(1 << 10) as usize);
    for _ in 0..count {
        let time =
            round_trip(&mut connection).with_context(|| format!("no pong from {address}"))?;
        print_line(format_args!(
            "pong from {address}: time={:.3} ms",
            millis(time)
        ))?;
        times.push(time);
    }
    if let Some((min, median, max)) = summary(&mut times).filter(|_| count > 1) {
        print_line(format_args!(
            "{count} pongs from {address}: min/median/max = {:.3}/{:.3}/{:.3} ms",
            millis(min),
            millis(median),
            millis(max)
        ))?;
    }
    close(connection).with_context(|| format!("{address} did not acknowledge the close"))?;
    Ok(())
}

/// A listener without the iris mark is CPython's: it would take a Ping
/// frame for a pickle and fail. Say goodbye as the seed's client does
/// (`'close'`), so its program ends cleanly, and say what is known.
fn not_iris(mut connection: Connection, address: &str) -> Failure {
    let goodbye = connection
        .send_bytes(&iris_protocol::python::close_frame())
        .and_then(|()| connection.close());
    if let Err(error) = goodbye {
        tracing::debug!(error = %error, "closing the connection failed");
    }
    Failure::new(
        exit::NOT_IRIS,
        anyhow!(
            "{address} is up and the key is right, but it is not an iris listener \
             (its challenge has no iris mark): Python listeners do not answer pings; \
             `iris-client send` sends to it as the seed's client does"
        ),
    )
}

/// One Ping / Pong exchange and its duration.
fn round_trip(connection: &mut Connection) -> anyhow::Result<Duration> {
    let start = Instant::now();
    connection
        .send(&Message::Ping)
        .map_err(anyhow::Error::new)?;
    // recv flushes the Ping before waiting, so this times the whole trip.
    match connection.recv::<Reply>().map_err(anyhow::Error::new)? {
        Reply::Pong => Ok(start.elapsed()),
        other => bail!("the listener answered Ping with {other:?}"),
    }
}

/// Sends Close, waits for Closed, and shuts the connection down.
fn close(mut connection: Connection) -> anyhow::Result<()> {
    connection
        .send(&Message::Close)
        .map_err(anyhow::Error::new)?;
    match connection.recv::<Reply>().map_err(anyhow::Error::new)? {
        Reply::Closed { flowers } => {
            tracing::debug!(flowers, "the listener acknowledged the close");
        }
        other => return Err(anyhow!("the listener answered Close with {other:?}")),
    }
    connection.close().map_err(anyhow::Error::new)?;
    Ok(())
}

/// Minimum, median and maximum; the median of an even count is the mean of
/// the middle two. `None` for no times.
fn summary(times: &mut [Duration]) -> Option<(Duration, Duration, Duration)> {
    times.sort_unstable();
    let (&min, &max) = (times.first()?, times.last()?);
    let middle = times.len() / 2;
    let median = if times.len() % 2 == 1 {
        times[middle]
    } else {
        (times[middle - 1] + times[middle]) / 2
    };
    Some((min, median, max))
}

fn millis(time: Duration) -> f64 {
    time.as_secs_f64() * 1e3
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(values: &[u64]) -> Vec<Duration> {
        values.iter().map(|&v| Duration::from_millis(v)).collect()
    }

    #[test]
    fn summary_of_odd_and_even_counts() {
        let d = Duration::from_millis;
        assert_eq!(summary(&mut ms(&[3, 1, 2])), Some((d(1), d(2), d(3))));
        assert_eq!(summary(&mut ms(&[4, 1, 2, 9])), Some((d(1), d(3), d(9))));
        assert_eq!(summary(&mut ms(&[5])), Some((d(5), d(5), d(5))));
        assert_eq!(summary(&mut []), None);
    }

    #[test]
    fn times_print_in_milliseconds() {
        assert_eq!(
            format!("{:.3}", millis(Duration::from_micros(123))),
            "0.123"
        );
    }
}
