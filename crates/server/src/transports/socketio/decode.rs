//! What a Socket.IO client may ask, decoded from `(event, data)` (sans-IO).
//!
//! The protocol's own events are those of SPEC §4.2 (`subscribe`, `unsubscribe`, `ack`);
//! the events of §1.2 (`join-room`, `chat-message`…) belong to the chat app, which decodes
//! their payloads itself. Decoding only checks shape and channel names; permissions are the
//! command layer's, where the identity is known.

use serde_json::Value;
use switchboard_core::channel::ChannelName;
use switchboard_core::codes::ErrorCode;
use switchboard_core::publication::StreamPosition;
use switchboard_core::refusal::Refusal;

use crate::commands::request::Request;

/// A decoded client request: the core commands this protocol carries, or an event an app
/// handles (passed on as it came; the app decodes its own payloads).
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// `subscribe` channel | `{channel, since?}`.
    Subscribe {
        channel: ChannelName,
        /// Where the client's copy of the stream ends, to recover what it missed.
        since: Option<StreamPosition>,
    },
    /// `unsubscribe` channel | `{channel}`.
    Unsubscribe(ChannelName),
    /// `ack` `{channel, offset}`: the user's inbox is delivered up to `offset`.
    Ack {
        /// Must be the socket's own `user:<sub>`.
        channel: ChannelName,
        /// Cumulative: everything up to and including it.
        offset: u64,
    },
    /// An event an app handles (`join-room`, `chat-message`, `typing`, `leave-room`…).
    App(String),
}

impl Command {
    /// The command-layer request, with the event's payload for app events.
    pub fn into_request(self, data: Value) -> Request {
        match self {
            Self::Subscribe { channel, since } => Request::Subscribe { channel, since },
            Self::Unsubscribe(channel) => Request::Unsubscribe { channel },
            Self::Ack { channel, offset } => Request::Ack {
                channel: channel.as_str().to_owned(),
                offset,
            },
            Self::App(event) => Request::App { event, data },
        }
    }
}

/// Decodes one client event; `app_event` says which event names an app handles.
pub fn decode(
    event: &str,
    data: &Value,
    app_event: impl Fn(&str) -> bool,
) -> Result<Command, Refusal> {
    match event {
        "subscribe" => {
            let (channel, since) = match data {
                Value::Object(o) => {
                    let since = match o.get("since") {
                        None | Some(Value::Null) => None,
                        Some(s) => {
                            Some(serde_json::from_value::<StreamPosition>(s.clone()).map_err(
                                |_| Refusal::bad("since must be {offset: number, epoch: string}"),
                            )?)
                        }
                    };
                    (o.get("channel").unwrap_or(&Value::Null), since)
                }
                other => (other, None),
            };
            Ok(Command::Subscribe {
                channel: channel_name(channel)?,
                since,
            })
        }
        "unsubscribe" => {
            channel_name(data.get("channel").unwrap_or(data)).map(Command::Unsubscribe)
        }
        "ack" => {
            let channel = channel_name(data.get("channel").unwrap_or(&Value::Null))?;
            let offset = data.get("offset").and_then(Value::as_u64).ok_or_else(|| {
                Refusal::new(ErrorCode::InvalidMessage, "ack needs {channel, offset}")
            })?;
            Ok(Command::Ack { channel, offset })
        }
        other if app_event(other) => Ok(Command::App(other.to_owned())),
        other => Err(Refusal::new(
            ErrorCode::UnknownType,
            format!("Unknown event {:?}", truncate(other, 64)),
        )),
    }
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

fn channel_name(name: &Value) -> Result<ChannelName, Refusal> {
    let name = name
        .as_str()
        .ok_or_else(|| Refusal::bad("channel must be a string"))?;
    ChannelName::parse(name).map_err(|e| Refusal::invalid_channel(&e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ch(s: &str) -> ChannelName {
        ChannelName::parse(s).unwrap()
    }

    /// No app events: only the protocol's own.
    fn none(_: &str) -> bool {
        false
    }

    #[test]
    fn app_events_pass_through_unknown_ones_do_not() {
        let rooms = |e: &str| e == "join-room";
        assert_eq!(
            decode("join-room", &json!("r"), rooms),
            Ok(Command::App("join-room".into()))
        );
        assert_eq!(
            decode("join-room", &json!("r"), none).unwrap_err().code,
            ErrorCode::UnknownType
        );
    }

    #[test]
    fn decodes_acks() {
        assert_eq!(
            decode("ack", &json!({"channel": "user:alice", "offset": 3}), none),
            Ok(Command::Ack {
                channel: ch("user:alice"),
                offset: 3
            })
        );
        assert_eq!(
            decode("ack", &json!({"channel": "user:alice"}), none)
                .unwrap_err()
                .code,
            ErrorCode::InvalidMessage
        );
    }

    #[test]
    fn decodes_subscriptions() {
        assert_eq!(
            decode("subscribe", &json!("missions"), none),
            Ok(Command::Subscribe {
                channel: ch("missions"),
                since: None
            })
        );
        assert_eq!(
            decode(
                "subscribe",
                &json!({"channel":"missions","since":{"offset":3,"epoch":"ab"}}),
                none
            ),
            Ok(Command::Subscribe {
                channel: ch("missions"),
                since: Some(StreamPosition {
                    offset: 3,
                    epoch: "ab".into()
                })
            })
        );
        assert_eq!(
            decode("unsubscribe", &json!({"channel":"lobby"}), none),
            Ok(Command::Unsubscribe(ch("lobby")))
        );
    }

    #[test]
    fn refuses_bad_shapes() {
        let code = |e: &str, d: Value| decode(e, &d, none).unwrap_err().code;
        assert_eq!(
            code("subscribe", json!({"channel":"x","since":{"offset":"no"}})),
            ErrorCode::BadRequest
        );
        assert_eq!(code("subscribe", json!(5)), ErrorCode::BadRequest);
        assert_eq!(code("publish", json!({})), ErrorCode::UnknownType);
    }
}
