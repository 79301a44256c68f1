//! The task behind a [`Client`](super::Client): owns the connection, answers the handles'
//! commands, routes frames to subscriptions, and reconnects by the close-code rule.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::Value;
use switchboard_core::codes::{Reconnect, reconnect_policy};
use switchboard_core::publication::StreamPosition;
use tokio::sync::{mpsc, oneshot, watch};

use super::tracker::Tracker;
use super::{ClientBuilder, State, SubscriptionEvent, TokenProvider};
use crate::backoff::Backoff;
use crate::connection::{Connection, Session};
use crate::error::ClientError;
use crate::message::{ClientMessage, Member, ServerFrame, ServerMessage, raw_json};

/// What a handle asks the task to do.
pub(crate) enum Command {
    Subscribe {
        channel: String,
        id: u64,
        since: Option<StreamPosition>,
        events: mpsc::UnboundedSender<SubscriptionEvent>,
    },
    Unsubscribe {
        channel: String,
        id: u64,
    },
    Publish {
        channel: String,
        event: String,
        data: Value,
        reply: oneshot::Sender<Result<u64, ClientError>>,
    },
    Presence {
        channel: String,
        reply: oneshot::Sender<Result<Vec<Member>, ClientError>>,
    },
    Auth {
        token: String,
        reply: oneshot::Sender<Result<(), ClientError>>,
    },
    Ack {
        channel: String,
        offset: u64,
    },
    Close,
}

/// A request waiting for the answer with its `ref`.
enum Pending {
    Subscribe(String),
    Publish(oneshot::Sender<Result<u64, ClientError>>),
    Presence(oneshot::Sender<Result<Vec<Member>, ClientError>>),
    Auth(oneshot::Sender<Result<(), ClientError>>),
}

struct Sub {
    id: u64,
    tracker: Tracker,
    events: mpsc::UnboundedSender<SubscriptionEvent>,
}

/// Why a connection ended.
enum End {
    /// The server closed with this code, or the connection was lost (`None`).
    Lost(Option<u16>),
    /// The caller closed the client, or dropped every handle.
    Stopped,
}

pub(crate) struct Driver {
    url: String,
    token: Option<String>,
    provider: Option<TokenProvider>,
    backoff: Backoff,
    commands: mpsc::UnboundedReceiver<Command>,
    state: watch::Sender<State>,
    subs: HashMap<String, Sub>,
    pending: HashMap<u64, Pending>,
    next_ref: u64,
}

impl Driver {
    pub(crate) fn new(
        b: ClientBuilder,
        token: Option<String>,
        commands: mpsc::UnboundedReceiver<Command>,
        state: watch::Sender<State>,
    ) -> Self {
        Self {
            url: b.url,
            token,
            provider: b.provider,
            backoff: Backoff::new(b.min_delay, b.max_delay),
            commands,
            state,
            subs: HashMap::new(),
            pending: HashMap::new(),
            next_ref: 1,
        }
    }

    /// Serves `conn`, then reconnects until a close says not to or the client is closed.
    pub(crate) async fn run(mut self, conn: Connection, session: Session) {
        let mut end = self.serve(conn, session).await;
        loop {
            let code = match end {
                End::Stopped => return self.stop(None),
                End::Lost(code) => code,
            };
            match code.map_or(Reconnect::Yes, reconnect_policy) {
                Reconnect::No => return self.stop(code),
                Reconnect::AfterNewToken if self.provider.is_none() => return self.stop(code),
                Reconnect::Yes | Reconnect::AfterNewToken => {}
            }
            let _ = self.state.send(State::Connecting);
            end = match self.reconnect().await {
                Ok((conn, session)) => self.serve(conn, session).await,
                Err(end) => end,
            };
        }
    }

    /// Waits the next backoff delay (handling commands meanwhile), then one connect attempt.
    async fn reconnect(&mut self) -> Result<(Connection, Session), End> {
        let delay = tokio::time::sleep(self.backoff.next_delay());
        tokio::pin!(delay);
        loop {
            tokio::select! {
                _ = &mut delay => break,
                cmd = self.commands.recv() => match cmd {
                    None | Some(Command::Close) => return Err(End::Stopped),
                    Some(c) => self.offline(c),
                },
            }
        }
        if let Some(p) = &self.provider {
            match p().await {
                Ok(t) => self.token = Some(t),
                Err(_) => return Err(End::Lost(None)),
            }
        }
        match Connection::connect(&self.url, self.token.as_deref()).await {
            Ok(ok) => Ok(ok),
            Err(e) => Err(End::Lost(e.close_code())),
        }
    }

