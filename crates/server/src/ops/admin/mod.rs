//! The admin API (SPEC §8), role `admin` only, answered for the whole cluster: the node that
//! receives the request asks every live node ([`Cluster::ask_all`]), waits at most
//! [`ANSWER_WITHIN`], and merges. A node that stays silent is named in the answer
//! (`unanswered`, or an `error` entry in `stats`), never waited for.
//!
//! - `GET /api/admin/stats` → `{nodes:[{id, connections:{websocket,socketio,sse,poll},
//!   subscriptions, uptime_s, publications}], channels, publications}`
//! - `GET /api/admin/channels?prefix=room:&limit=1000` → `[{channel, subscribers, offset, epoch}]`
//!   (silent nodes in the `x-switchboard-unanswered` header: the body is a bare array)
//! - `GET /api/admin/presence/{channel}` → `{channel, members:[{user, connectionId}], unanswered}`
//! - `POST /api/admin/disconnect {"user":"alice"}` → `{disconnected, unanswered}`: every
//!   connection of that user on every node closes with 4011 (Socket.IO: the `error` event with
//!   code 4011 and the reason, then a disconnect).
//!
//! - `dto`: the answers and the body, as `/openapi.json` describes them.
//!
//! [`Cluster::ask_all`]: switchboard_core::cluster::Cluster::ask_all

pub mod dto;

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Weak};
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use switchboard_core::auth::Role;
use switchboard_core::channel::ChannelName;
use switchboard_core::cluster::{ClusterHandler, NodeAnswer};
use switchboard_core::codes::CloseCode;
use switchboard_core::protocol::PresenceMember;
use utoipa::IntoParams;

use crate::http::auth::require_role;
use crate::http::error::{ApiError, ErrorBody};
use crate::node::Node;
use crate::ops::client::MemberDto;
use dto::{
    AdminPresenceDto, ChannelDto, ConnectionsDto, DisconnectBody, DisconnectedDto, NodeDto,
    NodeStats, StatsDto,
};

/// How long the asking node waits for the others (SPEC §8: a node that does not answer within
/// a second is reported, not waited for).
pub const ANSWER_WITHIN: Duration = Duration::from_secs(1);
/// Most channels one node reports for one listing.
pub const MAX_CHANNELS: usize = 10_000;
const DEFAULT_CHANNELS: usize = 1_000;
/// Longest prefix or user id accepted (longer ones cannot match a channel or a token's `sub`).
const MAX_TEXT: usize = 256;

/// A question one node asks every node.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "ask", rename_all = "snake_case")]
enum Question {
    Stats,
    Channels { prefix: String, limit: usize },
    Presence { channel: String },
    Disconnect { user: String },
}

/// A node's side of the admin API: answers the cluster's questions from its own registries.
/// Holds the node weakly: the node holds the cluster, which holds this.
pub struct Responder {
    node: Weak<Node>,
}

impl Responder {
    /// The responder of `node`.
    pub fn new(node: &Arc<Node>) -> Self {
        Self {
            node: Arc::downgrade(node),
        }
    }
}

#[async_trait::async_trait]
impl ClusterHandler for Responder {
    async fn answer(&self, request: Value) -> Value {
        let Some(node) = self.node.upgrade() else {
            return json!({ "error": "node stopping" });
        };
        match serde_json::from_value::<Question>(request) {
            Ok(q) => answer_locally(&node, q),
            Err(e) => json!({ "error": format!("unknown question: {e}") }),
        }
    }
}

fn answer_locally(node: &Node, question: Question) -> Value {
    match question {
        Question::Stats => {
            let stats = NodeStats {
                connections: ConnectionsDto::from_counts(node.sessions.counts()),
                subscriptions: node
                    .hub
                    .stats()
                    .subscriptions
                    .load(std::sync::atomic::Ordering::Relaxed)
                    as u64,
                uptime_s: node.started.elapsed().as_secs(),
                publications: node.publication_count(),
                channel_names: node
                    .hub
                    .channels("", MAX_CHANNELS)
                    .into_iter()
                    .map(|(c, _)| c.as_str().to_owned())
                    .collect(),
            };
            serde_json::to_value(stats).unwrap_or(Value::Null)
        }
        Question::Channels { prefix, limit } => Value::Array(
            node.hub
                .channels(&prefix, limit.min(MAX_CHANNELS))
                .into_iter()
                .map(|(c, n)| json!({ "channel": c.as_str(), "subscribers": n }))
                .collect(),
        ),
        Question::Presence { channel } => match ChannelName::parse(&channel) {
            Ok(channel) => {
                serde_json::to_value(node.local_presence(&channel)).unwrap_or(Value::Null)
            }
            Err(_) => Value::Array(Vec::new()),
        },
        Question::Disconnect { user } => {
            let n = node.sessions.close_user(&user, CloseCode::AdminDisconnect);
            if n > 0 {
                tracing::info!(user = %user, connections = n, "disconnected by an administrator");
            }
            json!({ "disconnected": n })
        }
    }
}

