//! REST write limits: POST/PUT/DELETE/PATCH are counted per user (or per IP when the request
//! carries no valid token) and answered `429` with `Retry-After` over the limit.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::http::auth::bearer;
use crate::http::error::ApiError;
use crate::node::Node;
use crate::rate_limit::{Decision, client_key};

/// The middleware.
pub async fn limit_writes(
    State(node): State<Arc<Node>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
    next: Next,
) -> Response {
    if !matches!(
        *request.method(),
        Method::POST | Method::PUT | Method::DELETE | Method::PATCH
    ) {
        return next.run(request).await;
    }
    let user = bearer(request.headers())
        .ok()
        .flatten()
        .and_then(|t| node.verifier.verify(t).ok())
        .and_then(|c| c.sub);
    match node
        .rest_limiter
        .check(&client_key(user.as_deref(), peer.ip()))
    {
        Decision::Allowed => next.run(request).await,
        Decision::Limited { retry_after } => {
            let mut res = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "Too many requests; retry later",
            )
            .into_response();
            let secs = retry_after.as_secs_f64().ceil().max(1.0) as u64;
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                res.headers_mut().insert(header::RETRY_AFTER, v);
            }
            res
        }
    }
}
