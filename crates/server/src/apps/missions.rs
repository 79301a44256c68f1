//! Missions: "HQ updates a mission, every field agent sees it instantly" (SPEC §1.1).
//!
//! Records come from the store with classified columns; only the DTO types below are ever
//! serialized, one per audience. A write commits to the store first, then publishes the DTOs
//! on `missions` and `missions:<id>`, then answers with the DTO that was broadcast.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use bytes::Bytes;
use serde::Serialize;
use serde_json::{Map, Value};
use switchboard_core::auth::Role;
use switchboard_core::channel::ChannelName;
use switchboard_core::publication::{Audience, PublicationData};
use switchboard_store::{MissionPatch, MissionRecord, MissionStatus, NewMission};

use crate::http::auth::{identify, require_role};
use crate::http::error::ApiError;
use crate::node::Node;

/// Longest accepted string field.
pub const MAX_FIELD_CHARS: usize = 200;

/// What field agents (and anonymous clients) see.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct MissionAgentDto {
    /// Id.
    pub id: i64,
    /// Code name.
    pub codename: String,
    /// Status.
    pub status: &'static str,
    /// Location.
    pub location: String,
}

/// What HQ sees: the agent fields plus objective and last change. Still no classified field.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct MissionHqDto {
    /// Id.
    pub id: i64,
    /// Code name.
    pub codename: String,
    /// Status.
    pub status: &'static str,
    /// Location.
    pub location: String,
    /// Objective.
    pub objective: String,
    /// Last change (RFC 3339).
    pub updated_at: String,
}

impl From<&MissionRecord> for MissionAgentDto {
    fn from(r: &MissionRecord) -> Self {
        Self {
            id: r.id,
            codename: r.codename.clone(),
            status: r.status.as_str(),
            location: r.location.clone(),
        }
    }
}

impl From<&MissionRecord> for MissionHqDto {
    fn from(r: &MissionRecord) -> Self {
        Self {
            id: r.id,
            codename: r.codename.clone(),
            status: r.status.as_str(),
            location: r.location.clone(),
            objective: r.objective.clone(),
            updated_at: r.updated_at.clone(),
        }
    }
}

/// The payload of `mission-removed`.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct MissionRemovedDto {
    /// The deleted mission's id.
    pub id: i64,
}

fn dto_for(record: &MissionRecord, audience: Audience) -> Response {
    match audience {
        Audience::Agent => Json(MissionAgentDto::from(record)).into_response(),
        Audience::Hq => Json(MissionHqDto::from(record)).into_response(),
    }
}

/// Routes of this app.
pub fn routes() -> Router<Arc<Node>> {
    Router::new()
        .route("/missions", get(list).post(create))
        .route("/missions/{id}", get(show).put(update).delete(remove))
}

fn parse_id(raw: &str) -> Result<i64, ApiError> {
    raw.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| ApiError::not_found("Mission not found"))
}

async fn list(State(node): State<Arc<Node>>, headers: HeaderMap) -> Result<Response, ApiError> {
    let who = identify(&node, &headers)?;
    let records = node
        .store
        .list_missions()
        .await
        .map_err(|e| ApiError::internal(&e))?;
    Ok(match who.audience() {
        Audience::Agent => Json(
            records
                .iter()
                .map(MissionAgentDto::from)
                .collect::<Vec<_>>(),
        )
        .into_response(),
        Audience::Hq => {
            Json(records.iter().map(MissionHqDto::from).collect::<Vec<_>>()).into_response()
        }
    })
}

async fn show(
    State(node): State<Arc<Node>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let who = identify(&node, &headers)?;
    let id = parse_id(&id)?;
    let record = node
        .store
        .get_mission(id)
        .await
        .map_err(|e| ApiError::internal(&e))?
        .ok_or_else(|| ApiError::not_found("Mission not found"))?;
    Ok(dto_for(&record, who.audience()))
}

/// Parses a JSON object body; anything else is a 422 naming `body`.
fn object_body(body: &Bytes) -> Result<Map<String, Value>, ApiError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::invalid("body", "Body must be a JSON object")),
        Err(_) => Err(ApiError::invalid("body", "Body is not valid JSON")),
    }
}

