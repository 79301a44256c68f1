//! The durable per-user inbox behind `user:<sub>` channels (SPEC §2).
//!
//! A publication to a user channel is stored first, with the next per-user offset from the
//! database, then delivered live. It stays pending until the user's client acknowledges it
//! (cumulatively: `ack` of offset N covers everything up to N) or `inbox.ttl_secs` passes. Every
//! new subscription of the user's channel — each connection of that user — starts with all
//! pending entries in order, so a delivery that was not acknowledged is delivered again
//! (at-least-once; the offset lets the client drop duplicates).

use std::sync::Arc;

use serde_json::value::RawValue;
use switchboard_core::broker::{BrokerError, Recovery, new_epoch};
use switchboard_core::channel::ChannelName;
use switchboard_core::publication::{
    Audience, Publication, PublicationData, StreamPosition, now_ms,
};
use switchboard_store::{InboxEntry, Store};

/// Why an inbox operation failed.
#[derive(Debug, thiserror::Error)]
pub enum InboxError {
    #[error(transparent)]
    Store(#[from] switchboard_store::StoreError),
    /// Live delivery failed (the entry is stored and will be delivered on the next connection).
    #[error(transparent)]
    Broker(#[from] BrokerError),
    /// A stored payload is not JSON (cannot happen for entries written by this module).
    #[error("stored inbox payload is not JSON: {0}")]
    Corrupt(#[from] serde_json::Error),
}

/// The user a `user:<sub>` channel belongs to.
pub fn owner(channel: &ChannelName) -> Option<&str> {
    (channel.namespace() == "user")
        .then(|| channel.suffix())
        .flatten()
}

fn publication(channel: &ChannelName, entry: &InboxEntry) -> Result<Publication, InboxError> {
    let raw = RawValue::from_string(entry.data.clone())?;
    Ok(Publication {
        channel: channel.clone(),
        event: Arc::from(entry.event.as_str()),
        offset: entry.offset,
        epoch: Arc::from(entry.epoch.as_str()),
        timestamp_ms: entry.created_at_ms,
        data: PublicationData::Shared(Arc::from(raw)),
    })
}

/// Stores the publication in `user`'s inbox and returns it positioned. The caller delivers it.
/// Inbox payloads are the same for every audience; a per-audience payload stores the agent
/// (narrowest) form.
pub async fn append(
    store: &dyn Store,
    channel: &ChannelName,
    user: &str,
    event: &str,
    data: &PublicationData,
) -> Result<Publication, InboxError> {
    let json = data.for_audience(Audience::Agent).get();
    let entry = store
        .inbox_append(user, event, json, &new_epoch(), now_ms())
        .await?;
    publication(channel, &entry)
}

/// What a new subscriber of `user`'s channel receives: every pending entry (or, with a `since`
/// in the current epoch, the pending entries after it), and the inbox position.
pub async fn recover(
    store: &dyn Store,
    channel: &ChannelName,
    user: &str,
    since: Option<&StreamPosition>,
    ttl_secs: u64,
) -> Result<Recovery, InboxError> {
    let not_before = now_ms().saturating_sub(ttl_secs.saturating_mul(1000));
    let (offset, epoch) = store
        .inbox_position(user)
        .await?
        .unwrap_or_else(|| (0, String::from("inbox")));
    let same_epoch = since.is_some_and(|s| s.epoch == epoch && s.offset <= offset);
    let pending = store.inbox_pending(user, not_before).await?;
    let publications = pending
        .iter()
        .filter(|e| !same_epoch || since.is_some_and(|s| e.offset > s.offset))
        .map(|e| publication(channel, e).map(Arc::new))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Recovery {
        position: StreamPosition { offset, epoch },
        publications,
        // Everything still pending is included: nothing the client has not acknowledged is lost.
        recovered: true,
    })
}
