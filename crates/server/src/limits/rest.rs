//! REST write limits: POST/PUT/DELETE/PATCH are counted per user (or per IP when the request
//! carries no valid token) and answered `429` with `Retry-After` over the limit.

use std::net::SocketAddr;

use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use switchboard_core::auth::JwtVerifier;

use super::rate::{Decision, RateLimiter, client_key};
use crate::http::auth::bearer;
use crate::http::error::ApiError;

/// The middleware body; the router wires it with the node's verifier and REST limiter.
pub async fn limit_writes(
    verifier: &JwtVerifier,
    limiter: &RateLimiter,
    peer: SocketAddr,
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
        .and_then(|t| verifier.verify(t).ok())
        .and_then(|c| c.sub);
    match limiter.check(&client_key(user.as_deref(), peer.ip())) {
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
