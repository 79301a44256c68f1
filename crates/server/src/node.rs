//! The Node: one per process. Owns configuration, store, broker, hub and the shutdown signal;
//! apps and transports reach everything through it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use switchboard_core::auth::{AccessPolicy, AuthError, Identity, JwtVerifier};
use switchboard_core::broker::{Broker, BrokerError, Recovery};
use switchboard_core::channel::ChannelName;
use switchboard_core::hub::{ConnectionHandle, Hub};
use switchboard_core::protocol::PresenceMember;
use switchboard_core::publication::{Publication, PublicationData, StreamPosition};
use switchboard_store::Store;
use tokio::sync::watch;

use crate::config::Config;
use crate::conn_limit::ConnectionLimiter;
use crate::inbox::{self, InboxError};
use crate::rate_limit::RateLimiter;

/// Shared state of one Switchboard process.
pub struct Node {
    /// Validated configuration.
    pub config: Arc<Config>,
    /// Where records live.
    pub store: Arc<dyn Store>,
    /// Offsets, history, cross-node delivery.
    pub broker: Arc<dyn Broker>,
    /// This node's subscriptions.
    pub hub: Arc<Hub>,
    /// Token verification with the pinned algorithm.
    pub verifier: JwtVerifier,
    /// Channel permission rules.
    pub policy: AccessPolicy,
    /// Per-IP connection counting.
    pub connections: ConnectionLimiter,
    /// Token buckets for client messages on every transport.
    pub client_limiter: RateLimiter,
    /// Token buckets for REST writes.
    pub rest_limiter: RateLimiter,
    shutdown: watch::Receiver<bool>,
    publications: AtomicU64,
    inbox_order: tokio::sync::Mutex<()>,
}

/// How a connection appears in presence sets and notices.
fn presence_member(conn: &ConnectionHandle) -> PresenceMember {
    PresenceMember {
        user: conn.user().map(|u| u.to_string()),
        connection_id: conn.id().to_string(),
    }
}

/// What [`Node::join`] read: the stream position and the catch-up for the connection's gate.
#[derive(Debug)]
pub struct Joined {
    /// Position, missed publications, and whether they are exactly what was missed.
    pub recovery: Recovery,
    /// The last offset the client has once `catch_up` is written.
    pub after: u64,
    /// Missed publications, encoded for the connection.
    pub catch_up: Vec<(u64, bytes::Bytes)>,
}

