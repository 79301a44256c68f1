//! Client publish, presence and inbox acks (`impl Client`).

use std::sync::Arc;

use serde_json::value::RawValue;
use switchboard_core::auth::Identity;
use switchboard_core::channel::ChannelName;
use switchboard_core::protocol::valid_event_name;
use switchboard_core::publication::PublicationData;
use switchboard_core::refusal::Refusal;

use super::client::Client;
use super::request::{Reply, Responder};
use crate::node::Node;

/// Why a client may not publish `event` on `channel`, if it may not: the one rule for a client
/// publication, shared by the WebSocket `publish` message and `POST /api/client/publish` (the
/// SSE and long-poll clients' way to publish), so both transports allow exactly the same.
/// `conn` is the connection id (empty for an HTTP caller, which has no `conn:` channel).
pub fn publish_refusal(
    node: &Node,
    identity: &Identity,
    conn: &str,
    channel: &ChannelName,
    event: &str,
) -> Option<Refusal> {
    if !valid_event_name(event) {
        return Some(Refusal::invalid_event_name());
    }
    if !node.config.namespace(channel.namespace()).allow_publish
        || !node.can_read(identity, conn, channel)
    {
        return Some(Refusal::publish_not_allowed());
    }
    if node.apps.is_reserved(event) {
        return Some(Refusal::reserved_event());
    }
    None
}

/// Why a client may not list `channel`'s presence, if it may not (shared with
/// `GET /api/client/presence/{channel}` like [`publish_refusal`]).
pub fn presence_refusal(
    node: &Node,
    identity: &Identity,
    conn: &str,
    channel: &ChannelName,
) -> Option<Refusal> {
    if !node.can_read(identity, conn, channel) {
        return Some(Refusal::forbidden_channel(identity.is_authenticated()));
    }
    if !node.config.namespace(channel.namespace()).presence {
        return Some(Refusal::presence_disabled());
    }
    None
}

impl Client {
    /// `publish`: a valid, unreserved event on a readable channel whose namespace allows
    /// client publications.
    pub(super) async fn publish(
        &mut self,
        channel: ChannelName,
        event: &str,
        data: Box<RawValue>,
        out: &mut dyn Responder,
    ) {
        let node = Arc::clone(self.node());
        if let Some(refusal) = publish_refusal(&node, self.identity(), self.id(), &channel, event) {
            return self.refuse(out, refusal).await;
        }
        let data = PublicationData::Shared(Arc::from(data));
        let outcome = match node.publish(&channel, event, data).await {
            Ok(p) => Ok(p.offset),
            Err(e) => {
                tracing::warn!(conn = %self.id(), channel = %channel, error = %e, "client publish failed");
                Err(Refusal::publish_failed())
            }
        };
        let outcome = outcome.map(|offset| Reply::Published {
            channel: &channel,
            offset,
        });
        self.reply(out, outcome).await;
    }

    /// `presence`: the members of a readable channel whose namespace keeps presence.
    pub(super) async fn presence(&mut self, channel: ChannelName, out: &mut dyn Responder) {
        if let Some(refusal) = presence_refusal(self.node(), self.identity(), self.id(), &channel) {
            return self.refuse(out, refusal).await;
        }
        // A Redis outage leaves this node's own members: presence is informational, and the
        // client's request is still answered (the outage is logged and shows in /readyz).
        let members = match self.node().presence(&channel).await {
            Ok(members) => members,
            Err(e) => {
                tracing::warn!(channel = %channel, error = %e, "shared presence unreadable; answering with this node's members");
                self.node().local_presence(&channel)
            }
        };
        let reply = Reply::Presence {
            channel: &channel,
            members: &members,
        };
        self.reply(out, Ok(reply)).await;
    }

    /// `ack`: the client's own inbox (`user:<sub>`) is delivered up to `offset`.
    pub(super) async fn ack(&mut self, channel: &str, offset: u64, out: &mut dyn Responder) {
        let user = self
            .identity()
            .user
            .clone()
            .filter(|u| channel.strip_prefix("user:") == Some(u.as_str()));
        let Some(user) = user else {
            return self.refuse(out, Refusal::ack_not_own_channel()).await;
        };
        let outcome = match self.node().ack_inbox(&user, offset).await {
            Ok(n) => {
                tracing::debug!(conn = %self.id(), offset, acked = n, "inbox ack");
                Ok(Reply::Acked { channel, offset })
            }
            Err(e) => {
                tracing::warn!(conn = %self.id(), error = %e, "inbox ack failed");
                Err(Refusal::ack_failed())
            }
        };
        self.reply(out, outcome).await;
    }
}
