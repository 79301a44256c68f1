//! Native WebSocket transport at `GET /ws` (SPEC §4.1): the socket side of the native
//! protocol. One task reads, decodes and hands each message to the connection's command
//! [`Client`] (through `native.rs`); the shared write loop drains the bounded outbound queue,
//! pings on the heartbeat and sends the close frame. Neither holds a lock across an await.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
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
use super::ws_read::{
    ControlBudget, Ending, ProtocolClose, Read, classify, close_wait, configure, end,
    write_text_frames,
};
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
    configure(ws, node.config.limits.max_message_bytes)
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

impl Transport for WsTransport {
    const FLUSH_ON_CLOSE: bool = true;

    async fn write_many(&mut self, frames: &mut Vec<Bytes>) -> Result<(), WriteError> {
        write_text_frames(&mut self.sink, frames).await
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
