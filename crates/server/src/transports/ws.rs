//! Native WebSocket transport at `GET /ws` (SPEC §4.1).
//!
//! One task reads and dispatches through a [`Session`]; one writer task drains the bounded
//! outbound queue through the [`StreamGate`] and writes frames, pings on the heartbeat interval,
//! and sends the close frame. Neither holds a lock across an await.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use switchboard_core::auth::{AuthError, Identity};
use switchboard_core::codes::{CloseCode, ErrorCode};
use switchboard_core::gate::StreamGate;
use switchboard_core::hub::{ConnectionHandle, Outbound, WireFormat};
use switchboard_core::protocol::{self, PROTOCOL_VERSION, ServerMessage, encode_reply};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::Instrument;

use crate::conn_limit::ConnectionPermit;
use crate::http::origin::OriginPolicy;
use crate::node::Node;
use crate::rate_limit::{Decision, client_key};
use crate::session::{Next, Session, close_code_for};
use crate::transports::expiry::{sleep_until_some, token_deadline};

/// Consecutive undecodable messages after which the connection is closed with 4010.
const MAX_INVALID_STREAK: u32 = 10;
/// Initial read buffer per native WebSocket connection, and the most read per syscall. Client
/// messages are small (subscribe, ping, ack: well under 1 KiB); a bigger one grows the buffer on
/// demand and takes a few more reads. Every idle connection pays for this buffer, so it is the
/// largest single term of idle memory (bench/results/2026-11-23-memory.md).
const READ_BUFFER_BYTES: usize = 2 * 1024;
/// How long the writer may spend flushing queued replies before a close frame.
const CLOSE_FLUSH: Duration = Duration::from_secs(2);

/// A fresh connection id: 20 random alphanumerics (≈119 bits), unguessable, so `conn:<id>`
/// cannot be read by anyone else.
pub fn new_connection_id() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..20)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

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
    let identity = node.identify(token);
    let token_given = token.is_some();
    let max = node.config.limits.max_message_bytes;
    // The socket library's own cap sits above ours, so an oversized message reaches our check
    // and gets the documented 1009 close instead of a bare protocol error.
    let hard_cap = max.saturating_mul(2).max(max + 64 * 1024);
    ws.max_message_size(hard_cap)
        .max_frame_size(hard_cap)
        // tungstenite preallocates its read buffer per connection (128 KiB by default, which
        // made an idle native connection cost ~143 KiB, bench/results/2026-11-23.md).
        .read_buffer_size(READ_BUFFER_BYTES)
        .on_upgrade(move |socket| run(node, socket, identity, token_given, permit, peer.ip()))
}

