//! The bytes `send` streams from, and the signals that stop it.
//!
//! A regular file is read directly: it always has bytes ready, so the
//! sender batches until its buffer fills. Anything else (a pipe, a
//! terminal, a socket, a FIFO) is read by a helper thread that hands over
//! whatever each `read` returned, so the sender can tell "nothing has
//! arrived yet" from "more is coming": when nothing is ready, [`Feed`] calls
//! its `before_waiting` hook (the sender flushes what it queued) and only
//! then waits. A slow feed is delivered row by row, a fast one in 64 KiB
//! batches, and the per-row path never makes a system call of its own.
//!
//! Memory is bounded whatever the input's size: the thread reads at most
//! [`CHUNK`] bytes at a time and at most [`CHUNKS_AHEAD`] wait unread.

use std::cell::Cell;
use std::fs::File;
use std::io::{self, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, sync_channel};

use anyhow::Context;

/// The most the reading thread takes from the input per `read`.
pub(crate) const CHUNK: usize = 64 << 10;

/// Chunks read ahead of the parser before the reading thread waits.
const CHUNKS_AHEAD: usize = 4;

/// What the reading thread (or the signal thread, to wake the reader)
/// hands over.
pub(crate) enum Chunk {
    Data(Vec<u8>),
    End,
    Failed(io::Error),
    /// A signal asked to stop: only wakes a waiting [`Feed`].
    Wake,
}

/// Whether a signal asked `send` to stop, and which.
#[derive(Debug, Default)]
pub(crate) struct Stop {
    signal: AtomicI32,
}

impl Stop {
    /// The signal that asked to stop, if one did.
    pub(crate) fn requested(&self) -> Option<i32> {
        match self.signal.load(Ordering::Relaxed) {
            0 => None,
            signal => Some(signal),
        }
    }
}

/// Catches SIGINT and SIGTERM from now on: the first sets `stop` (and
/// wakes a [`Feed`] waiting on `wake`), so that `send` stops reading,
/// closes and reports; a second one exits at once, as 128 + its number.
pub(crate) fn catch_signals(
    stop: Arc<Stop>,
    wake: Option<SyncSender<Chunk>>,
) -> anyhow::Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals =
        signal_hook::iterator::Signals::new([SIGINT, SIGTERM]).context("cannot handle signals")?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for signal in signals.forever() {
                if stop.signal.swap(signal, Ordering::Relaxed) != 0 {
                    std::process::exit(128 + signal);
                }
                if let Some(wake) = &wake {
                    // A full channel means the reader is not waiting.
                    let _ = wake.try_send(Chunk::Wake);
                }
            }
        })
        .context("cannot start the signal thread")?;
    Ok(())
}

/// The error a [`Feed`] returns once a signal asked to stop; the caller
/// checks [`Stop::requested`] rather than this error's text.
fn stopped() -> io::Error {
    io::Error::other("stopped by a signal")
}

enum Source {
    File(File),
    Thread {
        chunks: Receiver<Chunk>,
        chunk: Vec<u8>,
        at: usize,
        ended: bool,
    },
}

/// The input as a `Read` for the parsers, counting the bytes it delivers.
pub(crate) struct Feed<'a> {
    source: Source,
    stop: &'a Stop,
    before_waiting: &'a dyn Fn() -> io::Result<()>,
    delivered: &'a Cell<u64>,
}

/// How to read an input: a regular file directly, anything else through a
/// thread.
pub(crate) enum Opened {
    /// A regular file, and its size in bytes.
    File(File, u64),
    /// Anything else, read by a thread into the receiver; the sender wakes
    /// the receiving [`Feed`] (see [`catch_signals`]).
    Stream(Receiver<Chunk>, SyncSender<Chunk>),
}

impl Opened {
    /// `file` read directly if it is a regular file, else by a thread.
    pub(crate) fn new(file: File) -> io::Result<Opened> {
        let metadata = file.metadata()?;
        if metadata.is_file() {
            return Ok(Opened::File(file, metadata.len()));
        }
        Ok(Opened::stream(file))
    }

    /// Standard input: a redirected regular file is read like a file
    /// argument (so its size shows in the progress bar).
    pub(crate) fn stdin() -> io::Result<Opened> {
        use std::os::fd::AsFd;
        let stdin = io::stdin();
        let file = File::from(stdin.as_fd().try_clone_to_owned()?);
        if file.metadata()?.is_file() {
            return Opened::new(file);
        }
        // The process's own stdin handle, so nothing else can be reading
        // through its buffer.
        Ok(Opened::stream(stdin))
    }

    fn stream(input: impl Read + Send + 'static) -> Opened {
        let (sender, receiver) = sync_channel(CHUNKS_AHEAD);
        let wake = sender.clone();
        spawn_reader(input, sender);
        Opened::Stream(receiver, wake)
    }

    /// The size of a regular file, `None` for a stream.
    pub(crate) fn size(&self) -> Option<u64> {
        match self {
            Opened::File(_, size) => Some(*size),
            Opened::Stream(..) => None,
        }
    }

    /// The sender that wakes a waiting [`Feed`], for [`catch_signals`].
    pub(crate) fn waker(&self) -> Option<SyncSender<Chunk>> {
        match self {
            Opened::File(..) => None,
            Opened::Stream(_, wake) => Some(wake.clone()),
        }
    }

