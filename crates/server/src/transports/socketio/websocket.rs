//! Socket.IO's websocket transport opened directly (`/socket.io/?EIO=4&transport=websocket`,
//! no `sid`), served by Switchboard itself: what `socket.io-client` with
//! `transports: ["websocket"]`, the Rust client and the load generator use.
//!
//! socketioxide cost ~30-38 KiB and three tasks per idle socket, and each delivery was split
//! back apart to be re-emitted. Here a socket is what a native WebSocket is — one read task
//! and the shared write loop, a 512-byte read buffer — and the hub's shared `42[…]` packets are
//! written as they are. The packets are `switchboard_core::engineio`'s; admission, the session
//! and its answers are the same code socketioxide's sockets run (`mod.rs`, `session.rs`), so
//! both paths behave alike. Polling, and the upgrade from it (requests with a `sid`), stay with
//! socketioxide.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, FromRequestParts, Query, Request, State};
use axum::http::{StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use switchboard_core::codes::CloseCode;
use switchboard_core::engineio::{self, DISCONNECT, EnginePacket, MAIN_NAMESPACE, PING, SioPacket};
use switchboard_core::hub::{ConnectionHandle, Outbound, WireFormat};
use switchboard_core::ids::new_id;
use switchboard_core::publication::Audience;
use switchboard_core::socketio::encode_event_packet;
use tokio::time::Instant;
use tracing::Instrument;

use super::session::{Ack, Incoming, SioSession};
use super::{Admission, Handshake, PATH, Rejected, SOCKET_ID_EVENT, admit_handshake, heartbeat};
use crate::http::forwarded::Proxied;
use crate::http::origin::{OriginPolicy, log_refusal};
use crate::limits::connections::ConnectionPermit;
use crate::node::Node;
use crate::node::metrics::DropReason;
use crate::node::sessions::Session;
use crate::transports::expiry::sleep_until_some;
use crate::transports::write_loop::{self, CLOSE_FLUSH, Transport, WriteError};
use crate::transports::ws_read::{
    ControlBudget, Ending, ProtocolClose, Read, classify, close_wait, configure, end,
    write_text_frames,
};

/// How long an Engine.IO session may stay without a Socket.IO connect (socket.io's
/// `connectTimeout`).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(45);

/// Whether this transport serves `uri`: Engine.IO v4 on the websocket transport, no `sid`
/// (a `sid` is an upgrade of a polling session, which socketioxide owns).
pub fn serves(uri: &Uri) -> bool {
    if !uri.path().starts_with(PATH) {
        return false;
    }
    let (mut websocket, mut eio4) = (false, false);
    for pair in uri.query().unwrap_or("").split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "transport" => websocket = value == "websocket",
            "EIO" => eio4 = value == "4",
            "sid" => return false,
            _ => {}
        }
    }
    websocket && eio4
}

/// Middleware in front of socketioxide's layer: takes the requests [`serves`] names, passes
/// the others on. The Origin guard has already run (it is outside).
pub async fn route(State(node): State<Arc<Node>>, request: Request, next: Next) -> Response {
    if !serves(request.uri()) {
        return next.run(request).await;
    }
    let (mut parts, _) = request.into_parts();
    let ws = match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
        Ok(ws) => ws,
        Err(rejection) => return rejection.into_response(),
    };
    if !OriginPolicy::new(&node.config.security.allowed_origins).allows(&parts.headers) {
        log_refusal("socketio", &parts.headers);
        return (StatusCode::FORBIDDEN, "Origin not allowed").into_response();
    }
    let peer = Peer {
        ip: parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip()),
        proxied: parts.extensions.get::<Proxied>().is_some(),
        query_token: Query::<HashMap<String, String>>::try_from_uri(&parts.uri)
            .ok()
            .and_then(|mut q| q.0.remove("token")),
    };
    configure(ws, node.config.limits.max_message_bytes)
        .on_upgrade(move |socket| run(node, socket, peer))
}

/// Who is connecting, from the upgrade request.
struct Peer {
    ip: IpAddr,
    proxied: bool,
    /// `?token=`, used when the CONNECT packet's `auth` has none.
    query_token: Option<String>,
}