fn string_field(
    map: &Map<String, Value>,
    field: &'static str,
    required: bool,
) -> Result<Option<String>, ApiError> {
    match map.get(field) {
        None | Some(Value::Null) if required => {
            Err(ApiError::invalid(field, format!("{field} is required")))
        }
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => {
            let trimmed = s.trim();
            if trimmed.chars().count() > MAX_FIELD_CHARS {
                return Err(ApiError::invalid(
                    field,
                    format!("{field} must be at most {MAX_FIELD_CHARS} characters"),
                ));
            }
            if trimmed.chars().any(char::is_control) {
                return Err(ApiError::invalid(
                    field,
                    format!("{field} must not contain control characters"),
                ));
            }
            if required && trimmed.is_empty() {
                return Err(ApiError::invalid(
                    field,
                    format!("{field} must not be empty"),
                ));
            }
            Ok(Some(trimmed.to_owned()))
        }
        Some(_) => Err(ApiError::invalid(
            field,
            format!("{field} must be a string"),
        )),
    }
}

fn status_field(map: &Map<String, Value>) -> Result<Option<MissionStatus>, ApiError> {
    match map.get("status") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => MissionStatus::parse(s).map(Some).ok_or_else(|| {
            ApiError::invalid(
                "status",
                "status must be one of planned, active, compromised, completed, aborted",
            )
        }),
        Some(_) => Err(ApiError::invalid("status", "status must be a string")),
    }
}

fn reject_unknown(map: &Map<String, Value>, allowed: &[&str]) -> Result<(), ApiError> {
    match map.keys().find(|k| !allowed.contains(&k.as_str())) {
        // The field name is client input: report it without echoing arbitrary content.
        Some(_) => Err(ApiError::invalid(
            "body",
            format!("Unknown field; allowed fields are {}", allowed.join(", ")),
        )),
        None => Ok(()),
    }
}

/// Validates a `PUT` body.
pub fn parse_patch(body: &Bytes) -> Result<MissionPatch, ApiError> {
    let map = object_body(body)?;
    reject_unknown(&map, &["status", "location", "objective"])?;
    let patch = MissionPatch {
        status: status_field(&map)?,
        location: string_field(&map, "location", false)?,
        objective: string_field(&map, "objective", false)?,
    };
    if patch.location.as_deref() == Some("") {
        return Err(ApiError::invalid("location", "location must not be empty"));
    }
    if patch.is_empty() {
        return Err(ApiError::invalid(
            "body",
            "Body must contain at least one of status, location, objective",
        ));
    }
    Ok(patch)
}

/// Validates a `POST` body.
pub fn parse_new(body: &Bytes) -> Result<NewMission, ApiError> {
    let map = object_body(body)?;
    reject_unknown(
        &map,
        &[
            "codename",
            "status",
            "location",
            "objective",
            "handler_notes",
            "asset_identity",
            "extraction_code",
        ],
    )?;
    Ok(NewMission {
        codename: string_field(&map, "codename", true)?.unwrap_or_default(),
        status: status_field(&map)?,
        location: string_field(&map, "location", true)?.unwrap_or_default(),
        objective: string_field(&map, "objective", false)?.unwrap_or_default(),
        handler_notes: string_field(&map, "handler_notes", false)?.unwrap_or_default(),
        asset_identity: string_field(&map, "asset_identity", false)?.unwrap_or_default(),
        extraction_code: string_field(&map, "extraction_code", false)?.unwrap_or_default(),
    })
}

/// The two channels a mission change goes to.
fn channels(id: i64) -> [ChannelName; 2] {
    // Both names are built from fixed text and an integer, so they are always valid.
    [
        ChannelName::parse("missions").unwrap_or_else(|_| unreachable!()),
        ChannelName::parse(&format!("missions:{id}")).unwrap_or_else(|_| unreachable!()),
    ]
}

/// Publishes a mission's DTOs as `mission-update` on both of its channels.
pub async fn publish_update(node: &Node, record: &MissionRecord) -> Result<(), ApiError> {
    let data =
        PublicationData::by_audience(&MissionAgentDto::from(record), &MissionHqDto::from(record))
            .map_err(|e| ApiError::internal(&e))?;
    for channel in channels(record.id) {
        node.publish(&channel, "mission-update", data.clone())
            .await
            .map_err(|e| ApiError::broadcast_failed(&e))?;
    }
    Ok(())
}

