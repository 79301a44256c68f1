//! Sans-IO parsing of the frames the load generator receives (the Socket.IO packet shapes are
//! `switchboard_client::socketio`'s).
//!
//! The generator must stay cheap on a 2-core machine where it competes with the server, so it
//! never parses a whole delivery as JSON: it recognises the few frame shapes it cares about by
//! prefix or substring and pulls the send stamp out of the `location` field. Every shape here is
//! tested byte for byte below.

/// Prefix of the stamp the publisher writes into `location`: `t:<unix_micros>`.
pub const STAMP_PREFIX: &str = "t:";

/// The `location` value that carries a send time (≤ 200 characters, as the server requires).
pub fn stamp_location(unix_micros: u64) -> String {
    format!("{STAMP_PREFIX}{unix_micros}")
}

/// The send stamp in a delivery, if it carries one: the digits of `"location":"t:<digits>"`.
///
/// Works on native, plain-`ws` and Socket.IO frames alike because all of them put the DTO's
/// `location` as compact JSON (serde_json and `JSON.stringify` both write no spaces), and on
/// Pusher frames, whose `data` is the same JSON escaped into a string (`\"location\":\"t:…`).
pub fn extract_stamp(text: &str) -> Option<u64> {
    const KEY: &str = "\"location\":\"t:";
    const ESCAPED_KEY: &str = "location\\\":\\\"t:";
    let start = match text.find(KEY) {
        Some(i) => i + KEY.len(),
        None => text.find(ESCAPED_KEY)? + ESCAPED_KEY.len(),
    };
    let rest = &text[start..];
    let end = rest.find(|c: char| !c.is_ascii_digit())?;
    // The digits must end the string value: a closing quote, plain or escaped.
    if end == 0 || !matches!(rest.as_bytes()[end], b'"' | b'\\') {
        return None;
    }
    rest[..end].parse().ok()
}

/// Whether a native (or plain `ws`) frame is a `mission-update` delivery.
pub fn is_native_mission_update(text: &str) -> bool {
    text.contains("\"type\":\"mission-update\"")
}

/// Whether a native frame is the `subscribed` reply that makes a connection ready.
pub fn is_native_subscribed(text: &str) -> bool {
    text.contains("\"type\":\"subscribed\"")
}

/// Whether a Socket.IO event payload (`["name",…]`) is a `mission-update`.
pub fn is_sio_mission_update(payload: &str) -> bool {
    payload.starts_with("[\"mission-update\"")
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn stamp_roundtrip_in_native_delivery() {
        let loc = stamp_location(1_795_394_483_321_123);
        assert_eq!(loc, "t:1795394483321123");
        let frame = format!(
            r#"{{"type":"mission-update","channel":"missions","offset":13,"epoch":"k3j9x0aa","timestamp":1795394483321,"data":{{"id":1,"codename":"Nightingale","status":"active","location":"{loc}"}}}}"#
        );
        assert!(is_native_mission_update(&frame));
        assert_eq!(extract_stamp(&frame), Some(1_795_394_483_321_123));
    }

    #[test]
    fn stamp_absent_or_malformed() {
        assert_eq!(extract_stamp(r#"{"location":"Berlin"}"#), None);
        assert_eq!(extract_stamp(r#"{"location":"t:"}"#), None);
        assert_eq!(extract_stamp(r#"{"location":"t:12x"}"#), None);
        assert_eq!(extract_stamp(r#"{"location":"t:123"#), None);
        assert_eq!(
            extract_stamp(r#"{"location":"t:99999999999999999999999"}"#),
            None
        );
        assert_eq!(extract_stamp(r#"{"location":"t:42"}"#), Some(42));
        assert_eq!(
            extract_stamp(r#"{"data":"{\"location\":\"t:43\"}"}"#),
            Some(43)
        );
        assert_eq!(extract_stamp(r#"{"data":"{\"location\":\"t:4x\"}"}"#), None);
    }

    #[test]
    fn native_control_frames() {
        let sub = r#"{"type":"subscribed","channel":"missions","offset":0,"epoch":"k3","recovered":false}"#;
        assert!(is_native_subscribed(sub));
        assert!(!is_native_mission_update(sub));
        let welcome = r#"{"type":"welcome","message":"Connected","connectionId":"x","protocol":1}"#;
        assert!(!is_native_subscribed(welcome));
        assert!(is_native_mission_update(
            r#"{"type":"mission-update","data":{}}"#
        ));
    }

    #[test]
    fn sio_mission_updates() {
        use switchboard_client::socketio::{Frame, classify};
        let ev =
            r#"42["mission-update",{"id":1,"location":"t:7"},{"channel":"missions","offset":3}]"#;
        match classify(ev) {
            Frame::Event(p) => {
                assert!(is_sio_mission_update(p));
                assert_eq!(extract_stamp(p), Some(7));
            }
            other => panic!("expected an event, got {other:?}"),
        }
        match classify(r#"42["socket-id","abc"]"#) {
            Frame::Event(p) => assert!(!is_sio_mission_update(p)),
            other => panic!("expected an event, got {other:?}"),
        }
    }
}
