//! One client connection of the load generator, for each protocol it speaks: opened from a
//! chosen loopback source address, brought to "ready", then read until told to stop.
//!
//! Receivers only scan frames for the stamp (see [`crate::frame`]) and keep `(stamp, receive
//! time)` pairs: on 2 cores every cycle the generator spends is taken from the server.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use switchboard_client::socketio::{self, Frame};
use switchboard_client::sse::SseParser;
use switchboard_client::{ClientError, ClientMessage, Connection};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Utf8Bytes;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::frame;
use crate::sse_client::{Chunked, is_chunked};
use crate::{http, pusher};

/// The client crate's WebSocket connection over the TCP stream the generator opened.
type Ws = Connection<TcpStream>;

/// How the connections talk to the server under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Protocol {
    /// Switchboard's native protocol: send subscribe, ready at `subscribed`.
    Native,
    /// A plain WebSocket server that sends no reply: ready once subscribe is sent.
    Ws,
    /// Engine.IO v4 / Socket.IO v5 over the websocket transport: ready at the `40` ack.
    Socketio,
    /// Server-Sent Events (`GET /events?channels=missions`): ready at the `connected` event.
    Sse,
    /// The Pusher protocol (sockudo): `pusher:subscribe`, ready at
    /// `pusher_internal:subscription_succeeded`.
    Pusher,
}

/// Where and how to connect.
#[derive(Debug, Clone)]
pub struct Target {
    pub addr: SocketAddr,
    /// The `host:port` text, for the Host header and URLs.
    pub host: String,
    /// Request path (with query) of the WebSocket or SSE endpoint.
    pub path: String,
    pub protocol: Protocol,
    /// Token for endpoints that take one in the query (SSE).
    pub token: Option<String>,
}