/// Why a publication (or a recovery read) failed; shown to publishers as a loud failure.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The broker failed.
    #[error(transparent)]
    Broker(#[from] BrokerError),
    /// The durable inbox failed.
    #[error(transparent)]
    Inbox(#[from] InboxError),
}

impl Node {
    /// Assembles a node from its parts.
    pub fn new(
        config: Arc<Config>,
        store: Arc<dyn Store>,
        broker: Arc<dyn Broker>,
        hub: Arc<Hub>,
        verifier: JwtVerifier,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        let policy = AccessPolicy {
            public_namespaces: config.auth.public_namespaces.clone(),
        };
        let connections = ConnectionLimiter::new(config.limits.max_connections_per_ip);
        let client_limiter = RateLimiter::per_minute(config.limits.client_messages_per_minute);
        let rest_limiter = RateLimiter::per_minute(config.limits.rest_writes_per_minute);
        Self {
            client_limiter,
            rest_limiter,
            config,
            store,
            broker,
            hub,
            verifier,
            policy,
            connections,
            shutdown,
            publications: AtomicU64::new(0),
            inbox_order: tokio::sync::Mutex::new(()),
        }
    }

    /// Publishes through the broker with the namespace's history settings; publications to a
    /// `user:<sub>` channel go through the durable inbox first.
    pub async fn publish(
        &self,
        channel: &ChannelName,
        event: &str,
        data: PublicationData,
    ) -> Result<Arc<Publication>, PublishError> {
        if let Some(user) = inbox::owner(channel) {
            // One inbox append-and-deliver at a time, so live deliveries of a user's channel
            // leave in offset order (the stream gate drops anything older than what it wrote).
            let _order = self.inbox_order.lock().await;
            let publication =
                Arc::new(inbox::append(self.store.as_ref(), channel, user, event, &data).await?);
            self.broker.deliver(Arc::clone(&publication)).await?;
            self.publications.fetch_add(1, Ordering::Relaxed);
            return Ok(publication);
        }
        let history = self.config.namespace(channel.namespace()).history();
        let publication = self.broker.publish(channel, event, data, history).await?;
        self.publications.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(channel = %channel, event, offset = publication.offset, "published");
        Ok(publication)
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

    /// Joins `conn` to `channel` the same way on every transport: subscribe through the broker
    /// first (so nothing published from here on can be missed), then read what the client
    /// missed since `since` (inbox or broker), encoded once in the connection's wire format,
    /// and where the connection's stream gate should start. The caller queues
    /// `BeginSubscribe` before and `CompleteSubscribe` with these pieces after. On error the
    /// subscription is undone.
    pub async fn join(
        &self,
        channel: &ChannelName,
        conn: &Arc<ConnectionHandle>,
        since: Option<&StreamPosition>,
    ) -> Result<Joined, PublishError> {
        let read = async {
            self.subscribe(channel, conn).await?;
            self.recover(channel, since).await
        }
        .await;
        let recovery = match read {
            Ok(r) => r,
            Err(e) => {
                self.unsubscribe(channel, conn.id());
                return Err(e);
            }
        };
        if self.announces_join_leave(channel) {
            self.announce(
                channel,
                "user_joined",
                presence_member(conn),
                Some(conn.id()),
            )
            .await;
        }
        let audience = conn.audience();
        let catch_up = recovery
            .publications
            .iter()
            .map(|p| (p.offset, conn.format().encode(p, audience)))
            .collect();
        let after = match (since, recovery.publications.first()) {
            (Some(s), _) if recovery.recovered => s.offset,
            // An inbox replays every pending entry even without `since`.
            (None, Some(first)) => first.offset.saturating_sub(1),
            _ => recovery.position.offset,
        };
        Ok(Joined {
            recovery,
            after,
            catch_up,
        })
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
    pub async fn publish_transient(
        &self,
        channel: &ChannelName,
        event: &str,
        data: PublicationData,
        except: Option<&str>,
    ) -> Result<(), BrokerError> {
        self.broker
            .publish_transient(channel, event, data, except)
            .await?;
        tracing::debug!(channel = %channel, event, "published transient");
        Ok(())
    }

    /// Adds `conn` to `channel` on this node's hub and makes sure the broker feeds the channel
    /// here. Every transport subscribes through this (then reads the catch-up), never through
    /// the hub alone, or a cross-node broker would not know to deliver the channel to this node.
    /// On error the hub subscription is undone.
    pub async fn subscribe(
        &self,
        channel: &ChannelName,
        conn: &Arc<ConnectionHandle>,
    ) -> Result<bool, BrokerError> {
        let added = self.hub.subscribe(channel, conn);
        if let Err(e) = self.broker.on_subscribe(channel).await {
            if added {
                self.unsubscribe(channel, conn.id());
            }
            return Err(e);
        }
        Ok(added)
    }

    /// Removes `conn` from `channel` and, when nobody on this node listens any more, tells the
    /// broker to stop feeding the channel here. Never blocks (it runs in `Drop`).
    pub fn unsubscribe(&self, channel: &ChannelName, conn: &str) -> bool {
        let removed = self.hub.unsubscribe(channel, conn);
        if removed && !self.hub.has_subscribers(channel) {
            self.broker.on_unsubscribe(channel);
        }
        removed
    }

    /// Leaves `channel` like [`unsubscribe`](Self::unsubscribe), and where the namespace has
    /// `join_leave` on tells the remaining members with a transient `user_left`. Never blocks: the notice is
    /// sent from a task of its own, so this can run in `Drop` when a connection dies.
    pub fn leave(self: &Arc<Self>, channel: &ChannelName, conn: &ConnectionHandle) {
        if !self.unsubscribe(channel, conn.id()) || !self.announces_join_leave(channel) {
            return;
        }
        let member = presence_member(conn);
        let (node, channel) = (Arc::clone(self), channel.clone());
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                node.announce(&channel, "user_left", member, None).await;
            });
        }
    }

    fn announces_join_leave(&self, channel: &ChannelName) -> bool {
        let ns = self.config.namespace(channel.namespace());
        ns.presence && ns.join_leave
    }

    /// Sends a presence notice (`{user, connectionId}`) to the channel's members but `except`.
    /// A failure only costs the notice, so it is logged, not returned.
    async fn announce(
        &self,
        channel: &ChannelName,
        event: &str,
        member: PresenceMember,
        except: Option<&str>,
    ) {
        let result = match PublicationData::shared(&member) {
            Ok(data) => self.publish_transient(channel, event, data, except).await,
            Err(e) => Err(BrokerError::from(e)),
        };
        if let Err(e) = result {
            tracing::warn!(channel = %channel, event, error = %e, "presence notice not sent");
        }
    }

    /// Verifies an optional token: no token is an anonymous identity.
    pub fn identify(&self, token: Option<&str>) -> Result<Identity, AuthError> {
        match token {
            None => Ok(Identity::anonymous()),
            Some(t) => self.verifier.verify(t).map(Identity::from_claims),
        }
    }

    /// Publications accepted by this node since start.
    pub fn publication_count(&self) -> u64 {
        self.publications.load(Ordering::Relaxed)
    }

    /// Resolves when shutdown begins.
    pub async fn shutting_down(&self) {
        let mut rx = self.shutdown.clone();
        // An error means the sender is gone: the server is ending either way.
        let _ = rx.wait_for(|stop| *stop).await;
    }
}
