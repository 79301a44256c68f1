//! Native WebSocket transport at `GET /ws` (SPEC §4.1): the socket side of the native
//! protocol. One task reads, decodes and hands each message to the connection's command
//! [`Client`] (through `native.rs`); the shared write loop drains the bounded outbound queue,
//! pings on the heartbeat and sends the close frame. Neither holds a lock across an await.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, Extension, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use switchboard_core::auth::Identity;
use switchboard_core::codes::{CloseCode, ErrorCode};
use switchboard_core::hub::{ConnectionHandle, Outbound, WireFormat};
use switchboard_core::ids::new_id;
use switchboard_core::protocol::{self, PROTOCOL_VERSION, ServerMessage, encode_reply};
use switchboard_core::publication::Audience;
use switchboard_core::refusal::Refusal;
use tokio::time::Instant;
use tracing::Instrument;

use super::expiry::{sleep_until_some, token_deadline};
use super::native::{self, NativeResponder};
use super::write_loop::{self, CLOSE_FLUSH, Transport, WriteError};
use crate::commands::auth::{Refused, admit};
use crate::commands::client::{Admission, Client, Resubscribe};
use crate::commands::request::Next;
use crate::http::error::ApiError;
use crate::http::forwarded::Proxied;
use crate::http::origin::{OriginPolicy, log_refusal};
use crate::limits::connections::ConnectionPermit;
use crate::node::Node;
use crate::node::metrics::DropReason;

/// Consecutive undecodable messages after which the connection is closed with 4010.
const MAX_INVALID_STREAK: u32 = 10;
/// Initial read buffer per native WebSocket connection, and the most read per syscall. Client
/// messages are small (subscribe, ping, ack: a few hundred bytes); a bigger one grows the buffer
/// to its length on demand (tungstenite reserves a frame's whole length once its header is read)
/// and takes a few more reads. Every idle connection pays for this buffer: at 2 KiB it was the
/// second largest term of idle memory in dhat, after the connection's task (issue 14).
const READ_BUFFER_BYTES: usize = 512;
/// Bytes the socket library gathers before writing them out (tungstenite's default).
const WRITE_BUFFER_BYTES: usize = 128 * 1024;

/// The upgrade handler.
pub async fn handler(
    State(node): State<Arc<Node>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Query(query): Query<HashMap<String, String>>,
    proxied: Option<Extension<Proxied>>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    if !OriginPolicy::new(&node.config.security.allowed_origins).allows(&headers) {
        log_refusal("websocket", &headers);
        return (StatusCode::FORBIDDEN, "Origin not allowed").into_response();
    }
    let Ok(permit) = super::proxied_permit(&node, proxied.is_some(), peer.ip()) else {
        return ApiError::new(StatusCode::TOO_MANY_REQUESTS, super::TOO_MANY_CONNECTIONS)
            .into_response();
    };
    // The per-IP limit was applied when the TCP connection was accepted (`accept`); its
    // permit lives in the socket and so lasts exactly as long as this WebSocket.
    let token = query
        .get("token")
        .map(String::as_str)
        .filter(|t| !t.is_empty());
    let identity = admit(&node, token);
    let max = node.config.limits.max_message_bytes;
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
        .on_upgrade(move |socket| run(node, socket, identity, peer.ip(), permit))
}

/// What a connection does once set up: serve an admitted client, or tell a refused one why.
// Boxing the client would move its bytes to the heap, not save any: the connection holds it
// for its whole life.
#[allow(clippy::large_enum_variant)]
enum Start {
    Client(Client),
    Refused(Refused),
    /// The client was dropped (leaving its channels) before the writer is awaited.
    Done,
}

