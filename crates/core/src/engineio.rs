//! Engine.IO v4 and Socket.IO v5 packets of the websocket transport (sans-IO, tested byte for
//! byte, also against frames captured from the real socket.io-client).
//!
//! Switchboard serves a websocket opened directly (`/socket.io/?EIO=4&transport=websocket`,
//! no `sid`) itself: one Engine.IO packet per WebSocket text message, the Socket.IO packet
//! inside an Engine.IO `message` (`4`). This module decodes what a client sends and encodes
//! what the server sends; the publications themselves are encoded by [`crate::socketio`] as
//! whole `42[…]` packets, once per audience. Polling and the upgrade from it stay with
//! socketioxide (docs/socketio.md).

use serde_json::Value;
use serde_json::value::RawValue;

use crate::socketio::RESERVED_EVENTS;

/// The Engine.IO ping the server sends every `pingInterval`.
pub const PING: &str = "2";
/// The Socket.IO `DISCONNECT` of namespace `/`: the server ended the socket.
pub const DISCONNECT: &str = "41";
/// The namespace Switchboard serves.
pub const MAIN_NAMESPACE: &str = "/";

/// Why a client frame is not a packet this server takes. Socket.IO servers close the
/// connection on any of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PacketError {
    /// The frame is empty or its Engine.IO type is unknown, or one only a server sends.
    #[error("not an engine.io packet a client sends")]
    Engine,
    /// The Socket.IO packet type is unknown, or one only a server sends.
    #[error("not a socket.io packet a client sends")]
    SocketIoType,
    /// Binary events and acks (types `5` and `6`): not served on this transport.
    #[error("binary packets are not supported")]
    Binary,
    /// The payload does not fit the packet type (bad JSON, not an array, no event name, a
    /// reserved event name, a connect payload that is not an object).
    #[error("invalid socket.io payload")]
    Payload,
}

/// An Engine.IO packet from the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnginePacket<'a> {
    /// `1`: the client closes the transport.
    Close,
    /// `2…`: a ping (only during an upgrade probe; a v4 client never pings otherwise).
    Ping(&'a str),
    /// `3…`: the answer to the server's ping.
    Pong(&'a str),
    /// `4…`: a Socket.IO packet.
    Message(&'a str),
    /// `5`: the end of an upgrade.
    Upgrade,
    /// `6`: nothing.
    Noop,
}

/// Decodes one WebSocket text message of the Engine.IO websocket transport.
pub fn decode_engine(text: &str) -> Result<EnginePacket<'_>, PacketError> {
    let rest = text.get(1..).unwrap_or("");
    match text.as_bytes().first() {
        Some(b'1') => Ok(EnginePacket::Close),
        Some(b'2') => Ok(EnginePacket::Ping(rest)),
        Some(b'3') => Ok(EnginePacket::Pong(rest)),
        Some(b'4') => Ok(EnginePacket::Message(rest)),
        Some(b'5') => Ok(EnginePacket::Upgrade),
        Some(b'6') => Ok(EnginePacket::Noop),
        // `0` (open) is the server's; anything else is not Engine.IO.
        _ => Err(PacketError::Engine),
    }
}

/// A Socket.IO packet from the client, borrowing from the frame.
#[derive(Debug, Clone, PartialEq)]
pub enum SioPacket<'a> {
    /// `0[/nsp,][{auth}]`: connect to a namespace, with the client's `auth` object.
    Connect {
        /// The namespace (`/` when the packet names none).
        nsp: &'a str,
        /// The `auth` payload, when the client passed one.
        auth: Option<Value>,
    },
    /// `1[/nsp,]`: the client leaves the namespace.
    Disconnect {
        /// The namespace.
        nsp: &'a str,
    },
    /// `2[/nsp,][id][event,args…]`: `emit(event, …args[, ack])`.
    Event {
        /// The namespace.
        nsp: &'a str,
        /// The ack id, when the client passed a callback.
        id: Option<u64>,
        /// The event name.
        event: String,
        /// The first argument after the name (`null` when there is none): what a handler's
        /// `data` is.
        data: Value,
    },
    /// `3[/nsp,]id[args…]`: the client's answer to a server ack request (Switchboard never
    /// asks for one, so it is ignored).
    Ack {
        /// The namespace.
        nsp: &'a str,
        /// The id the server asked with.
        id: u64,
    },
}

