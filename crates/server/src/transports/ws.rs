//! Native WebSocket transport at `GET /ws` (SPEC §4.1): the socket side of the native
//! protocol. One task reads, decodes and hands each message to the connection's command
//! [`Client`] (through `native.rs`); the shared write loop drains the bounded outbound queue,
//! pings on the heartbeat and sends the close frame. Neither holds a lock across an await.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, Query, State};
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
use crate::http::origin::OriginPolicy;
use crate::limits::connections::ConnectionPermit;
use crate::node::Node;

/// Consecutive undecodable messages after which the connection is closed with 4010.
const MAX_INVALID_STREAK: u32 = 10;
/// Initial read buffer per native WebSocket connection, and the most read per syscall. Client
/// messages are small (subscribe, ping, ack: well under 1 KiB); a bigger one grows the buffer on
/// demand and takes a few more reads. Every idle connection pays for this buffer, so it is the
/// largest single term of idle memory (bench/results/2026-11-23-memory.md).
const READ_BUFFER_BYTES: usize = 2 * 1024;

/// The upgrade handler.
pub async fn handler(
    State(node): State<Arc<Node>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    if !OriginPolicy::new(&node.config.security.allowed_origins).allows(&headers) {
        tracing::info!(peer = %peer.ip(), "websocket origin rejected");
        return (StatusCode::FORBIDDEN, "Origin not allowed").into_response();
    }
    let Some(permit) = node.connections.acquire(peer.ip()) else {
        return (
            StatusCode::TOO_MANY_REQUESTS,
            "Too many connections from this address",
        )
            .into_response();
    };
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
        .on_upgrade(move |socket| run(node, socket, identity, permit, peer.ip()))
}

async fn run(
    node: Arc<Node>,
    socket: WebSocket,
    identity: Result<Identity, Refused>,
    permit: ConnectionPermit,
    peer_ip: IpAddr,
) {
    let conn_id = new_id();
    let span = tracing::info_span!("ws", conn = %conn_id);
    async move {
        let _permit = permit;
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
        let transport = WsTransport {
            sink,
            heartbeat: Duration::from_millis(node.config.heartbeat.interval_ms),
        };
        let writer = tokio::spawn(
            write_loop::run(Arc::clone(&node), transport, rx, Arc::clone(&handle))
                .in_current_span(),
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
        handle.send(Outbound::Frame(welcome.into())).await;
        tracing::debug!(
            authenticated = identity.as_ref().is_ok_and(Identity::is_authenticated),
            "connected"
        );

        match identity {
            Err(refused) => {
                tracing::info!(reason = %refused, "query token rejected");
                let message = refused.to_string();
                let text = encode_reply(&ServerMessage::AuthError { message: &message }, None);
                handle.send(Outbound::Frame(text.into())).await;
                handle.close(refused.close_code());
            }
            Ok(identity) => {
                let authenticated = identity.is_authenticated();
                let mut client = Client::new(
                    Arc::clone(&node),
                    Arc::clone(&handle),
                    identity,
                    peer_ip,
                    Resubscribe::Refuse,
                );
                if authenticated {
                    let user = client.identity().user.clone();
                    let text = encode_reply(
                        &ServerMessage::Authenticated {
                            user: user.as_deref(),
                        },
                        None,
                    );
                    handle.send(Outbound::Frame(text.into())).await;
                }
                // Boxed: a future's size is its largest await point, and this one lives as
                // long as the connection (see read_loop).
                Box::pin(client.join_personal_channels()).await;
                read_loop(&node, stream, &handle, &mut client).await;
                // Dropping the client leaves its channels (with presence notices).
                drop(client);
            }
        }
        // The writer ends after sending its close frame (or when the queue is dropped).
        drop(handle);
        if tokio::time::timeout(CLOSE_FLUSH * 2, writer).await.is_err() {
            tracing::debug!("writer did not finish in time");
        }
        tracing::debug!("disconnected");
    }
    .instrument(span)
    .await;
}

/// What one frame read from the socket amounts to.
enum Read {
    /// A text message to decode.
    Text(Utf8Bytes),
    /// Nothing to handle (a ping or pong).
    Skip,
    /// An invalid frame (binary): answered, counted towards the invalid streak.
    Invalid,
    /// The connection ends with this code.
    End(CloseCode),
}

fn classify(msg: Option<Result<Message, axum::Error>>, max: usize) -> Read {
    match msg {
        None | Some(Ok(Message::Close(_))) => Read::End(CloseCode::Normal),
        Some(Err(e)) => {
            // tungstenite reports a message over its cap as a capacity error.
            let text = e.to_string().to_ascii_lowercase();
            tracing::debug!(error = %e, "read error");
            Read::End(if text.contains("too long") || text.contains("capacity") {
                CloseCode::MessageTooBig
            } else {
                CloseCode::Normal
            })
        }
        Some(Ok(Message::Ping(_) | Message::Pong(_))) => Read::Skip,
        Some(Ok(Message::Binary(b))) if b.len() > max => Read::End(CloseCode::MessageTooBig),
        Some(Ok(Message::Binary(_))) => Read::Invalid,
        Some(Ok(Message::Text(t))) if t.len() > max => {
            tracing::info!(bytes = t.len(), "message too big");
            Read::End(CloseCode::MessageTooBig)
        }
        Some(Ok(Message::Text(t))) => Read::Text(t),
    }
}

async fn read_loop(
    node: &Node,
    mut stream: SplitStream<WebSocket>,
    handle: &Arc<ConnectionHandle>,
    client: &mut Client,
) {
    let max = node.config.limits.max_message_bytes;
    let timeout = Duration::from_millis(node.config.heartbeat.timeout_ms);
    let mut last_seen = Instant::now();
    let mut invalid_streak = 0u32;
    loop {
        let expiry = token_deadline(client.identity().expires_at);
        let msg = tokio::select! {
            msg = stream.next() => msg,
            _ = handle.closed() => return,
            () = sleep_until_some(expiry) => {
                tracing::info!("token expired; closing");
                let text = encode_reply(&ServerMessage::AuthError { message: "Token expired" }, None);
                client.queue(Bytes::from(text)).await;
                handle.close(CloseCode::TokenExpired);
                return;
            }
            () = tokio::time::sleep_until(last_seen + timeout) => {
                tracing::info!("heartbeat timeout; terminating");
                handle.close(CloseCode::Normal);
                return;
            }
        };
        last_seen = Instant::now();
        let text = match classify(msg, max) {
            Read::Text(text) => text,
            Read::Skip => continue,
            Read::End(code) => {
                handle.close(code);
                return;
            }
            Read::Invalid => {
                invalid_streak += 1;
                let refusal = Refusal::new(ErrorCode::InvalidMessage, "Invalid message format");
                client
                    .refuse(&mut NativeResponder::new(None), refusal)
                    .await;
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
                client
                    .refuse(&mut NativeResponder::new(r#ref.as_ref()), refusal)
                    .await;
                continue;
            }
        }
        match protocol::decode(&text) {
            Err(e) => {
                invalid_streak += 1;
                let refusal = Refusal::new(e.code, e.message);
                client
                    .refuse(&mut NativeResponder::new(e.r#ref.as_ref()), refusal)
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
        let frame = CloseFrame {
            code: code.code(),
            reason: Utf8Bytes::from_static(code.reason()),
        };
        let _ = tokio::time::timeout(CLOSE_FLUSH, async {
            let _ = self.sink.send(Message::Close(Some(frame))).await;
            let _ = self.sink.close().await;
        })
        .await;
    }
}