/// Sets the connection up, synchronously, and returns the future that serves it.
///
/// A plain function on purpose: an async function's arguments, and whatever an async block
/// captures, keep their space in its future for as long as it runs, and this future lives as
/// long as the connection. Taking the `WebSocket` (split here) and the identity (turned into the
/// client here) as arguments of an async function cost every idle connection their size twice
/// over (dhat: the connection task was 3.1 KiB before this).
fn run(
    node: Arc<Node>,
    socket: WebSocket,
    identity: Result<Identity, Refused>,
    peer_ip: IpAddr,
    permit: Option<ConnectionPermit>,
) -> impl Future<Output = ()> + Send + 'static {
    let conn_id = new_id();
    let span = tracing::info_span!("ws", conn = %conn_id);
    let audience = identity
        .as_ref()
        .map_or(Audience::Agent, Identity::audience);
    let (handle, rx) = ConnectionHandle::new(
        Arc::from(conn_id.as_str()),
        WireFormat::Native,
        audience,
        node.config.limits.outbound_queue,
    );
    let (sink, stream) = socket.split();
    let protocol = Arc::new(ProtocolClose::default());
    let transport = WsTransport {
        sink,
        heartbeat: Duration::from_millis(node.config.heartbeat.interval_ms),
        protocol: Arc::clone(&protocol),
        close_wait: close_wait(&node),
    };
    let writer = tokio::spawn(
        write_loop::run(Arc::clone(&node), transport, rx, Arc::clone(&handle))
            .instrument(span.clone()),
    );
    let welcome = encode_reply(
        &ServerMessage::Welcome {
            message: "Connected to WebSocket server",
            connection_id: &conn_id,
            protocol: PROTOCOL_VERSION,
            heartbeat: node.config.heartbeat.interval_ms,
        },
        None,
    );
    let user = identity.as_ref().ok().and_then(|i| i.user.clone());
    let mut start = match identity {
        Err(refused) => Start::Refused(refused),
        Ok(identity) => Start::Client(Client::new(
            Arc::clone(&node),
            Arc::clone(&handle),
            identity,
            peer_ip,
            Resubscribe::Refuse,
        )),
    };
    async move {
        // Held for as long as this WebSocket (behind a trusted proxy; else the TCP
        // connection's permit in `accept` counts it).
        let _permit = permit;
        handle.send(Outbound::frame(welcome)).await;
        let session = node.sessions.open(&handle);
        tracing::info!(transport = "websocket", peer = %peer_ip, user = user.as_deref().unwrap_or("-"), "connection opened");
        match &mut start {
            Start::Refused(refused) => {
                tracing::info!(reason = %refused, "query token rejected");
                let message = refused.to_string();
                let text = encode_reply(&ServerMessage::AuthError { message: &message }, None);
                handle.send(Outbound::frame(text)).await;
                handle.close(refused.close_code());
            }
            Start::Client(client) => {
                if client.identity().is_authenticated() {
                    let text = encode_reply(
                        &ServerMessage::Authenticated {
                            user: user.as_deref(),
                        },
                        None,
                    );
                    handle.send(Outbound::frame(text)).await;
                }
                // Boxed: a future's size is its largest await point, and this one lives as
                // long as the connection (see read_loop).
                Box::pin(client.join_personal_channels()).await;
                read_loop(&node, stream, &handle, client, &protocol).await;
            }
            Start::Done => {}
        }
        // Dropping the client leaves its channels (with presence notices).
        start = Start::Done;
        // The writer ends after sending its close frame (or when the queue is dropped).
        let (user, code) = (handle.user(), handle.close_reason().unwrap_or(CloseCode::Normal));
        drop(handle);
        if tokio::time::timeout(CLOSE_FLUSH + close_wait(&node), writer)
            .await
            .is_err()
        {
            tracing::debug!("writer did not finish in time");
        }
        drop(start);
        tracing::info!(transport = "websocket", user = user.as_deref().unwrap_or("-"), code = code.code(), duration_ms = session.age().as_millis() as u64, "connection closed");
    }
    .instrument(span)
}