/// Decodes the Socket.IO packet inside an Engine.IO `message` (the text after its `4`).
pub fn decode_socketio(text: &str) -> Result<SioPacket<'_>, PacketError> {
    let kind = *text.as_bytes().first().ok_or(PacketError::SocketIoType)?;
    // A first character of several bytes is no packet type (and `[1..]` would split it).
    let mut rest = text.get(1..).ok_or(PacketError::SocketIoType)?;
    if matches!(kind, b'5' | b'6') {
        return Err(PacketError::Binary);
    }
    let mut nsp = MAIN_NAMESPACE;
    if rest.starts_with('/') {
        let end = rest.find(',').unwrap_or(rest.len());
        nsp = &rest[..end];
        rest = rest.get(end + 1..).unwrap_or("");
    }
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let id = match digits {
        0 => None,
        _ => Some(
            rest[..digits]
                .parse::<u64>()
                .map_err(|_| PacketError::Payload)?,
        ),
    };
    let payload = &rest[digits..];
    match kind {
        b'0' if id.is_none() => {
            if payload.is_empty() {
                return Ok(SioPacket::Connect { nsp, auth: None });
            }
            match serde_json::from_str::<Value>(payload) {
                Ok(auth @ Value::Object(_)) => Ok(SioPacket::Connect {
                    nsp,
                    auth: Some(auth),
                }),
                _ => Err(PacketError::Payload),
            }
        }
        b'1' if id.is_none() && payload.is_empty() => Ok(SioPacket::Disconnect { nsp }),
        b'2' => {
            let mut args: Vec<Value> =
                serde_json::from_str(payload).map_err(|_| PacketError::Payload)?;
            if args.is_empty() {
                return Err(PacketError::Payload);
            }
            let Value::String(event) = args.remove(0) else {
                return Err(PacketError::Payload);
            };
            if RESERVED_EVENTS.contains(&event.as_str()) {
                return Err(PacketError::Payload);
            }
            let data = args.into_iter().next().unwrap_or(Value::Null);
            Ok(SioPacket::Event {
                nsp,
                id,
                event,
                data,
            })
        }
        b'3' => match (id, serde_json::from_str::<Vec<&RawValue>>(payload)) {
            (Some(id), Ok(_)) => Ok(SioPacket::Ack { nsp, id }),
            _ => Err(PacketError::Payload),
        },
        b'0' | b'1' => Err(PacketError::Payload),
        // `4` (connect error) is the server's, the rest unknown.
        _ => Err(PacketError::SocketIoType),
    }
}

/// The Engine.IO `open` packet, the first message of a session: its id and heartbeat. No
/// `upgrades`: a websocket session has nothing to upgrade to.
pub fn encode_open(
    sid: &str,
    ping_interval_ms: u64,
    ping_timeout_ms: u64,
    max_payload: usize,
) -> String {
    format!(
        "0{{\"sid\":{},\"upgrades\":[],\"pingInterval\":{ping_interval_ms},\"pingTimeout\":{ping_timeout_ms},\"maxPayload\":{max_payload}}}",
        json_str(sid)
    )
}

/// `40{"sid":…}`: the socket is connected to namespace `/` with this id.
pub fn encode_connected(sid: &str) -> String {
    format!("40{{\"sid\":{}}}", json_str(sid))
}

/// `44[/nsp,]{"message":…}`: the connect was refused (socket.io-client's `connect_error`).
pub fn encode_connect_error(nsp: &str, message: &str) -> String {
    let message = json_str(message);
    if nsp == MAIN_NAMESPACE {
        format!("44{{\"message\":{message}}}")
    } else {
        format!("44{nsp},{{\"message\":{message}}}")
    }
}

/// `43<id>[body]`: the answer to the client's `emit(…, ack)` with id `id`.
pub fn encode_ack(id: u64, body: &RawValue) -> String {
    let body = body.get();
    let mut out = String::with_capacity(body.len() + 24);
    out.push_str("43");
    out.push_str(&id.to_string());
    out.push('[');
    out.push_str(body);
    out.push(']');
    out
}

