//! Long-polling at `GET /poll?channels=a,b&cursor=…&timeout=…` (SPEC §4.4).
//!
//! - Without `cursor`: answers at once with `{"updates":[],"cursor":"…"}` — the channels'
//!   current positions, the cursor to poll with next.
//! - With `cursor`: registers for live deliveries, *then* reads history after the cursor (so a
//!   publication between the two is neither missed nor duplicated). Anything already there is
//!   answered at once; otherwise the request waits up to `timeout` seconds (default 30, at most
//!   60) and answers with what arrived, or with no updates and the same positions.
//! - A channel whose history after the cursor is gone is listed in `"unrecovered"` (present
//!   only when not empty): the client should refetch a snapshot; the new cursor continues from
//!   the channel's current position.
//!
//! Updates are the native delivery JSON the hub encoded once, spliced into the answer as is.
//! On shutdown a waiting poll answers with what it has. No request timeout layer applies here.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use switchboard_core::cursor::Cursor;
use switchboard_core::gate::Released;
use tracing::Instrument;

use crate::http::error::ApiError;
use crate::node::Node;
use crate::transports::feed::{Feed, FeedEvent, FeedRequest, decode_cursor, join_notices};
use switchboard_core::hub::Transport;

/// Wait when the client names no `timeout` (SPEC §4.4).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest wait a client may ask for; longer requests are shortened to this.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(60);

/// The `GET /poll` handler.
pub async fn handler(
    State(node): State<Arc<Node>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let request = FeedRequest::from_http(&node, &headers, &query, peer.ip())?;
    let timeout = parse_timeout(query.get("timeout").map(String::as_str))?;
    let cursor = match query.get("cursor").filter(|c| !c.is_empty()) {
        Some(text) => Some(decode_cursor(&node, "cursor", text)?),
        None => None,
    };
    let span = tracing::info_span!("poll", feed = %request.id);
    let Some(since) = cursor else {
        return current_positions(&node, request).instrument(span).await;
    };
    wait_for_updates(node, request, since, timeout)
        .instrument(span)
        .await
}

/// `timeout` in seconds (fractions allowed), default 30, capped at 60.
pub fn parse_timeout(text: Option<&str>) -> Result<Duration, ApiError> {
    let Some(text) = text.filter(|t| !t.is_empty()) else {
        return Ok(DEFAULT_TIMEOUT);
    };
    match text.parse::<f64>() {
        Ok(secs) if secs.is_finite() && secs >= 0.0 => {
            Ok(Duration::from_secs_f64(secs.min(MAX_TIMEOUT.as_secs_f64())))
        }
        _ => Err(ApiError::bad_request(
            "timeout",
            "timeout must be a number of seconds between 0 and 60",
        )),
    }
}

/// The first poll: where each channel stands now, and the notices a WebSocket subscriber gets
/// first (a city's `initial_data`) as updates without an offset. Later polls do not repeat them.
async fn current_positions(node: &Node, request: FeedRequest) -> Result<Response, ApiError> {
    let mut cursor = Cursor::new();
    let notices: Vec<Released> = join_notices(node, &request.channels)
        .await
        .into_iter()
        .map(|(_, frame)| Released {
            frame,
            position: None,
        })
        .collect();
    for channel in request.channels {
        let recovery = node.recover(&channel, None).await.map_err(|e| {
            tracing::warn!(channel = %channel, error = %e, "poll position read failed");
            unavailable()
        })?;
        cursor.set(channel, recovery.position);
    }
    Ok(answer(&notices, &cursor, &[]))
}

