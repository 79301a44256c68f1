//! Socket.IO v4 at `/socket.io/`, namespace `/` (SPEC §4.2).
//!
//! A websocket opened directly (no `sid`) is served by [`websocket`], Switchboard's own
//! Engine.IO transport (the packets are `switchboard_core::engineio`'s). socketioxide serves
//! polling and the upgrade from polling to websocket, and the Socket.IO packet format on
//! those; everything else is ours and shared by both paths. Its rooms and adapters are not used: each
//! socket is one connection in the [`Hub`](switchboard_core::hub::Hub), subscribed to channels
//! like a native WebSocket, so one publication reaches both kinds of clients through the one
//! fan-out path, encoded once per (format, audience).
//!
//! - `mod.rs`: the layer, the Origin guard, admission (token, anonymity, per-IP limit) and the
//!   connect handler.
//! - [`decode`]: client events as command-layer requests (sans-IO).
//! - [`session`]: per-socket request handling, in order, answered as acks or `error` events.
//! - [`sink`]: a socketioxide socket as a transport of the shared write loop (`emit`).
//! - [`websocket`]: the websocket transport served without socketioxide.

pub mod decode;
pub mod session;
pub mod sink;
pub mod websocket;

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use socketioxide::adapter::LocalAdapter;
use socketioxide::extract::{AckSender, Data, Event, SocketRef};
use socketioxide::handler::{ConnectHandler, FromMessageParts};
use socketioxide::layer::SocketIoLayer;
use socketioxide::socket::Socket;
use socketioxide::{SocketIo, TransportType};
use switchboard_core::auth::Identity;
use switchboard_core::codes::{CloseCode, ErrorCode};
use switchboard_core::hub::{ConnectionHandle, WireFormat};
use switchboard_core::publication::StreamPosition;
use tokio::sync::mpsc;
use tracing::Instrument;

use self::session::{Ack, Incoming, SioSession};
use self::sink::SocketSink;
use crate::commands::auth::admit as admit_token;
use crate::http::forwarded::Proxied;
use crate::http::origin::{OriginPolicy, log_refusal};
use crate::limits::connections::ConnectionPermit;
use crate::node::Node;
use crate::transports::write_loop;

/// Where Socket.IO is served.
pub const PATH: &str = "/socket.io";
/// The event carrying a socket's id on connect (SPEC §1.3); only the server emits it.
pub const SOCKET_ID_EVENT: &str = "socket-id";
/// Client events queued per socket before further ones are refused.
const INBOX: usize = 64;

/// Builds the socketioxide layer for `node` and starts watching for shutdown.
///
/// Must be called inside a Tokio runtime (it spawns the shutdown watcher).
pub fn layer(node: Arc<Node>) -> SocketIoLayer {
    let cfg = &node.config;
    let (interval, timeout) = heartbeat(cfg);
    let max = cfg.limits.max_message_bytes;
    let (layer, io) = SocketIo::builder()
        .req_path(PATH)
        .ping_interval(interval)
        .ping_timeout(timeout)
        .max_payload(u64::try_from(max).unwrap_or(u64::MAX))
        .ws_max_message_size(max)
        .ws_max_frame_size(max)
        .max_buffer_size(cfg.limits.outbound_queue.max(16))
        .build_layer();
    let on_connect = {
        let node = Arc::clone(&node);
        move |socket: SocketRef| {
            let node = Arc::clone(&node);
            async move { connected(node, socket) }
        }
    };
    let admit = {
        let node = Arc::clone(&node);
        move |socket: SocketRef, Data(auth): Data<Value>| {
            let node = Arc::clone(&node);
            async move { admit(&node, &socket, &auth) }
        }
    };
    io.ns("/", on_connect.with(admit));
    tokio::spawn(async move {
        node.shutting_down().await;
        io.close().await;
    });
    layer
}

/// Engine.IO's `pingInterval` and `pingTimeout`: `heartbeat.interval_ms`, and the rest of
/// `heartbeat.timeout_ms` (at least 1 s). The client waits `pingInterval + pingTimeout` for a
/// ping; together they make our heartbeat timeout.
fn heartbeat(cfg: &crate::config::Config) -> (Duration, Duration) {
    let interval = Duration::from_millis(cfg.heartbeat.interval_ms);
    let timeout = Duration::from_millis(
        cfg.heartbeat
            .timeout_ms
            .saturating_sub(cfg.heartbeat.interval_ms)
            .max(1000),
    );
    (interval, timeout)
}

