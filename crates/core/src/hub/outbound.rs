//! The items of a connection's bounded outbound queue, from the hub and the session to the
//! connection's writer task.

use std::sync::Arc;

use bytes::Bytes;

use crate::channel::ChannelName;
#[cfg(doc)]
use crate::hub::Hub;

/// What goes through a connection's bounded outbound queue, in order, to its writer task.
///
/// Kept to 16 bytes (a pointer and a tag): each queued item is a slot of this size (tokio's
/// channel, before our own queue, allocated 32 of them for every idle connection: 1.3 KiB at 40
/// bytes, in dhat). Publications are one shared `Arc` (see [`Encoded`]); everything else is rare
/// next to them and boxed: replies are allocated once more.
#[derive(Debug)]
pub enum Outbound {
    /// A reply or notice, written as is (see [`Outbound::frame`]).
    Frame(Box<Bytes>),
    /// A publication, pre-encoded, with its position so the writer can drop duplicates.
    Delivery(Arc<Encoded>),
    /// A subscription is being set up: hold live deliveries for the channel until
    /// [`Outbound::CompleteSubscribe`] arrives.
    /// Holds the channel whose live deliveries the writer holds back (see
    /// [`Outbound::begin_subscribe`]).
    BeginSubscribe(Box<ChannelName>),
    /// Catch-up is known: write `reply`, then `catch_up`, then held deliveries after `after`.
    CompleteSubscribe(Box<Completion>),
    /// A transient publication (no offset of its own, not in history): written only while the
    /// channel is live for this connection, dropped while its subscription is being set up or
    /// after it ended. See [`Hub::deliver_transient`]. Its `offset` is not a position.
    Transient(Arc<Encoded>),
    /// The client left the channel: forget its stream state, then write `reply`.
    Unsubscribed(Box<Unsubscription>),
}

impl Outbound {
    /// A reply or notice to write as is.
    pub fn frame(bytes: impl Into<Bytes>) -> Self {
        Self::Frame(Box::new(bytes.into()))
    }

    /// The start of a subscription's setup on `channel`.
    pub fn begin_subscribe(channel: ChannelName) -> Self {
        Self::BeginSubscribe(Box::new(channel))
    }
}

/// A publication encoded for one wire format and audience, shared by every subscriber that
/// receives exactly these bytes.
#[derive(Debug)]
pub struct Encoded {
    /// The channel it was published on: the writer's gate keeps one position per channel.
    pub channel: ChannelName,
    /// Its offset in the channel, by which the writer drops duplicates of the catch-up.
    pub offset: u64,
    /// The epoch of that offset: a delivery in another epoch starts the stream anew (the
    /// broker lost its history and restarted its offsets), it is no duplicate.
    pub epoch: Arc<str>,
    /// The bytes to write, shared by every receiver of the same (format, audience).
    pub frame: Bytes,
}

/// The end of a subscription's setup (see [`Outbound::CompleteSubscribe`]).
#[derive(Debug)]
pub struct Completion {
    /// The channel whose setup ends (see [`Outbound::BeginSubscribe`]).
    pub channel: ChannelName,
    /// The `subscribed` reply (or an error reply if the subscription failed); `None` for
    /// implicit subscriptions the client did not ask for.
    pub reply: Option<Bytes>,
    /// The last offset the client will have seen once `catch_up` is written.
    pub after: u64,
    /// The epoch of `after` and of the catch-up.
    pub epoch: Arc<str>,
    /// Missed publications, in order, pre-encoded for this connection.
    pub catch_up: Vec<(u64, Bytes)>,
    /// False when the subscription failed and held deliveries must be discarded.
    pub ok: bool,
}

/// The client left a channel (see [`Outbound::Unsubscribed`]).
#[derive(Debug)]
pub struct Unsubscription {
    /// The channel left: the writer forgets its position and drops later deliveries on it.
    pub channel: ChannelName,
    /// The `unsubscribed` reply, written after the channel is forgotten; empty when the
    /// protocol has none (Socket.IO).
    pub reply: Bytes,
}