/// What the reader and the writer share.
#[derive(Default)]
struct EioState {
    /// A protocol close code the reader decided (1002 for a malformed packet).
    protocol: ProtocolClose,
    /// Whether the socket is connected to `/`: only then does a close say why with an `error`
    /// event and a disconnect packet.
    connected: AtomicBool,
}

/// Sets the socket up, synchronously, and returns the future that serves it: a plain function
/// because an async function's arguments (here the whole `WebSocket`) keep their space in its
/// future for the connection's whole life (see the native `ws::run`).
fn run(
    node: Arc<Node>,
    socket: WebSocket,
    peer: Peer,
) -> impl Future<Output = ()> + Send + 'static {
    let id = new_id();
    let span = tracing::info_span!("socketio", conn = %id);
    let (handle, rx) = ConnectionHandle::new(
        Arc::from(id.as_str()),
        WireFormat::SocketIo,
        Audience::Agent,
        node.config.limits.outbound_queue,
    );
    let (sink, stream) = socket.split();
    let state = Arc::new(EioState::default());
    let (interval, timeout) = heartbeat(&node.config);
    let transport = EioTransport {
        sink,
        heartbeat: interval,
        state: Arc::clone(&state),
        close_wait: close_wait(&node),
    };
    let writer = tokio::spawn(
        write_loop::run(Arc::clone(&node), transport, rx, Arc::clone(&handle))
            .instrument(span.clone()),
    );
    let open = engineio::encode_open(
        &new_id(),
        duration_ms(interval),
        duration_ms(timeout),
        node.config.limits.max_message_bytes,
    );
    async move {
        handle.send(Outbound::frame(open)).await;
        let reader = Reader {
            node: &node,
            handle: &handle,
            state: &state,
            peer,
            deadline: interval + timeout,
        };
        let opened = Box::pin(reader.run(stream)).await;
        handle.close(CloseCode::Normal);
        let code = handle.close_reason().unwrap_or(CloseCode::Normal);
        drop(handle);
        if tokio::time::timeout(CLOSE_FLUSH + close_wait(&node), writer)
            .await
            .is_err()
        {
            tracing::debug!("writer did not finish in time");
        }
        if let Some((user, since)) = opened {
            tracing::info!(
                transport = "socketio",
                user = user.as_deref().unwrap_or("-"),
                code = code.code(),
                duration_ms = since.elapsed().as_millis() as u64,
                "connection closed"
            );
        }
    }
    .instrument(span)
}

fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A socket connected to `/`, with what it holds for as long as it lives.
struct Connected {
    session: SioSession,
    expiry: Option<Instant>,
    opened: Instant,
    /// Keeps the socket listed for admin and stats.
    _registered: Session,
    /// The per-IP permit of a socket behind a trusted proxy.
    _permit: Option<Arc<ConnectionPermit>>,
}

/// The read side of one Engine.IO session.
struct Reader<'a> {
    node: &'a Arc<Node>,
    handle: &'a Arc<ConnectionHandle>,
    state: &'a EioState,
    peer: Peer,
    /// No frame for this long (`pingInterval + pingTimeout`): the client is gone.
    deadline: Duration,
}

