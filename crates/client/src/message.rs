//! The native protocol v1 (SPEC §4.1) as the client sees it: the messages it sends (the
//! server's [`ClientMessage`], encoded with serde), and the frames the server sends, decoded
//! into [`ServerMessage`].
//!
//! The server's codec (`switchboard_core::protocol`) decodes client messages and encodes
//! deliveries without a JSON tree; the client goes the other way and is not on a hot path, so
//! it uses `serde_json::Value` for payloads, which is what callers want to inspect.

use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;
use switchboard_core::publication::StreamPosition;

use crate::error::ClientError;

/// Everything a client may send (SPEC §4.1): the server's own definition, so the two cannot
/// drift apart. Channel names are plain strings there, unchecked, so protocol tests can send
/// names the server must refuse; a publish's `data` is raw JSON (see [`raw_json`]).
pub use switchboard_core::protocol::ClientMessage;

/// The JSON text of `message`, with `"ref"` when given (the server echoes it in its answer,
/// which is how the high-level client matches answers to requests).
pub fn encode(message: &ClientMessage, r#ref: Option<u64>) -> String {
    let mut v = serde_json::to_value(message).unwrap_or(Value::Null);
    if let (Some(r), Value::Object(map)) = (r#ref, &mut v) {
        map.insert("ref".to_owned(), Value::from(r));
    }
    v.to_string()
}

/// `value` as the raw JSON a [`ClientMessage::Publish`] carries.
pub fn raw_json(value: &Value) -> Box<RawValue> {
    serde_json::value::to_raw_value(value).unwrap_or_else(|_| {
        // A `Value` always serializes; `null` keeps this total without a panic path.
        RawValue::NULL.to_owned()
    })
}

/// What the server says first (SPEC §4.1 `welcome`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Welcome {
    /// This connection's id: its personal channel is `conn:<id>`.
    pub connection_id: String,
    /// The protocol version (1).
    pub protocol: u32,
    /// The server's ping interval in ms, which bounds how long a healthy connection is silent.
    pub heartbeat_ms: u64,
}

/// One presence entry (SPEC §2 "Presence").
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Member {
    /// The user id, `None` for an anonymous connection.
    pub user: Option<String>,
    /// The member's connection.
    #[serde(rename = "connectionId")]
    pub connection_id: String,
}

/// A publication or notice delivered on a channel.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    /// The event name (the frame's `type`).
    pub event: String,
    /// The channel it was published on.
    pub channel: String,
    /// Its place in the channel's stream; `None` for transient notices (`user_joined`,
    /// `initial_data`) that take no offset and are not in history.
    pub position: Option<StreamPosition>,
    /// Server time of the publication in ms since the Unix epoch, when it has one.
    pub timestamp: Option<u64>,
    /// The payload.
    pub data: Value,
}

/// A decoded server frame (SPEC §4.1).
#[derive(Debug, Clone, PartialEq)]
pub enum ServerMessage {
    /// The first frame of every connection.
    Welcome(Welcome),
    /// The token was accepted.
    Authenticated {
        /// The token's `sub`.
        user: Option<String>,
    },
    /// The token was refused; a close (4001/4002/4004) follows.
    AuthError {
        /// Why.
        message: String,
    },
    /// A subscription is active from `position`.
    Subscribed {
        /// The channel.
        channel: String,
        /// The channel's current position.
        position: StreamPosition,
        /// Whether every publication after the `since` asked for follows; `false` when they
        /// are gone (or no `since` was given).
        recovered: bool,
    },
    /// A subscription ended (asked for, or dropped after a token refresh).
    Unsubscribed {
        /// The channel.
        channel: String,
    },
    /// A client publication was stored.
    Published {
        /// The channel.
        channel: String,
        /// Its offset.
        offset: u64,
    },
    /// A presence answer.
    Presence {
        /// The channel.
        channel: String,
        /// Who is there, cluster-wide.
        members: Vec<Member>,
    },
    /// The answer to `ping`.
    Pong,
    /// A request was refused.
    Error {
        /// The error code (`invalid_json`, `forbidden`, …).
        code: String,
        /// The public message.
        message: String,
    },
    /// A publication or notice on a channel.
    Delivery(Delivery),
}

/// A server frame with the `ref` it echoes, if any.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerFrame {
    /// What the frame says.
    pub message: ServerMessage,
    /// The `ref` of the client message it answers.
    pub r#ref: Option<Value>,
}

fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_owned)
}

fn position(v: &Value) -> Option<StreamPosition> {
    Some(StreamPosition {
        offset: v.get("offset")?.as_u64()?,
        epoch: text(v, "epoch")?,
    })
}

