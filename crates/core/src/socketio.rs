//! The Socket.IO form of a publication (sans-IO, tested byte for byte).
//!
//! A Socket.IO `EVENT` packet carries a JSON array of arguments whose first element is the
//! event name: `["mission-update",{…}]`. The hub encodes the whole Engine.IO message packet,
//! `42["mission-update",{…}]`, once per audience, and every Socket.IO connection receives a
//! clone of the same bytes: Switchboard's own websocket transport writes them as they are.
//! socketioxide (polling, and sockets upgraded from it) has no public way to take a
//! pre-encoded packet (its raw send is crate-private), so its sink strips the `42` and splits
//! the array back into the event name and a borrowed [`RawValue`] ([`split_event_packet`]):
//! the payload is copied verbatim, never re-serialized per socket. See docs/socketio.md.

use std::borrow::Cow;

use serde_json::value::RawValue;

/// What starts every event packet of namespace `/` on the websocket transport: Engine.IO
/// `message` (`4`), Socket.IO `EVENT` (`2`).
pub const EVENT_PREFIX: &str = "42";

/// Event names socket.io-client reserves for itself (its `RESERVED_EVENTS`, and the parser's):
/// an `EVENT` packet naming one makes the client drop the connection with `parse error`, so no
/// publication may carry one of these names.
pub const RESERVED_EVENTS: [&str; 6] = [
    "connect",
    "connect_error",
    "disconnect",
    "disconnecting",
    "newListener",
    "removeListener",
];

/// Encodes the argument array `[event, data]` of a Socket.IO `EVENT` packet.
///
/// `data` is already JSON, so it is appended as is.
pub fn encode_event_args(event: &str, data: &RawValue) -> String {
    event_args("", event, data, None)
}

/// Encodes a publication's argument array `[event, data, {channel, offset, epoch}]`.
///
/// The third argument is the publication's position, so a Socket.IO client can remember where
/// it stopped (`socket.on("mission-update", (dto, meta) => …)`) and resume with `since` —
/// handlers written for `(dto) => …` simply ignore it.
pub fn encode_publication_args(
    event: &str,
    data: &RawValue,
    channel: &str,
    offset: u64,
    epoch: &str,
) -> String {
    event_args("", event, data, Some((channel, offset, epoch)))
}

/// The whole websocket message of `emit(event, data)`: `42[event,data]`.
pub fn encode_event_packet(event: &str, data: &RawValue) -> String {
    event_args(EVENT_PREFIX, event, data, None)
}

/// The whole websocket message of a publication: `42[event,data,{channel,offset,epoch}]`
/// (see [`encode_publication_args`]).
pub fn encode_publication_packet(
    event: &str,
    data: &RawValue,
    channel: &str,
    offset: u64,
    epoch: &str,
) -> String {
    event_args(EVENT_PREFIX, event, data, Some((channel, offset, epoch)))
}

/// `prefix` then the argument array, in one allocation of the right size.
fn event_args(
    prefix: &str,
    event: &str,
    data: &RawValue,
    position: Option<(&str, u64, &str)>,
) -> String {
    let data = data.get();
    let extra = position.map_or(0, |(c, _, e)| c.len() + e.len() + 48);
    let mut out = String::with_capacity(prefix.len() + event.len() + data.len() + extra + 8);
    out.push_str(prefix);
    out.push('[');
    push_json_str(&mut out, event);
    out.push(',');
    out.push_str(data);
    if let Some((channel, offset, epoch)) = position {
        out.push_str(",{\"channel\":");
        push_json_str(&mut out, channel);
        out.push_str(",\"offset\":");
        out.push_str(&offset.to_string());
        out.push_str(",\"epoch\":");
        push_json_str(&mut out, epoch);
        out.push('}');
    }
    out.push(']');
    out
}

/// Appends `s` as a JSON string. Serializing a `&str` cannot fail; an empty string stands in
/// just in case.
fn push_json_str(out: &mut String, s: &str) {
    out.push_str(&serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_owned()));
}

/// The arguments of a Socket.IO event: its name, its data, and the position when the frame
/// carries one.
pub type EventArgs<'a> = (Cow<'a, str>, &'a RawValue, Option<&'a RawValue>);

