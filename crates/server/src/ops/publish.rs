//! `POST /api/publish`: the server API any backend uses to publish on any channel — including
//! user inboxes — with an `hq` or `admin` token.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use bytes::Bytes;
use serde_json::{Value, json};
use switchboard_core::auth::Role;
use switchboard_core::channel::ChannelName;
use switchboard_core::protocol::valid_event_name;
use switchboard_core::publication::PublicationData;
use switchboard_core::refusal::Refusal;

use crate::http::auth::require_role;
use crate::http::error::ApiError;
use crate::node::Node;

/// The handler: `{channel, event, data}` → `{channel, offset, epoch}`.
pub async fn publish(
    State(node): State<Arc<Node>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    require_role(&node.verifier, &headers, &[Role::Hq])?;
    let mut obj = match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(obj)) => obj,
        Ok(_) => return Err(ApiError::invalid("body", "Body must be a JSON object")),
        Err(_) => return Err(ApiError::invalid("body", "Body is not valid JSON")),
    };
    let channel = match obj.remove("channel") {
        Some(Value::String(c)) => ChannelName::parse(&c)
            .map_err(|e| ApiError::invalid("channel", Refusal::invalid_channel(&e).message))?,
        _ => {
            return Err(ApiError::invalid(
                "channel",
                "channel is required (a string)",
            ));
        }
    };
    let event = match obj.remove("event") {
        Some(Value::String(e)) if valid_event_name(&e) => e,
        _ => {
            return Err(ApiError::invalid(
                "event",
                "event is required: 1-64 characters of letters, digits, '_', '-', '.', ':'",
            ));
        }
    };
    let data = obj.remove("data").unwrap_or(Value::Null);
    if !obj.is_empty() {
        return Err(ApiError::invalid(
            "body",
            "Unknown field; allowed fields are channel, event, data",
        ));
    }
    let data = PublicationData::shared(&data)?;
    let publication = node.publish(&channel, &event, data).await?;
    tracing::info!(channel = %channel, event, offset = publication.offset, "published via API");
    Ok(Json(json!({
        "channel": channel.as_str(),
        "offset": publication.offset,
        "epoch": &*publication.epoch,
    })))
}
