//! What the command layer keeps about one connection: who it is, where its frames go,
//! and which channels it joined. The channels are left again — with presence notices — however
//! the connection ends, because leaving happens when this value is dropped.

use std::collections::HashSet;
use std::sync::Arc;

use bytes::Bytes;
use switchboard_core::auth::Identity;
use switchboard_core::broker::Recovery;
use switchboard_core::channel::ChannelName;
use switchboard_core::hub::{Completion, ConnectionHandle, Outbound};
use switchboard_core::publication::StreamPosition;

use crate::node::Node;
use crate::node::membership::Joined;

/// One connection's identity and subscriptions, shared by the native and Socket.IO sessions.
pub struct Connection {
    /// The node it is connected to.
    pub node: Arc<Node>,
    /// Its queue and close signal, as the hub knows it.
    pub handle: Arc<ConnectionHandle>,
    /// Who the client is; changes when a native client re-authenticates.
    pub identity: Identity,
    /// The channels it joined (left on drop).
    pub subscriptions: HashSet<ChannelName>,
    /// Those of `subscriptions` the client asked for; the implicit ones (`conn:<id>`,
    /// `user:<sub>`, Socket.IO's `missions` and `lobby`) are not counted against
    /// `limits.max_subscriptions_per_connection`.
    chosen: HashSet<ChannelName>,
}

impl Connection {
    /// A connection with an already verified identity.
    pub fn new(node: Arc<Node>, handle: Arc<ConnectionHandle>, identity: Identity) -> Self {
        let mut conn = Self {
            node,
            handle,
            identity: Identity::anonymous(),
            subscriptions: HashSet::new(),
            chosen: HashSet::new(),
        };
        conn.set_identity(identity);
        conn
    }

    /// Whether `limits.max_subscriptions_per_connection` leaves no room for another channel
    /// the client chooses; every transport refuses a new subscription in that case. The
    /// channels a connection has without asking do not count.
    pub fn subscriptions_full(&self) -> bool {
        self.chosen.len() >= self.node.config.limits.max_subscriptions_per_connection
    }

    /// Counts `channel`, already joined, as one the client chose.
    pub fn count_as_chosen(&mut self, channel: &ChannelName) {
        if self.subscriptions.contains(channel) {
            self.chosen.insert(channel.clone());
        }
    }

    /// The connection id.
    pub fn id(&self) -> &str {
        self.handle.id()
    }

    /// Replaces the identity and tells the hub which audience and user it now has.
    pub fn set_identity(&mut self, identity: Identity) {
        self.handle.set_audience(identity.audience());
        self.handle.set_user(identity.user.as_deref());
        self.identity = identity;
    }

    /// The channels every connection has without asking: `conn:<id>` and, with a `sub`,
    /// `user:<sub>` (a user id that is not a valid channel suffix has no personal channel).
    pub fn personal_channels(&self) -> Vec<ChannelName> {
        let mut names = vec![format!("conn:{}", self.id())];
        if let Some(user) = &self.identity.user {
            names.push(format!("user:{user}"));
        }
        names
            .iter()
            .filter_map(|n| ChannelName::parse(n).ok())
            .collect()
    }

    /// Joins `channel` through the connection's ordered queue: `BeginSubscribe`, then
    /// [`Node::join`] (subscribe first, then read the catch-up), then `CompleteSubscribe` with
    /// the frame `reply` builds — written before any missed publication — or, when the join
    /// failed, `reply(None)` and a failed completion. Returns whether the channel was joined.
    pub async fn subscribe(
        &mut self,
        channel: ChannelName,
        since: Option<&StreamPosition>,
        reply: impl FnOnce(Option<&Recovery>) -> Option<Bytes>,
    ) -> bool {
        self.handle
            .send(Outbound::begin_subscribe(channel.clone()))
            .await;
        match self.node.join(&channel, &self.handle, since).await {
            Ok(Joined {
                recovery,
                after,
                catch_up,
            }) => {
                let reply = reply(Some(&recovery));
                self.handle
                    .send(Outbound::CompleteSubscribe(Box::new(Completion {
                        channel: channel.clone(),
                        reply,
                        after,
                        epoch: std::sync::Arc::from(recovery.position.epoch.as_str()),
                        catch_up,
                        ok: true,
                    })))
                    .await;
                tracing::debug!(conn = %self.id(), channel = %channel, recovered = recovery.recovered, "subscribed");
                self.subscriptions.insert(channel);
                true
            }
            Err(e) => {
                tracing::warn!(conn = %self.id(), channel = %channel, error = %e, "subscribe failed");
                let reply = reply(None);
                self.handle
                    .send(Outbound::CompleteSubscribe(Box::new(Completion {
                        channel,
                        reply,
                        after: 0,
                        epoch: std::sync::Arc::from(""),
                        catch_up: Vec::new(),
                        ok: false,
                    })))
                    .await;
                false
            }
        }
    }

    /// Leaves `channel` (with a `user_left` notice where enabled). False if it was not joined.
    pub fn leave(&mut self, channel: &ChannelName) -> bool {
        if !self.subscriptions.remove(channel) {
            return false;
        }
        self.chosen.remove(channel);
        self.node.leave(channel, &self.handle);
        true
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        for channel in self.subscriptions.drain() {
            self.node.leave(&channel, &self.handle);
        }
    }
}
