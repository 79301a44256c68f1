//! The node-local registry of subscriptions and the only place that fans out.
//!
//! Sharded by channel name so subscribes on different channels never contend; each channel's
//! subscriber set has its own lock, held only for non-blocking `try_send`s. A publication is
//! encoded at most once per (wire format, audience) actually present among the receivers, and
//! every receiver gets a clone of the same bytes.
//!
//! Besides stored publications (with an offset, replayable) the hub fans out *transient* ones
//! ([`Hub::deliver_transient`]): live-only notices such as typing indicators, which may skip one
//! connection (the one that caused them) and never enter a stream's offset sequence.
//!
//! The parts, one file each (all re-exported here, so `hub::X` is the one path to use):
//! - `format`: [`WireFormat`], how one publication becomes the bytes of one wire format, and
//!   [`is_wire_reserved`], the event names no wire format may carry.
//! - `outbound`: [`Outbound`] and its payloads ([`Encoded`], [`Completion`],
//!   [`Unsubscription`]), the items of a connection's queue.
//! - `connection`: [`ConnectionHandle`], the hub's side of one connection: its bounded queue,
//!   its audience and user, and how it is asked to close.
//! - `queue`: that bounded queue and [`OutboundReceiver`], its writer's end (our own, not
//!   tokio's channel: it costs an idle connection ~1 KiB less).
//! - `registry`: [`Hub`] and [`HubStats`], the sharded registry and the fan-out, and
//!   [`FanOutObserver`], how metrics see each fan-out once (per publication, not per subscriber).

use std::sync::Arc;

mod connection;
mod format;
mod outbound;
mod queue;
mod registry;
#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests;

pub use connection::{ConnectionHandle, Transport};
pub use format::{WireFormat, is_wire_reserved};
pub use outbound::{Completion, Encoded, Outbound, Unsubscription};
pub use queue::OutboundReceiver;
pub use registry::{FanOut, FanOutObserver, Hub, HubStats};

/// A connection id. An `Arc` because every subscription in the registry and every presence
/// answer holds a copy of it.
pub type ConnId = Arc<str>;
