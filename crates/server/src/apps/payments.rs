//! Payments: "a status pushed to the one client that asked" (SPEC §1.3).
//!
//! `POST /api/payments/make-payment-with-socket` stores the payment as `pending` and answers at
//! once; a background task waits `payments.processing_delay_ms`, settles it (`failed` above
//! `payments.max_amount`, else `succeeded`) in the store first, then publishes
//! `payment-status` (`true`/`false`) on `conn:<socketId>` — the personal channel of exactly
//! one connection, a Socket.IO socket or a native WebSocket (its `connectionId`), on whichever
//! node holds it. `GET /api/payments/{id}` reads the stored status.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use garde::Validate;
use serde::{Deserialize, Serialize};
use switchboard_core::channel::ChannelName;
use switchboard_core::publication::PublicationData;
use switchboard_store::{NewPayment, PaymentRecord, PaymentStatus};

use switchboard_core::ids::new_id;

use crate::http::error::{ApiError, ErrorBody};
use crate::http::input::{self, BodySpec, Unknown, rule_error};
use crate::node::{App, Node};
use utoipa::ToSchema;

/// The event carrying the outcome.
pub const STATUS_EVENT: &str = "payment-status";

/// The payments app.
pub struct Payments;

impl App for Payments {
    fn name(&self) -> &'static str {
        "payments"
    }

    fn routes(&self) -> Router<Arc<Node>> {
        Router::new()
            .route("/api/payments/make-payment-with-socket", post(make_payment))
            .route("/api/payments/{id}", get(show))
    }

    fn server_events(&self) -> &'static [&'static str] {
        &[STATUS_EVENT]
    }
}

/// The immediate answer to a payment request.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PaymentAcceptedDto {
    /// Always "Payment received, processing request".
    #[schema(value_type = String)]
    pub message: &'static str,
    /// The id to look the payment up with.
    #[serde(rename = "paymentId")]
    pub payment_id: String,
}

/// A payment as `GET /api/payments/{id}` shows it (the connection id is not echoed).
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PaymentDto {
    pub id: String,
    pub amount: f64,
    /// `pending`, `succeeded` or `failed`.
    #[schema(value_type = String, pattern = "^(pending|succeeded|failed)$")]
    pub status: &'static str,
    /// When it was requested (RFC 3339).
    pub created_at: String,
    /// Last change (RFC 3339).
    pub updated_at: String,
}

impl From<&PaymentRecord> for PaymentDto {
    fn from(r: &PaymentRecord) -> Self {
        Self {
            id: r.id.clone(),
            amount: r.amount,
            status: r.status.as_str(),
            created_at: r.created_at.clone(),
            updated_at: r.updated_at.clone(),
        }
    }
}

/// A validated payment request.
#[derive(Debug, Clone, PartialEq)]
pub struct PaymentRequest {
    /// Positive, finite.
    pub amount: f64,
    /// The connection to notify; `conn:<socket_id>` is a valid channel.
    pub socket_id: String,
    /// `conn:<socket_id>`.
    pub channel: ChannelName,
}

/// The body of a payment request, with its rules.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PaymentBody {
    /// A positive amount.
    #[serde(default)]
    #[garde(custom(positive))]
    #[schema(value_type = f64, exclusive_minimum = 0.0, required)]
    pub amount: Option<f64>,
    /// The connection to notify: a Socket.IO socket id or a native `connectionId`.
    #[serde(default)]
    #[garde(custom(connection_id))]
    #[schema(value_type = String, min_length = 1, required, pattern = "^[A-Za-z0-9_:.-]{1,250}$")]
    pub socket_id: Option<String>,
}

fn positive(amount: &Option<f64>, _: &()) -> garde::Result {
    match amount {
        Some(a) if a.is_finite() && *a > 0.0 => Ok(()),
        _ => Err(rule_error("amount must be a positive number")),
    }
}

fn connection_id(socket_id: &Option<String>, _: &()) -> garde::Result {
    match socket_id.as_deref() {
        None | Some("") => Err(rule_error("socketId must be a non-empty string")),
        Some(id) if conn_channel(id).is_none() => {
            Err(rule_error("socketId is not a valid connection id"))
        }
        Some(_) => Ok(()),
    }
}

fn conn_channel(socket_id: &str) -> Option<ChannelName> {
    ChannelName::parse(&format!("conn:{socket_id}")).ok()
}

const BODY: BodySpec = BodySpec {
    fields: &["amount", "socketId"],
    // Unknown fields are refused, as on every other endpoint: a client that thinks it can set
    // (say) the status learns that it cannot.
    unknown: Unknown::First,
    unknown_message: "Unknown field; allowed fields are amount, socketId",
    not_json: "Body must be a JSON object",
    not_object: "Body must be a JSON object",
    type_message: |field| match field {
        "amount" => "amount must be a positive number",
        _ => "socketId must be a non-empty string",
    },
};

/// Validates a request body: `{amount: positive number, socketId: non-empty string}`.
pub fn validate(body: &[u8]) -> Result<PaymentRequest, ApiError> {
    let body: PaymentBody = input::parse(body, &BODY)?;
    let socket_id = body.socket_id.unwrap_or_default();
    let channel = conn_channel(&socket_id)
        .ok_or_else(|| ApiError::invalid("socketId", "socketId is not a valid connection id"))?;
    Ok(PaymentRequest {
        amount: body.amount.unwrap_or_default(),
        socket_id,
        channel,
    })
}

