//! `switchboard_core::publication::StreamPosition` through serde: the `since` of a native
//! `subscribe` and of a Socket.IO `subscribe`.
//!
//! Never panics; allocates in proportion to the input; an accepted position re-serializes to
//! JSON that parses back to the same position, and the Socket.IO decoder agrees with serde on
//! which `since` values are acceptable.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use switchboard::transports::socketio::decode::{Command, decode};
use switchboard_core::publication::StreamPosition;
use switchboard_fuzz::bounded;

fuzz_target!(|data: &[u8]| {
    let parsed = bounded(data.len(), || {
        serde_json::from_slice::<StreamPosition>(data)
    });
    if let Ok(position) = &parsed {
        let text = serde_json::to_string(position).unwrap();
        let back: StreamPosition = serde_json::from_str(&text).unwrap();
        assert_eq!(&back, position);
    }
    // The same bytes as the `since` of a Socket.IO subscribe.
    let Ok(since) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let by_serde = serde_json::from_value::<StreamPosition>(since.clone()).ok();
    let payload = serde_json::json!({"channel": "missions", "since": since});
    match decode("subscribe", &payload, |_| false) {
        Ok(Command::Subscribe { since: got, .. }) => assert_eq!(got, by_serde),
        Ok(other) => panic!("subscribe decoded as {other:?}"),
        // Refused only when serde refuses too (a `null` since means "none").
        Err(_) => assert!(by_serde.is_none() && !since.is_null()),
    }
});
