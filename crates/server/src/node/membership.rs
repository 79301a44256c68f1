//! Joining and leaving channels (`impl Node`), the same way on every transport: subscribe
//! through the broker first, so nothing published from then on can be missed, then read what
//! the client missed; leave with presence notices where the namespace wants them.

use std::sync::Arc;

use switchboard_core::broker::{BrokerError, Recovery};
use switchboard_core::channel::ChannelName;
use switchboard_core::hub::{ConnectionHandle, is_wire_reserved};
use switchboard_core::protocol::PresenceMember;
use switchboard_core::publication::{PublicationData, StreamPosition};

use super::error::PublishError;
use super::{Node, PRESENCE_EVENTS};

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

/// How a connection appears in presence sets and notices.
pub fn presence_member(conn: &ConnectionHandle) -> PresenceMember {
    PresenceMember {
        user: conn.user().map(|u| u.to_string()),
        connection_id: conn.id().to_string(),
    }
}

impl Node {
    /// Joins `conn` to `channel`: subscribe through the broker first (so nothing published from
    /// here on can be missed), then read what the client missed since `since` (inbox or
    /// broker), encoded once in the connection's wire format, and where the connection's
    /// stream gate should start. The caller queues `BeginSubscribe` before and
    /// `CompleteSubscribe` with these pieces after. On error the subscription is undone.
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
        if self.keeps_presence(channel) {
            // Presence is a convenience: a member missing from the shared set is logged, the
            // subscription stands.
            if let Err(e) = self
                .cluster
                .presence_add(channel, &presence_member(conn))
                .await
            {
                tracing::warn!(channel = %channel, error = %e, "presence entry not shared");
            }
        }
        if self.announces_join_leave(channel) {
            self.announce(
                channel,
                PRESENCE_EVENTS[0],
                presence_member(conn),
                Some(conn.id()),
            )
            .await;
        }
        let audience = conn.audience();
        // A name no publication may carry never reaches a client, even from history written
        // before it was refused (the gate tolerates the gap in offsets).
        let catch_up = recovery
            .publications
            .iter()
            .filter(|p| !is_wire_reserved(&p.event))
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
        if removed && self.keeps_presence(channel) {
            self.cluster.presence_remove(channel, conn);
        }
        if removed && !self.hub.has_subscribers(channel) {
            self.broker.on_unsubscribe(channel);
        }
        removed
    }

    /// Leaves `channel` like [`unsubscribe`](Self::unsubscribe), and where the namespace has
    /// `join_leave` on tells the remaining members with a transient `user_left`. Never blocks:
    /// the notice is sent from a task of its own, so this can run in `Drop` when a connection
    /// dies.
    pub fn leave(self: &Arc<Self>, channel: &ChannelName, conn: &ConnectionHandle) {
        if !self.unsubscribe(channel, conn.id()) || !self.announces_join_leave(channel) {
            return;
        }
        let member = presence_member(conn);
        let (node, channel) = (Arc::clone(self), channel.clone());
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                node.announce(&channel, PRESENCE_EVENTS[1], member, None)
                    .await;
            });
        }
    }

    /// The members of `channel` on every node of the cluster (SPEC §10): the shared set when
    /// the cluster keeps one (Redis), this node's hub otherwise.
    pub async fn presence(
        &self,
        channel: &ChannelName,
    ) -> Result<Vec<PresenceMember>, BrokerError> {
        match self.cluster.presence(channel).await? {
            Some(members) => Ok(members),
            None => Ok(self.local_presence(channel)),
        }
    }

    /// The members of `channel` connected to this node (what this node answers when the admin
    /// API asks every node).
    pub fn local_presence(&self, channel: &ChannelName) -> Vec<PresenceMember> {
        self.hub
            .members(channel)
            .into_iter()
            .map(|(conn, user)| PresenceMember {
                user: user.map(|u| u.to_string()),
                connection_id: conn.to_string(),
            })
            .collect()
    }

    fn keeps_presence(&self, channel: &ChannelName) -> bool {
        self.config.namespace(channel.namespace()).presence
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
            Err(e) => Err(PublishError::from(e)),
        };
        if let Err(e) = result {
            tracing::warn!(channel = %channel, event, error = %e, "presence notice not sent");
        }
    }
}
