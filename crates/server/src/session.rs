//! One client's protocol session, independent of the socket it arrived on.
//!
//! It owns the connection's identity and subscriptions and turns native protocol messages into
//! hub and broker operations. Every reply goes through the connection's ordered outbound
//! queue, so `subscribed` always precedes the publications it announces.

use std::sync::Arc;

use bytes::Bytes;
use serde_json::Value;
use serde_json::value::RawValue;
use switchboard_core::auth::{AuthError, Identity};
use switchboard_core::channel::ChannelName;
use switchboard_core::codes::{CloseCode, ErrorCode};
use switchboard_core::hub::{ConnectionHandle, Outbound, Unsubscription};
use switchboard_core::protocol::{
    ClientMessage, Envelope, PresenceMember, ServerMessage, encode_error, encode_reply,
    valid_event_name,
};
use switchboard_core::publication::{PublicationData, StreamPosition};

use crate::apps::chat::{LobbyChatDto, clean_message};
use crate::connection::Connection;
use crate::node::Node;

/// Event names only the server may publish; a client `publish` using one is refused, so no
/// client can forge a mission update or a chat line with someone else's name.
pub const RESERVED_EVENTS: &[&str] = &[
    "mission-update",
    "mission-removed",
    "chat",
    "new-message",
    "user-joined",
    "user-typing",
    "user_joined",
    "user_left",
    "payment-status",
    "data_update",
    "alerts",
    "initial_data",
    "socket-id",
];

/// What the transport should do after a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Keep reading.
    Continue,
    /// Close with this code (after the queued replies are written).
    Close(CloseCode),
}

/// A client's session state.
pub struct Session {
    conn: Connection,
}

impl Session {
    /// A session for a new connection with an already verified identity.
    pub fn new(node: Arc<Node>, handle: Arc<ConnectionHandle>, identity: Identity) -> Self {
        Self {
            conn: Connection::new(node, handle, identity),
        }
    }

    /// The connection id.
    pub fn conn_id(&self) -> &str {
        self.conn.handle.id()
    }

    /// Who the client is.
    pub fn identity(&self) -> &Identity {
        &self.conn.identity
    }

    /// Queues a reply.
    pub async fn send(&self, text: String) {
        self.conn
            .handle
            .send(Outbound::Frame(Bytes::from(text)))
            .await;
    }

