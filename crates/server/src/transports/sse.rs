//! Server-Sent Events at `GET /events?channels=a,b` (SPEC §4.3).
//!
//! The stream opens with `data: {"type":"connected"}` (its `id:` is the cursor the stream
//! starts from, plus `retry:` advice); then every publication as `id: <cursor>`,
//! `event: <event>`, `data: <native delivery JSON>`. `Last-Event-ID` (or `?since=<cursor>`)
//! resumes exactly after the last event the client saw. When resuming, one `subscribed` event
//! per channel says whether that channel was recovered; `recovered:false` means its history is
//! gone and the client should refetch a snapshot. A `: ping` comment is written every
//! `sse.heartbeat_ms`. The stream ends with an `event: close` notice when the server shuts down
//! (1012) or the client fell too far behind (4009); either way `EventSource` reconnects and
//! resumes from its last id.
//!
//! No request timeout applies to this route: the stream lives as long as the client.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Extension, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Serialize;
use switchboard_core::codes::CloseCode;
use switchboard_core::gate::Released;
use switchboard_core::sse;
use tokio::time::{Instant, Interval, MissedTickBehavior};
use tracing::Instrument;

use crate::http::error::ApiError;
use crate::http::forwarded::Proxied;
use crate::limits::connections::ConnectionPermit;
use crate::node::Node;
use crate::transports::expiry::{sleep_until_some, token_deadline};
use crate::transports::feed::{Feed, FeedEvent, FeedRequest, Joined, decode_cursor, join_notices};
use switchboard_core::hub::Transport;

/// The `subscribed` notice sent per channel when a stream resumes (same shape as the native
/// protocol's `subscribed` reply).
#[derive(Serialize)]
struct SubscribedNotice<'a> {
    r#type: &'static str,
    channel: &'a str,
    offset: u64,
    epoch: &'a str,
    recovered: bool,
}

/// The notice written just before the server ends a stream.
#[derive(Serialize)]
struct CloseNotice {
    r#type: &'static str,
    code: u16,
    reason: &'static str,
    reconnect: bool,
}

/// The `GET /events` handler: every refusal happens here, as an HTTP status, before the stream.
pub async fn handler(
    State(node): State<Arc<Node>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Query(query): Query<HashMap<String, String>>,
    proxied: Option<Extension<Proxied>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let request = FeedRequest::from_http(&node, &headers, &query, peer.ip())?;
    let permit = super::proxied_permit(&node, proxied.is_some(), peer.ip())
        .map_err(|_| ApiError::new(StatusCode::TOO_MANY_REQUESTS, super::TOO_MANY_CONNECTIONS))?;
    let token_expires_at = request.identity.expires_at;
    let user = request.identity.user.clone();
    // `Last-Event-ID` wins: EventSource resends the original URL (with its old `since`) on
    // every reconnect, and the header is where it stopped this time.
    let since = match last_event_id(&headers) {
        Some(id) => Some(decode_cursor(&node, "Last-Event-ID", id)?),
        None => match query.get("since").filter(|s| !s.is_empty()) {
            Some(s) => Some(decode_cursor(&node, "since", s)?),
            None => None,
        },
    };
    let span = tracing::info_span!("sse", feed = %request.id);
    let (feed, ready, joined) =
        Feed::open(Arc::clone(&node), Transport::Sse, request, since.as_ref())
            .instrument(span.clone())
            .await?;
    span.in_scope(|| {
        tracing::info!(transport = "sse", peer = %peer.ip(), user = user.as_deref().unwrap_or("-"), resumed = since.is_some(), "connection opened");
    });

    let mut stream = SseStream::new(Arc::clone(&node), feed, token_expires_at, user.clone());
    stream.permit = permit;
    stream.pending.push_back(sse::connected(
        &stream.feed.cursor().encode(),
        node.config.sse.retry_ms,
    ));
    if since.is_some() {
        for j in &joined {
            stream.pending.push_back(subscribed_notice(j));
        }
    }
    stream.push_items(ready);
    for (event, frame) in join_notices(&node, stream.feed.channels()).await {
        stream.pending.push_back(sse::notice(event, &frame));
    }

    let body = futures_util::stream::unfold(stream, |mut s| async move {
        let chunk = s.next_chunk().await?;
        Some((Ok::<Bytes, std::convert::Infallible>(chunk), s))
    });
    let mut response = Body::from_stream(body).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // Tells nginx not to buffer the stream.
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(response)
}

