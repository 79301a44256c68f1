//! How a publication becomes the bytes of one wire format.

use bytes::Bytes;

use crate::protocol::{MESSAGE_TYPES, encode_delivery};
use crate::publication::{Audience, Publication};
use crate::socketio::{encode_event_packet, encode_publication_packet};

/// Whether `event` is a name no publication may carry, whoever publishes it: a native protocol
/// message type ([`MESSAGE_TYPES`]), one of the SSE stream's own events
/// ([`crate::sse::STREAM_EVENTS`]) or a name socket.io-client reserves
/// ([`crate::socketio::RESERVED_EVENTS`]). Delivered, such a publication would disconnect
/// Socket.IO clients, fail `EventSource`s, or pass for a protocol message.
pub fn is_wire_reserved(event: &str) -> bool {
    MESSAGE_TYPES.contains(&event)
        || crate::sse::STREAM_EVENTS.contains(&event)
        || crate::socketio::RESERVED_EVENTS.contains(&event)
}

/// How a connection's frames are encoded; one encoding per format per publication.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireFormat {
    /// The native JSON envelope of SPEC §4.1 (also the `data:` of SSE and long-poll updates).
    Native,
    /// A whole Socket.IO `EVENT` packet of the websocket transport, `42["<event>",<data>,…]`
    /// (SPEC §4.2): a Socket.IO client sees a publication as `emit(event, data)`. Written as
    /// is by Switchboard's websocket transport; socketioxide's sink strips the `42`.
    SocketIo,
}

impl WireFormat {
    /// How many formats there are: the size of the fan-out's per-format encoding cache.
    pub(super) const COUNT: usize = 2;

    /// This format's slot in the fan-out's encoding cache.
    pub(super) fn index(self) -> usize {
        match self {
            Self::Native => 0,
            Self::SocketIo => 1,
        }
    }

    /// Encodes a publication for this format and audience.
    pub fn encode(self, publication: &Publication, audience: Audience) -> Bytes {
        match self {
            Self::Native => Bytes::from(encode_delivery(publication, audience)),
            Self::SocketIo => Bytes::from(encode_publication_packet(
                &publication.event,
                publication.data.for_audience(audience),
                publication.channel.as_str(),
                publication.offset,
                &publication.epoch,
            )),
        }
    }

    /// Encodes a transient publication (a typing indicator, a join notice): as
    /// [`encode`](Self::encode), except that Socket.IO gets no position argument — a transient
    /// notice has no offset of its own, and a client that records positions from that argument
    /// would otherwise resume from it.
    pub fn encode_transient(self, publication: &Publication, audience: Audience) -> Bytes {
        match self {
            Self::Native => self.encode(publication, audience),
            Self::SocketIo => Bytes::from(encode_event_packet(
                &publication.event,
                publication.data.for_audience(audience),
            )),
        }
    }
}
