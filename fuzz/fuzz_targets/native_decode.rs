//! `switchboard_core::protocol::decode`: every text frame a native WebSocket client sends.
//!
//! Never panics; allocates in proportion to the frame only; an error's public message is short
//! whatever the input (it never echoes the frame at length); and a decoded message, written
//! back canonically, decodes to the same message (decode → encode → decode is stable).
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard_core::protocol::decode;
use switchboard_fuzz::{bounded, encode_client};

fuzz_target!(|data: &[u8]| {
    let Ok(frame) = std::str::from_utf8(data) else {
        // A WebSocket text frame is UTF-8 by the time it reaches the decoder.
        return;
    };
    match bounded(frame.len(), || decode(frame)) {
        Err(e) => {
            assert!(
                e.message.chars().count() <= 100,
                "long error message {:?}",
                e.message
            );
        }
        Ok(envelope) => {
            let first = encode_client(&envelope);
            let again = decode(&first)
                .unwrap_or_else(|e| panic!("re-encoded message refused: {first} ({:?})", e.code));
            assert_eq!(
                encode_client(&again),
                first,
                "decode → encode → decode moved"
            );
        }
    }
});
