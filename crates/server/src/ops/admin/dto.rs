//! What the admin API answers and accepts, as the types `/openapi.json` describes (a field
//! added here shows in the document, and the fuzz run's response-schema check holds every
//! answer to it).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::ops::client::MemberDto;

/// Connections open on one node, per transport.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectionsDto {
    pub websocket: u64,
    pub socketio: u64,
    pub sse: u64,
    pub poll: u64,
}

impl ConnectionsDto {
    /// From counts in `Transport::ALL` order.
    pub fn from_counts(counts: [u64; 4]) -> Self {
        let [websocket, socketio, sse, poll] = counts;
        Self {
            websocket,
            socketio,
            sse,
            poll,
        }
    }
}

/// One node in `GET /api/admin/stats`: its figures, or `error` when it did not answer in
/// time (then only `id` and `error` are present).
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NodeDto {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connections: Option<ConnectionsDto>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subscriptions: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uptime_s: Option<u64>,
    /// Publications this node accepted since it started.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub publications: Option<u64>,
    /// Why there are no figures (`no answer within 1000 ms`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The answer of `GET /api/admin/stats`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatsDto {
    pub nodes: Vec<NodeDto>,
    /// Distinct channels with subscribers across the cluster.
    pub channels: u64,
    /// Publications accepted, summed over the nodes that answered.
    pub publications: u64,
}

/// One channel in `GET /api/admin/channels`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChannelDto {
    pub channel: String,
    /// Subscribers summed over the nodes.
    pub subscribers: u64,
    /// The channel's last offset (`null` when the broker could not be read).
    pub offset: Option<u64>,
    pub epoch: Option<String>,
}

/// The answer of `GET /api/admin/presence/{channel}`.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdminPresenceDto {
    pub channel: String,
    pub members: Vec<MemberDto>,
    /// Nodes that did not answer in time (their members are missing).
    pub unanswered: Vec<String>,
}

/// The body of `POST /api/admin/disconnect`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DisconnectBody {
    /// The user (`sub`) whose connections close with 4011.
    pub user: String,
}

/// The answer of `POST /api/admin/disconnect`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DisconnectedDto {
    /// Connections asked to close, over every node that answered.
    pub disconnected: u64,
    pub unanswered: Vec<String>,
}

/// One node's figures as it answers the `stats` question (not an HTTP shape).
#[derive(Debug, Serialize, Deserialize)]
pub struct NodeStats {
    pub connections: ConnectionsDto,
    pub subscriptions: u64,
    pub uptime_s: u64,
    pub publications: u64,
    /// The names of its channels (at most `MAX_CHANNELS`), for the cluster's distinct count.
    pub channel_names: Vec<String>,
}