/// Why a connection did not become ready.
#[derive(Debug, thiserror::Error)]
pub enum ConnError {
    #[error("connect: {0}")]
    Io(#[from] std::io::Error),
    #[error("websocket: {0}")]
    Ws(#[from] ClientError),
    #[error("http: {0}")]
    Http(#[from] http::HttpError),
    #[error("server answered {0} to the event stream request")]
    Status(u16),
    #[error("server closed during setup")]
    ClosedDuringSetup,
    #[error("server refused the Socket.IO connect")]
    Refused,
    #[error("malformed event stream")]
    Malformed,
}

/// A connection that is ready to receive updates.
pub enum Conn {
    Ws(Box<Ws>, Protocol),
    Sse(Box<SseConn>),
}

/// An event stream after its head, with the decoder state for the body.
pub struct SseConn {
    stream: TcpStream,
    chunked: Option<Chunked>,
    events: SseParser,
    /// Decoded bytes not yet split into events (reused between reads).
    decoded: Vec<u8>,
}

/// Microseconds since the Unix epoch: the clock both stamps and receipts use.
pub fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// A TCP connection from `source` (any port) to `addr`. Spreading connections over several
/// 127.x source addresses keeps 10,000-connection runs, repeated back to back, clear of the
/// ephemeral port range and of sockets still in TIME_WAIT.
async fn tcp(
    addr: SocketAddr,
    source: Option<IpAddr>,
    recv_buffer: Option<u32>,
) -> std::io::Result<TcpStream> {
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    if let Some(ip) = source {
        socket.bind(SocketAddr::new(ip, 0))?;
    }
    if let Some(bytes) = recv_buffer {
        // Before connect, so the window the server sees is small from the first byte.
        socket.set_recv_buffer_size(bytes)?;
    }
    socket.connect(addr).await
}

/// Opens one connection and brings it to "ready to receive updates". `recv_buffer` shrinks the
/// socket's receive buffer (the slow-consumer scenario's stalled clients fill it in seconds,
/// not minutes).
pub async fn open(
    t: &Target,
    source: Option<IpAddr>,
    recv_buffer: Option<u32>,
) -> Result<Conn, ConnError> {
    let stream = tcp(t.addr, source, recv_buffer).await?;
    match t.protocol {
        Protocol::Sse => open_sse(stream, t).await.map(|s| Conn::Sse(Box::new(s))),
        Protocol::Native | Protocol::Ws | Protocol::Socketio | Protocol::Pusher => {
            open_ws(stream, t).await
        }
    }
}

/// The WebSocket handshake, then whatever the protocol needs before updates flow.
async fn open_ws(stream: TcpStream, t: &Target) -> Result<Conn, ConnError> {
    let url = format!("ws://{}{}", t.host, t.path);
    // Small read buffers: 10,000 client sockets must not cost the generator 128 KiB each.
    let config = WebSocketConfig::default().read_buffer_size(4096);
    let mut ws = Ws::handshake(&url, stream, Some(config)).await?;
    let subscribe = ClientMessage::Subscribe {
        channel: "missions".into(),
        since: None,
    };
    match t.protocol {
        Protocol::Ws => ws.send_message(&subscribe, None).await?,
        Protocol::Native => {
            ws.send_message(&subscribe, None).await?;
            while !frame::is_native_subscribed(&next_text(&mut ws).await?) {}
        }
        Protocol::Socketio => match socketio::connect(&mut ws, None).await {
            Ok(_) => {}
            Err(ClientError::Refused { .. }) => return Err(ConnError::Refused),
            Err(e) => return Err(setup_error(e)),
        },
        Protocol::Pusher => {
            ws.send_text(pusher::subscribe_frame("missions")).await?;
            while !pusher::is_subscription_succeeded(&next_text(&mut ws).await?) {}
        }
        Protocol::Sse => {}
    }
    Ok(Conn::Ws(Box::new(ws), t.protocol))
}

/// The server closing during setup is its own error; anything else is the WebSocket's.
fn setup_error(e: ClientError) -> ConnError {
    match e {
        ClientError::Closed { .. } | ClientError::Ended => ConnError::ClosedDuringSetup,
        other => ConnError::Ws(other),
    }
}

/// The next text frame during setup (other frames are skipped).
async fn next_text(ws: &mut Ws) -> Result<Utf8Bytes, ConnError> {
    ws.next_text().await.map_err(setup_error)
}

/// Sends the event stream request, checks the head, and reads until the `connected` event.
async fn open_sse(mut stream: TcpStream, t: &Target) -> Result<SseConn, ConnError> {
    let sep = if t.path.contains('?') { '&' } else { '?' };
    let token = t
        .token
        .as_deref()
        .map(|tok| format!("{sep}token={tok}"))
        .unwrap_or_default();
    let req = format!(
        "GET {}{token} HTTP/1.1\r\nhost: {}\r\naccept: text/event-stream\r\n\r\n",
        t.path, t.host
    );
    stream.write_all(req.as_bytes()).await?;
    let mut buf = Vec::new();
    let (head, _) = http::read_message(&mut stream, &mut buf, |_| Ok(0)).await?;
    let (status, _) = http::parse_response_head(&head)?;
    if status != 200 {
        return Err(ConnError::Status(status));
    }
    let head_text = std::str::from_utf8(&head).map_err(|_| ConnError::Malformed)?;
    let mut conn = SseConn {
        stream,
        chunked: is_chunked(head_text).then(Chunked::default),
        events: SseParser::default(),
        decoded: Vec::new(),
    };
    let mut connected = false;
    let mut leftover = buf;
    loop {
        conn.absorb(&leftover, |data| {
            if data.contains("\"type\":\"connected\"") {
                connected = true;
            }
        })?;
        if connected {
            return Ok(conn);
        }
        leftover.resize(4096, 0);
        let n = conn.stream.read(&mut leftover).await?;
        if n == 0 {
            return Err(ConnError::ClosedDuringSetup);
        }
        leftover.truncate(n);
    }
}

impl SseConn {
    /// Decodes raw body bytes and hands every complete event's data to `on_data`.
    fn absorb(&mut self, raw: &[u8], mut on_data: impl FnMut(&str)) -> Result<(), ConnError> {
        match &mut self.chunked {
            Some(c) => {
                self.decoded.clear();
                c.feed(raw, &mut self.decoded)
                    .map_err(|_| ConnError::Malformed)?;
                self.events.push(&self.decoded);
            }
            None => self.events.push(raw),
        }
        while let Some(event) = self.events.next_event() {
            if let Some(data) = &event.data {
                on_data(data);
            }
        }
        Ok(())
    }
}

/// Holds a connection open without ever reading from it until told to stop: a client that
/// stopped reading (a frozen tab, a dead phone behind a NAT that still ACKs). Then reads what
/// piled up, for at most 3 s, and says whether the server had ended the connection (a slow
/// consumer cut off) rather than still holding it.
pub async fn stall(conn: Conn, mut stop: watch::Receiver<bool>) -> bool {
    let _ = stop.changed().await;
    let drained = async move {
        match conn {
            Conn::Ws(mut ws, _) => while ws.next_text().await.is_ok() {},
            Conn::Sse(mut sse) => {
                let mut raw = [0u8; 16 * 1024];
                while sse.stream.read(&mut raw).await.is_ok_and(|n| n > 0) {}
            }
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(3), drained)
        .await
        .is_ok()
}

/// Receives until told to stop; returns `(stamp, receive micros)` for every stamped update.
pub async fn receive(
    conn: Conn,
    mut stop: watch::Receiver<bool>,
    delivered: Arc<AtomicU64>,
) -> Vec<(u64, u64)> {
    let mut got = Vec::new();
    match conn {
        Conn::Ws(mut ws, protocol) => loop {
            let text = tokio::select! {
                m = ws.next_text() => match m {
                    Ok(t) => t,
                    Err(_) => break,
                },
                _ = stop.changed() => break,
            };
            let at = now_micros();
            let stamp = match protocol {
                Protocol::Pusher => {
                    if pusher::is_ping(&text) {
                        if ws.send_text(pusher::PONG).await.is_err() {
                            break;
                        }
                        None
                    } else if pusher::is_mission_update(&text) {
                        frame::extract_stamp(&text)
                    } else {
                        None
                    }
                }
                Protocol::Native | Protocol::Ws | Protocol::Sse => {
                    if frame::is_native_mission_update(&text) {
                        frame::extract_stamp(&text)
                    } else {
                        None
                    }
                }
                Protocol::Socketio => match socketio::classify(&text) {
                    Frame::Ping => {
                        if ws.send_text(socketio::PONG).await.is_err() {
                            break;
                        }
                        None
                    }
                    Frame::Event(p) if frame::is_sio_mission_update(p) => frame::extract_stamp(p),
                    _ => None,
                },
            };
            if let Some(s) = stamp {
                got.push((s, at));
                delivered.fetch_add(1, Ordering::Relaxed);
            }
        },
        Conn::Sse(mut sse) => {
            let mut raw = vec![0u8; 4096];
            loop {
                let n = tokio::select! {
                    r = sse.stream.read(&mut raw) => match r {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    },
                    _ = stop.changed() => break,
                };
                let at = now_micros();
                let before = got.len();
                let absorbed = sse.absorb(&raw[..n], |data| {
                    if frame::is_native_mission_update(data)
                        && let Some(s) = frame::extract_stamp(data)
                    {
                        got.push((s, at));
                    }
                });
                delivered.fetch_add((got.len() - before) as u64, Ordering::Relaxed);
                if absorbed.is_err() {
                    break;
                }
            }
        }
    }
    got
}