    /// A command while there is no connection: subscriptions wait for the next one, requests
    /// fail (their answer could not come), a new token is kept.
    fn offline(&mut self, command: Command) {
        match command {
            Command::Subscribe { .. } | Command::Unsubscribe { .. } | Command::Close => {
                let _ = self.bookkeep(command);
            }
            Command::Publish { reply, .. } => {
                let _ = reply.send(Err(ClientError::Disconnected));
            }
            Command::Presence { reply, .. } => {
                let _ = reply.send(Err(ClientError::Disconnected));
            }
            Command::Auth { token, reply } => {
                self.token = Some(token);
                let _ = reply.send(Ok(()));
            }
            Command::Ack { .. } => {}
        }
    }

    /// Registers or removes a subscription; returns what to send for it when connected.
    fn bookkeep(&mut self, command: Command) -> Option<ClientMessage> {
        match command {
            Command::Subscribe {
                channel,
                id,
                since,
                events,
            } => {
                let tracker = Tracker::new(since.clone());
                self.subs.insert(
                    channel.clone(),
                    Sub {
                        id,
                        tracker,
                        events,
                    },
                );
                Some(ClientMessage::Subscribe { channel, since })
            }
            Command::Unsubscribe { channel, id } => {
                let mine = self.subs.get(&channel).is_some_and(|s| s.id == id);
                mine.then(|| {
                    self.subs.remove(&channel);
                    ClientMessage::Unsubscribe { channel }
                })
            }
            _ => None,
        }
    }

    fn take_ref(&mut self, pending: Pending) -> u64 {
        let r = self.next_ref;
        self.next_ref += 1;
        self.pending.insert(r, pending);
        r
    }

    /// One connection's life: resubscribe everything, then frames and commands until it ends.
    async fn serve(&mut self, mut conn: Connection, session: Session) -> End {
        self.backoff.reset();
        let _ = self.state.send(State::Connected {
            connection_id: session.welcome.connection_id.clone(),
        });
        let resubscribe: Vec<ClientMessage> = self
            .subs
            .iter()
            .map(|(channel, sub)| ClientMessage::Subscribe {
                channel: channel.clone(),
                since: sub.tracker.since(),
            })
            .collect();
        for message in resubscribe {
            if let Some(end) = self.send(&mut conn, message).await {
                return self.lost(end);
            }
        }
        // The server pings every `heartbeat` ms: twice that without any frame means the
        // connection is dead even if TCP has not noticed.
        let silence = Duration::from_millis(session.welcome.heartbeat_ms.max(1000))
            .saturating_mul(2)
            + Duration::from_secs(5);
        loop {
            tokio::select! {
                cmd = self.commands.recv() => {
                    let Some(cmd) = cmd.filter(|c| !matches!(c, Command::Close)) else {
                        let _ = conn.close(1000).await;
                        return End::Stopped;
                    };
                    if let Some(end) = self.command(&mut conn, cmd).await {
                        return self.lost(end);
                    }
                }
                frame = tokio::time::timeout(silence, conn.next_text()) => match frame {
                    Err(_) => return self.lost(End::Lost(None)),
                    Ok(Err(e)) => return self.lost(End::Lost(e.close_code())),
                    Ok(Ok(text)) => {
                        if let Ok(frame) = ServerFrame::parse(&text) {
                            self.frame(frame);
                        }
                    }
                },
            }
        }
    }

    /// Sends `message` (with a ref for subscriptions, so a refusal finds its subscriber).
    async fn send(&mut self, conn: &mut Connection, message: ClientMessage) -> Option<End> {
        let r#ref = match &message {
            ClientMessage::Subscribe { channel, .. } => {
                Some(self.take_ref(Pending::Subscribe(channel.clone())))
            }
            _ => None,
        };
        conn.send_message(&message, r#ref)
            .await
            .err()
            .map(|e| End::Lost(e.close_code()))
    }

