//! A read-only, multi-channel feed over the hub: what SSE (`/events`) and long-polling
//! (`/poll`) have in common.
//!
//! A feed is a hub connection without a socket: a [`ConnectionHandle`] with its bounded queue,
//! a [`StreamGate`], and a [`Cursor`] recording how far the client has been given each channel.
//! Opening one follows the same order as a native subscribe — register with the hub *first*,
//! then read history — so nothing published in between is missed, and the gate drops whatever
//! both paths delivered. Dropping the feed (the client went away, the poll answered) leaves the
//! hub.
//!
//! Feeds carry only the channels the client names. They do not join `conn:<id>`: an SSE or
//! long-poll client cannot learn a connection id before its stream exists, and a long-poll
//! "connection" lasts one request. An authenticated client may name its own `user:<sub>`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use axum::http::HeaderMap;
use bytes::Bytes;
use switchboard_core::auth::Identity;
use switchboard_core::channel::ChannelName;
use switchboard_core::codes::CloseCode;
use switchboard_core::cursor::Cursor;
use switchboard_core::gate::{Released, StreamGate};
use switchboard_core::hub::{Completion, ConnectionHandle, Outbound, OutboundReceiver, Transport};
use switchboard_core::publication::StreamPosition;

use switchboard_core::ids::new_id;

use crate::commands::auth::admit;
use crate::http::auth::bearer;
use crate::http::error::ApiError;
use crate::http::origin::{OriginPolicy, log_refusal};
use crate::limits::rate::{Decision, client_key};
use crate::node::Node;
use crate::node::membership::Joined as NodeJoined;
use crate::node::sessions::Session;

/// Most queued items handed to the writer in one batch.
const BATCH: usize = 64;

/// A validated SSE or long-poll request: who asks, for which channels, on which feed id.
#[derive(Debug)]
pub struct FeedRequest {
    /// The feed's id, used in logs and as its hub connection id.
    pub id: String,
    /// The caller (anonymous without a token).
    pub identity: Identity,
    /// The channels asked for, deduplicated, in the order given.
    pub channels: Vec<ChannelName>,
}

impl FeedRequest {
    /// Checks the Origin against `security.allowed_origins` (as a WebSocket handshake is), reads
    /// `channels` and the token (`?token=` first, else `Authorization: Bearer`), charges the
    /// request to the caller's `limits.feed_requests_per_minute` bucket (its user, or `peer`
    /// when anonymous) and checks every channel against the same rules as a native subscribe.
    /// Every refusal is an HTTP error, sent before any stream starts: 400 bad channel list, 401
    /// bad token (or no token where anonymous clients are refused), 403 a disallowed Origin or
    /// a channel the caller may not read, 429 over the request limit.
    pub fn from_http(
        node: &Node,
        headers: &HeaderMap,
        query: &HashMap<String, String>,
        peer: IpAddr,
    ) -> Result<Self, ApiError> {
        if !OriginPolicy::new(&node.config.security.allowed_origins).allows(headers) {
            log_refusal("sse/poll", headers);
            return Err(ApiError::forbidden("Origin not allowed"));
        }
        let token = match query.get("token").filter(|t| !t.is_empty()) {
            Some(t) => Some(t.as_str()),
            None => bearer(headers)?,
        };
        let identity = admit(node, token)?;
        let key = client_key(identity.user.as_deref(), peer);
        if let Decision::Limited { retry_after } = node.feed_limiter.check(&key) {
            return Err(ApiError::too_many_requests(retry_after));
        }
        let channels = parse_channels(
            query.get("channels").map(String::as_str),
            node.config.limits.max_subscriptions_per_connection,
        )?;
        let id = new_id();
        for channel in &channels {
            if !node.policy.can_read(&identity, &id, channel) {
                let message = if identity.is_authenticated() {
                    format!("Your token does not allow channel '{channel}'")
                } else {
                    format!("Authentication required for channel '{channel}'")
                };
                return Err(ApiError::forbidden(&message));
            }
        }
        Ok(Self {
            id,
            identity,
            channels,
        })
    }
}