/// Answers 403 to any Engine.IO request (handshake, poll, upgrade) from a disallowed Origin,
/// before socketioxide sees it. socket.io-client then reports `connect_error`.
pub async fn origin_guard(
    State(policy): State<OriginPolicy>,
    req: Request,
    next: Next,
) -> Response {
    if req.uri().path().starts_with(PATH) && !policy.allows(req.headers()) {
        log_refusal("socketio", req.headers());
        return (StatusCode::FORBIDDEN, "Origin not allowed").into_response();
    }
    next.run(req).await
}

/// Why a handshake was refused; the text reaches the client as `connect_error`'s message.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Rejected(String);

/// What admission hands to the connect handler.
#[derive(Clone)]
struct Admission {
    identity: Identity,
    permit: Option<Arc<ConnectionPermit>>,
    ip: IpAddr,
    since: HashMap<String, StreamPosition>,
}

/// A Socket.IO handshake, whoever serves its transport (socketioxide, or `websocket.rs`).
struct Handshake<'a> {
    /// The CONNECT packet's `auth` object (`null` when none).
    auth: &'a Value,
    /// The request's `?token=`, used when `auth` has none.
    query_token: Option<&'a str>,
    /// The request's headers, for the Origin rule; `None` when it was checked at the upgrade.
    headers: Option<&'a HeaderMap>,
    ip: IpAddr,
    /// Whether the request came through a trusted proxy.
    proxied: bool,
    /// Whether the socket is on the websocket transport (its TCP connection holds a permit)
    /// rather than polling.
    websocket: bool,
}

/// Connect middleware: the token from `auth: {token}` or `?token=`, the anonymity rule and the
/// per-IP connection limit, exactly as for the native WebSocket. Never logs the token.
fn admit(node: &Node, socket: &SocketRef, auth: &Value) -> Result<(), Rejected> {
    let parts = socket.req_parts();
    let query_token = Query::<HashMap<String, String>>::try_from_uri(&parts.uri)
        .ok()
        .and_then(|mut q| q.0.remove("token"));
    let admission = admit_handshake(
        node,
        &Handshake {
            auth,
            query_token: query_token.as_deref(),
            headers: Some(&parts.headers),
            ip: parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip()),
            proxied: parts.extensions.get::<Proxied>().is_some(),
            websocket: socket.transport_type() == TransportType::Websocket,
        },
    )?;
    socket.extensions.insert(admission);
    Ok(())
}