/// A string as JSON; serializing a `&str` cannot fail.
fn json_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_owned())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn engine_packets_decode() {
        assert_eq!(decode_engine("1"), Ok(EnginePacket::Close));
        assert_eq!(decode_engine("2probe"), Ok(EnginePacket::Ping("probe")));
        assert_eq!(decode_engine("3"), Ok(EnginePacket::Pong("")));
        assert_eq!(
            decode_engine("42[\"a\"]"),
            Ok(EnginePacket::Message("2[\"a\"]"))
        );
        assert_eq!(decode_engine("5"), Ok(EnginePacket::Upgrade));
        assert_eq!(decode_engine("6"), Ok(EnginePacket::Noop));
        for bad in ["", "0{}", "9", "x", "7"] {
            assert_eq!(decode_engine(bad), Err(PacketError::Engine), "{bad:?}");
        }
    }

    #[test]
    fn connects_with_and_without_auth_and_namespaces() {
        assert_eq!(
            decode_socketio("0"),
            Ok(SioPacket::Connect {
                nsp: "/",
                auth: None
            })
        );
        assert_eq!(
            decode_socketio("0{\"token\":\"t\"}"),
            Ok(SioPacket::Connect {
                nsp: "/",
                auth: Some(json!({"token": "t"}))
            })
        );
        assert_eq!(
            decode_socketio("0/admin,{\"a\":1}"),
            Ok(SioPacket::Connect {
                nsp: "/admin",
                auth: Some(json!({"a": 1}))
            })
        );
        assert_eq!(
            decode_socketio("0/admin,"),
            Ok(SioPacket::Connect {
                nsp: "/admin",
                auth: None
            })
        );
        assert_eq!(decode_socketio("0\"x\""), Err(PacketError::Payload));
        assert_eq!(decode_socketio("0[1]"), Err(PacketError::Payload));
        assert_eq!(decode_socketio("1"), Ok(SioPacket::Disconnect { nsp: "/" }));
        assert_eq!(
            decode_socketio("1/x,"),
            Ok(SioPacket::Disconnect { nsp: "/x" })
        );
    }

    #[test]
    fn events_decode_with_and_without_ack_ids() {
        assert_eq!(
            decode_socketio("2[\"join-room\",\"r\",{\"extra\":1}]"),
            Ok(SioPacket::Event {
                nsp: "/",
                id: None,
                event: "join-room".into(),
                data: json!("r")
            })
        );
        assert_eq!(
            decode_socketio("2/chat,12[\"e\"]"),
            Ok(SioPacket::Event {
                nsp: "/chat",
                id: Some(12),
                event: "e".into(),
                data: Value::Null
            })
        );
        assert_eq!(
            decode_socketio("37[{\"ok\":1}]"),
            Ok(SioPacket::Ack { nsp: "/", id: 7 })
        );
    }

    #[test]
    fn malformed_and_unsupported_packets_are_refused() {
        // Found by the engineio_packets fuzz target: a multi-byte first character panicked.
        assert_eq!(
            decode_socketio("\u{a1}2n\"]").err(),
            Some(PacketError::SocketIoType)
        );
        for bad in [
            "2[",
            "2{\"a\":1}",
            "2[1,2]",
            "2[]",
            "2",
            "2[\"connect\"]",
            "3[1]",
            "3x",
        ] {
            assert_eq!(decode_socketio(bad), Err(PacketError::Payload), "{bad:?}");
        }
        for bad in ["", "x", "4{\"message\":\"m\"}", "9"] {
            assert_eq!(
                decode_socketio(bad),
                Err(PacketError::SocketIoType),
                "{bad:?}"
            );
        }
        assert_eq!(
            decode_socketio("51-[\"e\",{\"_placeholder\":true,\"num\":0}]"),
            Err(PacketError::Binary)
        );
        assert_eq!(decode_socketio("61-0[]"), Err(PacketError::Binary));
        assert_eq!(
            decode_socketio("2999999999999999999999[\"e\"]"),
            Err(PacketError::Payload)
        );
    }

    #[test]
    fn server_packets_encode_byte_for_byte() {
        assert_eq!(
            encode_open("s\"id", 25000, 20000, 1_000_000),
            r#"0{"sid":"s\"id","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#
        );
        assert_eq!(encode_connected("abc"), r#"40{"sid":"abc"}"#);
        assert_eq!(
            encode_connect_error("/", "Invalid token"),
            r#"44{"message":"Invalid token"}"#
        );
        assert_eq!(
            encode_connect_error("/admin", "Invalid namespace"),
            r#"44/admin,{"message":"Invalid namespace"}"#
        );
        let body = RawValue::from_string(r#"{"ok":true}"#.into()).unwrap();
        assert_eq!(encode_ack(7, &body), r#"437[{"ok":true}]"#);
        let null = RawValue::from_string("null".into()).unwrap();
        assert_eq!(encode_ack(0, &null), "430[null]");
    }
}