impl ServerFrame {
    /// Decodes one text frame. Unknown `type`s that name a channel are deliveries (event names
    /// are the application's); anything else without the fields its type needs is malformed.
    pub fn parse(frame: &str) -> Result<ServerFrame, ClientError> {
        let malformed = || ClientError::Malformed(frame.chars().take(200).collect());
        let mut v: Value = serde_json::from_str(frame).map_err(|_| malformed())?;
        let kind = text(&v, "type").ok_or_else(malformed)?;
        let channel = text(&v, "channel");
        let message = match kind.as_str() {
            "welcome" => ServerMessage::Welcome(Welcome {
                connection_id: text(&v, "connectionId").ok_or_else(malformed)?,
                protocol: v.get("protocol").and_then(Value::as_u64).unwrap_or(1) as u32,
                heartbeat_ms: v.get("heartbeat").and_then(Value::as_u64).unwrap_or(0),
            }),
            "authenticated" => ServerMessage::Authenticated {
                user: text(&v, "user"),
            },
            "auth_error" => ServerMessage::AuthError {
                message: text(&v, "message").unwrap_or_default(),
            },
            "subscribed" => ServerMessage::Subscribed {
                channel: channel.ok_or_else(malformed)?,
                position: position(&v).ok_or_else(malformed)?,
                recovered: v.get("recovered").and_then(Value::as_bool).unwrap_or(false),
            },
            "unsubscribed" => ServerMessage::Unsubscribed {
                channel: channel.ok_or_else(malformed)?,
            },
            "published" => ServerMessage::Published {
                channel: channel.ok_or_else(malformed)?,
                offset: v
                    .get("offset")
                    .and_then(Value::as_u64)
                    .ok_or_else(malformed)?,
            },
            "presence" => ServerMessage::Presence {
                channel: channel.ok_or_else(malformed)?,
                members: serde_json::from_value(v.get("members").cloned().unwrap_or_default())
                    .map_err(|_| malformed())?,
            },
            "pong" => ServerMessage::Pong,
            "error" => ServerMessage::Error {
                code: text(&v, "code").unwrap_or_default(),
                message: text(&v, "message").unwrap_or_default(),
            },
            _ => ServerMessage::Delivery(Delivery {
                position: position(&v),
                timestamp: v.get("timestamp").and_then(Value::as_u64),
                data: v.get_mut("data").map(Value::take).unwrap_or(Value::Null),
                channel: channel.ok_or_else(malformed)?,
                event: kind,
            }),
        };
        let r#ref = v.get_mut("ref").map(Value::take);
        Ok(ServerFrame { message, r#ref })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn client_messages_encode_as_the_spec_writes_them() {
        let sub = ClientMessage::Subscribe {
            channel: "missions".into(),
            since: Some(StreamPosition {
                offset: 7,
                epoch: "k3".into(),
            }),
        };
        assert_eq!(
            encode(&sub, Some(3)),
            r#"{"channel":"missions","ref":3,"since":{"epoch":"k3","offset":7},"type":"subscribe"}"#
        );
        let auth = ClientMessage::Auth {
            token: "t".into(),
            city_id: None,
        };
        assert_eq!(encode(&auth, None), r#"{"token":"t","type":"auth"}"#);
        assert_eq!(encode(&ClientMessage::Ping, None), r#"{"type":"ping"}"#);
        let publish = ClientMessage::Publish {
            channel: "room:1".into(),
            event: "note".into(),
            data: raw_json(&serde_json::json!({"n": 1.5})),
        };
        let back = switchboard_core::protocol::decode(&encode(&publish, Some(9))).unwrap();
        assert!(
            matches!(back.message, ClientMessage::Publish { ref data, .. } if data.get() == r#"{"n":1.5}"#)
        );
        assert_eq!(back.r#ref.map(|r| r.get().to_owned()), Some("9".to_owned()));
    }

    #[test]
    fn server_frames_decode() {
        let w = ServerFrame::parse(r#"{"type":"welcome","message":"Connected to WebSocket server","connectionId":"abc","protocol":1,"heartbeat":30000}"#).unwrap();
        assert_eq!(
            w.message,
            ServerMessage::Welcome(Welcome {
                connection_id: "abc".into(),
                protocol: 1,
                heartbeat_ms: 30000
            })
        );
        let s = ServerFrame::parse(r#"{"type":"subscribed","channel":"missions","offset":12,"epoch":"k3","recovered":true,"ref":5}"#).unwrap();
        assert_eq!(s.r#ref, Some(Value::from(5)));
        assert!(matches!(
            s.message,
            ServerMessage::Subscribed { recovered: true, ref position, .. } if position.offset == 12
        ));
        let d = ServerFrame::parse(r#"{"type":"mission-update","channel":"missions","offset":13,"epoch":"k3","timestamp":17,"data":{"id":1}}"#).unwrap();
        let ServerMessage::Delivery(d) = d.message else {
            panic!("not a delivery")
        };
        assert_eq!(
            (d.event.as_str(), d.position.map(|p| p.offset), d.timestamp),
            ("mission-update", Some(13), Some(17))
        );
        assert_eq!(d.data["id"], 1);
        let j =
            ServerFrame::parse(r#"{"type":"user_joined","channel":"room:1","data":{}}"#).unwrap();
        assert!(matches!(
            j.message,
            ServerMessage::Delivery(Delivery { position: None, .. })
        ));
    }

    #[test]
    fn malformed_frames_are_errors() {
        for bad in [
            "",
            "[]",
            r#"{"type":1}"#,
            r#"{"type":"subscribed","channel":"a"}"#,
            r#"{"type":"note"}"#,
        ] {
            assert!(
                matches!(ServerFrame::parse(bad), Err(ClientError::Malformed(_))),
                "{bad}"
            );
        }
    }
}
