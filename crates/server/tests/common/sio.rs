//! A Socket.IO v5 test client over a real WebSocket (Engine.IO v4 `transport=websocket`):
//! the framing is `switchboard_client::socketio`'s, this adds what tests want (fail after
//! [`WAIT`], events as `(name, first argument)`); the real socket.io-client runs in
//! tests/interop.

use serde_json::Value;
use switchboard_client::socketio::{self, Frame};
use switchboard_client::{ClientError, Connection};

use super::{Socket, WAIT};

/// What the server sent on namespace `/`.
#[derive(Debug, Clone, PartialEq)]
pub enum Packet {
    /// `emit(event, data)`.
    Event(String, Value),
    /// An answer to the client's `emit(…, ack)` with this id.
    Ack(u64, Value),
}

pub struct Sio {
    socket: Socket,
    pub sid: String,
}

impl Sio {
    /// Connects to `/` with an optional `auth` payload; `Err` carries the `connect_error`
    /// message or the HTTP status of a refused upgrade.
    pub async fn connect(
        addr: std::net::SocketAddr,
        auth: Option<Value>,
        origin: Option<&str>,
    ) -> Result<Sio, String> {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let url = socketio::endpoint(&format!("ws://{addr}"));
        let mut req = url.into_client_request().unwrap();
        if let Some(o) = origin {
            req.headers_mut().insert("Origin", o.parse().unwrap());
        }
        let mut socket = Connection::open(req).await.map_err(|e| match e {
            ClientError::WebSocket(tokio_tungstenite::tungstenite::Error::Http(r)) => {
                r.status().to_string()
            }
            other => other.to_string(),
        })?;
        let connected = tokio::time::timeout(WAIT, socketio::connect(&mut socket, auth.as_ref()))
            .await
            .expect("timed out waiting for the socket.io connect");
        match connected {
            Ok(sid) => Ok(Sio { socket, sid }),
            Err(ClientError::Refused { message, .. }) => Err(message),
            Err(e) => panic!("socket.io connect: {e}"),
        }
    }

    /// The next event or ack, or None when the server ended the socket (a namespace
    /// disconnect `41`, an Engine.IO close, a close frame, EOF or an error); answers pings.
    pub async fn next_packet(&mut self) -> Option<Packet> {
        loop {
            let t = self.socket.next_text().await.ok()?;
            match socketio::classify(&t) {
                Frame::Ping => {
                    let _ = self.socket.send_text(socketio::PONG).await;
                }
                Frame::Disconnect | Frame::Close => return None,
                Frame::Event(_) | Frame::Ack(_) => return Some(parse_packet(&t)),
                _ => {}
            }
        }
    }

    /// Sends a raw Engine.IO text message (for malformed packets).
    pub async fn send_raw(&mut self, t: &str) {
        self.send_text(t.to_owned()).await;
    }

    /// Waits until the server ends the connection (a close frame, EOF or a reset), answering
    /// pings; the text messages received before it. Fails after [`WAIT`].
    pub async fn until_closed(&mut self) -> Vec<String> {
        let mut texts = Vec::new();
        loop {
            let msg = tokio::time::timeout(WAIT, self.socket.next_text())
                .await
                .expect("the server did not end the connection");
            match msg {
                Ok(t) if t.as_str() == socketio::PING => {
                    let _ = self.socket.send_text(socketio::PONG).await;
                }
                Ok(t) => texts.push(t.to_string()),
                Err(_) => return texts,
            }
        }
    }

    async fn send_text(&mut self, t: String) {
        self.socket.send_text(t).await.expect("send");
    }

    /// Next Engine.IO text message, answering pings.
    async fn text(&mut self) -> String {
        loop {
            let t = tokio::time::timeout(WAIT, self.socket.next_text())
                .await
                .expect("timed out waiting for a socket.io frame")
                .expect("ws error or close");
            if t.as_str() == socketio::PING {
                self.send_text(socketio::PONG.into()).await;
                continue;
            }
            return t.to_string();
        }
    }

    pub async fn emit(&mut self, event: &str, data: Value) {
        self.send_text(socketio::emit(event, &data, None)).await;
    }

    pub async fn emit_with_ack(&mut self, id: u64, event: &str, data: Value) {
        self.send_text(socketio::emit(event, &data, Some(id))).await;
    }

    /// Next event or ack.
    pub async fn recv(&mut self) -> Packet {
        let t = self.text().await;
        parse_packet(&t)
    }

    /// Next `event` with its data and its position argument `{channel, offset, epoch}`.
    pub async fn recv_publication(&mut self, event: &str) -> (Value, Value) {
        loop {
            let t = self.text().await;
            if let Some(socketio::Packet::Event { event: e, mut args }) = event_of(&t)
                && e == event
            {
                let position = args.get(1).cloned().unwrap_or(Value::Null);
                return (args.swap_remove(0), position);
            }
        }
    }

    /// Reads until the server disconnects the socket from the namespace (packet `41`) and
    /// returns the events received before it.
    pub async fn until_disconnect(&mut self) -> Vec<(String, Value)> {
        let mut events = Vec::new();
        loop {
            let t = self.text().await;
            if socketio::classify(&t) == Frame::Disconnect {
                return events;
            }
            if let Some(socketio::Packet::Event { event, args }) = event_of(&t) {
                events.push((event, args.into_iter().next().unwrap_or(Value::Null)));
            }
        }
    }

    /// Next event named `event`, skipping others.
    pub async fn recv_event(&mut self, event: &str) -> Value {
        loop {
            if let Packet::Event(e, d) = self.recv().await
                && e == event
            {
                return d;
            }
        }
    }

    /// The answer to ack id `id`, skipping events.
    pub async fn recv_ack(&mut self, id: u64) -> Value {
        loop {
            if let Packet::Ack(i, d) = self.recv().await
                && i == id
            {
                return d;
            }
        }
    }
}

/// An event frame decoded, `None` for other frames; a malformed event fails the test.
fn event_of(t: &str) -> Option<socketio::Packet> {
    matches!(socketio::classify(t), Frame::Event(_))
        .then(|| socketio::Packet::parse(t).expect("event array"))
}

/// An event (`42…`) or ack (`43…`) packet of namespace `/`.
fn parse_packet(t: &str) -> Packet {
    match socketio::Packet::parse(t) {
        Some(socketio::Packet::Event { event, args }) => {
            Packet::Event(event, args.into_iter().next().unwrap_or(Value::Null))
        }
        Some(socketio::Packet::Ack(id, args)) => {
            Packet::Ack(id, args.into_iter().next().expect("ack argument"))
        }
        None => panic!("unexpected socket.io packet {t}"),
    }
}
