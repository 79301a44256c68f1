//! The client API over HTTP: what a WebSocket client does with `publish`, `presence` and `ack`
//! messages, for clients on the one-way transports (SSE and long-polling), which have no
//! socket to send them on.
//!
//! - `POST /api/client/publish` `{channel, event, data}` → `{channel, offset}`
//! - `GET /api/client/presence/{channel}` → `{channel, members}`
//! - `POST /api/client/ack` `{channel, offset}` → `{channel, offset}`
//!
//! The caller is anonymous or holds a token (`Authorization: Bearer`), and each request is
//! judged by exactly the rules of the WebSocket message (`commands::publish`'s refusals), not
//! by the server API's (`POST /api/publish` needs `hq` and may publish server events; this one
//! never may). Each request is charged to the same `limits.client_messages_per_minute` bucket
//! as a WebSocket message of the same user (or IP), so switching transport buys no extra rate.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};
use switchboard_core::auth::Identity;
use switchboard_core::channel::ChannelName;
use switchboard_core::codes::ErrorCode;
use switchboard_core::publication::PublicationData;
use switchboard_core::refusal::Refusal;

use crate::commands::publish::{presence_refusal, publish_refusal};
use crate::http::auth::identify;
use crate::http::error::ApiError;
use crate::limits::rate::{Decision, client_key};
use crate::node::Node;

/// The body of `POST /api/client/publish`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishBody {
    channel: String,
    event: String,
    #[serde(default)]
    data: Option<Box<RawValue>>,
}

/// The body of `POST /api/client/ack`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AckBody {
    channel: String,
    offset: u64,
}

/// `POST /api/client/publish`.
pub async fn publish(
    State(node): State<Arc<Node>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    let who = caller(&node, &headers, peer)?;
    let body: PublishBody = parse(&body)?;
    let channel = channel(&body.channel)?;
    if let Some(refusal) = publish_refusal(&node, &who, "", &channel, &body.event) {
        return Err(refused(&refusal));
    }
    let data = match body.data {
        Some(raw) => PublicationData::Shared(Arc::from(raw)),
        None => PublicationData::shared(&Value::Null)?,
    };
    let publication = node.publish(&channel, &body.event, data).await?;
    Ok(Json(
        json!({ "channel": channel.as_str(), "offset": publication.offset }),
    ))
}

/// `GET /api/client/presence/{channel}`.
pub async fn presence(
    State(node): State<Arc<Node>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let who = caller(&node, &headers, peer)?;
    let channel = channel(&name)?;
    if let Some(refusal) = presence_refusal(&node, &who, "", &channel) {
        return Err(refused(&refusal));
    }
    let members = node.presence(&channel).await.map_err(|e| {
        tracing::warn!(channel = %channel, error = %e, "shared presence unreadable");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Presence temporarily unavailable; retry",
        )
    })?;
    Ok(Json(
        json!({ "channel": channel.as_str(), "members": members }),
    ))
}

/// `POST /api/client/ack`: the caller's own `user:<sub>` inbox is delivered up to `offset`.
pub async fn ack(
    State(node): State<Arc<Node>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    let who = caller(&node, &headers, peer)?;
    let body: AckBody = parse(&body)?;
    let own = who
        .user
        .as_deref()
        .is_some_and(|u| body.channel.strip_prefix("user:") == Some(u));
    if !own {
        return Err(refused(&Refusal::ack_not_own_channel()));
    }
    let user = who.user.as_deref().unwrap_or_default();
    node.ack_inbox(user, body.offset).await?;
    Ok(Json(
        json!({ "channel": body.channel, "offset": body.offset }),
    ))
}

/// The caller's identity (401 for a bad token), charged one client message.
fn caller(node: &Node, headers: &HeaderMap, peer: SocketAddr) -> Result<Identity, ApiError> {
    let who = identify(&node.verifier, headers)?;
    if !who.is_authenticated() && !node.config.auth.allow_anonymous {
        return Err(switchboard_core::auth::AuthError::Missing.into());
    }
    let key = client_key(who.user.as_deref(), peer.ip());
    if let Decision::Limited { retry_after } = node.client_limiter.check(&key) {
        return Err(ApiError::too_many_requests(retry_after));
    }
    Ok(who)
}

fn parse<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|_| {
        ApiError::invalid(
            "body",
            "Body must be a JSON object with exactly the documented fields",
        )
    })
}

fn channel(name: &str) -> Result<ChannelName, ApiError> {
    ChannelName::parse(name)
        .map_err(|e| ApiError::invalid("channel", Refusal::invalid_channel(&e).message))
}

/// A refusal as the HTTP status a REST client expects, with the same public message.
fn refused(refusal: &Refusal) -> ApiError {
    let status = match refusal.code {
        ErrorCode::Forbidden => StatusCode::FORBIDDEN,
        ErrorCode::NotFound => StatusCode::NOT_FOUND,
        ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    };
    ApiError::new(status, refusal.message.clone())
}
