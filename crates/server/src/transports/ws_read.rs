//! The socket side both WebSocket transports share (the native one in `ws.rs`, Socket.IO's own
//! in `socketio/websocket.rs`): how the upgrade is configured, what a read amounts to, the
//! control-frame budget and the protocol close codes.

use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use axum::extract::ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use bytes::Bytes;
use futures_util::SinkExt;
use futures_util::stream::SplitSink;
use switchboard_core::codes::CloseCode;
use switchboard_core::hub::ConnectionHandle;
use tokio::time::Instant;

use super::write_loop::{CLOSE_FLUSH, WriteError};
use crate::node::Node;

/// Initial read buffer per WebSocket connection (native and Socket.IO), and the most read per
/// syscall. Client messages are small (subscribe, ping, ack: a few hundred bytes); a bigger one
/// grows the buffer to its length on demand (tungstenite reserves a frame's whole length once
/// its header is read) and takes a few more reads. Every idle connection pays for this buffer:
/// at 2 KiB it was the second largest term of idle memory in dhat, after the connection's task
/// (issue 14).
pub const READ_BUFFER_BYTES: usize = 512;
/// Bytes the socket library gathers before writing them out (tungstenite's default).
pub const WRITE_BUFFER_BYTES: usize = 128 * 1024;

/// Writes `frames` as text messages in one flush, draining the vector: the `write_many` of both
/// WebSocket transports (their frames are whole protocol messages, encoded once and shared).
/// Empty frames (replies with nothing to say) are skipped.
pub async fn write_text_frames(
    sink: &mut SplitSink<WebSocket, Message>,
    frames: &mut Vec<Bytes>,
) -> Result<(), WriteError> {
    for frame in frames.drain(..) {
        if frame.is_empty() {
            continue;
        }
        // Frames are built from `String`s, so this never fails; skip one if it somehow does.
        let Ok(text) = Utf8Bytes::try_from(frame) else {
            continue;
        };
        sink.feed(Message::Text(text))
            .await
            .map_err(|_| WriteError::Gone)?;
    }
    sink.flush().await.map_err(|_| WriteError::Gone)
}

/// Configures an upgrade for messages of at most `max` bytes (`limits.max_message_bytes`).
pub fn configure(ws: WebSocketUpgrade, max: usize) -> WebSocketUpgrade {
    // The socket library's own cap sits above ours, so an oversized message reaches our check
    // and gets the documented 1009 close instead of a bare protocol error.
    let hard_cap = max.saturating_mul(2).max(max + 64 * 1024);
    ws.max_message_size(hard_cap)
        .max_frame_size(hard_cap)
        // tungstenite preallocates its read buffer per connection (128 KiB by default, which
        // made an idle native connection cost ~143 KiB, bench/results/2026-11-23.md).
        .read_buffer_size(READ_BUFFER_BYTES)
        // Bounds what the socket library buffers for a client that does not read: pongs it owes
        // beyond this are coalesced into one, and our own writes wait (then time out: 4009).
        .write_buffer_size(WRITE_BUFFER_BYTES)
        .max_write_buffer_size(WRITE_BUFFER_BYTES + hard_cap + 64 * 1024)
}

/// What one frame read from the socket amounts to.
pub enum Read {
    /// A text message to decode.
    Text(Utf8Bytes),
    /// A ping or pong: nothing to handle, but it counts against the control-frame budget.
    Control,
    /// An invalid frame (binary): answered, counted towards the invalid streak.
    Invalid,
    /// The connection ends with this code.
    End(Ending),
}

/// How a connection ends: a catalogue code, or a WebSocket protocol code (RFC 6455 §7.4.1)
/// for a client that broke the framing rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    Code(CloseCode),
    /// 1002: a protocol violation (unmasked frame, RSV bits, unknown opcode, bad continuation,
    /// oversized or fragmented control frame).
    ProtocolError,
    /// 1007: a text message that is not UTF-8.
    InvalidPayload,
}

