//! The top of the house: one router assembling the apps' routes, the transports' endpoints and
//! the operations routes, with the layers every request passes (CORS, the Origin guard,
//! Socket.IO beside the routes, body limits, REST write limits, error logging).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{get, post};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::http::error::{json_errors, log_errors, no_route};
use crate::http::origin::OriginPolicy;
use crate::limits::rest::limit_writes;
use crate::node::Node;
use crate::ops::{client, console, health, openapi, publish};
use crate::transports::{poll, socketio, sse, ws};

/// Builds the whole router for a node.
pub fn router(node: Arc<Node>) -> Router {
    let origins = OriginPolicy::new(&node.config.security.allowed_origins);
    let guard = origins.clone();
    let socketio = socketio::layer(Arc::clone(&node));
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
    let mut routes = Router::new()
        .route("/", get(console::page))
        .route("/console.js", get(console::script))
        .route("/client/{*path}", get(console::client))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/ws", get(ws::handler))
        .route("/api/publish", post(publish::publish))
        .route("/api/client/publish", post(client::publish))
        .route("/api/client/presence/{channel}", get(client::presence))
        .route("/api/client/ack", post(client::ack))
        // Long-lived by design: no timeout layer may wrap these two.
        .route("/events", get(sse::handler))
        .route("/poll", get(poll::handler))
        .merge(openapi::routes(&openapi::document(crate::apps::openapi())));
    for app in node.apps.iter() {
        routes = routes.merge(app.routes());
    }
    routes
        .fallback(no_route)
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&node),
            rest_limits,
        ))
        .layer(axum::middleware::from_fn(log_errors))
        .layer(axum::middleware::from_fn(json_errors))
        .layer(DefaultBodyLimit::max(body_limit))
        // Socket.IO lives beside the routes (it answers `/socket.io/…` itself); the Origin
        // guard runs before it, CORS outermost (polling from allowed browser origins).
        .layer(socketio)
        .layer(axum::middleware::from_fn_with_state(
            guard,
            socketio::origin_guard,
        ))
        .layer(cors)
        .with_state(node)
}

/// REST write limits with the node's verifier and buckets.
async fn rest_limits(
    State(node): State<Arc<Node>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
    next: Next,
) -> Response {
    limit_writes(&node.verifier, &node.rest_limiter, peer, request, next).await
}
