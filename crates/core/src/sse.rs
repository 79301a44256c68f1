//! Server-Sent Events framing (SPEC §4.3): a sans-IO encoder, tested byte for byte.
//!
//! The `data:` of a delivery is the native delivery JSON the hub already encoded once for every
//! subscriber; this module only wraps it in `id:`/`event:`/`data:` lines. A payload that
//! contains line breaks (JSON whitespace inside a client-published payload) is split over
//! several `data:` lines, which the client's parser joins back with `\n` — still the same JSON.

use bytes::{BufMut, Bytes, BytesMut};

/// The first event of every stream. Its `id:` is the cursor the stream starts from, so a client
/// that disconnects before any publication still resumes without a gap.
pub fn connected(cursor: &str, retry_ms: u64) -> Bytes {
    let mut out = BytesMut::with_capacity(64 + cursor.len());
    out.put_slice(b"data: {\"type\":\"connected\"}\n");
    put_field(&mut out, "id", cursor.as_bytes());
    put_field(&mut out, "retry", retry_ms.to_string().as_bytes());
    out.put_u8(b'\n');
    out.freeze()
}

/// A publication: `id: <cursor>`, `event: <event>`, `data: <native delivery JSON>`.
///
/// An event name that SSE cannot carry (empty, or with a line break) is left out, so the event
/// arrives as a plain `message` rather than corrupting the stream.
pub fn delivery(cursor: &str, event: Option<&str>, data: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(32 + cursor.len() + data.len());
    put_field(&mut out, "id", cursor.as_bytes());
    put_event_and_data(&mut out, event, data);
    out.freeze()
}

/// A named event without an id (stream notices such as `subscribed` and `close`): it does not
/// move the client's `Last-Event-ID`.
pub fn notice(event: &str, data: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(16 + event.len() + data.len());
    put_event_and_data(&mut out, Some(event), data);
    out.freeze()
}

/// Event names the SSE stream uses itself, besides the native protocol's types: `message` is
/// what `EventSource` calls an unnamed event (the `connected` notice), `close` the notice before
/// the server ends a stream, `error` what `EventSource` fires when the stream fails.
pub const STREAM_EVENTS: [&str; 4] = ["message", "connected", "close", "error"];

/// A comment line: ignored by clients, keeps proxies and idle timers from closing the stream.
pub fn comment(text: &str) -> Bytes {
    let mut out = BytesMut::with_capacity(4 + text.len());
    out.put_slice(b":");
    // Only the first line: a comment cannot span lines.
    if let Some(line) = lines(text.as_bytes()).next().filter(|l| !l.is_empty()) {
        out.put_u8(b' ');
        out.put_slice(line);
    }
    out.put_slice(b"\n\n");
    out.freeze()
}

/// The event name of a native delivery frame (`{"type":<event>,…}`, as
/// [`crate::protocol::encode_delivery`] writes it), read without parsing the rest.
pub fn delivery_event(frame: &[u8]) -> Option<String> {
    let rest = frame.strip_prefix(b"{\"type\":")?;
    let mut de = serde_json::Deserializer::from_slice(rest);
    serde::Deserialize::deserialize(&mut de).ok()
}

fn put_event_and_data(out: &mut BytesMut, event: Option<&str>, data: &[u8]) {
    if let Some(event) = event.filter(|e| !e.is_empty() && !e.contains(['\r', '\n'])) {
        put_field(out, "event", event.as_bytes());
    }
    for line in lines(data) {
        put_field(out, "data", line);
    }
    out.put_u8(b'\n');
}

fn put_field(out: &mut BytesMut, name: &str, value: &[u8]) {
    out.put_slice(name.as_bytes());
    out.put_slice(b": ");
    out.put_slice(value);
    out.put_u8(b'\n');
}

/// Splits on `\r\n`, `\n` or `\r` — the three line ends an SSE parser accepts.
fn lines(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = Some(data);
    std::iter::from_fn(move || {
        let current = rest?;
        match current.iter().position(|&b| b == b'\n' || b == b'\r') {
            None => {
                rest = None;
                Some(current)
            }
            Some(i) => {
                let skip = if current[i] == b'\r' && current.get(i + 1) == Some(&b'\n') {
                    2
                } else {
                    1
                };
                rest = Some(&current[i + skip..]);
                Some(&current[..i])
            }
        }
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn s(b: Bytes) -> String {
        String::from_utf8(b.to_vec()).unwrap()
    }

    #[test]
    fn exact_frames() {
        assert_eq!(
            s(connected("AQ", 3000)),
            "data: {\"type\":\"connected\"}\nid: AQ\nretry: 3000\n\n"
        );
        assert_eq!(
            s(delivery(
                "AQx",
                Some("mission-update"),
                br#"{"type":"mission-update"}"#
            )),
            "id: AQx\nevent: mission-update\ndata: {\"type\":\"mission-update\"}\n\n"
        );
        assert_eq!(
            s(notice("close", br#"{"code":1012}"#)),
            "event: close\ndata: {\"code\":1012}\n\n"
        );
        assert_eq!(s(comment("ping")), ": ping\n\n");
        assert_eq!(s(comment("")), ":\n\n");
        assert_eq!(s(comment("a\nb")), ": a\n\n");
    }

    #[test]
    fn multi_line_data_and_unsafe_event_names() {
        assert_eq!(
            s(delivery("c", Some("e"), b"{\"a\":\r\n1,\r\"b\":\n2}")),
            "id: c\nevent: e\ndata: {\"a\":\ndata: 1,\ndata: \"b\":\ndata: 2}\n\n"
        );
        assert_eq!(
            s(delivery("c", Some("bad\nname"), b"{}")),
            "id: c\ndata: {}\n\n"
        );
        assert_eq!(s(delivery("c", None, b"")), "id: c\ndata: \n\n");
    }

    #[test]
    fn reads_the_event_name_of_a_delivery() {
        assert_eq!(
            delivery_event(br#"{"type":"mission-update","channel":"missions"}"#).as_deref(),
            Some("mission-update")
        );
        assert_eq!(
            delivery_event(br#"{"type":"a\"b","x":1}"#).as_deref(),
            Some("a\"b")
        );
        assert_eq!(delivery_event(br#"{"channel":"x"}"#), None);
        assert_eq!(delivery_event(b"garbage"), None);
    }
}
