//! Chat: the lobby on the native protocol and rooms (SPEC §1.2). The server sets `sender`, the
//! id and the timestamp; the text is validated here so every transport applies the same rules.
//!
//! Rooms are channels `room:<id>`. A room message is a stored publication (`new-message`, to
//! everyone subscribed, sender included, recoverable); `user-joined` and `user-typing` are
//! transient notices to the others in the room, never stored. Any transport whose connection
//! is subscribed to the room receives them (Socket.IO and native alike).

pub mod events;

use serde::Serialize;
use serde_json::{Value, json};
use switchboard_core::broker::BrokerError;
use switchboard_core::channel::ChannelName;
use switchboard_core::ids::new_id;
use switchboard_core::publication::PublicationData;
use switchboard_core::refusal::Refusal;

use self::events::{CLIENT_EVENTS, Command};
use crate::node::error::PublishError;
use crate::node::scope::{ClientScope, JoinError};
use crate::node::{App, Node};

/// Event of a lobby chat line.
pub const LOBBY_EVENT: &str = "chat";
/// Event of a room message.
pub const NEW_MESSAGE: &str = "new-message";
/// Event telling a room that someone joined (data: their connection id).
pub const USER_JOINED: &str = "user-joined";
/// Event telling a room that someone is typing (data: their connection id).
pub const USER_TYPING: &str = "user-typing";

/// Longest accepted message, in characters.
pub const MAX_MESSAGE_CHARS: usize = 2000;

/// Why a chat message was refused (the text is shown to the client).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChatError {
    /// Nothing left after stripping control characters and whitespace.
    #[error("Message must not be empty")]
    Empty,
    /// Over [`MAX_MESSAGE_CHARS`].
    #[error("Message must be at most 2000 characters")]
    TooLong,
}

/// Strips control characters (keeping none) and trims; refuses empty and over-long text.
pub fn clean_message(raw: &str) -> Result<String, ChatError> {
    let cleaned: String = raw.chars().filter(|c| !c.is_control()).collect();
    let cleaned = cleaned.trim();
    if cleaned.is_empty() {
        return Err(ChatError::Empty);
    }
    if cleaned.chars().count() > MAX_MESSAGE_CHARS {
        return Err(ChatError::TooLong);
    }
    Ok(cleaned.to_owned())
}

/// Data of a lobby `chat` publication.
#[derive(Debug, Clone, Serialize)]
pub struct LobbyChatDto<'a> {
    pub message: &'a str,
    /// Who sent it: the user id, or the connection id when anonymous.
    pub sender: &'a str,
    /// When the server accepted it (ISO-8601, UTC).
    pub timestamp: String,
}

/// Data of a room `new-message` publication.
#[derive(Debug, Clone, Serialize)]
pub struct RoomMessageDto<'a> {
    /// Server-chosen message id.
    pub id: &'a str,
    pub message: &'a str,
    /// The user id, or the connection id when anonymous.
    pub sender: &'a str,
    /// When the server accepted it (ISO-8601, UTC).
    pub timestamp: String,
}

/// Why a room message was not sent.
#[derive(Debug, thiserror::Error)]
pub enum RoomError {
    /// The text was refused (shown to the client).
    #[error(transparent)]
    Invalid(#[from] ChatError),
    /// The broker failed; the cause is logged, the client is told to retry.
    #[error("room message not published: {0}")]
    Broker(#[from] BrokerError),
    /// Publishing failed (broker or inbox); the cause is logged, the client told to retry.
    #[error("room message not published: {0}")]
    Publish(#[from] PublishError),
}

/// A room message that was published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Posted {
    /// Its id (as in the DTO).
    pub id: String,
    /// Its offset in the room's channel.
    pub offset: u64,
}

/// Cleans `raw` and publishes it on `room` as `new-message` from `sender`: stored, and sent to
/// everyone in the room, the sender included.
pub async fn post_room_message(
    node: &Node,
    room: &ChannelName,
    raw: &str,
    sender: &str,
) -> Result<Posted, RoomError> {
    let message = clean_message(raw)?;
    let id = format!("msg_{}", new_id());
    let dto = RoomMessageDto {
        id: &id,
        message: &message,
        sender,
        timestamp: switchboard_store::now_rfc3339(),
    };
    let data = PublicationData::shared(&dto).map_err(BrokerError::from)?;
    let publication = node.publish(room, NEW_MESSAGE, data).await?;
    Ok(Posted {
        id,
        offset: publication.offset,
    })
}

/// Tells the others in `room` that connection `conn_id` joined. Not stored.
pub async fn user_joined(
    node: &Node,
    room: &ChannelName,
    conn_id: &str,
) -> Result<(), PublishError> {
    let data = PublicationData::shared(conn_id)?;
    node.publish_transient(room, USER_JOINED, data, Some(conn_id))
        .await
}

/// Tells the others in `room` that connection `conn_id` is typing. Not stored.
pub async fn user_typing(
    node: &Node,
    room: &ChannelName,
    conn_id: &str,
) -> Result<(), PublishError> {
    let data = PublicationData::shared(conn_id)?;
    node.publish_transient(room, USER_TYPING, data, Some(conn_id))
        .await
}

/// The chat app: the lobby and rooms. It has no REST routes; everything arrives as client
/// events.
pub struct Chat;

#[async_trait::async_trait]
impl App for Chat {
    fn name(&self) -> &'static str {
        "chat"
    }

    fn server_events(&self) -> &'static [&'static str] {
        &[LOBBY_EVENT, NEW_MESSAGE, USER_JOINED, USER_TYPING]
    }

