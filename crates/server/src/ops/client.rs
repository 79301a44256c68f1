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
use garde::Validate;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;
use switchboard_core::auth::Identity;
use switchboard_core::channel::ChannelName;
use switchboard_core::codes::ErrorCode;
use switchboard_core::publication::PublicationData;
use switchboard_core::refusal::Refusal;
use utoipa::ToSchema;

use crate::commands::publish::{presence_refusal, publish_refusal};
use crate::http::auth::identify;
use crate::http::error::{ApiError, ErrorBody};
use crate::http::input;
use crate::limits::rate::{Decision, client_key};
use crate::node::Node;

/// The body of `POST /api/client/publish`. `data` is published byte for byte as the client
/// wrote it, so this body is read by serde's derive directly (`input::parse_strict`).
#[derive(Deserialize, Validate, ToSchema)]
#[schema(as = ClientPublish)]
#[serde(deny_unknown_fields)]
pub struct PublishBody {
    /// A channel the caller may publish on.
    #[garde(custom(valid_channel))]
    #[schema(pattern = "^[A-Za-z0-9_:.-]{1,255}$")]
    channel: String,
    /// A client event name (not a server or protocol event).
    #[garde(skip)]
    event: String,
    /// Any JSON; `null` when left out.
    #[serde(default)]
    #[garde(skip)]
    #[schema(value_type = Option<Value>)]
    data: Option<Box<RawValue>>,
}

/// The body of `POST /api/client/ack`.
#[derive(Deserialize, Validate, ToSchema)]
#[schema(as = ClientAck)]
#[serde(deny_unknown_fields)]
pub struct AckBody {
    /// The caller's own inbox, `user:<sub>`.
    #[garde(skip)]
    channel: String,
    /// Delivered up to and including this offset.
    #[garde(skip)]
    offset: u64,
}

/// Where a client publication went (`/api/client/publish`), or how far an inbox is acknowledged
/// (`/api/client/ack`).
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PositionDto {
    pub channel: String,
    pub offset: u64,
}

/// One member of a channel's presence.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberDto {
    /// The user id, or `null` for anonymous members.
    pub user: Option<String>,
    /// The member's connection id.
    #[serde(rename = "connectionId")]
    pub connection_id: String,
}

/// The answer of `GET /api/client/presence/{channel}`.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PresenceDto {
    pub channel: String,
    /// Everyone subscribed, across the cluster.
    pub members: Vec<MemberDto>,
}

const BODY_MESSAGE: &str = "Body must be a JSON object with exactly the documented fields";

fn valid_channel(name: &str, _: &()) -> garde::Result {
    match ChannelName::parse(name) {
        Ok(_) => Ok(()),
        Err(e) => Err(garde::Error::new(Refusal::invalid_channel(&e).message)),
    }
}

/// `POST /api/client/publish`: a publication by the rules of a WebSocket client's `publish`.
#[utoipa::path(post, path = "/api/client/publish", operation_id = "clientPublish", tag = "client",
    request_body = PublishBody,
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "Published", body = PositionDto),
        (status = 401, description = "Invalid token (or anonymous callers are not allowed)", body = ErrorBody),
        (status = 403, description = "The caller may not publish here", body = ErrorBody),
        (status = 404, description = "Refused as not found", body = ErrorBody),
        (status = 413, description = "Body over limits.max_message_bytes", body = ErrorBody),
        (status = 422, description = "Invalid body, channel or event; `field` names it", body = ErrorBody),
        (status = 429, description = "Too many messages or writes", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 503, description = "Not published; retry", body = ErrorBody),
    ))]
pub async fn publish(
    State(node): State<Arc<Node>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Json<PositionDto>, ApiError> {
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
    Ok(Json(PositionDto {
        channel: channel.as_str().to_owned(),
        offset: publication.offset,
    }))
}

/// `GET /api/client/presence/{channel}`: who is subscribed, by the rules of a `presence` message.
#[utoipa::path(get, path = "/api/client/presence/{channel}", operation_id = "clientPresence", tag = "client",
    params(("channel" = String, Path, description = "A channel with presence enabled", example = "room:1")),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "The members", body = PresenceDto),
        (status = 401, description = "Invalid token (or anonymous callers are not allowed)", body = ErrorBody),
        (status = 403, description = "The caller may not read this channel", body = ErrorBody),
        (status = 404, description = "Presence is off here, or no such route", body = ErrorBody),
        (status = 422, description = "Invalid channel name (`field`: channel)", body = ErrorBody),
        (status = 429, description = "Too many messages", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ))]
pub async fn presence(
    State(node): State<Arc<Node>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<Json<PresenceDto>, ApiError> {
    let who = caller(&node, &headers, peer)?;
    let channel = channel(&name)?;
    if let Some(refusal) = presence_refusal(&node, &who, "", &channel) {
        return Err(refused(&refusal));
    }
    let members = node
        .presence(&channel)
        .await
        .map_err(|e| {
            tracing::warn!(channel = %channel, error = %e, "shared presence unreadable");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "Presence temporarily unavailable; retry",
            )
        })?
        .into_iter()
        .map(|m| MemberDto {
            user: m.user,
            connection_id: m.connection_id,
        })
        .collect();
    Ok(Json(PresenceDto {
        channel: channel.as_str().to_owned(),
        members,
    }))
}

/// `POST /api/client/ack`: the caller's own `user:<sub>` inbox is delivered up to `offset`.
#[utoipa::path(post, path = "/api/client/ack", operation_id = "clientAck", tag = "client",
    request_body = AckBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Acknowledged", body = PositionDto),
        (status = 401, description = "Invalid token (or anonymous callers are not allowed)", body = ErrorBody),
        (status = 403, description = "Not the caller's own inbox", body = ErrorBody),
        (status = 413, description = "Body over limits.max_message_bytes", body = ErrorBody),
        (status = 422, description = "Invalid body", body = ErrorBody),
        (status = 429, description = "Too many messages or writes", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ))]
pub async fn ack(
    State(node): State<Arc<Node>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Json<PositionDto>, ApiError> {
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
    Ok(Json(PositionDto {
        channel: body.channel,
        offset: body.offset,
    }))
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

fn parse<T>(body: &[u8]) -> Result<T, ApiError>
where
    T: for<'de> Deserialize<'de> + Validate<Context = ()>,
{
    input::parse_strict(body, &["channel", "event", "data", "offset"], BODY_MESSAGE)
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

/// The client API's routes in `/openapi.json`.
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(publish, presence, ack),
    components(schemas(PublishBody, AckBody, PositionDto, PresenceDto, MemberDto)),
    tags((name = "client", description = "What WebSocket clients send as messages, for SSE and long-poll clients"))
)]
pub struct ClientApi;