/// The outcome for an amount: above the configured maximum fails.
pub fn outcome(amount: f64, max_amount: f64) -> PaymentStatus {
    if amount > max_amount {
        PaymentStatus::Failed
    } else {
        PaymentStatus::Succeeded
    }
}

/// Stores a pending payment and answers at once; `payment-status` reaches `conn:<socketId>`
/// after `payments.processing_delay_ms`.
#[utoipa::path(post, path = "/api/payments/make-payment-with-socket", operation_id = "makePayment", tag = "payments",
    request_body = PaymentBody,
    responses(
        (status = 200, description = "Accepted, pending", body = PaymentAcceptedDto),
        (status = 413, description = "Body over limits.max_message_bytes", body = ErrorBody),
        (status = 422, description = "Invalid body; `field` names what is wrong", body = ErrorBody),
        (status = 429, description = "Too many writes", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ))]
async fn make_payment(
    State(node): State<Arc<Node>>,
    body: Bytes,
) -> Result<Json<PaymentAcceptedDto>, ApiError> {
    let request = validate(&body)?;
    let id = format!("pay_{}", new_id());
    let record = node
        .store
        .create_payment(&NewPayment {
            id: id.clone(),
            amount: request.amount,
            socket_id: request.socket_id.clone(),
        })
        .await?;
    tracing::info!(payment = %record.id, conn = %request.socket_id, "payment accepted");
    tokio::spawn(process(node, record.id, request));
    Ok(Json(PaymentAcceptedDto {
        message: "Payment received, processing request",
        payment_id: id,
    }))
}

/// Waits the processing delay, settles in the store, then tells the one connection.
async fn process(node: Arc<Node>, id: String, request: PaymentRequest) {
    let delay = Duration::from_millis(node.config.payments.processing_delay_ms);
    tokio::select! {
        () = tokio::time::sleep(delay) => {}
        () = node.shutting_down() => {
            tracing::info!(payment = %id, "shutting down; payment left pending");
            return;
        }
    }
    let status = outcome(request.amount, node.config.payments.max_amount);
    let settled = match node.store.settle_payment(&id, status).await {
        Ok(Some(record)) => record,
        Ok(None) => {
            tracing::warn!(payment = %id, "payment was not pending any more");
            return;
        }
        Err(e) => {
            tracing::error!(payment = %id, error = %e, "could not settle payment");
            return;
        }
    };
    let ok = settled.status == PaymentStatus::Succeeded;
    let result = match PublicationData::shared(&ok) {
        Ok(data) => node.publish(&request.channel, STATUS_EVENT, data).await,
        Err(e) => Err(e.into()),
    };
    match result {
        Ok(p) => {
            tracing::info!(payment = %id, channel = %request.channel, status = settled.status.as_str(), offset = p.offset, "payment settled")
        }
        Err(e) => {
            tracing::error!(payment = %id, channel = %request.channel, error = %e, "payment settled but not delivered")
        }
    }
}

/// A payment's stored status.
#[utoipa::path(get, path = "/api/payments/{id}", operation_id = "getPayment", tag = "payments",
    params(("id" = String, Path, description = "The `paymentId` the request answered")),
    responses(
        (status = 200, description = "The payment", body = PaymentDto),
        (status = 404, description = "No such payment", body = ErrorBody),
    ))]
async fn show(
    State(node): State<Arc<Node>>,
    Path(id): Path<String>,
) -> Result<Json<PaymentDto>, ApiError> {
    match node.store.get_payment(&id).await? {
        Some(record) => Ok(Json(PaymentDto::from(&record))),
        None => Err(ApiError::not_found("Payment not found")),
    }
}

/// The payments routes in `/openapi.json`.
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(make_payment, show),
    components(schemas(PaymentBody, PaymentAcceptedDto, PaymentDto)),
    tags((name = "payments", description = "A status pushed to the one client that asked (SPEC 1.3)"))
)]
pub struct PaymentsApi;

#[cfg(test)]
mod tests {
    use super::*;

    fn field(body: &str) -> Option<&'static str> {
        validate(body.as_bytes()).err().and_then(|e| e.field())
    }

    #[test]
    fn validates_amount_and_socket_id() {
        let ok = validate(br#"{"amount":1000,"socketId":"abc_-1"}"#).unwrap();
        assert_eq!(ok.amount, 1000.0);
        assert_eq!(ok.channel.as_str(), "conn:abc_-1");
        assert_eq!(field(r#"{"amount":0,"socketId":"a"}"#), Some("amount"));
        assert_eq!(field(r#"{"amount":-5,"socketId":"a"}"#), Some("amount"));
        assert_eq!(field(r#"{"amount":"5","socketId":"a"}"#), Some("amount"));
        assert_eq!(field(r#"{"socketId":"a"}"#), Some("amount"));
        assert_eq!(field(r#"{"amount":5}"#), Some("socketId"));
        assert_eq!(field(r#"{"amount":5,"socketId":""}"#), Some("socketId"));
        assert_eq!(field(r#"{"amount":5,"socketId":7}"#), Some("socketId"));
        assert_eq!(field(r#"{"amount":5,"socketId":"a b"}"#), Some("socketId"));
        assert_eq!(field("[1]"), Some("body"));
        assert_eq!(field("nope"), Some("body"));
    }

    #[test]
    fn amounts_above_the_maximum_fail() {
        assert_eq!(outcome(10_000.0, 10_000.0), PaymentStatus::Succeeded);
        assert_eq!(outcome(10_000.01, 10_000.0), PaymentStatus::Failed);
    }
}
