//! `switchboard_core::sse`: the framing of every event an SSE client reads, and
//! `delivery_event`, which reads the event name back out of a native delivery frame.
//!
//! The frames are parsed back with a reference EventSource parser (WHATWG algorithm,
//! `switchboard_fuzz::parse_sse`): a delivery is exactly one event whose id is the cursor,
//! whose data is the payload with its line ends normalised to `\n`, and whose type is the
//! event name when SSE can carry it; a notice the same without an id; a comment or the
//! `connected` event can never smuggle in a second event. `delivery_event` never panics and
//! reads the event of every frame `encode_delivery` writes.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use switchboard_core::channel::ChannelName;
use switchboard_core::cursor::Cursor;
use switchboard_core::protocol::encode_delivery;
use switchboard_core::publication::{Audience, Publication, PublicationData, StreamPosition};
use switchboard_core::sse;
use switchboard_fuzz::{bounded, parse_sse, split_n, text};

fn normalise(data: &str) -> String {
    data.replace("\r\n", "\n").replace('\r', "\n")
}

fuzz_target!(|data: &[u8]| {
    bounded(data.len(), || sse::delivery_event(data));
    let parts = split_n(data, 0, 4);
    let (event, payload, comment) = (text(parts[0]), text(parts[1]), text(parts[2]));
    // Real cursors come from Cursor::encode; build one from the fuzzed bytes.
    let mut cursor = Cursor::new();
    if let Ok(channel) = ChannelName::parse(&text(parts[3])) {
        let position = StreamPosition {
            offset: parts[3].len() as u64,
            epoch: "e".into(),
        };
        cursor.set(channel, position);
    }
    let id = cursor.encode();

    let frame = bounded(data.len() + id.len(), || {
        sse::delivery(&id, Some(&event), payload.as_bytes())
    });
    assert!(frame.ends_with(b"\n\n"));
    let events = parse_sse(&frame);
    assert_eq!(events.len(), 1, "{frame:?}");
    let got = &events[0];
    assert_eq!(got.id, id);
    assert_eq!(got.data, normalise(&payload));
    let carried = !event.is_empty() && !event.contains(['\r', '\n']);
    assert_eq!(got.event, if carried { event.as_str() } else { "" });

    let frame = sse::notice(&event, payload.as_bytes());
    let events = parse_sse(&frame);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].id, "");
    assert_eq!(events[0].data, normalise(&payload));

    // A comment never dispatches anything, whatever its text.
    let mut stream = sse::comment(&comment).to_vec();
    assert!(parse_sse(&stream).is_empty(), "{stream:?}");
    stream.extend_from_slice(&sse::connected(&id, 3000));
    let events = parse_sse(&stream);
    assert_eq!(events.len(), 1);
    assert_eq!(
        (events[0].id.as_str(), events[0].retry),
        (id.as_str(), Some(3000))
    );
    assert_eq!(events[0].data, r#"{"type":"connected"}"#);

    // The event name read back from a native delivery frame.
    if let Ok(channel) = ChannelName::parse("missions") {
        let publication = Publication {
            channel,
            event: Arc::from(event.as_str()),
            offset: 1,
            epoch: Arc::from("e"),
            timestamp_ms: 0,
            data: PublicationData::shared(&payload).unwrap(),
        };
        let frame = encode_delivery(&publication, Audience::Agent);
        assert_eq!(
            sse::delivery_event(frame.as_bytes()).as_deref(),
            Some(event.as_str())
        );
    }
});
