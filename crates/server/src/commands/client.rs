//! A connection's command state — its [`Connection`], how it treats a repeated subscribe, and
//! its rate-limit streak — and the dispatch of one [`Request`].

use std::net::IpAddr;
use std::sync::Arc;

use bytes::Bytes;
use switchboard_core::auth::Identity;
use switchboard_core::channel::ChannelName;
use switchboard_core::codes::CloseCode;
use switchboard_core::hub::{ConnectionHandle, Outbound};
use switchboard_core::refusal::Refusal;

use super::connection::Connection;
use super::request::{Next, Reply, Request, Responder};
use crate::limits::rate::{Decision, client_key};
use crate::node::Node;
use crate::node::metrics::DropReason;

/// What a second `subscribe` to a channel the connection already has gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resubscribe {
    /// Refused with "Already subscribed" (native: the client chose every channel itself).
    Refuse,
    /// Answered with the current position and `recovered: false` (Socket.IO: the socket was
    /// put in `missions` and `lobby` on connect, so a client's own `subscribe` to one of them
    /// is normal and learns where the stream stands, to refetch a snapshot).
    ReportPosition,
}

/// Whether a client message may be handled, by the connection's token bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// Handle it.
    Allowed,
    /// Refuse it with this (the client is over its limit).
    Refused(Refusal),
    /// Close the connection: it kept sending while refused.
    Close(CloseCode),
}

/// One connection's command state.
pub struct Client {
    pub(super) conn: Connection,
    pub(super) resubscribe: Resubscribe,
    peer_ip: IpAddr,
    limited_streak: u32,
}

impl Client {
    /// A client for a new connection with an already verified identity.
    pub fn new(
        node: Arc<Node>,
        handle: Arc<ConnectionHandle>,
        identity: Identity,
        peer_ip: IpAddr,
        resubscribe: Resubscribe,
    ) -> Self {
        Self {
            conn: Connection::new(node, handle, identity),
            resubscribe,
            peer_ip,
            limited_streak: 0,
        }
    }

    /// The connection id.
    pub fn id(&self) -> &str {
        self.conn.id()
    }

    /// Who the client is now.
    pub fn identity(&self) -> &Identity {
        &self.conn.identity
    }

    /// The node it is connected to.
    pub fn node(&self) -> &Arc<Node> {
        &self.conn.node
    }

    /// The channels the connection has without asking (`conn:<id>`, `user:<sub>`).
    pub fn personal_channels(&self) -> Vec<ChannelName> {
        self.conn.personal_channels()
    }

    /// Whether the connection has `channel`.
    pub fn is_subscribed(&self, channel: &ChannelName) -> bool {
        self.conn.subscriptions.contains(channel)
    }

    /// Whether this client may read `channel`.
    pub fn may_read(&self, channel: &ChannelName) -> bool {
        self.conn
            .node
            .can_read(&self.conn.identity, self.conn.id(), channel)
    }

    /// Charges one message to the client's token bucket (shared by every connection of the
    /// same user, or IP when anonymous). A client over its limit is refused; one that sends
    /// half a minute's allowance more in a row without waiting is disconnected (4008).
    pub fn admit(&mut self) -> Admission {
        let key = client_key(self.conn.identity.user.as_deref(), self.peer_ip);
        if let Decision::Limited { .. } = self.conn.node.client_limiter.check(&key) {
            self.conn.node.metrics.dropped(DropReason::RateLimited);
            self.limited_streak += 1;
            let max = (self.conn.node.config.limits.client_messages_per_minute / 2).max(1);
            if self.limited_streak > max {
                tracing::info!(conn = %self.id(), "rate limit exceeded repeatedly");
                return Admission::Close(CloseCode::RateLimited);
            }
            return Admission::Refused(Refusal::rate_limited());
        }
        self.limited_streak = 0;
        Admission::Allowed
    }

    /// Handles one request; every answer goes through `out` and the connection's ordered
    /// queue.
    pub async fn apply(&mut self, request: Request, out: &mut dyn Responder) -> Next {
        match request {
            Request::Ping => self.reply(out, Ok(Reply::Pong)).await,
            Request::Auth { token } => return self.authenticate(&token, out).await,
            Request::Subscribe { channel, since } => self.subscribe(channel, since, out).await,
            Request::Unsubscribe { channel } => self.unsubscribe(channel, out).await,
            Request::Publish {
                channel,
                event,
                data,
            } => self.publish(channel, &event, data, out).await,
            Request::Presence { channel } => self.presence(channel, out).await,
            Request::Ack { channel, offset } => self.ack(&channel, offset, out).await,
            Request::App { event, data } => self.app_event(&event, &data, out).await,
        }
        Next::Continue
    }

    /// Encodes `outcome` and queues whatever the protocol writes in band.
    pub async fn reply(&self, out: &mut dyn Responder, outcome: Result<Reply<'_>, Refusal>) {
        if let Err(refusal) = &outcome {
            self.conn.node.metrics.client_error(refusal.code);
        }
        if let Some(frame) = out.answer(outcome) {
            self.queue(frame).await;
        }
    }

    /// Refuses the request being handled.
    pub async fn refuse(&self, out: &mut dyn Responder, refusal: Refusal) {
        tracing::debug!(conn = %self.id(), code = refusal.code.as_str(), "request refused");
        self.reply(out, Err(refusal)).await;
    }

    /// Queues a frame in order with the connection's deliveries.
    pub async fn queue(&self, frame: Bytes) {
        self.conn.handle.send(Outbound::frame(frame)).await;
    }
}
