//! The Broker: the one path between publishers and hubs.
//!
//! It assigns each publication its offset and epoch, keeps the channel's history, and delivers
//! to every node's hub that has subscribers. `MemoryBroker` is the single-process
//! implementation and the test double; a Redis broker fills the same trait to scale out.
//!
//! - this file: the [`Broker`] trait and what it speaks in ([`HistoryPolicy`], [`Recovery`],
//!   [`BrokerError`], [`new_epoch`]).
//! - `memory`: [`MemoryBroker`], history in this process, delivery to this node's hub.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rand::Rng;

use crate::channel::ChannelName;
use crate::publication::{Publication, PublicationData, StreamPosition};

mod memory;
#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests;

pub use memory::MemoryBroker;

/// How much history a channel keeps (per namespace, from configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryPolicy {
    /// Publications kept; 0 keeps none (offsets and epochs are still tracked).
    pub size: usize,
    /// How long a publication stays recoverable.
    pub ttl: Duration,
}

/// Why a broker operation failed. Publishers see this as a loud failure, never a silent loss.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// The broker's backing service is unreachable.
    #[error("broker unavailable: {0}")]
    Unavailable(String),
    /// The payload could not be encoded.
    #[error("could not encode publication: {0}")]
    Encode(#[from] serde_json::Error),
}

/// The outcome of reading a channel's stream for a subscriber.
#[derive(Debug, Clone)]
pub struct Recovery {
    /// The channel's current position.
    pub position: StreamPosition,
    /// Publications after the client's `since`, in order (empty without `since`).
    pub publications: Vec<Arc<Publication>>,
    /// Whether `publications` is exactly what the client missed.
    pub recovered: bool,
}

/// Makes a publication idempotent: the broker publishes at most one publication per `key` on a
/// channel within `window`, atomically with assigning its offset.
///
/// Change capture needs this: a node whose lease on a captured change ran out (it was paused,
/// or its database link was slow) may still publish it after another node took the change over
/// and published it too. Checking the lease before publishing cannot close that race, because
/// the check and the publish are two steps; the broker, which assigns the offset, can.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnceKey {
    /// Unique per publication that must not repeat (change capture: the change's id and the
    /// event name).
    pub key: String,
    /// How long the key is remembered; a repeat after that is published again.
    pub window: Duration,
}

/// Publishes, remembers, and delivers publications.
#[async_trait]
pub trait Broker: Send + Sync + 'static {
    /// Assigns the next offset on `channel`, appends to history, and delivers to every hub with
    /// subscribers. Returns the publication as delivered.
    async fn publish(
        &self,
        channel: &ChannelName,
        event: &str,
        data: PublicationData,
        history: HistoryPolicy,
    ) -> Result<Arc<Publication>, BrokerError>;

    /// [`publish`](Self::publish), unless a publication with the same [`OnceKey`] was made on
    /// `channel` within its window: then nothing is published and the answer is `None`.
    async fn publish_once(
        &self,
        channel: &ChannelName,
        event: &str,
        data: PublicationData,
        history: HistoryPolicy,
        once: &OnceKey,
    ) -> Result<Option<Arc<Publication>>, BrokerError>;

    /// Delivers a publication whose offset and epoch were assigned elsewhere (the durable user
    /// inbox sequences in the database) to every node's hub, without touching this broker's
    /// offsets or history.
    async fn deliver(&self, publication: Arc<Publication>) -> Result<(), BrokerError>;

    /// Delivers a transient publication: to current subscribers only, except the connection
    /// `except` (the one that caused it, for "to the others" notices such as typing
    /// indicators). It takes no offset and is never stored, so it cannot be recovered and does
    /// not open a gap in the channel's history; it carries the channel's current position.
    async fn publish_transient(
        &self,
        channel: &ChannelName,
        event: &str,
        data: PublicationData,
        except: Option<&str>,
    ) -> Result<(), BrokerError>;

    /// The channel's position and, when `since` is given, what was published after it.
    async fn recover(
        &self,
        channel: &ChannelName,
        since: Option<&StreamPosition>,
    ) -> Result<Recovery, BrokerError>;

    /// Whether the broker can currently publish (for `/readyz`).
    async fn is_ready(&self) -> bool;

    /// Called after this node's hub gained a subscriber on `channel`, and before the
    /// subscriber's catch-up is read: when it returns `Ok`, every publication on `channel`
    /// from then on reaches this node's hub. A broker that delivers across nodes subscribes to
    /// the channel's feed here; the in-memory broker has nothing to do.
    async fn on_subscribe(&self, _channel: &ChannelName) -> Result<(), BrokerError> {
        Ok(())
    }

    /// Called after this node's hub lost its last subscriber on `channel`, so a cross-node
    /// broker can stop receiving traffic nobody here listens to. Must not block: it runs in
    /// connection teardown (including `Drop`).
    fn on_unsubscribe(&self, _channel: &ChannelName) {}
}

/// A new random epoch: short, URL-safe, different after every history loss.
pub fn new_epoch() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..8)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}