    fn client_events(&self) -> &'static [&'static str] {
        CLIENT_EVENTS
    }

    async fn on_client_event(
        &self,
        node: &Node,
        client: &mut dyn ClientScope,
        event: &str,
        data: &Value,
    ) -> Result<Value, Refusal> {
        match events::decode(event, data)? {
            Command::Lobby(message) => {
                join_lobby(client).await;
                lobby(node, &client.sender(), &message).await
            }
            Command::JoinRoom(room) => join_room(node, client, room).await,
            Command::LeaveRoom(room) => {
                client.leave(&room).await;
                Ok(json!({"ok": true, "channel": room.as_str()}))
            }
            Command::ChatMessage { room, message } => {
                if !client.may_read(&room) {
                    return Err(forbidden(client));
                }
                match post_room_message(node, &room, &message, &client.sender()).await {
                    Ok(posted) => Ok(json!({"ok": true, "id": posted.id, "offset": posted.offset})),
                    Err(RoomError::Invalid(e)) => Err(Refusal::bad(e.to_string())),
                    Err(e @ (RoomError::Broker(_) | RoomError::Publish(_))) => {
                        tracing::warn!(channel = %room, error = %e, "room message not published");
                        Err(Refusal::chat_not_sent())
                    }
                }
            }
            Command::Typing(room) => {
                if !client.may_read(&room) {
                    return Err(forbidden(client));
                }
                match user_typing(node, &room, client.connection_id()).await {
                    Ok(()) => Ok(json!({"ok": true})),
                    Err(e) => {
                        tracing::warn!(channel = %room, error = %e, "typing not delivered");
                        Err(Refusal::typing_not_sent())
                    }
                }
            }
        }
    }
}

fn forbidden(client: &dyn ClientScope) -> Refusal {
    Refusal::forbidden_channel(client.identity().is_authenticated())
}

/// `join-room`: a silent join (the ack is the answer), then `user-joined` to the others.
async fn join_room(
    node: &Node,
    client: &mut dyn ClientScope,
    room: ChannelName,
) -> Result<Value, Refusal> {
    match client.join(room.clone(), false).await {
        Ok(true) => {
            if let Err(e) = user_joined(node, &room, client.connection_id()).await {
                tracing::warn!(channel = %room, error = %e, "user-joined not delivered");
            }
        }
        Ok(false) => {}
        Err(JoinError::Refused(refusal)) => return Err(refusal),
        Err(JoinError::Failed) => return Err(Refusal::room_join_failed()),
    }
    Ok(json!({"ok": true, "channel": room.as_str()}))
}

/// Sending a lobby line joins the lobby first (silently, as Socket.IO sockets join it on
/// connect), so the sender sees its own line and the answers to it: a chat client that only
/// sends `{"type":"chat"}` would otherwise talk into a room it cannot hear.
async fn join_lobby(client: &mut dyn ClientScope) {
    let Ok(lobby) = ChannelName::parse("lobby") else {
        return;
    };
    if client.is_subscribed(&lobby) || !client.may_read(&lobby) {
        return;
    }
    if let Err(e) = client.join(lobby, false).await {
        tracing::debug!(conn = client.connection_id(), error = ?e, "lobby join before chat failed");
    }
}

/// The lobby `chat` line: cleaned, sent by the server-set sender, published on `lobby`.
async fn lobby(node: &Node, sender: &str, raw: &str) -> Result<Value, Refusal> {
    let message = clean_message(raw).map_err(|e| Refusal::bad(e.to_string()))?;
    let dto = LobbyChatDto {
        message: &message,
        sender,
        timestamp: switchboard_store::now_rfc3339(),
    };
    let sent = async {
        let lobby = ChannelName::parse("lobby").map_err(|e| e.to_string())?;
        let data = PublicationData::shared(&dto).map_err(|e| e.to_string())?;
        node.publish(&lobby, LOBBY_EVENT, data)
            .await
            .map_err(|e| e.to_string())
    }
    .await;
    match sent {
        Ok(_) => Ok(Value::Null),
        Err(e) => {
            tracing::warn!(sender, error = %e, "chat publish failed");
            Err(Refusal::chat_not_sent())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleans_and_validates() {
        assert_eq!(clean_message(" hi\u{0007} there\n").unwrap(), "hi there");
        assert_eq!(clean_message("\u{0000}\u{001b} "), Err(ChatError::Empty));
        assert_eq!(clean_message(&"a".repeat(2001)), Err(ChatError::TooLong));
        assert!(clean_message(&"é".repeat(2000)).is_ok());
    }
}
