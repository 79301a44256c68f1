//! The Engine.IO / Socket.IO codec against frames captured from the real socket.io-client
//! 4.x over its websocket transport (tests/interop/capture.mjs wrote the fixture).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};
use switchboard_core::engineio::{EnginePacket, SioPacket, decode_engine, decode_socketio};

const FIXTURE: &str = include_str!("fixtures/socketio_client_frames.json");

fn frames() -> Vec<String> {
    let v: Value = serde_json::from_str(FIXTURE).unwrap();
    assert!(
        v["client"]
            .as_str()
            .unwrap()
            .starts_with("socket.io-client 4.")
    );
    assert_eq!(v["request"], "/socket.io/?EIO=4&transport=websocket");
    serde_json::from_value(v["frames"].clone()).unwrap()
}

/// The Socket.IO packet inside a captured Engine.IO message.
fn sio(frame: &str) -> SioPacket<'_> {
    match decode_engine(frame).unwrap() {
        EnginePacket::Message(m) => decode_socketio(m).unwrap(),
        other => panic!("{frame}: {other:?}"),
    }
}

fn event(id: Option<u64>, event: &str, data: Value) -> SioPacket<'static> {
    SioPacket::Event {
        nsp: "/",
        id,
        event: event.into(),
        data,
    }
}

#[test]
fn every_captured_client_frame_decodes() {
    let frames = frames();
    assert_eq!(frames.len(), 9, "{frames:?}");
    assert_eq!(
        sio(&frames[0]),
        SioPacket::Connect {
            nsp: "/",
            auth: Some(
                json!({"token": "tok\"en", "since": {"missions": {"offset": 3, "epoch": "ab"}}})
            )
        }
    );
    assert_eq!(sio(&frames[1]), event(None, "join-room", json!("room-1")));
    assert_eq!(
        sio(&frames[2]),
        event(
            None,
            "chat-message",
            json!({"roomId": "room-1", "message": "h\u{e9}llo \"q\""})
        )
    );
    assert_eq!(sio(&frames[3]), event(None, "none", Value::Null));
    // Only the first argument after the name is a handler's data.
    assert_eq!(sio(&frames[4]), event(None, "two", json!(1)));
    assert_eq!(
        sio(&frames[5]),
        event(
            Some(0),
            "subscribe",
            json!({"channel": "missions", "since": {"offset": 3, "epoch": "ab"}})
        )
    );
    assert_eq!(decode_engine(&frames[6]), Ok(EnginePacket::Pong("")));
    assert_eq!(sio(&frames[7]), SioPacket::Ack { nsp: "/", id: 7 });
    assert_eq!(sio(&frames[8]), SioPacket::Disconnect { nsp: "/" });
}
