//! The Socket.IO form of a publication (sans-IO, tested byte for byte).
//!
//! A Socket.IO `EVENT` packet carries a JSON array of arguments whose first element is the
//! event name: `["mission-update",{…}]`. The hub encodes that array once per audience and every
//! Socket.IO connection receives a clone of the same bytes. socketioxide 0.18 has no public way
//! to hand it pre-encoded packet bytes (its raw send is crate-private), so the transport splits
//! the shared array back into the event name and a borrowed [`RawValue`] and emits that: the
//! payload is copied verbatim, never re-serialized per socket. See docs/socketio.md.

use std::borrow::Cow;

use serde_json::value::RawValue;

/// Encodes the argument array `[event, data]` of a Socket.IO `EVENT` packet.
///
/// `data` is already JSON, so it is appended as is.
pub fn encode_event_args(event: &str, data: &RawValue) -> String {
    let data = data.get();
    let mut out = String::with_capacity(event.len() + data.len() + 8);
    out.push('[');
    // Serializing a &str to a String cannot fail; fall back to an empty name just in case.
    out.push_str(&serde_json::to_string(event).unwrap_or_else(|_| "\"\"".to_owned()));
    out.push(',');
    out.push_str(data);
    out.push(']');
    out
}

/// Splits an argument array made by [`encode_event_args`] into the event name and the data,
/// borrowing the data from `frame`. `None` when `frame` is not such an array.
pub fn split_event_args(frame: &[u8]) -> Option<(Cow<'_, str>, &RawValue)> {
    let (event, data): (Cow<'_, str>, &RawValue) = serde_json::from_slice(frame).ok()?;
    Some((event, data))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_exact_bytes_and_splits_back() {
        let data = RawValue::from_string(r#"{"id":1,"status":"active"}"#.to_owned()).unwrap();
        let frame = encode_event_args("mission-update", &data);
        assert_eq!(frame, r#"["mission-update",{"id":1,"status":"active"}]"#);
        let (event, back) = split_event_args(frame.as_bytes()).unwrap();
        assert_eq!(event, "mission-update");
        assert_eq!(back.get(), data.get());
    }

    #[test]
    fn escapes_event_names_and_keeps_scalars() {
        let data = RawValue::from_string("true".to_owned()).unwrap();
        let frame = encode_event_args("a\"b", &data);
        assert_eq!(frame, r#"["a\"b",true]"#);
        let (event, back) = split_event_args(frame.as_bytes()).unwrap();
        assert_eq!((event.as_ref(), back.get()), ("a\"b", "true"));
    }

    #[test]
    fn rejects_other_shapes() {
        assert!(split_event_args(b"{}").is_none());
        assert!(split_event_args(b"[1,2]").is_none());
        assert!(split_event_args(b"[\"e\"]").is_none());
        assert!(split_event_args(b"not json").is_none());
    }
}
