//! A refused client request: a code from the one catalogue and the message the client is shown.
//!
//! Every protocol answers refusals in its own shape (a native `error` frame, a Socket.IO ack or
//! `error` event, an HTTP status), but the decision and its wording are made once, in the
//! command layer, so the same mistake reads the same on every transport. The messages that are
//! given in more than one place are constructors here, so each exists exactly once.

use std::borrow::Cow;

use crate::codes::ErrorCode;

/// Why a request was refused; `message` is public (never an internal cause).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Refusal {
    /// Catalogue code the client can branch on.
    pub code: ErrorCode,
    /// Human text, safe to show: it never carries an internal error.
    pub message: Cow<'static, str>,
}

impl Refusal {
    /// Any code with a public message.
    pub fn new(code: ErrorCode, message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// A `bad_request` refusal: well-formed, but the values are not acceptable.
    pub fn bad(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::BadRequest, message)
    }

    /// The channel may not be read (or written) by this client. Anonymous clients are told
    /// that a token would help; authenticated ones that theirs does not reach it.
    pub fn forbidden_channel(authenticated: bool) -> Self {
        Self::new(
            ErrorCode::Forbidden,
            if authenticated {
                "Your token does not allow this channel"
            } else {
                "Authentication required for this channel"
            },
        )
    }

    /// A channel name that does not parse.
    pub fn invalid_channel(reason: impl std::fmt::Display) -> Self {
        Self::bad(format!("Invalid channel: {reason}"))
    }

    /// A second subscribe to a channel the connection already has.
    pub fn already_subscribed() -> Self {
        Self::bad("Already subscribed")
    }

    /// `limits.max_subscriptions_per_connection` reached.
    pub fn too_many_subscriptions() -> Self {
        Self::bad("Too many subscriptions on this connection")
    }

    /// An unsubscribe (or leave) of a channel the connection does not have.
    pub fn not_subscribed() -> Self {
        Self::new(ErrorCode::NotFound, "Not subscribed to this channel")
    }

    /// The broker or inbox could not be read while subscribing; the client may retry.
    pub fn subscription_unavailable() -> Self {
        Self::bad("Subscription temporarily unavailable; retry")
    }

    /// An ack for a channel other than the client's own `user:<sub>`.
    pub fn foreign_ack() -> Self {
        Self::new(
            ErrorCode::Forbidden,
            "Only your own user channel can be acknowledged",
        )
    }

    /// The inbox could not record an ack; the client may retry.
    pub fn ack_failed() -> Self {
        Self::bad("Acknowledgement failed; retry")
    }

    /// The client sent more than its token bucket allows.
    pub fn rate_limited() -> Self {
        Self::new(ErrorCode::RateLimited, "Rate limit exceeded; slow down")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_messages_are_exact() {
        assert_eq!(
            Refusal::forbidden_channel(true).message,
            "Your token does not allow this channel"
        );
        assert_eq!(
            Refusal::forbidden_channel(false).message,
            "Authentication required for this channel"
        );
        assert_eq!(Refusal::not_subscribed().code, ErrorCode::NotFound);
        assert_eq!(
            Refusal::rate_limited().to_string(),
            "Rate limit exceeded; slow down"
        );
        assert_eq!(
            Refusal::invalid_channel("empty").message,
            "Invalid channel: empty"
        );
    }
}