/// What one frame read from the socket amounts to.
enum Read {
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
enum Ending {
    Code(CloseCode),
    /// 1002: a protocol violation (unmasked frame, RSV bits, unknown opcode, bad continuation,
    /// oversized or fragmented control frame).
    ProtocolError,
    /// 1007: a text message that is not UTF-8.
    InvalidPayload,
}

impl Ending {
    fn wire(self) -> (u16, &'static str) {
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
fn ending_of(e: &axum::Error) -> Ending {
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

fn classify(msg: Option<Result<Message, axum::Error>>, max: usize) -> Read {
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
struct ControlBudget {
    tokens: f64,
    capacity: f64,
    per_sec: f64,
    last: Instant,
}

impl ControlBudget {
    fn new(per_minute: u32) -> Self {
        let capacity = f64::from(per_minute.max(1));
        Self {
            tokens: capacity,
            capacity,
            per_sec: capacity / 60.0,
            last: Instant::now(),
        }
    }

    /// Takes one; false when the budget is spent.
    fn take(&mut self, now: Instant) -> bool {
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
struct ProtocolClose(AtomicU8);

impl ProtocolClose {
    fn set(&self, ending: Ending) {
        let v = match ending {
            Ending::Code(_) => 0,
            Ending::ProtocolError => 1,
            Ending::InvalidPayload => 2,
        };
        self.0.store(v, Ordering::SeqCst);
    }

    fn get(&self) -> Option<Ending> {
        match self.0.load(Ordering::SeqCst) {
            1 => Some(Ending::ProtocolError),
            2 => Some(Ending::InvalidPayload),
            _ => None,
        }
    }
}

/// Ends the connection the way `ending` says.
fn end(handle: &ConnectionHandle, protocol: &ProtocolClose, ending: Ending) {
    match ending {
        Ending::Code(code) => handle.close(code),
        other => {
            protocol.set(other);
            handle.close(CloseCode::Normal);
        }
    }
}

async fn read_loop(
    node: &Node,
    mut stream: SplitStream<WebSocket>,
    handle: &Arc<ConnectionHandle>,
    client: &mut Client,
    protocol: &ProtocolClose,
) {
    let max = node.config.limits.max_message_bytes;
    let mut control = ControlBudget::new(node.config.limits.control_frames_per_minute);
    let timeout = Duration::from_millis(node.config.heartbeat.timeout_ms);
    let mut last_seen = Instant::now();
    let mut invalid_streak = 0u32;
    // Every await below but the select's is boxed: a future is as large as its largest await
    // point, and this one lives as long as the connection, so the rare paths (refusals, token
    // expiry) are allocated only when taken.
    loop {
        let expiry = token_deadline(client.identity().expires_at);
        let msg = tokio::select! {
            msg = stream.next() => msg,
            _ = handle.closed() => return,
            () = sleep_until_some(expiry) => {
                tracing::info!("token expired; closing");
                let text = encode_reply(&ServerMessage::AuthError { message: "Token expired" }, None);
                Box::pin(client.queue(Bytes::from(text))).await;
                handle.close(CloseCode::TokenExpired);
                return;
            }
            () = tokio::time::sleep_until(last_seen + timeout) => {
                tracing::info!("heartbeat timeout; terminating");
                handle.close(CloseCode::HeartbeatTimeout);
                return;
            }
        };
        last_seen = Instant::now();
        let text = match classify(msg, max) {
            Read::Text(text) => text,
            Read::Control => {
                // Each ping makes the socket owe a pong; a flood of them is refused like a
                // flood of messages, without waiting for the backlog to grow.
                if !control.take(last_seen) {
                    tracing::info!("control frame flood; closing");
                    handle.close(CloseCode::RateLimited);
                    return;
                }
                continue;
            }
            Read::End(ending) => {
                if ending == Ending::Code(CloseCode::MessageTooBig) {
                    node.metrics.dropped(DropReason::TooLarge);
                }
                end(handle, protocol, ending);
                return;
            }
            Read::Invalid => {
                invalid_streak += 1;
                let refusal = Refusal::new(ErrorCode::InvalidMessage, "Invalid message format");
                Box::pin(client.refuse(&mut NativeResponder::new(None), refusal)).await;
                if invalid_streak >= MAX_INVALID_STREAK {
                    handle.close(CloseCode::TooManyInvalid);
                    return;
                }
                continue;
            }
        };
        match client.admit() {
            Admission::Allowed => {}
            Admission::Close(code) => {
                handle.close(code);
                return;
            }
            Admission::Refused(refusal) => {
                let r#ref = protocol::decode(&text).ok().and_then(|e| e.r#ref);
                Box::pin(client.refuse(&mut NativeResponder::new(r#ref.as_deref()), refusal)).await;
                continue;
            }
        }
        match protocol::decode(&text) {
            Err(e) => {
                invalid_streak += 1;
                let refusal = Refusal::new(e.code, e.message);
                Box::pin(client.refuse(&mut NativeResponder::new(e.r#ref.as_deref()), refusal))
                    .await;
                if invalid_streak >= MAX_INVALID_STREAK {
                    handle.close(CloseCode::TooManyInvalid);
                    return;
                }
            }
            Ok(envelope) => {
                invalid_streak = 0;
                // Boxed so the state of the deepest handler (subscribe with recovery) is allocated
                // only while a message is handled, not carried by every idle connection's task:
                // dhat showed the connection task at 3.7 KiB before this.
                if let Next::Close(code) = Box::pin(native::handle(client, envelope)).await {
                    handle.close(code);
                    return;
                }
            }
        }
    }
}

/// The native socket's write half.
struct WsTransport {
    sink: SplitSink<WebSocket, Message>,
    heartbeat: Duration,
    protocol: Arc<ProtocolClose>,
    /// How long the close frame may wait for the client to take it.
    close_wait: Duration,
}

/// A close frame waits behind what the client has not read yet; a client that comes back
/// within `limits.write_timeout_ms` still reads it (a slow consumer learns it was one: 4009).
fn close_wait(node: &Node) -> Duration {
    Duration::from_millis(node.config.limits.write_timeout_ms).max(CLOSE_FLUSH)
}

impl Transport for WsTransport {
    const FLUSH_ON_CLOSE: bool = true;

    async fn write_many(&mut self, frames: &mut Vec<Bytes>) -> Result<(), WriteError> {
        for frame in frames.drain(..) {
            if frame.is_empty() {
                continue;
            }
            // Frames are built from `String`s, so this never fails; skip one if it somehow does.
            let Ok(text) = Utf8Bytes::try_from(frame) else {
                continue;
            };
            self.sink
                .feed(Message::Text(text))
                .await
                .map_err(|_| WriteError::Gone)?;
        }
        self.sink.flush().await.map_err(|_| WriteError::Gone)
    }

    fn heartbeat(&self) -> Option<Duration> {
        Some(self.heartbeat)
    }

    async fn ping(&mut self) -> Result<(), WriteError> {
        self.sink
            .send(Message::Ping(Bytes::new()))
            .await
            .map_err(|_| WriteError::Gone)
    }

    async fn close(mut self, code: CloseCode) {
        let ending = match self.protocol.get() {
            Some(protocol) if code == CloseCode::Normal => protocol,
            _ => Ending::Code(code),
        };
        let (code, reason) = ending.wire();
        let frame = CloseFrame {
            code,
            reason: Utf8Bytes::from_static(reason),
        };
        let _ = tokio::time::timeout(self.close_wait, async {
            let _ = self.sink.send(Message::Close(Some(frame))).await;
            let _ = self.sink.close().await;
        })
        .await;
    }
}
