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
use switchboard_core::auth::Role;
use switchboard_core::channel::ChannelName;
use switchboard_core::publication::{Audience, PublicationData};
use switchboard_store::{ChangeEvent, ChangeTable, MissionRecord};
use utoipa::ToSchema;

mod validate;

use self::validate::{NewBody, PatchBody, StatusName, parse_new, parse_patch};
use crate::http::auth::{identify, require_role};
use crate::http::error::{ApiError, ErrorBody};
use crate::node::error::{AppError, PublishError};
use crate::node::publish::Origin;
use crate::node::{App, Node};

/// The event of a created or changed mission.
pub const UPDATE_EVENT: &str = "mission-update";
/// The event of a deleted mission.
pub const REMOVED_EVENT: &str = "mission-removed";

/// What field agents (and anonymous clients) see.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MissionAgentDto {
    pub id: i64,
    /// Code name.
    pub codename: String,
    /// Status.
    #[schema(value_type = StatusName)]
    pub status: &'static str,
    /// Location.
    pub location: String,
}

/// What HQ sees: the agent fields plus objective and last change. Still no classified field.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MissionHqDto {
    pub id: i64,
    /// Code name.
    pub codename: String,
    /// Status.
    #[schema(value_type = StatusName)]
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

/// The payload of `mission-removed`, and the answer to a delete.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MissionRemovedDto {
    /// The deleted mission's id.
    pub id: i64,
}

/// A mission as one caller sees it: the DTO of its audience. Only for the schema's sake a type
/// of its own (`oneOf` the two DTOs; each refuses the other's extra fields, so exactly one
/// matches).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(untagged)]
pub enum MissionDto {
    /// Audience `hq`.
    Hq(MissionHqDto),
    /// Audience `agent` (the default, and anonymous callers).
    Agent(MissionAgentDto),
}

impl MissionDto {
    fn of(record: &MissionRecord, audience: Audience) -> Self {
        match audience {
            Audience::Agent => Self::Agent(record.into()),
            Audience::Hq => Self::Hq(record.into()),
        }
    }
}

fn dto_for(record: &MissionRecord, audience: Audience) -> Response {
    Json(MissionDto::of(record, audience)).into_response()
}

/// The missions routes in `/openapi.json`: their handlers' `#[utoipa::path]`s and the DTOs.
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(list, show, create, update, remove),
    components(schemas(MissionDto, MissionAgentDto, MissionHqDto, MissionRemovedDto, NewBody, PatchBody, StatusName)),
    tags((name = "missions", description = "HQ updates a mission, every field agent sees it (SPEC 1.1)"))
)]
pub struct MissionsApi;

/// The missions app.
pub struct Missions;

#[async_trait::async_trait]
impl App for Missions {
    fn name(&self) -> &'static str {
        "missions"
    }

    fn routes(&self) -> Router<Arc<Node>> {
        Router::new()
            .route("/missions", get(list).post(create))
            .route("/missions/{id}", get(show).put(update).delete(remove))
    }

    fn server_events(&self) -> &'static [&'static str] {
        &[UPDATE_EVENT, REMOVED_EVENT]
    }

    /// A mission row changed by another writer is published like an API write: its current
    /// state as `mission-update`, or `mission-removed` when it is gone.
    async fn on_change(&self, node: &Node, change: &ChangeEvent) -> Result<bool, AppError> {
        if change.table != ChangeTable::Missions {
            return Ok(false);
        }
        let id: i64 = change
            .key
            .parse()
            .map_err(|_| AppError::BadKey(change.key.clone()))?;
        match node.store.get_mission(id).await? {
            Some(record) => publish_update(node, &record, Origin::Change(change)).await?,
            None => publish_removed(node, id, Origin::Change(change)).await?,
        }
        tracing::info!(mission = id, "published a mission changed outside the API");
        Ok(true)
    }
}

fn parse_id(raw: &str) -> Result<i64, ApiError> {
    raw.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| ApiError::not_found("Mission not found"))
}

/// Every mission, as the caller's audience sees it.
#[utoipa::path(get, path = "/missions", operation_id = "listMissions", tag = "missions",
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "The caller's DTOs", body = Vec<MissionDto>),
        (status = 401, description = "Invalid token", body = ErrorBody),
    ))]
async fn list(State(node): State<Arc<Node>>, headers: HeaderMap) -> Result<Response, ApiError> {
    let who = identify(&node.verifier, &headers)?;
    let records = node.store.list_missions().await?;
    let audience = who.audience();
    let dtos: Vec<MissionDto> = records
        .iter()
        .map(|r| MissionDto::of(r, audience))
        .collect();
    Ok(Json(dtos).into_response())
}

/// One mission, as the caller's audience sees it.
#[utoipa::path(get, path = "/missions/{id}", operation_id = "getMission", tag = "missions",
    params(("id" = i64, Path, description = "The mission's id", example = 1)),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "The caller's DTO", body = MissionDto),
        (status = 401, description = "Invalid token", body = ErrorBody),
        (status = 404, description = "No such mission", body = ErrorBody),
    ))]
