//! The writer task of one Socket.IO socket: drains the bounded outbound queue through the
//! [`StreamGate`] and emits each frame on the socket.
//!
//! Frames are the shared `["event",data]` argument arrays the hub encoded once per audience.
//! socketioxide 0.18 has no public API taking a pre-encoded packet, so each frame is split back
//! into its event name and a borrowed raw JSON value and emitted; the payload is copied, never
//! re-serialized (docs/socketio.md has the measurement).

use std::sync::Arc;

use socketioxide::extract::SocketRef;
use socketioxide::{SendError, SocketError};
use switchboard_core::codes::CloseCode;
use switchboard_core::gate::StreamGate;
use switchboard_core::hub::{ConnectionHandle, Outbound};
use switchboard_core::socketio::split_event_args;
use tokio::sync::mpsc;

use crate::node::Node;

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

/// Runs until the connection closes (client gone, slow consumer) or the node shuts down.
pub async fn write_loop(
    node: Arc<Node>,
    socket: SocketRef,
    mut rx: mpsc::Receiver<Outbound>,
    handle: Arc<ConnectionHandle>,
) {
    let mut gate = StreamGate::default();
    let mut out = Vec::new();
    // Created once and polled by reference, not per delivery (see the native writer).
    let closed = handle.writer_closed();
    let shutdown = node.shutting_down();
    tokio::pin!(closed, shutdown);
    let code = 'outer: loop {
        tokio::select! {
            biased;
            code = &mut closed => break code,
            // `SocketIo::close` (started by the transport on shutdown) closes the transports, so
            // clients see a transport close and reconnect, to another node if need be.
            () = &mut shutdown => break CloseCode::Restarting,
            item = rx.recv() => {
                let Some(item) = item else { break CloseCode::Normal };
                gate.process(item, &mut out);
                while out.len() < 64 {
                    match rx.try_recv() {
                        Ok(item) => gate.process(item, &mut out),
                        Err(_) => break,
                    }
                }
                for frame in out.drain(..) {
                    match emit_frame(&socket, &frame) {
                        Ok(()) => {}
                        Err(EmitError::Full) => break 'outer CloseCode::SlowConsumer,
                        Err(EmitError::Closed) => break 'outer CloseCode::Normal,
                    }
                }
            }
        }
    };
    handle.close(code);
    tracing::debug!(code = code.code(), "socket.io writer ending");
    // A server-side end other than shutdown (slow consumer, rate limit, token expiry): say why
    // with an `error` event carrying the close code of the native protocol, then disconnect the
    // socket from the namespace (the client sees "io server disconnect").
    if !matches!(code, CloseCode::Normal | CloseCode::Restarting) && socket.connected() {
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
