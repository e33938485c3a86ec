//! What both adapters do around the handshake state machine, apart from
//! waiting for bytes: queueing its output, screening and feeding it the
//! peer's frames, and naming read failures. Sans I/O, so that the blocking
//! and the tokio adapter cannot drift apart.

use crate::connection::handshake_read_error;
use crate::frame::FrameEncoder;
use crate::handshake::{Handshake, Role};
use crate::{AuthError, Error};

/// A check every frame from the peer passes before the handshake sees it
/// (the client's refusal of reflected challenges).
pub(crate) type Screen = fn(&[u8]) -> Result<(), AuthError>;

/// Lets every frame through.
pub(crate) fn no_screen(_: &[u8]) -> Result<(), AuthError> {
    Ok(())
}

/// One handshake being driven by an adapter:
///
/// ```text
/// while !driver.queue_outgoing(encoder) {
///     frame = read a frame (map errors with driver.read_error)
///     driver.receive(frame, encoder)?   // on error: flush what is queued, best effort
/// }
/// flush
/// ```
pub(crate) struct HandshakeDriver {
    handshake: Handshake,
    screen: Screen,
    received_any: bool,
}

impl HandshakeDriver {
    pub(crate) fn new(handshake: Handshake, screen: Screen) -> Self {
        HandshakeDriver {
            handshake,
            screen,
            received_any: false,
        }
    }

    /// Queues what the handshake has to send; true once it is complete.
    pub(crate) fn queue_outgoing(&mut self, encoder: &mut FrameEncoder) -> bool {
        encoder.push_framed(&self.handshake.take_outgoing());
        self.handshake.is_complete()
    }

    /// Whether the peer's challenge carried the iris mark: on the client
    /// side, whether the listener is iris rather than CPython.
    pub(crate) fn peer_is_iris_listener(&self) -> bool {
        self.handshake.peer_is_iris_listener()
    }

    /// Does the sealing work that can overlap the peer's: call it after
    /// flushing, before waiting.
    pub(crate) fn prepare(&mut self) -> Result<(), Error> {
        self.handshake.prepare().map_err(Error::from)
    }

    /// The sealed session's keys, once the handshake is complete.
    pub(crate) fn take_session(&mut self) -> Option<crate::seal::Session> {
        self.handshake.take_session()
    }

    /// The error to report for a failed read of the peer's next frame.
    pub(crate) fn read_error(&self, error: Error) -> Error {
        let before_challenge = self.handshake.role() == Role::Client && !self.received_any;
        handshake_read_error(error, before_challenge)
    }

    /// Screens the peer's frame and feeds it to the handshake. On failure
    /// the verdict for the peer (`#FAILURE#`) is queued: flush it if the
    /// peer still listens.
    pub(crate) fn receive(
        &mut self,
        frame: &[u8],
        encoder: &mut FrameEncoder,
    ) -> Result<(), Error> {
        self.received_any = true;
        let result = (self.screen)(frame).and_then(|()| self.handshake.receive(frame));
        if let Err(reason) = result {
            encoder.push_framed(&self.handshake.take_outgoing());
            return Err(reason.into());
        }
        Ok(())
    }
}
