//! Liveness and readiness.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Serialize;
use utoipa::ToSchema;

use crate::node::Node;

/// The answer of `/healthz`.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HealthDto {
    /// Always `ok`.
    #[schema(value_type = String)]
    status: &'static str,
}

/// The answer of `/readyz`: each dependency, and whether all are up.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReadyDto {
    /// The store and the broker both answer.
    ready: bool,
    /// The store answers.
    store: bool,
    /// The broker answers.
    broker: bool,
}

/// Liveness: the process is up and serving HTTP.
#[utoipa::path(get, path = "/healthz", operation_id = "healthz", tag = "ops",
    responses((status = 200, description = "Up", body = HealthDto)))]
pub async fn healthz() -> impl IntoResponse {
    axum::Json(HealthDto { status: "ok" })
}

/// Readiness: the store and the broker answer; 503 naming what is down otherwise.
#[utoipa::path(get, path = "/readyz", operation_id = "readyz", tag = "ops",
    responses(
        (status = 200, description = "Ready", body = ReadyDto),
        (status = 503, description = "Not ready; the body says what is down", body = ReadyDto),
    ))]
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
        axum::Json(ReadyDto {
            ready: store && broker,
            store,
            broker,
        }),
    )
}

/// The health routes in `/openapi.json`.
#[derive(utoipa::OpenApi)]
#[openapi(paths(healthz, readyz), components(schemas(HealthDto, ReadyDto)))]
pub struct HealthApi;
