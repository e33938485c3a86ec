//! The byte streams a [`Connection`](crate::Connection) runs over.

use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, TcpStream};
#[cfg(unix)]
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
#[cfg(unix)]
use std::os::unix::net::UnixStream;
use std::time::Duration;

/// A byte stream a blocking [`Connection`](crate::Connection) can run over:
/// anything `Read + Write` that can also bound how long one read or write
/// blocks.
///
/// The timeouts are how the connection enforces the handshake deadline and
/// the read and write timeouts of [`Options`](crate::Options). It is
/// implemented for [`TcpStream`], [`UnixStream`] and [`Stream`]; for a
/// stream of your own (a TLS stream, a pipe), forward to the socket
/// underneath. A stream that cannot time out should return an
/// [`io::ErrorKind::Unsupported`] error for `Some(_)`: authenticating with a
/// handshake timeout then fails rather than silently waiting forever, and
/// `Options::new().with_handshake_timeout(None)` opts out knowingly.
pub trait Transport: Read + Write {
    /// Bounds how long one read may block (`None`: forever).
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()>;

    /// Bounds how long one write may block (`None`: forever).
    fn set_write_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()>;

    /// Makes reads return [`io::ErrorKind::WouldBlock`] instead of waiting,
    /// or blocking again. Only [`Connection::poll`](crate::Connection::poll)
    /// with a zero timeout uses it; the default says it is unsupported.
    fn set_nonblocking(&mut self, nonblocking: bool) -> io::Result<()> {
        let _ = nonblocking;
        Err(io::ErrorKind::Unsupported.into())
    }

    /// Ends both directions, so the peer sees a clean end of stream. The
    /// default does nothing: dropping the stream closes it.
    fn shutdown(&mut self) -> io::Result<()> {
        Ok(())
    }

    /// Writes all of `bytes`, which more will soon follow, letting the
    /// transport hold them back to leave together with those: one packet
    /// and one write fewer on the way to the peer. Returns whether they may
    /// be held; [`release`](Transport::release) then sends them at once.
    /// TCP on Linux holds them (`MSG_MORE`) until the next write, a
    /// release, the end of the stream, or at most about 200 ms; the
    /// default writes them at once.
    fn write_ahead(&mut self, bytes: &[u8]) -> io::Result<bool> {
        self.write_all(bytes).map(|()| false)
    }

    /// Sends at once what [`write_ahead`](Transport::write_ahead) held.
    fn release(&mut self) -> io::Result<()> {
        Ok(())
    }

    /// Reads what has already arrived, without waiting and without
    /// changing the stream's blocking mode: [`io::ErrorKind::WouldBlock`]
    /// when nothing has. A connection tries it before a read that would
    /// first have to set the stream's timeout, and skips that system call
    /// when the bytes are already there. The default says it cannot
    /// ([`io::ErrorKind::Unsupported`]), and the connection then sets the
    /// timeout and reads as usual.
    fn read_if_ready(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let _ = buf;
        Err(io::ErrorKind::Unsupported.into())
    }
}

/// `recv` with `MSG_DONTWAIT`: one system call, the socket left blocking.
#[cfg(unix)]
fn recv_if_ready(socket: impl AsFd, buf: &mut [u8]) -> io::Result<usize> {
    rustix::net::recv(socket, buf, rustix::net::RecvFlags::DONTWAIT)
        .map(|(received, _)| received)
        .map_err(io::Error::from)
}

impl Transport for TcpStream {
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        TcpStream::set_read_timeout(self, timeout)
    }

    fn set_write_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        TcpStream::set_write_timeout(self, timeout)
    }

    fn set_nonblocking(&mut self, nonblocking: bool) -> io::Result<()> {
        TcpStream::set_nonblocking(self, nonblocking)
    }

    fn shutdown(&mut self) -> io::Result<()> {
        TcpStream::shutdown(self, Shutdown::Both)
    }

    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn write_ahead(&mut self, mut bytes: &[u8]) -> io::Result<bool> {
        use rustix::net::SendFlags;
        while !bytes.is_empty() {
            match rustix::net::send(&*self, bytes, SendFlags::MORE | SendFlags::NOSIGNAL) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => bytes = &bytes[n..],
                Err(rustix::io::Errno::INTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(true)
    }

    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn release(&mut self) -> io::Result<()> {
        // Clearing TCP_CORK (off already) pushes what MSG_MORE held.
        socket2::SockRef::from(&*self).set_tcp_cork(false)
    }

    #[cfg(unix)]
    fn read_if_ready(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        recv_if_ready(&*self, buf)
    }
}

#[cfg(unix)]
impl Transport for UnixStream {
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        UnixStream::set_read_timeout(self, timeout)
    }

    fn set_write_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        UnixStream::set_write_timeout(self, timeout)
    }

    fn set_nonblocking(&mut self, nonblocking: bool) -> io::Result<()> {
        UnixStream::set_nonblocking(self, nonblocking)
    }

    fn shutdown(&mut self) -> io::Result<()> {
        UnixStream::shutdown(self, Shutdown::Both)
    }

    fn read_if_ready(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        recv_if_ready(&*self, buf)
    }
}

/// A TCP or Unix-domain socket: what [`Listener`](crate::Listener) and
/// [`Client`](crate::Client) connect, and the default stream of a
/// [`Connection`](crate::Connection).
#[derive(Debug)]
#[non_exhaustive]
pub enum Stream {
    /// A TCP connection.
    Tcp(TcpStream),
    /// A Unix-domain stream socket.
    #[cfg(unix)]
    Unix(UnixStream),
}

/// Forwards a call to whichever socket the stream holds.
macro_rules! forward {
    ($self:ident, $s:ident => $call:expr) => {
        match $self {
            Stream::Tcp($s) => $call,
            #[cfg(unix)]
            Stream::Unix($s) => $call,
        }
    };
}

impl Transport for Stream {
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        forward!(self, s => Transport::set_read_timeout(s, timeout))
    }

    fn set_write_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        forward!(self, s => Transport::set_write_timeout(s, timeout))
    }

    fn set_nonblocking(&mut self, nonblocking: bool) -> io::Result<()> {
        forward!(self, s => Transport::set_nonblocking(s, nonblocking))
    }

    fn shutdown(&mut self) -> io::Result<()> {
        forward!(self, s => Transport::shutdown(s))
    }

    fn write_ahead(&mut self, bytes: &[u8]) -> io::Result<bool> {
        forward!(self, s => Transport::write_ahead(s, bytes))
    }

    fn release(&mut self) -> io::Result<()> {
        forward!(self, s => Transport::release(s))
    }

    fn read_if_ready(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        forward!(self, s => Transport::read_if_ready(s, buf))
    }
}

impl Stream {
    /// Reads what has already arrived, without waiting: `WouldBlock` when
    /// nothing has. The socket stays blocking; where the transport cannot
    /// read without waiting in one call, it is switched to non-blocking
    /// and back.
    pub(crate) fn read_arrived(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match Transport::read_if_ready(self, buf) {
            Err(e) if e.kind() == io::ErrorKind::Unsupported => {
                self.set_nonblocking(true)?;
                let result = self.read(buf);
                self.set_nonblocking(false)?;
                result
            }
            result => result,
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        forward!(self, s => s.read(buf))
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        forward!(self, s => s.write(buf))
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        forward!(self, s => s.write_vectored(bufs))
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(unix)]
impl AsFd for Stream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        forward!(self, s => s.as_fd())
    }
}

#[cfg(unix)]
impl AsRawFd for Stream {
    fn as_raw_fd(&self) -> RawFd {
        forward!(self, s => s.as_raw_fd())
    }
}
