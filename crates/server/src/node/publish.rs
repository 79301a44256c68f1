//! Publishing and reading streams (`impl Node`): every path that produces a publication — REST
//! handlers, client publish, chat, change capture — goes through [`Node::publish`], so the
//! history settings, the inbox rule and the names no publication may carry are applied in one
//! place: a name a transport or client library reserves ([`is_wire_reserved`]) is refused here,
//! whoever publishes — a client, the server API, an app, change capture.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use switchboard_core::broker::{OnceKey, Recovery};
use switchboard_core::channel::ChannelName;
use switchboard_core::hub::is_wire_reserved;
use switchboard_core::publication::{Publication, PublicationData, StreamPosition};
use switchboard_store::ChangeEvent;

use super::Node;
use super::error::PublishError;
use super::inbox::{self, InboxError};

/// What made a publication, which decides what a repeat of it means.
#[derive(Debug, Clone, Copy)]
pub enum Origin<'a> {
    /// An API write, a client, the demo pipeline: every call is a new publication.
    Direct,
    /// A captured change: two nodes may both publish it (one was slow, the other took its
    /// lease over), and subscribers must get it once. Keyed by the change's id and the event.
    Change(&'a ChangeEvent),
}

impl Node {
    /// [`publish`](Self::publish), or for a captured change at most once across nodes:
    /// `Ok(None)` when another node (or an earlier try) already published it.
    pub async fn publish_from(
        &self,
        origin: Origin<'_>,
        channel: &ChannelName,
        event: &str,
        data: PublicationData,
    ) -> Result<Option<Arc<Publication>>, PublishError> {
        let Origin::Change(change) = origin else {
            return self.publish(channel, event, data).await.map(Some);
        };
        refuse_wire_reserved(event)?;
        if inbox::owner(channel).is_some() {
            // Captured tables publish to app channels only; the inbox numbers its own offsets
            // and has no idempotency key to offer.
            return Err(PublishError::NotCapturable);
        }
        let once = OnceKey {
            key: format!("{}:{event}", change.once_key()),
            window: self.capture_config().once_window(),
        };
        let history = self.config.namespace(channel.namespace()).history();
        let publication = self
            .broker
            .publish_once(channel, event, data, history, &once)
            .await
            .inspect_err(|_| self.metrics.broker_error())?;
        match &publication {
            Some(p) => {
                self.counted(channel);
                tracing::debug!(channel = %channel, event, offset = p.offset, "published a change");
            }
            None => tracing::info!(channel = %channel, event, key = %once.key,
                "a captured change was already published (another node took it over)"),
        }
        Ok(publication)
    }

    /// Publishes through the broker with the namespace's history settings; publications to a
    /// `user:<sub>` channel go through the durable inbox first.
    pub async fn publish(
        &self,
        channel: &ChannelName,
        event: &str,
        data: PublicationData,
    ) -> Result<Arc<Publication>, PublishError> {
        refuse_wire_reserved(event)?;
        if let Some(user) = inbox::owner(channel) {
            // One inbox append-and-deliver at a time, so live deliveries of a user's channel
            // leave in offset order (the stream gate drops anything older than what it wrote).
            let _order = self.inbox_order.lock().await;
            let publication =
                Arc::new(inbox::append(self.store.as_ref(), channel, user, event, &data).await?);
            self.broker
                .deliver(Arc::clone(&publication))
                .await
                .inspect_err(|_| self.metrics.broker_error())?;
            self.counted(channel);
            return Ok(publication);
        }
        let history = self.config.namespace(channel.namespace()).history();
        let publication = self
            .broker
            .publish(channel, event, data, history)
            .await
            .inspect_err(|_| self.metrics.broker_error())?;
        self.counted(channel);
        tracing::debug!(channel = %channel, event, offset = publication.offset, "published");
        Ok(publication)
    }

    fn counted(&self, channel: &ChannelName) {
        self.publications.fetch_add(1, Ordering::Relaxed);
        self.metrics.publication(channel.namespace());
    }

    /// A channel's position and what a subscriber missed since `since`: from the inbox for
    /// `user:` channels, from the broker otherwise.
    pub async fn recover(
        &self,
        channel: &ChannelName,
        since: Option<&StreamPosition>,
    ) -> Result<Recovery, PublishError> {
        match inbox::owner(channel) {
            Some(user) => Ok(inbox::recover(
                self.store.as_ref(),
                channel,
                user,
                since,
                self.config.inbox.ttl_secs,
            )
            .await?),
            None => Ok(self.broker.recover(channel, since).await?),
        }
    }

    /// Acknowledges `user`'s inbox up to `offset`.
    pub async fn ack_inbox(&self, user: &str, offset: u64) -> Result<u64, PublishError> {
        Ok(self
            .store
            .inbox_ack(user, offset)
            .await
            .map_err(InboxError::from)?)
    }

    /// Publishes a live-only notice (typing indicators, "user joined"): not stored, no offset,
    /// skipping the connection `except` when given. See [`Broker::publish_transient`].
    ///
    /// [`Broker::publish_transient`]: switchboard_core::broker::Broker::publish_transient
    pub async fn publish_transient(
        &self,
        channel: &ChannelName,
        event: &str,
        data: PublicationData,
        except: Option<&str>,
    ) -> Result<(), PublishError> {
        refuse_wire_reserved(event)?;
        self.broker
            .publish_transient(channel, event, data, except)
            .await
            .inspect_err(|_| self.metrics.broker_error())?;
        tracing::debug!(channel = %channel, event, "published transient");
        Ok(())
    }
}

/// Refuses an event name no publication may carry (see [`is_wire_reserved`]): delivered, it
/// would disconnect Socket.IO clients, fail `EventSource`s or pass for a protocol message.
pub fn refuse_wire_reserved(event: &str) -> Result<(), PublishError> {
    if is_wire_reserved(event) {
        return Err(PublishError::ReservedEvent);
    }
    Ok(())
}
