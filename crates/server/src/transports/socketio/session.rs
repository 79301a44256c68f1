//! One Socket.IO socket's session: its identity, its subscriptions, and the handling of its
//! requests, one at a time and in arrival order.
//!
//! socketioxide spawns a task per incoming event, so two events of one socket could be handled
//! out of order (a `chat-message` before the `join-room` sent just before it). The events are
//! therefore queued, in order, at extraction time (see [`Enqueued`](super::Enqueued)), and this
//! session drains that bounded queue. Replies go back as acks when the client asked for one;
//! failures without an ack are emitted as an `error` event through the ordered outbound queue.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use bytes::Bytes;
use serde::Serialize;
use serde_json::{Value, json};
use socketioxide::extract::AckSender;
use switchboard_core::auth::Identity;
use switchboard_core::broker::Recovery;
use switchboard_core::channel::ChannelName;
use switchboard_core::codes::{CloseCode, ErrorCode};
use switchboard_core::hub::{ConnectionHandle, Outbound, Unsubscription};
use switchboard_core::publication::StreamPosition;
use switchboard_core::socketio::encode_event_args;
use tokio::sync::mpsc;

use super::commands::{Command, Refusal, decode};
use crate::apps::chat::{self, RoomError};
use crate::conn_limit::ConnectionPermit;
use crate::connection::Connection;
use crate::node::Node;
use crate::rate_limit::{Decision, client_key};
use crate::transports::expiry::{sleep_until_some, token_deadline};

/// Channels every Socket.IO socket joins on connect (SPEC §4.2), besides its personal ones.
pub const BROADCAST_CHANNELS: [&str; 2] = ["missions", "lobby"];

/// One client event, queued in arrival order.
pub struct Incoming {
    /// Event name.
    pub event: String,
    /// Its first argument (`null` when none).
    pub data: Value,
    /// The ack callback, when the client passed one.
    pub ack: Option<AckSender>,
}

/// The answer to a successful `subscribe`.
#[derive(Debug, Serialize)]
struct SubscribedAck<'a> {
    ok: bool,
    channel: &'a str,
    offset: u64,
    epoch: &'a str,
    recovered: bool,
}

/// A Socket.IO socket's protocol state.
pub struct SioSession {
    conn: Connection,
}

impl SioSession {
    /// A session for an admitted socket.
    pub fn new(node: Arc<Node>, handle: Arc<ConnectionHandle>, identity: Identity) -> Self {
        Self {
            conn: Connection::new(node, handle, identity),
        }
    }

    fn conn_id(&self) -> &str {
        self.conn.handle.id()
    }

    /// Joins the default channels, then handles queued events until the socket goes away.
    /// The permit keeps the socket counted against its IP for exactly as long.
    pub async fn run(
        mut self,
        mut inbox: mpsc::Receiver<Incoming>,
        permit: Arc<ConnectionPermit>,
        peer_ip: IpAddr,
        mut since: HashMap<String, StreamPosition>,
    ) {
        let _permit = permit;
        // The same token bucket as the native protocol: a client over its limit is refused
        // with `rate_limited`; one that keeps going is disconnected (4008).
        let max_limited_streak =
            (self.conn.node.config.limits.client_messages_per_minute / 2).max(1);
        let mut limited_streak = 0u32;
        let mut defaults: Vec<ChannelName> = BROADCAST_CHANNELS
            .iter()
            .filter_map(|c| ChannelName::parse(c).ok())
            .collect();
        defaults.extend(self.conn.personal_channels());
        for channel in defaults {
            if self
                .conn
                .node
                .policy
                .can_read(&self.conn.identity, self.conn.id(), &channel)
            {
                // A position from the handshake resumes the channel; the client learns the
                // outcome from a `subscribed` event written before the missed publications.
                let resume = since.remove(channel.as_str());
                let announce = resume.is_some();
                let name = channel.clone();
                self.subscribe_channel(channel, resume, move |recovery| {
                    let recovery = recovery.filter(|_| announce)?;
                    let body = json!({
                        "channel": name.as_str(),
                        "offset": recovery.position.offset,
                        "epoch": recovery.position.epoch,
                        "recovered": recovery.recovered,
                    });
                    let raw = serde_json::value::to_raw_value(&body).ok()?;
                    Some(Bytes::from(encode_event_args("subscribed", &raw)))
                })
                .await;
            }
        }
        // Handshake tokens cannot be refreshed on an open socket: it ends when its token does.
        let expiry = token_deadline(self.conn.identity.expires_at);
        loop {
            tokio::select! {
                biased;
                _ = self.conn.handle.closed() => break,
                () = sleep_until_some(expiry) => {
                    tracing::info!("token expired; disconnecting");
                    self.conn.handle.close(CloseCode::TokenExpired);
                    break;
                }
                incoming = inbox.recv() => match incoming {
                    Some(incoming) => {
                        let key = client_key(self.conn.identity.user.as_deref(), peer_ip);
                        if let Decision::Limited { .. } = self.conn.node.client_limiter.check(&key) {
                            limited_streak += 1;
                            if limited_streak > max_limited_streak {
                                tracing::info!("rate limit exceeded repeatedly");
                                self.conn.handle.close(CloseCode::RateLimited);
                                break;
                            }
                            let refusal = Refusal {
                                code: ErrorCode::RateLimited,
                                message: "Rate limit exceeded; slow down".into(),
                            };
                            self.refuse(&incoming.event, incoming.ack, refusal).await;
                            continue;
                        }
                        limited_streak = 0;
                        self.handle_incoming(incoming).await;
                    }
                    None => break,
                },
            }
        }
        tracing::debug!("socket.io session ended");
    }

