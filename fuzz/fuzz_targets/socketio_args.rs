//! `switchboard_core::socketio::split_event_args` / `encode_event_args` /
//! `encode_publication_args`: the Socket.IO argument arrays the hub encodes and the transport
//! splits back.
//!
//! The whole input is split as a frame (never panics, allocates in proportion); anything it
//! accepts re-encodes to a frame that splits to the same name and data. Then the input is cut
//! into an event name and a payload: when the payload is JSON, both encoders' frames split back
//! to exactly that name, payload and position.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::value::RawValue;
use switchboard_core::socketio::{encode_event_args, encode_publication_args, split_event_args};
use switchboard_fuzz::{bounded, split_n, text};

fuzz_target!(|data: &[u8]| {
    if let Some((event, payload, _meta)) = bounded(data.len(), || split_event_args(data)) {
        let frame = encode_event_args(&event, payload);
        let (e2, p2, m2) = split_event_args(frame.as_bytes()).expect("re-encoded frame");
        assert_eq!(
            (e2.as_ref(), p2.get(), m2.is_none()),
            (event.as_ref(), payload.get(), true)
        );
    }

    let parts = split_n(data, 0, 3);
    let (event, payload, channel) = (text(parts[0]), text(parts[1]), text(parts[2]));
    let Ok(payload) = RawValue::from_string(payload) else {
        return;
    };
    let frame = encode_event_args(&event, &payload);
    let (e, p, m) = split_event_args(frame.as_bytes()).expect("an encoded frame splits");
    assert_eq!(
        (e.as_ref(), p.get(), m.is_none()),
        (event.as_str(), payload.get(), true)
    );

    let offset = data.len() as u64 * 0x9e37_79b9;
    let frame = encode_publication_args(&event, &payload, &channel, offset, &event);
    let (e, p, m) = split_event_args(frame.as_bytes()).expect("a publication frame splits");
    assert_eq!((e.as_ref(), p.get()), (event.as_str(), payload.get()));
    let meta: serde_json::Value = serde_json::from_str(m.expect("position").get()).unwrap();
    assert_eq!(meta["channel"].as_str(), Some(channel.as_str()));
    assert_eq!(meta["offset"].as_u64(), Some(offset));
    assert_eq!(meta["epoch"].as_str(), Some(event.as_str()));
});
