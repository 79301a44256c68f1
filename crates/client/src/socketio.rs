//! Sans-IO Socket.IO v5 framing over Engine.IO v4's websocket transport (SPEC §4.2): enough to
//! connect to namespace `/`, answer pings, emit, and read events and acks. The real
//! `socket.io-client` is tested in tests/interop; this is for Rust tests and the load
//! generator, which both need the same few packet shapes.
//!
//! [`connect`] does the handshake over a [`Connection`] (the WebSocket at
//! `/socket.io/?EIO=4&transport=websocket`).

use serde_json::Value;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::connection::Connection;
use crate::error::ClientError;

/// The Engine.IO websocket endpoint under a server's base URL (`ws://host:port`).
pub fn endpoint(base: &str) -> String {
    format!("{base}/socket.io/?EIO=4&transport=websocket")
}

/// Socket.IO connect to the main namespace, without an `auth` payload.
pub const CONNECT: &str = "40";
/// Engine.IO ping, sent by the server.
pub const PING: &str = "2";
/// Engine.IO pong, the answer to [`PING`].
pub const PONG: &str = "3";

/// What a text frame of the websocket transport is, without parsing its JSON.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    /// `0{…}`: the Engine.IO open packet; answer with a connect.
    Open,
    /// `40…`: the namespace connect succeeded.
    Connected,
    /// `44…`: the server refused the namespace connect.
    ConnectError,
    /// `2`: an Engine.IO ping; answer with [`PONG`].
    Ping,
    /// `42…`: an event; the payload is the JSON array after the packet type.
    Event(&'a str),
    /// `43…`: an ack; the id and array follow.
    Ack(&'a str),
    /// `41`: the server disconnected the socket from the namespace.
    Disconnect,
    /// `1`: Engine.IO close.
    Close,
    /// Anything else (noop, other packets).
    Other,
}

/// Classifies a text frame by its first bytes (cheap enough for every frame of a load test).
pub fn classify(text: &str) -> Frame<'_> {
    let b = text.as_bytes();
    match b.first() {
        Some(b'0') => Frame::Open,
        Some(b'1') if b.len() == 1 => Frame::Close,
        Some(b'2') if b.len() == 1 => Frame::Ping,
        Some(b'4') => match b.get(1) {
            Some(b'0') => Frame::Connected,
            Some(b'1') if b.len() == 2 => Frame::Disconnect,
            Some(b'2') => Frame::Event(&text[2..]),
            Some(b'3') => Frame::Ack(&text[2..]),
            Some(b'4') => Frame::ConnectError,
            _ => Frame::Other,
        },
        _ => Frame::Other,
    }
}

/// An event or an ack of namespace `/`, decoded.
#[derive(Debug, Clone, PartialEq)]
pub enum Packet {
    /// `emit(event, data)`; the server's publications add a position argument.
    Event {
        /// The event name.
        event: String,
        /// The arguments after the name.
        args: Vec<Value>,
    },
    /// The answer to the client's `emit(…, ack)` with this id: its arguments.
    Ack(u64, Vec<Value>),
}

impl Packet {
    /// Decodes an event (`42…`) or ack (`43…`) frame; `None` for other frames or bad JSON.
    pub fn parse(text: &str) -> Option<Packet> {
        match classify(text) {
            Frame::Event(body) => {
                let mut v: Vec<Value> = serde_json::from_str(body).ok()?;
                if v.is_empty() {
                    return None;
                }
                let event = v.remove(0).as_str()?.to_owned();
                Some(Packet::Event { event, args: v })
            }
            Frame::Ack(body) => {
                let at = body.find('[')?;
                let args = serde_json::from_str(&body[at..]).ok()?;
                Some(Packet::Ack(body[..at].parse().ok()?, args))
            }
            _ => None,
        }
    }
}

/// The frame of `emit(event, data)`, asking for an ack with `ack` when given.
pub fn emit(event: &str, data: &Value, ack: Option<u64>) -> String {
    let args = Value::Array(vec![Value::from(event), data.clone()]);
    match ack {
        Some(id) => format!("42{id}{args}"),
        None => format!("42{args}"),
    }
}

/// Connects a WebSocket opened on [`endpoint`] to namespace `/`: reads the Engine.IO open (the
/// first frame, or [`ClientError::Malformed`]), sends the connect (with `auth` when given),
/// answers pings meanwhile, and returns the socket id. A `connect_error` is
/// [`ClientError::Refused`] with its message.
pub async fn connect<S>(
    conn: &mut Connection<S>,
    auth: Option<&Value>,
) -> Result<String, ClientError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let open = conn.next_text().await?;
    if classify(&open) != Frame::Open {
        return Err(ClientError::Malformed(format!(
            "expected the engine.io open, got {open}"
        )));
    }
    let connect = match auth {
        Some(a) => format!("40{a}"),
        None => CONNECT.to_owned(),
    };
    conn.send_text(connect).await?;
    loop {
        let text = conn.next_text().await?;
        match classify(&text) {
            Frame::Ping => conn.send_text(PONG).await?,
            Frame::Connected => {
                let sid = serde_json::from_str::<Value>(&text[2..])
                    .ok()
                    .and_then(|v| v.get("sid")?.as_str().map(str::to_owned));
                return Ok(sid.unwrap_or_default());
            }
            Frame::ConnectError => {
                let message = serde_json::from_str::<Value>(&text[2..])
                    .ok()
                    .and_then(|v| v.get("message")?.as_str().map(str::to_owned));
                return Err(ClientError::Refused {
                    code: "connect_error".into(),
                    message: message.unwrap_or_default(),
                });
            }
            _ => {}
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn frames_classify() {
        assert_eq!(
            classify(r#"0{"sid":"a","upgrades":[],"pingInterval":25000,"pingTimeout":20000}"#),
            Frame::Open
        );
        assert_eq!(classify(r#"40{"sid":"b"}"#), Frame::Connected);
        assert_eq!(classify("40"), Frame::Connected);
        assert_eq!(classify(r#"44{"message":"no"}"#), Frame::ConnectError);
        assert_eq!(classify("2"), Frame::Ping);
        assert_eq!(classify("2probe"), Frame::Other);
        assert_eq!(classify("1"), Frame::Close);
        assert_eq!(classify("41"), Frame::Disconnect);
        assert_eq!(classify(""), Frame::Other);
        assert_eq!(classify(r#"42["a"]"#), Frame::Event(r#"["a"]"#));
    }

    #[test]
    fn packets_parse_and_emit_round_trips() {
        let p = Packet::parse(r#"42["mission-update",{"id":1},{"offset":3}]"#).unwrap();
        assert_eq!(
            p,
            Packet::Event {
                event: "mission-update".into(),
                args: vec![serde_json::json!({"id":1}), serde_json::json!({"offset":3})]
            }
        );
        assert_eq!(
            Packet::parse(r#"437[{"ok":true}]"#),
            Some(Packet::Ack(7, vec![serde_json::json!({"ok":true})]))
        );
        assert_eq!(Packet::parse("42[]"), None);
        assert_eq!(Packet::parse("42{"), None);
        let data = serde_json::json!({"roomId":"1"});
        assert_eq!(
            emit("join-room", &data, None),
            r#"42["join-room",{"roomId":"1"}]"#
        );
        assert_eq!(
            emit("subscribe", &data, Some(4)),
            r#"424["subscribe",{"roomId":"1"}]"#
        );
    }
}