async fn show(
    State(node): State<Arc<Node>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let who = identify(&node.verifier, &headers)?;
    let id = parse_id(&id)?;
    let record = node
        .store
        .get_mission(id)
        .await?
        .ok_or_else(|| ApiError::not_found("Mission not found"))?;
    Ok(dto_for(&record, who.audience()))
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
pub async fn publish_update(
    node: &Node,
    record: &MissionRecord,
    origin: Origin<'_>,
) -> Result<(), PublishError> {
    let data =
        PublicationData::by_audience(&MissionAgentDto::from(record), &MissionHqDto::from(record))?;
    for channel in channels(record.id) {
        node.publish_from(origin, &channel, UPDATE_EVENT, data.clone())
            .await?;
    }
    Ok(())
}

/// Creates a mission (role `hq`), publishes `mission-update`, answers the caller's DTO.
#[utoipa::path(post, path = "/missions", operation_id = "createMission", tag = "missions",
    request_body = NewBody,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Created; the DTO that was broadcast", body = MissionDto),
        (status = 401, description = "No token, or an invalid one", body = ErrorBody),
        (status = 403, description = "The token's role is not hq", body = ErrorBody),
        (status = 413, description = "Body over limits.max_message_bytes", body = ErrorBody),
        (status = 422, description = "Invalid body; `field` names what is wrong", body = ErrorBody),
        (status = 429, description = "Too many writes", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 503, description = "Saved, but not broadcast; retry", body = ErrorBody),
    ))]
async fn create(
    State(node): State<Arc<Node>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let who = require_role(&node.verifier, &headers, &[Role::Hq])?;
    let new = parse_new(&body)?;
    let record = node.store.create_mission(&new).await?;
    tracing::info!(mission = record.id, "mission created");
    publish_update(&node, &record, Origin::Direct).await?;
    let mut res = dto_for(&record, who.audience());
    *res.status_mut() = StatusCode::CREATED;
    Ok(res)
}

/// Changes a mission (role `hq`), publishes `mission-update`, answers the caller's DTO.
#[utoipa::path(put, path = "/missions/{id}", operation_id = "updateMission", tag = "missions",
    params(("id" = i64, Path, description = "The mission's id", example = 1)),
    request_body = PatchBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Updated; the DTO that was broadcast", body = MissionDto),
        (status = 401, description = "No token, or an invalid one", body = ErrorBody),
        (status = 403, description = "The token's role is not hq", body = ErrorBody),
        (status = 404, description = "No such mission", body = ErrorBody),
        (status = 413, description = "Body over limits.max_message_bytes", body = ErrorBody),
        (status = 422, description = "Invalid body; `field` names what is wrong", body = ErrorBody),
        (status = 429, description = "Too many writes", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 503, description = "Saved, but not broadcast; retry", body = ErrorBody),
    ))]
async fn update(
    State(node): State<Arc<Node>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let who = require_role(&node.verifier, &headers, &[Role::Hq])?;
    let id = parse_id(&id)?;
    let patch = parse_patch(&body)?;
    let record = node
        .store
        .update_mission(id, &patch)
        .await?
        .ok_or_else(|| ApiError::not_found("Mission not found"))?;
    tracing::info!(
        mission = id,
        status = record.status.as_str(),
        "mission updated"
    );
    publish_update(&node, &record, Origin::Direct).await?;
    Ok(dto_for(&record, who.audience()))
}

/// Deletes a mission (role `hq`) and publishes `mission-removed`.
#[utoipa::path(delete, path = "/missions/{id}", operation_id = "deleteMission", tag = "missions",
    params(("id" = i64, Path, description = "The mission's id", example = 1)),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Deleted", body = MissionRemovedDto),
        (status = 401, description = "No token, or an invalid one", body = ErrorBody),
        (status = 403, description = "The token's role is not hq", body = ErrorBody),
        (status = 404, description = "No such mission", body = ErrorBody),
        (status = 429, description = "Too many writes", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 503, description = "Deleted, but not broadcast; retry", body = ErrorBody),
    ))]
async fn remove(
    State(node): State<Arc<Node>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    require_role(&node.verifier, &headers, &[Role::Hq])?;
    let id = parse_id(&id)?;
    if !node.store.delete_mission(id).await? {
        return Err(ApiError::not_found("Mission not found"));
    }
    tracing::info!(mission = id, "mission deleted");
    publish_removed(&node, id, Origin::Direct).await?;
    Ok(Json(MissionRemovedDto { id }).into_response())
}

/// Publishes `mission-removed` `{id}` on both of a mission's channels.
pub async fn publish_removed(node: &Node, id: i64, origin: Origin<'_>) -> Result<(), PublishError> {
    let data = PublicationData::shared(&MissionRemovedDto { id })?;
    for channel in channels(id) {
        node.publish_from(origin, &channel, REMOVED_EVENT, data.clone())
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