/// The admission rules of every Socket.IO handshake.
fn admit_handshake(node: &Node, h: &Handshake<'_>) -> Result<Admission, Rejected> {
    let token = h
        .auth
        .get("token")
        .and_then(Value::as_str)
        .or(h.query_token)
        .filter(|t| !t.is_empty());
    let identity = admit_token(node, token).map_err(|e| {
        tracing::info!(reason = %e, "socket.io handshake token rejected");
        Rejected(e.to_string())
    })?;
    // The HTTP guard already refused these; checked again so the rule holds however the
    // layer is mounted.
    if let Some(headers) = h.headers
        && !OriginPolicy::new(&node.config.security.allowed_origins).allows(headers)
    {
        return Err(Rejected("Origin not allowed".into()));
    }
    let ip = h.ip;
    // A socket on the websocket transport is counted by its TCP connection (`accept`), whose
    // permit lives as long as the upgraded stream. A polling session outlives each of its
    // requests, so it holds a permit of its own.
    let permit = if h.websocket {
        // Behind a trusted proxy the TCP connection is the proxy's and took no permit.
        super::proxied_permit(node, h.proxied, ip)
            .map_err(|_| Rejected(super::TOO_MANY_CONNECTIONS.into()))?
            .map(Arc::new)
    } else {
        Some(Arc::new(node.connections.acquire(ip).ok_or_else(|| {
            Rejected(super::TOO_MANY_CONNECTIONS.into())
        })?))
    };
    // `auth: {since: {"missions": {offset, epoch}, …}}` resumes the channels joined on connect;
    // entries that are not positions are ignored (the channel then starts live).
    let since = h
        .auth
        .get("since")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| {
                    serde_json::from_value::<StreamPosition>(v.clone())
                        .ok()
                        .map(|p| (k.clone(), p))
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(Admission {
        identity,
        permit,
        ip,
        since,
    })
}

/// The sending end of a socket's ordered event queue, kept in its extensions, with the
/// socket's handle: a refusal that cannot be answered ends the socket as a slow consumer.
#[derive(Clone)]
struct Inbox(mpsc::Sender<Incoming>, Arc<ConnectionHandle>);

/// An extractor whose only job is a side effect: it queues the event, in arrival order, for
/// the socket's session. socketioxide runs extractors synchronously as each packet arrives and
/// only then spawns the handler, so queuing here preserves the client's order.
pub struct Enqueued;

impl FromMessageParts<LocalAdapter> for Enqueued {
    type Error = Infallible;

    fn from_message_parts(
        socket: &Arc<Socket>,
        value: &mut socketioxide_core::Value,
        ack_id: &Option<i64>,
    ) -> Result<Self, Infallible> {
        let Ok(Event(event)) = Event::from_message_parts(socket, value, ack_id) else {
            return Ok(Enqueued);
        };
        let data = Data::<Value>::from_message_parts(socket, value, ack_id)
            .map_or(Value::Null, |Data(v)| v);
        let ack = match ack_id {
            Some(_) => match AckSender::from_message_parts(socket, value, ack_id) {
                Ok(ack) => Some(Ack::Sio(ack)),
                Err(never) => match never {},
            },
            None => None,
        };
        let Some(Inbox(tx, handle)) = socket.extensions.get::<Inbox>() else {
            return Ok(Enqueued);
        };
        if let Err(mpsc::error::TrySendError::Full(incoming)) =
            tx.try_send(Incoming { event, data, ack })
        {
            tracing::info!(conn = %socket.id, "socket.io inbox full; event refused");
            let code = ErrorCode::RateLimited.as_str();
            let message = ErrorCode::RateLimited.default_message();
            // Every refused event is answered: in its ack, or with an `error` event as the
            // session would (sent directly: the ordered queue is the session's).
            let answered = match incoming.ack {
                Some(ack) => ack.send(&json!({"error": message, "code": code}), &handle),
                None => socket
                    .emit(
                        "error",
                        &json!({"event": incoming.event, "code": code, "message": message}),
                    )
                    .is_ok(),
            };
            if !answered {
                // Its buffer is full: the client does not read what it asked for. Silence would
                // leave it waiting on an ack forever; it is a slow consumer.
                tracing::debug!(conn = %socket.id, "refusal not delivered: socket buffer full");
                handle.close(CloseCode::SlowConsumer);
            }
        }
        Ok(Enqueued)
    }
}

/// The connect handler: registers the socket with the hub, emits `socket-id`, and starts its
/// session and writer.
fn connected(node: Arc<Node>, socket: SocketRef) {
    let Some(Admission {
        identity,
        permit,
        ip,
        since,
    }) = socket.extensions.remove::<Admission>()
    else {
        let _ = socket.disconnect();
        return;
    };
    let id = socket.id.to_string();
    let span = tracing::info_span!("socketio", conn = %id);
    let _entered = span.enter();
    let (handle, rx) = ConnectionHandle::new(
        Arc::from(id.as_str()),
        WireFormat::SocketIo,
        identity.audience(),
        node.config.limits.outbound_queue,
    );
    if socket.emit(SOCKET_ID_EVENT, &id).is_err() {
        return;
    }
    let (tx, inbox) = mpsc::channel(INBOX);
    socket.extensions.insert(Inbox(tx, Arc::clone(&handle)));
    socket.on_fallback(|_: Enqueued| async {});
    {
        let handle = Arc::clone(&handle);
        socket.on_disconnect(move || {
            let handle = Arc::clone(&handle);
            async move { handle.close(CloseCode::Normal) }
        });
    }
    tracing::info!(
        transport = "socketio",
        engine = ?socket.transport_type(),
        peer = %ip,
        user = identity.user.as_deref().unwrap_or("-"),
        "connection opened"
    );
    tokio::spawn(
        write_loop::run(
            Arc::clone(&node),
            SocketSink::new(
                socket.clone(),
                Duration::from_millis(node.config.limits.write_timeout_ms),
            ),
            rx,
            Arc::clone(&handle),
        )
        .instrument(span.clone()),
    );
    tokio::spawn(
        SioSession::new(node, Arc::clone(&handle), identity, ip)
            .run(inbox, handle, permit, since)
            .instrument(span.clone()),
    );
}
