//! The high layer: a [`Client`] that keeps one native connection alive and its subscriptions
//! whole across reconnects (SPEC §9.2, the Rust counterpart of the JavaScript client, §9.1).
//!
//! One background task owns the [`Connection`](crate::Connection); the [`Client`] and its
//! [`Subscription`]s talk to it over channels, so they are cheap to clone and move between
//! tasks. After a dropped connection the task waits (exponential backoff, full jitter),
//! reconnects with the current token — asking the token provider for a fresh one each time —
//! and resubscribes every channel from its last `{offset, epoch}`. A subscriber sees each
//! publication once, in order, or a [`SubscriptionEvent::Gap`] when the history is gone. A
//! close code that says "do not reconnect" (`switchboard_core::codes::reconnect_policy`) stops
//! the client; 4004 (expired) reconnects only with a token provider.

mod driver;
mod tracker;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::Stream;
use serde_json::Value;
use switchboard_core::channel::ChannelName;
use switchboard_core::publication::StreamPosition;
use tokio::sync::{mpsc, oneshot, watch};

use crate::connection::Connection;
use crate::error::ClientError;
use crate::message::{Delivery, Member};
use driver::{Command, Driver};

/// Ids of subscriptions, unique in the process.
static NEXT_SUBSCRIPTION: AtomicU64 = AtomicU64::new(1);

/// A future giving a fresh token, or why it could not.
pub type TokenFuture = Pin<Box<dyn Future<Output = Result<String, String>> + Send>>;

/// Where tokens come from: called before every connection attempt.
pub type TokenProvider = Arc<dyn Fn() -> TokenFuture + Send + Sync>;

/// A publication on a subscribed channel (SPEC §2).
#[derive(Debug, Clone, PartialEq)]
pub struct Publication {
    /// The channel.
    pub channel: String,
    /// The event name.
    pub event: String,
    /// The payload (the DTO for this client's audience).
    pub data: Value,
    /// Its offset and epoch: pass the last one as `since` to resume elsewhere.
    pub position: StreamPosition,
    /// Server time of the publication in ms since the Unix epoch.
    pub timestamp: Option<u64>,
}

/// What a [`Subscription`] yields.
#[derive(Debug, Clone, PartialEq)]
pub enum SubscriptionEvent {
    /// The server confirmed the subscription (after every connect).
    Subscribed {
        /// The channel's position at the server.
        position: StreamPosition,
        /// Whether the publications missed since the last position follow.
        recovered: bool,
    },
    /// A publication, never one already handed over.
    Publication(Publication),
    /// Recovery failed: publications were lost (another epoch, or out of history). Refetch a
    /// snapshot; the stream continues from `position`.
    Gap {
        /// Where the stream continues.
        position: StreamPosition,
    },
    /// A transient notice on the channel (presence join/leave, `initial_data`): no offset.
    Notice(Delivery),
    /// The server refused the subscription; the stream ends.
    Refused {
        /// The error code (`forbidden`, `bad_request`, …).
        code: String,
        /// The public message.
        message: String,
    },
    /// The server ended the subscription (a refreshed token no longer allows it); the stream
    /// ends.
    Unsubscribed,
    /// The client stopped for good (a do-not-reconnect close, or [`Client::close`]); the
    /// stream ends.
    Stopped {
        /// The close code that stopped it, if the server sent one.
        code: Option<u16>,
    },
}

/// Where the client's connection stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// Waiting to reconnect, or connecting.
    Connecting,
    /// Connected; `connection_id` is the one of `welcome` (its `conn:` channel).
    Connected {
        /// This connection's id.
        connection_id: String,
    },
    /// Stopped for good.
    Stopped {
        /// The close code that stopped it, if the server sent one.
        code: Option<u16>,
    },
}

/// How to connect; see [`Client::builder`].
pub struct ClientBuilder {
    url: String,
    token: Option<String>,
    provider: Option<TokenProvider>,
    min_delay: Duration,
    max_delay: Duration,
}

impl ClientBuilder {
    /// A static token, sent in the URL (`?token=`) on every connect.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// A token provider, asked before every connection attempt (so an expired token, 4004, is
    /// replaced and the client reconnects).
    pub fn token_provider<F, Fut, E>(mut self, provider: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<String, E>> + Send + 'static,
        E: std::fmt::Display,
    {
        self.provider = Some(Arc::new(move || {
            let fut = provider();
            Box::pin(async move { fut.await.map_err(|e| e.to_string()) })
        }));
        self
    }

    /// Reconnect delays: exponential from `min` to `max`, each uniform in `[0, cap]` (default
    /// 500 ms to 20 s, like the JavaScript client).
    pub fn reconnect_delay(mut self, min: Duration, max: Duration) -> Self {
        self.min_delay = min;
        self.max_delay = max;
        self
    }

    /// Opens the first connection and returns once it is up, so a bad URL or a refused token
    /// is an error here rather than a retry loop; later losses are reconnected.
    pub async fn connect(self) -> Result<Client, ClientError> {
        let token = match &self.provider {
            Some(p) => Some(p().await.map_err(ClientError::TokenProvider)?),
            None => self.token.clone(),
        };
        let (conn, session) = Connection::connect(&self.url, token.as_deref()).await?;
        let (commands, rx) = mpsc::unbounded_channel();
        let (state_tx, state) = watch::channel(State::Connected {
            connection_id: session.welcome.connection_id.clone(),
        });
        let driver = Driver::new(self, token, rx, state_tx);
        tokio::spawn(driver.run(conn, session));
        Ok(Client { commands, state })
    }
}

/// A reconnecting client of the native protocol. Clones share one connection.
#[derive(Clone)]
pub struct Client {
    commands: mpsc::UnboundedSender<Command>,
    state: watch::Receiver<State>,
}

impl Client {
    /// A builder for `url`, the server's `/ws` endpoint (`ws://127.0.0.1:3000/ws`).
    pub fn builder(url: impl Into<String>) -> ClientBuilder {
        ClientBuilder {
            url: url.into(),
            token: None,
            provider: None,
            min_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(20),
        }
    }