/// Asks every node; the answers that came, and the ids of the nodes that stayed silent.
async fn ask(
    node: &Node,
    question: Question,
) -> Result<(Vec<(String, Value)>, Vec<String>), ApiError> {
    let request = serde_json::to_value(&question).map_err(|e| ApiError::internal(&e))?;
    let answers = node
        .cluster
        .ask_all(request, ANSWER_WITHIN)
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, "admin question not asked");
            ApiError::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "The cluster could not be asked; retry",
            )
        })?;
    let mut got = Vec::new();
    let mut silent = Vec::new();
    for NodeAnswer { node, answer } in answers {
        match answer {
            Ok(v) if v.get("error").is_none() => got.push((node, v)),
            _ => silent.push(node),
        }
    }
    Ok((got, silent))
}

fn admin(node: &Node, headers: &HeaderMap) -> Result<(), ApiError> {
    require_role(&node.verifier, headers, &[Role::Admin]).map(|_| ())
}

/// `GET /api/admin/stats`.
#[utoipa::path(get, path = "/api/admin/stats", operation_id = "adminStats", tag = "admin",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Every node's figures; a silent node has `error`", body = StatsDto),
        (status = 401, description = "No token, or an invalid one", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 503, description = "The cluster could not be asked", body = ErrorBody),
    ))]
pub async fn stats(
    State(node): State<Arc<Node>>,
    headers: HeaderMap,
) -> Result<Json<StatsDto>, ApiError> {
    admin(&node, &headers)?;
    let (got, silent) = ask(&node, Question::Stats).await?;
    let mut names = BTreeSet::new();
    let mut publications = 0u64;
    let mut nodes = Vec::new();
    let silent_node = |id: String, error: String| NodeDto {
        id,
        connections: None,
        subscriptions: None,
        uptime_s: None,
        publications: None,
        error: Some(error),
    };
    for (id, answer) in got {
        let Ok(s) = serde_json::from_value::<NodeStats>(answer) else {
            nodes.push(silent_node(id, "unreadable answer".into()));
            continue;
        };
        publications += s.publications;
        names.extend(s.channel_names);
        nodes.push(NodeDto {
            id,
            connections: Some(s.connections),
            subscriptions: Some(s.subscriptions),
            uptime_s: Some(s.uptime_s),
            publications: Some(s.publications),
            error: None,
        });
    }
    for id in silent {
        let error = format!("no answer within {} ms", ANSWER_WITHIN.as_millis());
        nodes.push(silent_node(id, error));
    }
    nodes.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(Json(StatsDto {
        nodes,
        channels: names.len() as u64,
        publications,
    }))
}

/// The query of `GET /api/admin/channels`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ChannelsQuery {
    /// Only channels whose name starts with this (at most 256 bytes).
    #[serde(default)]
    prefix: String,
    /// At most this many (1 to 10,000; default 1,000).
    limit: Option<usize>,
}

/// `GET /api/admin/channels`.
#[utoipa::path(get, path = "/api/admin/channels", operation_id = "adminChannels", tag = "admin",
    params(ChannelsQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Channels with subscribers, sorted by name; silent nodes in the x-switchboard-unanswered header",
            body = Vec<ChannelDto>,
            headers(("x-switchboard-unanswered" = String, description = "Comma-separated ids of nodes that did not answer"))),
        (status = 400, description = "A query that does not parse", body = ErrorBody),
        (status = 401, description = "No token, or an invalid one", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 422, description = "prefix or limit out of range (`field` names it)", body = ErrorBody),
        (status = 503, description = "The cluster could not be asked", body = ErrorBody),
    ))]