/// Parses `a,b,c`: names trimmed, empty entries ignored, duplicates dropped, at most `max`.
pub fn parse_channels(list: Option<&str>, max: usize) -> Result<Vec<ChannelName>, ApiError> {
    let mut channels: Vec<ChannelName> = Vec::new();
    for name in list.unwrap_or("").split(',').map(str::trim) {
        if name.is_empty() {
            continue;
        }
        let channel = ChannelName::parse(name).map_err(|e| {
            let shown: String = name.chars().take(64).collect();
            ApiError::bad_request("channels", format!("Invalid channel '{shown}': {e}"))
        })?;
        if !channels.contains(&channel) {
            channels.push(channel);
        }
        if channels.len() > max {
            return Err(ApiError::bad_request(
                "channels",
                format!("At most {max} channels per request"),
            ));
        }
    }
    if channels.is_empty() {
        return Err(ApiError::bad_request(
            "channels",
            "channels is required: a comma-separated list of channel names",
        ));
    }
    Ok(channels)
}

/// Decodes a client's cursor (`Last-Event-ID`, `?since=`, `?cursor=`) or answers 400. Any
/// cursor the server issues is accepted: the bound is that of a cursor over as many channels as
/// a request may name (`limits.max_subscriptions_per_connection`).
pub fn decode_cursor(node: &Node, field: &'static str, text: &str) -> Result<Cursor, ApiError> {
    Cursor::decode_for(text, node.config.limits.max_subscriptions_per_connection)
        .map_err(|e| ApiError::bad_request(field, format!("Invalid cursor: {e}")))
}

/// How one channel's stream was joined.
#[derive(Debug, Clone)]
pub struct Joined {
    pub channel: ChannelName,
    /// Its current position when it was read.
    pub position: StreamPosition,
    /// Whether the client's cursor had a position for it.
    pub resumed: bool,
    /// Whether everything after that position will be delivered (false: history is gone, the
    /// client should refetch a snapshot; the feed continues from the current position).
    pub recovered: bool,
}

/// The notices a feed's client gets first for `channels` (a city's `initial_data`), each as
/// `(event, native JSON {"type","channel","data"})`, exactly what a WebSocket subscriber of the
/// same channel receives after its `subscribed`. Read after the feed joined, so a snapshot
/// already includes any update that raced with the join.
pub async fn join_notices(node: &Node, channels: &[ChannelName]) -> Vec<(&'static str, Bytes)> {
    let mut out = Vec::new();
    for channel in channels {
        if let Some(notice) = node.join_notice(channel).await {
            let frame = serde_json::json!({
                "type": notice.event,
                "channel": channel.as_str(),
                "data": notice.data,
            });
            if let Ok(bytes) = serde_json::to_vec(&frame) {
                out.push((notice.event, Bytes::from(bytes)));
            }
        }
    }
    out
}

/// What a feed's wait ended with.
#[derive(Debug)]
pub enum FeedEvent {
    /// Publications to write, in order, each with the position it advances.
    Items(Vec<Released>),
    /// The feed must end: the hub closed it (4009 slow consumer) or its queue is gone.
    Closed(CloseCode),
}

/// A live, registered feed. Dropping it leaves every channel.
pub struct Feed {
    node: Arc<Node>,
    handle: Arc<ConnectionHandle>,
    /// Counts the feed as a connection of its transport while it lives.
    session: Session,
    rx: OutboundReceiver,
    gate: StreamGate,
    channels: Vec<ChannelName>,
    cursor: Cursor,
}

impl Feed {
    /// Registers for live deliveries on every channel, then reads each channel's history after
    /// `since`. Returns the feed, the catch-up to write first, and how each channel was joined.
    /// The feed's cursor is where the client stands *before* the catch-up.
    pub async fn open(
        node: Arc<Node>,
        transport: Transport,
        request: FeedRequest,
        since: Option<&Cursor>,
    ) -> Result<(Self, Vec<Released>, Vec<Joined>), ApiError> {
        // No per-IP permit of its own: the TCP connection carrying the stream or the poll holds
        // one from accept to close (`crate::accept`), so taking another here counted every SSE
        // client twice.
        let (handle, rx) = ConnectionHandle::for_transport(
            Arc::from(request.id.as_str()),
            transport,
            request.identity.audience(),
            node.config.limits.outbound_queue,
        );
        handle.set_user(request.identity.user.as_deref());
        let session = node.sessions.open(&handle);
        let mut feed = Feed {
            node,
            handle,
            session,
            rx,
            gate: StreamGate::default(),
            channels: Vec::with_capacity(request.channels.len()),
            cursor: Cursor::new(),
        };
        let mut ready = Vec::new();
        let mut joined = Vec::with_capacity(request.channels.len());
        for channel in request.channels {
            let from = since.and_then(|c| c.get(&channel)).cloned();
            joined.push(feed.join(channel, from, &mut ready).await?);
        }
        Ok((feed, ready, joined))
    }

