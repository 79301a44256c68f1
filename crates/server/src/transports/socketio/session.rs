//! One Socket.IO socket's session: decoding its events into command-layer requests, one at a
//! time and in arrival order, and answering them the Socket.IO way.
//!
//! socketioxide spawns a task per incoming event, so two events of one socket could be handled
//! out of order (a `chat-message` before the `join-room` sent just before it). The events are
//! therefore queued, in order, at extraction time (see [`Enqueued`](super::Enqueued)), and this
//! session drains that bounded queue. Switchboard's own websocket transport (`websocket.rs`)
//! reads in order anyway and calls [`SioSession::handle_incoming`] directly. Replies go back as
//! acks when the client asked for one; failures without an ack are emitted as an `error` event
//! through the ordered outbound queue.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use bytes::Bytes;
use serde::Serialize;
use serde_json::{Value, json};
use socketioxide::extract::AckSender;
use switchboard_core::auth::Identity;
use switchboard_core::channel::ChannelName;
use switchboard_core::codes::CloseCode;
use switchboard_core::engineio::encode_ack;
use switchboard_core::hub::ConnectionHandle;
use switchboard_core::publication::StreamPosition;
use switchboard_core::refusal::Refusal;
use switchboard_core::socketio::encode_event_packet;
use tokio::sync::mpsc;

use super::decode::decode;
use crate::commands::client::{Admission, Client, Resubscribe};
use crate::commands::request::{Reply, Responder};
use crate::limits::connections::ConnectionPermit;
use crate::node::{Node, Notice};
use crate::transports::expiry::{sleep_until_some, token_deadline};

/// Channels every Socket.IO socket joins on connect (SPEC §4.2), besides its personal ones.
pub const BROADCAST_CHANNELS: [&str; 2] = ["missions", "lobby"];

/// One client event, queued in arrival order.
pub struct Incoming {
    pub event: String,
    /// Its first argument (`null` when none).
    pub data: Value,
    /// The ack callback, when the client passed one.
    pub ack: Option<Ack>,
}

/// How an event's answer reaches the client, by who serves the socket.
pub enum Ack {
    /// socketioxide's callback (polling, and sockets upgraded from it).
    Sio(AckSender),
    /// Switchboard's websocket transport: a `43<id>[body]` packet through the connection's
    /// ordered outbound queue.
    Packet(u64),
}

impl Ack {
    /// Sends `body` as the answer. False when it did not fit the socket's buffer or queue:
    /// the client does not read what it asked for, and the socket is closing as a slow
    /// consumer (for a packet, [`ConnectionHandle::try_queue`] already closed it).
    pub fn send(self, body: &Value, handle: &ConnectionHandle) -> bool {
        match self {
            Ack::Sio(ack) => ack.send(body).is_ok(),
            Ack::Packet(id) => match serde_json::value::to_raw_value(body) {
                Ok(raw) => handle.try_queue(Bytes::from(encode_ack(id, &raw))),
                Err(_) => true,
            },
        }
    }
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

/// The ack body of a successful reply.
fn ack_body(reply: &Reply<'_>) -> Value {
    match reply {
        Reply::Subscribed {
            channel,
            position,
            recovered,
        } => serde_json::to_value(SubscribedAck {
            ok: true,
            channel: channel.as_str(),
            offset: position.offset,
            epoch: &position.epoch,
            recovered: *recovered,
        })
        .unwrap_or(Value::Null),
        Reply::Unsubscribed { channel } => json!({"ok": true, "channel": channel.as_str()}),
        Reply::Acked { channel, offset } => {
            json!({"ok": true, "channel": channel, "offset": offset})
        }
        Reply::Published { channel, offset } => {
            json!({"ok": true, "channel": channel.as_str(), "offset": offset})
        }
        Reply::Presence { channel, members } => {
            json!({"ok": true, "channel": channel.as_str(), "members": members})
        }
        Reply::App(value) => value.clone(),
        Reply::Pong | Reply::Authenticated { .. } | Reply::AuthRejected { .. } => {
            json!({"ok": true})
        }
    }
}

/// Answers one event: as its ack when the client passed one, else a refusal as an `error`
/// event `{event, code, message}` in order with the socket's other deliveries (a success
/// without an ack needs no answer). An ack that does not fit the socket's buffer ends the
/// socket as a slow consumer: every event is answered, or the socket is disconnected.
struct SioResponder<'a> {
    event: &'a str,
    ack: Option<Ack>,
    handle: &'a ConnectionHandle,
}

impl SioResponder<'_> {
    fn send_ack(&self, ack: Ack, body: &Value) {
        if !ack.send(body, self.handle) {
            tracing::debug!(event = self.event, "ack not delivered: socket buffer full");
            self.handle.close(CloseCode::SlowConsumer);
        }
    }
}

impl Responder for SioResponder<'_> {
    fn answer(&mut self, outcome: Result<Reply<'_>, Refusal>) -> Option<Bytes> {
        match outcome {
            Ok(reply) => {
                if let Some(ack) = self.ack.take() {
                    self.send_ack(ack, &ack_body(&reply));
                }
                None
            }
            Err(refusal) => {
                let code = refusal.code.as_str();
                if let Some(ack) = self.ack.take() {
                    self.send_ack(ack, &json!({"error": refusal.message, "code": code}));
                    return None;
                }
                let data = json!({"event": self.event, "code": code, "message": refusal.message});
                let raw = serde_json::value::to_raw_value(&data).ok()?;
                Some(Bytes::from(encode_event_packet("error", &raw)))
            }
        }
    }

    fn notice(&mut self, _: &ChannelName, _: &Notice) -> Option<Bytes> {
        None
    }

    fn wants_notices(&self) -> bool {
        false
    }
}

