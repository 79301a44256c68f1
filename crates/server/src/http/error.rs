//! The one REST error type. It picks the status and the public message; the private cause
//! travels with the response (as an extension, never in the body) to [`log_errors`], the one
//! place that logs it — like axum's error-handling example, errors are logged at the edge, not
//! where they are born.
//!
//! Errors from below convert with `?`: the store's and the broker's become a 500 or 503 whose
//! body says nothing about the cause, a token error a 401.

use axum::Json;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use switchboard_core::auth::AuthError;

use crate::node::error::{AppError, PublishError};

/// The public answer to a publication under a name no publication may carry.
const RESERVED_EVENT_MESSAGE: &str =
    "This event name is reserved by the protocol or a client library";

/// A REST failure as the client sees it: `{"error": …, "field"?: …}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    error: String,
    field: Option<&'static str>,
    cause: Option<String>,
    retry_after_secs: Option<u64>,
}

/// The private cause of a failed response, for [`log_errors`]; never serialized.
#[derive(Debug, Clone)]
pub struct ErrorCause(pub String);

/// The one error body every REST failure answers with, and its schema in `/openapi.json`
/// (named `Error` there): a client parses one shape for every status.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Error, title = "Error")]
#[serde(deny_unknown_fields)]
pub struct ErrorBody<'a> {
    /// What is wrong, in words meant for the client (never an internal cause).
    error: &'a str,
    /// The body field, path segment or query parameter at fault (422 and 400 only).
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
}

impl ApiError {
    /// Any status with a public message.
    pub fn new(status: StatusCode, error: impl Into<String>) -> Self {
        Self {
            status,
            error: error.into(),
            field: None,
            cause: None,
            retry_after_secs: None,
        }
    }

    /// 422 naming the offending field.
    pub fn invalid(field: &'static str, error: impl Into<String>) -> Self {
        Self {
            field: Some(field),
            ..Self::new(StatusCode::UNPROCESSABLE_ENTITY, error)
        }
    }

    /// 400 naming the query parameter or field that is malformed (a garbage cursor, an
    /// unparseable channel list): the request cannot be understood, as opposed to a 422.
    pub fn bad_request(field: &'static str, error: impl Into<String>) -> Self {
        Self {
            field: Some(field),
            ..Self::new(StatusCode::BAD_REQUEST, error)
        }
    }

    /// 429 with `Retry-After` (whole seconds, at least 1).
    pub fn too_many_requests(retry_after: std::time::Duration) -> Self {
        Self {
            retry_after_secs: Some(retry_after.as_secs_f64().ceil().max(1.0) as u64),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "Too many requests; retry later",
            )
        }
    }

    /// 404 with a public message.
    pub fn not_found(error: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, error)
    }

    /// 403: authenticated, but the role does not allow this.
    pub fn forbidden(error: &str) -> Self {
        Self::new(StatusCode::FORBIDDEN, error)
    }

    /// 500; the cause is logged by [`log_errors`] and never shown to the client.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        Self {
            cause: Some(cause.to_string()),
            ..Self::new(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error")
        }
    }

    /// 503 when the write was stored but could not be broadcast.
    pub fn broadcast_failed(cause: &dyn std::fmt::Display) -> Self {
        Self {
            cause: Some(format!(
                "publication failed after a successful write: {cause}"
            )),
            ..Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "Saved, but the change could not be broadcast; retry the request",
            )
        }
    }

    /// The status code (for tests and logs).
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The field a 422 names, if any.
    pub fn field(&self) -> Option<&'static str> {
        self.field
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, e.to_string())
    }
}

impl From<switchboard_store::StoreError> for ApiError {
    fn from(e: switchboard_store::StoreError) -> Self {
        Self::internal(&e)
    }
}

impl From<serde_json::Error> for ApiError {
    fn from(e: serde_json::Error) -> Self {
        Self::internal(&e)
    }
}

/// A publication that failed after the write was stored: encoding is a bug (500), anything
/// else means the broadcast did not happen (503, retry).
impl From<PublishError> for ApiError {
    fn from(e: PublishError) -> Self {
        match e {
            PublishError::Encode(e) => Self::internal(&e),
            PublishError::ReservedEvent => Self::invalid("event", RESERVED_EVENT_MESSAGE),
            e => Self::broadcast_failed(&e),
        }
    }
}

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        match e {
            AppError::Publish(e) => e.into(),
            e => Self::internal(&e),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Json(ErrorBody {
            error: &self.error,
            field: self.field,
        });
        let mut res = (self.status, body).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            res.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        if let Some(secs) = self.retry_after_secs {
            res.headers_mut()
                .insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        if let Some(cause) = self.cause {
            res.extensions_mut().insert(ErrorCause(cause));
        }
        res
    }
}

/// Logs the private cause of every failed REST response, once, with its method and path.
pub async fn log_errors(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    if let Some(ErrorCause(cause)) = response.extensions().get::<ErrorCause>() {
        tracing::error!(%method, path, status = response.status().as_u16(), error = %cause, "request failed");
    }
    response
}

/// Every error answer is JSON, `{"error": …}`, even those axum's extractors write as plain text
/// (a body over `limits.max_message_bytes` → 413, a wrong content type → 415, a bad method →
/// 405): a client parses one error shape everywhere. Headers other than the body's are kept.
pub async fn json_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 4096).await.unwrap_or_default();
    let error = match status {
        StatusCode::PAYLOAD_TOO_LARGE => {
            "Request body too large (the limit is limits.max_message_bytes)".to_owned()
        }
        _ => {
            let text = String::from_utf8_lossy(&text).trim().to_owned();
            if text.is_empty() {
                status.canonical_reason().unwrap_or("Error").to_owned()
            } else {
                text
            }
        }
    };
    parts.headers.remove(axum::http::header::CONTENT_TYPE);
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    let (json_parts, json_body) = (
        status,
        Json(ErrorBody {
            error: &error,
            field: None,
        }),
    )
        .into_response()
        .into_parts();
    parts.headers.extend(json_parts.headers);
    Response::from_parts(parts, json_body)
}

/// The answer to a path no route serves: a JSON 404 like every other error.
pub async fn no_route() -> ApiError {
    ApiError::not_found("No such route")
}
