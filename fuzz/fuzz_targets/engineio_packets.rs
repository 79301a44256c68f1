//! `switchboard_core::engineio`: the Engine.IO / Socket.IO packets a client sends on the
//! websocket transport Switchboard serves itself, decoded from untrusted text.
//!
//! Never panics; allocates in proportion; an event's name is never a reserved one; and the
//! server's own packets built from the input (connect error, ack) decode as what they are not
//! — a client packet — only where the protocol says so (a `44` is refused, a `43<id>[…]` from
//! the client is an ack with that id).
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::value::RawValue;
use switchboard_core::engineio::{
    EnginePacket, SioPacket, decode_engine, decode_socketio, encode_ack, encode_connect_error,
};
use switchboard_core::socketio::RESERVED_EVENTS;
use switchboard_fuzz::{bounded, text};

fuzz_target!(|data: &[u8]| {
    let input = text(data);
    let decoded = bounded(data.len(), || match decode_engine(&input) {
        Ok(EnginePacket::Message(m)) => decode_socketio(m).ok().map(|p| format!("{p:?}")),
        _ => None,
    });
    if let Some(Ok(SioPacket::Event { event, .. })) = input.strip_prefix('4').map(decode_socketio) {
        assert!(!RESERVED_EVENTS.contains(&event.as_str()), "{decoded:?}");
    }
    let error = encode_connect_error("/", &input);
    assert!(decode_socketio(&error[1..]).is_err(), "{error}");
    if let Ok(body) = RawValue::from_string(input.clone()) {
        let id = data.len() as u64;
        let ack = encode_ack(id, &body);
        match decode_socketio(&ack[1..]) {
            Ok(SioPacket::Ack { nsp: "/", id: got }) => assert_eq!(got, id),
            other => panic!("{ack} → {other:?}"),
        }
    }
});
