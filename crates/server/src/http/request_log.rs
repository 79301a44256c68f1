//! One log line per HTTP request, with a request id (SPEC §8), on tower-http's `TraceLayer`
//! and request-id layers.
//!
//! The id is the request's `x-request-id` when it sent a usable one (a proxy's, so one id
//! follows the request through every hop), else a new UUID; it is echoed in the response and
//! is a field of the request's span, so every line logged while handling it carries it. The
//! line names method, path (never the query string: SSE, long-poll and WebSocket URLs may carry
//! a token there), status and duration.

use std::sync::LazyLock;
use std::time::Duration;

use axum::extract::Request;
use axum::http::HeaderName;
use axum::middleware::Next;
use axum::response::Response;
use tower_http::classify::{ServerErrorsAsFailures, SharedClassifier};
use tower_http::trace::{MakeSpan, OnResponse, TraceLayer};
use tracing::Span;

/// The header the id travels in.
pub static REQUEST_ID: LazyLock<HeaderName> =
    LazyLock::new(|| HeaderName::from_static("x-request-id"));

/// Longest request id taken from a client; longer ones are replaced.
pub const MAX_REQUEST_ID: usize = 128;

/// Whether a client's request id may be taken as is: short, and only characters that cannot
/// forge a log line or a field (letters, digits, `-`, `_`, `.`, `:`).
pub fn usable_request_id(id: &[u8]) -> bool {
    !id.is_empty()
        && id.len() <= MAX_REQUEST_ID
        && id
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// Removes a request id the server will not repeat (see [`usable_request_id`]), so the id
/// layer makes a new one instead.
pub async fn drop_unsafe_request_id(mut request: Request, next: Next) -> Response {
    let unusable = request
        .headers()
        .get(&*REQUEST_ID)
        .is_some_and(|v| !usable_request_id(v.as_bytes()));
    if unusable {
        request.headers_mut().remove(&*REQUEST_ID);
    }
    next.run(request).await
}

/// The span of one request: its id, method and path.
#[derive(Clone, Copy, Debug)]
pub struct RequestSpan;

impl<B> MakeSpan<B> for RequestSpan {
    fn make_span(&mut self, request: &axum::http::Request<B>) -> Span {
        let id = request
            .headers()
            .get(&*REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-");
        tracing::info_span!(
            "request",
            request_id = %id,
            method = %request.method(),
            path = %request.uri().path(),
        )
    }
}

/// The one line per request, when its response head is ready (for streams: when the stream
/// starts; the stream's own close line follows when it ends).
#[derive(Clone, Copy, Debug)]
pub struct RequestLine;

impl<B> OnResponse<B> for RequestLine {
    fn on_response(self, response: &axum::http::Response<B>, latency: Duration, _: &Span) {
        tracing::info!(
            status = response.status().as_u16(),
            duration_ms = latency.as_secs_f64() * 1000.0,
            "request"
        );
    }
}

/// The tracing layer with our span and line; failures are logged by `http::error::log_errors`
/// with their cause, so the layer's own failure line is off.
pub fn trace_layer()
-> TraceLayer<SharedClassifier<ServerErrorsAsFailures>, RequestSpan, (), RequestLine, (), (), ()> {
    TraceLayer::new_for_http()
        .make_span_with(RequestSpan)
        .on_request(())
        .on_response(RequestLine)
        .on_body_chunk(())
        .on_eos(())
        .on_failure(())
}

#[cfg(test)]
mod tests {
    use super::usable_request_id;

    #[test]
    fn request_ids_that_could_forge_a_line_are_not_taken() {
        assert!(usable_request_id(b"3f1c-9a_b.c:1"));
        assert!(!usable_request_id(b""));
        assert!(!usable_request_id(b"a b"));
        assert!(!usable_request_id(b"a\"b"));
        assert!(!usable_request_id(b"id=x level=ERROR"));
        assert!(!usable_request_id("é".as_bytes()));
        assert!(!usable_request_id(&[b'a'; 129]));
        assert!(usable_request_id(&[b'a'; 128]));
    }
}