    /// The `Read` the parsers read from.
    pub(crate) fn feed<'a>(
        self,
        stop: &'a Stop,
        before_waiting: &'a dyn Fn() -> io::Result<()>,
        delivered: &'a Cell<u64>,
    ) -> Feed<'a> {
        let source = match self {
            Opened::File(file, _) => Source::File(file),
            Opened::Stream(chunks, _) => Source::Thread {
                chunks,
                chunk: Vec::new(),
                at: 0,
                ended: false,
            },
        };
        Feed {
            source,
            stop,
            before_waiting,
            delivered,
        }
    }
}

/// Reads `input` on its own thread, passing on what each `read` returned.
/// The thread ends at the end of the input, on an error, or when the feed
/// is dropped; a thread blocked in `read` ends with the process.
fn spawn_reader(mut input: impl Read + Send + 'static, chunks: SyncSender<Chunk>) {
    let on_failure = chunks.clone();
    let spawned = std::thread::Builder::new()
        .name("input".into())
        .spawn(move || {
            let mut buffer = vec![0; CHUNK];
            loop {
                let chunk = match input.read(&mut buffer) {
                    Ok(0) => Chunk::End,
                    Ok(n) => Chunk::Data(buffer[..n].to_vec()),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => Chunk::Failed(e),
                };
                let last = !matches!(chunk, Chunk::Data(_));
                if chunks.send(chunk).is_err() || last {
                    return;
                }
            }
        });
    if let Err(e) = spawned {
        // The feed then reads this error instead of the input.
        let _ = on_failure.try_send(Chunk::Failed(e));
    }
}

impl Read for Feed<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // Checked once per buffer refill, not per row: cheap, and prompt.
        if self.stop.requested().is_some() {
            return Err(stopped());
        }
        let n = match &mut self.source {
            Source::File(file) => file.read(buf)?,
            Source::Thread {
                chunks,
                chunk,
                at,
                ended,
            } => loop {
                if *at < chunk.len() {
                    let n = buf.len().min(chunk.len() - *at);
                    buf[..n].copy_from_slice(&chunk[*at..*at + n]);
                    *at += n;
                    break n;
                }
                if *ended {
                    break 0;
                }
                let next = match chunks.try_recv() {
                    Ok(next) => next,
                    Err(TryRecvError::Empty) => {
                        // Nothing has arrived: whatever is queued goes out
                        // now, before this waits for the input.
                        (self.before_waiting)()?;
                        chunks.recv().unwrap_or(Chunk::End)
                    }
                    Err(TryRecvError::Disconnected) => Chunk::End,
                };
                match next {
                    Chunk::Data(data) => {
                        *chunk = data;
                        *at = 0;
                    }
                    Chunk::End => *ended = true,
                    Chunk::Failed(e) => {
                        *ended = true;
                        return Err(e);
                    }
                    Chunk::Wake => {
                        if self.stop.requested().is_some() {
                            return Err(stopped());
                        }
                    }
                }
            },
        };
        self.delivered.set(self.delivered.get() + n as u64);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::*;

    fn pipe_of(parts: Vec<Chunk>) -> Opened {
        let (sender, receiver) = sync_channel(parts.len() + 1);
        for part in parts {
            sender.send(part).expect("queued");
        }
        Opened::Stream(receiver, sender)
    }

    #[test]
    fn a_stream_is_read_through_and_flushed_only_before_waiting() {
        let stop = Stop::default();
        let opened = pipe_of(vec![
            Chunk::Data(b"ab".to_vec()),
            Chunk::Data(b"c".to_vec()),
        ]);
        let writer = opened.waker().expect("a stream wakes");
        let waits = RefCell::new(0);
        // The input's next part comes only once the feed is about to wait.
        let hook = || {
            *waits.borrow_mut() += 1;
            writer.send(Chunk::End).expect("queued");
            Ok(())
        };
        let delivered = Cell::new(0);
        let mut feed = opened.feed(&stop, &hook, &delivered);
        let mut text = [0; 8];
        assert_eq!(feed.read(&mut text).expect("ab"), 2);
        assert_eq!(feed.read(&mut text).expect("c"), 1);
        assert_eq!(*waits.borrow(), 0, "data was ready: no flush");
        assert_eq!(feed.read(&mut text).expect("end"), 0);
        assert_eq!(
            *waits.borrow(),
            1,
            "nothing was ready: flushed, then waited"
        );
        assert_eq!(delivered.get(), 3);
    }

    #[test]
    fn a_signal_stops_a_waiting_feed_and_an_error_ends_it() {
        let stop = Stop::default();
        let hook = || Ok(());
        let delivered = Cell::new(0);
        let opened = pipe_of(vec![Chunk::Wake]);
        let mut feed = opened.feed(&stop, &hook, &delivered);
        stop.signal.store(2, Ordering::Relaxed);
        assert!(feed.read(&mut [0; 4]).is_err());
        assert_eq!(stop.requested(), Some(2));

        let stop = Stop::default();
        let failing = || Err(io::Error::other("the connection broke"));
        let opened = pipe_of(vec![]);
        let _writer = opened.waker();
        let mut feed = opened.feed(&stop, &failing, &delivered);
        let error = feed.read(&mut [0; 4]).expect_err("the hook's error");
        assert_eq!(error.to_string(), "the connection broke");

        let opened = pipe_of(vec![Chunk::Failed(io::Error::other("EIO"))]);
        let mut feed = opened.feed(&stop, &hook, &delivered);
        assert!(feed.read(&mut [0; 4]).is_err());
        assert_eq!(feed.read(&mut [0; 4]).expect("ended"), 0);
    }
}
