//! The native protocol, version 1 (SPEC §4.1): a sans-IO codec.
//!
//! Decoding classifies bad input precisely (not JSON → `invalid_json`; not an object with a
//! string `type`, or wrong field shapes → `invalid_message`; unknown `type` → `unknown_type`)
//! so the transport only has to write the answer. Encoding of deliveries writes the envelope
//! around pre-serialized data without re-parsing it.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

use crate::codes::ErrorCode;
use crate::publication::{Audience, Publication, StreamPosition};

/// The protocol version announced in `welcome`.
pub const PROTOCOL_VERSION: u32 = 1;

/// A decoded client message, with the `ref` to echo in the answer.
#[derive(Debug, Clone)]
pub struct Envelope {
    /// The client's correlation value, echoed verbatim: the JSON text as the client wrote it,
    /// so a number like `1.0000000000000001` or `1e400` comes back with its digits.
    pub r#ref: Option<Box<RawValue>>,
    /// What the client asked for.
    pub message: ClientMessage,
}

/// Everything a client may send (SPEC §4.1). The server decodes it with [`decode`]; the Rust
/// client (`crates/client`) encodes it with `Serialize`, so both sides share one definition.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMessage {
    /// Authenticate (or re-authenticate with a fresh token).
    Auth {
        /// The JWT, verified by the session (the codec never looks inside it).
        token: String,
        /// Optional city to subscribe to after authenticating.
        #[serde(rename = "cityId", skip_serializing_if = "Option::is_none")]
        city_id: Option<String>,
    },
    /// Subscribe to a channel, optionally recovering from a position.
    Subscribe {
        /// Channel name, unvalidated.
        channel: String,
        /// Where the client's stream stopped.
        #[serde(skip_serializing_if = "Option::is_none")]
        since: Option<StreamPosition>,
    },
    /// Leave a channel.
    Unsubscribe {
        /// Channel name, unvalidated.
        channel: String,
    },
    /// Publish on a channel whose namespace allows client publications.
    Publish {
        /// Channel name, unvalidated.
        channel: String,
        /// Event name, checked by the session with [`valid_event_name`].
        event: String,
        /// Arbitrary JSON payload, kept raw so it is forwarded without being re-serialized.
        data: Box<RawValue>,
    },
    /// A lobby chat line.
    Chat {
        /// The text, unvalidated.
        message: String,
    },
    /// Ask for a channel's presence set.
    Presence {
        /// Channel name, unvalidated.
        channel: String,
    },
    /// Acknowledge an inbox delivery.
    Ack {
        /// Channel name, unvalidated.
        channel: String,
        /// Offset acknowledged (and everything before it).
        offset: u64,
    },
    /// Application-level keepalive, for clients (browsers) that cannot see WebSocket pings.
    Ping,
}

/// A decoding failure, with the reply to send and the `ref` when one could be read.
#[derive(Debug, Clone)]
pub struct DecodeError {
    /// Which error code to answer with.
    pub code: ErrorCode,
    /// The public message of the answer: fixed text, never echoing the client's input at
    /// length.
    pub message: String,
    /// The `ref` of the bad message, when the JSON was readable enough to find one (as
    /// written, like [`Envelope::ref`]).
    pub r#ref: Option<Box<RawValue>>,
}

#[derive(Deserialize)]
struct AuthFields {
    token: String,
    #[serde(rename = "cityId")]
    city_id: Option<String>,
}

#[derive(Deserialize)]
struct SubscribeFields {
    channel: String,
    since: Option<StreamPosition>,
}

#[derive(Deserialize)]
struct ChannelField {
    channel: String,
}

#[derive(Deserialize)]
struct PublishFields {
    channel: String,
    event: String,
}

/// A publish's `data` exactly as the client wrote it, read from the frame's text. Reading it
/// from the parsed `Value` would re-serialize it: numbers go through `f64` and back, which
/// changes their digits (`-3e50` came back as `-3e+50`, then `-3.0000000000000002e+50`).
#[derive(Deserialize)]
struct RawData<'a> {
    #[serde(borrow)]
    data: Option<&'a RawValue>,
}

/// A message's `ref` exactly as the client wrote it (see [`RawData`] for why not the `Value`).
#[derive(Deserialize)]
struct RawRef<'a> {
    #[serde(borrow, rename = "ref")]
    r#ref: Option<&'a RawValue>,
}

