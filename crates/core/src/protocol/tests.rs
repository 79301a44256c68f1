//! Unit tests of the native codec.
#![allow(clippy::unwrap_used, clippy::expect_used)]
use std::sync::Arc;

use super::*;
use crate::channel::ChannelName;
use crate::publication::PublicationData;

#[test]
fn ref_is_echoed_as_written() {
    // Through f64 these would come back as 1.0, 1.2345678901234568e29, 1.6666666666666667e31.
    for written in [
        "1.0000000000000001",
        "123456789012345678901234567890",
        "16666666666666666666666666666666.1",
        r#"{"n":-0.0,"s":"x"}"#,
    ] {
        let envelope = decode(&format!(r#"{{"type":"ping","ref":{written}}}"#)).unwrap();
        assert_eq!(envelope.r#ref.as_deref().map(RawValue::get), Some(written));
        let reply = encode_reply(&ServerMessage::Pong, envelope.r#ref.as_deref());
        assert_eq!(reply, format!(r#"{{"type":"pong","ref":{written}}}"#));
        let e = decode(&format!(r#"{{"type":"nope","ref":{written}}}"#)).unwrap_err();
        assert_eq!(e.r#ref.as_deref().map(RawValue::get), Some(written));
    }
    // A duplicated key: the last one, as the full parse reads it.
    let envelope = decode(r#"{"type":"ping","ref":1,"ref":2}"#).unwrap();
    assert_eq!(envelope.r#ref.as_deref().map(RawValue::get), Some("2"));
}

#[test]
fn classifies_bad_input() {
    assert_eq!(decode("{nope").unwrap_err().code, ErrorCode::InvalidJson);
    assert_eq!(decode("[1]").unwrap_err().code, ErrorCode::InvalidMessage);
    assert_eq!(decode("{}").unwrap_err().code, ErrorCode::InvalidMessage);
    assert_eq!(
        decode(r#"{"type":5}"#).unwrap_err().code,
        ErrorCode::InvalidMessage
    );
    let e = decode(r#"{"type":"subscribe","ref":7}"#).unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidMessage);
    assert_eq!(e.r#ref.as_deref().map(RawValue::get), Some("7"));
    let e = decode(r#"{"type":"dance","ref":"a"}"#).unwrap_err();
    assert_eq!(e.code, ErrorCode::UnknownType);
    assert_eq!(e.r#ref.as_deref().map(RawValue::get), Some(r#""a""#));
}

#[test]
fn decodes_each_message() {
    let e = decode(
        r#"{"type":"subscribe","channel":"missions","since":{"offset":3,"epoch":"x"},"ref":1}"#,
    )
    .unwrap();
    assert_eq!(e.r#ref.as_deref().map(RawValue::get), Some("1"));
    assert!(matches!(
        e.message,
        ClientMessage::Subscribe { ref channel, since: Some(StreamPosition { offset: 3, ref epoch }) }
            if channel == "missions" && epoch == "x"
    ));
    assert!(matches!(
        decode(r#"{"type":"ping"}"#).unwrap().message,
        ClientMessage::Ping
    ));
    assert!(matches!(
        decode(r#"{"type":"auth","token":"t","cityId":"nairobi"}"#).unwrap().message,
        ClientMessage::Auth { city_id: Some(c), .. } if c == "nairobi"
    ));
    match decode(r#"{"type":"publish","channel":"room:1","event":"e","data":{"a":[1,2]}}"#)
        .unwrap()
        .message
    {
        ClientMessage::Publish { data, .. } => assert_eq!(data.get(), r#"{"a":[1,2]}"#),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn publish_data_is_forwarded_as_written() {
    // Found by the fuzz target `native_decode`: the payload used to be re-serialized from
    // the parsed tree, changing numbers (and not stably: decode → encode → decode moved).
    let frame = r#"{"type":"publish","channel":"room:1","event":"e","data":{ "a": [0, 2.5, -3e50, 0.1] , "b":"\u00e9"}}"#;
    match decode(frame).unwrap().message {
        ClientMessage::Publish { data, .. } => {
            assert_eq!(data.get(), r#"{ "a": [0, 2.5, -3e50, 0.1] , "b":"\u00e9"}"#);
        }
        other => panic!("unexpected {other:?}"),
    }
    match decode(r#"{"type":"publish","channel":"c","event":"e","data":null}"#)
        .unwrap()
        .message
    {
        ClientMessage::Publish { data, .. } => assert_eq!(data.get(), "null"),
        other => panic!("unexpected {other:?}"),
    }
    let twice = r#"{"type":"publish","channel":"c","event":"e","data":1,"data":2}"#;
    assert_eq!(decode(twice).unwrap_err().code, ErrorCode::InvalidMessage);
}

#[test]
fn encodes_exact_bytes() {
    assert_eq!(
        encode_reply(
            &ServerMessage::Pong,
            Some(&RawValue::from_string("9".into()).unwrap())
        ),
        r#"{"type":"pong","ref":9}"#
    );
    assert_eq!(
        encode_error(ErrorCode::InvalidJson, "Invalid JSON", None),
        r#"{"type":"error","code":"invalid_json","message":"Invalid JSON"}"#
    );
    assert_eq!(
        encode_reply(
            &ServerMessage::Welcome {
                message: "Connected to WebSocket server",
                connection_id: "c1",
                protocol: 1,
                heartbeat: 30000
            },
            None
        ),
        r#"{"type":"welcome","message":"Connected to WebSocket server","connectionId":"c1","protocol":1,"heartbeat":30000}"#
    );
    let p = Publication {
        channel: ChannelName::parse("missions").unwrap(),
        event: Arc::from("mission-update"),
        offset: 42,
        epoch: Arc::from("ep\"1"),
        timestamp_ms: 1700,
        data: PublicationData::by_audience(
            &serde_json::json!({"id":1}),
            &serde_json::json!({"id":1,"objective":"x"}),
        )
        .unwrap(),
    };
    assert_eq!(
        encode_delivery(&p, Audience::Agent),
        r#"{"type":"mission-update","channel":"missions","offset":42,"epoch":"ep\"1","timestamp":1700,"data":{"id":1}}"#
    );
    let v: Value = serde_json::from_str(&encode_delivery(&p, Audience::Hq)).unwrap();
    assert_eq!(v["data"]["objective"], "x");
}
