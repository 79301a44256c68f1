//! Property tests of the codecs a client reaches, run by `cargo test`: the same properties the
//! fuzz targets under `fuzz/` check (docs/fuzzing.md), on generated well-formed inputs, so a
//! regression shows up without a fuzzing toolchain.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use serde_json::Value;
use serde_json::value::RawValue;
use switchboard_core::auth::{AccessPolicy, Identity, Role, pattern_matches};
use switchboard_core::channel::{ChannelName, MAX_CHANNEL_LEN};
use switchboard_core::cursor::Cursor;
use switchboard_core::protocol::{ClientMessage, decode, encode_delivery};
use switchboard_core::publication::{Audience, Publication, PublicationData, StreamPosition};
use switchboard_core::socketio::{encode_event_args, encode_publication_args, split_event_args};
use switchboard_core::sse;

fn channel_name() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_:.-]{1,40}"
}

fn epoch() -> impl Strategy<Value = String> {
    "[!-~]{1,20}"
}

fn offset() -> impl Strategy<Value = u64> {
    prop_oneof![0u64..300, any::<u64>(), (u64::MAX - 3)..=u64::MAX]
}

/// Any JSON value, a few levels deep.
fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        "\\PC{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(Value::from),
            btree_map("[a-z]{1,4}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A minimal EventSource parser: (event, data, id) of each dispatched event.
fn parse_sse(stream: &str) -> Vec<(String, String, String)> {
    let (mut out, mut event, mut data, mut id) = (Vec::new(), String::new(), None, String::new());
    let normalised = stream.replace("\r\n", "\n").replace('\r', "\n");
    for line in normalised.split_inclusive('\n') {
        let Some(line) = line.strip_suffix('\n') else {
            break;
        };
        if line.is_empty() {
            if let Some(d) = data.take() {
                out.push((std::mem::take(&mut event), d, id.clone()));
            }
            event.clear();
            continue;
        }
        if line.starts_with(':') {
            continue;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "event" => event = value.to_owned(),
            "data" => match &mut data {
                None => data = Some(value.to_owned()),
                Some(d) => {
                    d.push('\n');
                    d.push_str(value);
                }
            },
            "id" => id = value.to_owned(),
            _ => {}
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn cursor_round_trips_canonically(
        entries in btree_map(channel_name(), (offset(), epoch()), 0..6)
    ) {
        let mut cursor = Cursor::new();
        for (name, (offset, epoch)) in &entries {
            let position = StreamPosition { offset: *offset, epoch: epoch.clone() };
            cursor.set(ChannelName::parse(name).unwrap(), position);
        }
        let text = cursor.encode();
        prop_assert!(text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        let back = Cursor::decode(&text).unwrap();
        prop_assert_eq!(&back, &cursor);
        prop_assert_eq!(back.encode(), text);
    }

    #[test]
    fn any_accepted_cursor_text_is_canonical(text in "(AQ)?[A-Za-z0-9_-]{0,64}") {
        if let Ok(cursor) = Cursor::decode(&text) {
            prop_assert_eq!(cursor.encode(), text);
        }
    }

    #[test]
    fn stream_positions_round_trip_through_json(offset in offset(), epoch in "\\PC{0,16}") {
        let position = StreamPosition { offset, epoch };
        let text = serde_json::to_string(&position).unwrap();
        prop_assert_eq!(serde_json::from_str::<StreamPosition>(&text).unwrap(), position);
    }

    #[test]
    fn native_messages_decode_to_what_was_sent(
        kind in 0usize..8,
        channel in "\\PC{0,20}",
        text in "\\PC{0,20}",
        offset in offset(),
        since in proptest::option::of((offset(), epoch())),
        data in json(),
        r#ref in proptest::option::of(json()),
    ) {
        let mut msg = serde_json::Map::new();
        let kinds = ["auth", "subscribe", "unsubscribe", "publish", "chat", "presence", "ack", "ping"];
        msg.insert("type".into(), kinds[kind].into());
        msg.insert("channel".into(), channel.clone().into());
        msg.insert("token".into(), text.clone().into());
        msg.insert("event".into(), text.clone().into());
        msg.insert("message".into(), text.clone().into());
        msg.insert("offset".into(), offset.into());
        msg.insert("data".into(), data.clone());
        if let Some((o, e)) = &since {
            msg.insert("since".into(), serde_json::json!({"offset": o, "epoch": e}));
        }
        if let Some(r) = &r#ref {
            msg.insert("ref".into(), r.clone());
        }
        let envelope = decode(&Value::Object(msg).to_string()).unwrap();
        prop_assert_eq!(
            envelope.r#ref.as_deref().map(|r| r.get().to_owned()),
            r#ref.as_ref().map(Value::to_string)
        );
        let since = since.map(|(offset, epoch)| StreamPosition { offset, epoch });
        match envelope.message {
            ClientMessage::Auth { token, city_id } => {
                prop_assert_eq!(kind, 0);
                prop_assert_eq!(token, text);
                prop_assert_eq!(city_id, None);
            }
            ClientMessage::Subscribe { channel: c, since: s } => {
                prop_assert_eq!(kind, 1);
                prop_assert_eq!(c, channel);
                prop_assert_eq!(s, since);
            }
            ClientMessage::Unsubscribe { channel: c } => {
                prop_assert_eq!(kind, 2);
                prop_assert_eq!(c, channel);
            }
            ClientMessage::Publish { channel: c, event, data: d } => {
                prop_assert_eq!(kind, 3);
                prop_assert_eq!((c, event), (channel, text));
                prop_assert_eq!(serde_json::from_str::<Value>(d.get()).unwrap(), data);
            }
            ClientMessage::Chat { message } => {
                prop_assert_eq!(kind, 4);
                prop_assert_eq!(message, text);
            }
            ClientMessage::Presence { channel: c } => {
                prop_assert_eq!(kind, 5);
                prop_assert_eq!(c, channel);
            }
            ClientMessage::Ack { channel: c, offset: o } => {
                prop_assert_eq!(kind, 6);
                prop_assert_eq!((c, o), (channel, offset));
            }
            ClientMessage::Ping => prop_assert_eq!(kind, 7),
        }
    }

    #[test]
    fn bad_native_frames_get_a_short_answer(frame in "\\PC{0,200}") {
        if let Err(e) = decode(&frame) {
            prop_assert!(e.message.chars().count() <= 100);
        }
    }

    #[test]
    fn channel_names_are_exactly_the_documented_set(name in "[ -~]{0,8}|[A-Za-z0-9_:.-]{250,260}") {
        let valid = (1..=MAX_CHANNEL_LEN).contains(&name.len())
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"_:.-".contains(&b));
        let parsed = ChannelName::parse(&name);
        prop_assert_eq!(parsed.is_ok(), valid);
        if let Ok(c) = parsed {
            prop_assert_eq!(c.as_str(), name.as_str());
            match c.suffix() {
                Some(s) => prop_assert_eq!(format!("{}:{s}", c.namespace()), name),
                None => prop_assert_eq!(c.namespace(), name.as_str()),
            }
        }
    }

    #[test]
    fn patterns_grant_one_segment_or_one_name(
        pattern in "[a-c:]{0,4}\\*?",
        channel in "[a-c:]{1,6}",
    ) {
        let expected = match pattern.strip_suffix('*') {
            Some(prefix) => channel.len() > prefix.len()
                && channel.starts_with(prefix)
                && !channel[prefix.len()..].contains(':'),
            None => pattern == channel,
        };
        prop_assert_eq!(pattern_matches(&pattern, &channel), expected);
    }

    #[test]
    fn nobody_but_an_admin_reads_a_foreign_personal_channel(
        owner in "[a-c]{1,2}",
        conn in "[a-c]{1,2}",
        user in proptest::option::of("[a-c]{1,2}"),
        role in 0usize..4,
        patterns in vec("(user|conn|city):[a-c*]{0,2}|\\*", 0..4),
        personal in any::<bool>(),
    ) {
        let role = [Role::Agent, Role::Hq, Role::Pipeline, Role::Admin][role];
        let who = Identity { user: user.clone(), role, channels: patterns, expires_at: Some(1) };
        let policy = AccessPolicy { public_namespaces: vec!["missions".into()] };
        let ns = if personal { "user" } else { "conn" };
        let channel = ChannelName::parse(&format!("{ns}:{owner}")).unwrap();
        let mine = if personal { user.as_deref() == Some(owner.as_str()) } else { conn == owner };
        prop_assert_eq!(policy.can_read(&who, &conn, &channel), mine || role == Role::Admin);
    }

    #[test]
    fn socketio_args_split_back_to_what_was_encoded(
        event in "\\PC{0,16}",
        data in json(),
        channel in channel_name(),
        offset in offset(),
        epoch in epoch(),
    ) {
        let raw = RawValue::from_string(data.to_string()).unwrap();
        let frame = encode_event_args(&event, &raw);
        let (e, d, m) = split_event_args(frame.as_bytes()).unwrap();
        prop_assert_eq!((e.as_ref(), d.get(), m.is_none()), (event.as_str(), raw.get(), true));
        let frame = encode_publication_args(&event, &raw, &channel, offset, &epoch);
        let (e, d, m) = split_event_args(frame.as_bytes()).unwrap();
        prop_assert_eq!((e.as_ref(), d.get()), (event.as_str(), raw.get()));
        let meta: Value = serde_json::from_str(m.unwrap().get()).unwrap();
        prop_assert_eq!(meta, serde_json::json!({"channel": channel, "offset": offset, "epoch": epoch}));
    }

    #[test]
    fn sse_frames_carry_exactly_one_event(
        event in "[ -~\\r\\n]{0,12}",
        payload in "[ -~\\r\\n]{0,40}",
        comment in "[ -~\\r\\n]{0,20}",
        entries in btree_map(channel_name(), (offset(), epoch()), 0..3),
    ) {
        let mut cursor = Cursor::new();
        for (name, (offset, epoch)) in &entries {
            let position = StreamPosition { offset: *offset, epoch: epoch.clone() };
            cursor.set(ChannelName::parse(name).unwrap(), position);
        }
        let id = cursor.encode();
        let mut stream = sse::comment(&comment).to_vec();
        stream.extend_from_slice(&sse::delivery(&id, Some(&event), payload.as_bytes()));
        let events = parse_sse(std::str::from_utf8(&stream).unwrap());
        prop_assert_eq!(events.len(), 1);
        let carried = !event.is_empty() && !event.contains(['\r', '\n']);
        let want_event = if carried { event.clone() } else { String::new() };
        let want_data = payload.replace("\r\n", "\n").replace('\r', "\n");
        prop_assert_eq!(&events[0], &(want_event, want_data, id));
    }

    #[test]
    fn the_sse_event_of_a_native_delivery_reads_back(event in "\\PC{0,24}", data in json()) {
        let publication = Publication {
            channel: ChannelName::parse("missions").unwrap(),
            event: Arc::from(event.as_str()),
            offset: 1,
            epoch: Arc::from("e"),
            timestamp_ms: 2,
            data: PublicationData::shared(&data).unwrap(),
        };
        let frame = encode_delivery(&publication, Audience::Agent);
        prop_assert_eq!(sse::delivery_event(frame.as_bytes()), Some(event));
        let v: Value = serde_json::from_str(&frame).unwrap();
        prop_assert_eq!(&v["data"], &data);
    }
}