impl Ending {
    /// The close code and reason on the wire.
    pub fn wire(self) -> (u16, &'static str) {
        match self {
            Ending::Code(code) => (code.code(), code.reason()),
            Ending::ProtocolError => (1002, "Protocol error"),
            Ending::InvalidPayload => (1007, "Invalid payload data"),
        }
    }
}

/// The close code of a read error. tungstenite's error is behind `axum::Error`, so it is told
/// apart by its message (tungstenite 0.29's `Display`): "Space limit exceeded" / "Message too
/// long" (over our cap), "UTF-8 encoding error", "WebSocket protocol error".
pub fn ending_of(e: &axum::Error) -> Ending {
    let text = e.to_string().to_ascii_lowercase();
    if text.contains("too long") || text.contains("space limit") || text.contains("capacity") {
        Ending::Code(CloseCode::MessageTooBig)
    } else if text.contains("utf-8") {
        Ending::InvalidPayload
    } else if text.contains("protocol error") {
        Ending::ProtocolError
    } else {
        // I/O errors: the peer is gone and hears no code.
        Ending::Code(CloseCode::Normal)
    }
}

/// What one read from the socket amounts to; messages over `max` bytes end it with 1009.
pub fn classify(msg: Option<Result<Message, axum::Error>>, max: usize) -> Read {
    match msg {
        None | Some(Ok(Message::Close(_))) => Read::End(Ending::Code(CloseCode::Normal)),
        Some(Err(e)) => {
            tracing::debug!(error = %e, "read error");
            Read::End(ending_of(&e))
        }
        Some(Ok(Message::Ping(_) | Message::Pong(_))) => Read::Control,
        Some(Ok(Message::Binary(b))) if b.len() > max => {
            Read::End(Ending::Code(CloseCode::MessageTooBig))
        }
        Some(Ok(Message::Binary(_))) => Read::Invalid,
        Some(Ok(Message::Text(t))) if t.len() > max => {
            tracing::info!(bytes = t.len(), "message too big");
            Read::End(Ending::Code(CloseCode::MessageTooBig))
        }
        Some(Ok(Message::Text(t))) => Read::Text(t),
    }
}

/// The control frames (ping, pong) one connection may still send: a token bucket of
/// `limits.control_frames_per_minute`, full at the start and refilled continuously.
pub struct ControlBudget {
    tokens: f64,
    capacity: f64,
    per_sec: f64,
    last: Instant,
}

impl ControlBudget {
    /// A full bucket of `per_minute`.
    pub fn new(per_minute: u32) -> Self {
        let capacity = f64::from(per_minute.max(1));
        Self {
            tokens: capacity,
            capacity,
            per_sec: capacity / 60.0,
            last: Instant::now(),
        }
    }

    /// Takes one; false when the budget is spent.
    pub fn take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.per_sec).min(self.capacity);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// The protocol code the reader decided, for the writer's close frame (the hub's close carries
/// catalogue codes only, so these travel beside it).
#[derive(Debug, Default)]
pub struct ProtocolClose(AtomicU8);

impl ProtocolClose {
    /// Records the protocol code.
    pub fn set(&self, ending: Ending) {
        let v = match ending {
            Ending::Code(_) => 0,
            Ending::ProtocolError => 1,
            Ending::InvalidPayload => 2,
        };
        self.0.store(v, Ordering::SeqCst);
    }

    /// The protocol code recorded, if any.
    pub fn get(&self) -> Option<Ending> {
        match self.0.load(Ordering::SeqCst) {
            1 => Some(Ending::ProtocolError),
            2 => Some(Ending::InvalidPayload),
            _ => None,
        }
    }
}

/// Ends the connection the way `ending` says.
pub fn end(handle: &ConnectionHandle, protocol: &ProtocolClose, ending: Ending) {
    match ending {
        Ending::Code(code) => handle.close(code),
        other => {
            protocol.set(other);
            handle.close(CloseCode::Normal);
        }
    }
}

/// A close frame waits behind what the client has not read yet; a client that comes back
/// within `limits.write_timeout_ms` still reads it (a slow consumer learns it was one: 4009).
pub fn close_wait(node: &Node) -> Duration {
    Duration::from_millis(node.config.limits.write_timeout_ms).max(CLOSE_FLUSH)
}