/// The `ref` of `text` as written; `parsed` (the value the full parse found) is the fallback
/// when the raw read disagrees (a duplicated `ref` key, which the full parse resolves to the
/// last one).
fn raw_ref(text: &str, parsed: Option<Value>) -> Option<Box<RawValue>> {
    let parsed = parsed?;
    let raw = serde_json::from_str::<RawRef<'_>>(text)
        .ok()
        .and_then(|r| r.r#ref)
        .map(RawValue::to_owned);
    raw.or_else(|| RawValue::from_string(parsed.to_string()).ok())
}

#[derive(Deserialize)]
struct ChatFields {
    message: String,
}

#[derive(Deserialize)]
struct AckFields {
    channel: String,
    offset: u64,
}

/// Decodes one text frame.
pub fn decode(text: &str) -> Result<Envelope, DecodeError> {
    let fail = |code: ErrorCode, r#ref: Option<Box<RawValue>>| DecodeError {
        code,
        message: code.default_message().to_owned(),
        r#ref,
    };
    let mut value: Value =
        serde_json::from_str(text).map_err(|_| fail(ErrorCode::InvalidJson, None))?;
    let Some(obj) = value.as_object_mut() else {
        return Err(fail(ErrorCode::InvalidMessage, None));
    };
    let r#ref = raw_ref(text, obj.remove("ref"));
    let Some(Value::String(kind)) = obj.remove("type") else {
        return Err(fail(ErrorCode::InvalidMessage, r#ref));
    };
    fn fields<T: serde::de::DeserializeOwned>(v: Value) -> Option<T> {
        serde_json::from_value(v).ok()
    }
    let message = match kind.as_str() {
        "auth" => fields::<AuthFields>(value).map(|f| ClientMessage::Auth {
            token: f.token,
            city_id: f.city_id,
        }),
        "subscribe" => fields::<SubscribeFields>(value).map(|f| ClientMessage::Subscribe {
            channel: f.channel,
            since: f.since,
        }),
        "unsubscribe" => {
            fields::<ChannelField>(value).map(|f| ClientMessage::Unsubscribe { channel: f.channel })
        }
        "publish" => fields::<PublishFields>(value).and_then(|f| {
            // A duplicated `data` key is refused here (ambiguous), as serde refuses it.
            let raw = serde_json::from_str::<RawData<'_>>(text).ok()?;
            let data =
                RawValue::from_string(raw.data.map_or("null", RawValue::get).to_owned()).ok()?;
            Some(ClientMessage::Publish {
                channel: f.channel,
                event: f.event,
                data,
            })
        }),
        "chat" => fields::<ChatFields>(value).map(|f| ClientMessage::Chat { message: f.message }),
        "presence" => {
            fields::<ChannelField>(value).map(|f| ClientMessage::Presence { channel: f.channel })
        }
        "ack" => fields::<AckFields>(value).map(|f| ClientMessage::Ack {
            channel: f.channel,
            offset: f.offset,
        }),
        "ping" => Some(ClientMessage::Ping),
        _ => {
            return Err(DecodeError {
                code: ErrorCode::UnknownType,
                message: format!("Unknown message type: {}", truncate(&kind, 64)),
                r#ref,
            });
        }
    };
    match message {
        Some(message) => Ok(Envelope { r#ref, message }),
        None => Err(fail(ErrorCode::InvalidMessage, r#ref)),
    }
}

/// The native protocol's own message types, both directions, except `chat`, which is also the
/// lobby's publication event (SPEC §1.2). A publication is delivered as `{"type":<event>,…}`,
/// so one named like these would look like a protocol message to a client.
pub const MESSAGE_TYPES: [&str; 15] = [
    "welcome",
    "authenticated",
    "auth_error",
    "subscribed",
    "unsubscribed",
    "published",
    "presence",
    "pong",
    "error",
    "auth",
    "subscribe",
    "unsubscribe",
    "publish",
    "ack",
    "ping",
];

/// Whether `event` is an acceptable event name: 1–64 characters of letters, digits, `_`, `-`,
/// `.`, `:`. Event names become SSE `event:` lines and Socket.IO event names, so they must stay
/// free of whitespace and control characters.
pub fn valid_event_name(event: &str) -> bool {
    (1..=64).contains(&event.len())
        && event
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':'))
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// A member of a presence set. Deserializable too: nodes exchange presence sets for the
/// admin API's cluster-wide answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct PresenceMember {
    /// The user id, or `null` for anonymous members.
    pub user: Option<String>,
    /// The member's connection id.
    #[serde(rename = "connectionId")]
    pub connection_id: String,
}

/// Replies and notices the server sends (deliveries are encoded by [`encode_delivery`]).
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage<'a> {
    /// First frame on every connection.
    Welcome {
        /// Fixed greeting (SPEC §4.1), kept for clients of the legacy server that check it.
        message: &'a str,
        /// This connection's id (its personal channel is `conn:<id>`).
        #[serde(rename = "connectionId")]
        connection_id: &'a str,
        /// Protocol version, so a client can refuse a server it does not speak.
        protocol: u32,
        /// Server ping interval in milliseconds.
        heartbeat: u64,
    },
    /// Authentication succeeded.
    Authenticated {
        /// The token's `sub` (or `null`).
        user: Option<&'a str>,
    },
    /// Authentication failed; the connection is closed next.
    AuthError {
        /// Why the token was refused (an [`AuthError`](crate::auth::AuthError) text: public).
        message: &'a str,
    },
    /// Subscription confirmed, with the channel's position.
    Subscribed {
        /// The channel, echoed so replies without a `ref` can be matched.
        channel: &'a str,
        /// Current offset (after any recovered publications).
        offset: u64,
        /// Current epoch; the client keeps it with the offset to resume with `since`.
        epoch: &'a str,
        /// Whether every publication after the client's `since` was (or will be) delivered.
        recovered: bool,
    },
    /// Unsubscription confirmed.
    Unsubscribed {
        /// The channel left; no delivery on it follows this frame.
        channel: &'a str,
    },
    /// A client publication was accepted.
    Published {
        /// The channel published on.
        channel: &'a str,
        /// The offset the broker assigned, so the publisher can recognise its own delivery.
        offset: u64,
    },
    /// Who is on a channel on this node right now.
    Presence {
        /// The channel asked about.
        channel: &'a str,
        /// One entry per connection (a user with two tabs appears twice).
        members: &'a [PresenceMember],
    },
    /// Answer to `ping`.
    Pong,
    /// A request failed.
    Error {
        /// The [`ErrorCode`] wire value; what a client program branches on.
        code: &'a str,
        /// The public message for people (see [`crate::refusal::Refusal`]).
        message: &'a str,
    },
}

#[derive(Serialize)]
struct WithRef<'a> {
    #[serde(flatten)]
    message: &'a ServerMessage<'a>,
    #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
    r#ref: Option<&'a RawValue>,
}

/// Encodes a reply, echoing `ref` when the request had one.
pub fn encode_reply(message: &ServerMessage<'_>, r#ref: Option<&RawValue>) -> String {
    // Serializing these borrowed, string-and-number-only shapes cannot fail.
    serde_json::to_string(&WithRef { message, r#ref }).unwrap_or_default()
}

/// Encodes an error reply.
pub fn encode_error(code: ErrorCode, message: &str, r#ref: Option<&RawValue>) -> String {
    encode_reply(
        &ServerMessage::Error {
            code: code.as_str(),
            message,
        },
        r#ref,
    )
}

/// Encodes a delivery: `{"type":<event>,"channel":…,"offset":…,"epoch":…,"timestamp":…,
/// "data":…}`, splicing the audience's pre-serialized data in as is.
pub fn encode_delivery(publication: &Publication, audience: Audience) -> String {
    let data = publication.data.for_audience(audience).get();
    let mut out = String::with_capacity(96 + data.len() + publication.channel.as_str().len());
    out.push_str("{\"type\":");
    push_json_str(&mut out, &publication.event);
    out.push_str(",\"channel\":");
    push_json_str(&mut out, publication.channel.as_str());
    out.push_str(",\"offset\":");
    out.push_str(itoa(publication.offset).as_str());
    out.push_str(",\"epoch\":");
    push_json_str(&mut out, &publication.epoch);
    out.push_str(",\"timestamp\":");
    out.push_str(itoa(publication.timestamp_ms).as_str());
    out.push_str(",\"data\":");
    out.push_str(data);
    out.push('}');
    out
}

fn itoa(n: u64) -> String {
    n.to_string()
}

fn push_json_str(out: &mut String, s: &str) {
    // serde_json's escaping of a &str never fails.
    out.push_str(&serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_owned()));
}

#[cfg(test)]
mod tests;