fn last_event_id(headers: &HeaderMap) -> Option<&str> {
    headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

fn subscribed_notice(j: &Joined) -> Bytes {
    let notice = SubscribedNotice {
        r#type: "subscribed",
        channel: j.channel.as_str(),
        offset: j.position.offset,
        epoch: &j.position.epoch,
        recovered: j.recovered,
    };
    // Strings and numbers only: serializing cannot fail.
    let json = serde_json::to_vec(&notice).unwrap_or_default();
    sse::notice("subscribed", &json)
}

fn close_notice(code: CloseCode) -> Bytes {
    let notice = CloseNotice {
        r#type: "close",
        code: code.code(),
        reason: code.reason(),
        reconnect: code.should_reconnect(),
    };
    let json = serde_json::to_vec(&notice).unwrap_or_default();
    sse::notice("close", &json)
}

/// The state behind one response body. Dropped when the client goes away, which drops the
/// feed and so leaves the hub.
struct SseStream {
    node: Arc<Node>,
    feed: Feed,
    /// Behind a trusted proxy: this client's place in the per-IP count, for the stream's life.
    permit: Option<ConnectionPermit>,
    pending: VecDeque<Bytes>,
    heartbeat: Interval,
    /// When the stream's token expires (the stream then ends with a 4004 close notice).
    expiry: Option<Instant>,
    done: bool,
    /// Why the server ended the stream; `None` while open, or when the client went away.
    ended: Option<CloseCode>,
    /// Who reads it, for the closing log line.
    user: Option<String>,
}

impl Drop for SseStream {
    fn drop(&mut self) {
        tracing::info!(
            transport = "sse",
            feed = %self.feed.id(),
            user = self.user.as_deref().unwrap_or("-"),
            code = self.ended.unwrap_or(CloseCode::Normal).code(),
            duration_ms = self.feed.age().as_millis() as u64,
            "connection closed"
        );
    }
}

impl SseStream {
    fn new(
        node: Arc<Node>,
        feed: Feed,
        token_expires_at: Option<u64>,
        user: Option<String>,
    ) -> Self {
        let period = Duration::from_millis(node.config.sse.heartbeat_ms);
        let mut heartbeat = tokio::time::interval_at(Instant::now() + period, period);
        heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
        Self {
            node,
            feed,
            permit: None,
            pending: VecDeque::new(),
            heartbeat,
            expiry: token_deadline(token_expires_at),
            done: false,
            ended: None,
            user,
        }
    }

    /// Frames each delivery with the cursor as it stands after that delivery.
    fn push_items(&mut self, items: Vec<Released>) {
        for item in items {
            if item.position.is_none() {
                continue;
            }
            self.feed.advance(&item);
            let cursor = self.feed.cursor().encode();
            let event = sse::delivery_event(&item.frame);
            self.pending
                .push_back(sse::delivery(&cursor, event.as_deref(), &item.frame));
        }
    }

    /// The next chunk of the body; `None` ends the response.
    async fn next_chunk(&mut self) -> Option<Bytes> {
        loop {
            if let Some(chunk) = self.pending.pop_front() {
                return Some(chunk);
            }
            if self.done {
                return None;
            }
            tokio::select! {
                biased;
                () = self.node.shutting_down() => self.finish(CloseCode::Restarting),
                () = sleep_until_some(self.expiry) => self.finish(CloseCode::TokenExpired),
                event = self.feed.recv() => match event {
                    FeedEvent::Items(items) => self.push_items(items),
                    FeedEvent::Closed(code) => self.finish(code),
                },
                _ = self.heartbeat.tick() => self.pending.push_back(sse::comment("ping")),
            }
        }
    }

    fn finish(&mut self, code: CloseCode) {
        tracing::debug!(feed = %self.feed.id(), code = code.code(), "sse stream ending");
        self.ended = Some(code);
        if code != CloseCode::Normal {
            self.pending.push_back(close_notice(code));
        }
        self.done = true;
    }
}
