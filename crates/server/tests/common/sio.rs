//! A minimal Socket.IO v5 client over a real WebSocket (Engine.IO v4 `transport=websocket`),
//! enough for Rust tests; the real socket.io-client runs in tests/interop.

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

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
        let url = format!("ws://{addr}/socket.io/?EIO=4&transport=websocket");
        let mut req = url.into_client_request().unwrap();
        if let Some(o) = origin {
            req.headers_mut().insert("Origin", o.parse().unwrap());
        }
        let (socket, _) = tokio_tungstenite::connect_async(req)
            .await
            .map_err(|e| match e {
                tokio_tungstenite::tungstenite::Error::Http(r) => r.status().to_string(),
                other => other.to_string(),
            })?;
        let mut sio = Sio {
            socket,
            sid: String::new(),
        };
        let open = sio.text().await;
        assert!(open.starts_with('0'), "engine.io open: {open}");
        let connect = match auth {
            Some(a) => format!("40{a}"),
            None => "40".to_owned(),
        };
        sio.send_text(connect).await;
        let reply = sio.text().await;
        if let Some(err) = reply.strip_prefix("44") {
            let v: Value = serde_json::from_str(err).unwrap();
            return Err(v["message"].as_str().unwrap_or_default().to_owned());
        }
        let ok: Value =
            serde_json::from_str(reply.strip_prefix("40").expect("connect ok")).unwrap();
        sio.sid = ok["sid"].as_str().unwrap().to_owned();
        Ok(sio)
    }

    /// The next event or ack, or None when the server ended the socket (a namespace
    /// disconnect `41`, an Engine.IO close, a close frame, EOF or an error); answers pings.
    pub async fn next_packet(&mut self) -> Option<Packet> {
        loop {
            let msg = self.socket.next().await?;
            let Ok(Message::Text(t)) = msg else {
                match msg {
                    Ok(Message::Close(_)) | Err(_) => return None,
                    _ => continue,
                }
            };
            match t.as_str() {
                "2" => {
                    let _ = self.socket.send(Message::text("3")).await;
                }
                "41" | "1" => return None,
                t if t.starts_with("42") || t.starts_with("43") => {
                    return Some(parse_packet(t));
                }
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
            let msg = tokio::time::timeout(WAIT, self.socket.next())
                .await
                .expect("the server did not end the connection");
            match msg {
                Some(Ok(Message::Text(t))) if t.as_str() == "2" => {
                    let _ = self.socket.send(Message::text("3")).await;
                }
                Some(Ok(Message::Text(t))) => texts.push(t.to_string()),
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return texts,
                Some(Ok(_)) => {}
            }
        }
    }

    async fn send_text(&mut self, t: String) {
        self.socket.send(Message::text(t)).await.expect("send");
    }

    /// Next Engine.IO text message, answering pings.
    async fn text(&mut self) -> String {
        loop {
            let msg = tokio::time::timeout(WAIT, self.socket.next())
                .await
                .expect("timed out waiting for a socket.io frame")
                .expect("stream ended")
                .expect("ws error");
            if let Message::Text(t) = msg {
                if t.as_str() == "2" {
                    self.send_text("3".into()).await;
                    continue;
                }
                return t.to_string();
            }
        }
    }

    pub async fn emit(&mut self, event: &str, data: Value) {
        self.send_text(format!("42{}", serde_json::json!([event, data])))
            .await;
    }

    pub async fn emit_with_ack(&mut self, id: u64, event: &str, data: Value) {
        self.send_text(format!("42{id}{}", serde_json::json!([event, data])))
            .await;
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
            if let Some(body) = t.strip_prefix("42") {
                let v: Vec<Value> = serde_json::from_str(body).expect("event array");
                if v[0] == event {
                    return (v[1].clone(), v.get(2).cloned().unwrap_or(Value::Null));
                }
            }
        }
    }

    /// Reads until the server disconnects the socket from the namespace (packet `41`) and
    /// returns the events received before it.
    pub async fn until_disconnect(&mut self) -> Vec<(String, Value)> {
        let mut events = Vec::new();
        loop {
            let t = self.text().await;
            if t == "41" {
                return events;
            }
            if let Some(body) = t.strip_prefix("42") {
                let v: Vec<Value> = serde_json::from_str(body).expect("event array");
                events.push((
                    v[0].as_str().unwrap().to_owned(),
                    v.get(1).cloned().unwrap_or(Value::Null),
                ));
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

/// An event (`42…`) or ack (`43…`) packet of namespace `/`.
fn parse_packet(t: &str) -> Packet {
    if let Some(body) = t.strip_prefix("42") {
        let v: Vec<Value> = serde_json::from_str(body).expect("event array");
        return Packet::Event(
            v[0].as_str().unwrap().to_owned(),
            v.get(1).cloned().unwrap_or(Value::Null),
        );
    }
    if let Some(body) = t.strip_prefix("43") {
        let at = body.find('[').expect("ack array");
        let v: Vec<Value> = serde_json::from_str(&body[at..]).unwrap();
        return Packet::Ack(body[..at].parse().unwrap(), v[0].clone());
    }
    panic!("unexpected socket.io packet {t}");
}
