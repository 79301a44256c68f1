//! The top of the house: one router assembling the apps' routes, the transports' endpoints and
//! the operations routes, with the layers every request passes (CORS, the Origin guard,
//! Socket.IO beside the routes, body limits, REST write limits, error logging, and outermost the
//! request id, one log line per request and the HTTP metrics).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{ConnectInfo, DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{get, post};
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};

use crate::http::error::{json_errors, log_errors, no_route};
use crate::http::origin::OriginPolicy;
use crate::http::request_log;
use crate::limits::rest::limit_writes;
use crate::node::Node;
use crate::node::metrics::DropReason;
use crate::ops::{admin, client, console, health, metrics, openapi, publish};
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
        .route("/metrics", get(metrics::metrics))
        .route("/api/admin/stats", get(admin::stats))
        .route("/api/admin/channels", get(admin::channels))
        .route("/api/admin/presence/{channel}", get(admin::presence))
        .route("/api/admin/disconnect", post(admin::disconnect))
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
        // Names each matched request's route template for the metrics layer outside.
        .route_layer(axum::middleware::from_fn(name_route))
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
        // Before socketioxide: websockets opened directly (no `sid`) are served by
        // Switchboard's own Engine.IO transport.
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&node),
            socketio::websocket::route,
        ))
        .layer(axum::middleware::from_fn_with_state(
            guard,
            socketio::origin_guard,
        ))
        .layer(cors)
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&node),
            http_metrics,
        ))
        .layer(request_log::trace_layer())
        .layer(PropagateRequestIdLayer::new(
            request_log::REQUEST_ID.clone(),
        ))
        .layer(SetRequestIdLayer::new(
            request_log::REQUEST_ID.clone(),
            MakeRequestUuid,
        ))
        .layer(axum::middleware::from_fn(
            request_log::drop_unsafe_request_id,
        ))
        .with_state(node)
}

/// The route template a request matched, carried on the response to [`http_metrics`].
#[derive(Clone)]
struct RouteTemplate(Arc<str>);

async fn name_route(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|m| Arc::<str>::from(m.as_str()));
    let mut response = next.run(request).await;
    if let Some(route) = route {
        response.extensions_mut().insert(RouteTemplate(route));
    }
    response
}

/// Counts every HTTP request by route template and status (Socket.IO's endpoint under its
/// prefix, anything unrouted as `unmatched`: the label set stays bounded whatever is asked).
async fn http_metrics(State(node): State<Arc<Node>>, request: Request, next: Next) -> Response {
    let socketio = request.uri().path().starts_with("/socket.io/");
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    let route = match response.extensions().get::<RouteTemplate>() {
        Some(RouteTemplate(route)) => route.as_ref(),
        None if socketio => "/socket.io/",
        None => "unmatched",
    };
    let status = response.status();
    node.metrics
        .http_request(route, status.as_u16(), started.elapsed());
    match status {
        StatusCode::TOO_MANY_REQUESTS => node.metrics.dropped(DropReason::RateLimited),
        StatusCode::PAYLOAD_TOO_LARGE => node.metrics.dropped(DropReason::TooLarge),
        _ => {}
    }
    response
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