/// Splits an argument array made by [`encode_event_args`] or [`encode_publication_args`] into
/// the event name, the data and the optional position, borrowing from `frame`. `None` when
/// `frame` is not such an array.
pub fn split_event_args(frame: &[u8]) -> Option<EventArgs<'_>> {
    let args: Vec<&RawValue> = serde_json::from_slice(frame).ok()?;
    let (name, data, meta) = match args.as_slice() {
        [name, data] => (*name, *data, None),
        [name, data, meta] => (*name, *data, Some(*meta)),
        _ => return None,
    };
    let event: Cow<'_, str> = serde_json::from_str(name.get()).ok()?;
    Some((event, data, meta))
}

/// Splits an event packet made by [`encode_event_packet`] or [`encode_publication_packet`]
/// (`42` then the argument array) like [`split_event_args`].
pub fn split_event_packet(frame: &[u8]) -> Option<EventArgs<'_>> {
    split_event_args(frame.strip_prefix(EVENT_PREFIX.as_bytes())?)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn encodes_exact_bytes_and_splits_back() {
        let data = RawValue::from_string(r#"{"id":1,"status":"active"}"#.to_owned()).unwrap();
        let frame = encode_event_args("mission-update", &data);
        assert_eq!(frame, r#"["mission-update",{"id":1,"status":"active"}]"#);
        let (event, back, meta) = split_event_args(frame.as_bytes()).unwrap();
        assert_eq!(event, "mission-update");
        assert_eq!(back.get(), data.get());
        assert!(meta.is_none());
    }

    #[test]
    fn publications_carry_their_position_as_a_third_argument() {
        let data = RawValue::from_string(r#"{"id":1}"#.to_owned()).unwrap();
        let frame = encode_publication_args("mission-update", &data, "missions", 42, "ab\"c");
        assert_eq!(
            frame,
            r#"["mission-update",{"id":1},{"channel":"missions","offset":42,"epoch":"ab\"c"}]"#
        );
        let (event, back, meta) = split_event_args(frame.as_bytes()).unwrap();
        assert_eq!(
            (event.as_ref(), back.get()),
            ("mission-update", r#"{"id":1}"#)
        );
        assert_eq!(
            meta.unwrap().get(),
            r#"{"channel":"missions","offset":42,"epoch":"ab\"c"}"#
        );
    }

    #[test]
    fn escapes_event_names_and_keeps_scalars() {
        let data = RawValue::from_string("true".to_owned()).unwrap();
        let frame = encode_event_args("a\"b", &data);
        assert_eq!(frame, r#"["a\"b",true]"#);
        let (event, back, _) = split_event_args(frame.as_bytes()).unwrap();
        assert_eq!((event.as_ref(), back.get()), ("a\"b", "true"));
    }

    #[test]
    fn packets_are_the_arrays_behind_42() {
        let data = RawValue::from_string(r#"{"id":1}"#.to_owned()).unwrap();
        let frame = encode_publication_packet("mission-update", &data, "missions", 42, "e");
        assert_eq!(
            frame,
            r#"42["mission-update",{"id":1},{"channel":"missions","offset":42,"epoch":"e"}]"#
        );
        let (event, back, meta) = split_event_packet(frame.as_bytes()).unwrap();
        assert_eq!(
            (event.as_ref(), back.get()),
            ("mission-update", r#"{"id":1}"#)
        );
        assert!(meta.is_some());
        let frame = encode_event_packet("error", &data);
        assert_eq!(frame, r#"42["error",{"id":1}]"#);
        assert!(split_event_packet(frame.as_bytes()).unwrap().2.is_none());
        assert!(split_event_packet(br#"["error",1]"#).is_none());
        assert!(split_event_packet(br#"43["error",1]"#).is_none());
    }

    #[test]
    fn rejects_other_shapes() {
        assert!(split_event_args(b"{}").is_none());
        assert!(split_event_args(b"[1,2]").is_none());
        assert!(split_event_args(b"[\"e\",1,2,3]").is_none());
        assert!(split_event_args(b"[\"e\"]").is_none());
        assert!(split_event_args(b"not json").is_none());
    }
}
