//! One client connection, from authentication to close.

use std::sync::atomic::{AtomicBool, Ordering};

use iris_protocol::{Reply, Request, decode};
use iris_wire::{Connection, Error};

use crate::output::{ConnectionOutput, Counts, Output, StdoutClosed};

/// How a session ended without error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ending {
    /// The client sent `Close` and got its acknowledgement.
    Closed,
    /// The client disconnected between messages without `Close`.
    Disconnected,
    /// The listener is stopping and the grace period ran out: the session
    /// was ended between two reads, and a native client was told how many
    /// of its flowers were printed (`Reply::Closed` before its `Close`).
    Cut,
}

/// Why a session ended early.
#[derive(Debug)]
pub(crate) enum SessionError {
    /// The connection failed or the peer broke the protocol.
    Wire(Error),
    /// The peer sent a frame we cannot understand.
    Decode(iris_protocol::DecodeError),
    /// Our stdout is gone; nothing more can be reported.
    StdoutClosed,
    /// The peer sent nothing for the idle timeout.
    Idle,
}

impl std::fmt::Display for SessionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            // The kernel gave up on the peer: keepalive probes or our data
            // went unanswered (see `--keepalive`).
            SessionError::Wire(Error::Io(e)) if e.kind() == std::io::ErrorKind::TimedOut => write!(
                f,
                "the client stopped answering (TCP keepalive probes or data went unacknowledged: its host or network is down; --keepalive): {e}"
            ),
            SessionError::Wire(e) => e.fmt(f),
            SessionError::Decode(e) => write!(f, "bad message: {e}"),
            SessionError::StdoutClosed => f.write_str("stdout was closed"),
            SessionError::Idle => f.write_str("the client sent nothing for the idle timeout"),
        }
    }
}

impl From<StdoutClosed> for SessionError {
    fn from(_: StdoutClosed) -> Self {
        SessionError::StdoutClosed
    }
}

/// The result of a session: how it ended, and how many flowers it delivered
/// to stdout either way.
#[derive(Debug)]
pub(crate) struct Outcome {
    pub(crate) result: Result<Ending, SessionError>,
    pub(crate) flowers: Counts,
}

/// Serves one authenticated connection until it closes, or until `cut` is
/// raised (see [`Ending::Cut`]).
pub(crate) fn serve(
    connection: &mut Connection,
    id: u64,
    output: &Output,
    cut: &AtomicBool,
) -> Outcome {
    let mut lines = ConnectionOutput::new(output, id);
    let mut result = serve_requests(connection, &mut lines, cut);
    // Whatever happened, what was received is printed before we let go.
    if let Err(StdoutClosed) = lines.publish() {
        result = Err(SessionError::StdoutClosed);
    }
    Outcome {
        result,
        flowers: lines.received(),
    }
}

fn serve_requests(
    connection: &mut Connection,
    lines: &mut ConnectionOutput<'_>,
    cut: &AtomicBool,
) -> Result<Ending, SessionError> {
    // Whether the client speaks the native protocol, and so understands
    // a `Reply` (a Python client expects none).
    let mut native = false;
    loop {
        if !connection.has_buffered_frame() {
            // About to wait for the network: show what we have so far,
            // and send the replies queued (here, so that a client that does
            // not read them is told apart from an idle one).
            lines.publish()?;
            connection.flush().map_err(SessionError::Wire)?;
            if cut.load(Ordering::Relaxed) {
                if native {
                    // The client reads the count when its next write
                    // fails, or as the answer to its `Close`.
                    acknowledge(connection, lines)?;
                }
                return Ok(Ending::Cut);
            }
        }
        let frame = match connection.recv_frame() {
            Ok(frame) => frame,
            Err(Error::Closed) => return Ok(Ending::Disconnected),
            // Replies were flushed above: only the read can time out here.
            Err(Error::Timeout { .. }) => return Err(SessionError::Idle),
            Err(e) => return Err(SessionError::Wire(e)),
        };
        match decode(frame).map_err(SessionError::Decode)? {
            Request::Flower(iris) => {
                native = true;
                lines.flower(&iris)?;
            }
            Request::PythonFlower(iris) => lines.python_flower(&iris)?,
            Request::Ping => {
                native = true;
                connection.send(&Reply::Pong).map_err(SessionError::Wire)?;
            }
            Request::Close {
                acknowledge: wanted,
            } => {
                if wanted {
                    acknowledge(connection, lines)?;
                } else {
                    lines.publish()?;
                }
                return Ok(Ending::Closed);
            }
        }
    }
}

/// Publishes what was received, then sends its count: the acknowledgement
/// promises that every flower it counts was printed.
fn acknowledge(
    connection: &mut Connection,
    lines: &mut ConnectionOutput<'_>,
) -> Result<(), SessionError> {
    lines.publish()?;
    let flowers = lines.received().total();
    connection
        .send(&Reply::Closed { flowers })
        .and_then(|()| connection.flush())
        .map_err(SessionError::Wire)
}
