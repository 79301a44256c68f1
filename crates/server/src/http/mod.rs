//! The HTTP surface: the router, REST errors, auth extraction, the Origin allow-list.

pub mod auth;
pub mod error;
pub mod origin;
pub mod publish;
pub mod rate_limit;

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::node::Node;
use crate::{apps, transports};

/// Builds the whole router for a node.
pub fn router(node: Arc<Node>) -> Router {
    let origins = origin::OriginPolicy::new(&node.config.security.allowed_origins);
    let guard = origins.clone();
    let socketio = transports::socketio::layer(Arc::clone(&node));
    let cors = CorsLayer::new()
        .allow_origin(AllowOrigin::predicate(move |o: &HeaderValue, _| {
            origins.allows_origin(o)
        }))
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::HeaderName::from_static("last-event-id"),
        ]);
    let body_limit = node.config.limits.max_message_bytes;
    Router::new()
        .route("/", get(console))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/ws", get(transports::ws::handler))
        .route("/api/publish", axum::routing::post(publish::publish))
        // Long-lived by design: no timeout layer may wrap these two.
        .route("/events", get(transports::sse::handler))
        .route("/poll", get(transports::poll::handler))
        .merge(apps::missions::routes())
        .merge(apps::cities::routes())
        .merge(apps::payments::routes())
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&node),
            rate_limit::limit_writes,
        ))
        .layer(DefaultBodyLimit::max(body_limit))
        // Socket.IO lives beside the routes (it answers `/socket.io/…` itself); the Origin
        // guard runs before it, CORS outermost (polling from allowed browser origins).
        .layer(socketio)
        .layer(axum::middleware::from_fn_with_state(
            guard,
            transports::socketio::origin_guard,
        ))
        .layer(cors)
        .with_state(node)
}

/// Liveness: the process is up and serving HTTP.
async fn healthz() -> impl IntoResponse {
    axum::Json(serde_json::json!({"status": "ok"}))
}

/// Readiness: the store and the broker answer.
async fn readyz(State(node): State<Arc<Node>>) -> impl IntoResponse {
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

/// The demo console.
async fn console() -> Html<&'static str> {
    Html(include_str!("../web/index.html"))
}