    /// Queues an error reply.
    pub async fn send_error(&self, code: ErrorCode, message: &str, r#ref: Option<&Value>) {
        self.send(encode_error(code, message, r#ref)).await;
    }

    /// Subscribes to the channels every connection has without asking: `conn:<id>` and, when
    /// authenticated with a `sub`, `user:<sub>`.
    pub async fn join_personal_channels(&mut self) {
        for channel in self.conn.personal_channels() {
            if !self.conn.subscriptions.contains(&channel) {
                self.subscribe_channel(channel, None, None).await;
            }
        }
    }

    /// Handles one decoded message.
    pub async fn handle(&mut self, envelope: Envelope) -> Next {
        let r#ref = envelope.r#ref.as_ref();
        match envelope.message {
            ClientMessage::Ping => {
                self.send(encode_reply(&ServerMessage::Pong, r#ref)).await;
                Next::Continue
            }
            ClientMessage::Auth { token, city_id } => {
                let next = self.authenticate(&token, r#ref).await;
                if let (Next::Continue, Some(city)) = (next, city_id) {
                    self.join_city(&city, r#ref).await;
                }
                next
            }
            ClientMessage::Subscribe { channel, since } => {
                self.subscribe(&channel, since, r#ref).await;
                Next::Continue
            }
            ClientMessage::Unsubscribe { channel } => {
                self.unsubscribe(&channel, r#ref).await;
                Next::Continue
            }
            ClientMessage::Publish {
                channel,
                event,
                data,
            } => {
                self.publish(&channel, &event, data, r#ref).await;
                Next::Continue
            }
            ClientMessage::Chat { message } => {
                self.chat(&message, r#ref).await;
                Next::Continue
            }
            ClientMessage::Presence { channel } => {
                self.presence(&channel, r#ref).await;
                Next::Continue
            }
            ClientMessage::Ack { channel, offset } => {
                self.ack(&channel, offset, r#ref).await;
                Next::Continue
            }
        }
    }

    /// `ack`: marks the user's inbox delivered up to `offset`. Silent on success.
    async fn ack(&mut self, channel: &str, offset: u64, r#ref: Option<&Value>) {
        let Some(user) = self.conn.identity.user.clone() else {
            return self
                .send_error(
                    ErrorCode::Forbidden,
                    "Only your own user channel can be acknowledged",
                    r#ref,
                )
                .await;
        };
        if channel != format!("user:{user}") {
            return self
                .send_error(
                    ErrorCode::Forbidden,
                    "Only your own user channel can be acknowledged",
                    r#ref,
                )
                .await;
        }
        match self.conn.node.ack_inbox(&user, offset).await {
            Ok(n) => tracing::debug!(conn = %self.conn_id(), offset, acked = n, "inbox ack"),
            Err(e) => {
                tracing::warn!(conn = %self.conn_id(), error = %e, "inbox ack failed");
                self.send_error(
                    ErrorCode::BadRequest,
                    "Acknowledgement failed; retry",
                    r#ref,
                )
                .await;
            }
        }
    }

    async fn authenticate(&mut self, token: &str, r#ref: Option<&Value>) -> Next {
        match self.conn.node.identify(Some(token)) {
            Ok(identity) => {
                if self.conn.identity.user.is_some() && identity.user != self.conn.identity.user {
                    self.send_error(
                        ErrorCode::Forbidden,
                        "A connection cannot change user; reconnect instead",
                        r#ref,
                    )
                    .await;
                    return Next::Continue;
                }
                self.conn.set_identity(identity);
                let user = self.conn.identity.user.clone();
                self.send(encode_reply(
                    &ServerMessage::Authenticated {
                        user: user.as_deref(),
                    },
                    r#ref,
                ))
                .await;
                self.drop_forbidden_subscriptions().await;
                self.join_personal_channels().await;
                Next::Continue
            }
            Err(e) => {
                tracing::info!(conn = %self.conn_id(), reason = %e, "auth message rejected");
                self.send(encode_reply(
                    &ServerMessage::AuthError {
                        message: &e.to_string(),
                    },
                    r#ref,
                ))
                .await;
                Next::Close(close_code_for(e))
            }
        }
    }

    /// `auth` with a `cityId`: subscribe to `city:<cityId>` (answering `subscribed`, then
    /// `initial_data`) if the token allows it.
    async fn join_city(&mut self, city: &str, r#ref: Option<&Value>) {
        if !crate::apps::cities::valid_city_id(city) {
            return self
                .send_error(
                    ErrorCode::BadRequest,
                    "cityId must match [a-z0-9-]{1,64}",
                    r#ref,
                )
                .await;
        }
        let channel = format!("city:{city}");
        if let Ok(c) = ChannelName::parse(&channel)
            && self.conn.subscriptions.contains(&c)
        {
            return;
        }
        self.subscribe(&channel, None, r#ref).await;
    }

    /// After a change of identity, leaves channels the new token no longer grants.
    async fn drop_forbidden_subscriptions(&mut self) {
        let lost: Vec<ChannelName> = self
            .conn
            .subscriptions
            .iter()
            .filter(|c| {
                !self
                    .conn
                    .node
                    .policy
                    .can_read(&self.conn.identity, self.conn.handle.id(), c)
            })
            .cloned()
            .collect();
        for channel in lost {
            self.leave(&channel, None).await;
        }
    }

    /// Parses a client-supplied channel name, answering `bad_request` when it is not one.
    async fn channel_arg(&self, name: &str, r#ref: Option<&Value>) -> Option<ChannelName> {
        match ChannelName::parse(name) {
            Ok(c) => Some(c),
            Err(e) => {
                self.send_error(
                    ErrorCode::BadRequest,
                    &format!("Invalid channel: {e}"),
                    r#ref,
                )
                .await;
                None
            }
        }
    }

    /// Parses a channel name and checks that this client may read it, answering
    /// `bad_request` or `forbidden` otherwise.
    async fn readable_channel(&self, name: &str, r#ref: Option<&Value>) -> Option<ChannelName> {
        let channel = self.channel_arg(name, r#ref).await?;
        if self
            .conn
            .node
            .policy
            .can_read(&self.conn.identity, self.conn.handle.id(), &channel)
        {
            return Some(channel);
        }
        let message = if self.conn.identity.is_authenticated() {
            "Your token does not allow this channel"
        } else {
            "Authentication required for this channel"
        };
        self.send_error(ErrorCode::Forbidden, message, r#ref).await;
        None
    }

    async fn subscribe(
        &mut self,
        name: &str,
        since: Option<StreamPosition>,
        r#ref: Option<&Value>,
    ) {
        let Some(channel) = self.readable_channel(name, r#ref).await else {
            return;
        };
        if self.conn.subscriptions.contains(&channel) {
            return self
                .send_error(ErrorCode::BadRequest, "Already subscribed", r#ref)
                .await;
        }
        if self.conn.subscriptions_full() {
            return self
                .send_error(
                    ErrorCode::BadRequest,
                    "Too many subscriptions on this connection",
                    r#ref,
                )
                .await;
        }
        let subscribed = self
            .subscribe_channel(channel.clone(), since, Some(r#ref))
            .await;
        if subscribed && channel.namespace() == "city" {
            // A dashboard starts from the current snapshot. It is read after the subscription is
            // live, so it already includes any update that raced with the subscription.
            match crate::apps::cities::initial_data_frame(&self.conn.node, &channel).await {
                Ok(frame) => self.send(frame).await,
                Err(e) => {
                    tracing::warn!(conn = %self.conn_id(), channel = %channel, error = %e, "initial_data failed")
                }
            }
        }
    }

    /// Registers with the hub, then reads the stream: the gate in the writer merges the
    /// catch-up with live deliveries that arrive meanwhile. `reply` is `None` for implicit
    /// subscriptions (no `subscribed` frame), else the `ref` to echo.
    pub async fn subscribe_channel(
        &mut self,
        channel: ChannelName,
        since: Option<StreamPosition>,
        reply: Option<Option<&Value>>,
    ) -> bool {
        let name = channel.clone();
        self.conn
            .subscribe(channel, since.as_ref(), |recovery| {
                let r#ref = reply?;
                Some(Bytes::from(match recovery {
                    Some(recovery) => encode_reply(
                        &ServerMessage::Subscribed {
                            channel: name.as_str(),
                            offset: recovery.position.offset,
                            epoch: &recovery.position.epoch,
                            recovered: recovery.recovered,
                        },
                        r#ref,
                    ),
                    None => encode_error(
                        ErrorCode::BadRequest,
                        "Subscription temporarily unavailable; retry",
                        r#ref,
                    ),
                }))
            })
            .await
    }

    async fn unsubscribe(&mut self, name: &str, r#ref: Option<&Value>) {
        let Some(channel) = self.channel_arg(name, r#ref).await else {
            return;
        };
        if !self.conn.subscriptions.contains(&channel) {
            return self
                .send_error(ErrorCode::NotFound, "Not subscribed to this channel", r#ref)
                .await;
        }
        self.leave(&channel, Some(r#ref)).await;
    }

    async fn leave(&mut self, channel: &ChannelName, reply: Option<Option<&Value>>) {
        self.conn.leave(channel);
        let reply = encode_reply(
            &ServerMessage::Unsubscribed {
                channel: channel.as_str(),
            },
            reply.flatten(),
        );
        self.conn
            .handle
            .send(Outbound::Unsubscribed(Box::new(Unsubscription {
                channel: channel.clone(),
                reply: Bytes::from(reply),
            })))
            .await;
    }

    async fn publish(
        &mut self,
        name: &str,
        event: &str,
        data: Box<RawValue>,
        r#ref: Option<&Value>,
    ) {
        let Some(channel) = self.channel_arg(name, r#ref).await else {
            return;
        };
        if !valid_event_name(event) {
            return self
                .send_error(
                    ErrorCode::BadRequest,
                    "Invalid event name: 1-64 characters of letters, digits, '_', '-', '.', ':'",
                    r#ref,
                )
                .await;
        }
        let ns = self.conn.node.config.namespace(channel.namespace());
        if !ns.allow_publish
            || !self
                .conn
                .node
                .policy
                .can_read(&self.conn.identity, self.conn.handle.id(), &channel)
        {
            return self
                .send_error(
                    ErrorCode::Forbidden,
                    "Publishing is not allowed on this channel",
                    r#ref,
                )
                .await;
        }
        if RESERVED_EVENTS.contains(&event) {
            return self
                .send_error(
                    ErrorCode::Forbidden,
                    "This event name is reserved for the server",
                    r#ref,
                )
                .await;
        }
        match self
            .conn
            .node
            .publish(&channel, event, PublicationData::Shared(Arc::from(data)))
            .await
        {
            Ok(p) => {
                self.send(encode_reply(
                    &ServerMessage::Published {
                        channel: channel.as_str(),
                        offset: p.offset,
                    },
                    r#ref,
                ))
                .await;
            }
            Err(e) => {
                tracing::warn!(conn = %self.conn_id(), channel = %channel, error = %e, "client publish failed");
                self.send_error(ErrorCode::BadRequest, "Publish failed; retry", r#ref)
                    .await;
            }
        }
    }

    async fn chat(&mut self, raw: &str, r#ref: Option<&Value>) {
        let message = match clean_message(raw) {
            Ok(m) => m,
            Err(e) => {
                return self
                    .send_error(ErrorCode::BadRequest, &e.to_string(), r#ref)
                    .await;
            }
        };
        let sender = self
            .conn
            .identity
            .user
            .clone()
            .unwrap_or_else(|| self.conn_id().to_owned());
        let dto = LobbyChatDto {
            message: &message,
            sender: &sender,
            timestamp: switchboard_store::now_rfc3339(),
        };
        let lobby = ChannelName::parse("lobby").unwrap_or_else(|_| unreachable!());
        let result = match PublicationData::shared(&dto) {
            Ok(data) => self
                .conn
                .node
                .publish(&lobby, "chat", data)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = result {
            tracing::warn!(conn = %self.conn_id(), error = %e, "chat publish failed");
            self.send_error(
                ErrorCode::BadRequest,
                "Message could not be sent; retry",
                r#ref,
            )
            .await;
        }
    }

    async fn presence(&mut self, name: &str, r#ref: Option<&Value>) {
        let Some(channel) = self.readable_channel(name, r#ref).await else {
            return;
        };
        if !self
            .conn
            .node
            .config
            .namespace(channel.namespace())
            .presence
        {
            return self
                .send_error(
                    ErrorCode::NotFound,
                    "Presence is not enabled for this namespace",
                    r#ref,
                )
                .await;
        }
        let members: Vec<PresenceMember> = self
            .conn
            .node
            .hub
            .members(&channel)
            .into_iter()
            .map(|(conn, user)| PresenceMember {
                user: user.map(|u| u.to_string()),
                connection_id: conn.to_string(),
            })
            .collect();
        self.send(encode_reply(
            &ServerMessage::Presence {
                channel: channel.as_str(),
                members: &members,
            },
            r#ref,
        ))
        .await;
    }
}

/// The close code for a refused token.
pub fn close_code_for(e: AuthError) -> CloseCode {
    match e {
        AuthError::Missing => CloseCode::AuthRequired,
        AuthError::Invalid => CloseCode::InvalidToken,
        AuthError::Expired => CloseCode::TokenExpired,
    }
}