    async fn command(&mut self, conn: &mut Connection, command: Command) -> Option<End> {
        let (message, pending) = match command {
            Command::Publish {
                channel,
                event,
                data,
                reply,
            } => (
                ClientMessage::Publish {
                    channel,
                    event,
                    data: raw_json(&data),
                },
                Pending::Publish(reply),
            ),
            Command::Presence { channel, reply } => (
                ClientMessage::Presence { channel },
                Pending::Presence(reply),
            ),
            Command::Auth { token, reply } => {
                self.token = Some(token.clone());
                let auth = ClientMessage::Auth {
                    token,
                    city_id: None,
                };
                (auth, Pending::Auth(reply))
            }
            Command::Ack { channel, offset } => {
                return self
                    .send(conn, ClientMessage::Ack { channel, offset })
                    .await;
            }
            other => {
                let message = self.bookkeep(other)?;
                return self.send(conn, message).await;
            }
        };
        let r#ref = self.take_ref(pending);
        conn.send_message(&message, Some(r#ref))
            .await
            .err()
            .map(|e| End::Lost(e.close_code()))
    }

    /// Routes one frame: answers to their requests, deliveries to their subscription.
    fn frame(&mut self, frame: ServerFrame) {
        let pending = frame
            .r#ref
            .as_ref()
            .and_then(Value::as_u64)
            .and_then(|r| self.pending.remove(&r));
        match (frame.message, pending) {
            (ServerMessage::Delivery(d), _) => {
                if let Some(sub) = self.subs.get_mut(&d.channel) {
                    for event in sub.tracker.on_delivery(d) {
                        let _ = sub.events.send(event);
                    }
                }
            }
            (
                ServerMessage::Subscribed {
                    channel,
                    position,
                    recovered,
                },
                _,
            ) => {
                if let Some(sub) = self.subs.get_mut(&channel) {
                    for event in sub.tracker.on_subscribed(position, recovered) {
                        let _ = sub.events.send(event);
                    }
                }
            }
            (ServerMessage::Unsubscribed { channel }, _) => {
                if let Some(sub) = self.subs.remove(&channel) {
                    let _ = sub.events.send(SubscriptionEvent::Unsubscribed);
                }
            }
            (ServerMessage::Published { offset, .. }, Some(Pending::Publish(reply))) => {
                let _ = reply.send(Ok(offset));
            }
            (ServerMessage::Presence { members, .. }, Some(Pending::Presence(reply))) => {
                let _ = reply.send(Ok(members));
            }
            (ServerMessage::Authenticated { .. }, Some(Pending::Auth(reply))) => {
                let _ = reply.send(Ok(()));
            }
            (ServerMessage::AuthError { message }, pending) => {
                let reply = match pending {
                    Some(Pending::Auth(reply)) => Some(reply),
                    _ => self.take_pending_auth(),
                };
                if let Some(reply) = reply {
                    let _ = reply.send(Err(ClientError::AuthRefused(message)));
                }
            }
            (ServerMessage::Error { code, message }, Some(pending)) => {
                let refused = || ClientError::Refused {
                    code: code.clone(),
                    message: message.clone(),
                };
                match pending {
                    Pending::Subscribe(channel) => {
                        if let Some(sub) = self.subs.remove(&channel) {
                            let _ = sub.events.send(SubscriptionEvent::Refused {
                                code: code.clone(),
                                message: message.clone(),
                            });
                        }
                    }
                    Pending::Publish(reply) => {
                        let _ = reply.send(Err(refused()));
                    }
                    Pending::Presence(reply) => {
                        let _ = reply.send(Err(refused()));
                    }
                    Pending::Auth(reply) => {
                        let _ = reply.send(Err(refused()));
                    }
                }
            }
            _ => {}
        }
    }

    /// The oldest waiting `auth` request, for an `auth_error` that carries no `ref`.
    fn take_pending_auth(&mut self) -> Option<oneshot::Sender<Result<(), ClientError>>> {
        let r = self
            .pending
            .iter()
            .filter(|(_, p)| matches!(p, Pending::Auth(_)))
            .map(|(r, _)| *r)
            .min()?;
        match self.pending.remove(&r) {
            Some(Pending::Auth(reply)) => Some(reply),
            _ => None,
        }
    }

    /// After a lost connection: every waiting request fails, subscriptions stay for the next.
    fn lost(&mut self, end: End) -> End {
        for (_, pending) in self.pending.drain() {
            match pending {
                Pending::Subscribe(_) => {}
                Pending::Publish(reply) => {
                    let _ = reply.send(Err(ClientError::Disconnected));
                }
                Pending::Presence(reply) => {
                    let _ = reply.send(Err(ClientError::Disconnected));
                }
                Pending::Auth(reply) => {
                    let _ = reply.send(Err(ClientError::Disconnected));
                }
            }
        }
        end
    }

    /// Stops for good: every subscription hears why, and its stream ends.
    fn stop(mut self, code: Option<u16>) {
        let _ = self.lost(End::Stopped);
        for (_, sub) in self.subs.drain() {
            let _ = sub.events.send(SubscriptionEvent::Stopped { code });
        }
        let _ = self.state.send(State::Stopped { code });
    }
}
