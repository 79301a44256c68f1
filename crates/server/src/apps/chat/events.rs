//! The chat app's client events, decoded from `(event, data)` (sans-IO): the Socket.IO room
//! events of SPEC §1.2 and the native lobby `chat`. Decoding only checks shape and room names;
//! permissions and text cleaning happen when the event is handled.

use serde_json::Value;
use switchboard_core::channel::ChannelName;
use switchboard_core::codes::ErrorCode;
use switchboard_core::refusal::Refusal;

/// The lobby chat line (native `{"type":"chat","message"}`).
pub const LOBBY_CHAT: &str = "chat";
/// `join-room` roomId.
pub const JOIN_ROOM: &str = "join-room";
/// `leave-room` roomId.
pub const LEAVE_ROOM: &str = "leave-room";
/// `chat-message` `{roomId, message}`.
pub const CHAT_MESSAGE: &str = "chat-message";
/// `typing` `{roomId}`.
pub const TYPING: &str = "typing";
/// Every client event of the chat app.
pub const CLIENT_EVENTS: &[&str] = &[LOBBY_CHAT, JOIN_ROOM, LEAVE_ROOM, CHAT_MESSAGE, TYPING];

/// A decoded chat request.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// `chat` `{message}`: a line in the lobby.
    Lobby(String),
    /// `join-room` roomId: join `room:<roomId>`; the others get `user-joined`.
    JoinRoom(ChannelName),
    /// `leave-room` roomId: leave `room:<roomId>`.
    LeaveRoom(ChannelName),
    /// `chat-message` `{roomId, message}`: `new-message` to everyone in the room.
    ChatMessage {
        /// `room:<roomId>`.
        room: ChannelName,
        /// The raw text (cleaned when handled).
        message: String,
    },
    /// `typing` `{roomId}`: `user-typing` to the others, never stored.
    Typing(ChannelName),
}

/// Decodes one chat event.
pub fn decode(event: &str, data: &Value) -> Result<Command, Refusal> {
    match event {
        LOBBY_CHAT => data
            .get("message")
            .and_then(Value::as_str)
            .map(|m| Command::Lobby(m.to_owned()))
            .ok_or_else(|| Refusal::bad("message must be a string")),
        JOIN_ROOM => room(data.get("roomId").unwrap_or(data)).map(Command::JoinRoom),
        LEAVE_ROOM => room(data.get("roomId").unwrap_or(data)).map(Command::LeaveRoom),
        CHAT_MESSAGE => {
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
        TYPING => room(data.get("roomId").unwrap_or(data)).map(Command::Typing),
        other => Err(Refusal::new(
            ErrorCode::UnknownType,
            format!("Unknown event {other:?}"),
        )),
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
        assert_eq!(
            decode("chat", &json!({"message":"hi"})),
            Ok(Command::Lobby("hi".into()))
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
    }
}