impl Reader<'_> {
    /// Reads until the session ends; the socket's user and when it connected, if it did.
    async fn run(self, mut stream: SplitStream<WebSocket>) -> Option<(Option<String>, Instant)> {
        let max = self.node.config.limits.max_message_bytes;
        let mut control = ControlBudget::new(self.node.config.limits.control_frames_per_minute);
        let mut last_seen = Instant::now();
        let connect_by = last_seen + CONNECT_TIMEOUT;
        let mut socket: Option<Box<Connected>> = None;
        loop {
            let expiry = socket.as_ref().and_then(|s| s.expiry);
            let waiting = socket.is_none().then_some(connect_by);
            let msg = tokio::select! {
                msg = stream.next() => msg,
                _ = self.handle.closed() => break,
                () = sleep_until_some(expiry) => {
                    tracing::info!("token expired; disconnecting");
                    self.handle.close(CloseCode::TokenExpired);
                    break;
                }
                () = tokio::time::sleep_until(last_seen + self.deadline) => {
                    tracing::info!("heartbeat timeout; terminating");
                    self.handle.close(CloseCode::HeartbeatTimeout);
                    break;
                }
                () = sleep_until_some(waiting) => {
                    tracing::info!("no socket.io connect in time; closing");
                    self.handle.close(CloseCode::Normal);
                    break;
                }
            };
            last_seen = Instant::now();
            let text = match classify(msg, max) {
                Read::Text(text) => text,
                Read::Control => {
                    if !control.take(last_seen) {
                        tracing::info!("control frame flood; closing");
                        self.handle.close(CloseCode::RateLimited);
                        break;
                    }
                    continue;
                }
                Read::End(ending) => {
                    if ending == Ending::Code(CloseCode::MessageTooBig) {
                        self.node.metrics.dropped(DropReason::TooLarge);
                    }
                    end(self.handle, &self.state.protocol, ending);
                    break;
                }
                // Binary attachments: not served on this transport.
                Read::Invalid => {
                    self.malformed("binary message");
                    break;
                }
            };
            let packet = match engineio::decode_engine(&text) {
                Ok(EnginePacket::Message(m)) => match engineio::decode_socketio(m) {
                    Ok(packet) => packet,
                    Err(e) => {
                        self.malformed(&e.to_string());
                        break;
                    }
                },
                Ok(EnginePacket::Close) => {
                    self.handle.close(CloseCode::Normal);
                    break;
                }
                // A pong counts as the frame it is (above); the rest say nothing.
                Ok(_) => continue,
                Err(e) => {
                    self.malformed(&e.to_string());
                    break;
                }
            };
            match packet {
                SioPacket::Connect { nsp, .. } if nsp != MAIN_NAMESPACE => {
                    self.queue(engineio::encode_connect_error(nsp, "Invalid namespace"))
                        .await;
                }
                SioPacket::Connect { .. } if socket.is_some() => {
                    self.queue(engineio::encode_connected(self.handle.id()))
                        .await;
                }
                SioPacket::Connect { auth, .. } => {
                    match Box::pin(self.connect(auth.unwrap_or(Value::Null))).await {
                        Ok(connected) => socket = Some(connected),
                        Err(Rejected(message)) => {
                            let nsp = MAIN_NAMESPACE;
                            self.queue(engineio::encode_connect_error(nsp, &message))
                                .await;
                        }
                    }
                }
                SioPacket::Event {
                    nsp,
                    id,
                    event,
                    data,
                } if nsp == MAIN_NAMESPACE => {
                    let Some(connected) = socket.as_mut() else {
                        continue;
                    };
                    let incoming = Incoming {
                        event,
                        data,
                        ack: id.map(Ack::Packet),
                    };
                    let handled = connected.session.handle_incoming(incoming, self.handle);
                    if !Box::pin(handled).await {
                        break;
                    }
                }
                SioPacket::Disconnect { nsp } if nsp == MAIN_NAMESPACE && socket.is_some() => {
                    self.handle.close(CloseCode::Normal);
                    break;
                }
                // Other namespaces are not served, and Switchboard asks for no acks.
                _ => {}
            }
        }
        // Dropping the session leaves its channels (with presence notices).
        socket.map(|s| (s.session.user().map(str::to_owned), s.opened))
    }

    /// A packet Socket.IO servers do not take: the transport is closed (1002).
    fn malformed(&self, why: &str) {
        tracing::info!(reason = why, "malformed socket.io packet; closing");
        end(self.handle, &self.state.protocol, Ending::ProtocolError);
    }

    async fn queue(&self, frame: String) {
        self.handle.send(Outbound::frame(frame)).await;
    }

    /// Admits a CONNECT as socketioxide's connect middleware does, answers `40{"sid"}` and
    /// `socket-id`, and joins the default channels.
    async fn connect(&self, auth: Value) -> Result<Box<Connected>, Rejected> {
        let Admission {
            identity,
            permit,
            ip,
            since,
        } = admit_handshake(
            self.node,
            &Handshake {
                auth: &auth,
                query_token: self.peer.query_token.as_deref(),
                headers: None,
                ip: self.peer.ip,
                proxied: self.peer.proxied,
                websocket: true,
            },
        )?;
        let id = self.handle.id().to_string();
        self.handle.set_audience(identity.audience());
        self.queue(engineio::encode_connected(&id)).await;
        let raw = serde_json::value::to_raw_value(&id).map_err(|e| Rejected(e.to_string()))?;
        self.queue(encode_event_packet(SOCKET_ID_EVENT, &raw)).await;
        self.state.connected.store(true, Ordering::SeqCst);
        let registered = self.node.sessions.open(self.handle);
        tracing::info!(
            transport = "socketio",
            engine = "websocket",
            peer = %ip,
            user = identity.user.as_deref().unwrap_or("-"),
            "connection opened"
        );
        let mut session =
            SioSession::new(Arc::clone(self.node), Arc::clone(self.handle), identity, ip);
        session.join_defaults(since).await;
        Ok(Box::new(Connected {
            expiry: session.expiry(),
            session,
            opened: Instant::now(),
            _registered: registered,
            _permit: permit,
        }))
    }
}

