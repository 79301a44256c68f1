//! Subscribe, unsubscribe and the joins nobody asked for (`impl Client`).
//!
//! Every join goes through the connection's ordered queue: `BeginSubscribe`, then the node's
//! join (subscribe first, then read the catch-up), then `CompleteSubscribe` carrying the
//! protocol's answer, so `subscribed` always precedes the publications it announces. After a
//! successful announced join, the app owning the channel may add a notice (`initial_data`).

use bytes::Bytes;
use switchboard_core::channel::ChannelName;
use switchboard_core::hub::{Outbound, Unsubscription};
use switchboard_core::publication::StreamPosition;
use switchboard_core::refusal::Refusal;

use super::client::{Client, Resubscribe};
use super::request::{Reply, Responder, Silent};

impl Client {
    /// `subscribe`: checks, then joins with the protocol's answer.
    pub(super) async fn subscribe(
        &mut self,
        channel: ChannelName,
        since: Option<StreamPosition>,
        out: &mut dyn Responder,
    ) {
        if !self.may_read(&channel) {
            let refusal = Refusal::forbidden_channel(self.identity().is_authenticated());
            return self.refuse(out, refusal).await;
        }
        if self.is_subscribed(&channel) {
            return match self.resubscribe {
                Resubscribe::Refuse => self.refuse(out, Refusal::already_subscribed()).await,
                Resubscribe::ReportPosition => self.report_position(&channel, out).await,
            };
        }
        if self.conn.subscriptions_full() {
            return self.refuse(out, Refusal::too_many_subscriptions()).await;
        }
        self.join_chosen(channel, since, out).await;
    }

    /// [`join`](Self::join) for a channel the client asked for (a `subscribe`, an app's
    /// `join-room`): it counts against `limits.max_subscriptions_per_connection`.
    pub(super) async fn join_chosen(
        &mut self,
        channel: ChannelName,
        since: Option<StreamPosition>,
        out: &mut dyn Responder,
    ) -> bool {
        let name = channel.clone();
        let joined = self.join(channel, since, out).await;
        if joined {
            self.conn.count_as_chosen(&name);
        }
        joined
    }

    /// Answers a subscribe to a channel the connection already has with where the stream
    /// stands; `recovered: false` tells the client to refetch rather than trust a replay it
    /// did not get.
    async fn report_position(&self, channel: &ChannelName, out: &mut dyn Responder) {
        let outcome = match self.node().recover(channel, None).await {
            Ok(r) => {
                let reply = Reply::Subscribed {
                    channel,
                    position: &r.position,
                    recovered: false,
                };
                return self.reply(out, Ok(reply)).await;
            }
            Err(e) => {
                tracing::warn!(conn = %self.id(), channel = %channel, error = %e, "position unavailable");
                Err(Refusal::subscription_unavailable())
            }
        };
        self.reply(out, outcome).await;
    }

    /// Joins `channel` (no checks: the caller made them), answering through `out` at the
    /// moment the answer must be written, then any app notice. Returns whether it joined. A
    /// channel joined this way is implicit (the connection's own channels, Socket.IO's
    /// broadcast channels) and not counted against the subscription limit.
    pub async fn join(
        &mut self,
        channel: ChannelName,
        since: Option<StreamPosition>,
        out: &mut dyn Responder,
    ) -> bool {
        let name = channel.clone();
        let joined = self
            .conn
            .subscribe(channel, since.as_ref(), |recovery| match recovery {
                Some(r) => out.answer(Ok(Reply::Subscribed {
                    channel: &name,
                    position: &r.position,
                    recovered: r.recovered,
                })),
                None => out.answer(Err(Refusal::subscription_unavailable())),
            })
            .await;
        if joined && out.wants_notices() {
            self.send_notice(&name, out).await;
        }
        joined
    }

    /// A dashboard starts from the current snapshot: the app that owns the channel is asked
    /// after the subscription is live, so the notice already includes any update that raced
    /// with the join.
    async fn send_notice(&self, channel: &ChannelName, out: &mut dyn Responder) {
        if let Some(notice) = self.node().join_notice(channel).await
            && let Some(frame) = out.notice(channel, &notice)
        {
            self.queue(frame).await;
        }
    }

    /// Joins the channels every connection has without asking: `conn:<id>` and, when
    /// authenticated with a `sub`, `user:<sub>`.
    pub async fn join_personal_channels(&mut self) {
        for channel in self.conn.personal_channels() {
            if !self.is_subscribed(&channel) {
                self.join(channel, None, &mut Silent).await;
            }
        }
    }

    /// `unsubscribe`.
    pub(super) async fn unsubscribe(&mut self, channel: ChannelName, out: &mut dyn Responder) {
        if !self.is_subscribed(&channel) {
            return self.refuse(out, Refusal::not_subscribed()).await;
        }
        let reply = out.answer(Ok(Reply::Unsubscribed { channel: &channel }));
        self.leave(&channel, reply).await;
    }

    /// Leaves `channel`, then queues `reply` (empty: nothing to write) in order, which also
    /// tells the stream gate to forget the channel. False if it was not joined.
    pub async fn leave(&mut self, channel: &ChannelName, reply: Option<Bytes>) -> bool {
        if !self.conn.leave(channel) {
            return false;
        }
        self.conn
            .handle
            .send(Outbound::Unsubscribed(Box::new(Unsubscription {
                channel: channel.clone(),
                reply: reply.unwrap_or_default(),
            })))
            .await;
        true
    }

    /// After a change of identity, leaves the channels the new token no longer grants, telling
    /// the client with an unsolicited `unsubscribed` each.
    pub(super) async fn drop_forbidden_subscriptions(&mut self, out: &mut dyn Responder) {
        let lost: Vec<ChannelName> = self
            .conn
            .subscriptions
            .iter()
            .filter(|c| !self.may_read(c))
            .cloned()
            .collect();
        for channel in lost {
            let reply = out.unsolicited(Reply::Unsubscribed { channel: &channel });
            self.leave(&channel, reply).await;
        }
    }
}