async fn run(
    node: Arc<Node>,
    socket: WebSocket,
    identity: Result<Identity, AuthError>,
    token_given: bool,
    permit: ConnectionPermit,
    peer_ip: IpAddr,
) {
    let conn_id = new_connection_id();
    let span = tracing::info_span!("ws", conn = %conn_id);
    async move {
        let _permit = permit;
        let (handle, rx) = ConnectionHandle::new(
            Arc::from(conn_id.as_str()),
            WireFormat::Native,
            identity
                .as_ref()
                .map_or(switchboard_core::publication::Audience::Agent, |i| {
                    i.audience()
                }),
            node.config.limits.outbound_queue,
        );
        let (sink, stream) = socket.split();
        let writer = tokio::spawn(
            write_loop(Arc::clone(&node), sink, rx, Arc::clone(&handle)).in_current_span(),
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
        tracing::debug!(authenticated = token_given, "connected");

        match identity {
            Err(e) => {
                tracing::info!(reason = %e, "query token rejected");
                let text = encode_reply(
                    &ServerMessage::AuthError {
                        message: &e.to_string(),
                    },
                    None,
                );
                handle.send(Outbound::Frame(text.into())).await;
                handle.close(close_code_for(e));
            }
            Ok(identity) => {
                let anonymous = !identity.is_authenticated();
                let mut session = Session::new(Arc::clone(&node), Arc::clone(&handle), identity);
                if anonymous && !node.config.auth.allow_anonymous {
                    let text = encode_reply(
                        &ServerMessage::AuthError {
                            message: "Authentication required",
                        },
                        None,
                    );
                    handle.send(Outbound::Frame(text.into())).await;
                    handle.close(CloseCode::AuthRequired);
                } else {
                    if !anonymous {
                        let user = session.identity().user.clone();
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
                    Box::pin(session.join_personal_channels()).await;
                    read_loop(&node, stream, &handle, &mut session, peer_ip).await;
                }
                // Dropping the session leaves its channels (with presence notices).
                drop(session);
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

async fn read_loop(
    node: &Node,
    mut stream: SplitStream<WebSocket>,
    handle: &Arc<ConnectionHandle>,
    session: &mut Session,
    peer_ip: IpAddr,
) {
    let max = node.config.limits.max_message_bytes;
    // A client over its limit gets `rate_limited`; one that sends this many more in a row
    // without waiting for tokens is closed with 4008.
    let max_limited_streak = (node.config.limits.client_messages_per_minute / 2).max(1);
    let mut limited_streak = 0u32;
    let timeout = Duration::from_millis(node.config.heartbeat.timeout_ms);
    let mut last_seen = Instant::now();
    let mut invalid_streak = 0u32;
    loop {
        let expiry = token_deadline(session.identity().expires_at);
        let msg = tokio::select! {
            msg = stream.next() => msg,
            _ = handle.closed() => return,
            () = sleep_until_some(expiry) => {
                tracing::info!("token expired; closing");
                session.send(encode_reply(&ServerMessage::AuthError { message: "Token expired" }, None)).await;
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
        let text = match msg {
            None | Some(Ok(Message::Close(_))) => {
                handle.close(CloseCode::Normal);
                return;
            }
            Some(Err(e)) => {
                // tungstenite reports a message over its cap as a capacity error.
                let too_big = e.to_string().to_ascii_lowercase().contains("too long")
                    || e.to_string().to_ascii_lowercase().contains("capacity");
                tracing::debug!(error = %e, "read error");
                handle.close(if too_big {
                    CloseCode::MessageTooBig
                } else {
                    CloseCode::Normal
                });
                return;
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Ok(Message::Binary(b))) => {
                if b.len() > max {
                    handle.close(CloseCode::MessageTooBig);
                    return;
                }
                invalid_streak += 1;
                session
                    .send_error(ErrorCode::InvalidMessage, "Invalid message format", None)
                    .await;
                if invalid_streak >= MAX_INVALID_STREAK {
                    handle.close(CloseCode::TooManyInvalid);
                    return;
                }
                continue;
            }
            Some(Ok(Message::Text(t))) => t,
        };
        if text.len() > max {
            tracing::info!(bytes = text.len(), "message too big");
            handle.close(CloseCode::MessageTooBig);
            return;
        }
        let key = client_key(session.identity().user.as_deref(), peer_ip);
        if let Decision::Limited { .. } = node.client_limiter.check(&key) {
            limited_streak += 1;
            if limited_streak > max_limited_streak {
                tracing::info!("rate limit exceeded repeatedly");
                handle.close(CloseCode::RateLimited);
                return;
            }
            let r#ref = protocol::decode(&text).ok().and_then(|e| e.r#ref);
            session
                .send_error(
                    ErrorCode::RateLimited,
                    "Rate limit exceeded; slow down",
                    r#ref.as_ref(),
                )
                .await;
            continue;
        }
        limited_streak = 0;
        match protocol::decode(&text) {
            Err(e) => {
                invalid_streak += 1;
                session
                    .send_error(e.code, &e.message, e.r#ref.as_ref())
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
                if let Next::Close(code) = Box::pin(session.handle(envelope)).await {
                    handle.close(code);
                    return;
                }
            }
        }
    }
}

type Sink = SplitSink<WebSocket, Message>;

async fn write_loop(
    node: Arc<Node>,
    mut sink: Sink,
    mut rx: mpsc::Receiver<Outbound>,
    handle: Arc<ConnectionHandle>,
) {
    let mut gate = StreamGate::default();
    let mut out = Vec::new();
    let period = Duration::from_millis(node.config.heartbeat.interval_ms);
    let mut ping = tokio::time::interval_at(Instant::now() + period, period);
    // Created once and polled by reference: building these per delivery registered and removed
    // a waiter on two `Notify`s (one of them shared by every connection) for each write, about
    // 5% of the server's CPU in the closed-loop flamegraph (bench/results/2026-11-23.md).
    let closed = handle.writer_closed();
    let shutdown = node.shutting_down();
    tokio::pin!(closed, shutdown);
    let code = loop {
        tokio::select! {
            biased;
            code = &mut closed => break code,
            () = &mut shutdown => break CloseCode::Restarting,
            item = rx.recv() => {
                let Some(item) = item else { break CloseCode::Normal };
                // After an overflow the stream has a gap: write nothing more, so the client's
                // last offset stays before the dropped publication and resuming recovers it.
                if handle.overflowed() {
                    break CloseCode::SlowConsumer;
                }
                gate.process(item, &mut out);
                // Batch whatever else is already queued into one flush.
                while out.len() < 64 && !handle.overflowed() {
                    match rx.try_recv() {
                        Ok(item) => gate.process(item, &mut out),
                        Err(_) => break,
                    }
                }
                // A client that stopped reading blocks this write; the close (4009 from the
                // hub, 1012 on shutdown) must still win, so the write is raced against it.
                tokio::select! {
                    biased;
                    code = &mut closed => break code,
                    () = &mut shutdown => break CloseCode::Restarting,
                    r = write_frames(&mut sink, &mut out) => if r.is_err() {
                        handle.close(CloseCode::Normal);
                        return;
                    },
                }
            }
            _ = ping.tick() => {
                if sink.send(Message::Ping(bytes::Bytes::new())).await.is_err() {
                    handle.close(CloseCode::Normal);
                    return;
                }
            }
        }
    };
    handle.close(code);
    // Replies queued before the close (an `auth_error`, say) go out first — except for a slow
    // consumer, whose queue is the problem.
    if code != CloseCode::SlowConsumer && !handle.overflowed() {
        let flush = async {
            while let Ok(item) = rx.try_recv() {
                gate.process(item, &mut out);
            }
            write_frames(&mut sink, &mut out).await
        };
        let _ = tokio::time::timeout(CLOSE_FLUSH, flush).await;
    }
    tracing::debug!(code = code.code(), "closing");
    let frame = CloseFrame {
        code: code.code(),
        reason: Utf8Bytes::from_static(code.reason()),
    };
    let _ = tokio::time::timeout(CLOSE_FLUSH, async {
        let _ = sink.send(Message::Close(Some(frame))).await;
        let _ = sink.close().await;
    })
    .await;
}

async fn write_frames(sink: &mut Sink, out: &mut Vec<bytes::Bytes>) -> Result<(), axum::Error> {
    for frame in out.drain(..) {
        // Frames are built from `String`s, so this never fails; skip one if it somehow does.
        let Ok(text) = Utf8Bytes::try_from(frame) else {
            continue;
        };
        sink.feed(Message::Text(text)).await?;
    }
    sink.flush().await
}
