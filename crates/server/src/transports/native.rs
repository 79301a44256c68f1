//! The native protocol v1 (SPEC §4.1) as a thin codec over the command layer: a decoded
//! [`ClientMessage`] becomes a [`Request`], and each [`Reply`] or refusal becomes the frame the
//! protocol defines, echoing the message's `ref`. The socket side is in `ws.rs`.

use bytes::Bytes;
use serde_json::value::RawValue;
use serde_json::{Value, json};
use switchboard_core::channel::ChannelName;
use switchboard_core::protocol::{
    ClientMessage, Envelope, ServerMessage, encode_error, encode_reply,
};
use switchboard_core::refusal::Refusal;

use crate::commands::client::Client;
use crate::commands::request::{Next, Reply, Request, Responder};
use crate::node::Notice;

/// The app event a native `{"type":"chat"}` message is (SPEC §1.2: lobby chat).
const LOBBY_CHAT: &str = "chat";
/// The app event the `cityId` of a native `auth` message is (SPEC §1.4).
const JOIN_CITY: &str = "join-city";

/// Encodes answers as native frames echoing one message's `ref`.
pub struct NativeResponder<'a> {
    r#ref: Option<&'a RawValue>,
}

impl<'a> NativeResponder<'a> {
    /// A responder echoing `ref` (None: a frame nobody asked for).
    pub fn new(r#ref: Option<&'a RawValue>) -> Self {
        Self { r#ref }
    }
}

/// The native frame for `reply`, or None for replies the protocol keeps silent (acks and app
/// answers succeed without a frame).
fn encode(reply: &Reply<'_>, r#ref: Option<&RawValue>) -> Option<String> {
    let message = match *reply {
        Reply::Pong => ServerMessage::Pong,
        Reply::Authenticated { user } => ServerMessage::Authenticated { user },
        Reply::AuthRejected { message } => ServerMessage::AuthError { message },
        Reply::Subscribed {
            channel,
            position,
            recovered,
        } => ServerMessage::Subscribed {
            channel: channel.as_str(),
            offset: position.offset,
            epoch: &position.epoch,
            recovered,
        },
        Reply::Unsubscribed { channel } => ServerMessage::Unsubscribed {
            channel: channel.as_str(),
        },
        Reply::Published { channel, offset } => ServerMessage::Published {
            channel: channel.as_str(),
            offset,
        },
        Reply::Presence { channel, members } => ServerMessage::Presence {
            channel: channel.as_str(),
            members,
        },
        Reply::Acked { .. } | Reply::App(_) => return None,
    };
    Some(encode_reply(&message, r#ref))
}

impl Responder for NativeResponder<'_> {
    fn answer(&mut self, outcome: Result<Reply<'_>, Refusal>) -> Option<Bytes> {
        let text = match outcome {
            Ok(reply) => encode(&reply, self.r#ref)?,
            Err(refusal) => encode_error(refusal.code, &refusal.message, self.r#ref),
        };
        Some(Bytes::from(text))
    }

    fn unsolicited(&mut self, reply: Reply<'_>) -> Option<Bytes> {
        encode(&reply, None).map(Bytes::from)
    }

    fn notice(&mut self, channel: &ChannelName, notice: &Notice) -> Option<Bytes> {
        let frame = json!({"type": notice.event, "channel": channel.as_str(), "data": notice.data});
        serde_json::to_vec(&frame).ok().map(Bytes::from)
    }
}

/// A native message as a request; a channel name that does not parse is refused here.
pub fn decode(message: ClientMessage) -> Result<Request, Refusal> {
    let channel = |name: &str| ChannelName::parse(name).map_err(|e| Refusal::invalid_channel(&e));
    Ok(match message {
        ClientMessage::Ping => Request::Ping,
        ClientMessage::Auth { token, .. } => Request::Auth { token },
        ClientMessage::Subscribe { channel: c, since } => Request::Subscribe {
            channel: channel(&c)?,
            since,
        },
        ClientMessage::Unsubscribe { channel: c } => Request::Unsubscribe {
            channel: channel(&c)?,
        },
        ClientMessage::Publish {
            channel: c,
            event,
            data,
        } => Request::Publish {
            channel: channel(&c)?,
            event,
            data,
        },
        ClientMessage::Chat { message } => Request::App {
            event: LOBBY_CHAT.to_owned(),
            data: json!({ "message": message }),
        },
        ClientMessage::Presence { channel: c } => Request::Presence {
            channel: channel(&c)?,
        },
        ClientMessage::Ack { channel, offset } => Request::Ack { channel, offset },
    })
}

/// Handles one decoded native message. An `auth` with a `cityId` is two requests: the auth,
/// then (if the connection stays open) joining the city, answered under the same `ref`.
pub async fn handle(client: &mut Client, envelope: Envelope) -> Next {
    let mut out = NativeResponder::new(envelope.r#ref.as_deref());
    let city = match &envelope.message {
        ClientMessage::Auth { city_id, .. } => city_id.clone(),
        _ => None,
    };
    let next = match decode(envelope.message) {
        Ok(request) => client.apply(request, &mut out).await,
        Err(refusal) => {
            client.refuse(&mut out, refusal).await;
            Next::Continue
        }
    };
    if let (Next::Continue, Some(city)) = (next, city) {
        let request = Request::App {
            event: JOIN_CITY.to_owned(),
            data: Value::String(city),
        };
        return client.apply(request, &mut out).await;
    }
    next
}