/// Answers the joins of the channels a socket gets on connect: silent, except that a channel
/// resumed from the handshake's `auth.since` gets a `subscribed` event written before the
/// publications it missed.
struct ConnectJoin {
    announce: bool,
}

impl Responder for ConnectJoin {
    fn answer(&mut self, outcome: Result<Reply<'_>, Refusal>) -> Option<Bytes> {
        let Ok(Reply::Subscribed {
            channel,
            position,
            recovered,
        }) = outcome
        else {
            return None;
        };
        if !self.announce {
            return None;
        }
        let body = json!({
            "channel": channel.as_str(),
            "offset": position.offset,
            "epoch": position.epoch,
            "recovered": recovered,
        });
        let raw = serde_json::value::to_raw_value(&body).ok()?;
        Some(Bytes::from(encode_event_packet("subscribed", &raw)))
    }

    fn notice(&mut self, _: &ChannelName, _: &Notice) -> Option<Bytes> {
        None
    }

    fn wants_notices(&self) -> bool {
        false
    }
}

/// A Socket.IO socket's protocol state.
pub struct SioSession {
    client: Client,
}

impl SioSession {
    /// A session for an admitted socket.
    pub fn new(
        node: Arc<Node>,
        handle: Arc<ConnectionHandle>,
        identity: Identity,
        peer_ip: IpAddr,
    ) -> Self {
        Self {
            client: Client::new(node, handle, identity, peer_ip, Resubscribe::ReportPosition),
        }
    }

    /// Joins the default channels, then handles queued events until the socket goes away.
    /// The permit keeps the socket counted against its IP for exactly as long.
    pub async fn run(
        mut self,
        mut inbox: mpsc::Receiver<Incoming>,
        handle: Arc<ConnectionHandle>,
        permit: Option<Arc<ConnectionPermit>>,
        since: HashMap<String, StreamPosition>,
    ) {
        let _permit = permit;
        let session = self.client.node().sessions.open(&handle);
        self.join_defaults(since).await;
        // Handshake tokens cannot be refreshed on an open socket: it ends when its token does.
        let expiry = self.expiry();
        loop {
            tokio::select! {
                biased;
                _ = handle.closed() => break,
                () = sleep_until_some(expiry) => {
                    tracing::info!("token expired; disconnecting");
                    handle.close(CloseCode::TokenExpired);
                    break;
                }
                incoming = inbox.recv() => match incoming {
                    Some(incoming) => {
                        if !self.handle_incoming(incoming, &handle).await {
                            break;
                        }
                    }
                    None => break,
                },
            }
        }
        tracing::info!(
            transport = "socketio",
            user = self.client.identity().user.as_deref().unwrap_or("-"),
            code = handle.close_reason().unwrap_or(CloseCode::Normal).code(),
            duration_ms = session.age().as_millis() as u64,
            "connection closed"
        );
    }

    /// Joins the channels every socket gets on connect (SPEC §4.2: the broadcast channels and
    /// the personal ones), resuming those with a position in the handshake's `auth.since`.
    pub async fn join_defaults(&mut self, mut since: HashMap<String, StreamPosition>) {
        let mut defaults: Vec<ChannelName> = BROADCAST_CHANNELS
            .iter()
            .filter_map(|c| ChannelName::parse(c).ok())
            .collect();
        defaults.extend(self.client.personal_channels());
        for channel in defaults {
            if self.client.may_read(&channel) {
                // A position from the handshake resumes the channel; the client learns the
                // outcome from a `subscribed` event written before the missed publications.
                let resume = since.remove(channel.as_str());
                let mut out = ConnectJoin {
                    announce: resume.is_some(),
                };
                self.client.join(channel, resume, &mut out).await;
            }
        }
    }

    /// When the handshake token expires (it cannot be refreshed on an open socket).
    pub fn expiry(&self) -> Option<tokio::time::Instant> {
        token_deadline(self.client.identity().expires_at)
    }

    /// The socket's user, for the log lines.
    pub fn user(&self) -> Option<&str> {
        self.client.identity().user.as_deref()
    }

    /// Handles one event; false when the socket must end.
    pub async fn handle_incoming(&mut self, incoming: Incoming, handle: &ConnectionHandle) -> bool {
        let Incoming { event, data, ack } = incoming;
        let mut out = SioResponder {
            event: &event,
            ack,
            handle,
        };
        match self.client.admit() {
            Admission::Allowed => {}
            Admission::Close(code) => {
                handle.close(code);
                return false;
            }
            Admission::Refused(refusal) => {
                self.client.refuse(&mut out, refusal).await;
                return true;
            }
        }
        let node = Arc::clone(self.client.node());
        let decoded = decode(&event, &data, |e| node.apps.handles(e));
        match decoded {
            Ok(command) => {
                self.client
                    .apply(command.into_request(data), &mut out)
                    .await;
            }
            Err(refusal) => self.client.refuse(&mut out, refusal).await,
        }
        true
    }
}