    /// One channel: the gate is told first (this writer owns it, so it needs no queue slot),
    /// then the hub, then the broker. Deliveries that reach the queue meanwhile are merged by
    /// the gate when the writer drains it: those the catch-up covers are dropped.
    async fn join(
        &mut self,
        channel: ChannelName,
        since: Option<StreamPosition>,
        ready: &mut Vec<Released>,
    ) -> Result<Joined, ApiError> {
        self.gate
            .process_tracked(Outbound::begin_subscribe(channel.clone()), ready);
        let NodeJoined {
            recovery,
            after,
            catch_up,
        } = self
            .node
            .join(&channel, &self.handle, since.as_ref())
            .await
            .map_err(|e| {
                tracing::warn!(feed = %self.handle.id(), channel = %channel, error = %e, "feed subscribe failed");
                ApiError::new(
                    axum::http::StatusCode::SERVICE_UNAVAILABLE,
                    "Subscription temporarily unavailable; retry",
                )
            })?;
        self.channels.push(channel.clone());
        self.gate.process_tracked(
            Outbound::CompleteSubscribe(Box::new(Completion {
                channel: channel.clone(),
                reply: None,
                after,
                epoch: std::sync::Arc::from(recovery.position.epoch.as_str()),
                catch_up,
                ok: true,
            })),
            ready,
        );
        self.cursor.set(
            channel.clone(),
            StreamPosition {
                offset: after,
                epoch: recovery.position.epoch.clone(),
            },
        );
        tracing::debug!(feed = %self.handle.id(), channel = %channel, recovered = recovery.recovered, "feed joined");
        Ok(Joined {
            channel,
            resumed: since.is_some(),
            recovered: since.is_some() && recovery.recovered,
            position: recovery.position,
        })
    }

    pub fn id(&self) -> &str {
        self.handle.id()
    }

    /// How long the feed has been open.
    pub fn age(&self) -> std::time::Duration {
        self.session.age()
    }

    /// The channels this feed joined.
    pub fn channels(&self) -> &[ChannelName] {
        &self.channels
    }

    /// Where the client stands after everything passed to [`advance`](Self::advance).
    pub fn cursor(&self) -> &Cursor {
        &self.cursor
    }

    /// Records that `item` was handed to the client: its channel's position becomes the
    /// item's, epoch included (after the broker lost its history, the first delivery of the
    /// new epoch moves the cursor to that epoch).
    pub fn advance(&mut self, item: &Released) {
        if let Some((channel, offset, epoch)) = &item.position
            && self.cursor.get(channel).is_some()
        {
            self.cursor.set(
                channel.clone(),
                StreamPosition {
                    offset: *offset,
                    epoch: epoch.to_string(),
                },
            );
        }
    }

    /// Waits for the next publications. Cancel-safe: nothing is taken from the queue unless it
    /// is returned.
    pub async fn recv(&mut self) -> FeedEvent {
        tokio::select! {
            biased;
            code = self.handle.closed() => FeedEvent::Closed(code),
            item = self.rx.recv() => {
                let mut out = Vec::new();
                // After an overflow the stream has a gap: hand out nothing more, so the
                // client's cursor stays before the dropped publication and resuming recovers it.
                if self.handle.overflowed() {
                    return FeedEvent::Closed(CloseCode::SlowConsumer);
                }
                self.gate.process_tracked(item, &mut out);
                while out.len() < BATCH {
                    let Some(item) = self.rx.try_recv() else { break };
                    if self.handle.overflowed() {
                        break;
                    }
                    self.gate.process_tracked(item, &mut out);
                }
                FeedEvent::Items(out)
            }
        }
    }
}

impl Drop for Feed {
    fn drop(&mut self) {
        for channel in &self.channels {
            self.node.leave(channel, &self.handle);
        }
        tracing::debug!(feed = %self.handle.id(), "feed closed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_lists() {
        let names = |r: Result<Vec<ChannelName>, ApiError>| {
            r.unwrap().iter().map(|c| c.to_string()).collect::<Vec<_>>()
        };
        assert_eq!(
            names(parse_channels(Some(" missions, lobby,,missions "), 10)),
            ["missions", "lobby"]
        );
        assert_eq!(
            parse_channels(Some("a b"), 10).unwrap_err().status(),
            axum::http::StatusCode::BAD_REQUEST
        );
        assert!(parse_channels(None, 10).is_err());
        assert!(parse_channels(Some(" , "), 10).is_err());
        assert!(parse_channels(Some("a,b,c"), 2).is_err());
    }
}