    /// Connects to `url` with an optional token and the default reconnect delays.
    pub async fn connect(
        url: impl Into<String>,
        token: Option<String>,
    ) -> Result<Client, ClientError> {
        let mut b = Self::builder(url);
        b.token = token;
        b.connect().await
    }

    /// Subscribes to `channel`, resuming after `since` when given; the subscription resumes
    /// by itself after every reconnect. The server's answer comes as the first event.
    pub fn subscribe(
        &self,
        channel: &str,
        since: Option<StreamPosition>,
    ) -> Result<Subscription, ClientError> {
        let channel = ChannelName::parse(channel)?;
        let (tx, events) = mpsc::unbounded_channel();
        let id = NEXT_SUBSCRIPTION.fetch_add(1, Ordering::Relaxed);
        self.send(Command::Subscribe {
            channel: channel.as_str().to_owned(),
            id,
            since,
            events: tx,
        })?;
        Ok(Subscription {
            channel: channel.as_str().to_owned(),
            id,
            events,
            commands: self.commands.clone(),
        })
    }

    /// Publishes on a channel whose namespace allows client publications; the offset it got.
    pub async fn publish(
        &self,
        channel: &str,
        event: &str,
        data: Value,
    ) -> Result<u64, ClientError> {
        let channel = ChannelName::parse(channel)?;
        let (reply, answer) = oneshot::channel();
        self.send(Command::Publish {
            channel: channel.as_str().to_owned(),
            event: event.to_owned(),
            data,
            reply,
        })?;
        answer.await.map_err(|_| ClientError::Stopped)?
    }

    /// Who is on a channel with presence, cluster-wide.
    pub async fn presence(&self, channel: &str) -> Result<Vec<Member>, ClientError> {
        let channel = ChannelName::parse(channel)?;
        let (reply, answer) = oneshot::channel();
        self.send(Command::Presence {
            channel: channel.as_str().to_owned(),
            reply,
        })?;
        answer.await.map_err(|_| ClientError::Stopped)?
    }

    /// Replaces the token in place with an `auth` message (SPEC §4.1), so the connection
    /// outlives the old token's expiry; later reconnects use it too. While disconnected, the
    /// token is kept for the next connect. A refused token ends the connection (4002) and,
    /// as that code says, the client.
    pub async fn refresh_token(&self, token: impl Into<String>) -> Result<(), ClientError> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Auth {
            token: token.into(),
            reply,
        })?;
        answer.await.map_err(|_| ClientError::Stopped)?
    }

    /// Acknowledges `user:` inbox deliveries up to `offset` (SPEC §2, durable inbox).
    pub fn ack(&self, channel: &str, offset: u64) -> Result<(), ClientError> {
        self.send(Command::Ack {
            channel: channel.to_owned(),
            offset,
        })
    }

    /// The connection state now; [`Client::state_changes`] to wait for changes.
    pub fn state(&self) -> State {
        self.state.borrow().clone()
    }

    /// A receiver that sees every state change.
    pub fn state_changes(&self) -> watch::Receiver<State> {
        self.state.clone()
    }

    /// The current connection's id, while connected.
    pub fn connection_id(&self) -> Option<String> {
        match &*self.state.borrow() {
            State::Connected { connection_id } => Some(connection_id.clone()),
            _ => None,
        }
    }

    /// Closes the connection (1000) and stops the client and every subscription.
    pub fn close(&self) {
        let _ = self.commands.send(Command::Close);
    }

    fn send(&self, command: Command) -> Result<(), ClientError> {
        self.commands
            .send(command)
            .map_err(|_| ClientError::Stopped)
    }
}

/// One channel's events, as a `Stream`; dropping it unsubscribes.
pub struct Subscription {
    channel: String,
    /// Tells this subscription from a later one of the same channel, which replaces it.
    id: u64,
    events: mpsc::UnboundedReceiver<SubscriptionEvent>,
    commands: mpsc::UnboundedSender<Command>,
}

impl Subscription {
    /// The channel.
    pub fn channel(&self) -> &str {
        &self.channel
    }

    /// The next event, `None` once the stream ended (refused, unsubscribed, stopped).
    pub async fn next_event(&mut self) -> Option<SubscriptionEvent> {
        self.events.recv().await
    }

    /// The next publication, skipping other events; `None` once the stream ended.
    pub async fn next_publication(&mut self) -> Option<Publication> {
        loop {
            if let SubscriptionEvent::Publication(p) = self.events.recv().await? {
                return Some(p);
            }
        }
    }
}

impl Stream for Subscription {
    type Item = SubscriptionEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.events.poll_recv(cx)
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let _ = self.commands.send(Command::Unsubscribe {
            channel: std::mem::take(&mut self.channel),
            id: self.id,
        });
    }
}
