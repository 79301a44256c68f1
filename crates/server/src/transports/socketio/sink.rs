//! The write side of one Socket.IO socket, as a [`Transport`] of the shared write loop.
//!
//! Frames are the shared `["event",data]` argument arrays the hub encoded once per audience.
//! socketioxide 0.18 has no public API taking a pre-encoded packet, so each frame is split back
//! into its event name and a borrowed raw JSON value and emitted; the payload is copied, never
//! re-serialized (docs/socketio.md has the measurement).

use bytes::Bytes;
use socketioxide::extract::SocketRef;
use socketioxide::{SendError, SocketError};
use switchboard_core::codes::CloseCode;
use switchboard_core::socketio::split_event_args;

use crate::transports::write_loop::{Transport, WriteError};

/// Why a frame could not be emitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EmitError {
    /// socketioxide's own per-socket buffer is full: the client does not keep up.
    #[error("socket buffer full")]
    Full,
    /// The socket is gone.
    #[error("socket closed")]
    Closed,
}

/// Emits one shared frame. Empty frames (replies with nothing to say) are skipped; a frame
/// that is not an argument array is a bug upstream, logged and skipped.
pub fn emit_frame(socket: &SocketRef, frame: &[u8]) -> Result<(), EmitError> {
    if frame.is_empty() {
        return Ok(());
    }
    let Some((event, data, meta)) = split_event_args(frame) else {
        tracing::error!(
            bytes = frame.len(),
            "not a socket.io argument array; skipped"
        );
        return Ok(());
    };
    let sent = match meta {
        // A tuple is expanded into separate arguments: `(data, {channel, offset, epoch})`.
        Some(meta) => socket.emit(event.as_ref(), &(data, meta)),
        None => socket.emit(event.as_ref(), data),
    };
    match sent {
        Ok(()) => Ok(()),
        Err(SendError::Socket(SocketError::InternalChannelFull)) => Err(EmitError::Full),
        Err(SendError::Socket(SocketError::Closed)) => Err(EmitError::Closed),
        Err(e) => {
            tracing::error!(error = %e, "emit failed; skipped");
            Ok(())
        }
    }
}

/// A socket as the write loop sees it. Engine.IO keeps the connection alive itself, so this
/// transport has no heartbeat of its own.
pub struct SocketSink(pub SocketRef);

impl Transport for SocketSink {
    // Kept as before the shared loop: a Socket.IO socket ending on the server's side gets an
    // `error` event with the reason instead.
    const FLUSH_ON_CLOSE: bool = false;

    async fn write_many(&mut self, frames: &mut Vec<Bytes>) -> Result<(), WriteError> {
        for frame in frames.drain(..) {
            match emit_frame(&self.0, &frame) {
                Ok(()) => {}
                Err(EmitError::Full) => return Err(WriteError::Close(CloseCode::SlowConsumer)),
                Err(EmitError::Closed) => return Err(WriteError::Close(CloseCode::Normal)),
            }
        }
        Ok(())
    }

    /// `SocketIo::close` (started by the transport on shutdown) closes the transports, so
    /// clients see a transport close and reconnect, to another node if need be. A server-side
    /// end other than that (slow consumer, rate limit, token expiry) says why with an `error`
    /// event carrying the native close code, then disconnects the socket from the namespace
    /// (the client sees "io server disconnect").
    async fn close(self, code: CloseCode) {
        let socket = self.0;
        if matches!(code, CloseCode::Normal | CloseCode::Restarting) || !socket.connected() {
            return;
        }
        let reason = serde_json::json!({
            "code": code.code(),
            "message": code.reason(),
            "reconnect": code.should_reconnect(),
        });
        if code != CloseCode::SlowConsumer {
            let _ = socket.emit("error", &reason);
        }
        let _ = socket.disconnect();
    }
}
