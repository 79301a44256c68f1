//! What a Socket.IO client may ask, decoded from `(event, data)` (sans-IO).
//!
//! Event names are those of SPEC §1.2 and §4.2. Decoding only checks shape and channel names;
//! permissions and message cleaning happen in the session, where the identity is known.

use serde_json::Value;
use switchboard_core::channel::ChannelName;
use switchboard_core::codes::ErrorCode;
use switchboard_core::publication::StreamPosition;

/// A decoded client request.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// `join-room` roomId: join `room:<roomId>`; the others get `user-joined`.
    JoinRoom(ChannelName),
    /// `leave-room` roomId: leave `room:<roomId>`.
    LeaveRoom(ChannelName),
    /// `chat-message` `{roomId, message}`: `new-message` to everyone in the room.
    ChatMessage {
        /// `room:<roomId>`.
        room: ChannelName,
        /// The raw text (cleaned by the session).
        message: String,
    },
    /// `typing` `{roomId}`: `user-typing` to the others, never stored.
    Typing(ChannelName),
    /// `subscribe` channel | `{channel, since?}`.
    Subscribe {
        /// The channel.
        channel: ChannelName,
        /// Where the client's copy of the stream ends, to recover what it missed.
        since: Option<StreamPosition>,
    },
    /// `unsubscribe` channel | `{channel}`.
    Unsubscribe(ChannelName),
    /// `ack` `{channel, offset}`: the user's inbox is delivered up to `offset`.
    Ack {
        /// Must be the socket's own `user:<sub>`.
        channel: ChannelName,
        /// Cumulative: everything up to and including it.
        offset: u64,
    },
}

/// Why a request was refused; `message` is shown to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// Catalogue code.
    pub code: ErrorCode,
    /// What is wrong.
    pub message: String,
}

impl Refusal {
    /// A `bad_request` refusal.
    pub fn bad(message: impl Into<String>) -> Self {
        Self {
            code: ErrorCode::BadRequest,
            message: message.into(),
        }
    }
}

