//! The server's Socket.IO decoder (`switchboard::transports::socketio::decode::decode`) and the
//! chat app's event decoder (`switchboard::apps::chat::events::decode`), fed the `(event, data)`
//! a Socket.IO client emits.
//!
//! Input: the event name, a NUL, then the data as JSON. Never panics; allocates in proportion;
//! a refusal's message stays short; every decoded channel is valid; and a decoded command,
//! emitted again in its canonical form, decodes to the same command.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};
use switchboard::apps::chat::events::{self, CLIENT_EVENTS};
use switchboard::transports::socketio::decode::{Command, decode};
use switchboard_fuzz::{bounded, split_n, text};

fn app_event(e: &str) -> bool {
    CLIENT_EVENTS.contains(&e)
}

/// A command as `(event, data)` again.
fn emit(command: &Command) -> (String, Value) {
    match command {
        Command::Subscribe { channel, since } => (
            "subscribe".into(),
            json!({"channel": channel.as_str(), "since": since}),
        ),
        Command::Unsubscribe(channel) => ("unsubscribe".into(), json!(channel.as_str())),
        Command::Ack { channel, offset } => (
            "ack".into(),
            json!({"channel": channel.as_str(), "offset": offset}),
        ),
        Command::App(event) => (event.clone(), Value::Null),
    }
}

fn chat_emit(command: &events::Command) -> (&'static str, Value) {
    let room = |c: &switchboard_core::channel::ChannelName| {
        c.as_str()
            .strip_prefix("room:")
            .unwrap_or_default()
            .to_owned()
    };
    match command {
        events::Command::Lobby(m) => (events::LOBBY_CHAT, json!({"message": m})),
        events::Command::JoinRoom(c) => (events::JOIN_ROOM, json!(room(c))),
        events::Command::LeaveRoom(c) => (events::LEAVE_ROOM, json!({"roomId": room(c)})),
        events::Command::ChatMessage { room: c, message } => (
            events::CHAT_MESSAGE,
            json!({"roomId": room(c), "message": message}),
        ),
        events::Command::Typing(c) => (events::TYPING, json!({"roomId": room(c)})),
    }
}

fuzz_target!(|data: &[u8]| {
    let parts = split_n(data, 0, 2);
    let event = text(parts[0]);
    let Ok(payload) = serde_json::from_slice::<Value>(parts[1]) else {
        return;
    };
    let decoded = bounded(data.len(), || decode(&event, &payload, app_event));
    match decoded {
        Err(refusal) => {
            // `Unknown event "<64 chars, escaped>"`: bounded whatever the event name.
            assert!(
                refusal.message.len() <= 64 * 10 + 32,
                "{}",
                refusal.message.len()
            );
        }
        Ok(Command::App(name)) => {
            assert!(app_event(&name));
            match bounded(data.len(), || events::decode(&name, &payload)) {
                Ok(command) => {
                    let (e, d) = chat_emit(&command);
                    assert_eq!(e, name);
                    assert_eq!(events::decode(e, &d), Ok(command));
                }
                Err(refusal) => assert!(refusal.message.len() <= 128),
            }
        }
        Ok(command) => {
            let (e, d) = emit(&command);
            assert_eq!(decode(&e, &d, app_event), Ok(command));
        }
    }
});