    async fn handle_incoming(&mut self, incoming: Incoming) {
        let Incoming { event, data, ack } = incoming;
        let command = match decode(&event, &data) {
            Ok(c) => c,
            Err(refusal) => return self.refuse(&event, ack, refusal).await,
        };
        let result = match command {
            Command::JoinRoom(room) => self.join_room(room).await,
            Command::LeaveRoom(room) => {
                self.leave(&room).await;
                Ok(json!({"ok": true, "channel": room.as_str()}))
            }
            Command::ChatMessage { room, message } => self.chat_message(&room, &message).await,
            Command::Typing(room) => self.typing(&room).await,
            Command::Subscribe { channel, since } => {
                // The ack must precede the catch-up, so it is sent from inside the subscribe.
                match self.subscribe(channel, since, ack).await {
                    Ok(()) => return,
                    Err((refusal, ack)) => return self.refuse(&event, ack, refusal).await,
                }
            }
            Command::Ack { channel, offset } => self.ack(&channel, offset).await,
            Command::Unsubscribe(channel) => {
                if self.conn.subscriptions.contains(&channel) {
                    self.leave(&channel).await;
                    Ok(json!({"ok": true, "channel": channel.as_str()}))
                } else {
                    Err(Refusal {
                        code: ErrorCode::NotFound,
                        message: "Not subscribed to this channel".into(),
                    })
                }
            }
        };
        match result {
            Ok(answer) => {
                if let Some(ack) = ack {
                    let _ = ack.send(&answer);
                }
            }
            Err(refusal) => self.refuse(&event, ack, refusal).await,
        }
    }

    /// Tells the client a request failed: as the ack when it asked for one, else as an `error`
    /// event `{event, code, message}` in order with its other deliveries.
    async fn refuse(&self, event: &str, ack: Option<AckSender>, refusal: Refusal) {
        tracing::debug!(
            event,
            code = refusal.code.as_str(),
            "socket.io request refused"
        );
        let body = json!({"error": refusal.message, "code": refusal.code.as_str()});
        if let Some(ack) = ack {
            let _ = ack.send(&body);
            return;
        }
        let data =
            json!({"event": event, "code": refusal.code.as_str(), "message": refusal.message});
        if let Ok(raw) = serde_json::value::to_raw_value(&data) {
            let frame = encode_event_args("error", &raw);
            self.conn
                .handle
                .send(Outbound::Frame(Bytes::from(frame)))
                .await;
        }
    }

    fn forbidden(&self) -> Refusal {
        Refusal {
            code: ErrorCode::Forbidden,
            message: if self.conn.identity.is_authenticated() {
                "Your token does not allow this channel".into()
            } else {
                "Authentication required for this channel".into()
            },
        }
    }

    fn may_read(&self, channel: &ChannelName) -> bool {
        self.conn
            .node
            .policy
            .can_read(&self.conn.identity, self.conn.handle.id(), channel)
    }

    fn check_subscription_room(&self) -> Result<(), Refusal> {
        if self.conn.subscriptions_full() {
            return Err(Refusal::bad("Too many subscriptions on this connection"));
        }
        Ok(())
    }

    async fn join_room(&mut self, room: ChannelName) -> Result<Value, Refusal> {
        if !self.may_read(&room) {
            return Err(self.forbidden());
        }
        if !self.conn.subscriptions.contains(&room) {
            self.check_subscription_room()?;
            if !self.subscribe_channel(room.clone(), None, |_| None).await {
                return Err(Refusal::bad("Could not join the room; retry"));
            }
            if let Err(e) = chat::user_joined(&self.conn.node, &room, self.conn.handle.id()).await {
                tracing::warn!(channel = %room, error = %e, "user-joined not delivered");
            }
        }
        Ok(json!({"ok": true, "channel": room.as_str()}))
    }