pub async fn channels(
    State(node): State<Arc<Node>>,
    headers: HeaderMap,
    query: Result<Query<ChannelsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    admin(&node, &headers)?;
    let Query(query) = query.map_err(|e| ApiError::bad_request("query", e.body_text()))?;
    if query.prefix.len() > MAX_TEXT {
        return Err(ApiError::invalid(
            "prefix",
            format!("at most {MAX_TEXT} bytes"),
        ));
    }
    let limit = query.limit.unwrap_or(DEFAULT_CHANNELS);
    if limit == 0 || limit > MAX_CHANNELS {
        return Err(ApiError::invalid(
            "limit",
            format!("limit must be between 1 and {MAX_CHANNELS}"),
        ));
    }
    let (got, silent) = ask(
        &node,
        Question::Channels {
            prefix: query.prefix,
            limit,
        },
    )
    .await?;
    let mut subscribers: HashMap<String, u64> = HashMap::new();
    for (_, answer) in got {
        for entry in answer.as_array().into_iter().flatten() {
            if let (Some(c), Some(n)) = (entry["channel"].as_str(), entry["subscribers"].as_u64()) {
                *subscribers.entry(c.to_owned()).or_default() += n;
            }
        }
    }
    let mut names: Vec<String> = subscribers.keys().cloned().collect();
    names.sort();
    names.truncate(limit);
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        let Ok(channel) = ChannelName::parse(&name) else {
            continue;
        };
        let (offset, epoch) = match node.recover(&channel, None).await {
            Ok(r) => (Some(r.position.offset), Some(r.position.epoch)),
            Err(e) => {
                tracing::debug!(channel = %channel, error = %e, "admin channel position unread");
                (None, None)
            }
        };
        out.push(ChannelDto {
            subscribers: subscribers.get(&name).copied().unwrap_or(0),
            channel: name,
            offset,
            epoch,
        });
    }
    let mut response = Json(out).into_response();
    if !silent.is_empty()
        && let Ok(v) = HeaderValue::from_str(&silent.join(","))
    {
        response.headers_mut().insert("x-switchboard-unanswered", v);
    }
    Ok(response)
}

/// `GET /api/admin/presence/{channel}`.
#[utoipa::path(get, path = "/api/admin/presence/{channel}", operation_id = "adminPresence", tag = "admin",
    params(("channel" = String, Path, description = "Any channel", example = "room:1")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The members on every node that answered", body = AdminPresenceDto),
        (status = 401, description = "No token, or an invalid one", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "No such route (an empty channel segment)", body = ErrorBody),
        (status = 422, description = "Invalid channel name (`field`: channel)", body = ErrorBody),
        (status = 503, description = "The cluster could not be asked", body = ErrorBody),
    ))]
pub async fn presence(
    State(node): State<Arc<Node>>,
    headers: HeaderMap,
    Path(channel): Path<String>,
) -> Result<Json<AdminPresenceDto>, ApiError> {
    admin(&node, &headers)?;
    let channel =
        ChannelName::parse(&channel).map_err(|e| ApiError::invalid("channel", e.to_string()))?;
    let (got, silent) = ask(
        &node,
        Question::Presence {
            channel: channel.as_str().to_owned(),
        },
    )
    .await?;
    let mut members: Vec<PresenceMember> = got
        .into_iter()
        .filter_map(|(_, v)| serde_json::from_value::<Vec<PresenceMember>>(v).ok())
        .flatten()
        .collect();
    members.sort_by(|a, b| a.connection_id.cmp(&b.connection_id));
    members.dedup_by(|a, b| a.connection_id == b.connection_id);
    Ok(Json(AdminPresenceDto {
        channel: channel.as_str().to_owned(),
        members: members
            .into_iter()
            .map(|m| MemberDto {
                user: m.user,
                connection_id: m.connection_id,
            })
            .collect(),
        unanswered: silent,
    }))
}

/// `POST /api/admin/disconnect`.
#[utoipa::path(post, path = "/api/admin/disconnect", operation_id = "adminDisconnect", tag = "admin",
    request_body = DisconnectBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "How many connections were closed with 4011", body = DisconnectedDto),
        (status = 401, description = "No token, or an invalid one", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 413, description = "Body over limits.max_message_bytes", body = ErrorBody),
        (status = 422, description = "Not {\"user\": \"<id>\"} (`field`: user)", body = ErrorBody),
        (status = 429, description = "Too many writes", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 503, description = "The cluster could not be asked", body = ErrorBody),
    ))]
pub async fn disconnect(
    State(node): State<Arc<Node>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Json<DisconnectedDto>, ApiError> {
    admin(&node, &headers)?;
    let body: DisconnectBody = serde_json::from_slice(&body)
        .map_err(|e| ApiError::invalid("user", format!("expected {{\"user\": \"<id>\"}}: {e}")))?;
    if body.user.is_empty() || body.user.len() > MAX_TEXT {
        return Err(ApiError::invalid(
            "user",
            format!("user must be 1 to {MAX_TEXT} bytes"),
        ));
    }
    let (got, silent) = ask(&node, Question::Disconnect { user: body.user }).await?;
    let disconnected: u64 = got
        .iter()
        .filter_map(|(_, v)| v["disconnected"].as_u64())
        .sum();
    Ok(Json(DisconnectedDto {
        disconnected,
        unanswered: silent,
    }))
}

/// The admin routes in `/openapi.json`.
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(stats, channels, presence, disconnect),
    components(schemas(StatsDto, NodeDto, ConnectionsDto, ChannelDto, AdminPresenceDto, DisconnectBody, DisconnectedDto)),
    tags((name = "admin", description = "The cluster-wide admin API, role admin only (docs/operations.md)"))
)]
pub struct AdminApi;