/// The write half of one Engine.IO websocket session.
struct EioTransport {
    sink: SplitSink<WebSocket, Message>,
    heartbeat: Duration,
    state: Arc<EioState>,
    /// How long the goodbye may wait for the client to take it.
    close_wait: Duration,
}

impl Transport for EioTransport {
    const FLUSH_ON_CLOSE: bool = true;

    async fn write_many(&mut self, frames: &mut Vec<Bytes>) -> Result<(), WriteError> {
        write_text_frames(&mut self.sink, frames).await
    }

    fn heartbeat(&self) -> Option<Duration> {
        Some(self.heartbeat)
    }

    /// Engine.IO's ping, a text `2`; the reader sees the client's `3`.
    async fn ping(&mut self) -> Result<(), WriteError> {
        self.sink
            .send(Message::Text(Utf8Bytes::from_static(PING)))
            .await
            .map_err(|_| WriteError::Gone)
    }

    /// As socketioxide's sockets (`sink.rs`): a server-side end (slow consumer, rate limit,
    /// token expiry, an administrator) says why with an `error` event carrying the native close
    /// code — not to a slow consumer, whose queue is the problem — then disconnects the socket
    /// (`41`: "io server disconnect", no automatic reconnect). Shutdown, a dead or departed
    /// client, an oversized or malformed message only close the transport, so a client that is
    /// still there reconnects ("transport close").
    async fn close(mut self, code: CloseCode) {
        let goodbye = self.state.connected.load(Ordering::SeqCst)
            && !matches!(
                code,
                CloseCode::Normal
                    | CloseCode::Restarting
                    | CloseCode::HeartbeatTimeout
                    | CloseCode::MessageTooBig
            );
        let ending = match self.state.protocol.get() {
            Some(protocol) if code == CloseCode::Normal => protocol,
            _ => Ending::Code(code),
        };
        let (wire, reason) = ending.wire();
        let _ = tokio::time::timeout(self.close_wait, async {
            if goodbye {
                if code != CloseCode::SlowConsumer {
                    let reason = json!({
                        "code": code.code(),
                        "message": code.reason(),
                        "reconnect": code.should_reconnect(),
                    });
                    if let Ok(raw) = serde_json::value::to_raw_value(&reason) {
                        let packet = encode_event_packet("error", &raw);
                        let _ = self.sink.feed(Message::Text(packet.into())).await;
                    }
                }
                let _ = self
                    .sink
                    .feed(Message::Text(Utf8Bytes::from_static(DISCONNECT)))
                    .await;
            }
            let frame = CloseFrame {
                code: wire,
                reason: Utf8Bytes::from_static(reason),
            };
            let _ = self.sink.send(Message::Close(Some(frame))).await;
            let _ = self.sink.close().await;
        })
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serves_direct_websockets_only() {
        let yes = |u: &str| serves(&u.parse::<Uri>().unwrap_or_default());
        assert!(yes("/socket.io/?EIO=4&transport=websocket"));
        assert!(yes("/socket.io/?EIO=4&transport=websocket&token=abc"));
        assert!(yes("/socket.io/?transport=websocket&EIO=4"));
        assert!(!yes("/socket.io/?EIO=4&transport=websocket&sid=abc"));
        assert!(!yes("/socket.io/?EIO=4&transport=polling"));
        assert!(!yes("/socket.io/?EIO=3&transport=websocket"));
        assert!(!yes("/socket.io/?transport=websocket"));
        assert!(!yes("/ws?EIO=4&transport=websocket"));
    }
}
