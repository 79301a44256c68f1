//! `GET /metrics`: the node's Prometheus families (see `node::metrics` for what each counts and
//! why the labels are bounded). Open like `/healthz`: it names no channel, user or secret, and
//! scrapers rarely carry tokens; put it behind the proxy's allow-list where that matters.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::node::Node;

/// `GET /metrics`.
#[utoipa::path(get, path = "/metrics", operation_id = "metrics", tag = "ops",
    responses((status = 200, description = "Prometheus text format 0.0.4 (docs/operations.md lists the families)",
        content_type = "text/plain", body = String)))]
pub async fn metrics(State(node): State<Arc<Node>>) -> Response {
    let subscriptions = node.hub.stats().subscriptions.load(Ordering::Relaxed);
    let body = node.metrics.render(node.sessions.counts(), subscriptions);
    let mut response = body.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

/// `/metrics` in `/openapi.json`.
#[derive(utoipa::OpenApi)]
#[openapi(paths(metrics))]
pub struct MetricsApi;
