//! Liveness and readiness.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;

use crate::node::Node;

/// Liveness: the process is up and serving HTTP.
pub async fn healthz() -> impl IntoResponse {
    axum::Json(serde_json::json!({"status": "ok"}))
}

/// Readiness: the store and the broker answer; 503 naming what is down otherwise.
pub async fn readyz(State(node): State<Arc<Node>>) -> impl IntoResponse {
    let store = node.store.ping().await.is_ok();
    let broker = node.broker.is_ready().await;
    let status = if store && broker {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        axum::Json(serde_json::json!({"ready": store && broker, "store": store, "broker": broker})),
    )
}