async fn wait_for_updates(
    node: Arc<Node>,
    request: FeedRequest,
    since: Cursor,
    timeout: Duration,
) -> Result<Response, ApiError> {
    let (mut feed, ready, joined) =
        Feed::open(Arc::clone(&node), Transport::Poll, request, Some(&since)).await?;
    let unrecovered: Vec<&str> = joined
        .iter()
        .filter(|j| j.resumed && !j.recovered)
        .map(|j| j.channel.as_str())
        .collect();
    let mut updates = take_deliveries(&mut feed, ready);
    if updates.is_empty() {
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        while updates.is_empty() {
            tokio::select! {
                biased;
                () = node.shutting_down() => break,
                event = feed.recv() => match event {
                    FeedEvent::Items(items) => updates = take_deliveries(&mut feed, items),
                    FeedEvent::Closed(code) => {
                        tracing::debug!(code = code.code(), "poll feed closed");
                        break;
                    }
                },
                () = &mut deadline => break,
            }
        }
    }
    tracing::debug!(updates = updates.len(), "poll answered");
    Ok(answer(&updates, feed.cursor(), &unrecovered))
}

/// Keeps the deliveries and moves the feed's cursor past each.
fn take_deliveries(feed: &mut Feed, items: Vec<Released>) -> Vec<Released> {
    items
        .into_iter()
        .filter(|item| item.position.is_some())
        .inspect(|item| feed.advance(item))
        .collect()
}

fn unavailable() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::SERVICE_UNAVAILABLE,
        "Channel positions temporarily unavailable; retry",
    )
}

/// `{"updates":[…],"cursor":"…","unrecovered"?:[…]}`, the updates spliced in as encoded.
fn answer(updates: &[Released], cursor: &Cursor, unrecovered: &[&str]) -> Response {
    let cursor = cursor.encode();
    let size: usize = updates.iter().map(|u| u.frame.len() + 1).sum();
    let mut body = Vec::with_capacity(32 + size + cursor.len());
    body.extend_from_slice(b"{\"updates\":[");
    for (i, update) in updates.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(&update.frame);
    }
    body.extend_from_slice(b"],\"cursor\":\"");
    // base64url: nothing to escape.
    body.extend_from_slice(cursor.as_bytes());
    body.push(b'"');
    if !unrecovered.is_empty() {
        body.extend_from_slice(b",\"unrecovered\":");
        // A list of channel names: serializing cannot fail.
        body.extend_from_slice(&serde_json::to_vec(unrecovered).unwrap_or_default());
    }
    body.push(b'}');
    let mut response = body.into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use switchboard_core::channel::ChannelName;
    use switchboard_core::publication::StreamPosition;

    use super::*;

    fn position(offset: u64, epoch: &str) -> StreamPosition {
        StreamPosition {
            offset,
            epoch: epoch.to_owned(),
        }
    }

    #[tokio::test]
    async fn answer_splices_updates_and_cursor() {
        let ch = ChannelName::parse("lobby").unwrap();
        let mut cursor = Cursor::new();
        cursor.set(ch.clone(), position(2, "e"));
        let updates = vec![
            Released {
                frame: Bytes::from_static(br#"{"type":"chat","offset":1}"#),
                position: Some((ch.clone(), 1, std::sync::Arc::from("e"))),
            },
            Released {
                frame: Bytes::from_static(br#"{"type":"chat","offset":2}"#),
                position: Some((ch, 2, std::sync::Arc::from("e"))),
            },
        ];
        let res = answer(&updates, &cursor, &["missions"]);
        let body = axum::body::to_bytes(res.into_body(), 1 << 16)
            .await
            .unwrap();
        assert_eq!(
            std::str::from_utf8(&body).unwrap(),
            format!(
                r#"{{"updates":[{{"type":"chat","offset":1}},{{"type":"chat","offset":2}}],"cursor":"{}","unrecovered":["missions"]}}"#,
                cursor.encode()
            )
        );
    }

    #[test]
    fn timeouts() {
        assert_eq!(parse_timeout(None).unwrap(), DEFAULT_TIMEOUT);
        assert_eq!(
            parse_timeout(Some("0.5")).unwrap(),
            Duration::from_millis(500)
        );
        assert_eq!(parse_timeout(Some("600")).unwrap(), MAX_TIMEOUT);
        assert!(parse_timeout(Some("-1")).is_err());
        assert!(parse_timeout(Some("soon")).is_err());
        assert!(parse_timeout(Some("inf")).is_err());
    }
}
