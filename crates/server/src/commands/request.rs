//! What a client can ask for, what it gets back, and the seam through which a transport says
//! how an answer is written.

use bytes::Bytes;
use serde_json::Value;
use serde_json::value::RawValue;
use switchboard_core::channel::ChannelName;
use switchboard_core::codes::CloseCode;
use switchboard_core::protocol::PresenceMember;
use switchboard_core::publication::StreamPosition;
use switchboard_core::refusal::Refusal;

use crate::node::Notice;

/// One decoded client request, whatever protocol it arrived on. Channel names are parsed by
/// the decoder, which refuses a bad one before it gets here.
#[derive(Debug)]
pub enum Request {
    /// Keep-alive at the protocol level; answered with [`Reply::Pong`].
    Ping,
    /// Authenticate, or refresh the token of an authenticated connection (same user only).
    Auth { token: String },
    /// Join a channel, resuming after `since` when given.
    Subscribe {
        channel: ChannelName,
        /// Where the client's copy of the stream ends.
        since: Option<StreamPosition>,
    },
    /// Leave a channel.
    Unsubscribe { channel: ChannelName },
    /// Publish on a channel whose namespace allows client publications.
    Publish {
        channel: ChannelName,
        /// The event name (checked against the reserved names).
        event: String,
        /// The payload, forwarded as it came.
        data: Box<RawValue>,
    },
    /// Who is in a channel.
    Presence { channel: ChannelName },
    /// The client's `user:<sub>` inbox is delivered up to `offset` (cumulative).
    Ack {
        /// Must be the client's own `user:<sub>`; kept as text so any other name is refused
        /// as "not yours" rather than as malformed.
        channel: String,
        /// Everything up to and including it.
        offset: u64,
    },
    /// A client event that an app handles (`join-room`, `chat-message`, the lobby `chat`…).
    App { event: String, data: Value },
}

/// A successful answer, before any protocol has encoded it.
#[derive(Debug)]
pub enum Reply<'a> {
    /// Answer to [`Request::Ping`].
    Pong,
    /// The connection is now this user (None: a token without `sub`).
    Authenticated { user: Option<&'a str> },
    /// The token was refused; the connection closes after this is written.
    AuthRejected {
        /// Why, in public words.
        message: &'a str,
    },
    /// The channel is joined at `position`; `recovered` says whether what follows is exactly
    /// what the client missed.
    Subscribed {
        channel: &'a ChannelName,
        position: &'a StreamPosition,
        /// Whether the missed publications follow exactly.
        recovered: bool,
    },
    /// The channel is left.
    Unsubscribed { channel: &'a ChannelName },
    /// The publication was accepted at `offset`.
    Published {
        channel: &'a ChannelName,
        offset: u64,
    },
    /// The members of a channel.
    Presence {
        channel: &'a ChannelName,
        members: &'a [PresenceMember],
    },
    /// The inbox is acknowledged up to `offset`.
    Acked { channel: &'a str, offset: u64 },
    /// An app's answer to one of its client events.
    App(Value),
}

/// What the transport should do after a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Keep reading.
    Continue,
    /// Close with this code (after the queued replies are written).
    Close(CloseCode),
}

/// How one protocol writes answers. The command layer calls it at the moment an answer is due
/// — a `subscribed` answer before any missed publication — and queues the bytes it returns in
/// order with the connection's deliveries. A protocol that answers out of band (a Socket.IO
/// ack callback) sends the answer itself and returns `None`.
pub trait Responder: Send {
    /// Encodes the outcome of the request being handled.
    fn answer(&mut self, outcome: Result<Reply<'_>, Refusal>) -> Option<Bytes>;

    /// Encodes a reply the client did not ask for (a subscription dropped after a token
    /// refresh narrowed its permissions). By default the same as an answer.
    fn unsolicited(&mut self, reply: Reply<'_>) -> Option<Bytes> {
        self.answer(Ok(reply))
    }

    /// Encodes an app's join notice (`initial_data`); `None` if the protocol does not carry
    /// notices, in which case [`wants_notices`](Self::wants_notices) should say so.
    fn notice(&mut self, channel: &ChannelName, notice: &Notice) -> Option<Bytes>;

    /// Whether [`notice`](Self::notice) writes anything, so the command layer can skip reading
    /// the notice (a store read) for protocols that would drop it.
    fn wants_notices(&self) -> bool {
        true
    }
}

/// Answers nothing: for joins the client did not ask for (its personal channels, the channels
/// every Socket.IO socket joins, a silent app join).
#[derive(Debug, Default)]
pub struct Silent;

impl Responder for Silent {
    fn answer(&mut self, _: Result<Reply<'_>, Refusal>) -> Option<Bytes> {
        None
    }

    fn notice(&mut self, _: &ChannelName, _: &Notice) -> Option<Bytes> {
        None
    }

    fn wants_notices(&self) -> bool {
        false
    }
}
