//! `POST /api/publish`: the server API any backend uses to publish on any channel — including
//! user inboxes — with an `hq` or `admin` token.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use bytes::Bytes;
use garde::Validate;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use switchboard_core::auth::Role;
use switchboard_core::channel::ChannelName;
use switchboard_core::protocol::valid_event_name;
use switchboard_core::publication::PublicationData;
use switchboard_core::refusal::Refusal;
use utoipa::ToSchema;

use crate::http::auth::require_role;
use crate::http::error::{ApiError, ErrorBody};
use crate::http::input::{self, BodySpec, Unknown, rule_error};
use crate::node::Node;

const CHANNEL_MESSAGE: &str = "channel is required (a string)";
const EVENT_MESSAGE: &str =
    "event is required: 1-64 characters of letters, digits, '_', '-', '.', ':'";

/// The body of `POST /api/publish`.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[schema(as = ServerPublish)]
#[serde(deny_unknown_fields)]
pub struct PublishBody {
    /// Any channel name, `[A-Za-z0-9_:.-]{1,255}`, user inboxes included.
    #[serde(default)]
    #[garde(custom(valid_channel))]
    #[schema(value_type = String, required, pattern = "^[A-Za-z0-9_:.-]{1,255}$")]
    pub channel: Option<String>,
    /// The event name; protocol-reserved names are refused.
    #[serde(default)]
    #[garde(custom(valid_event))]
    #[schema(value_type = String, required, pattern = "^[A-Za-z0-9_.:-]{1,64}$")]
    pub event: Option<String>,
    /// Any JSON; `null` when left out.
    #[serde(default)]
    #[garde(skip)]
    pub data: Option<Value>,
}

/// What `POST /api/publish` answers: where the publication went.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PublishedDto {
    pub channel: String,
    /// Its offset in the channel.
    pub offset: u64,
    /// The channel's current epoch.
    pub epoch: String,
}

fn valid_channel(channel: &Option<String>, _: &()) -> garde::Result {
    match channel.as_deref().map(ChannelName::parse) {
        None => Err(rule_error(CHANNEL_MESSAGE)),
        Some(Err(e)) => Err(garde::Error::new(Refusal::invalid_channel(&e).message)),
        Some(Ok(_)) => Ok(()),
    }
}

fn valid_event(event: &Option<String>, _: &()) -> garde::Result {
    match event.as_deref() {
        Some(e) if valid_event_name(e) => Ok(()),
        _ => Err(rule_error(EVENT_MESSAGE)),
    }
}

const BODY: BodySpec = BodySpec {
    fields: &["channel", "event", "data"],
    unknown: Unknown::Last,
    unknown_message: "Unknown field; allowed fields are channel, event, data",
    not_json: "Body is not valid JSON",
    not_object: "Body must be a JSON object",
    type_message: |field| match field {
        "channel" => CHANNEL_MESSAGE,
        _ => EVENT_MESSAGE,
    },
};

/// The handler: `{channel, event, data}` → `{channel, offset, epoch}`.
#[utoipa::path(post, path = "/api/publish", operation_id = "publish", tag = "ops",
    request_body = PublishBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Published", body = PublishedDto),
        (status = 401, description = "No token, or an invalid one", body = ErrorBody),
        (status = 403, description = "The token's role is not hq", body = ErrorBody),
        (status = 413, description = "Body over limits.max_message_bytes", body = ErrorBody),
        (status = 422, description = "Invalid body or reserved event; `field` names it", body = ErrorBody),
        (status = 429, description = "Too many writes", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 503, description = "Not published; retry", body = ErrorBody),
    ))]
pub async fn publish(
    State(node): State<Arc<Node>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<PublishedDto>, ApiError> {
    require_role(&node.verifier, &headers, &[Role::Hq])?;
    let body: PublishBody = input::parse(&body, &BODY)?;
    let channel = ChannelName::parse(body.channel.as_deref().unwrap_or_default())
        .map_err(|e| ApiError::invalid("channel", Refusal::invalid_channel(&e).message))?;
    let event = body.event.unwrap_or_default();
    let data = PublicationData::shared(&body.data.unwrap_or(Value::Null))?;
    let publication = node.publish(&channel, &event, data).await?;
    tracing::info!(channel = %channel, event, offset = publication.offset, "published via API");
    Ok(Json(PublishedDto {
        channel: channel.as_str().to_owned(),
        offset: publication.offset,
        epoch: publication.epoch.to_string(),
    }))
}

/// The server publish API in `/openapi.json`.
#[derive(utoipa::OpenApi)]
#[openapi(paths(publish), components(schemas(PublishBody, PublishedDto)))]
pub struct PublishApi;