/// Decodes one client event.
pub fn decode(event: &str, data: &Value) -> Result<Command, Refusal> {
    match event {
        "join-room" => room(data.get("roomId").unwrap_or(data)).map(Command::JoinRoom),
        "leave-room" => room(data.get("roomId").unwrap_or(data)).map(Command::LeaveRoom),
        "chat-message" => {
            let room = room(data.get("roomId").unwrap_or(&Value::Null))?;
            let message = data
                .get("message")
                .and_then(Value::as_str)
                .ok_or_else(|| Refusal::bad("message must be a string"))?;
            Ok(Command::ChatMessage {
                room,
                message: message.to_owned(),
            })
        }
        "typing" => room(data.get("roomId").unwrap_or(data)).map(Command::Typing),
        "subscribe" => {
            let (channel, since) = match data {
                Value::Object(o) => {
                    let since = match o.get("since") {
                        None | Some(Value::Null) => None,
                        Some(s) => {
                            Some(serde_json::from_value::<StreamPosition>(s.clone()).map_err(
                                |_| Refusal::bad("since must be {offset: number, epoch: string}"),
                            )?)
                        }
                    };
                    (o.get("channel").unwrap_or(&Value::Null), since)
                }
                other => (other, None),
            };
            Ok(Command::Subscribe {
                channel: channel_name(channel)?,
                since,
            })
        }
        "unsubscribe" => {
            channel_name(data.get("channel").unwrap_or(data)).map(Command::Unsubscribe)
        }
        "ack" => {
            let channel = channel_name(data.get("channel").unwrap_or(&Value::Null))?;
            let offset = data
                .get("offset")
                .and_then(Value::as_u64)
                .ok_or_else(|| Refusal {
                    code: ErrorCode::InvalidMessage,
                    message: "ack needs {channel, offset}".into(),
                })?;
            Ok(Command::Ack { channel, offset })
        }
        other => Err(Refusal {
            code: ErrorCode::UnknownType,
            message: format!("Unknown event {:?}", truncate(other, 64)),
        }),
    }
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// `room:<id>` from a room id given as a string or an integer.
fn room(id: &Value) -> Result<ChannelName, Refusal> {
    let id = match id {
        Value::String(s) if !s.is_empty() => s.clone(),
        Value::Number(n) if n.is_i64() || n.is_u64() => n.to_string(),
        _ => return Err(Refusal::bad("roomId must be a non-empty string")),
    };
    ChannelName::parse(&format!("room:{id}"))
        .map_err(|_| Refusal::bad("roomId may only contain letters, digits, '_', ':', '.' and '-'"))
}

fn channel_name(name: &Value) -> Result<ChannelName, Refusal> {
    let name = name
        .as_str()
        .ok_or_else(|| Refusal::bad("channel must be a string"))?;
    ChannelName::parse(name).map_err(|e| Refusal::bad(format!("Invalid channel: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ch(s: &str) -> ChannelName {
        ChannelName::parse(s).unwrap()
    }

    #[test]
    fn decodes_the_room_events() {
        assert_eq!(
            decode("join-room", &json!("room-123")),
            Ok(Command::JoinRoom(ch("room:room-123")))
        );
        assert_eq!(
            decode("join-room", &json!({"roomId": 42})),
            Ok(Command::JoinRoom(ch("room:42")))
        );
        assert_eq!(
            decode("leave-room", &json!("r")),
            Ok(Command::LeaveRoom(ch("room:r")))
        );
        assert_eq!(
            decode("chat-message", &json!({"roomId":"r","message":"hi"})),
            Ok(Command::ChatMessage {
                room: ch("room:r"),
                message: "hi".into()
            })
        );
        assert_eq!(
            decode("typing", &json!({"roomId":"r"})),
            Ok(Command::Typing(ch("room:r")))
        );
    }

    #[test]
    fn decodes_acks() {
        assert_eq!(
            decode("ack", &json!({"channel": "user:alice", "offset": 3})),
            Ok(Command::Ack {
                channel: ch("user:alice"),
                offset: 3
            })
        );
        assert_eq!(
            decode("ack", &json!({"channel": "user:alice"}))
                .unwrap_err()
                .code,
            ErrorCode::InvalidMessage
        );
    }

    #[test]
    fn decodes_subscriptions() {
        assert_eq!(
            decode("subscribe", &json!("missions")),
            Ok(Command::Subscribe {
                channel: ch("missions"),
                since: None
            })
        );
        assert_eq!(
            decode(
                "subscribe",
                &json!({"channel":"missions","since":{"offset":3,"epoch":"ab"}})
            ),
            Ok(Command::Subscribe {
                channel: ch("missions"),
                since: Some(StreamPosition {
                    offset: 3,
                    epoch: "ab".into()
                })
            })
        );
        assert_eq!(
            decode("unsubscribe", &json!({"channel":"lobby"})),
            Ok(Command::Unsubscribe(ch("lobby")))
        );
    }

    #[test]
    fn refuses_bad_shapes() {
        let code = |e: &str, d: Value| decode(e, &d).unwrap_err().code;
        assert_eq!(code("join-room", json!("")), ErrorCode::BadRequest);
        assert_eq!(code("join-room", json!("a b")), ErrorCode::BadRequest);
        assert_eq!(code("join-room", json!(null)), ErrorCode::BadRequest);
        assert_eq!(
            code("chat-message", json!({"roomId":"r"})),
            ErrorCode::BadRequest
        );
        assert_eq!(code("chat-message", json!("hi")), ErrorCode::BadRequest);
        assert_eq!(
            code("subscribe", json!({"channel":"x","since":{"offset":"no"}})),
            ErrorCode::BadRequest
        );
        assert_eq!(code("subscribe", json!(5)), ErrorCode::BadRequest);
        assert_eq!(code("publish", json!({})), ErrorCode::UnknownType);
    }
}
