//! The write side of one Socket.IO socket, as a [`Transport`] of the shared write loop.
//!
//! Frames are the shared `42["event",data]` event packets the hub encoded once per audience
//! (Switchboard's own websocket transport writes them as they are). socketioxide 0.18 has no
//! public API taking a pre-encoded packet, so each frame loses its `42` and is split back into
//! its event name and a borrowed raw JSON value and emitted; the payload is copied, never
//! re-serialized (docs/socketio.md has the measurement). This serves polling sockets and those
//! upgraded from polling.

use std::time::Duration;

use bytes::Bytes;
use socketioxide::extract::SocketRef;
use socketioxide::{SendError, SocketError};
use switchboard_core::codes::CloseCode;
use switchboard_core::socketio::split_event_packet;

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
/// that is not an event packet is a bug upstream, logged and skipped.
pub fn emit_frame(socket: &SocketRef, frame: &[u8]) -> Result<(), EmitError> {
    if frame.is_empty() {
        return Ok(());
    }
    let Some((event, data, meta)) = split_event_packet(frame) else {
        tracing::error!(bytes = frame.len(), "not a socket.io event packet; skipped");
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
pub struct SocketSink {
    socket: SocketRef,
    /// How long a disconnect may wait for room in socketioxide's buffer (`limits.write_timeout_ms`).
    stall: Duration,
}

impl SocketSink {
    /// The write side of `socket`.
    pub fn new(socket: SocketRef, stall: Duration) -> Self {
        Self { socket, stall }
    }
}

/// How often a disconnect refused for a full buffer is tried again. socketioxide tells nobody
/// when its buffer drains (a polling client collects it with its next request), so it is asked.
const DISCONNECT_RETRY: Duration = Duration::from_millis(50);

impl Transport for SocketSink {
    // Kept as before the shared loop: a Socket.IO socket ending on the server's side gets an
    // `error` event with the reason instead.
    const FLUSH_ON_CLOSE: bool = false;

    async fn write_many(&mut self, frames: &mut Vec<Bytes>) -> Result<(), WriteError> {
        for frame in frames.drain(..) {
            match emit_frame(&self.socket, &frame) {
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
    ///
    /// socketioxide refuses to disconnect a socket whose buffer is full (the disconnect packet
    /// does not fit), which is exactly the state of a slow consumer: the socket then stayed
    /// connected, pinged and silent. So the disconnect is tried again until the buffer has room
    /// (a polling client drains it with its next request) or the socket is gone, for at most
    /// `limits.write_timeout_ms`; after that Engine.IO's heartbeat ends a client that reads
    /// nothing.
    async fn close(self, code: CloseCode) {
        let socket = self.socket;
        if matches!(code, CloseCode::Normal | CloseCode::Restarting) || !socket.connected() {
            return;
        }
        let reason = serde_json::json!({
            "code": code.code(),
            "message": code.reason(),
            "reconnect": code.should_reconnect(),
        });
        let deadline = tokio::time::Instant::now() + self.stall;
        if code != CloseCode::SlowConsumer {
            let _ = socket.emit("error", &reason);
        }
        loop {
            match socket.clone().disconnect() {
                Err(SocketError::InternalChannelFull)
                    if tokio::time::Instant::now() < deadline && socket.connected() =>
                {
                    tokio::time::sleep(DISCONNECT_RETRY).await;
                }
                Err(SocketError::InternalChannelFull) => {
                    tracing::info!("socket.io buffer still full; left to the heartbeat");
                    return;
                }
                _ => return,
            }
        }
    }
}
