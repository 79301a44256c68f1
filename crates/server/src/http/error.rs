//! The one REST error type: picks the status and the public message, logs the private cause.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use switchboard_core::auth::AuthError;

/// A REST failure as the client sees it: `{"error": …, "field"?: …}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    error: String,
    field: Option<&'static str>,
}

#[derive(Serialize)]
struct Body<'a> {
    error: &'a str,
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
        }
    }

    /// 422 naming the offending field.
    pub fn invalid(field: &'static str, error: impl Into<String>) -> Self {
        Self {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            error: error.into(),
            field: Some(field),
        }
    }

    /// 400 naming the query parameter or field that is malformed (a garbage cursor, an
    /// unparseable channel list): the request cannot be understood, as opposed to a 422.
    pub fn bad_request(field: &'static str, error: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            error: error.into(),
            field: Some(field),
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

    /// 500; the cause is logged here and never shown to the client.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error")
    }

    /// 503 when the write was stored but could not be broadcast.
    pub fn broadcast_failed(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "publication failed after a successful write");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Saved, but the change could not be broadcast; retry the request",
        )
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

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Json(Body {
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
        res
    }
}
