//! `switchboard_core::protocol::decode`: every text frame a native WebSocket client sends.
//!
//! Never panics; allocates in proportion to the frame only; an error's public message is short
//! whatever the input (it never echoes the frame at length); and a decoded message, written
//! back canonically, decodes to the same message (decode → encode → decode is stable).
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use switchboard_core::protocol::decode;
use switchboard_fuzz::{bounded, encode_client};

/// Open finding, not fixed here: `ref` is parsed into a `serde_json::Value`, and serde_json
/// without its `float_roundtrip` feature does not parse floats exactly, so a float `ref` is
/// echoed with other digits (`16666666666666666666666666666666.1` → `1.666666666666667e31` →
/// `1.6666666666666667e31`). Set to false once `ref` is kept raw or the feature is on.
const KNOWN_FLOAT_REF_DRIFT: bool = true;

fn has_float(v: &Value) -> bool {
    match v {
        Value::Number(n) => n.is_f64(),
        Value::Array(a) => a.iter().any(has_float),
        Value::Object(o) => o.values().any(has_float),
        _ => false,
    }
}

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
        Ok(mut envelope) => {
            let first = encode_client(&envelope);
            let mut again = decode(&first)
                .unwrap_or_else(|e| panic!("re-encoded message refused: {first} ({:?})", e.code));
            if KNOWN_FLOAT_REF_DRIFT && envelope.r#ref.as_ref().is_some_and(has_float) {
                // Open finding (docs/fuzzing.md): compare everything but the `ref`.
                envelope.r#ref = None;
                again.r#ref = None;
                assert_eq!(encode_client(&again), encode_client(&envelope), "moved");
                return;
            }
            assert_eq!(
                encode_client(&again),
                first,
                "decode → encode → decode moved"
            );
        }
    }
});