async fn create(
    State(node): State<Arc<Node>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let who = require_role(&node, &headers, &[Role::Hq])?;
    let new = parse_new(&body)?;
    let record = node
        .store
        .create_mission(&new)
        .await
        .map_err(|e| ApiError::internal(&e))?;
    tracing::info!(mission = record.id, "mission created");
    publish_update(&node, &record).await?;
    let mut res = dto_for(&record, who.audience());
    *res.status_mut() = StatusCode::CREATED;
    Ok(res)
}

async fn update(
    State(node): State<Arc<Node>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let who = require_role(&node, &headers, &[Role::Hq])?;
    let id = parse_id(&id)?;
    let patch = parse_patch(&body)?;
    let record = node
        .store
        .update_mission(id, &patch)
        .await
        .map_err(|e| ApiError::internal(&e))?
        .ok_or_else(|| ApiError::not_found("Mission not found"))?;
    tracing::info!(
        mission = id,
        status = record.status.as_str(),
        "mission updated"
    );
    publish_update(&node, &record).await?;
    Ok(dto_for(&record, who.audience()))
}

async fn remove(
    State(node): State<Arc<Node>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    require_role(&node, &headers, &[Role::Hq])?;
    let id = parse_id(&id)?;
    if !node
        .store
        .delete_mission(id)
        .await
        .map_err(|e| ApiError::internal(&e))?
    {
        return Err(ApiError::not_found("Mission not found"));
    }
    tracing::info!(mission = id, "mission deleted");
    publish_removed(&node, id).await?;
    Ok(Json(MissionRemovedDto { id }).into_response())
}

/// Publishes `mission-removed` `{id}` on both of a mission's channels.
pub async fn publish_removed(node: &Node, id: i64) -> Result<(), ApiError> {
    let data =
        PublicationData::shared(&MissionRemovedDto { id }).map_err(|e| ApiError::internal(&e))?;
    for channel in channels(id) {
        node.publish(&channel, "mission-removed", data.clone())
            .await
            .map_err(|e| ApiError::broadcast_failed(&e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> MissionRecord {
        MissionRecord {
            id: 1,
            codename: "N".into(),
            status: MissionStatus::Active,
            location: "V".into(),
            objective: "O".into(),
            handler_notes: "H".into(),
            asset_identity: "A".into(),
            extraction_code: "E".into(),
            updated_at: "2026-01-01T00:00:00.000Z".into(),
        }
    }

    #[test]
    fn dto_fields_are_exact() {
        let agent = serde_json::to_value(MissionAgentDto::from(&record())).unwrap();
        let keys: Vec<_> = agent.as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys, ["codename", "id", "location", "status"]);
        let hq = serde_json::to_value(MissionHqDto::from(&record())).unwrap();
        let keys: Vec<_> = hq.as_object().unwrap().keys().cloned().collect();
        assert_eq!(
            keys,
            [
                "codename",
                "id",
                "location",
                "objective",
                "status",
                "updated_at"
            ]
        );
    }

    #[test]
    fn patch_validation_names_the_field() {
        let err = |s: &str| parse_patch(&Bytes::from(s.to_owned())).unwrap_err();
        assert_eq!(
            err(r#"{"status":"lost"}"#).status(),
            StatusCode::UNPROCESSABLE_ENTITY
        );
        assert_eq!(err(r#"{"status":"lost"}"#).field(), Some("status"));
        assert_eq!(
            err(&format!(r#"{{"location":"{}"}}"#, "x".repeat(201))).field(),
            Some("location")
        );
        assert_eq!(err(r#"{"objective":5}"#).field(), Some("objective"));
        assert_eq!(err(r#"{"handler_notes":"x"}"#).field(), Some("body"));
        assert_eq!(err(r#"{}"#).field(), Some("body"));
        assert_eq!(err("nope").field(), Some("body"));
        let ok = parse_patch(&Bytes::from_static(
            br#"{"status":"compromised","location":"Berlin"}"#,
        ))
        .unwrap();
        assert_eq!(ok.status, Some(MissionStatus::Compromised));
        assert!(
            parse_patch(&Bytes::from(format!(
                r#"{{"location":"{}"}}"#,
                "x".repeat(200)
            )))
            .is_ok()
        );
    }
}