    async fn chat_message(&mut self, room: &ChannelName, raw: &str) -> Result<Value, Refusal> {
        if !self.may_read(room) {
            return Err(self.forbidden());
        }
        let sender = self
            .conn
            .identity
            .user
            .clone()
            .unwrap_or_else(|| self.conn_id().to_owned());
        match chat::post_room_message(&self.conn.node, room, raw, &sender).await {
            Ok(posted) => Ok(json!({"ok": true, "id": posted.id, "offset": posted.offset})),
            Err(RoomError::Invalid(e)) => Err(Refusal::bad(e.to_string())),
            Err(e @ (RoomError::Broker(_) | RoomError::Publish(_))) => {
                tracing::warn!(channel = %room, error = ?e, "room message not published");
                Err(Refusal::bad(e.to_string()))
            }
        }
    }

    /// `ack`: the socket's own inbox (`user:<sub>`) is delivered up to `offset`.
    async fn ack(&mut self, channel: &ChannelName, offset: u64) -> Result<Value, Refusal> {
        let own = self
            .conn
            .identity
            .user
            .as_deref()
            .map(|u| format!("user:{u}"));
        let Some(user) = self
            .conn
            .identity
            .user
            .clone()
            .filter(|_| own.as_deref() == Some(channel.as_str()))
        else {
            return Err(Refusal {
                code: ErrorCode::Forbidden,
                message: "Only your own user channel can be acknowledged".into(),
            });
        };
        match self.conn.node.ack_inbox(&user, offset).await {
            Ok(_) => Ok(json!({"ok": true, "channel": channel.as_str(), "offset": offset})),
            Err(e) => {
                tracing::warn!(channel = %channel, error = %e, "inbox ack failed");
                Err(Refusal::bad("Acknowledgement failed; retry"))
            }
        }
    }

    async fn typing(&mut self, room: &ChannelName) -> Result<Value, Refusal> {
        if !self.may_read(room) {
            return Err(self.forbidden());
        }
        match chat::user_typing(&self.conn.node, room, self.conn.handle.id()).await {
            Ok(()) => Ok(json!({"ok": true})),
            Err(e) => {
                tracing::warn!(channel = %room, error = %e, "typing not delivered");
                Err(Refusal::bad("Could not send; retry"))
            }
        }
    }

    /// An explicit `subscribe`. On a channel the socket already has (the ones joined on
    /// connect), it answers with the current position and `recovered: false`, which tells the
    /// client to refetch a snapshot rather than trust a replay it did not get.
    async fn subscribe(
        &mut self,
        channel: ChannelName,
        since: Option<StreamPosition>,
        ack: Option<AckSender>,
    ) -> Result<(), (Refusal, Option<AckSender>)> {
        if !self.may_read(&channel) {
            return Err((self.forbidden(), ack));
        }
        if self.conn.subscriptions.contains(&channel) {
            return match self.conn.node.recover(&channel, None).await {
                Ok(r) => {
                    if let Some(ack) = ack {
                        let _ = ack.send(&SubscribedAck {
                            ok: true,
                            channel: channel.as_str(),
                            offset: r.position.offset,
                            epoch: &r.position.epoch,
                            recovered: false,
                        });
                    }
                    Ok(())
                }
                Err(e) => {
                    tracing::warn!(channel = %channel, error = %e, "position unavailable");
                    Err((
                        Refusal::bad("Subscription temporarily unavailable; retry"),
                        ack,
                    ))
                }
            };
        }
        if let Err(r) = self.check_subscription_room() {
            return Err((r, ack));
        }
        let name = channel.clone();
        let ok = self
            .subscribe_channel(channel, since, move |recovery| {
                let ack = ack?;
                let _ = match recovery {
                    Some(recovery) => ack.send(&SubscribedAck {
                        ok: true,
                        channel: name.as_str(),
                        offset: recovery.position.offset,
                        epoch: &recovery.position.epoch,
                        recovered: recovery.recovered,
                    }),
                    None => ack.send(&json!({
                        "error": "Subscription temporarily unavailable; retry",
                        "code": ErrorCode::BadRequest.as_str(),
                    })),
                };
                None
            })
            .await;
        if !ok {
            tracing::debug!("subscribe failed; the client was told");
        }
        Ok(())
    }

    /// Registers with the hub, then reads the stream; `before_catch_up` runs once the position
    /// is known (`None` if it could not be read) and before any missed publication is queued,
    /// so an ack sent from it arrives first. The gate in the writer merges the catch-up with
    /// live deliveries that arrived meanwhile.
    async fn subscribe_channel(
        &mut self,
        channel: ChannelName,
        since: Option<StreamPosition>,
        before_catch_up: impl FnOnce(Option<&Recovery>) -> Option<Bytes>,
    ) -> bool {
        self.conn
            .subscribe(channel, since.as_ref(), before_catch_up)
            .await
    }

    async fn leave(&mut self, channel: &ChannelName) {
        if !self.conn.leave(channel) {
            return;
        }
        // An empty reply: the writer has nothing to emit, the gate forgets the channel.
        self.conn
            .handle
            .send(Outbound::Unsubscribed(Box::new(Unsubscription {
                channel: channel.clone(),
                reply: Bytes::new(),
            })))
            .await;
    }
}
